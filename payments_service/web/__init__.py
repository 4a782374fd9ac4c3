"""The HTTP edge: blueprints, the Stripe webhook endpoint, schemas, OpenAPI, problem+json, middleware."""
