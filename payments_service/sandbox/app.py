"""The sandbox over HTTP: Stripe's API routes, the hosted checkout page, and control routes for tests."""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Flask, Response, jsonify, request

from .forms import decode
from .stripe_state import SandboxError, StripeState


def create_sandbox_app(state: StripeState, latency_ms: int = 0) -> Flask:
    """A WSGI app; `latency_ms` delays every API answer, as a distant Stripe would."""
    app = Flask(__name__)

    @app.route("/v1/<path:path>", methods=["GET", "POST", "DELETE"])
    def api(path: str) -> Response:
        if latency_ms:
            time.sleep(latency_ms / 1000)
        key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not key.startswith(("sk_test_", "rk_test_")):
            return _stripe_error(
                SandboxError(
                    401,
                    "The sandbox accepts test keys (sk_test_...) only, never live ones.",
                    type="invalid_request_error",
                )
            )
        params = decode(list(request.args.items(multi=True)) + list(request.form.items(multi=True)))
        status, body = state.request(
            request.method, "/v1/" + path, params, request.headers.get("Idempotency-Key")
        )
        response = jsonify(body)
        response.status_code = status
        response.headers["Request-Id"] = "req_" + secrets.token_hex(7)
        return response

    @app.post("/_sandbox/sessions/<session_id>/<action>")
    def control(session_id: str, action: str) -> Response:
        """Test and demo controls; `webhook=0` changes the state without telling the service."""
        notify = request.args.get("webhook", "1") != "0"
        try:
            if action == "pay":
                session = state.pay(session_id, delayed=request.args.get("delayed") == "1", notify=notify)
            elif action == "settle":
                session = state.settle(session_id, request.args.get("outcome") != "failed", notify=notify)
            elif action == "expire":
                session = state.expire(session_id)
            else:
                return _stripe_error(SandboxError(404, f"unknown action {action}"))
        except SandboxError as error:
            return _stripe_error(error)
        return jsonify(session)

    @app.post("/_sandbox/refunds")
    def dashboard_refund() -> Response:
        """A refund made "in Stripe's dashboard": the service hears of it only by webhook."""
        try:
            return jsonify(state.create_refund(dict(request.form)))
        except SandboxError as error:
            return _stripe_error(error)

    @app.get("/_sandbox/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "sessions": len(state.sessions), "events": len(state.events)}

    return app


def _stripe_error(error: SandboxError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    return response
