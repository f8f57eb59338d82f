#!/usr/bin/env bash
# bench.sh: the users API (the same handler) on plain net/http, asyncd async
# and asyncd gthread, against a throw-away PostgreSQL seeded with
# BENCH_USERS users, under wrk -t1 with random GET /users/{id}.
#
# Each (connections, round) runs every server in turn, each started fresh,
# warmed up, then measured: req/s, p50 and p99 (wrk), server CPU µs per
# request (utime+stime of the server's process tree from /proc/PID/stat,
# over the requests wrk counted), PostgreSQL's CPU µs per request the same
# way, allocations per request (runtime.MemStats.Mallocs from /debug/vars)
# and the server's RSS at the end. The table shows the median of the rounds
# and every round's value. The machine is shared: alternate, read medians.
#
# BENCH_PROFILE=1 adds, at the first connection count: a pprof CPU profile
# of each server, per-request syscall counts from perf's syscall
# tracepoints (low overhead, full load; context switches too) and from
# strace -f -c (a short run, slowed by strace), and perf record's top
# symbols, kernel included. BENCH_PROFILE_SECONDS (20) is the pprof
# profile's length.
#
# Settings (environment): BENCH_DURATION (8s), BENCH_WARMUP (2s),
# BENCH_ROUNDS (3), BENCH_CONNS ("100 1000"), BENCH_USERS (10000),
# BENCH_POOL (24, pool_max_conns), BENCH_THREADS (16, gthread),
# BENCH_SERVERS ("nethttp async async-epoll gthread"; async and gthread
# use asyncd's backend auto, io_uring where the kernel allows it; a suffix
# -epoll or -uring picks one; a further -direct sets PROTO_DIRECT_WRITE=1
# for a binary built from commit 53edad7, the direct-write prototype,
# reverted since: PROFILE.md section 6), BENCH_PORT (8090),
# BENCH_OUT (a new /tmp/dbapi-bench.XXXXXX: logs, profiles, results.txt).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DURATION=${BENCH_DURATION:-8s}
WARMUP=${BENCH_WARMUP:-2s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-"100 1000"}
USERS=${BENCH_USERS:-10000}
POOL=${BENCH_POOL:-24}
THREADS=${BENCH_THREADS:-16}
SERVERS=${BENCH_SERVERS:-"nethttp async async-epoll gthread"}
PORT=${BENCH_PORT:-8090}
DEBUG_PORT=$((PORT + 1)) # the standalone's /debug/ server
PROFILE=${BENCH_PROFILE:-0}
PROFILE_SECONDS=${BENCH_PROFILE_SECONDS:-20}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/dbapi-bench.XXXXXX)}
mkdir -p "$OUT"
export USERS # wrk-users.lua reads it

say() { echo "bench: $*" >&2; }

# --- tools ---------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
PGBIN=$(pg_config --bindir 2>/dev/null || true)
[ -x "$PGBIN/initdb" ] || PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "${PGBIN:-/nonexistent}/initdb" ] || need+=(postgresql)
if [ "$PROFILE" = 1 ]; then
	command -v strace >/dev/null || need+=(strace)
	command -v perf >/dev/null || need+=(linux-perf)
fi
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		say "cannot install ${need[*]} (needs root and apt-get): install them and run again"
		exit 1
	fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- build ----------------------------------------------------------------
say "building into $OUT"
(cd "$HERE" && go build -o "$OUT/asyncd-dbapi" . && go build -o "$OUT/dbapi-standalone" ./standalone)

# --- PostgreSQL -----------------------------------------------------------
PGDIR=$(mktemp -d /tmp/dbapi-pg.XXXXXX)
PGUSER_OS=""
if [ "$(id -u)" = 0 ]; then # initdb refuses root
	PGUSER_OS=postgres
	id postgres >/dev/null 2>&1 || PGUSER_OS=nobody
	chown "$PGUSER_OS": "$PGDIR"
