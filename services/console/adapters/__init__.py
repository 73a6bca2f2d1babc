"""What the console talks to: Redis (sessions) and the internal endpoints of auth and status."""
