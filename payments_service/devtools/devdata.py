"""`.dev/redis` (payments) and `.dev/sandbox/stripe.json` (the sandbox's Stripe): kept as one state."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

STRIPES = {"sandbox": "the Stripe sandbox", "stripe-test": "real Stripe (test mode)"}


def keep_data_consistent(root: Path, stripe: str, out: Callable[[str], None]) -> None:
    """Redis's payments and the sandbox's sessions are one state: keep both, or start both empty.

    A payment whose checkout session the Stripe in use has never seen would hand out a dead
    checkout URL and fail every reconciliation pass.
    """
    redis_dir, sandbox_state = root / "redis", root / "sandbox" / "stripe.json"
    marker = redis_dir / "STRIPE"
    has_data = any(path.name != "STRIPE" for path in redis_dir.glob("*"))
    made_with = marker.read_text().strip() if marker.exists() else None
    reason = None
    if has_data and made_with != stripe:
        maker = STRIPES.get(made_with or "", "an older make dev that did not keep the sandbox's state")
        reason = f".dev/redis was used with {maker}, whose checkout sessions {STRIPES[stripe]} does not have"
    elif has_data and stripe == "sandbox" and not sandbox_state.exists():
        reason = ".dev/redis has payments but the sandbox's state (.dev/sandbox/stripe.json) is gone"
    if reason:
        previous = root / "redis.previous"
        shutil.rmtree(previous, ignore_errors=True)
        redis_dir.replace(previous)
        out(f"Starting with an empty Redis: {reason}. The old data is in .dev/redis.previous/.")
    if (reason or not has_data) and sandbox_state.exists():
        sandbox_state.unlink()  # sessions no payment refers to: start the sandbox empty too
    redis_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(stripe + "\n")
