#!/usr/bin/env bash
# Installs the external servers the tests use when they are missing:
# Debian's nats-server (the fault suite restarts an external server),
# docker-compose (only to validate deploy/compose: `config` needs no engine)
# and ClickHouse (through clickhouse.sh ensure). Needs root and apt-get for an
# install; without them it only reports what is missing and the tests that
# need it skip with a message.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

"$here/clickhouse.sh" ensure

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "deps.sh: installing Debian's ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
		# nats-server's own service is not used: tests start their own server.
	else
		echo "deps.sh: ${missing[*]} not found (sudo apt-get install ${missing[*]}); the tests that need them skip" >&2
	fi
fi
