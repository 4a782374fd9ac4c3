"""Stripe's form encoding (`line_items[0][price_data][currency]=usd`) decoded into JSON-like data."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

_PART = re.compile(r"\[([^\]]*)\]")


def parse(query: str, body: str) -> dict[str, Any]:
    """A request's parameters from its query string and form body.

    Blank values are kept: Stripe reads `name=` as an empty value (refused for a required
    parameter, an unset for a metadata key), not as a parameter that was never sent.
    """
    return decode(parse_qsl(query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True))


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nested dicts, with all-index dicts turned into lists, as Stripe reads a request."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head, *_PART.findall("[" + rest)] if rest else [head]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        last = path[-1]
        if last == "":  # `expand[]=...`: append
            last = str(len(node))
        node[last] = value
    decoded: dict[str, Any] = _listify(root)
    return decoded


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted
