"""The indexer against a real anvil and both databases: projections, lifecycle, anvil reorgs,
confirmations, a kill -9 at any step, and a rebuild from the deployment block that must give
the same rows."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select
from web3 import Web3

from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.cli.device_commands import DEV_KEYSTORE_PASSPHRASE, mint_file
from devicemint.devices.keystore import read_keystore
from devicemint.devices.lifecycle import Lifecycle, Permission, Stage, attest, token_id
from devicemint.indexer.indexer import Indexer, forget_everything, indexer_for
from devicemint.indexer.models import (
    BatchState,
    ChainEvent,
    DeviceGrant,
    DeviceLicenceState,
    DeviceState,
    FirmwareRelease,
    IndexedBlock,
    IndexerCursor,
    ManufacturerLicenceState,
)
from devicemint.runtime import Runtime
from tests.integration.minting.conftest import Programme

TABLES: dict[type, tuple[Any, ...]] = {
    ChainEvent: (ChainEvent.block_number, ChainEvent.log_index),
    IndexedBlock: (IndexedBlock.number,),
    IndexerCursor: (IndexerCursor.id,),
    DeviceState: (DeviceState.address,),
    DeviceGrant: (DeviceGrant.address, DeviceGrant.grantee),
    BatchState: (BatchState.batch_id,),
    DeviceLicenceState: (DeviceLicenceState.licence_id,),
    FirmwareRelease: (FirmwareRelease.device_licence_id, FirmwareRelease.version),
    ManufacturerLicenceState: (ManufacturerLicenceState.licence_id,),
}


def snapshot(runtime: Runtime) -> dict[str, list[dict[str, Any]]]:
    """Every indexer table, row by row, in a fixed order."""
    with runtime.sessions() as session:
        return {
            model.__tablename__: [
                {c.name: getattr(row, c.name) for c in model.__table__.columns}
                for row in session.scalars(select(model).order_by(*order))
            ]
            for model, order in TABLES.items()
        }


def sender(p: Programme, role: keys.DevRole) -> TxSender:
    return TxSender(w3=p.runtime.w3, account=keys.dev_account(int(role)), chain_id=p.settings.chain_id)


def minted(p: Programme, count: int) -> list[str]:
    batch = p.batch(count)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    keys_by_address = read_keystore(p.workdir / "batch.csv.keys.json", DEV_KEYSTORE_PASSPHRASE)
    p.device_keys = {Web3.to_checksum_address(a): k for a, k in keys_by_address.items()}  # type: ignore[attr-defined]
    return sorted(p.device_keys)  # type: ignore[attr-defined]


def rpc(p: Programme, method: str, params: list[Any]) -> Any:
    answer = p.runtime.w3.provider.make_request(method, params)  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer["result"]


def state(p: Programme, address: str) -> DeviceState:
    with p.runtime.sessions() as session:
        found = session.get(DeviceState, address)
        assert found is not None
        return found


def test_events_and_projections_follow_mint_and_lifecycle(programme: Programme) -> None:
    p = programme
    devices = minted(p, 6)
    manufacturer = sender(p, keys.DevRole.MANUFACTURER)
    owner = keys.dev_account(int(keys.DevRole.OWNER))
    life = Lifecycle(contracts=p.runtime.contracts, sender=manufacturer)
    grantee = keys.dev_account(int(keys.DevRole.AUDITOR)).address
    life.transfer(devices[0], owner.address)
    as_owner = Lifecycle(contracts=p.runtime.contracts, sender=sender(p, keys.DevRole.OWNER))
    as_owner.authorize(devices[0], grantee, Permission.READ_DATA | Permission.OTA, int(time.time()) + 3600)
    as_owner.authorize(
        devices[0], manufacturer.account.address, Permission.FACTORY_RESET, int(time.time()) + 3600
    )
    life.factory_reset(devices[0])  # the manufacturer, with the owner's permission
    device_key = Account.from_key(p.device_keys[devices[1]])  # type: ignore[attr-defined]
    life.factory_reset(
        devices[1], attest(p.runtime.contracts, device_key, "FactoryReset", {"tokenId": token_id(devices[1])})
    )
    life.end_of_life(devices[2], Stage.DECOMMISSIONED, b"\x01" * 32)

    indexer = indexer_for(p.runtime)
    assert indexer.catch_up() > 6
    first = state(p, devices[0])
    assert (first.owner, first.transfers, first.factory_resets, first.stage) == (
        owner.address,
        1,
        1,
        "active",
    )
    assert state(p, devices[1]).factory_resets == 1
    assert state(p, devices[2]).stage == "decommissioned"
    assert state(p, devices[3]).owner == manufacturer.account.address
    with p.runtime.sessions() as session:
        grants = {g.grantee: g.permissions for g in session.scalars(select(DeviceGrant))}
        assert grants == {grantee: 5, manufacturer.account.address: 8}
        batch = session.scalars(select(BatchState)).one()
        assert (batch.device_count, batch.minted, batch.device_licence_id) == (6, 6, p.device_licence_id)
        assert session.get(DeviceLicenceState, p.device_licence_id).status == "active"  # type: ignore[union-attr]
        assert session.get(ManufacturerLicenceState, p.manufacturer_licence_id).status == "active"  # type: ignore[union-attr]
        reset = session.scalars(select(ChainEvent).where(ChainEvent.name == "FactoryReset")).all()
        attesters = [(json.loads(e.args)["attestedBy"], json.loads(e.args)["role"]) for e in reset]
        assert attesters == [(manufacturer.account.address, 2), (devices[1], 1)]
    # A transfer clears the grants, in the projection as on chain.
    as_owner.transfer(devices[0], manufacturer.account.address)
    indexer.catch_up()
    with p.runtime.sessions() as session:
        assert session.scalars(select(DeviceGrant)).all() == []
    assert indexer.catch_up() == 0  # nothing new: nothing stored twice


def test_a_reorg_takes_out_orphaned_records_and_brings_in_the_new_ones(programme: Programme) -> None:
    p = programme
    devices = minted(p, 4)
    manufacturer = sender(p, keys.DevRole.MANUFACTURER)
    stranger = keys.dev_account(8).address
    buyer = keys.dev_account(int(keys.DevRole.OWNER)).address
    indexer = indexer_for(p.runtime)
    indexer.catch_up()

    # Block N: device 0 goes to the stranger, and the indexer sees it.
    Lifecycle(contracts=p.runtime.contracts, sender=manufacturer).transfer(devices[0], stranger)
    indexer.catch_up()
    assert state(p, devices[0]).owner == stranger

    # The chain reorganises: block N is replaced by one where device 1 goes to the buyer instead.
    nonce = manufacturer.next_nonce() - 1
    dc = p.runtime.contracts.device_certificate.functions
    replacement = manufacturer.sign(
        dc.transferFrom(manufacturer.account.address, buyer, token_id(devices[1])), nonce=nonce, gas=200_000
    )
    rpc(p, "anvil_reorg", [1, [["0x" + replacement.raw.hex(), 0]]])
    result = indexer.step()
    assert result is not None and result.rolled_back_to is not None
    indexer.catch_up()

    assert state(p, devices[0]).owner == manufacturer.account.address  # the orphaned transfer is gone
    assert state(p, devices[1]).owner == buyer  # the new one is in
    with p.runtime.sessions() as session:
        transfers = session.scalars(
            select(ChainEvent).where(ChainEvent.name == "Transfer", ChainEvent.subject.like("device:%"))
        ).all()
        moved = [
            json.loads(t.args)["to"] for t in transfers if json.loads(t.args)["from"] != "0x" + "00" * 20
        ]
        assert moved == [buyer]
        cursor = session.get(IndexerCursor, 1)
        assert cursor is not None
        assert cursor.block_hash == p.runtime.w3.eth.get_block(cursor.block_number)["hash"].to_0x_hex()

    # Whatever happened on the way, the result is what a fresh index of this chain gives.
    before = snapshot(p.runtime)
    forget_everything(p.runtime.sessions)
    indexer_for(p.runtime).catch_up()
    assert snapshot(p.runtime) == before


def test_confirmations_keep_the_newest_blocks_out(programme: Programme) -> None:
    p = programme
    devices = minted(p, 2)
    indexer = Indexer(
        w3=p.runtime.w3,
        sessions=p.runtime.sessions,
        deployment=p.runtime.contracts.deployment,
        confirmations=3,
    )
    indexer.catch_up()
    head = p.runtime.w3.eth.block_number
    assert indexer.cursor() == head - 3
    rpc(p, "anvil_mine", [3])
    indexer.catch_up()
    assert indexer.cursor() == head
    assert state(p, devices[0]).batch_id >= 1


def test_killed_at_any_step_it_resumes_and_equals_a_rebuild(programme: Programme) -> None:
    """`devicemint index` is killed with SIGKILL several times while it indexes one block per
    step; each run resumes, and the result equals indexing the chain afresh."""
    p = programme
    devices = minted(p, 8)
    life = Lifecycle(contracts=p.runtime.contracts, sender=sender(p, keys.DevRole.MANUFACTURER))
    for device in devices[:4]:
        rpc(p, "anvil_mine", [40])  # empty blocks: one step each, so the kills land mid-way
        life.end_of_life(device, Stage.DECOMMISSIONED, b"\x02" * 32)
    env = {**os.environ, **p.env(), "DEVICEMINT_INDEX_MAX_BLOCKS": "1", "DEVICEMINT_INDEX_POLL_SECONDS": "1"}
    command = [str(Path(sys.executable).parent / "devicemint"), "index"]
    head = p.runtime.w3.eth.block_number
    start = p.runtime.contracts.deployment.deployed_block - 1
    indexer = indexer_for(replace_settings(p))
    rng = random.Random(5)
    cursors = []
    for threshold in sorted(rng.sample(range(start + 1, head), 4)):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while indexer.cursor() < threshold and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        cursors.append(indexer.cursor())
    assert cursors == sorted(cursors)
    assert any(start < c < head for c in cursors), f"no kill landed mid-way: {cursors} (head {head})"
    indexer.catch_up()
    assert indexer.cursor() == head
    resumed = snapshot(p.runtime)
    forget_everything(p.runtime.sessions)
    indexer_for(p.runtime).catch_up()
    assert snapshot(p.runtime) == resumed
    assert state(p, devices[0]).stage == "decommissioned"


def replace_settings(p: Programme) -> Runtime:
    return replace(p.runtime, settings=replace(p.settings, index_max_blocks=1))


@pytest.mark.parametrize("bad", ["-1"])
def test_negative_confirmations_are_refused(bad: str) -> None:
    from devicemint.config import load_settings
    from devicemint.errors import ConfigError

    with pytest.raises(ConfigError, match="index_confirmations cannot be negative"):
        load_settings({"DEVICEMINT_INDEX_CONFIRMATIONS": bad})
