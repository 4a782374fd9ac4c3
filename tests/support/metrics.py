"""Reading one sample from /metrics (counters are per process, so tests compare before and after)."""

from __future__ import annotations

from typing import Any


def metric(client: Any, name: str, **labels: str) -> float:
    """One sample from /metrics (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        sample, _, label_text = series.partition("{")
        if sample == name and ",".join(sorted(label_text.rstrip("}").split(","))) == wanted:
            return float(value)
    return 0.0
