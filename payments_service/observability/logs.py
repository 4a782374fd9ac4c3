"""Structured JSON logs with request, booking, event and Stripe ids; secrets and emails scrubbed."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# Our access log has one line per request and the gateway logs Stripe failures with their ids.
_QUIET_LOGGERS = ("werkzeug", "stripe")

_context: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039

# One character of an address: a letter or digit of any script, or the JSON escape (\u00f6) that
# the final line carries instead of a non-ASCII character.
_CHAR = r"(?:\w|\\u[0-9A-Fa-f]{4})"
# Last line of defence: whatever a log call passes, these never reach the output.
_SCRUB = re.compile(
    r"(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+"
    r"|whsec_[A-Za-z0-9+/=]+"
    rf"|(?:{_CHAR}|[.%+-])+@(?:{_CHAR}|-)+(?:\.(?:{_CHAR}|-)+)*\.(?:{_CHAR}|-){{2,}}"
)
# Every match contains one of these, and looking for them is far cheaper than the regex, which
# then runs only on the few lines that may need it.
_SCRUB_HINTS = ("sk_", "rk_", "whsec_", "@")


def bind(**fields: str | None) -> None:
    """Attach ids to every log line of the current request, job or pass."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})


def clear() -> None:
    _context.set({})


class ContextFilter(logging.Filter):
    """Copies the bound ids (request, booking, Stripe request, event) onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class ScrubbingJsonFormatter(JsonFormatter):
    """python-json-logger, with secrets and email addresses replaced in the final line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if any(hint in line for hint in _SCRUB_HINTS):
            line = _SCRUB.sub("[redacted]", line)
        return line


def json_formatter() -> logging.Formatter:
    return ScrubbingJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure(level: str) -> None:
    """Configure the root logger once, before the app or worker starts."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in _QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def gunicorn_logconfig(level: str) -> dict[str, Any]:
    """gunicorn's logging in the same JSON shape; its access log stays off (we log requests ourselves).

    gunicorn applies this with dictConfig in every process, so it must set up the root logger too.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            **{name: {"level": "WARNING", "handlers": [], "propagate": True} for name in _QUIET_LOGGERS},
        },
    }
