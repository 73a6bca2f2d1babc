#!/usr/bin/env bash
# Apache Kafka (KRaft, single node) for local runs and tests: fetch | start | stop | status.
# The broker comes from Maven Central through deploy/kafka/pom.xml; nothing else is downloaded.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LIBS="$ROOT/.cache/kafka/libs"
STATE="${KAFKA_STATE_DIR:-$ROOT/var/kafka}"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
HEAP="${KAFKA_HEAP:-768m}"
PIDFILE="$STATE/kafka.pid"
LOG="${KAFKA_LOG:-${VAR_DIR:-$ROOT/var}/log/kafka.log}"
# A variant broker (the SASL/SCRAM test broker): its own template, its inter-broker SCRAM user
# (@SASL_ADMIN_USER@/@SASL_ADMIN_PASSWORD@ in the template) and extra `StorageTool format`
# arguments, e.g. --add-scram 'SCRAM-SHA-512=[name=ingest,password=...]' (users exist from the start).
TEMPLATE="${KAFKA_PROPERTIES_TMPL:-$ROOT/deploy/kafka/server.properties.tmpl}"
read -r -a FORMAT_ARGS <<< "${KAFKA_FORMAT_ARGS:-}"

fetch() {
  if ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then return 0; fi
  echo "kafka: fetching the broker from Maven Central (once)"
  mkdir -p "$LIBS"
  mvn -q -B -Dstyle.color=never -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$LIBS" -DincludeScope=runtime
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

java_cmd() {
  java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
       -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -cp "$LIBS/*" "$@"
}

start() {
  fetch
  if running; then echo "kafka: already running (pid $(cat "$PIDFILE"))"; return 0; fi
  mkdir -p "$STATE/data" "$(dirname "$LOG")"
  sed -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" -e "s#@DATA_DIR@#$STATE/data#g" \
      -e "s#@SASL_ADMIN_USER@#${KAFKA_SASL_ADMIN_USER:-}#g" -e "s#@SASL_ADMIN_PASSWORD@#${KAFKA_SASL_ADMIN_PASSWORD:-}#g" \
      "$TEMPLATE" > "$STATE/server.properties"
  chmod 600 "$STATE/server.properties"
  if [ ! -f "$STATE/data/meta.properties" ]; then
    java_cmd kafka.tools.StorageTool format -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
             -c "$STATE/server.properties" ${FORMAT_ARGS[@]+"${FORMAT_ARGS[@]}"} >>"$LOG" 2>&1
  fi
  # exec in the subshell so that the recorded pid is the JVM's own.
  ( exec java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -cp "$LIBS/*" \
        kafka.Kafka "$STATE/server.properties" ) </dev/null >>"$LOG" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 180); do
    if answering; then echo "kafka: up on 127.0.0.1:$PORT"; return 0; fi
    running || { echo "kafka: died on start, see $LOG" >&2; tail -20 "$LOG" >&2; return 1; }
    sleep 0.5
  done
  echo "kafka: not answering after 90 s, see $LOG" >&2; return 1
}

stop() {
  running || { rm -f "$PIDFILE"; return 0; }
  local pid; pid="$(cat "$PIDFILE")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"; echo "kafka: stopped"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) running && answering && echo "kafka: up" || { echo "kafka: down"; exit 1; } ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