fi
as_pg() { if [ -n "$PGUSER_OS" ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi; }
SERVER_PGID=""
cleanup() {
	[ -n "$SERVER_PGID" ] && kill -TERM -- "-$SERVER_PGID" 2>/dev/null || true
	as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$PGDIR"
}
trap cleanup EXIT
say "PostgreSQL ($PGBIN) in $PGDIR, seeding $USERS users"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U dbapi --auth=trust -E UTF8 --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w start \
	-o "-k $PGDIR -c listen_addresses= -c max_connections=200 -c fsync=off -c synchronous_commit=off" >/dev/null
"$PGBIN/createdb" -h "$PGDIR" -U dbapi dbapi
"$PGBIN/psql" -h "$PGDIR" -U dbapi -d dbapi -q -v seed_users="$USERS" -f "$HERE/schema.sql"
PG_PID=$(head -1 "$PGDIR/data/postmaster.pid")
export DATABASE_URL="postgres://dbapi@/dbapi?host=$PGDIR&pool_max_conns=$POOL"

# The asyncd config: asyncd.yaml's routes, on the bench port, with the
# profiling handler mounted (for /debug/vars and /debug/pprof/).
cat >"$OUT/asyncd-bench.yaml" <<EOF
bind: ["127.0.0.1:$PORT"]
worker_class: async
routes:
  - {mount: /users, handler: users}
  - {path: /debug/, handler: profiling}
EOF

# --- processes ------------------------------------------------------------
tree() { # a pid and all its descendants
	local p
	for p in "$@"; do
		echo "$p"
		tree $(ps -o pid= --ppid "$p" 2>/dev/null) 
	done
}
ticks() { # utime+stime of the tree, in clock ticks, with the root's reaped children (cutime+cstime)
	local sum p s
	sum=$(awk '{print $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0)
	for p in $(tree "$1"); do
		s=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
		sum=$((sum + s))
	done
	echo "$sum"
}
rss_kib() {
	local sum=0 p s
	for p in $(tree "$1"); do
		s=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		sum=$((sum + ${s:-0}))
	done
	echo "$sum"
}
HZ=$(getconf CLK_TCK)

debug_url() { if [ "$1" = nethttp ]; then echo "http://127.0.0.1:$DEBUG_PORT/debug"; else echo "http://127.0.0.1:$PORT/debug"; fi; }
mallocs() { curl -sf "$(debug_url "$1")/vars" | python3 -c 'import json,sys; print(json.load(sys.stdin)["memstats"]["Mallocs"])'; }

backend() { # SERVER: asyncd's --backend flag for an -epoll or -uring part (none: auto)
	case $1 in
	*-epoll*) echo "--backend epoll" ;;
	*-uring*) echo "--backend io_uring" ;;
	esac
}
direct() { # SERVER: 1 for a -direct part (the engine's direct-write prototype)
	case $1 in
	*-direct*) echo 1 ;;
	*) echo 0 ;;
	esac
}

# start SERVER: runs it in its own process group; sets SERVER_PID (the
# process whose tree is measured) and SERVE_PID (the one serving requests).
start() {
	local log="$OUT/$1.log"
	case $1 in
	nethttp) setsid "$OUT/dbapi-standalone" -b "127.0.0.1:$PORT" -debug "127.0.0.1:$DEBUG_PORT" >>"$log" 2>&1 & ;;
	async*)
		PROTO_DIRECT_WRITE=$(direct "$1") setsid "$OUT/asyncd-dbapi" -c "$OUT/asyncd-bench.yaml" -k async $(backend "$1") >>"$log" 2>&1 & ;;
	gthread*)
		PROTO_DIRECT_WRITE=$(direct "$1") setsid "$OUT/asyncd-dbapi" -c "$OUT/asyncd-bench.yaml" -k gthread --threads "$THREADS" $(backend "$1") >>"$log" 2>&1 & ;;
	*) say "unknown server $1"; exit 1 ;;
	esac
	SERVER_PID=$!
	SERVER_PGID=$SERVER_PID
	for _ in $(seq 100); do
		curl -sf -o /dev/null "http://127.0.0.1:$PORT/users/1" && curl -sf -o /dev/null "$(debug_url "$1")/vars" && break
		sleep 0.1
	done
	curl -sf -o /dev/null "http://127.0.0.1:$PORT/users/1" || { say "$1 did not answer; see $log"; exit 1; }
	SERVE_PID=$SERVER_PID
	if [ "$1" != nethttp ]; then SERVE_PID=$(ps -o pid= --ppid "$SERVER_PID" | head -1 | tr -d ' '); fi
}
stop() {
	kill -TERM -- "-$SERVER_PGID" 2>/dev/null || true
	while kill -0 "$SERVER_PID" 2>/dev/null; do sleep 0.1; done
	SERVER_PGID=""
}
wrk_run() { # CONNS DURATION: prints wrk's RESULT fields
	wrk -t1 -c"$1" -d"$2" --timeout 5s -s "$HERE/wrk-users.lua" "http://127.0.0.1:$PORT" | awk '/^RESULT/ {print $2, $3, $4, $5, $6, $7}'
}

