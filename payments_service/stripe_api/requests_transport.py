"""How the Stripe SDK reaches Stripe outside `serve` (the worker, the CLI, the tests): requests.

requests-mock sees these calls, which is how the suite fakes Stripe on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
import stripe
from requests.adapters import HTTPAdapter

# Connections to Stripe kept per process: one per request a gevent worker may have in flight with it.
POOL_SIZE = 512


class DirectSession(requests.Session):
    """Prepares each request itself and sends it without following redirects.

    Stripe's API needs none of what Session.request adds before send() (merging session
    cookies, auth and environment settings), work that would be repeated on every call.
    """

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: Any = None,
        verify: Any = True,
        proxies: Mapping[str, str] | None = None,
        stream: bool = False,
        **_: Any,
    ) -> requests.Response:
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers=headers, data=data)
        return self.send(
            prepared,
            stream=stream,
            timeout=timeout,
            verify=verify,
            proxies=dict(proxies or self.proxies),
            allow_redirects=False,
        )


class LeavesRateLimitsToTheGateway:
    """The SDK retries a 429 that carries `Stripe-Should-Retry: true` on its own, outside the budget.

    The gateway retries every 429 itself, each time with a new place in the shared budget.
    """

    def _should_retry(
        self,
        response: tuple[Any, int, Mapping[str, str] | None] | None,
        api_connection_error: stripe.APIConnectionError | None,
        num_retries: int,
        max_network_retries: int | None,
    ) -> bool:
        if response is not None and response[1] == 429:
            return False
        should: bool = super()._should_retry(  # type: ignore[misc]
            response, api_connection_error, num_retries, max_network_retries
        )
        return should


class BudgetedRequestsClient(LeavesRateLimitsToTheGateway, stripe.RequestsClient):
    pass


def requests_http_client(timeout: float, proxies: Mapping[str, str]) -> stripe.RequestsClient:
    """stripe's RequestsClient on a DirectSession with a pool for every concurrent request."""
    session = DirectSession()
    session.proxies = dict(proxies)
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return BudgetedRequestsClient(timeout=timeout, session=session)
