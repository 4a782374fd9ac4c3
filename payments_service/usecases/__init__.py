"""The use cases: open a checkout, apply Stripe's facts, cancel, refund, reconcile."""
