"""The only place that imports stripe: the gateway, Stripe's JSON read into facts, the transport."""
