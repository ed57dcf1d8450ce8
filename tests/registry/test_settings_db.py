from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text

from registry.settings import Settings


def test_production_refuses_a_missing_or_default_secret() -> None:
    with pytest.raises(ValidationError, match="MEALROLL_SECRET_KEY"):
        Settings(env="production")
    with pytest.raises(ValidationError, match="MEALROLL_SECRET_KEY"):
        Settings(env="production", secret_key="change-me")
    assert Settings(env="production", secret_key="x" * 40).session_secret() == "x" * 40


def test_development_generates_one_secret_into_the_data_dir_and_keeps_it(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).session_secret()
    assert len(first) >= 40
    assert Settings(data_dir=tmp_path).session_secret() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_settings_come_from_mealroll_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEALROLL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MEALROLL_BROKER_URL", "redis://127.0.0.1:6379/3")
    settings = Settings()
    assert settings.db_url == f"sqlite:///{tmp_path.resolve() / 'mealroll.db'}"
    assert settings.broker == "redis://127.0.0.1:6379/3"


def test_sqlite_runs_with_wal_and_foreign_keys(db_engine: Engine) -> None:
    if db_engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas only apply to SQLite")
    with db_engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
