"""How the Stripe SDK reaches Stripe from inside `serve`: geventhttpclient's keep-alive pools.

Under gevent, requests and urllib3 spend a large share of a checkout's CPU on each Stripe call;
geventhttpclient (a C parser and a greenlet-safe pool) spends much less (`python -m
benchmarks.stripe_transport` measures both; the README keeps the figures). It plugs into
stripe-python's own extension point (`stripe.HTTPClient`), keeps the SDK's retries, idempotency
keys and error handling, and is used only in the gevent runtime with no proxy configured. The
worker, the CLI and the tests keep stripe's RequestsClient (gevent's objects must not be
shared between OS threads).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import SplitResult, urlsplit

import stripe
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPParseError
from requests.structures import CaseInsensitiveDict

from .requests_transport import LeavesRateLimitsToTheGateway


class GeventStripeHTTPClient(LeavesRateLimitsToTheGateway, stripe.HTTPClient):
    """stripe.HTTPClient over geventhttpclient: one pool of keep-alive connections per Stripe host."""

    name = "geventhttpclient"

    def __init__(self, timeout: float, concurrency: int) -> None:
        super().__init__()
        self._timeout = timeout
        self._concurrency = concurrency
        self._clients: dict[tuple[str, str, int], HTTPClient] = {}

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            response = self._client(parts).request(
                method.upper(), target, body=post_data, headers=dict(headers or {})
            )
            try:
                body = response.read()
            finally:
                response.release()
        except ssl.SSLError as exc:
            # As stripe's RequestsClient: a certificate problem is not retried.
            _connection_error(exc, retry=False)
        except (OSError, HTTPParseError) as exc:
            # Refused, reset, timed out or cut short: stripe retries these (POSTs keep their
            # idempotency key), as it does for requests' ConnectionError and Timeout.
            _connection_error(exc, retry=True)
        except RuntimeError as exc:
            # geventhttpclient's own refusals (an unresolvable host, a closed pool): not retried.
            _connection_error(exc, retry=False)
        return body, response.status_code, CaseInsensitiveDict(response.items())

    def request_stream(self, *args: Any, **kwargs: Any) -> tuple[Any, int, Mapping[str, str]]:
        raise NotImplementedError("this service reads no streamed Stripe responses")

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _client(self, parts: SplitResult) -> HTTPClient:
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        key = (parts.scheme, host, port)
        client = self._clients.get(key)
        if client is None:
            client = HTTPClient(
                host,
                port,
                ssl=https,
                # Verified against the CA bundle stripe-python ships, as its RequestsClient does.
                ssl_options={"ca_certs": stripe.ca_bundle_path} if https else None,
                connection_timeout=self._timeout,
                network_timeout=self._timeout,
                concurrency=self._concurrency,
            )
            self._clients[key] = client
        return client


def _connection_error(exc: Exception, retry: bool) -> NoReturn:
    raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
        f"Unexpected error communicating with Stripe.\n\n(Network error: {type(exc).__name__}: {exc})",
        should_retry=retry,
    ) from exc
