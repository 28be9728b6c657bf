"""Webhooks from a real chain: anvil, the indexer with the CLI's listeners, a real receiver,
and a reorg that takes back a transfer already delivered."""

from __future__ import annotations

import time
from typing import Any

import pytest
from web3 import Web3

from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.cli.device_commands import DEV_KEYSTORE_PASSPHRASE, mint_file
from devicemint.cli.index_commands import listeners_for
from devicemint.devices.keystore import read_keystore
from devicemint.devices.lifecycle import Lifecycle, token_id
from devicemint.indexer.indexer import indexer_for
from devicemint.webhooks.dispatcher import Dispatcher
from devicemint.webhooks.signing import verify_signature
from tests.integration.minting.conftest import Programme
from tests.integration.webhooks.conftest import Receiver, subscribe

pytestmark = pytest.mark.xdist_group("chain")

ZERO = "0x" + "00" * 20


def rpc(p: Programme, method: str, params: list[Any]) -> Any:
    answer = p.runtime.w3.provider.make_request(method, params)  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer["result"]


def test_chain_events_reach_the_receiver_and_a_reorg_takes_one_back(
    programme: Programme, receiver: Receiver
) -> None:
    p = programme
    _, secret = subscribe(p.runtime.sessions, receiver.url, ["Transfer"], subject="device:*")
    mint_file(p.runtime, p.batch(2), p.device_licence_id, dry_run=False)
    devices = sorted(
        Web3.to_checksum_address(a)
        for a in read_keystore(p.workdir / "batch.csv.keys.json", DEV_KEYSTORE_PASSPHRASE)
    )
    indexer = indexer_for(p.runtime, listeners=listeners_for(p.runtime))
    sender = Dispatcher(sessions=p.runtime.sessions, allow_private_networks=True)

    indexer.catch_up()
    assert sender.run_once().delivered == 2
    mints = [r.json() for r in receiver.requests]
    assert sorted(m["subject"] for m in mints) == [f"device:{d}" for d in devices]
    assert {(m["type"], m["args"]["from"], m["removed"]) for m in mints} == {("Transfer", ZERO, False)}
    for request in receiver.requests:
        verify_signature(secret, request.signature, request.body, now=int(time.time()))

    # Device 0 goes to a stranger in block N, and the receiver is told.
    manufacturer = TxSender(
        w3=p.runtime.w3,
        account=keys.dev_account(int(keys.DevRole.MANUFACTURER)),
        chain_id=p.settings.chain_id,
    )
    stranger, buyer = keys.dev_account(8).address, keys.dev_account(int(keys.DevRole.OWNER)).address
    Lifecycle(contracts=p.runtime.contracts, sender=manufacturer).transfer(devices[0], stranger)
    indexer.catch_up()
    assert sender.run_once().delivered == 1
    orphan = receiver.requests[-1].json()
    assert (orphan["subject"], orphan["args"]["to"]) == (f"device:{devices[0]}", stranger)

    # Block N is replaced by one where device 1 goes to the buyer instead.
    nonce = manufacturer.next_nonce() - 1
    replacement = manufacturer.sign(
        p.runtime.contracts.device_certificate.functions.transferFrom(
            manufacturer.account.address, buyer, token_id(devices[1])
        ),
        nonce=nonce,
        gas=200_000,
    )
    rpc(p, "anvil_reorg", [1, [["0x" + replacement.raw.hex(), 0]]])
    indexer.catch_up()
    assert sender.run_once().delivered == 2

    taken_back, new = sorted((r.json() for r in receiver.requests[-2:]), key=lambda m: not m["removed"])
    assert taken_back == orphan | {"id": orphan["id"] + ":removed", "removed": True}
    assert receiver.requests[-2].key != receiver.requests[-1].key
    assert (new["subject"], new["args"]["to"], new["removed"]) == (f"device:{devices[1]}", buyer, False)
    assert sender.run_once().attempted == 0
