#!/usr/bin/env bash
# bench/run.sh - the single entry point of `make bench`.
#
# Builds asyncd and the peers (bench/peers, its own Go module), runs every
# server in turn on the same port under the same wrk settings, with server
# and wrk pinned to separate CPUs, takes the median of BENCH_RUNS runs per
# scenario, measures the server's CPU time per request (its whole process
# tree, from /proc, around each wrk run: bench/peers/cmd/cpumeter) and
# memory (idle keep-alive connections, a pipelining client that never
# reads), runs the parser microbenchmarks (go test -bench ./httpparse/) and
# prints ONE table, written with a chart to bench/results/ (timestamped,
# plus latest.*). See bench/README.md.
#
# Environment (all optional):
#   BENCH_DURATION   wrk duration per run              (default 10s; quick 3s)
#   BENCH_RUNS       runs per scenario, median taken  (default 3; quick 1)
#   BENCH_CONNS      wrk connections                   (default 256)
#   BENCH_CONNS1K    connections of the conns1k scenario (default 1000)
#   BENCH_WARMUP     discarded warm-up run per scenario (default 2s; quick 1s)
#   BENCH_SERVERS    subset of server ids (space or comma separated)
#   BENCH_SCENARIOS  subset of: plaintext pipeline json post churn conns1k delay idle flood parser reload api
#   BENCH_API_CONNS  connections of the api scenario (default 100; api1k uses BENCH_CONNS1K)
#   BENCH_API_POOL   database connections of each server in the api scenario (default 24)
#   BENCH_API_USERS  users seeded and requested at random (default 10000)
#   BENCH_API_THREADS asyncd gthread's --threads in the api scenario (default 16)
#   BENCH_QUICK=1    smoke run: 1 run of 3 s per scenario, 3 s flood
#   BENCH_PORT       port every server listens on      (default 8080)
#   BENCH_DELAY_CONNS connections of the delay scenario (default 5000)
#   BENCH_DELAY_SIDE_CONNS connections of the /plaintext load run alongside
#                    the delay scenario (default 16)
#   BENCH_IDLE_CONNS connections of the idle-memory measurement (default 10000)
#   BENCH_FLOOD_DURATION  length of the never-reading flood (default 10s; quick 3s)
#   BENCH_FLOOD_CAP  stop a flood once server RSS passes this many bytes (default 2 GiB)
#   BENCH_PARSER_COUNT    go test -count of the parser microbenchmarks (default 5; quick 1)
#   BENCH_PARSER_BENCH    go test -bench regexp of them (default ".": all)
#   BENCH_PARSER_BENCHTIME go test -benchtime (default go's 1s; quick 100ms)
#   BENCH_PIN=0      do not pin server and wrk to separate CPUs
#   BENCH_PUBLISH=1  also write docs/benchmarks-bench.md and docs/benchmarks.svg
#                    (refused for BENCH_QUICK=1 or subsets: the docs show full runs only)
#   ASYNCD_BIN       use this asyncd binary instead of building ./cmd/asyncd
#   BENCH_PLAN=1     print the plan and the estimated time, run nothing
#
# It writes only under bench/.build, bench/results and (BENCH_PUBLISH=1) the
# two docs files; it ends only the processes it started, by their id.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
BUILD=$BENCH_DIR/.build
BIN=$BUILD/bin
LOGS=$BUILD/logs
RESULTS=$BENCH_DIR/results
# BENCH_DOCS_DIR redirects publishing (and lifts its full-run guard) so the
# publishing step can be tested without touching docs/.
DOCS=${BENCH_DOCS_DIR:-$ROOT/docs}

ALL_SERVERS="asyncd-epoll-sync asyncd-uring-sync asyncd-epoll-async asyncd-uring-async asyncd-epoll-gthread c-epoll nethttp fasthttp gnet-raw hertz nbio gain-raw nginx h2o gunicorn-gevent"
FAST_SCENARIOS="plaintext pipeline json post churn conns1k"
# The minimal C server and h2o answer GET /plaintext only.
PLAIN_SCENARIOS="plaintext pipeline churn conns1k"
ALL_SCENARIOS="$FAST_SCENARIOS delay idle flood parser reload api"
IDLE_SERVERS="asyncd-epoll-sync asyncd-uring-sync c-epoll nginx h2o nethttp fasthttp"
FLOOD_SERVERS="asyncd-epoll-sync asyncd-uring-sync gnet-raw hertz nbio fasthttp nethttp"

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	DURATION=${BENCH_DURATION:-3s}
	RUNS=${BENCH_RUNS:-1}
	WARMUP=${BENCH_WARMUP:-1s}
	FLOOD_DURATION=${BENCH_FLOOD_DURATION:-3s}
	PARSER_COUNT=${BENCH_PARSER_COUNT:-1}
	PARSER_BENCHTIME=${BENCH_PARSER_BENCHTIME:-100ms}
else
	DURATION=${BENCH_DURATION:-10s}
	RUNS=${BENCH_RUNS:-3}
	WARMUP=${BENCH_WARMUP:-2s}
	FLOOD_DURATION=${BENCH_FLOOD_DURATION:-10s}
	PARSER_COUNT=${BENCH_PARSER_COUNT:-5}
	PARSER_BENCHTIME=${BENCH_PARSER_BENCHTIME:-}
