#!/bin/sh
# Prints the Redis ACL file of a RouteMate deployment: one user per service, each with only the
# key patterns, channels and commands it uses; the password-less default user is off.
# Passwords come from the environment (compose: the redis container's env; Kubernetes: the
# routemate-redis-acl Secret is this script's output). POSIX sh: it runs in the redis image.
#   REDIS_AUTH_PASSWORD REDIS_INGEST_PASSWORD REDIS_STATUS_PASSWORD REDIS_GEOCODER_PASSWORD
# Each service then connects as REDIS_URL=redis://<service>:<password>@redis:6379/0.
set -eu
: "${REDIS_AUTH_PASSWORD:?}" "${REDIS_INGEST_PASSWORD:?}" "${REDIS_STATUS_PASSWORD:?}" "${REDIS_GEOCODER_PASSWORD:?}"
BASE="resetkeys resetchannels -@all +@connection +ping"
# Tokens are signed by auth (shared/tokens.py); ingest and status may only read them (%R~), so
# a compromised gateway can neither forge nor delete one.
TOKENS_READ="%R~rm:token:* %R~rm:client-epoch:*"
echo "user default off"
echo "user auth on >$REDIS_AUTH_PASSWORD $BASE +get +set +incr +incrby +expire +ttl +del +hset +hgetall +sadd +smembers +multi +exec +discard ~rm:token:* ~rm:client-tokens:* ~rm:client-epoch:* ~rm:fail:* ~rm:lock:*"
echo "user ingest on >$REDIS_INGEST_PASSWORD $BASE +get +set +hgetall +hmget +hset +expire +evalsha +eval +script|load +subscribe +unsubscribe $TOKENS_READ ~rm:idem:* ~rm:rl:* %R~rm:outcome:* &rm:job-outcome"
echo "user status on >$REDIS_STATUS_PASSWORD $BASE +get +set +hgetall +publish $TOKENS_READ ~rm:outcome:* &rm:job-outcome"
echo "user geocoder on >$REDIS_GEOCODER_PASSWORD $BASE +get +set ~rm:geo:*"
