"""Reading /metrics the way Prometheus would, one sample at a time."""

from __future__ import annotations

from typing import Any


def sample(text: str, name: str, **labels: str) -> float:
    """One sample from Prometheus text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name_part, _, label_text = series.partition("{")
        if name_part == name and ",".join(sorted(label_text.rstrip("}").split(","))) == wanted:
            return float(value)
    return 0.0


def metric(client: Any, name: str, **labels: str) -> float:
    """One sample from an app's /metrics (a Flask test client; 0 when absent)."""
    return sample(client.get("/metrics").get_data(as_text=True), name, **labels)