fi
PARSER_BENCH=${BENCH_PARSER_BENCH:-.}
# parser_args PROCS fills PARSER_ARGS with the go test arguments of the
# parser microbenchmarks and PARSER_TEXT with the command as printed.
parser_args() {
	PARSER_ARGS=(-run '^$' -bench "$PARSER_BENCH" -benchmem -count "$PARSER_COUNT")
	[ -n "$PARSER_BENCHTIME" ] && PARSER_ARGS+=(-benchtime "$PARSER_BENCHTIME")
	[ -n "$1" ] && PARSER_ARGS+=(-cpu "$1")
	PARSER_TEXT="go test -run '^\$' -bench $PARSER_BENCH -benchmem -count $PARSER_COUNT${PARSER_BENCHTIME:+ -benchtime $PARSER_BENCHTIME}${1:+ -cpu $1} ./httpparse/"
}
CONNS=${BENCH_CONNS:-256}
PORT=${BENCH_PORT:-8080}
ADDR=127.0.0.1:$PORT
DELAY_CONNS=${BENCH_DELAY_CONNS:-5000}
DELAY_SIDE_CONNS=${BENCH_DELAY_SIDE_CONNS:-16}
CONNS1K=${BENCH_CONNS1K:-1000}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
FLOOD_CAP=${BENCH_FLOOD_CAP:-$((2 << 30))}
PUBLISH=${BENCH_PUBLISH:-0}

# say prints a progress line with the time since the start.
say() { printf '[bench %02d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# words turns "a,b c" into "a b c".
words() { printf '%s' "${1//,/ }"; }
contains() { # contains LIST WORD
	local w
	for w in $1; do [ "$w" = "$2" ] && return 0; done
	return 1
}

SERVERS=$(words "${BENCH_SERVERS:-$ALL_SERVERS}")
SCENARIOS=$(words "${BENCH_SCENARIOS:-$ALL_SCENARIOS}")
for s in $SERVERS; do contains "$ALL_SERVERS" "$s" || die "unknown server '$s' in BENCH_SERVERS; known: $ALL_SERVERS"; done
for s in $SCENARIOS; do contains "$ALL_SCENARIOS" "$s" || die "unknown scenario '$s' in BENCH_SCENARIOS; known: $ALL_SCENARIOS"; done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONNS must be a positive integer, got '$CONNS'"
[[ $CONNS1K =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONNS1K must be a positive integer, got '$CONNS1K'"
[[ $DELAY_SIDE_CONNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_DELAY_SIDE_CONNS must be a positive integer, got '$DELAY_SIDE_CONNS'"
[[ $PARSER_COUNT =~ ^[1-9][0-9]*$ ]] || die "BENCH_PARSER_COUNT must be a positive integer, got '$PARSER_COUNT'"
if [ "$PUBLISH" = 1 ] && [ -z "${BENCH_DOCS_DIR:-}" ]; then
	[ "$QUICK" = 1 ] && die "BENCH_PUBLISH=1 with BENCH_QUICK=1: the docs only show full runs"
	[ -n "${BENCH_SERVERS:-}${BENCH_SCENARIOS:-}" ] && die "BENCH_PUBLISH=1 with BENCH_SERVERS/BENCH_SCENARIOS: the docs only show full runs"
fi

mkdir -p "$BIN" "$LOGS" "$RESULTS" || die "cannot create $BUILD or $RESULTS"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW=$RESULTS/$STAMP.raw.jsonl
: >"$RAW" || die "cannot write $RAW"

# The api scenario (a database-backed API) lives in its own file.
# shellcheck source=api/api.sh
. "$BENCH_DIR/api/api.sh"

# ---------------------------------------------------------------- records

json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/ }
	s=${s//$'\r'/ }
	s=${s//$'\t'/ }
	printf '"%s"' "$s"
}
record() { printf '%s\n' "$1" >>"$RAW"; }
record_skip() { # server scenario reason
	say "skip $1 ($2): $3"
	record "{\"kind\":\"skip\",\"server\":$(json_str "$1"),\"scenario\":$(json_str "$2"),\"reason\":$(json_str "$3")}"
}
record_note() {
	say "$1"
	record "{\"kind\":\"note\",\"reason\":$(json_str "$1")}"
}

# ---------------------------------------------------------------- plan

# scenarios_of ID prints the wrk scenarios a server takes part in.
scenarios_of() {
	case $1 in
	asyncd-*-sync | hertz | nbio | gnet-raw | gain-raw | nginx | gunicorn-gevent) printf '%s' "$FAST_SCENARIOS" ;;
	c-epoll | h2o) printf '%s' "$PLAIN_SCENARIOS" ;;
	asyncd-*-async) printf 'delay' ;;
	nethttp | fasthttp) printf '%s delay' "$FAST_SCENARIOS" ;;
	esac
}

secs() { # "10s" / "1m" / "500ms" -> whole seconds (rounded up)
	local v=$1
	case $v in
	*ms) echo $(((${v%ms} + 999) / 1000)) ;;
	*s) echo "${v%s}" ;;
	*m) echo $((${v%m} * 60)) ;;
	*h) echo $((${v%h} * 3600)) ;;
	*) echo "$v" ;;
	esac
}
estimate=0
for s in $SERVERS; do
	n=0
	for sc in $(scenarios_of "$s"); do contains "$SCENARIOS" "$sc" && n=$((n + 1)); done
	[ "$n" -gt 0 ] && estimate=$((estimate + 3 + n * ($(secs "$WARMUP") + RUNS * ($(secs "$DURATION") + 1))))
	contains "$SCENARIOS" idle && contains "$IDLE_SERVERS" "$s" && estimate=$((estimate + 14))
	contains "$SCENARIOS" flood && contains "$FLOOD_SERVERS" "$s" && estimate=$((estimate + 5 + $(secs "$FLOOD_DURATION")))
	# api: two connection counts, each run a fresh start, a warm-up and a measured run.
	contains "$SCENARIOS" api && contains "$API_SERVERS" "$s" && estimate=$((estimate + 2 * RUNS * (3 + $(secs "$WARMUP") + $(secs "$DURATION") + 1)))