# measure SERVER CONNS ROUND: one measured run; appends a row to raw.txt.
measure() {
	local srv=$1 c=$2 r=$3
	start "$srv"
	wrk_run "$c" "$WARMUP" >/dev/null
	local m0 t0 p0 res m1 t1 p1 rss
	m0=$(mallocs "$srv"); t0=$(ticks "$SERVER_PID"); p0=$(ticks "$PG_PID")
	res=$(wrk_run "$c" "$DURATION")
	t1=$(ticks "$SERVER_PID"); p1=$(ticks "$PG_PID"); m1=$(mallocs "$srv")
	rss=$(rss_kib "$SERVER_PID")
	stop
	read -r reqs rps p50 p99 bad errs <<<"$res"
	if [ -z "${reqs:-}" ] || [ "$reqs" = 0 ]; then say "$srv c=$c round $r: wrk served nothing"; return; fi
	awk -v s="$srv" -v c="$c" -v r="$r" -v n="$reqs" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
		-v bad="$bad" -v errs="$errs" -v dt=$((t1 - t0)) -v dp=$((p1 - p0)) -v hz="$HZ" \
		-v dm=$((m1 - m0)) -v rss="$rss" 'BEGIN {
		printf "%s %d %d %.0f %.2f %.2f %.1f %.1f %.1f %.1f %d %d\n", s, c, r, rps, p50/1000, p99/1000,
			dt*1e6/hz/n, dp*1e6/hz/n, dm/n, rss/1024, bad, errs }' | tee -a "$OUT/raw.txt"
}

# --- profiles ---------------------------------------------------------------
profile() { # SERVER CONNS
	local srv=$1 c=$2 base
	base="$OUT/profile-$srv"
	start "$srv"
	wrk_run "$c" "$WARMUP" >/dev/null
	say "$srv: pprof CPU profile (${PROFILE_SECONDS}s under load)"
	wrk_run "$c" $((PROFILE_SECONDS + 3))s >"$base.pprof-wrk.txt" &
	local w=$!
	sleep 1
	curl -sf -o "$base.cpu.pprof" "$(debug_url "$srv")/pprof/profile?seconds=$PROFILE_SECONDS"
	wait "$w"
	local bin="$OUT/asyncd-dbapi"
	[ "$srv" = nethttp ] && bin="$OUT/dbapi-standalone"
	go tool pprof -top -nodecount=60 "$bin" "$base.cpu.pprof" >"$base.top.txt" 2>/dev/null || true
	go tool pprof -top -cum -nodecount=60 "$bin" "$base.cpu.pprof" >"$base.topcum.txt" 2>/dev/null || true

	say "$srv: syscalls per request (perf stat tracepoints, 5 s under load)"
	local events=context-switches,cpu-migrations,raw_syscalls:sys_enter sc
	for sc in read write writev readv epoll_wait epoll_pwait epoll_ctl futex nanosleep sched_yield \
		io_uring_enter getpid tgkill rt_sigreturn madvise mmap; do
		events="$events,syscalls:sys_enter_$sc"
	done
	perf stat -x, -e "$events" -p "$(tree "$SERVE_PID" | paste -sd,)" -o "$base.perfstat.csv" &
	local ps=$!
	sleep 0.2
	wrk_run "$c" 5s >"$base.perfstat-wrk.txt"
	kill -INT "$ps"; wait "$ps" || true

	say "$srv: strace -f -c (3 s, slowed by strace)"
	strace -f -c -o "$base.strace.txt" -p "$SERVE_PID" &
	local st=$!
	sleep 0.5
	wrk_run "$c" 3s >"$base.strace-wrk.txt"
	kill -INT "$st"; wait "$st" || true

	say "$srv: perf record (cpu-clock, call graphs, 5 s under load)"
	perf record -q -e cpu-clock -g -p "$SERVE_PID" -o "$base.perf.data" -- sleep 5 >/dev/null 2>&1 &
	local pr=$!
	wrk_run "$c" 5s >"$base.perfrecord-wrk.txt"
	wait "$pr" || true
	perf report -i "$base.perf.data" --no-children --sort dso,sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' |
		grep -E '^ +[0-9]' | head -60 >"$base.perf-top.txt" || true
	stop
}

