#!/bin/sh
# Prints the Redis ACL file of a RouteMate deployment: one user per service, each with only the
# key patterns, channels and commands it uses; the password-less default user is off.
# Passwords come from the environment (compose: the redis container's env; Kubernetes: the
# routemate-redis-acl Secret is this script's output). POSIX sh: it runs in the redis image.
#   REDIS_AUTH_PASSWORD REDIS_INGEST_PASSWORD REDIS_STATUS_PASSWORD REDIS_GEOCODER_PASSWORD
#   REDIS_NOTIFIER_PASSWORD REDIS_CONSOLE_PASSWORD
# Each service then connects as REDIS_URL=redis://<service>:<password>@redis:6379/0.
set -eu
: "${REDIS_AUTH_PASSWORD:?}" "${REDIS_INGEST_PASSWORD:?}" "${REDIS_STATUS_PASSWORD:?}" "${REDIS_GEOCODER_PASSWORD:?}"
: "${REDIS_NOTIFIER_PASSWORD:?}" "${REDIS_CONSOLE_PASSWORD:?}"
BASE="resetkeys resetchannels -@all +@connection +ping"
# Tokens are signed by auth (shared/tokens.py); ingest and status may only read them (%R~), so
# a compromised gateway can neither forge nor delete one.
TOKENS_READ="%R~rm:token:* %R~rm:client-epoch:*"
# The token bucket (shared/ratelimit.py) is one Lua script over a hash per caller.
BUCKET="+evalsha +eval +script|load +hmget +hset +expire"
TX="+multi +exec +discard"
# The jobs' data keys (shared/pii.py): made by whoever first seals for a job (SET NX), read to
# open, destroyed (overwritten) by erasure; the geocoder and ingest only make and read them.
DATAKEYS="+mget +mset ~rm:datakey:*"
echo "user default off"
echo "user auth on >$REDIS_AUTH_PASSWORD $BASE $DATAKEYS +get +set +incr +incrby +expire +ttl +del +hset +hgetall +sadd +smembers +multi +exec +discard $BUCKET ~rm:token:* ~rm:client-tokens:* ~rm:client-epoch:* ~rm:fail:* ~rm:lock:* ~rm:rl:mint:* ~rm:lastused:*"
echo "user ingest on >$REDIS_INGEST_PASSWORD $BASE $DATAKEYS +get +set +hgetall +hsetnx +hget +hdel $BUCKET $TX +subscribe +unsubscribe +zadd +zrank +zrem +zremrangebyscore $TOKENS_READ ~rm:idem:* ~rm:rl:* ~rm:inflight:* %R~rm:outcome:* %R~rm:jobhead:* &rm:job-outcome"
echo "user status on >$REDIS_STATUS_PASSWORD $BASE $DATAKEYS +del +get +set +hgetall +publish +zrem $BUCKET $TX $TOKENS_READ ~rm:outcome:* ~rm:jobhead:* ~rm:inflight:* ~rm:idem:* ~rm:rl:read:* ~rm:rl:update:* &rm:job-outcome"
echo "user notifier on >$REDIS_NOTIFIER_PASSWORD $BASE +get +mget +hgetall $TOKENS_READ %R~rm:datakey:*"
# The console's sessions: opaque ids, kept as SHA-256 digests with their idle expiry.
echo "user console on >$REDIS_CONSOLE_PASSWORD $BASE +get +set +expire +del ~rm:console:*"
echo "user geocoder on >$REDIS_GEOCODER_PASSWORD $BASE $DATAKEYS $TX +get +set +sadd +smembers +expire +del ~rm:geo:* ~rm:geojob:*"