done
contains "$SCENARIOS" api && [ -n "$(api_servers)" ] && estimate=$((estimate + 15))
# The parser microbenchmarks: BenchmarkParse (3 inputs x 3 parsers) and
# BenchmarkIncremental, each about -benchtime long per -count, plus a link.
# A -bench subset is estimated as the whole.
PARSER_BENCHES=10
if contains "$SCENARIOS" parser; then
	per=1
	[ -n "$PARSER_BENCHTIME" ] && per=$(secs "$PARSER_BENCHTIME")
	[ "$per" -lt 1 ] && per=1
	estimate=$((estimate + 15 + PARSER_COUNT * PARSER_BENCHES * per))
fi
# bench/reload.sh: RELOAD_DURATION of load (its default 20 s; 5 s on a
# smoke run) plus start and stop, when an asyncd server is selected.
if contains "$SCENARIOS" reload && [[ " $SERVERS" == *" asyncd-"* ]]; then
	reload_secs=${RELOAD_DURATION:-20}
	[ "$QUICK" = 1 ] && reload_secs=${RELOAD_DURATION:-5}
	estimate=$((estimate + reload_secs + 5))
fi
say "plan: servers [$SERVERS], scenarios [$SCENARIOS]; $RUNS x $DURATION per scenario, $CONNS connections (conns1k: $CONNS1K; delay: $DELAY_CONNS, with $DELAY_SIDE_CONNS more on /plaintext alongside), warm-up $WARMUP"
for s in $SERVERS; do
	sc_list=""
	for sc in $(scenarios_of "$s"); do contains "$SCENARIOS" "$sc" && sc_list+=" $sc"; done
	contains "$SCENARIOS" idle && contains "$IDLE_SERVERS" "$s" && sc_list+=" idle"
	contains "$SCENARIOS" flood && contains "$FLOOD_SERVERS" "$s" && sc_list+=" flood"
	contains "$SCENARIOS" api && contains "$API_SERVERS" "$s" && sc_list+=" api($API_CONNS and $CONNS1K conns)"
	[ -n "$sc_list" ] && say "  $s:$sc_list"
done
if contains "$SCENARIOS" parser; then
	parser_args ""
	say "  parser microbenchmarks: $PARSER_TEXT (pinned like a server, -cpu <server cores>)"
fi
contains "$SCENARIOS" reload && say "  reload under load: bench/reload.sh (asyncd)"
say "estimated time: about $((estimate / 60)) min $((estimate % 60)) s, plus building"
if [ "${BENCH_PLAN:-0}" = 1 ]; then
	rm -f "$RAW"
	exit 0
fi

# ---------------------------------------------------------------- tools

APT_UPDATED=0
# apt_install PKG... installs Debian packages; prints why it could not.
apt_install() {
	if [ "$(id -u)" != 0 ]; then
		APT_WHY="not root (install $* yourself: sudo apt-get install $*)"
		return 1
	fi
	if ! command -v apt-get >/dev/null; then
		APT_WHY="no apt-get on this machine (install $* by hand)"
		return 1
	fi
	if [ "$APT_UPDATED" = 0 ]; then
		say "apt-get update"
		if ! apt-get update >>"$LOGS/apt.log" 2>&1; then
			APT_WHY="apt-get update failed (see $LOGS/apt.log)"
			return 1
		fi
		APT_UPDATED=1
	fi
	say "apt-get install -y $*"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$LOGS/apt.log" 2>&1; then
		APT_WHY="apt-get install $* failed (see $LOGS/apt.log)"
		return 1
	fi
	return 0
}

NEED_WRK=0
for s in $SCENARIOS; do contains "$FAST_SCENARIOS delay api" "$s" && NEED_WRK=1; done
if [ "$NEED_WRK" = 1 ] && ! command -v wrk >/dev/null; then
	apt_install wrk || die "wrk is missing and could not be installed: $APT_WHY"
fi
command -v go >/dev/null || die "go is not on PATH"

# ---------------------------------------------------------------- limits, pinning

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
say "open files limit: $NOFILE (wanted 65536; the hard limit caps it)"
if [ "$NOFILE" != unlimited ]; then
	if [ $((IDLE_CONNS + 512)) -gt "$NOFILE" ]; then
		IDLE_CONNS=$((NOFILE - 512))
		say "idle-memory connections lowered to $IDLE_CONNS to fit the open files limit"
	fi
	if [ $((DELAY_CONNS + DELAY_SIDE_CONNS + 512)) -gt "$NOFILE" ]; then
		DELAY_CONNS=$((NOFILE - DELAY_SIDE_CONNS - 512))
		say "delay connections lowered to $DELAY_CONNS to fit the open files limit"
	fi
	if [ $((CONNS1K + API_POOL + 512)) -gt "$NOFILE" ]; then
		CONNS1K=$((NOFILE - 512))
		say "conns1k connections lowered to $CONNS1K to fit the open files limit"
	fi
fi

