#!/usr/bin/env bash
# Apache Kafka (KRaft) for local runs and tests: fetch | start | stop | status | bootstrap
#   | start-node N | kill-node N (kill -9, for fault tests).
# The broker comes from Maven Central through deploy/kafka/pom.xml; nothing else is downloaded.
# KAFKA_BROKERS=1 (default): one combined controller+broker on KAFKA_PORT/KAFKA_CONTROLLER_PORT,
# state in KAFKA_STATE_DIR. KAFKA_BROKERS=3: three combined nodes with static voters, each with
# its own ports and directory KAFKA_STATE_DIR/node-N:
#   node 1: KAFKA_PORT, KAFKA_CONTROLLER_PORT (KAFKA_PORT+1)
#   node 2: KAFKA_PORT+2, controller KAFKA_PORT+4;  node 3: KAFKA_PORT+3, controller KAFKA_PORT+5
# (other platforms sit 1000 ports apart, so +2..+5 stays clear of them). Topics then get
# replication 3 and min.insync.replicas=2 (`bootstrap` prints the three addresses).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LIBS="$ROOT/.cache/kafka/libs"
STATE="${KAFKA_STATE_DIR:-$ROOT/var/kafka}"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
BROKERS="${KAFKA_BROKERS:-1}"
[[ "$BROKERS" =~ ^[13]$ ]] || { echo "kafka: KAFKA_BROKERS must be 1 or 3" >&2; exit 2; }
if [ "$BROKERS" = 3 ]; then HEAP="${KAFKA_HEAP:-512m}" REPLICATION=3 MIN_ISR=2; else HEAP="${KAFKA_HEAP:-768m}" REPLICATION=1 MIN_ISR=1; fi
LOG="${KAFKA_LOG:-${VAR_DIR:-$ROOT/var}/log/kafka.log}"
# A variant broker (the SASL/SCRAM test broker): its own template, its inter-broker SCRAM user
# (@SASL_ADMIN_USER@/@SASL_ADMIN_PASSWORD@ in the template) and extra `StorageTool format`
# arguments, e.g. --add-scram 'SCRAM-SHA-512=[name=ingest,password=...]' (users exist from the start).
TEMPLATE="${KAFKA_PROPERTIES_TMPL:-$ROOT/deploy/kafka/server.properties.tmpl}"
read -r -a FORMAT_ARGS <<< "${KAFKA_FORMAT_ARGS:-}"
# More JVM options, e.g. -XX:TieredStopAtLevel=1 for a throwaway test cluster that must start fast.
read -r -a JVM_OPTS <<< "${KAFKA_JVM_OPTS:-}"

node_port() { case "$1" in 1) echo "$PORT" ;; *) echo $((PORT + $1)) ;; esac; }
node_controller_port() { case "$1" in 1) echo "$CONTROLLER_PORT" ;; *) echo $((PORT + $1 + 2)) ;; esac; }
node_dir() { if [ "$BROKERS" = 1 ]; then echo "$STATE"; else echo "$STATE/node-$1"; fi; }
node_log() { if [ "$BROKERS" = 1 ]; then echo "$LOG"; else echo "${LOG%.log}-$1.log"; fi; }
pidfile() { echo "$(node_dir "$1")/kafka.pid"; }
nodes() { seq 1 "$BROKERS"; }
voters() {
  local out="" i
  for i in $(nodes); do out="$out${out:+,}$i@127.0.0.1:$(node_controller_port "$i")"; done
  echo "$out"
}
bootstrap() {
  local out="" i
  for i in $(nodes); do out="$out${out:+,}127.0.0.1:$(node_port "$i")"; done
  echo "$out"
}

fetch() {
  if ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then return 0; fi
  echo "kafka: fetching the broker from Maven Central (once)"
  mkdir -p "$LIBS"
  mvn -q -B -Dstyle.color=never -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$LIBS" -DincludeScope=runtime
}

