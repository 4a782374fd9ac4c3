"""The only place that speaks Redis for payments: store, record format, keys, scripts, the client."""
