"""Structured logs and Prometheus metrics, used by every layer that does I/O."""
