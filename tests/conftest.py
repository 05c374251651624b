"""Shared fixtures. Tests that need ../shared skip with the reason where it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"


def shared_file(relative: str) -> Path:
    """Path of a file in ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{relative} (shared data is not beside this clone)")
    return path


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never touch the user's store or log, never read real credentials."""
    monkeypatch.setenv("BOTCLAVE_DATA_DIR", str(tmp_path / "datasets"))
    for name in ("BOTCLAVE_BINANCE_API_KEY", "BOTCLAVE_BINANCE_SECRET",
                 "BOTCLAVE_TELEGRAM_TOKEN", "BOTCLAVE_TELEGRAM_CHAT_ID", "BOTCLAVE_SMTP_URL",
                 "BOTCLAVE_ALERT_EMAIL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def store(tmp_path: Path):
    from botclave_cli.data.store import Store

    return Store(tmp_path / "datasets")
