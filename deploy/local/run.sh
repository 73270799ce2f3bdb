#!/usr/bin/env bash
# `make run` / `make stop`: the whole pipeline on this machine.
#   start: ClickHouse (project-local) → watchfloor run (embedded NATS) →
#          wfsensor replay of deploy/samples → counts in ClickHouse
#   stop:  the pipeline, then ClickHouse
set -euo pipefail

: "${DATA:=.data}" "${BIN:=bin}" "${CH_DIR:=$DATA/clickhouse}" "${CH_TCP:=19000}" "${CH_HTTP:=18123}"
: "${NATS_LISTEN:=127.0.0.1:14222}" "${METRICS_LISTEN:=127.0.0.1:19464}"
AGENCY=demo
PIDFILE=$DATA/watchfloor.pid
LOG=$DATA/watchfloor.log
here=$(cd "$(dirname "$0")" && pwd)

client() {
	if command -v clickhouse-client >/dev/null 2>&1; then clickhouse-client "$@"; else clickhouse client "$@"; fi
}
q() { client --host 127.0.0.1 --port "$CH_TCP" --query "$1"; }

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

stop_pipeline() {
	if running; then
		local pid; pid=$(cat "$PIDFILE")
		kill -TERM "$pid"
		for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$pid" 2>/dev/null || true
		echo "run.sh: stopped watchfloor (pid $pid)"
	fi
	rm -f "$PIDFILE"
}

case "${1:-}" in
stop)
	stop_pipeline
	"$here/clickhouse.sh" stop "$CH_DIR"
	exit 0
	;;
start) ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

mkdir -p "$DATA"
"$here/clickhouse.sh" start "$CH_DIR" "$CH_TCP" "$CH_HTTP"

# A second `make run` restarts the pipeline so it runs the binary just built.
stop_pipeline
echo "run.sh: starting watchfloor run (embedded NATS on $NATS_LISTEN, log in $LOG)"
# The bundled samples date from 2013 and 2019: retention is off here, or the
# retention job would drop them as soon as they are stored.
nohup "$BIN/watchfloor" run \
	--data-dir "$DATA/watchfloor" \
	--nats.listen "$NATS_LISTEN" \
	--clickhouse.addr "127.0.0.1:$CH_TCP" \
	--metrics.listen "$METRICS_LISTEN" \
	--rules detect/rules \
	--clickhouse.event-retention-days 0 \
	--clickhouse.detection-retention-days 0 >"$LOG" 2>&1 &
echo $! >"$PIDFILE"
for i in $(seq 1 120); do
	if curl -fsS "http://$METRICS_LISTEN/readyz" >/dev/null 2>&1; then break; fi
	if ! running; then echo "run.sh: watchfloor exited; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1; fi
	[ "$i" = 120 ] && { echo "run.sh: watchfloor not ready after 60s (see $LOG)" >&2; exit 1; }
	sleep 0.5
done

sent=0
replay() {
	local format=$1; shift
	"$BIN/wfsensor" replay --nats "nats://$NATS_LISTEN" --agency "$AGENCY" --sensor-id demo-sensor --format "$format" "$@"
}
replay zeek_dns deploy/samples/zeek_dns.json.log deploy/samples/zeek_dns.tsv.log
replay syslog deploy/samples/auth.log
# Records = non-empty lines that are not Zeek '#' header directives.
sent=$(cat deploy/samples/zeek_dns.json.log deploy/samples/zeek_dns.tsv.log deploy/samples/auth.log | grep -cv -e '^#' -e '^$')

# Wait until every record is accounted for (events + dead letters).
stored=0
for _ in $(seq 1 60); do
	stored=$(q "SELECT (SELECT count() FROM watchfloor.events FINAL WHERE agency='$AGENCY') + (SELECT count() FROM watchfloor.dead_letters FINAL WHERE agency='$AGENCY')")
	[ "$stored" -ge "$sent" ] && break
	sleep 0.5
done

events=$(q "SELECT count() FROM watchfloor.events FINAL WHERE agency='$AGENCY'")
dead=$(q "SELECT count() FROM watchfloor.dead_letters FINAL WHERE agency='$AGENCY'")
detections=$(q "SELECT count() FROM watchfloor.detections FINAL WHERE agency='$AGENCY'")
cat <<MSG

Watchfloor is running.
  records replayed:  $sent
  events stored:     $events
  dead letters:      $dead
  detections:        $detections

Detections by rule:
$(q "SELECT rule_level, rule_title, count() AS n FROM watchfloor.detections FINAL WHERE agency='$AGENCY' GROUP BY rule_level, rule_title ORDER BY n DESC" | sed 's/^/  /')

Look for yourself:
  clickhouse-client --host 127.0.0.1 --port $CH_TCP --query "SELECT time, rule_level, rule_title FROM watchfloor.detections FINAL ORDER BY time LIMIT 20"
  clickhouse-client --host 127.0.0.1 --port $CH_TCP --query "SELECT class_uid, count() FROM watchfloor.events FINAL GROUP BY class_uid"
Send more:   $BIN/wfsensor replay --nats nats://$NATS_LISTEN --agency $AGENCY --format zeek_dns FILE
Metrics:     curl http://$METRICS_LISTEN/metrics      Pipeline log: $LOG
Stop it all: make stop
MSG
if [ "$((events + dead))" -ne "$sent" ] || [ "$detections" -lt 1 ]; then
	echo "run.sh: expected $sent records and at least one detection in ClickHouse" >&2
	exit 1
fi
