"""`make fuzz`: schemathesis against the live API, from the API's own /openapi.json.

Starts a private Redis, the Stripe sandbox and `payments-service serve`, then lets schemathesis
generate requests for every operation. It fails on any 5xx and on any answer the document does
not describe (status code, content type, headers, body schema), and checks that /v1 refuses
requests without the token and that undocumented methods get 405 with an Allow header.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.processes import BIN
from tests.support.redis_server import RedisServer
from tests.support.settings import API_TOKEN
from tests.support.stack import running_stack

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "unsupported_method",
        "allow_header_conformance",
        "ignored_auth",
    ]
)
EXAMPLES_PER_OPERATION = 100
ARTIFACTS = Path("test-artifacts/schemathesis").resolve()


def main() -> int:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        redis.start()
        try:
            with running_stack(Path(tmp), redis.url, WEB_CONCURRENCY="1", LOG_LEVEL="WARNING") as stack:
                result = subprocess.run(
                    [
                        str(BIN / "schemathesis"),
                        "run",
                        f"{stack.api_url}/openapi.json",
                        "--checks",
                        CHECKS,
                        "--header",
                        f"Authorization: Bearer {API_TOKEN}",
                        "--max-examples",
                        str(EXAMPLES_PER_OPERATION),
                        "--seed",
                        "20261126",
                        # Every run starts fresh and writes nothing into the checkout.
                        "--generation-database",
                        ":memory:",
                        # One worker: hypothesis parses lambdas with ast.parse, which is not
                        # thread-safe on CPython 3.11 ("AST constructor recursion depth mismatch").
                        "--workers",
                        "1",
                        "--report",
                        "junit",
                        "--report-dir",
                        str(ARTIFACTS),
                    ],
                    cwd=ARTIFACTS,  # schemathesis keeps a cache in ./.schemathesis: not in the checkout
                    check=False,
                )
                return result.returncode
        finally:
            redis.stop()


if __name__ == "__main__":
    sys.exit(main())
