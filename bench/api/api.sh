# bench/api/api.sh - the api scenario of bench/run.sh, which sources it
# (it uses run.sh's say, record, record_skip, apt_install, record_wrk,
# stop_server, SPID/SID, PIN_SERVER/PIN_WRK, BIN, LOGS, ADDR, RUNS,
# DURATION, WARMUP, SERVER_NCPU, WRK_THREADS, UNSET_ASYNCD).
#
# examples/dbapi's users API (net/http ServeMux over pgx/v5's pgxpool)
# against a throw-away PostgreSQL: Debian's postgresql (installed when
# missing), initdb in a temporary directory, a private unix socket and no
# TCP port, schema.sql seeded with API_USERS users, stopped and removed
# afterwards. Served by asyncd async and gthread (asyncd-dbapi, asyncd with
# the users plugin compiled in, epoll), plain net/http (dbapi-standalone:
# the same handler under http.Server) and Gunicorn + gevent (bench/api/app.py,
# psycopg2 made cooperative by psycogreen), each with API_POOL database
# connections in all (divided among its worker processes), under random
# GET /users/{id} at API_CONNS and CONNS1K connections. Rounds alternate
# the servers, each started fresh per round.

API_SERVERS="asyncd-epoll-async asyncd-epoll-gthread nethttp gunicorn-gevent"
API_CONNS=${BENCH_API_CONNS:-100}
API_POOL=${BENCH_API_POOL:-24}
API_USERS=${BENCH_API_USERS:-10000}
API_THREADS=${BENCH_API_THREADS:-16}
API_DIR=$BENCH_DIR/api
DBAPI_DIR=$ROOT/examples/dbapi

API_PGDIR=""
API_PGBIN=""
API_PGPID=""
API_PGUSER=""

# api_servers prints the selected servers that take part in api.
api_servers() {
	local s out=""
	for s in $API_SERVERS; do contains "$SERVERS" "$s" && out+=" $s"; done
	printf '%s' "${out# }"
}

# api_skip_all REASON records a skip of both api scenarios for every server.
api_skip_all() {
	local s
	for s in $(api_servers); do
		record_skip "$s" api "$1"
		record_skip "$s" api1k "$1"
	done
}

as_pg() { if [ -n "$API_PGUSER" ]; then runuser -u "$API_PGUSER" -- "$@"; else "$@"; fi; }

# api_pg_start installs (when missing), initializes, starts and seeds
# PostgreSQL; sets API_PGDIR, API_PGPID, API_DSN_GO and API_DSN_PY, or
# API_WHY.
api_pg_start() {
	API_PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	if [ ! -x "${API_PGBIN:-/nonexistent}/initdb" ]; then
		if ! apt_install postgresql; then
			API_WHY="PostgreSQL is missing and could not be installed: $APT_WHY"
			return 1
		fi
		API_PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
		[ -x "${API_PGBIN:-/nonexistent}/initdb" ] || {
			API_WHY="postgresql installed but no /usr/lib/postgresql/*/bin/initdb"
			return 1
		}
	fi
	API_PGDIR=$(mktemp -d /tmp/bench-api-pg.XXXXXX) || {
		API_WHY="mktemp failed"
		return 1
	}
	if [ "$(id -u)" = 0 ]; then # initdb refuses to run as root
		API_PGUSER=postgres
		id postgres >/dev/null 2>&1 || API_PGUSER=nobody
		chown "$API_PGUSER": "$API_PGDIR"
	fi
	local log=$LOGS/api-postgres.log
	say "api: PostgreSQL ($API_PGBIN) in $API_PGDIR, socket only, seeding $API_USERS users"
	if ! as_pg "$API_PGBIN/initdb" -D "$API_PGDIR/data" -U bench --auth=trust -E UTF8 --no-sync >"$log" 2>&1; then
		API_WHY="initdb failed: $(tail -1 "$log")"
		return 1
	fi
	# fsync off: the data is thrown away; the load only reads.
	if ! as_pg "$API_PGBIN/pg_ctl" -D "$API_PGDIR/data" -l "$API_PGDIR/postgres.log" -w start \
		-o "-k $API_PGDIR -c listen_addresses= -c max_connections=$((API_POOL * 2 + 20)) -c fsync=off -c synchronous_commit=off" >>"$log" 2>&1; then
		API_WHY="PostgreSQL did not start: $(tail -1 "$API_PGDIR/postgres.log" 2>/dev/null)"
		return 1
	fi
	API_PGPID=$(head -1 "$API_PGDIR/data/postmaster.pid")
	if ! "$API_PGBIN/createdb" -h "$API_PGDIR" -U bench bench >>"$log" 2>&1 ||
		! "$API_PGBIN/psql" -h "$API_PGDIR" -U bench -d bench -q -v seed_users="$API_USERS" -f "$DBAPI_DIR/schema.sql" >>"$log" 2>&1; then
		API_WHY="seeding the database failed: $(tail -1 "$log")"
		return 1
	fi
	API_DSN_GO="postgres://bench@/bench?host=$API_PGDIR"
	API_DSN_PY="host=$API_PGDIR dbname=bench user=bench"
	return 0
}

