"""The real `devicemint` command, as a person runs it: demo, verify exit codes, deploy, mint errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from devicemint.chain.keys import dev_account
from devicemint.chain.node import LocalNode, free_port

DEVICEMINT = str(Path(sys.executable).with_name("devicemint"))


class Cli:
    def __init__(self, home: Path, port: int) -> None:
        self.env = {**os.environ, "DEVICEMINT_HOME": str(home), "DEVICEMINT_NODE_PORT": str(port)}
        self.home = home

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DEVICEMINT, *args], env=self.env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """One demo run (its own node on a free port) shared by the tests of this module."""
    runner = Cli(tmp_path_factory.mktemp("home"), free_port())
    demo = runner("demo", "--devices", "30", "--no-serve")
    assert demo.returncode == 0, demo.stderr + demo.stdout
    assert "genuine" in demo.stdout
    yield runner
    runner("node", "stop")


def _first_device(cli: Cli) -> dict[str, str]:
    (batch,) = sorted((cli.home / "demo").glob("batch-*.csv"))
    with batch.open(newline="") as handle:
        return next(csv.DictReader(handle))


def test_verify_exit_codes(cli: Cli) -> None:
    device = _first_device(cli)
    for query in (device["serial_number"], device["imei"], device["device_address"]):
        result = cli("verify", query, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["standing"] == "genuine"
    missing = cli("verify", "0x" + "12" * 20)
    assert missing.returncode == 4 and "no certificate" in missing.stderr
    assert cli("verify").returncode == 2  # usage error: no query


def test_certificates_survive_a_node_restart(cli: Cli) -> None:
    device = _first_device(cli)
    assert cli("node", "stop").returncode == 0
    assert cli("node", "status").returncode == 1
    assert cli("node", "start").returncode == 0
    result = cli("verify", device["serial_number"], "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["address"] == device["device_address"]


def test_deploy_is_idempotent_and_recorded(cli: Cli) -> None:
    recorded = json.loads((cli.home / "deployments" / "31337.json").read_text())
    again = cli("deploy", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout) == recorded


def test_node_status_reports_the_running_node(cli: Cli) -> None:
    status = cli("node", "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["running"] is True


def test_simulate_then_dry_run_then_mint(cli: Cli, tmp_path: Path) -> None:
    batch = tmp_path / "line-3.jsonl"
    simulated = cli("factory", "simulate", "--count", "12", "--device-licence", "1", "--out", str(batch))
    assert simulated.returncode == 0, simulated.stderr
    assert (tmp_path / "line-3.jsonl.keys.json").exists()
    dry = cli("mint", str(batch), "--device-licence", "1", "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["devices"] == 12
    minted = cli("mint", str(batch), "--device-licence", "1", "--json")
    assert minted.returncode == 0, minted.stderr
    assert json.loads(minted.stdout)["minted_now"] == 12


def test_mint_reports_every_bad_row_and_mints_nothing(cli: Cli, tmp_path: Path) -> None:
    batch = tmp_path / "bad.csv"
    assert (
        cli("factory", "simulate", "--count", "4", "--device-licence", "1", "--out", str(batch)).returncode
        == 0
    )
    rows = list(csv.DictReader(batch.open(newline="")))
    rows[0]["imei"] = "123"
    rows[3]["qa_inspection_date"] = "2026-13-45"
    with batch.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = cli("mint", str(batch), "--device-licence", "1", "--json")
    assert result.returncode == 1
    errors = json.loads(result.stdout)["errors"]
    assert {(e["row"], e["field"]) for e in errors} >= {(2, "imei"), (5, "qa_inspection_date")}
    assert "nothing was minted" in result.stderr
    assert cli("verify", rows[1]["serial_number"]).returncode == 4


def test_dev_keys_are_refused_on_any_other_chain(tmp_path: Path) -> None:
    """On chain 1337 `deploy` needs a real keystore; anvil's public dev key is refused even inside one."""
    node = LocalNode(state_dir=tmp_path / "node", port=free_port(), chain_id=1337, persist=False)
    node.start()
    try:
        token = "0x" + "11" * 20
        env = {
            **os.environ,
            "DEVICEMINT_HOME": str(tmp_path / "home"),
            "DEVICEMINT_RPC_URL": node.rpc_url,
            "DEVICEMINT_CHAIN_ID": "1337",
            "DEVICEMINT_STAKING_TOKEN": token,
            "DEVICEMINT_FOUNDATION": "0x" + "22" * 20,
            "DEVICEMINT_TREASURY": "0x" + "33" * 20,
            "DEVICEMINT_COMMITTEE": "0x" + "44" * 20 + ",0x" + "55" * 20,
        }

        def run(**extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [DEVICEMINT, "deploy"], env={**env, **extra}, capture_output=True, text=True, timeout=120
            )

        no_key = run()
        assert no_key.returncode == 2 and "no signing key configured for chain 1337" in no_key.stderr
        keystore = tmp_path / "dev-key.json"
        keystore.write_text(
            json.dumps(Account.encrypt(dev_account(0).key, "pw", kdf="scrypt", iterations=2**10))
        )
        dev_key = run(DEVICEMINT_KEY_FILE=str(keystore), DEVICEMINT_KEY_PASSPHRASE="pw")
        assert dev_key.returncode == 2 and "public development key" in dev_key.stderr
        assert dev_account(0).key.hex() not in dev_key.stderr + dev_key.stdout
    finally:
        node.stop()
