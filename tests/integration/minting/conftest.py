"""A licensed sample manufacturer on a real anvil, with a fresh database per test."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from web3 import Web3

from devicemint.chain.node import LocalNode
from devicemint.cli.chain_commands import deploy
from devicemint.cli.demo_command import onboard_sample_manufacturer
from devicemint.cli.device_commands import DEV_KEYSTORE_PASSPHRASE, release
from devicemint.config import Settings
from devicemint.devices.simulate import simulate_batch
from devicemint.licensing.registry import read_minting_licence
from devicemint.pki.authority import Authority
from devicemint.pki.profiles import DeviceIssuer
from devicemint.runtime import Runtime


@dataclass
class Programme:
    """Everything a minting test needs: settings, runtime and the sample licences."""

    settings: Settings
    runtime: Runtime
    manufacturer_licence_id: int
    device_licence_id: int
    workdir: Path

    def batch(
        self,
        count: int,
        name: str = "batch.csv",
        seed: int | None = None,
        firmware: tuple[str, bytes] | None = None,
    ) -> Path:
        out = self.workdir / name
        simulate_batch(
            count=count,
            out=out,
            keystore=self.workdir / f"{name}.keys.json",
            passphrase=DEV_KEYSTORE_PASSPHRASE,
            domain=self.runtime.domain,
            device_licence_id=self.device_licence_id,
            today=date.today(),
            seed=seed,
            firmware=firmware or release(self.runtime, self.device_licence_id, None),
        )
        return out

    def issuer(self) -> DeviceIssuer:
        """The sample manufacturer's device certificate issuer (its root from the chain's licence)."""
        licence = read_minting_licence(self.runtime.contracts, self.device_licence_id).manufacturer
        return Authority.of(self.settings, self.runtime.sessions).device_issuer(
            holder=licence.holder, root_fingerprint=licence.root_cert_fingerprint
        )

    def env(self) -> dict[str, str]:
        """Environment for running the real `devicemint` command against this programme."""
        return {
            "DEVICEMINT_HOME": str(self.settings.home),
            "DEVICEMINT_DATABASE_URL": self.settings.effective_database_url,
            "DEVICEMINT_NODE_PORT": str(self.settings.node_port),
        }


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def programme(
    anvil_node: LocalNode, w3: Web3, database_url: str, tmp_path: Path, chain_snapshot: None
) -> Iterator[Programme]:
    settings = Settings(
        home=tmp_path / "home", node_port=anvil_node.port, database_url=database_url, mint_chunk_size=20
    )
    deploy(settings)
    runtime = Runtime.open(settings)
    manufacturer_id, device_id = onboard_sample_manufacturer(runtime)
    yield Programme(settings, runtime, manufacturer_id, device_id, tmp_path)
    runtime.sessions.kw["bind"].dispose()