api_pg_stop() {
	[ -n "$API_PGDIR" ] || return 0
	as_pg "$API_PGBIN/pg_ctl" -D "$API_PGDIR/data" -m fast -w stop >>"$LOGS/api-postgres.log" 2>&1 ||
		say "api: pg_ctl stop failed (see $LOGS/api-postgres.log)"
	rm -rf "$API_PGDIR"
	API_PGDIR=""
	API_PGPID=""
}

# api_build builds asyncd-dbapi and dbapi-standalone (examples/dbapi, its
# own module) when a server needs them; sets API_MISSING[id] otherwise.
declare -A API_MISSING
api_build() {
	local need=0 s
	for s in $(api_servers); do [ "$s" != gunicorn-gevent ] && need=1; done
	if [ "$need" = 1 ]; then
		say "api: building examples/dbapi (asyncd-dbapi, dbapi-standalone)"
		if ! (cd "$DBAPI_DIR" && go build -o "$BIN/asyncd-dbapi" . && go build -o "$BIN/dbapi-standalone" ./standalone) >"$LOGS/build-dbapi.log" 2>&1; then
			for s in asyncd-epoll-async asyncd-epoll-gthread nethttp; do
				API_MISSING[$s]="examples/dbapi did not build: $(tail -1 "$LOGS/build-dbapi.log")"
			done
		fi
	fi
	if contains "$(api_servers)" gunicorn-gevent; then
		if ! gunicorn_ok psycopg2 psycogreen.gevent; then
			if ! apt_install gunicorn python3-gevent python3-psycopg2 python3-psycogreen || ! gunicorn_ok psycopg2 psycogreen.gevent; then
				API_MISSING[gunicorn-gevent]=${APT_WHY:-"gunicorn, gevent, psycopg2 or psycogreen missing after install"}
			fi
		fi
	fi
}

# api_cmd ID CONNS fills CMD and API_ENV for a server of the api scenario.
api_cmd() {
	local per=$((API_POOL / SERVER_NCPU))
	[ "$per" -lt 1 ] && per=1
	API_ENV=()
	case $1 in
	asyncd-epoll-async | asyncd-epoll-gthread)
		CMD=("$BIN/asyncd-dbapi" -c "$API_DIR/asyncd-api.yaml" -w "$SERVER_NCPU" -k "${1##*-}" --backend epoll -b "$ADDR"
			--worker-connections "$(($2 + 100 > 1000 ? $2 + 100 : 1000))")
		[ "$1" = asyncd-epoll-gthread ] && CMD+=(--threads "$API_THREADS")
		API_ENV=("DATABASE_URL=$API_DSN_GO&pool_max_conns=$per")
		;;
	nethttp)
		CMD=("$BIN/dbapi-standalone" -b "$ADDR")
		API_ENV=("DATABASE_URL=$API_DSN_GO&pool_max_conns=$API_POOL")
		;;
	gunicorn-gevent)
		CMD=("$GUNICORN" -k gevent -w "$SERVER_NCPU" --worker-connections 10000 --keep-alive 120
			--graceful-timeout 5 --backlog 4096 -b "$ADDR" --chdir "$API_DIR" --log-level warning app:app)
		API_ENV=("API_PG_DSN=$API_DSN_PY" "API_POOL=$per")
		;;
	esac
}

