"""The wiring builds one object graph per runtime, told explicitly; both graphs are checked here."""

from __future__ import annotations

import json
import subprocess
import sys

from payments_service.wiring import Runtime, build
from tests.support.settings import make_settings

DESCRIBE = """
import json, sys
{patch}
from payments_service.wiring import Runtime, build
from tests.support.settings import make_settings
runtime = Runtime(sys.argv[1]) if len(sys.argv) > 1 else Runtime.of_this_process()
built = build(make_settings({url!r}), runtime)
print(json.dumps({{
    "detected": Runtime.of_this_process().value,
    "runtime": built.runtime.value,
    "trips": type(built.store.trips).__name__,
    "connection": built.redis.connection_pool.connection_class.__name__,
    "stripe": built.stripe.transport,
}}))
"""


def describe(redis_url: str, *args: str, patched: bool, env: dict[str, str] | None = None) -> dict[str, str]:
    patch = "from gevent import monkey; monkey.patch_all()" if patched else ""
    script = DESCRIBE.format(patch=patch, url=redis_url)
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, env=env
    )
    described: dict[str, str] = json.loads(done.stdout)
    return described


def test_the_threads_graph_uses_following_connections_and_requests_which_requests_mock_sees(
    redis_url: str,
) -> None:
    built = build(make_settings(redis_url), Runtime.THREADS)
    try:
        assert built.runtime is Runtime.THREADS
        assert type(built.store.trips).__name__ == "Pipelined"
        # redis-py's connection, told where the primary is and reporting when it moved
        assert built.redis.connection_pool.connection_class.__name__ == "FollowingConnection"
        assert built.stripe.transport == "requests"
        assert Runtime.of_this_process() is Runtime.THREADS  # the suite itself is not gevent-patched
    finally:
        built.redis.connection_pool.disconnect()


def test_the_gevent_graph_shares_round_trips_and_uses_geventhttpclient(redis_url: str) -> None:
    assert describe(redis_url, patched=True) == {
        "detected": "gevent",
        "runtime": "gevent",
        "trips": "GeventBatching",
        "connection": "GeventFriendlyConnection",
        "stripe": "geventhttpclient",
    }


def test_the_runtime_is_what_the_caller_says_not_what_the_process_looks_like(redis_url: str) -> None:
    # A patched process told THREADS builds the threads graph: nothing switches behind the caller's back.
    told = describe(redis_url, "threads", patched=True)
    assert told["detected"] == "gevent"
    assert (told["runtime"], told["trips"], told["stripe"]) == ("threads", "Pipelined", "requests")


def test_behind_a_proxy_the_gevent_graph_keeps_requests_for_stripe(redis_url: str) -> None:
    proxied = describe(
        redis_url,
        patched=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HTTP_PROXY": "http://proxy.test:3128",
            "HTTPS_PROXY": "http://proxy.test:3128",
        },
    )
    assert proxied["trips"] == "GeventBatching"
    assert proxied["stripe"] == "requests"  # requests speaks proxies; geventhttpclient is not used there
