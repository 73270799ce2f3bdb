#!/usr/bin/env bash
# Installs the external servers the tests use when they are missing:
# Debian's nats-server (the fault suite restarts an external server) and
# ClickHouse (through clickhouse.sh ensure). Needs root and apt-get for an
# install; without them it only reports what is missing and the tests that
# need it skip with a message.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

"$here/clickhouse.sh" ensure

if ! command -v nats-server >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "deps.sh: installing Debian's nats-server" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq nats-server >/dev/null
		# The package's service is not used: tests start their own server.
	else
		echo "deps.sh: nats-server not found (sudo apt-get install nats-server); the external-server fault test will skip" >&2
	fi
fi