per_request() { # FILE-PREFIX: syscall counts per request from perf stat and strace
	local base=$1 n
	n=$(awk '{print $1}' "$base.perfstat-wrk.txt")
	echo "perf stat, per request ($n requests):"
	awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ && $1 > 0 { sub(/.*:sys_enter_?/, "", $3); printf "  %-16s %8.2f\n", ($3 == "" ? "syscalls" : $3), $1 / n }' "$base.perfstat.csv"
	n=$(awk '{print $1}' "$base.strace-wrk.txt")
	echo "strace -f -c, per request ($n requests):"
	awk -v n="$n" '$4 ~ /^[0-9]+$/ && NF >= 5 { printf "  %-14s %8.2f\n", $NF, $4 / n }' "$base.strace.txt" | head -15
}

# --- run ------------------------------------------------------------------
: >"$OUT/raw.txt"
say "rounds: $ROUNDS x conns {$CONNS} x servers {$SERVERS}, wrk -t1 $DURATION (warm-up $WARMUP); pool $POOL"
for c in $CONNS; do
	for r in $(seq "$ROUNDS"); do
		for srv in $SERVERS; do
			measure "$srv" "$c" "$r"
		done
	done
done
if [ "$PROFILE" = 1 ]; then
	c=${CONNS%% *}
	for srv in $SERVERS; do profile "$srv" "$c"; done
fi

# --- report -----------------------------------------------------------------
{
	echo "# users API: GET /users/{random id of $USERS}, wrk -t1 $DURATION, pool_max_conns $POOL, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# median of $ROUNDS alternated rounds [each round]; cpu = server process tree, db = PostgreSQL, µs per request"
	printf "%-13s %5s %18s %8s %8s %16s %8s %10s %8s %s\n" server conns req/s p50ms p99ms cpu-us/req db-us/req allocs/req rss-MiB errors
	for c in $CONNS; do
		for srv in $SERVERS; do
			awk -v s="$srv" -v c="$c" '
			function med(col,   a, n, i, j, t) { n = 0; for (i in rows) { split(rows[i], f, " "); a[++n] = f[col] }
				for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
				return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
			function all(col,   i, out) { out = ""; for (i = 1; i <= k; i++) { split(rows[i], f, " "); out = out (i > 1 ? "," : "") f[col] } return out }
			$1 == s && $2 == c { rows[++k] = $0; bad += $11; errs += $12 }
			END { if (!k) exit
				printf "%-13s %5d %7.0f [%s] %8.2f %8.2f %6.1f [%s] %8.1f %10.1f %8.1f %d/%d\n", s, c, med(4), all(4),
					med(5), med(6), med(7), all(7), med(8), med(9), med(10), bad, errs }' "$OUT/raw.txt"
		done
	done
	echo "# errors: non-2xx answers / socket errors, summed over rounds"
	if [ "$PROFILE" = 1 ]; then
		for srv in $SERVERS; do
			echo
			echo "## $srv"
			per_request "$OUT/profile-$srv"
			echo "pprof top (flat), $OUT/profile-$srv.top.txt:"
			sed -n '1,25p' "$OUT/profile-$srv.top.txt"
		done
	fi
} | tee "$OUT/results.txt"
say "results in $OUT/results.txt"
