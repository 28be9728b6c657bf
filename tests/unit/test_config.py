from __future__ import annotations

from pathlib import Path

import pytest

from devicemint.config import load_settings
from devicemint.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.home == Path(".devicemint") and settings.chain_id == 31337
    assert settings.effective_rpc_url == "http://127.0.0.1:8545"
    assert settings.effective_database_url.startswith("sqlite:///")


def test_toml_then_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "devicemint.toml").write_text('chain_id = 137\nrpc_url = "http://127.0.0.1:9999"\n')
    settings = load_settings(environ={"DEVICEMINT_CHAIN_ID": "80002"}, cwd=tmp_path)
    assert settings.chain_id == 80002 and settings.rpc_url == "http://127.0.0.1:9999"


def test_unknown_setting_and_bad_value_are_named(tmp_path: Path) -> None:
    (tmp_path / "devicemint.toml").write_text("chian_id = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'chian_id'"):
        load_settings(environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="DEVICEMINT_CHAIN_ID"):
        load_settings(environ={"DEVICEMINT_CHAIN_ID": "polygon"}, cwd=tmp_path / "elsewhere")


def test_secrets_are_refused_in_the_settings_file(tmp_path: Path) -> None:
    (tmp_path / "devicemint.toml").write_text('key_passphrase = "hunter2"\n')
    with pytest.raises(ConfigError, match="DEVICEMINT_KEY_PASSPHRASE") as caught:
        load_settings(environ={}, cwd=tmp_path)
    assert "hunter2" not in str(caught.value)
