#!/usr/bin/env bash
# Installs the programs some tests check the repository's files against,
# where they are missing: nginx (deploy/nginx: `nginx -t` and a real proxy
# in front of asyncd), PostgreSQL (examples/dbapi against a real database),
# systemd-analyze (deploy/systemd). Without them those tests skip, each
# saying why; CI (.ci/run) runs this first so that none of them skips
# there. Debian's packages, with apt-get; it says what it could not install
# and why, and never fails the run by itself.
set -u
want=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || want+=(nginx-light)
command -v openssl >/dev/null 2>&1 || want+=(openssl)
{ command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; } || want+=(postgresql)
command -v systemd-analyze >/dev/null 2>&1 || want+=(systemd)
if [ ${#want[@]} -eq 0 ]; then
	echo "test-deps: nginx, openssl, PostgreSQL and systemd-analyze are installed"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: not installing ${want[*]}: no apt-get here; the tests that need them skip, saying so"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "test-deps: not installing ${want[*]}: needs root; the tests that need them skip, saying so"
	exit 0
fi
echo "test-deps: installing ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${want[@]}" >/tmp/test-deps.log 2>&1; then
	apt-get update -q >/dev/null 2>&1
	if ! apt-get install -y -q --no-install-recommends "${want[@]}" >/tmp/test-deps.log 2>&1; then
		echo "test-deps: apt-get could not install ${want[*]} (log: /tmp/test-deps.log); the tests that need them skip, saying so"
		tail -3 /tmp/test-deps.log
	fi
fi
# Debian starts the nginx it installs on port 80; the tests run their own.
if [ -x /usr/sbin/nginx ] && command -v systemctl >/dev/null 2>&1; then
	systemctl stop nginx >/dev/null 2>&1 || true
fi
exit 0
