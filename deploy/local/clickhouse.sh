#!/usr/bin/env bash
# Project-local ClickHouse for `make run` and `make test`.
#
#   deploy/local/clickhouse.sh ensure            install clickhouse-server if it is missing
#   deploy/local/clickhouse.sh start DIR TCP HTTP start a server with its data under DIR on 127.0.0.1
#   deploy/local/clickhouse.sh stop DIR           stop the server started for DIR
#   deploy/local/clickhouse.sh status DIR         exit 0 when that server answers
#
# The server is Debian's clickhouse-server (18.16 on bookworm) or any newer
# `clickhouse` binary on PATH; it listens on loopback only and keeps
# everything (data, logs, pid) under DIR, so it never touches a system install.
set -euo pipefail

die() { echo "clickhouse.sh: $*" >&2; exit 1; }

server_cmd() {
	if command -v clickhouse-server >/dev/null 2>&1; then
		echo "clickhouse-server"
	elif command -v clickhouse >/dev/null 2>&1; then
		echo "clickhouse server"
	fi
}

client_cmd() {
	if command -v clickhouse-client >/dev/null 2>&1; then
		echo "clickhouse-client"
	elif command -v clickhouse >/dev/null 2>&1; then
		echo "clickhouse client"
	fi
}

ensure() {
	if [ -n "$(server_cmd)" ] && [ -n "$(client_cmd)" ]; then
		return 0
	fi
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "clickhouse.sh: installing Debian's clickhouse-server and clickhouse-client" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
		# The package's own service is not used: the project starts its own server.
		return 0
	fi
	die "no ClickHouse found: install clickhouse-server and clickhouse-client (Debian/Ubuntu: sudo apt-get install clickhouse-server clickhouse-client), or put a 'clickhouse' binary on PATH"
}

write_config() {
	local dir=$1 tcp=$2 http=$3
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
	cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$tcp</tcp_port>
    <http_port>$http</http_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
XML
	cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <readonly><readonly>1</readonly></readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
            <access_management>1</access_management>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
}

answers() {
	local tcp=$1
	$(client_cmd) --host 127.0.0.1 --port "$tcp" --query "SELECT 1" >/dev/null 2>&1
}

start() {
	local dir=$1 tcp=$2 http=$3
	ensure
	dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
	if answers "$tcp"; then
		echo "clickhouse.sh: already running on 127.0.0.1:$tcp (pid $(cat "$dir/pid" 2>/dev/null || echo '?'))" >&2
		return 0
	fi
	write_config "$dir" "$tcp" "$http"
	# shellcheck disable=SC2046
	# 18.16 does not write --pid-file when it is not daemonized: record the pid ourselves.
	nohup $(server_cmd) --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
	echo $! >"$dir/pid"
	for _ in $(seq 1 120); do
		if answers "$tcp"; then
			echo "clickhouse.sh: ClickHouse on 127.0.0.1:$tcp (http $http), data in $dir" >&2
			return 0
		fi
		sleep 0.5
	done
	tail -20 "$dir/log/stdout.log" "$dir/log/clickhouse-server.err.log" >&2 2>/dev/null || true
	die "ClickHouse did not answer on 127.0.0.1:$tcp within 60s (logs in $dir/log)"
}

stop() {
	local dir=$1
	[ -f "$dir/pid" ] || { echo "clickhouse.sh: not running (no $dir/pid)" >&2; return 0; }
	local pid
	pid=$(cat "$dir/pid")
	if kill "$pid" 2>/dev/null; then
		for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/pid"
	echo "clickhouse.sh: stopped ClickHouse of $dir" >&2
}

case "${1:-}" in
ensure) ensure ;;
start) [ $# -eq 4 ] || die "usage: $0 start DIR TCP_PORT HTTP_PORT"; start "$2" "$3" "$4" ;;
stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
status) [ $# -eq 2 ] || die "usage: $0 status DIR"; [ -f "$2/pid" ] && kill -0 "$(cat "$2/pid")" 2>/dev/null ;;
*) die "usage: $0 ensure | start DIR TCP HTTP | stop DIR | status DIR" ;;
esac
