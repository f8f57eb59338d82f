#!/usr/bin/env python3
"""pprof-split.py BINARY PROFILE REQ_PER_S: a CPU profile of the users API
split by what each sample was doing, in CPU µs per request (PROFILE.md,
section 3). Each sample counts once, for the first rule its stack matches;
system calls count where they are made. With --syscalls, the samples in a
system call or the scheduler's futex/usleep/netpoll, by call site instead.
"""
import re
import subprocess
import sys

SEP = "-----------+-------------------------------------------------------"


def samples(binary, profile):
    out = subprocess.run(["go", "tool", "pprof", "-traces", binary, profile],
                         capture_output=True, text=True, check=True).stdout
    duration = float(re.search(r"Duration: ([\d.]+)s", out).group(1))
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
    found = []
    for block in out.split(SEP)[1:]:
        lines = [l.strip() for l in block.strip("\n").split("\n") if l.strip()]
        m = lines and re.match(r"([\d.]+)(us|ms|s)\s+(.*)", lines[0])
        if m:
            found.append((float(m.group(1)) * unit[m.group(2)], [m.group(3)] + lines[1:]))
    return duration, found


# (name, pattern over the whole stack joined by " | "), first match wins.
RULES = [
    ("GC background marking", r"gcBgMarkWorker"),
    ("the handler: pgx (query, protocol, pool; its socket I/O)", r"users\.\(\*api\).*jackc|jackc.*users\.\(\*api\)"),
    ("the handler: encoding/json + rest", r"users\.\(\*api\)"),
    ("ServeMux routing", r"net/http\.\(\*ServeMux\)"),
    ("asyncd: build the http.Request, ResponseWriter", r"engine\.\(\*Ctx\)\.httpRequest|engine\.\(\*responseWriter\)|engine\.HTTPHandler"),
    ("asyncd handler side: Wake (eventfd write)", r"\(\*conn\)\.Wake"),
    ("asyncd executor and Ctx.Run/complete", r"engine\.\(\*Ctx\)\.(complete|Run)|worker\.\(\*(elastic|pool)"),
    ("asyncd loop: OnWake", r"loop/(epoll|uring).*engine\.\(\*Engine\)\.OnWake|engine\.\(\*Engine\)\.OnWake"),
    ("asyncd loop: read, parse, route, dispatch (OnRead)", r"engine\.\(\*Engine\)\.OnRead"),
    ("asyncd loop: system calls", r"^[^|]*(Syscall|syscall).*loop/(epoll|uring)"),
    ("asyncd loop: backend rest", r"loop/(epoll|uring)"),
    ("net/http: read and parse the request", r"net/http\.\(\*conn\)\.readRequest"),
    ("net/http: rest of conn.serve (response writing included)", r"net/http\.\(\*conn\)\.serve"),
    ("runtime scheduler: netpoll", r"runtime\.netpoll"),
    ("runtime scheduler: futex, usleep, osyield", r"^runtime\.(futex|usleep|osyield)"),
    ("runtime scheduler: rest", r"runtime\.(schedule|findRunnable|park_m|mcall|stopm|startm|wakep|exitsyscall|entersyscall|sysmon|handoffp|retake)"),
    ("GC and malloc outside the above", r"runtime\.(mallocgc|gcStart|bgsweep|bgscavenge|gcAssist|gcDrain)"),
]


def split(found, per):
    acc = {}
    for v, frames in found:
        stack = " | ".join(frames)
        name = next((n for n, p in RULES if re.search(p, stack)), "other")
        acc[name] = acc.get(name, 0.0) + v
    for name, v in sorted(acc.items(), key=lambda kv: -kv[1]):
        print("  %-60s %6.2f µs" % (name, v * per))


def syscalls(found, per, top=16):
    acc = {}
    for v, frames in found:
        if not re.search(r"Syscall6|runtime\.(futex|usleep|netpoll)|EpollWait", frames[0]):
            continue
        site = " < ".join(f.split("/")[-1][:50] for f in frames[1:6])
        acc[site] = acc.get(site, 0.0) + v
    for site, v in sorted(acc.items(), key=lambda kv: -kv[1])[:top]:
        print("  %6.2f µs  %s" % (v * per, site))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 3:
        sys.exit(__doc__)
    binary, profile, rps = args[0], args[1], float(args[2])
    duration, found = samples(binary, profile)
    total = sum(v for v, _ in found)
    per = 1e6 / (rps * duration)  # seconds of samples -> µs per request
    print("%s: %.2f s of samples in %.1f s at %.0f req/s: %.1f µs per request" % (profile, total, duration, rps, total * per))
    if "--syscalls" in sys.argv:
        syscalls(found, per)
    else:
        split(found, per)


if __name__ == "__main__":
    main()
