"""The layers hold: importing the domain or the use cases loads no framework and no I/O library.

Each check runs in a fresh interpreter, so what the rest of the suite imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO_AND_FRAMEWORKS = (
    "flask",
    "werkzeug",
    "redis",
    "rq",
    "stripe",
    "gevent",
    "geventhttpclient",
    "gunicorn",
    "requests",
    "marshmallow",
    "prometheus_client",
)

LOADED_BY = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.iter_modules(package.__path__):
    importlib.import_module(f"{sys.argv[1]}.{module.name}")
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def top_level_modules_loaded_by(package: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED_BY, package], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("layer", ["payments_service.domain", "payments_service.usecases"])
def test_the_inner_layers_load_no_framework_and_no_io_library(layer: str) -> None:
    assert top_level_modules_loaded_by(layer) & set(IO_AND_FRAMEWORKS) == set()


def test_the_check_sees_what_an_adapter_loads() -> None:
    # The same check on the web layer must find Flask, or it proves nothing.
    assert {"flask", "werkzeug", "marshmallow"} <= top_level_modules_loaded_by("payments_service.web")
