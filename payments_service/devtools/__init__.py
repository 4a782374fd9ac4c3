"""DEVELOPMENT ONLY: `make dev`, the local Stripe sandbox and the demo booking service."""
