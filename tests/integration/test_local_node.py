"""The embedded anvil keeps every certificate across a stop and start."""

from __future__ import annotations

import subprocess
from pathlib import Path

from web3 import Web3

from devicemint.chain.keys import DevRole, dev_account
from devicemint.chain.node import LocalNode, free_port


def test_state_survives_stop_and_start(tmp_path: Path) -> None:
    node = LocalNode(state_dir=tmp_path, port=free_port())
    node.start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        sender, receiver = dev_account(DevRole.FOUNDATION), dev_account(DevRole.OWNER)
        before = w3.eth.get_balance(receiver.address)
        tx = sender.sign_transaction(
            {
                "to": receiver.address,
                "value": 12345,
                "gas": 21000,
                "nonce": 0,
                "chainId": 31337,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 1,
            }
        )
        w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction))
        block = w3.eth.block_number
        assert node.stop() is True
        assert node.status().running is False
        assert node.state_file.stat().st_size > 0

        node.start()
        assert node.status().block_number == block
        assert w3.eth.get_balance(receiver.address) == before + 12345
    finally:
        node.stop()
    assert node.stop() is False  # stopping twice is harmless


def test_start_is_idempotent(tmp_path: Path) -> None:
    node = LocalNode(state_dir=tmp_path, port=free_port(), persist=False)
    first = node.start()
    try:
        assert node.start().pid == first.pid
    finally:
        node.stop()


def test_a_stale_pid_file_never_signals_another_program(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        node = LocalNode(state_dir=tmp_path, port=free_port(), persist=False)
        tmp_path.mkdir(exist_ok=True)
        (tmp_path / "anvil.pid").write_text(str(stranger.pid))
        assert node.stop() is False
        assert stranger.poll() is None  # still alive
    finally:
        stranger.kill()
        stranger.wait()