# expand_cpus "0-2,5" prints "0 1 2 5".
expand_cpus() {
	local part out=""
	for part in $(words "$1"); do
		if [[ $part == *-* ]]; then
			out+=" $(seq -s ' ' "${part%-*}" "${part#*-}")"
		else
			out+=" $part"
		fi
	done
	printf '%s' "${out# }"
}
join_by() {
	local IFS=$1
	shift
	printf '%s' "$*"
}

ALLOWED=$(taskset -pc $$ 2>/dev/null | sed -n 's/.*list: *//p')
if [ -n "$ALLOWED" ]; then
	read -r -a CPUS <<<"$(expand_cpus "$ALLOWED")"
else
	read -r -a CPUS <<<"$(seq -s ' ' 0 $(($(nproc) - 1)))"
fi
NCPU=${#CPUS[@]}
PIN_SERVER=()
PIN_WRK=()
if [ "${BENCH_PIN:-1}" != 0 ] && [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
	half=$((NCPU / 2))
	SERVER_CPUS=$(join_by , "${CPUS[@]:0:half}")
	WRK_CPUS=$(join_by , "${CPUS[@]:half}")
	SERVER_NCPU=$half
	WRK_THREADS=$((NCPU - half))
	PIN_SERVER=(taskset -c "$SERVER_CPUS")
	PIN_WRK=(taskset -c "$WRK_CPUS")
	if [ "$NCPU" = 2 ]; then
		PINNING="server and wrk share a 2-core machine: server pinned to CPU${CPUS[0]}, wrk to CPU${CPUS[1]}"
	else
		PINNING="server pinned to CPUs $SERVER_CPUS ($SERVER_NCPU cores), wrk to CPUs $WRK_CPUS ($WRK_THREADS threads)"
	fi
else
	SERVER_CPUS=""
	WRK_CPUS=""
	SERVER_NCPU=$NCPU
	WRK_THREADS=$NCPU
	if [ "${BENCH_PIN:-1}" = 0 ]; then
		PINNING="not pinned (BENCH_PIN=0): server and wrk share all $NCPU CPUs"
	else
		PINNING="not pinned: only $NCPU CPU(s) (or no taskset), server and wrk share them"
	fi
fi
say "pinning: $PINNING"
say "server command prefix: ${PIN_SERVER[*]:-(none)}; wrk command prefix: ${PIN_WRK[*]:-(none)}"
say "GOMAXPROCS of the Go servers follows their CPU affinity: $SERVER_NCPU; asyncd, nginx and Gunicorn get $SERVER_NCPU worker(s), h2o and the C server $SERVER_NCPU thread(s); wrk runs $WRK_THREADS thread(s)"
[ "$CONNS" -ge "$WRK_THREADS" ] || die "BENCH_CONNS=$CONNS is below the $WRK_THREADS wrk threads"

# ---------------------------------------------------------------- build

declare -A MISSING # server id -> why it cannot run
bin_of() {
	case $1 in
	asyncd-*) printf '%s' "$ASYNCD" ;;
	gnet-raw) printf '%s' "$BIN/gnet" ;;
	gain-raw) printf '%s' "$BIN/gain" ;;
	c-epoll) printf '%s' "$BIN/cepoll" ;;
	nginx | h2o | gunicorn-gevent) printf '' ;;
	*) printf '%s' "$BIN/$1" ;;
	esac
}

go_build() { # name [extra go build flags...]; builds bench/peers/cmd/name
	local name=$1
	shift
	(cd "$BENCH_DIR/peers" && go build "$@" -o "$BIN/$name" "./cmd/$name") >"$LOGS/build-$name.log" 2>&1
}

say "building tools (bench/peers)"
for tool in probe report chart idleconns pipeflood gobench cpumeter; do
	go_build "$tool" || die "building bench/peers/cmd/$tool failed: $(tail -5 "$LOGS/build-$tool.log")"
done

ASYNCD_WANTED=0
# asyncd itself serves every scenario but api (examples/dbapi's binary).
for s in $SERVERS; do
	[[ $s == asyncd-* ]] || continue
	for sc in $(scenarios_of "$s") idle flood reload; do contains "$SCENARIOS" "$sc" && ASYNCD_WANTED=1; done
done
ASYNCD=""
ASYNCD_WHY=""
if [ "$ASYNCD_WANTED" = 1 ]; then
	if [ -n "${ASYNCD_BIN:-}" ]; then
		if [ -x "$ASYNCD_BIN" ]; then
			ASYNCD=$(cd "$(dirname "$ASYNCD_BIN")" && pwd)/$(basename "$ASYNCD_BIN")
		else
			ASYNCD_WHY="ASYNCD_BIN=$ASYNCD_BIN is not an executable"
		fi
	elif [ -d "$ROOT/cmd/asyncd" ]; then
		say "building asyncd: go build -o $BIN/asyncd ./cmd/asyncd"
		if (cd "$ROOT" && go build -o "$BIN/asyncd" ./cmd/asyncd) >"$LOGS/build-asyncd.log" 2>&1; then
			ASYNCD=$BIN/asyncd
		elif [ -x "$ROOT/bin/asyncd" ]; then
			say "building asyncd failed ($(tail -1 "$LOGS/build-asyncd.log")); using the existing $ROOT/bin/asyncd"
			ASYNCD=$ROOT/bin/asyncd
		else
			ASYNCD_WHY="asyncd binary missing: go build ./cmd/asyncd failed (bench/.build/logs/build-asyncd.log)"
			say "go build ./cmd/asyncd: $(tail -1 "$LOGS/build-asyncd.log")"
		fi
	elif [ -x "$ROOT/bin/asyncd" ]; then
		ASYNCD=$ROOT/bin/asyncd
	else
		ASYNCD_WHY="asyncd binary missing: no ./cmd/asyncd to build and no bin/asyncd"
	fi
	if [ -n "$ASYNCD" ]; then
		say "asyncd: $ASYNCD"
	else
		say "asyncd skipped: $ASYNCD_WHY"
	fi
fi

# gunicorn_ok [MODULE...]: Gunicorn is installed and its Python imports
# gevent and the MODULEs; sets GUNICORN.
gunicorn_ok() {
	GUNICORN=$(command -v gunicorn || echo /usr/bin/gunicorn)
	[ -x "$GUNICORN" ] || return 1
	local py mod
	py=$(head -1 "$GUNICORN" | sed -n 's/^#! *//p' | cut -d' ' -f1)
	for mod in gevent "$@"; do
		"${py:-python3}" -c "import $mod" 2>/dev/null || return 1
	done
}