running() { local f; f="$(pidfile "$1")"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$(node_port "$1")") 2>/dev/null; }

# The JVM, logging through deploy/kafka/log4j2.properties to the rotated file $1.
java_cmd() {
  local log="$1"; shift
  java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true ${JVM_OPTS[@]+"${JVM_OPTS[@]}"} \
       -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -Dkafka.log.file="$log" \
       -cp "$LIBS/*" "$@"
}

cluster_id() {  # one id for every node of the cluster, made once
  [ -s "$STATE/cluster.id" ] || { mkdir -p "$STATE"; java_cmd "$(node_log 1)" kafka.tools.StorageTool random-uuid 2>/dev/null > "$STATE/cluster.id"; }
  cat "$STATE/cluster.id"
}

start_node() {  # N: render its properties, format its storage once, start its JVM (no wait)
  local i="$1" dir log
  dir="$(node_dir "$i")" log="$(node_log "$i")"
  if running "$i"; then return 0; fi
  mkdir -p "$dir/data" "$(dirname "$log")"
  sed -e "s#@NODE_ID@#$i#g" -e "s#@VOTERS@#$(voters)#g" -e "s#@REPLICATION@#$REPLICATION#g" -e "s#@MIN_ISR@#$MIN_ISR#g" \
      -e "s#@PORT@#$(node_port "$i")#g" -e "s#@CONTROLLER_PORT@#$(node_controller_port "$i")#g" -e "s#@DATA_DIR@#$dir/data#g" \
      -e "s#@SASL_ADMIN_USER@#${KAFKA_SASL_ADMIN_USER:-}#g" -e "s#@SASL_ADMIN_PASSWORD@#${KAFKA_SASL_ADMIN_PASSWORD:-}#g" \
      "$TEMPLATE" > "$dir/server.properties"
  chmod 600 "$dir/server.properties"
  if [ ! -f "$dir/data/meta.properties" ]; then
    java_cmd "$log" kafka.tools.StorageTool format -t "$(cluster_id)" -c "$dir/server.properties" \
             ${FORMAT_ARGS[@]+"${FORMAT_ARGS[@]}"} >"${log%.log}.out" 2>&1
  fi
  # exec in the subshell so that the recorded pid is the JVM's own. Its stdout/stderr is only what
  # comes before log4j (or a crash): truncated per start, so it stays small.
  ( exec java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true ${JVM_OPTS[@]+"${JVM_OPTS[@]}"} \
        -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -Dkafka.log.file="$log" \
        -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" ) </dev/null >"${log%.log}.out" 2>&1 &
  echo $! > "$(pidfile "$i")"
}

wait_node() {  # N
  local i="$1"
  for _ in $(seq 1 "$(( ${KAFKA_START_SECONDS:-90} * 2 ))"); do
    if answering "$i"; then echo "kafka: node $i up on 127.0.0.1:$(node_port "$i")"; return 0; fi
    running "$i" || { echo "kafka: node $i died on start, see $(node_log "$i")" >&2; tail -20 "$(node_log "$i")" "$(node_log "$i" | sed 's/\.log$/.out/')" >&2; return 1; }
    sleep 0.5
  done
  echo "kafka: node $i not answering after ${KAFKA_START_SECONDS:-90} s, see $(node_log "$i")" >&2; return 1
}

start() {
  fetch
  local i
  for i in $(nodes); do start_node "$i"; done  # all at once: the quorum needs a majority to elect
  for i in $(nodes); do wait_node "$i"; done
}

stop_node() {  # N [signal]
  local i="$1" pid
  running "$i" || { rm -f "$(pidfile "$i")"; return 0; }
  pid="$(cat "$(pidfile "$i")")"
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$(pidfile "$i")"
}

any_alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

stop() {  # every node this state dir has running, whatever KAFKA_BROKERS says now; all at once
  local f pids=()
  for f in "$STATE/kafka.pid" "$STATE"/node-*/kafka.pid; do
    [ -f "$f" ] && pids+=("$(cat "$f")") && rm -f "$f"
  done
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 60); do any_alive ${pids[@]+"${pids[@]}"} || break; sleep 0.5; done
  [ ${#pids[@]} -gt 0 ] && kill -9 "${pids[@]}" 2>/dev/null || true
  echo "kafka: stopped"
}

status() {
  local i rc=0
  for i in $(nodes); do running "$i" && answering "$i" || rc=1; done
  [ "$rc" = 0 ] && echo "kafka: up ($BROKERS node(s): $(bootstrap))" || { echo "kafka: down"; return 1; }
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  bootstrap) bootstrap ;;
  start-node) fetch; start_node "$2"; wait_node "$2" ;;
  kill-node) stop_node "$2" KILL; echo "kafka: node $2 killed" ;;
  *) echo "usage: $0 fetch|start|stop|status|bootstrap|start-node N|kill-node N" >&2; exit 2 ;;
esac
