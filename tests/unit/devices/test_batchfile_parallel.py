"""Validating in worker processes: the same results as the sequential path, and no process left behind."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from devicemint.devices import batchfile
from devicemint.devices.batchfile import (
    POOL_CHUNK_ROWS,
    POOL_CHUNKS_PER_WORKER,
    BatchValidator,
    FactoryRow,
    RawRow,
    iter_rows,
)
from devicemint.devices.proof import ProofDomain
from devicemint.devices.simulate import simulate_batch

from .rows import CONTRACT, DOMAIN, LICENCE, TODAY, csv_text, write_jsonl

COUNT = 3_000  # six chunks: the pool engages, and chunks wait for each other


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("parallel")
    simulate_batch(
        count=COUNT,
        out=folder / "batch.csv",
        keystore=folder / "keys.json",
        passphrase="factory secret",
        domain=DOMAIN,
        device_licence_id=LICENCE,
        today=TODAY,
        seed=5,
    )
    return folder / "batch.csv"


@pytest.fixture(autouse=True)
def no_children_left() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []


def run(source: Any, workers: int, **kw: Any) -> tuple[list[Any], tuple[int, int, int, int], str | None]:
    """Everything a caller can observe: the results, the counters, and the error that ended it."""
    validator = BatchValidator(
        source, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY, workers=workers, **kw
    )
    results: list[Any] = []
    failure = None
    try:
        for result in validator:
            results.append(result)
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
    return results, (validator.rows, validator.valid, validator.invalid, validator.errors), failure


def same_both_ways(source: Any, **kw: Any) -> tuple[list[Any], tuple[int, int, int, int], str | None]:
    sequential = run(source, 0, **kw)
    assert run(source, 2, **kw) == sequential
    return sequential


def raw_rows(path: Path) -> list[dict[str, str]]:
    return [dict(raw) for _, raw in iter_rows(path)]


# --------------------------------------------------------------------------- #
# The same results
# --------------------------------------------------------------------------- #


def test_clean_simulated_batch(simulated: Path) -> None:
    results, counts, failure = same_both_ways(simulated)
    assert failure is None
    assert counts == (COUNT, COUNT, 0, 0)
    assert all(isinstance(r, FactoryRow) for r in results)
    assert [r.row for r in results] == list(range(2, COUNT + 2))


def _spoil(rows: list[dict[str, str]]) -> set[int]:
    """Bad rows and in-file duplicates on both sides of chunk boundaries; returns their indexes."""

    def wrong_check_digit(row: dict[str, str]) -> None:
        row["imei"] = row["imei"][:14] + str((int(row["imei"][14]) + 1) % 10)

    def same_serial_as_first(row: dict[str, str]) -> None:
        row["serial_number"] = rows[3]["serial_number"]

    def same_imei_as_an_earlier_chunk(row: dict[str, str]) -> None:
        row["imei"] = rows[POOL_CHUNK_ROWS + 7]["imei"]

    def same_address_in_lower_case(row: dict[str, str]) -> None:
        row["device_address"] = rows[POOL_CHUNK_ROWS - 1]["device_address"].lower()

    spoilers = [
        wrong_check_digit,
        lambda row: row.update(firmware_version="9.9.9"),  # signed value changed: signature mismatch
        lambda row: row.update(ict_result="fail"),
        lambda row: row.update(manufacturing_date="2024-02-30"),
        lambda row: row.update(provisioning_date="2999-01-01"),
        lambda row: row.update(qa_passed="maybe"),
        lambda row: row.update(serial_number=" " + row["serial_number"]),
        lambda row: row.update(device_signature="0x00"),
        lambda row: row.update(firmware_sha256="zz"),
        lambda row: row.update(device_address=row["device_address"][:-1]),
        lambda row: row.update(qa_inspector=""),
        same_serial_as_first,
        same_imei_as_an_earlier_chunk,
        same_address_in_lower_case,
    ]
    spoiled: set[int] = set()
    boundaries = [k * POOL_CHUNK_ROWS + d for k in range(1, COUNT // POOL_CHUNK_ROWS) for d in (-2, -1, 0, 1)]
    for n, index in enumerate(boundaries + [5, 1234, COUNT - 1]):
        spoilers[n % len(spoilers)](rows[index])
        spoiled.add(index)
    return spoiled


def test_bad_rows_and_duplicates_across_chunks_in_csv(simulated: Path, tmp_path: Path) -> None:
    rows = raw_rows(simulated)
    spoiled = _spoil(rows)
    lines = csv_text(rows).splitlines(keepends=True)
    # A row with too few values and a blank line, mid-chunk: row numbers shift after them.
    lines[700:700] = ["a,b,c\n", "\n"]
    path = tmp_path / "bad.csv"
    path.write_text("".join(lines), encoding="utf-8")

    results, (count, valid, invalid, _), failure = same_both_ways(path)
    assert failure is None
    assert count == COUNT + 1 and invalid == len(spoiled) + 1 and valid == COUNT - len(spoiled)
    reasons = [e.reason for r in results if isinstance(r, list) for e in r]
    assert sum("each device appears once per file" in reason for reason in reasons) >= 3
    assert any("has 3 values, expected 15" in reason for reason in reasons)


def test_bad_rows_in_json_lines_with_the_known_hook(simulated: Path, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = raw_rows(simulated)
    spoiled = _spoil(rows)
    rows[40]["imei"] = int(rows[40]["imei"])
    rows[499]["colour"] = "red"
    del rows[500]["imei"]
    rows[1001]["qa_passed"] = True
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[998:998] = ["{not json\n", "[1, 2]\n", '{"imei": "1", "imei": "2"}\n', "\n"]
    path.write_text("".join(lines), encoding="utf-8")

    calls: list[tuple[dict[str, int], ...]] = []
    taken = {rows[n]["device_address"] for n in (2, 499, 1500)}

    def known(serials, imeis, addresses):
        calls.append((dict(serials), dict(imeis), dict(addresses)))
        return [(row, "device_address", "already certified") for a, row in addresses.items() if a in taken]

    sequential = run(path, 0, known=known, chunk_size=700)
    sequential_calls, calls[:] = list(calls), []
    assert run(path, 2, known=known, chunk_size=700) == sequential
    assert calls == sequential_calls and len(calls) == 5
    results, (count, _, invalid, _), failure = sequential
    # Bad: the spoiled rows, rows 40 (an IMEI as a JSON number) and 2 (known), the three bad lines.
    assert failure is None and count == COUNT + 3 and invalid == len(spoiled | {2, 40}) + 3
    # The three taken rows, and the one that copies row 499's address in lower case.
    assert sum(isinstance(r, list) and r[-1].reason == "already certified" for r in results) == 4


@pytest.mark.parametrize("where", [0, 1, POOL_CHUNK_ROWS - 1, POOL_CHUNK_ROWS, 2 * POOL_CHUNK_ROWS, 1700])
def test_a_file_that_fails_mid_way(simulated: Path, tmp_path: Path, where: int) -> None:
    lines = simulated.read_bytes().splitlines(keepends=True)
    spoilt = tmp_path / "bad.csv"
    spoilt.write_bytes(b"".join(lines[: where + 1]) + b"\xff\xfe,\n" + b"".join(lines[where + 1 :]))
    results, _, failure = same_both_ways(spoilt)
    assert failure is not None and failure.startswith("BatchFileError") and "not UTF-8 text" in failure
    # The text layer decodes ahead, so the error is raised somewhat before the bad line.
    assert len(results) <= where

    malformed = tmp_path / "malformed.csv"
    malformed.write_bytes(b"".join(lines[: where + 1]) + b'"a"b,c\n' + b"".join(lines[where + 1 :]))
    results, counts, failure = same_both_ways(malformed)
    assert failure is not None and "malformed CSV" in failure
    assert len(results) == counts[0] == where
    # With the hook, the rows waiting for it are dropped alike.
    same_both_ways(malformed, known=lambda *_: [], chunk_size=300)


def test_a_source_that_raises_mid_way(simulated: Path) -> None:
    rows = list(iter_rows(simulated))

    def source() -> Iterator[tuple[int, RawRow]]:
        yield from rows[:1700]
        raise ValueError("the factory's feed broke")

    sequential = run(source(), 0)
    assert run(source(), 2) == sequential
    assert sequential[2] == "ValueError: the factory's feed broke" and sequential[1][0] == 1700


def test_header_problems_and_empty_files(tmp_path: Path) -> None:
    header = tmp_path / "header.csv"
    header.write_text("serial_number,imie\n1,2\n")
    results, counts, failure = same_both_ways(header)
    assert failure is None and counts[:3] == (1, 0, 1) and results[0][0].row == 1
    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    assert same_both_ways(empty)[1][:3] == (1, 0, 1)
    assert (
        same_both_ways(tmp_path / "missing.csv")[2]
        == f"BatchFileError: {tmp_path / 'missing.csv'}: no such file"
    )


# --------------------------------------------------------------------------- #
# When the pool starts, how far it reads ahead, and that it stops
# --------------------------------------------------------------------------- #


def unreadable_rows(count: int, read: list[int] | None = None) -> Iterator[tuple[int, RawRow]]:
    """Rows that are cheap to validate (each is reported with its problem alone)."""
    for n in range(count):
        raw = RawRow()
        raw.problem = f"unreadable {n}"  # travels to the worker and back with the row
        if read is not None:
            read.append(n)
        yield n + 1, raw


@pytest.mark.parametrize(("count", "pools"), [(0, 0), (POOL_CHUNK_ROWS, 0), (POOL_CHUNK_ROWS + 1, 1)])
def test_a_pool_only_for_more_than_one_chunk(monkeypatch: pytest.MonkeyPatch, count: int, pools: int) -> None:
    started = []
    real = batchfile.ProcessPoolExecutor

    def counting(*args: Any, **kw: Any) -> Any:
        started.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(batchfile, "ProcessPoolExecutor", counting)
    results, counts, _ = run(unreadable_rows(count), 2)
    assert len(started) == pools
    assert counts == (count, 0, count, count)
    assert [r[0].reason for r in results] == [f"unreadable {n}" for n in range(count)]


def test_workers_are_forked_before_the_first_result(simulated: Path) -> None:
    validator = BatchValidator(simulated, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY, workers=2)
    results = iter(validator)
    assert multiprocessing.active_children() == []
    next(results)
    assert len(multiprocessing.active_children()) == 2
    results.close()  # type: ignore[attr-defined]
    assert multiprocessing.active_children() == []


def test_reading_ahead_is_bounded() -> None:
    read: list[int] = []
    ahead = 0
    for yielded, _ in enumerate(
        BatchValidator(
            unreadable_rows(20_000, read), domain=DOMAIN, device_licence_id=LICENCE, today=TODAY, workers=2
        )
    ):
        ahead = max(ahead, len(read) - yielded)
    assert len(read) == 20_000
    assert POOL_CHUNK_ROWS < ahead <= POOL_CHUNKS_PER_WORKER * 2 * POOL_CHUNK_ROWS


def test_stopping_early_leaves_no_child_processes(simulated: Path) -> None:
    validator = BatchValidator(simulated, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY, workers=2)
    for _ in validator:
        break
    assert multiprocessing.active_children() == []

    with pytest.raises(RuntimeError, match="the caller failed"):
        for n, _ in enumerate(validator):
            if n == 1200:
                raise RuntimeError("the caller failed")
    assert multiprocessing.active_children() == []

    def known(*_: Any) -> list[Any]:
        raise ConnectionError("database gone")

    with pytest.raises(ConnectionError):
        list(
            BatchValidator(
                simulated, domain=DOMAIN, device_licence_id=LICENCE, today=TODAY, workers=2, known=known
            )
        )


def _die(chunk: Any, *args: Any) -> Any:
    os._exit(1)  # a worker killed mid-chunk (say by the OOM killer)


def test_a_dead_worker_fails_the_iteration_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batchfile, "_validate_chunk", _die)
    with pytest.raises(BrokenProcessPool):
        list(
            BatchValidator(
                unreadable_rows(2_000), domain=DOMAIN, device_licence_id=LICENCE, today=TODAY, workers=2
            )
        )


def test_workers_end_with_a_parent_killed_outright(simulated: Path) -> None:
    script = textwrap.dedent(
        f"""
        import multiprocessing, time
        from datetime import date
        from devicemint.devices.batchfile import BatchValidator
        from devicemint.devices.proof import ProofDomain

        domain = ProofDomain({DOMAIN.chain_id}, {DOMAIN.verifying_contract!r})
        today = date.fromisoformat({TODAY.isoformat()!r})
        for _ in BatchValidator({str(simulated)!r}, domain=domain, device_licence_id={LICENCE}, today=today, workers=2):
            print(*(p.pid for p in multiprocessing.active_children()), flush=True)
            time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]  # type: ignore[union-attr]
    finally:
        parent.kill()
        parent.wait()
    assert len(workers) == 2

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:  # do not leave them behind when this fails
        os.kill(pid, 9)
    assert not left, "the workers outlived their parent"