# takes_part ID: the server has a selected scenario (nothing to build otherwise).
takes_part() {
	local sc
	for sc in $(scenarios_of "$1"); do contains "$SCENARIOS" "$sc" && return 0; done
	contains "$SCENARIOS" idle && contains "$IDLE_SERVERS" "$1" && return 0
	contains "$SCENARIOS" flood && contains "$FLOOD_SERVERS" "$1" && return 0
	contains "$SCENARIOS" api && contains "$API_SERVERS" "$1" && return 0
	return 1
}
for s in $SERVERS; do
	takes_part "$s" || continue
	case $s in
	asyncd-epoll-gthread) ;; # api only: examples/dbapi's binary, built by api.sh
	asyncd-*) [ -z "$ASYNCD" ] && MISSING[$s]=$ASYNCD_WHY ;;
	nethttp | fasthttp | hertz | nbio)
		say "building peer $s"
		go_build "$s" || MISSING[$s]="build failed (bench/.build/logs/build-$s.log)"
		;;
	gnet-raw)
		say "building peer $s"
		go_build gnet || MISSING[$s]="build failed (bench/.build/logs/build-gnet.log)"
		;;
	gain-raw)
		say "building peer $s (-ldflags=-checklinkname=0)"
		if ! go_build gain -ldflags=-checklinkname=0; then
			MISSING[$s]="build failed (bench/.build/logs/build-gain.log)"
		elif [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" != 0 ]; then
			MISSING[$s]="io_uring is disabled (kernel.io_uring_disabled != 0)"
		fi
		;;
	c-epoll)
		say "building peer $s: gcc -O2 bench/peers/cepoll/cepoll.c"
		if ! command -v gcc >/dev/null; then
			apt_install gcc libc6-dev || MISSING[$s]="no gcc to build bench/peers/cepoll/cepoll.c: $APT_WHY"
		fi
		if [ -z "${MISSING[$s]:-}" ] && ! gcc -O2 -Wall -Wextra -o "$BIN/cepoll" "$BENCH_DIR/peers/cepoll/cepoll.c" -lpthread >"$LOGS/build-cepoll.log" 2>&1; then
			MISSING[$s]="build failed (bench/.build/logs/build-cepoll.log)"
		fi
		;;
	h2o)
		H2O=$(command -v h2o || { [ -x /usr/sbin/h2o ] && echo /usr/sbin/h2o; })
		if [ -z "$H2O" ]; then
			if apt_install h2o; then
				H2O=$(command -v h2o || echo /usr/bin/h2o)
			else
				MISSING[$s]=$APT_WHY
			fi
		fi
		# Debian's h2o service, when the package install started it, listens on
		# port 80, not on ours; the runner never touches it.
		;;
	nginx)
		NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; })
		if [ -z "$NGINX" ]; then
			if apt_install nginx-light || apt_install nginx; then
				NGINX=$(command -v nginx || echo /usr/sbin/nginx)
			else
				MISSING[$s]=$APT_WHY
			fi
		fi
		;;
	gunicorn-gevent)
		if ! gunicorn_ok; then
			if apt_install gunicorn python3-gevent && gunicorn_ok; then :; else
				MISSING[$s]=${APT_WHY:-"gunicorn or gevent missing after install"}
			fi
		fi
		;;
	esac
done

# ---------------------------------------------------------------- servers

# server_cmd ID fills CMD with the command that serves on $ADDR.
server_cmd() {
	local backend class
	case $1 in
	asyncd-*)
		backend=${1#asyncd-}
		backend=${backend%-*}
		[ "$backend" = uring ] && backend=io_uring
		class=${1##*-}
		CMD=("$ASYNCD" -c "$BENCH_DIR/asyncd-bench.yaml" -w "$SERVER_NCPU" -k "$class" --backend "$backend" -b "$ADDR")
		# The delay scenario keeps DELAY_CONNS requests in flight: let one
		# loop hold them all, as net/http and fasthttp do (Gunicorn users
		# raise worker_connections the same way).
		[ "$class" = async ] && CMD+=(--worker-connections "$((DELAY_CONNS > 1000 ? DELAY_CONNS : 1000))")
		;;
	nginx)
		local prefix=$BUILD/nginx
		mkdir -p "$prefix"
		sed -e "s#@PREFIX@#$prefix#g; s#@WORKERS@#$SERVER_NCPU#g; s#@ADDR@#$ADDR#g" \
			"$BENCH_DIR/nginx/nginx.conf.tmpl" >"$prefix/nginx.conf"
		CMD=("$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log")
		;;
	h2o)
		local prefix=$BUILD/h2o user_line=""
		mkdir -p "$prefix"
		# As root h2o would switch to nobody and could not write its prefix.
		[ "$(id -u)" = 0 ] && user_line="user: root"
		sed -e "s#@PREFIX@#$prefix#g; s#@THREADS@#$SERVER_NCPU#g; s#@HOST@#${ADDR%:*}#g; s#@PORT@#$PORT#g; s#@USER_LINE@#$user_line#g" \
			"$BENCH_DIR/h2o/h2o.conf.tmpl" >"$prefix/h2o.conf"
		CMD=("$H2O" -c "$prefix/h2o.conf")
		;;
	c-epoll)
		CMD=("$BIN/cepoll" -addr "$ADDR" -t "$SERVER_NCPU")
		;;
	gunicorn-gevent)
		CMD=("$GUNICORN" -k gevent -w "$SERVER_NCPU" --worker-connections 10000 --keep-alive 120
			--graceful-timeout 5 --backlog 4096 -b "$ADDR" --chdir "$BENCH_DIR/gunicorn" --log-level warning app:app)
		;;
	*)
		CMD=("$(bin_of "$1")" -addr "$ADDR")
		;;
	esac
}

UNSET_ASYNCD=()
for v in $(compgen -e); do [[ $v == ASYNCD_* ]] && UNSET_ASYNCD+=(-u "$v"); done

SPID=""
SID=""
# start_server ID SCENARIOS: starts the server in its own process group,
# pinned, and waits until it answers every route of SCENARIOS like asyncd.
# A server that exits at start is given one more try, said out loud, since
# a port can linger a moment after the previous server.
start_server() {
	try_start "$1" "$2" && return 0
	case $START_WHY in
	*"exited at start"*)
		say "$1 $START_WHY; trying once more"
		sleep 1
		try_start "$1" "$2"
		;;
	*) return 1 ;;
	esac
}

