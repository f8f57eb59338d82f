#!/usr/bin/env bash
# bench/reload.sh - zero-downtime reload, measured (issue 6): wrk with 200
# keep-alive connections against asyncd while the supervisor gets a SIGHUP
# every second for 20 s. Every SIGHUP starts a new serving process on the
# same sockets and drains the old one. It prints wrk's report and one
# summary line (the last), and exits 0 only with zero socket errors and
# zero non-2xx answers.
#
# Environment (all optional):
#   RELOAD_DURATION  seconds of load                     (default 20)
#   RELOAD_CONNS     wrk connections                     (default 200)
#   RELOAD_THREADS   wrk threads                         (default 2)
#   RELOAD_INTERVAL  seconds between SIGHUPs             (default 1)
#   RELOAD_BACKEND   asyncd backend: auto, epoll, io_uring (default auto)
#   BENCH_PORT       port asyncd listens on              (default 8080)
#   ASYNCD_BIN       use this asyncd binary instead of building ./cmd/asyncd
#   BENCH_PIN_SERVER, BENCH_PIN_WRK  command prefixes pinning asyncd and wrk
#                    to CPUs (bench/run.sh passes "taskset -c ...")
#
# It writes only in a temporary directory, installs wrk with apt-get when it
# is missing (as root), and ends only the processes it started, by their id.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${RELOAD_DURATION:-20}
CONNS=${RELOAD_CONNS:-200}
THREADS=${RELOAD_THREADS:-2}
INTERVAL=${RELOAD_INTERVAL:-1}
BACKEND=${RELOAD_BACKEND:-auto}
PORT=${BENCH_PORT:-8080}
read -r -a PIN_SERVER <<<"${BENCH_PIN_SERVER:-}"
read -r -a PIN_WRK <<<"${BENCH_PIN_WRK:-}"

die() {
	echo "reload: $*" >&2
	echo "reload: FAILED to run: $*"
	exit 2
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/asyncd-reload.XXXXXX") || die "mktemp"
SUP=
WRK=
cleanup() {
	[ -n "$WRK" ] && kill "$WRK" 2>/dev/null
	if [ -n "$SUP" ] && kill -0 "$SUP" 2>/dev/null; then
		kill -QUIT "$SUP" 2>/dev/null
		wait "$SUP" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		die "wrk is missing (apt-get install wrk)"
	fi
	echo "reload: installing wrk with apt-get" >&2
	{ apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; } >&2 || die "apt-get install wrk failed"
fi

if [ -n "${ASYNCD_BIN:-}" ]; then
	[ -x "$ASYNCD_BIN" ] || die "ASYNCD_BIN=$ASYNCD_BIN is not an executable"
	ASYNCD=$ASYNCD_BIN
else
	ASYNCD=$WORK/asyncd
	(cd "$ROOT" && go build -o "$ASYNCD" ./cmd/asyncd) || die "go build ./cmd/asyncd failed"
fi

cat >"$WORK/reload.yaml" <<EOF
bind: ["127.0.0.1:$PORT"]
backend: $BACKEND
graceful_timeout: 30s
loglevel: info
routes:
  - path: /
    handler: static
    options: {body: "Hello, World!", content_type: text/plain}
EOF

# ASYNCD_ variables are settings to asyncd: do not pass ours on.
env -u ASYNCD_BIN "${PIN_SERVER[@]}" "$ASYNCD" -c "$WORK/reload.yaml" >"$WORK/asyncd.log" 2>&1 &
SUP=$!
for _ in $(seq 1 100); do
	grep -q 'msg="serving process ready"' "$WORK/asyncd.log" && break
	kill -0 "$SUP" 2>/dev/null || { cat "$WORK/asyncd.log" >&2; die "asyncd exited at start"; }
	sleep 0.1
done
grep -q 'msg="serving process ready"' "$WORK/asyncd.log" || die "asyncd not ready after 10s"
grep -m1 'msg="asyncd ready"' "$WORK/asyncd.log" >&2

"${PIN_WRK[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PORT/" >"$WORK/wrk.txt" 2>&1 &
WRK=$!
hups=0
# One SIGHUP every INTERVAL on a fixed schedule (no drift) while wrk runs;
# none in the last second, so that the last replacement serves before wrk
# stops.
start=${EPOCHREALTIME/./}
count=$(awk -v d="$DURATION" -v i="$INTERVAL" 'BEGIN {print int((d - 1) / i)}')
for n in $(seq 1 "$count"); do
	wait_s=$(awk -v s="$start" -v n="$n" -v i="$INTERVAL" -v now="${EPOCHREALTIME/./}" \
		'BEGIN {w = (s + n * i * 1e6 - now) / 1e6; if (w < 0) w = 0; printf "%.3f", w}')
	sleep "$wait_s"
	kill -0 "$WRK" 2>/dev/null || break
	kill -HUP "$SUP" || die "asyncd is gone"
	hups=$((hups + 1))
done
wait "$WRK"
WRK=
cat "$WORK/wrk.txt"

kill -TERM "$SUP"
wait "$SUP"
code=$?
SUP=

requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
# "Socket errors: connect 0, read 0, write 0, timeout 0" is absent when all are 0.
errors=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$WORK/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.txt")
errors=${errors:-0}
non2xx=${non2xx:-0}
gens=$(grep -c 'msg="serving process ready"' "$WORK/asyncd.log")
killed=$(grep -c 'did not exit in time' "$WORK/asyncd.log")
[ -n "$requests" ] || die "no wrk report"

verdict=PASS
if [ "$errors" != 0 ] || [ "$non2xx" != 0 ] || [ "$code" != 0 ]; then
	verdict=FAIL
	grep -E 'level=(WARN|ERROR)' "$WORK/asyncd.log" | tail -20 >&2
fi
echo "reload: ${CONNS} connections, ${DURATION}s, ${hups} SIGHUPs, ${gens} generations, ${requests} requests, ${errors} socket errors, ${non2xx} non-2xx, ${killed} killed, asyncd exit ${code}: ${verdict}"
[ "$verdict" = PASS ]
