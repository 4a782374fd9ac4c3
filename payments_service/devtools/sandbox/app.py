"""The sandbox over HTTP: Stripe's API routes, the hosted checkout page, and control routes for tests."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, jsonify, redirect, render_template, request, url_for

from ...domain.money import Currency
from .forms import parse
from .stripe_api import StripeApi
from .stripe_state import SandboxError, StripeState

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_sandbox_app(state: StripeState, latency_ms: int = 0) -> WsgiApp:
    """A WSGI app; `latency_ms` after a request arrives its API answer goes out, as from a distant Stripe.

    The sandbox's own work counts toward that time (it answers when the time is up, not the time
    plus its work), so a benchmark's "Stripe answering after 300 ms" means 300 ms. Stripe's API
    routes are plain WSGI: a benchmark's stand-in must cost little CPU on the machine it shares
    with the service. Pages and controls are an ordinary Flask app.
    """
    pages = _pages(state)
    stripe_api = StripeApi(state)

    def api(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer_at = time.monotonic() + latency_ms / 1000
        try:
            return respond(environ, start_response)
        finally:
            if latency_ms:
                time.sleep(max(0.0, answer_at - time.monotonic()))

    def respond(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        key = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        if not key.startswith(("sk_test_", "rk_test_")):
            error = SandboxError(401, "The sandbox accepts test keys (sk_test_...) only, never live ones.")
            return _json(start_response, error.status, json.dumps(error.body()))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode() if length else ""
        params = parse(environ.get("QUERY_STRING", ""), body)
        status, text = stripe_api.respond(
            environ["REQUEST_METHOD"], environ["PATH_INFO"], params, environ.get("HTTP_IDEMPOTENCY_KEY")
        )
        return _json(start_response, status, text)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/v1/"):
            return api(environ, start_response)
        return pages(environ, start_response)

    return app


def _json(start_response: Callable[..., Any], status: int, text: str) -> Iterable[bytes]:
    data = text.encode()
    start_response(
        f"{status} {'OK' if status == 200 else 'Error'}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Request-Id", "req_" + secrets.token_hex(7)),
        ],
    )
    return [data]


def _pages(state: StripeState) -> Flask:
    app = Flask(__name__)

    @app.get("/c/pay/<session_id>")
    def checkout(session_id: str) -> Any:
        """The hosted payment page a session's url points at."""
        try:
            session = state.session(session_id)
        except SandboxError:
            return Response("No such checkout session.", status=404, mimetype="text/plain")
        return render_template(
            "checkout.html",
            session_id=session_id,
            status=session["status"],
            intent_status=state.intent_status(session_id),
            product=state.product_name(session_id),
            amount=Currency.of(session["currency"]).display(session["amount_total"]),
            booking=session.get("client_reference_id"),
            cancel_url=session["cancel_url"],
            success_url=_success_url(session),
            settle_url=url_for("settle", session_id=session_id),
        )

    @app.post("/c/pay/<session_id>/pay")
    def pay(session_id: str) -> Any:
        """Like Stripe: complete the session, send the webhook, send the customer to success_url."""
        try:
            session = state.pay(session_id, delayed=request.args.get("delayed") == "1")
        except SandboxError:
            return redirect(url_for("checkout", session_id=session_id), code=303)
        return redirect(_success_url(session), code=303)

    @app.post("/c/pay/<session_id>/settle")
    def settle(session_id: str) -> Any:
        """Decide a delayed payment (a bank would), then show what the merchant says about it."""
        try:
            session = state.settle(session_id, request.args.get("outcome") != "failed")
        except SandboxError:
            return redirect(url_for("checkout", session_id=session_id), code=303)
        return redirect(_success_url(session), code=303)

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


def _success_url(session: dict[str, Any]) -> str:
    """Stripe fills in the literal {CHECKOUT_SESSION_ID} in success_url."""
    return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])


def _stripe_error(error: SandboxError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    return response
