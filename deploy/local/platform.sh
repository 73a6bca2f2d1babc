#!/usr/bin/env bash
# Starts and stops the whole platform on this machine: Redis, Kafka, the six services, nginx.
#   up      start whatever is not running (idempotent; a crashed service is restarted); returns when healthy
#   down    stop everything this script started
#   status  one line per component
#   restart-service NAME   stop and start one service (tests use it)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VAR="${VAR_DIR:-$ROOT/var}"
PY="$ROOT/.venv/bin/python"
HOST="${HOST:-127.0.0.1}"
EDGE_PORT="${EDGE_PORT:-8080}"
REDIS_PORT="${REDIS_PORT:-6379}"
declare -A PORTS=([auth]="${AUTH_PORT:-8081}" [ingest]="${INGEST_PORT:-8082}" [status]="${STATUS_PORT:-8083}"
                  [geocoder]="${GEOCODER_PORT:-8084}" [optimizer]="${OPTIMIZER_PORT:-8085}"
                  [notifier]="${NOTIFIER_PORT:-8087}")
SERVICES=(auth status geocoder optimizer ingest notifier)
export VAR_DIR="$VAR"
mkdir -p "$VAR/run" "$VAR/log" "$VAR/redis" "$VAR/nginx" "$VAR/edge"

alive() { [ -f "$VAR/run/$1.pid" ] && kill -0 "$(cat "$VAR/run/$1.pid")" 2>/dev/null; }
healthy() { curl -fsS -m 2 "http://$HOST:$1/healthz" >/dev/null 2>&1; }

wait_healthy() {  # name port seconds
  for _ in $(seq 1 $(( $3 * 4 ))); do
    healthy "$2" && return 0
    alive "$1" || { echo "$1: died on start; last lines of its logs:" >&2; tail -q -n 15 "$VAR/log/$1.out" "$VAR/log/$1.log" 2>/dev/null >&2; return 1; }
    sleep 0.25
  done
  echo "$1: not healthy after $3 s, see $VAR/log/$1.log" >&2; return 1
}

redis_up() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --pidfile "$VAR/run/redis.pid" \
    --dir "$VAR/redis" --appendonly yes --appendfsync everysec --save "" \
    --logfile "$VAR/log/redis.log" >/dev/null
  for _ in $(seq 1 40); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && { echo "redis: up on 127.0.0.1:$REDIS_PORT"; return 0; }; sleep 0.25; done
  echo "redis: did not start, see $VAR/log/redis.log" >&2; return 1
}

service_up() {
  local name="$1" port="${PORTS[$1]}"
  if alive "$name" && healthy "$port"; then return 0; fi
  alive "$name" && kill "$(cat "$VAR/run/$name.pid")" 2>/dev/null && sleep 1
  # The service writes (and rotates) its own log; the .out file catches only what comes before
  # logging is set up (an import error, a crash of the interpreter).
  (cd "$ROOT" && LOG_FILE="$VAR/log/$name.log" exec nohup "$PY" -m "services.$name" </dev/null >"$VAR/log/$name.out" 2>&1) &
  echo $! > "$VAR/run/$name.pid"
  wait_healthy "$name" "$port" 60 && echo "$name: up on $HOST:$port"
}

# What the edge serves itself: the merged OpenAPI document, and the CORS origins it allows
# (CORS_ALLOWED_ORIGINS, comma- or space-separated; default none, `*` for any).
edge_files() {
  (cd "$ROOT" && "$PY" -m routemate_cli.contract.openapi --out "$VAR/edge/openapi.json")
  local origins="${CORS_ALLOWED_ORIGINS:-}"
  for origin in ${origins//,/ }; do
    if [ "$origin" = "*" ]; then echo '~. $http_origin;'; else printf '"%s" $http_origin;\n' "${origin%/}"; fi
  done > "$VAR/nginx/cors-origins.map.tmp"
  mv "$VAR/nginx/cors-origins.map.tmp" "$VAR/nginx/cors-origins.map"
  sed -e "s#@VAR@#$VAR#g" -e "s#@HOST@#$HOST#g" -e "s#@EDGE_PORT@#$EDGE_PORT#g" \
      -e "s#@AUTH_PORT@#${PORTS[auth]}#g" -e "s#@INGEST_PORT@#${PORTS[ingest]}#g" \
      -e "s#@STATUS_PORT@#${PORTS[status]}#g" -e "s#@NOTIFIER_PORT@#${PORTS[notifier]}#g" -e "s#@ROOT@#$ROOT#g" "$ROOT/deploy/local/nginx.conf.tmpl" > "$VAR/nginx/nginx.conf"
}

nginx_up() {
  edge_files
  if alive nginx && healthy "$EDGE_PORT"; then  # a running edge takes the new files without dropping a request
    /usr/sbin/nginx -e stderr -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" -s reload 2>>"$VAR/log/nginx-error.log"
    return 0
  fi
  /usr/sbin/nginx -e stderr -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" 2>>"$VAR/log/nginx-error.log"
  for _ in $(seq 1 40); do healthy "$EDGE_PORT" && { echo "edge: up on http://$HOST:$EDGE_PORT/v1"; return 0; }; sleep 0.25; done
  echo "edge: nginx did not start, see $VAR/log/nginx-error.log" >&2; return 1
}

stop_pid() {  # name
  alive "$1" || { rm -f "$VAR/run/$1.pid"; return 0; }
  local pid; pid="$(cat "$VAR/run/$1.pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$VAR/run/$1.pid"
}

up() {
  redis_up
  KAFKA_STATE_DIR="$VAR/kafka" "$ROOT/deploy/kafka/kafka.sh" start
  (cd "$ROOT" && "$PY" -m shared.topics)
  for s in "${SERVICES[@]}"; do service_up "$s"; done
  nginx_up
}

down() {
  if alive nginx; then /usr/sbin/nginx -e stderr -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" -s quit 2>/dev/null || stop_pid nginx; fi
  for s in notifier ingest optimizer geocoder status auth; do stop_pid "$s"; done
  KAFKA_STATE_DIR="$VAR/kafka" "$ROOT/deploy/kafka/kafka.sh" stop
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$VAR/run/redis.pid"
  echo "platform: stopped"
}

status() {
  local rc=0
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && echo "redis     up" || { echo "redis     down"; rc=1; }
  KAFKA_STATE_DIR="$VAR/kafka" "$ROOT/deploy/kafka/kafka.sh" status >/dev/null 2>&1 && echo "kafka     up" || { echo "kafka     down"; rc=1; }
  for s in "${SERVICES[@]}"; do healthy "${PORTS[$s]}" && printf '%-9s up\n' "$s" || { printf '%-9s down\n' "$s"; rc=1; }; done
  healthy "$EDGE_PORT" && echo "edge      up" || { echo "edge      down"; rc=1; }
  return $rc
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  restart-service) stop_pid "$2"; service_up "$2" ;;
  *) echo "usage: $0 up|down|status|restart-service NAME" >&2; exit 2 ;;
esac