def test_workers_argument() -> None:
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="workers must be an integer >= 0"):
            BatchValidator([], domain=DOMAIN, device_licence_id=LICENCE, today=TODAY, workers=bad)  # type: ignore[arg-type]


def test_what_crosses_to_the_workers_pickles() -> None:
    domain = pickle.loads(pickle.dumps(ProofDomain(31337, CONTRACT.lower())))
    assert domain == DOMAIN and domain.separator == DOMAIN.separator
    raw = RawRow({"imei": "1"})
    raw.problem = "broken"
    again = pickle.loads(pickle.dumps(raw))
    assert type(again) is RawRow and again == raw and again.problem == "broken"
    assert json.loads(json.dumps(again)) == {"imei": "1"}


def test_results_pickle_to_equal_values(simulated: Path) -> None:
    (row_no, raw), *_ = iter_rows(simulated)
    result, keys = batchfile._validate(row_no, raw, DOMAIN, LICENCE, TODAY)
    assert isinstance(result, FactoryRow)
    again = pickle.loads(pickle.dumps(result))
    assert again == result and again.proof_fields(LICENCE) == result.proof_fields(LICENCE)
    assert (
        pickle.loads(pickle.dumps(keys))
        == keys
        == batchfile._Keys(result.serial_number, result.imei, result.device_address)
    )


def test_the_issue_step_runs_in_the_workers_and_is_never_pickled(simulated: Path) -> None:
    """Intake issues each device's X.509 certificate where the row is validated. The step holds
    a signing key, so it reaches the workers through fork, not pickle: a lock stands for it."""
    unpicklable = threading.Lock()

    def issue(row: FactoryRow) -> bytes:
        with unpicklable:
            return f"{os.getpid()}:{row.serial_number}".encode()

    sequential, counts, failure = run(simulated, 0, issue=issue)
    parallel, parallel_counts, parallel_failure = run(simulated, 2, issue=issue)
    assert failure is parallel_failure is None and counts == parallel_counts == (COUNT, COUNT, 0, 0)
    # The same rows, each with its certificate; only where it was made differs.
    assert [replace(r, certificate=b"") for r in parallel] == [
        replace(r, certificate=b"") for r in sequential
    ]
    made = [r.certificate.decode().split(":") for r in parallel]
    assert [serial for _, serial in made] == [r.serial_number for r in sequential]
    assert os.getpid() not in {int(pid) for pid, _ in made}
    assert {r.certificate.decode().split(":")[0] for r in sequential} == {str(os.getpid())}
