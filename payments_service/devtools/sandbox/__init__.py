"""A local stand-in for the part of Stripe's API this service uses. A development tool only.

It speaks Stripe's wire format (form-encoded requests, JSON objects, errors, idempotency keys,
list pagination), serves a hosted checkout page, and signs webhooks like Stripe. It refuses to
run when live keys are configured, and nothing in the service imports it.
"""
