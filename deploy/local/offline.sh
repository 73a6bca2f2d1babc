#!/usr/bin/env bash
# Runs a command with no network at all: a fresh network namespace holding only its own loopback,
# so nothing of the platform (Kafka, Redis, PostgreSQL, nginx) is reachable from it. Needs root
# (or user namespaces); without them it says so and fails instead of silently running online.
set -euo pipefail
if [ "${ROUTEMATE_OFFLINE:-}" = 1 ]; then exec "$@"; fi
if [ "$(id -u)" = 0 ]; then
  exec unshare --net -- env ROUTEMATE_OFFLINE=1 bash -c 'ip link set lo up && exec "$@"' offline "$@"
fi
exec unshare --map-root-user --net -- env ROUTEMATE_OFFLINE=1 bash -c 'ip link set lo up && exec "$@"' offline "$@"
