"""payments-service: takes the money for bookings through Stripe Checkout."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .storage.keys import RQ_KEY_PREFIX

# RQ reads its key prefix once, when it is first imported, and every module of ours that
# imports rq runs this file first. The hash tag puts RQ's keys in the same Redis Cluster slot
# as ours, so one MULTI/EXEC can hold a payment change and its delivery job.
os.environ["RQ_KEY_PREFIX"] = RQ_KEY_PREFIX

if TYPE_CHECKING:
    from flask import Flask

    from .settings import Settings
    from .wiring import Components, Runtime

MAX_API_BODY_BYTES = 64 * 1024


def create_app(
    settings: Settings | None = None,
    components: Components | None = None,
    runtime: Runtime | None = None,
) -> Flask:
    """The composition root: settings, Redis, Stripe, components and blueprints, built once per process.

    Imports happen here, not at module level, so that importing the package does no work and
    the gunicorn master never loads prometheus_client before its multiprocess directory is set.
    """
    from flask import Flask

    from .settings import Settings
    from .web import api, ops, problems
    from .web import middleware as http
    from .web.openapi import PaymentsApi
    from .web.webhooks import StripeWebhookEndpoint
    from .wiring import build

    settings = settings or Settings.from_env()
    if components is None:
        from .wiring import Runtime

        components = build(settings, runtime or Runtime.THREADS)
    app = Flask(__name__)
    # werkzeug would answer "/v1//payments" with a redirect to an absolute URL built from the
    # client's Host header; a path with doubled slashes is simply not found here.
    app.url_map.merge_slashes = False
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_API_BODY_BYTES,
        API_TITLE="payments-service",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.extensions["payments"] = components
    spec = PaymentsApi(app)
    spec.register_blueprint(api.blp)
    spec.register_blueprint(ops.blp)
    spec.finish()
    problems.register_error_handlers(app)
    http.install(app)
    # Outermost first: ids, logs and metrics around everything; Stripe's webhooks before Flask.
    flask_app = http.BoundedBody(app.wsgi_app, MAX_API_BODY_BYTES, settings.internal_api_tokens)
    app.wsgi_app = http.RequestMiddleware(StripeWebhookEndpoint(flask_app, components))  # type: ignore[method-assign]
    return app
