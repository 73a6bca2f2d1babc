#!/usr/bin/env bash
# Starts and stops the whole platform on this machine: Redis, Kafka, the six services, nginx.
#   up      start whatever is not running (idempotent; a crashed service is restarted); returns when healthy
#   down    stop everything this script started
#   status  one line per component
#   restart-service NAME   stop and start one service (tests use it)
#   tls     create (once) the local CA and the edge's certificate under var/tls, and say how to trust it
#   edge-config   render the edge's nginx config into $VAR_DIR/nginx without starting it (tests use it)
# The edge listens on EDGE_PORT (plain http, for local tools) and EDGE_TLS_PORT (https) with
# EDGE_TLS_CERT/EDGE_TLS_KEY, or without them a certificate from a local CA made here (tls.sh).
# EDGE_HTTP_REDIRECT=1 makes plain http answer 308 to https://EDGE_SERVER_NAME:EDGE_TLS_PORT.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VAR="${VAR_DIR:-$ROOT/var}"
PY="$ROOT/.venv/bin/python"
HOST="${HOST:-127.0.0.1}"
EDGE_PORT="${EDGE_PORT:-8080}"
EDGE_TLS_PORT="${EDGE_TLS_PORT:-8443}"
EDGE_HTTP_REDIRECT="${EDGE_HTTP_REDIRECT:-0}"
case "$HOST" in 0.0.0.0|::|"[::]") default_name=localhost ;; *) default_name="$HOST" ;; esac
EDGE_SERVER_NAME="${EDGE_SERVER_NAME:-$default_name}"
[[ "$EDGE_HTTP_REDIRECT" =~ ^[01]$ ]] || { echo "EDGE_HTTP_REDIRECT must be 0 or 1" >&2; exit 2; }
[[ "$EDGE_SERVER_NAME" =~ ^[A-Za-z0-9.-]+$ ]] || { echo "EDGE_SERVER_NAME must be a host name or IPv4 address" >&2; exit 2; }
REDIS_PORT="${REDIS_PORT:-6379}"
# Two Redis instances, because eviction policy is per instance: the durable one (tokens, lockouts,
# rate buckets, idempotency reservations, outcomes) refuses writes when full (noeviction: the
# services answer 503) rather than drop a token; the cache one (geocode cache only) evicts its
# least recently used keys. The cache listens on REDIS_CACHE_PORT, by default REDIS_PORT + 1.
REDIS_CACHE_PORT="${REDIS_CACHE_PORT:-$((REDIS_PORT + 1))}"
REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-1gb}"  # outcomes of a day of jobs (README, sizing)
REDIS_CACHE_MAXMEMORY="${REDIS_CACHE_MAXMEMORY:-128mb}"
export CACHE_REDIS_URL="${CACHE_REDIS_URL:-redis://127.0.0.1:$REDIS_CACHE_PORT/0}"
declare -A PORTS=([auth]="${AUTH_PORT:-8081}" [ingest]="${INGEST_PORT:-8082}" [status]="${STATUS_PORT:-8083}"
                  [geocoder]="${GEOCODER_PORT:-8084}" [optimizer]="${OPTIMIZER_PORT:-8085}"
                  [notifier]="${NOTIFIER_PORT:-8087}" [console]="${CONSOLE_PORT:-8086}")
SERVICES=(auth status geocoder optimizer ingest notifier console)
# CPU priority (nice, 0..19) when the host's cores are contended, as the k8s manifests' CPU
# requests weigh them: the stages a job waits on (ingest, geocoder, optimizer) first; the read
# model's projection, webhooks and the console yield, and batch more events per transaction
# while they do. On this 2-core machine that took the 200-job burst from 71 to 80-84 jobs/s and
# its platform CPU from 23 to 19-21 ms/job (README, benchmarks). NICE_<SERVICE>=0 turns it off.
declare -A NICE=([auth]="${NICE_AUTH:-0}" [ingest]="${NICE_INGEST:-0}" [geocoder]="${NICE_GEOCODER:-0}"
                 [optimizer]="${NICE_OPTIMIZER:-0}" [status]="${NICE_STATUS:-10}"
                 [notifier]="${NICE_NOTIFIER:-10}" [console]="${NICE_CONSOLE:-10}")
