"""What two or more RouteMate services share: events, settings, broker, errors, auth, metrics."""
