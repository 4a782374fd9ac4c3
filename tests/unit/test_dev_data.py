"""make dev keeps Redis's payments and the sandbox's sessions together, or starts both empty."""

from __future__ import annotations

from pathlib import Path

from payments_service.devtools.devdata import keep_data_consistent


def dev_folder(tmp_path: Path, made_with: str | None, sandbox_state: bool) -> Path:
    """A .dev folder left by an earlier run: Redis files, maybe its marker, maybe the sandbox's state."""
    root = tmp_path / ".dev"
    (root / "redis" / "appendonlydir").mkdir(parents=True)
    (root / "redis" / "appendonlydir" / "appendonly.aof.1.incr.aof").write_text("*1\r\n$5\r\nMULTI\r\n")
    if made_with:
        (root / "redis" / "STRIPE").write_text(made_with + "\n")
    if sandbox_state:
        (root / "sandbox").mkdir()
        (root / "sandbox" / "stripe.json").write_text("{}")
    return root


def run(root: Path, stripe: str) -> list[str]:
    said: list[str] = []
    keep_data_consistent(root, stripe, said.append)
    return said


def test_a_fresh_folder_starts_quietly_and_remembers_which_stripe_it_serves(tmp_path: Path) -> None:
    root = tmp_path / ".dev"
    assert run(root, "sandbox") == []
    assert (root / "redis" / "STRIPE").read_text() == "sandbox\n"


def test_payments_with_their_sandbox_state_are_kept(tmp_path: Path) -> None:
    root = dev_folder(tmp_path, "sandbox", sandbox_state=True)
    assert run(root, "sandbox") == []
    assert (root / "redis" / "appendonlydir").is_dir()
    assert (root / "sandbox" / "stripe.json").exists()


def test_payments_made_with_real_stripe_are_moved_aside_for_the_sandbox(tmp_path: Path) -> None:
    root = dev_folder(tmp_path, "stripe-test", sandbox_state=False)
    said = run(root, "sandbox")
    assert said == [
        "Starting with an empty Redis: .dev/redis was used with real Stripe (test mode), whose checkout "
        "sessions the Stripe sandbox does not have. The old data is in .dev/redis.previous/."
    ]
    assert not (root / "redis" / "appendonlydir").exists()
    assert (root / "redis.previous" / "appendonlydir").is_dir()


def test_payments_from_an_older_make_dev_are_moved_aside(tmp_path: Path) -> None:
    root = dev_folder(tmp_path, None, sandbox_state=False)
    assert "an older make dev" in run(root, "sandbox")[0]
    assert (root / "redis.previous").is_dir()


def test_sandbox_payments_are_moved_aside_for_real_stripe_and_the_sandbox_emptied(tmp_path: Path) -> None:
    root = dev_folder(tmp_path, "sandbox", sandbox_state=True)
    assert "the Stripe sandbox" in run(root, "stripe-test")[0]
    assert not (root / "sandbox" / "stripe.json").exists()
    assert (root / "redis" / "STRIPE").read_text() == "stripe-test\n"


def test_sandbox_sessions_without_payments_are_forgotten(tmp_path: Path) -> None:
    root = tmp_path / ".dev"
    (root / "sandbox").mkdir(parents=True)
    (root / "sandbox" / "stripe.json").write_text("{}")
    assert run(root, "sandbox") == []
    assert not (root / "sandbox" / "stripe.json").exists()