try_start() {
	local id=$1 scen=$2 log=$LOGS/$1.log
	# The delay scenario also loads /plaintext alongside: check it too.
	contains "$scen" delay && scen+=" delay-plaintext"
	server_cmd "$id"
	say "start $id: ${PIN_SERVER[*]} ${CMD[*]}"
	# ASYNCD_* variables are settings to asyncd (ASYNCD_BIN, ours, would be
	# refused as an unknown setting): no server gets any of them.
	setsid env "${UNSET_ASYNCD[@]}" "${PIN_SERVER[@]}" "${CMD[@]}" >"$log" 2>&1 </dev/null &
	SPID=$!
	SID=$id
	local out
	if ! out=$("$BIN/probe" -addr "$ADDR" -scenarios "$(words "$scen" | tr ' ' ,)" -wait 30s 2>&1); then
		local why=$out
		kill -0 "$SPID" 2>/dev/null || why="exited at start: $(tail -1 "$log")"
		START_WHY="did not answer like asyncd: $why"
		stop_server
		return 1
	fi
	say "$out"
	return 0
}

stop_server() {
	[ -n "$SPID" ] || return 0
	kill -TERM "$SPID" 2>/dev/null
	local _
	for _ in $(seq 100); do
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SPID" 2>/dev/null; then
		say "$SID did not stop within 10 s of SIGTERM; SIGKILL to its process group $SPID"
	fi
	# Whatever is left in the group we created (workers of a dead master).
	kill -KILL -- "-$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	SPID=""
	"$BIN/probe" -free -addr "$ADDR" -wait 30s >/dev/null 2>&1 || say "warning: $ADDR still busy 30 s after stopping $SID"
	SID=""
}
trap 'stop_server; api_pg_stop; exit 130' INT TERM
trap 'stop_server; api_pg_stop' EXIT

# ---------------------------------------------------------------- wrk

wrk_args() { # scenario -> url, script and script args
	WRK_SCRIPT=$BENCH_DIR/wrk/$1.lua
	case $1 in
	plaintext) WRK_URL=http://$ADDR/plaintext WRK_EXTRA=() ;;
	pipeline) WRK_URL=http://$ADDR/plaintext WRK_EXTRA=(-- 16) ;;
	json) WRK_URL=http://$ADDR/json WRK_EXTRA=() ;;
	post) WRK_URL=http://$ADDR/post WRK_EXTRA=() ;;
	churn) WRK_URL=http://$ADDR/plaintext WRK_EXTRA=() ;;
	conns1k) WRK_URL=http://$ADDR/plaintext WRK_EXTRA=() WRK_SCRIPT=$BENCH_DIR/wrk/plaintext.lua ;;
	delay) WRK_URL=http://$ADDR/delay WRK_EXTRA=() ;;
	esac
}

# record_wrk ID SCENARIO RUN LOG EXTRA: records the WRKRESULT line of LOG,
# with the server's CPU time from the CPUMETER line when there is one, and
# prints it; fails when there is no WRKRESULT.
record_wrk() {
	local id=$1 sc=$2 run=$3 log=$4 extra=$5 line cpu cpu_field=""
	line=$(sed -n 's/^WRKRESULT //p' "$log" | tail -1)
	[ -n "$line" ] || return 1
	cpu=$(sed -n 's/^CPUMETER //p' "$log" | tail -1)
	[ -n "$cpu" ] && cpu_field=",\"cpu\":$cpu"
	record "{\"kind\":\"wrk\",\"server\":$(json_str "$id"),\"scenario\":\"$sc\",\"run\":$run,\"wrk\":$line$cpu_field$extra}"
	local rps p50 p99 errs reqs cpu_us per_req=""
	rps=$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' <<<"$line")
	p50=$(sed -n 's/.*"p50_us":\([0-9]*\).*/\1/p' <<<"$line")
	p99=$(sed -n 's/.*"p99_us":\([0-9]*\).*/\1/p' <<<"$line")
	errs=$(grep -o '"errors_[a-z]*":[0-9]*' <<<"$line" | awk -F: '{s+=$2} END {print s+0}')
	if [ -n "$cpu" ]; then
		reqs=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$line")
		cpu_us=$(sed -n 's/.*"cpu_us":\([0-9.e+]*\).*/\1/p' <<<"$cpu")
		per_req=$(awk -v c="$cpu_us" -v r="$reqs" 'BEGIN { if (r > 0) printf ", server CPU %.2f us/req", c / r }')
	fi
	say "  $id $sc run $run/$RUNS: $rps req/s, p50 ${p50} us, p99 ${p99} us, $errs errors$per_req"
}

