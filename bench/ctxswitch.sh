#!/usr/bin/env bash
# Context switches and CPU of each thread of asyncd's serving process under
# wrk: how often the Go runtime's monitor thread (sysmon) wakes and how
# often the loop thread is preempted. docs/benchmarks.md (hot-path items 4
# and 6) quotes it.
#
#   bench/ctxswitch.sh [ASYNCD_BIN] [BACKEND] [SCENARIO]
#
# Defaults: bin/asyncd, epoll, plaintext. The server runs on CPU0 with one
# loop and the sync class, wrk (1 thread, 256 connections, 10 s) on CPU1;
# the counts are taken over 4 s from the 3rd second. Needs wrk and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/asyncd}
backend=${2:-epoll}
scen=${3:-plaintext}
addr=127.0.0.1:18991
for c in wrk taskset; do
	command -v "$c" >/dev/null || { echo "ctxswitch: $c is not installed (apt-get install wrk util-linux)" >&2; exit 2; }
done
if ss -ltn 2>/dev/null | grep -q " $addr "; then
	echo "ctxswitch: $addr is already in use: another server would share it (SO_REUSEPORT) and spoil the counts" >&2
	exit 2
fi
tmp=$(mktemp -d)
trap '[ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
taskset -c 0 "$bin" -c bench/asyncd-bench.yaml -w 1 -k sync --backend "$backend" -b "$addr" >"$tmp/server.log" 2>&1 &
srv=$!
sleep 1.5
taskset -c 1 wrk -t1 -c256 -d10s -s "bench/wrk/$scen.lua" "http://$addr/plaintext" >"$tmp/wrk.txt" 2>&1 &
wrk=$!
sleep 3
# The supervisor's child is the serving process.
pid=$(pgrep -P "$srv" | head -1 || true)
pid=${pid:-$srv}
snap() {
	for t in /proc/"$pid"/task/*; do
		printf '%s %s %s\n' "${t##*/}" \
			"$(awk '/^voluntary_ctxt/{v=$2}/^nonvoluntary_ctxt/{n=$2}END{print v, n}' "$t/status")" \
			"$(awk '{print $14+$15}' "$t/stat")"
	done | sort
}
snap >"$tmp/a"
sleep 4
snap >"$tmp/b"
wait "$wrk"
rps=$(awk '/Requests\/sec/{print $2}' "$tmp/wrk.txt")
echo "asyncd $bin, backend $backend, $scen: $rps requests/s (wrk, 10 s); per thread over 4 s (threads with any activity):"
join "$tmp/a" "$tmp/b" | awk '{v=$5-$2; n=$6-$3; c=$7-$4; if (v+n+c > 0) printf "  tid %s: voluntary %d, involuntary %d, CPU %d ticks\n", $1, v, n, c}'
