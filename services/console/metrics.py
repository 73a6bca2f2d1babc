"""Prometheus series of the console (besides the shared HTTP ones)."""

from prometheus_client import Counter

SIGN_INS = Counter("routemate_console_sign_ins_total", "Console sign-in attempts, by outcome", ["outcome"])
CSRF_REFUSED = Counter("routemate_console_csrf_refused_total", "Forms refused for a missing or wrong CSRF token")