# run_wrk ID SCENARIO RUN DURATION: RUN 0 is the warm-up and is not recorded.
# The delay scenario runs a second wrk alongside: DELAY_SIDE_CONNS
# connections on /plaintext, started 1 s after the delay load (once its
# connections are open) and ending with it, recorded as delay-plaintext;
# SIDE_OK is set when that worked.
run_wrk() {
	local id=$1 sc=$2 run=$3 dur=$4 conns=$CONNS timeout=10s extra="" side_pid="" side_log=""
	case $sc in
	delay)
		conns=$DELAY_CONNS
		timeout=30s
		extra=",\"extra\":{\"conns\":$conns,\"threads\":$WRK_THREADS}"
		;;
	conns1k)
		conns=$CONNS1K
		extra=",\"extra\":{\"conns\":$conns,\"threads\":$WRK_THREADS}"
		;;
	esac
	wrk_args "$sc"
	local log=$LOGS/wrk-$id-$sc-$run.log
	if [ "$sc" = delay ]; then
		local total lag=1
		total=$(secs "$dur")
		[ "$total" -le 2 ] && lag=0
		side_log=$LOGS/wrk-$id-delay-plaintext-$run.log
		(
			sleep "$lag"
			exec "${PIN_WRK[@]}" wrk -t 1 -c "$DELAY_SIDE_CONNS" -d "$((total - lag))s" --timeout 10s \
				-s "$BENCH_DIR/wrk/plaintext.lua" "http://$ADDR/plaintext"
		) >"$side_log" 2>&1 &
		side_pid=$!
	fi
	# cpumeter reads the server tree's CPU time before and after wrk and
	# prints it after wrk's output (for delay it covers the load alongside
	# too: the report divides by both loads' requests).
	"${PIN_WRK[@]}" "$BIN/cpumeter" -pid "$SPID" -- wrk -t "$WRK_THREADS" -c "$conns" -d "$dur" --timeout "$timeout" \
		-s "$WRK_SCRIPT" "$WRK_URL" "${WRK_EXTRA[@]}" >"$log" 2>&1
	local rc=$? side_rc=0
	if [ -n "$side_pid" ]; then
		wait "$side_pid"
		side_rc=$?
	fi
	if [ "$run" = 0 ]; then
		return 0
	fi
	local failed=0
	if ! record_wrk "$id" "$sc" "$run" "$log" "$extra"; then
		say "wrk failed (exit $rc) for $id/$sc run $run: $(tail -3 "$log" | tr '\n' ' ')"
		failed=1
	fi
	if [ -n "$side_pid" ]; then
		if record_wrk "$id" delay-plaintext "$run" "$side_log" ",\"extra\":{\"conns\":$DELAY_SIDE_CONNS,\"threads\":1}"; then
			SIDE_OK=1
		else
			say "wrk on /plaintext alongside delay failed (exit $side_rc) for $id run $run: $(tail -3 "$side_log" | tr '\n' ' ')"
		fi
	fi
	return $failed
}

# skip_all ID SCENARIOS REASON records a skip for each scenario (and for
# the plaintext load that goes with delay).
skip_all() {
	local sc
	for sc in $2; do
		record_skip "$1" "$sc" "$3"
		[ "$sc" = delay ] && record_skip "$1" delay-plaintext "$3"
	done
}

# ---------------------------------------------------------------- run

host=$(uname -srm)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
wrk_version=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)
commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || true)
parser_meta=""
if contains "$SCENARIOS" parser; then
	parser_args "$SERVER_NCPU"
	parser_meta=",\"parser_command\":$(json_str "$PARSER_TEXT")"
fi
record "{\"kind\":\"meta\",\"meta\":{\"started\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"host\":$(json_str "$host"),\"cpu_model\":$(json_str "$cpu_model"),\"cores\":$NCPU,\"pinning\":$(json_str "$PINNING"),\"server_cpus\":\"$SERVER_CPUS\",\"wrk_cpus\":\"$WRK_CPUS\",\"duration\":\"$DURATION\",\"runs\":$RUNS,\"conns\":$CONNS,\"threads\":$WRK_THREADS,\"quick\":$([ "$QUICK" = 1 ] && echo true || echo false),\"go_version\":$(json_str "$(go env GOVERSION)"),\"wrk_version\":$(json_str "$wrk_version"),\"commit\":$(json_str "$commit")$parser_meta}}"

say "raw records: $RAW"

# ---------------------------------------------------------------- throughput