for name in "${!NICE[@]}"; do
  [[ "${NICE[$name]}" =~ ^[0-9]{1,2}$ ]] && (( 10#${NICE[$name]} <= 19 )) \
    || { echo "NICE_${name^^} must be a whole number from 0 to 19" >&2; exit 2; }
  NICE[$name]=$(( 10#${NICE[$name]} ))  # "010" is 10, not octal
done
# The auth admin API listens on its own port, never routed by the edge. The ports-*.env files
# name only AUTH_PORT: the admin port is derived from it (AUTH_PORT+10: 8091 by default).
export AUTH_ADMIN_PORT="${AUTH_ADMIN_PORT:-$(( PORTS[auth] + 10 ))}"
# The notifier's admin API (the `routemate webhook` CLI) likewise: NOTIFIER_PORT+10, 8097 by default.
export NOTIFIER_ADMIN_PORT="${NOTIFIER_ADMIN_PORT:-$(( PORTS[notifier] + 10 ))}"
declare -A ADMIN_PORTS=([auth]="$AUTH_ADMIN_PORT" [notifier]="$NOTIFIER_ADMIN_PORT")
# The console reaches auth's admin listener and status directly (internal endpoints, not the edge).
export ADMIN_URL="${ADMIN_URL:-http://127.0.0.1:$AUTH_ADMIN_PORT}" STATUS_URL="${STATUS_URL:-http://127.0.0.1:${PORTS[status]}}"
export NOTIFIER_ADMIN_URL="${NOTIFIER_ADMIN_URL:-http://127.0.0.1:$NOTIFIER_ADMIN_PORT}"
export VAR_DIR="$VAR"
# KAFKA_BROKERS=3: a three-node KRaft cluster (deploy/kafka/kafka.sh names its ports); every
# client bootstraps from all three and topics get replication 3 with min.insync.replicas=2.
export KAFKA_BROKERS="${KAFKA_BROKERS:-1}"
if [ "$KAFKA_BROKERS" = 3 ]; then
  KAFKA_BOOTSTRAP_SERVERS="$(KAFKA_STATE_DIR="$VAR/kafka" "$ROOT/deploy/kafka/kafka.sh" bootstrap)"
  export KAFKA_BOOTSTRAP_SERVERS TOPIC_REPLICATION=3 TOPIC_MIN_INSYNC_REPLICAS=2
fi
mkdir -p "$VAR/run" "$VAR/log" "$VAR/redis" "$VAR/nginx" "$VAR/edge"

alive() { [ -f "$VAR/run/$1.pid" ] && kill -0 "$(cat "$VAR/run/$1.pid")" 2>/dev/null; }
healthy() { curl -fsS -m 2 "http://$HOST:$1/healthz" >/dev/null 2>&1; }
# The https listener answers with the certificate it is given: verified against the local CA when
# that is what signed it; an operator's own certificate may name a host other than 127.0.0.1, so
# then only the listener is probed.
tls_healthy() {
  local verify=(--cacert "$VAR/tls/ca.crt") host="$HOST"
  [ -n "${EDGE_TLS_CERT:-}" ] && verify=(--insecure)
  case "$host" in 0.0.0.0|::|"[::]") host=127.0.0.1 ;; esac
  curl -fsS -m 2 "${verify[@]}" "https://$host:$EDGE_TLS_PORT/healthz" >/dev/null 2>&1
}

wait_healthy() {  # name port seconds
  for _ in $(seq 1 $(( $3 * 4 ))); do
    healthy "$2" && return 0
    alive "$1" || { echo "$1: died on start; last lines of its logs:" >&2; tail -q -n 15 "$VAR/log/$1.out" "$VAR/log/$1.log" 2>/dev/null >&2; return 1; }
    sleep 0.25
  done
  echo "$1: not healthy after $3 s, see $VAR/log/$1.log" >&2; return 1
}

redis_up() {  # name port maxmemory policy [more redis-server options]
  local name="$1" port="$2" maxmemory="$3" policy="$4"; shift 4
  if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
  mkdir -p "$VAR/$name"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --pidfile "$VAR/run/$name.pid" \
    --dir "$VAR/$name" --save "" --maxmemory "$maxmemory" --maxmemory-policy "$policy" "$@" \
    --logfile "$VAR/log/$name.log" >/dev/null
  for _ in $(seq 1 40); do redis-cli -p "$port" ping >/dev/null 2>&1 && { echo "$name: up on 127.0.0.1:$port ($policy, $maxmemory)"; return 0; }; sleep 0.25; done
  echo "$name: did not start, see $VAR/log/$name.log" >&2; return 1
}

redis_durable_up() { redis_up redis "$REDIS_PORT" "$REDIS_MAXMEMORY" noeviction --appendonly yes --appendfsync everysec; }
redis_cache_up() { redis_up redis-cache "$REDIS_CACHE_PORT" "$REDIS_CACHE_MAXMEMORY" allkeys-lru --appendonly no; }

service_up() {
  local name="$1" port="${PORTS[$1]}"
  local admin="${ADMIN_PORTS[$name]:-}"
  if alive "$name" && healthy "$port" && { [ -z "$admin" ] || healthy "$admin"; }; then return 0; fi
  alive "$name" && kill "$(cat "$VAR/run/$name.pid")" 2>/dev/null && sleep 1
  # The service writes (and rotates) its own log; the .out file catches only what comes before
  # logging is set up (an import error, a crash of the interpreter).
  (cd "$ROOT" && LOG_FILE="$VAR/log/$name.log" exec nice -n "${NICE[$name]}" nohup "$PY" -m "services.$name" </dev/null >"$VAR/log/$name.out" 2>&1) &
  echo $! > "$VAR/run/$name.pid"
  wait_healthy "$name" "$port" 60 || return 1
  if [ -n "$admin" ]; then
    wait_healthy "$name" "$admin" 20 && echo "$name: admin API up on $HOST:$admin (not on the edge)"
  fi
  echo "$name: up on $HOST:$port$( (( NICE[$name] )) && echo " (nice ${NICE[$name]})")"
}

# The edge's certificate: EDGE_TLS_CERT/EDGE_TLS_KEY (both, readable), or the local CA's under var/tls.
tls_files() {
  if [ -n "${EDGE_TLS_CERT:-}${EDGE_TLS_KEY:-}" ]; then
    [ -r "${EDGE_TLS_CERT:-}" ] && [ -r "${EDGE_TLS_KEY:-}" ] \
      || { echo "edge: EDGE_TLS_CERT and EDGE_TLS_KEY must both name readable files" >&2; return 1; }
    TLS_CERT="$(cd "$(dirname "$EDGE_TLS_CERT")" && pwd)/$(basename "$EDGE_TLS_CERT")"
    TLS_KEY="$(cd "$(dirname "$EDGE_TLS_KEY")" && pwd)/$(basename "$EDGE_TLS_KEY")"
    return 0
  fi
  [ -s "$VAR/tls/ca.crt" ] || TLS_NEW_CA=1
  EDGE_SERVER_NAME="$EDGE_SERVER_NAME" bash "$ROOT/deploy/local/tls.sh" "$VAR/tls"
  TLS_CERT="$VAR/tls/server.crt" TLS_KEY="$VAR/tls/server.key"
}

trust_hint() {
  local ca="$VAR/tls/ca.crt" url="https://$EDGE_SERVER_NAME:$EDGE_TLS_PORT"
  cat <<HINT
tls: the edge's certificate is signed by a local CA made on this machine. Trust it (never turn verification off):
  curl:                curl --cacert $ca $url/healthz   (or CURL_CA_BUNDLE=$ca)
  Python (requests):   REQUESTS_CA_BUNDLE=$ca   (httpx, urllib, ssl: SSL_CERT_FILE=$ca)
  Node.js:             NODE_EXTRA_CA_CERTS=$ca
  system store (Debian): sudo cp $ca /usr/local/share/ca-certificates/routemate-local-ca.crt && sudo update-ca-certificates
HINT
}

# What the edge serves itself: the merged OpenAPI document, and the CORS origins it allows
# (CORS_ALLOWED_ORIGINS, comma- or space-separated; default none, `*` for any).
edge_files() {
  (cd "$ROOT" && "$PY" -m routemate_cli.contract.openapi --out "$VAR/edge/openapi.json")
  edge_config
}

# The nginx configuration: the two listeners (nginx.conf), what both serve (edge-routes.conf), and
# the shared pieces of deploy/nginx/ beside them for the relative includes.
edge_config() {
  tls_files
  local origins="${CORS_ALLOWED_ORIGINS:-}"
  for origin in ${origins//,/ }; do
    if [ "$origin" = "*" ]; then echo '~. $http_origin;'; else printf '"%s" $http_origin;\n' "${origin%/}"; fi
  done > "$VAR/nginx/cors-origins.map.tmp"
  mv "$VAR/nginx/cors-origins.map.tmp" "$VAR/nginx/cors-origins.map"
  cp "$ROOT"/deploy/nginx/*.conf "$VAR/nginx/"
  local authority_port=":$EDGE_TLS_PORT"; [ "$EDGE_TLS_PORT" = 443 ] && authority_port=""
  for name in nginx.conf edge-routes.conf; do
    sed -e "s#@VAR@#$VAR#g" -e "s#@HOST@#$HOST#g" -e "s#@EDGE_PORT@#$EDGE_PORT#g" \
        -e "s#@EDGE_TLS_PORT@#$EDGE_TLS_PORT#g" -e "s#@EDGE_TLS_AUTHORITY_PORT@#$authority_port#g" \
        -e "s#@EDGE_SERVER_NAME@#$EDGE_SERVER_NAME#g" -e "s#@EDGE_HTTP_REDIRECT@#$EDGE_HTTP_REDIRECT#g" \
        -e "s#@EDGE_TLS_CERT@#$TLS_CERT#g" -e "s#@EDGE_TLS_KEY@#$TLS_KEY#g" \
        -e "s#@AUTH_PORT@#${PORTS[auth]}#g" -e "s#@INGEST_PORT@#${PORTS[ingest]}#g" \
        -e "s#@STATUS_PORT@#${PORTS[status]}#g" -e "s#@NOTIFIER_PORT@#${PORTS[notifier]}#g" \
        -e "s#@CONSOLE_PORT@#${PORTS[console]}#g" -e "s#@ROOT@#$ROOT#g" "$ROOT/deploy/local/$name.tmpl" > "$VAR/nginx/$name"
  done
}

# What the running edge was started or reloaded with: its configuration and certificate.
edge_digest() { cat "$VAR"/nginx/*.conf "$VAR"/nginx/*.map "$TLS_CERT" "$TLS_KEY" 2>/dev/null | sha256sum | cut -d' ' -f1; }

nginx_up() {
  edge_files
  local digest; digest="$(edge_digest)"
  if alive nginx && healthy "$EDGE_PORT"; then
    # A running edge takes new files (or a renewed certificate) without dropping a request in
    # flight, but a reload closes its idle keep-alive connections, and a client that reuses one at
    # that moment sees the connection close without an answer. So `up` reloads only on a change.
    # The digest is kept only for a configuration nginx accepted (a reload that nginx refuses
    # leaves the old one running, and the next `up` tries again).
    if [ "$(cat "$VAR/run/nginx.digest" 2>/dev/null)" != "$digest" ]; then
      rm -f "$VAR/run/nginx.digest"
      /usr/sbin/nginx -e stderr -t -q -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" 2>>"$VAR/log/nginx-error.log" \
        || { echo "edge: the new configuration is refused (kept the running one), see $VAR/log/nginx-error.log" >&2; return 1; }
      /usr/sbin/nginx -e stderr -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" -s reload 2>>"$VAR/log/nginx-error.log"
      echo "$digest" > "$VAR/run/nginx.digest"
    fi
    return 0
  fi
  rm -f "$VAR/run/nginx.digest"
  /usr/sbin/nginx -e stderr -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" 2>>"$VAR/log/nginx-error.log"
  for _ in $(seq 1 40); do
    if healthy "$EDGE_PORT" && tls_healthy; then
      echo "$digest" > "$VAR/run/nginx.digest"
      echo "edge: up on https://$EDGE_SERVER_NAME:$EDGE_TLS_PORT/v1 and http://$HOST:$EDGE_PORT/v1"
      if [ -n "${TLS_NEW_CA:-}" ]; then trust_hint
      elif [ -z "${EDGE_TLS_CERT:-}" ]; then echo "edge: certificate signed by the local CA $VAR/tls/ca.crt (how to trust it: bash deploy/local/platform.sh tls)"; fi
      return 0
    fi
    sleep 0.25
  done
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
  redis_durable_up
  redis_cache_up
  KAFKA_STATE_DIR="$VAR/kafka" "$ROOT/deploy/kafka/kafka.sh" start
  (cd "$ROOT" && "$PY" -m shared.topics)
  for s in "${SERVICES[@]}"; do service_up "$s"; done
  nginx_up
}

down() {
  if alive nginx; then /usr/sbin/nginx -e stderr -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" -s quit 2>/dev/null || stop_pid nginx; fi
  rm -f "$VAR/run/nginx.digest"
  for s in console notifier ingest optimizer geocoder status auth; do stop_pid "$s"; done
  KAFKA_STATE_DIR="$VAR/kafka" "$ROOT/deploy/kafka/kafka.sh" stop
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_CACHE_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$VAR/run/redis.pid" "$VAR/run/redis-cache.pid"
  echo "platform: stopped"
}

status() {
  local rc=0
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && echo "redis     up" || { echo "redis     down"; rc=1; }
  redis-cli -p "$REDIS_CACHE_PORT" ping >/dev/null 2>&1 && echo "cache     up" || { echo "cache     down"; rc=1; }
  KAFKA_STATE_DIR="$VAR/kafka" "$ROOT/deploy/kafka/kafka.sh" status >/dev/null 2>&1 && echo "kafka     up" || { echo "kafka     down"; rc=1; }
  for s in "${SERVICES[@]}"; do healthy "${PORTS[$s]}" && printf '%-9s up\n' "$s" || { printf '%-9s down\n' "$s"; rc=1; }; done
  healthy "$AUTH_ADMIN_PORT" && echo "admin     up" || { echo "admin     down"; rc=1; }
  healthy "$NOTIFIER_ADMIN_PORT" && echo "n-admin   up" || { echo "n-admin   down"; rc=1; }
  healthy "$EDGE_PORT" && echo "edge      up" || { echo "edge      down"; rc=1; }
  tls_healthy && echo "edge-tls  up" || { echo "edge-tls  down"; rc=1; }
  return $rc
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  restart-service) stop_pid "$2"; service_up "$2" ;;
  tls) tls_files; [ -n "${EDGE_TLS_CERT:-}" ] && echo "tls: using $TLS_CERT" || trust_hint ;;
  edge-config) edge_config ;;
  *) echo "usage: $0 up|down|status|restart-service NAME|tls|edge-config" >&2; exit 2 ;;
esac
