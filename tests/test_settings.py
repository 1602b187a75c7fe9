from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_settings_come_from_prefixed_environment_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BELIEFGAP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BELIEFGAP_PUBLIC_URL", "https://poll.example.org/")
    monkeypatch.setenv("BELIEFGAP_DATABASE_URL", "sqlite:////tmp/elsewhere.db")
    settings = Settings()
    assert settings.data_dir == tmp_path
    assert settings.resolved_public_url == "https://poll.example.org"
    assert settings.resolved_database_url == "sqlite:////tmp/elsewhere.db"


def test_the_default_database_is_a_file_in_the_data_dir(tmp_path: Path) -> None:
    assert (
        Settings(data_dir=tmp_path).resolved_database_url
        == f"sqlite:///{tmp_path / 'beliefgap.db'}"
    )


def test_missing_secrets_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).with_secrets()
    second = Settings(data_dir=tmp_path).with_secrets()
    assert len(first.admin_token) >= 16 and len(first.secret_key) >= 16
    assert first.admin_token != first.secret_key
    assert (first.admin_token, first.secret_key) == (second.admin_token, second.secret_key)
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    other = Settings(data_dir=tmp_path / "other").with_secrets()
    assert other.admin_token != first.admin_token


def test_a_given_token_wins_over_the_stored_one(tmp_path: Path) -> None:
    Settings(data_dir=tmp_path).with_secrets()
    chosen = Settings(data_dir=tmp_path, admin_token="chosen-token-0123456789").with_secrets()
    assert chosen.admin_token == "chosen-token-0123456789"


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(data_dir=tmp_path, admin_token="secret")


def test_the_public_url_defaults_to_an_address_phones_can_reach(tmp_path: Path) -> None:
    url = Settings(data_dir=tmp_path, port=8123).resolved_public_url
    assert url.startswith("http://") and url.endswith(":8123")
    assert "localhost" not in url
