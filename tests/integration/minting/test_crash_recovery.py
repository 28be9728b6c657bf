"""A mint killed with SIGKILL at any moment is finished by running the same command again."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from devicemint.chain import keys
from devicemint.cli.device_commands import mint_file
from devicemint.db.models import Certificate, ChainTx
from devicemint.devices.verify import Standing, Verifier

from .conftest import Programme, read_rows

DEVICEMINT = str(Path(sys.executable).with_name("devicemint"))
DEVICES = 100


def _start_mint(p: Programme, batch: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **p.env(), "DEVICEMINT_MINT_CHUNK_SIZE": "10", "DEVICEMINT_MAX_IN_FLIGHT": "2"}
    return subprocess.Popen(
        [DEVICEMINT, "mint", str(batch), "--device-licence", str(p.device_licence_id)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(p: Programme, batch: Path) -> None:
    process = _start_mint(p, batch)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()


def _journal_statuses(p: Programme) -> dict[str, int]:
    with p.runtime.sessions() as session:
        return dict(session.execute(select(ChainTx.status, func.count()).group_by(ChainTx.status)).all())


def _wait_for(predicate, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"devicemint mint ended early: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"condition not reached in time; stderr: {process.stderr.read().decode()}")  # type: ignore[union-attr]


def _assert_all_minted_once(p: Programme, batch: Path) -> None:
    certificate = p.runtime.contracts.device_certificate.functions
    holder = keys.dev_account(keys.DevRole.MANUFACTURER).address
    assert certificate.balanceOf(holder).call() == DEVICES
    for row in read_rows(batch):
        assert certificate.exists(int(row["device_address"], 16)).call()
    with p.runtime.sessions() as session:
        assert session.scalar(select(func.count()).where(Certificate.minted.is_(True))) == DEVICES
        assert session.scalar(select(func.count()).where(Certificate.pending_tx_id.is_not(None))) == 0
    assert _journal_statuses(p).get("signed", 0) == 0


def _pending_in_pool(p: Programme) -> int:
    status = p.runtime.w3.provider.make_request("txpool_status", [])["result"]
    return int(status["pending"], 16)


@pytest.fixture
def manual_mining(programme: Programme):  # type: ignore[no-untyped-def]
    w3 = programme.runtime.w3
    w3.provider.make_request("evm_setAutomine", [False])
    yield w3
    w3.provider.make_request("evm_setAutomine", [True])


def _kill_with_a_mint_in_flight(p: Programme, batch: Path) -> None:
    """Run the mint with mining paused; SIGKILL it while a journalled mint waits in the mempool."""
    process = _start_mint(p, batch)
    # The batch must be opened first: mine that one transaction, then catch a mint in flight.
    _wait_for(lambda: _pending_in_pool(p) >= 1, process)
    p.runtime.w3.provider.make_request("evm_mine", [])
    _wait_for(lambda: _journal_statuses(p).get("signed", 0) >= 1 and _pending_in_pool(p) >= 1, process)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_killed_between_send_and_receipt_then_mined(programme: Programme, manual_mining) -> None:  # type: ignore[no-untyped-def]
    p, w3 = programme, manual_mining
    batch = p.batch(DEVICES)
    _kill_with_a_mint_in_flight(p, batch)
    w3.provider.make_request("evm_mine", [])  # the journalled transaction lands after its sender died
    w3.provider.make_request("evm_setAutomine", [True])
    _finish(p, batch)
    _assert_all_minted_once(p, batch)
    assert _journal_statuses(p).get("dropped", 0) == 0


def test_killed_and_the_transaction_lost_from_the_mempool(programme: Programme, manual_mining) -> None:  # type: ignore[no-untyped-def]
    p, w3 = programme, manual_mining
    batch = p.batch(DEVICES)
    _kill_with_a_mint_in_flight(p, batch)
    w3.provider.make_request("anvil_dropAllTransactions", [])  # as if the node restarted and forgot them
    w3.provider.make_request("evm_setAutomine", [True])
    _finish(p, batch)  # re-broadcasts the journalled bytes: same nonces, nothing twice
    _assert_all_minted_once(p, batch)


def _journal_size(p: Programme) -> int:
    with p.runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ChainTx)) or 0)


def test_killed_at_random_moments_until_done(programme: Programme) -> None:
    """Kill during start-up or intake first, then after a random number of journalled transactions."""
    p = programme
    batch = p.batch(DEVICES)
    rng = random.Random(20261122)
    kills = 0
    for attempt in range(4):
        process = _start_mint(p, batch)
        if attempt == 0:
            time.sleep(rng.uniform(0.3, 1.0))
        else:
            target = _journal_size(p) + rng.randint(1, 3)
            deadline = time.monotonic() + 60
            while _journal_size(p) < target and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    _finish(p, batch)
    _assert_all_minted_once(p, batch)
    assert kills >= 3


def test_rerun_while_the_killed_mint_is_still_pending(programme: Programme, manual_mining) -> None:  # type: ignore[no-untyped-def]
    """The normal case on a real chain: the journalled transaction is still in the mempool."""
    p, w3 = programme, manual_mining
    batch = p.batch(DEVICES)
    _kill_with_a_mint_in_flight(p, batch)
    rerun = _start_mint(p, batch)
    time.sleep(2.0)  # the re-run finds the journalled transaction pending and waits for it
    assert rerun.poll() is None, rerun.stderr.read().decode()  # type: ignore[union-attr]
    w3.provider.make_request("evm_setAutomine", [True])
    w3.provider.make_request("evm_mine", [])
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    _assert_all_minted_once(p, batch)


def test_a_node_that_forgot_the_mint_gets_it_again(programme: Programme) -> None:
    """The database is a cache: if the chain lost the batch (state restored), the re-run mints it."""
    p = programme
    batch = p.batch(30)
    before = p.runtime.w3.provider.make_request("evm_snapshot", [])["result"]
    assert mint_file(p.runtime, batch, p.device_licence_id, dry_run=False) is not None
    p.runtime.w3.provider.make_request("evm_revert", [before])
    serial = read_rows(batch)[0]["serial_number"]
    verifier = Verifier.of(p.runtime)
    assert verifier.verify(serial).standing is Standing.NOT_MINTED
    again = mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    assert again is not None and again.minted_now == 30
    assert verifier.verify(serial).standing is Standing.GENUINE


def test_a_wrong_minted_flag_is_corrected_from_the_chain(programme: Programme) -> None:
    p = programme
    batch = p.batch(25)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    with p.runtime.sessions() as session, session.begin():
        session.execute(update(Certificate).where(Certificate.position < 3).values(minted=False))
    again = mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    assert again is not None and (again.minted_now, again.already_minted) == (0, 25)