START_WHY=""
PORT_CHECKED=0
for id in $SERVERS; do
	scen=""
	for sc in $(scenarios_of "$id"); do contains "$SCENARIOS" "$sc" && scen+=" $sc"; done
	scen=${scen# }
	[ -n "$scen" ] || continue
	if [ -n "${MISSING[$id]:-}" ]; then
		skip_all "$id" "$scen" "${MISSING[$id]}"
		continue
	fi
	if [ "$PORT_CHECKED" = 0 ]; then
		"$BIN/probe" -free -addr "$ADDR" -wait 3s >/dev/null 2>&1 || die "$ADDR is in use by something else; set BENCH_PORT"
		PORT_CHECKED=1
	fi
	if ! start_server "$id" "$scen"; then
		skip_all "$id" "$scen" "$START_WHY"
		continue
	fi
	for sc in $scen; do
		say "$id / $sc: warm-up $WARMUP"
		run_wrk "$id" "$sc" 0 "$WARMUP"
		ok=0
		SIDE_OK=0
		for run in $(seq "$RUNS"); do
			run_wrk "$id" "$sc" "$run" "$DURATION" && ok=1
		done
		[ "$ok" = 1 ] || record_skip "$id" "$sc" "every wrk run failed (see $LOGS/wrk-$id-$sc-*.log)"
		if [ "$sc" = delay ] && [ "$SIDE_OK" = 0 ]; then
			record_skip "$id" delay-plaintext "every wrk run on /plaintext alongside delay failed (see $LOGS/wrk-$id-delay-plaintext-*.log)"
		fi
	done
	stop_server
done

# ---------------------------------------------------------------- memory

if contains "$SCENARIOS" idle; then
	for id in $IDLE_SERVERS; do
		contains "$SERVERS" "$id" || continue
		if [ -n "${MISSING[$id]:-}" ]; then
			record_skip "$id" idle "${MISSING[$id]}"
			continue
		fi
		start_server "$id" plaintext || {
			record_skip "$id" idle "$START_WHY"
			continue
		}
		say "$id: $IDLE_CONNS idle keep-alive connections"
		out=$("${PIN_WRK[@]}" "$BIN/idleconns" -addr "$ADDR" -pid "$SPID" -n "$IDLE_CONNS" 2>&1)
		line=$(sed -n 's/^IDLECONNS //p' <<<"$out" | tail -1)
		if [ -n "$line" ]; then
			say "$(grep '^idleconns:' <<<"$out")"
			record "{\"kind\":\"idle\",\"server\":\"$id\",\"idle\":$line}"
		else
			record_skip "$id" idle "idleconns failed: $(tail -1 <<<"$out")"
		fi
		stop_server
	done
fi

if contains "$SCENARIOS" flood; then
	for id in $FLOOD_SERVERS; do
		contains "$SERVERS" "$id" || continue
		if [ -n "${MISSING[$id]:-}" ]; then
			record_skip "$id" flood "${MISSING[$id]}"
			continue
		fi
		start_server "$id" plaintext || {
			record_skip "$id" flood "$START_WHY"
			continue
		}
		say "$id: one client pipelining for $FLOOD_DURATION without reading"
		out=$("${PIN_WRK[@]}" "$BIN/pipeflood" -addr "$ADDR" -pid "$SPID" -duration "$FLOOD_DURATION" -cap "$FLOOD_CAP" 2>&1)
		line=$(sed -n 's/^PIPEFLOOD //p' <<<"$out" | tail -1)
		if [ -n "$line" ]; then
			say "$(grep '^pipeflood:' <<<"$out")"
			record "{\"kind\":\"flood\",\"server\":\"$id\",\"flood\":$line}"
		else
			record_skip "$id" flood "pipeflood failed: $(tail -1 <<<"$out")"
		fi
		stop_server
	done
fi

# ---------------------------------------------------------------- api

contains "$SCENARIOS" api && api_scenario

# ---------------------------------------------------------------- reload

if contains "$SCENARIOS" reload; then
	if [ ! -x "$BENCH_DIR/reload.sh" ]; then
		record_note "reload under load: not yet (bench/reload.sh is not there yet)"
	elif [ -z "$ASYNCD" ]; then
		record_note "reload under load: skipped: ${ASYNCD_WHY:-asyncd not selected (BENCH_SERVERS)}"
	else
		# A smoke run shortens the reload load too, unless told otherwise.
		reload_duration=${RELOAD_DURATION:-}
		[ "$QUICK" = 1 ] && reload_duration=${reload_duration:-5}
		say "reload under load: running bench/reload.sh"
		out=$(RELOAD_DURATION=$reload_duration BENCH_PORT=$PORT BENCH_DURATION=$DURATION BENCH_CONNS=$CONNS ASYNCD_BIN=$ASYNCD \
			BENCH_PIN_SERVER="${PIN_SERVER[*]}" BENCH_PIN_WRK="${PIN_WRK[*]}" "$BENCH_DIR/reload.sh" 2>&1)
		rc=$?
		printf '%s\n' "$out" >"$LOGS/reload.log"
		record_note "reload under load (bench/reload.sh, exit $rc): $(tail -1 <<<"$out")"
	fi
fi

# ---------------------------------------------------------------- parser

# The parser microbenchmarks (httpparse/bench_test.go: asyncd's parser
# against wildcat and net/http on the same bytes), pinned to the server's
# CPUs with -cpu set to their count, as go test prints them; cmd/gobench
# turns the output into raw records.
if contains "$SCENARIOS" parser; then
	if [ ! -d "$ROOT/httpparse" ]; then
		record_skip "" parser "no httpparse/ package in $ROOT"
	else
		parser_args "$SERVER_NCPU"
		say "parser microbenchmarks: (cd $ROOT && ${PIN_SERVER[*]} $PARSER_TEXT)"
		plog=$LOGS/parser-bench.log
		(cd "$ROOT" && "${PIN_SERVER[@]}" go test "${PARSER_ARGS[@]}" ./httpparse/) >"$plog" 2>&1
		rc=$?
		if [ "$rc" != 0 ]; then
			record_skip "" parser "go test -bench ./httpparse/ failed (exit $rc): $(tail -1 "$plog") (see $plog)"
		elif ! "$BIN/gobench" -procs "$SERVER_NCPU" <"$plog" >>"$RAW" 2>"$LOGS/gobench.log"; then
			record_skip "" parser "cmd/gobench could not read the output: $(tail -1 "$LOGS/gobench.log") (see $plog)"
		else
			say "parser microbenchmarks: $(grep -c '^Benchmark' "$plog") result lines ($plog)"
		fi
	fi
fi

# ---------------------------------------------------------------- report

trap - EXIT
base=$RESULTS/$STAMP
"$BIN/report" -in "$RAW" -csv "$base.csv" -json "$base.json" -quiet || die "report failed"
rm -f "$RESULTS/latest.svg"
if "$BIN/chart" -in "$base.json" -out "$base.svg" 2>"$LOGS/chart.log"; then
	cp "$base.svg" "$RESULTS/latest.svg"
	chart=(-chart "$STAMP.svg")
	latest_chart=(-chart latest.svg)
	docs_chart=(-chart benchmarks.svg)
else
	say "no chart: $(cat "$LOGS/chart.log")"
	chart=()
	latest_chart=()
	docs_chart=()
fi
"$BIN/report" -in "$RAW" -md "$base.md" "${chart[@]}" || die "report failed"
"$BIN/report" -in "$RAW" -md "$RESULTS/latest.md" "${latest_chart[@]}" -quiet
cp "$base.json" "$RESULTS/latest.json"
cp "$base.csv" "$RESULTS/latest.csv"
say "wrote $base.{raw.jsonl,md,csv,json,svg} and $RESULTS/latest.{md,csv,json,svg}"
if [ "$PUBLISH" = 1 ]; then
	mkdir -p "$DOCS"
	"$BIN/report" -in "$RAW" -md "$DOCS/benchmarks-bench.md" "${docs_chart[@]}" -quiet || die "publish failed"
	if [ -f "$base.svg" ]; then cp "$base.svg" "$DOCS/benchmarks.svg"; else rm -f "$DOCS/benchmarks.svg"; fi
	say "published $DOCS/benchmarks-bench.md and $DOCS/benchmarks.svg"
fi