# api_start ID CONNS starts a server in its own process group, pinned like
# every server, and waits until GET /users/1 answers 200.
api_start() {
	local id=$1 log=$LOGS/api-$1.log
	api_cmd "$id" "$2"
	say "api: start $id: ${PIN_SERVER[*]} ${CMD[*]}"
	setsid env "${UNSET_ASYNCD[@]}" "${API_ENV[@]}" "${PIN_SERVER[@]}" "${CMD[@]}" >>"$log" 2>&1 </dev/null &
	SPID=$!
	SID=$id
	local _
	for _ in $(seq 300); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/users/1" 2>/dev/null)" = 200 ] && return 0
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
	done
	START_WHY="GET /users/1 did not answer 200 within 30 s: $(tail -1 "$log")"
	stop_server
	return 1
}

# api_wrk ID SCENARIO CONNS RUN DURATION: RUN 0 is the warm-up, not
# recorded. cpumeter measures the server's tree (CPU and peak RSS) and,
# apart, PostgreSQL's.
api_wrk() {
	local id=$1 sc=$2 conns=$3 run=$4 dur=$5 log=$LOGS/wrk-$1-$2-$4.log
	USERS=$API_USERS "${PIN_WRK[@]}" "$BIN/cpumeter" -pid "$SPID" -rss -also "$API_PGPID" -- \
		wrk -t "$WRK_THREADS" -c "$conns" -d "$dur" --timeout 10s -s "$BENCH_DIR/wrk/api.lua" "http://$ADDR" >"$log" 2>&1
	local rc=$?
	[ "$run" = 0 ] && return 0
	record_wrk "$id" "$sc" "$run" "$log" ",\"extra\":{\"conns\":$conns,\"threads\":$WRK_THREADS}" && return 0
	say "wrk failed (exit $rc) for $id/$sc run $run: $(tail -3 "$log" | tr '\n' ' ')"
	return 1
}

# api_scenario runs both api scenarios: per connection count, RUNS rounds,
# each round every server in turn, started fresh, warmed up, measured.
api_scenario() {
	local servers sc conns run id
	servers=$(api_servers)
	[ -n "$servers" ] || {
		say "api: none of [$API_SERVERS] selected; skipped"
		return 0
	}
	if ! "$BIN/probe" -free -addr "$ADDR" -wait 3s >/dev/null 2>&1; then
		api_skip_all "$ADDR is in use by something else; set BENCH_PORT"
		return 0
	fi
	api_build
	if ! api_pg_start; then
		api_skip_all "$API_WHY"
		api_pg_stop
		return 0
	fi
	declare -A ok
	for sc in api api1k; do
		conns=$API_CONNS
		[ "$sc" = api1k ] && conns=$CONNS1K
		for run in $(seq "$RUNS"); do
			for id in $servers; do
				[ -n "${API_MISSING[$id]:-}" ] && continue
				if ! api_start "$id" "$conns"; then
					API_MISSING[$id]=$START_WHY
					continue
				fi
				say "api: $id / $sc ($conns conns) round $run/$RUNS: warm-up $WARMUP"
				api_wrk "$id" "$sc" "$conns" 0 "$WARMUP"
				api_wrk "$id" "$sc" "$conns" "$run" "$DURATION" && ok[$id/$sc]=1
				stop_server
			done
		done
	done
	for id in $servers; do
		for sc in api api1k; do
			if [ -n "${API_MISSING[$id]:-}" ]; then
				[ -z "${ok[$id/$sc]:-}" ] && record_skip "$id" "$sc" "${API_MISSING[$id]}"
			elif [ -z "${ok[$id/$sc]:-}" ]; then
				record_skip "$id" "$sc" "every wrk run failed (see $LOGS/wrk-$id-$sc-*.log)"
			fi
		done
	done
	api_pg_stop
	record_note "api: PostgreSQL $("$API_PGBIN/postgres" --version 2>/dev/null | awk '{print $3}') on a unix socket, not pinned (the server is pinned to ${SERVER_CPUS:-all CPUs}, wrk to ${WRK_CPUS:-all CPUs}); pool of $API_POOL connections per server (divided among its $SERVER_NCPU worker process(es)); $API_USERS users; gthread threads: $API_THREADS"
}
