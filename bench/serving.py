"""Serving figures for `make bench`: the indexer's events per second, and the verify endpoint's
requests per second and p99 latency under wrk, with the database at N certificates
(DEVICEMINT_BENCH_SERVE_DEVICES, default 100,000).

wrk (Debian package `wrk`) drives `devicemint serve` on loopback from a Lua script that asks
for the devices in a random order; the figure is skipped, with a note, where wrk is missing.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import httpx
from sqlalchemy import select

from devicemint.chain.node import free_port
from devicemint.cli.device_commands import mint_file, release
from devicemint.db.models import Certificate
from devicemint.devices.simulate import simulate_batch
from devicemint.indexer.indexer import forget_everything, indexer_for
from devicemint.runtime import Runtime

SERVE_DEVICES = int(os.environ.get("DEVICEMINT_BENCH_SERVE_DEVICES", "100000"))
WRK_SECONDS = int(os.environ.get("DEVICEMINT_BENCH_WRK_SECONDS", "20"))
_LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def fill(runtime: Runtime, device_licence_id: int, workdir: Path) -> int:
    """Mint factory batches of 10,000 until the database holds SERVE_DEVICES certificates."""
    with runtime.sessions() as session:
        have = session.query(Certificate).count()
    part = 0
    while have < SERVE_DEVICES:
        count = min(10_000, SERVE_DEVICES - have)
        batch = workdir / f"serve-{part}.csv"
        simulate_batch(
            count=count,
            out=batch,
            keystore=workdir / f"serve-{part}.keys.json",
            passphrase="bench",
            domain=runtime.domain,
            device_licence_id=device_licence_id,
            today=date.today(),
            seed=100 + part,
            firmware=release(runtime, device_licence_id, None),
        )
        mint_file(runtime, batch, device_licence_id, dry_run=False)
        have += count
        part += 1
    return have


def index_rate(runtime: Runtime) -> tuple[int, float]:
    """Events and seconds to index the whole chain from the deployment block."""
    forget_everything(runtime.sessions)
    started = time.perf_counter()
    events = indexer_for(runtime).catch_up()
    return events, time.perf_counter() - started


def _serve(runtime: Runtime, port: int, workers: int) -> subprocess.Popen[bytes]:
    settings = runtime.settings
    env = {
        **os.environ,
        "DEVICEMINT_HOME": str(settings.home),
        "DEVICEMINT_NODE_PORT": str(settings.node_port),
        "DEVICEMINT_API_ANONYMOUS_RATE_LIMIT": "100000000/minute",
    }
    command = [str(Path(sys.executable).parent / "devicemint"), "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("devicemint serve did not come up within 60 s")


def _wrk(url: str, script: Path, seconds: int) -> tuple[float, str]:
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"\s99%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} failed responses")
    return rps, p99


def verify_load(runtime: Runtime, workdir: Path, *, hot: int, workers: int) -> tuple[float, str, float, str]:
    """(rps, p99) over `hot` devices asked again and again (cached), then over every device in
    a random order, each asked once (computed)."""
    with runtime.sessions() as session:
        addresses = list(session.scalars(select(Certificate.address)))
    random.Random(3).shuffle(addresses)
    port = free_port()
    process = _serve(runtime, port, workers)
    try:
        hot_paths = workdir / "hot.txt"
        hot_paths.write_text("".join(f"/certificates/{a}/verify\n" for a in addresses[:hot]))
        script = workdir / "hot.lua"
        script.write_text(_LUA % hot_paths)
        for address in addresses[:hot]:  # warm the cache
            httpx.get(f"http://127.0.0.1:{port}/certificates/{address}/verify", timeout=30)
        warm = _wrk(f"http://127.0.0.1:{port}", script, WRK_SECONDS)
        cold_paths = workdir / "cold.txt"
        cold_paths.write_text("".join(f"/certificates/{a}/verify\n" for a in addresses[hot:]))
        script.write_text(_LUA % cold_paths)
        cold = _wrk(f"http://127.0.0.1:{port}", script, WRK_SECONDS)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return (*warm, *cold)


def report(runtime: Runtime, device_licence_id: int, workdir: Path) -> None:
    started = time.perf_counter()
    total = fill(runtime, device_licence_id, workdir)
    print(f"\n== serving, {total:,} certificates (filled in {time.perf_counter() - started:.0f}s) ==")
    events, seconds = index_rate(runtime)
    print(f"indexer from block 0: {events:,} events in {seconds:.1f}s = {events / seconds:,.0f} events/s")
    if shutil.which("wrk") is None:
        print("verify endpoint: skipped, wrk is not installed (apt-get install wrk)")
        return
    bench_runtime = replace(
        runtime, settings=replace(runtime.settings, api_anonymous_rate_limit="100000000/minute")
    )
    for workers in [int(w) for w in os.environ.get("DEVICEMINT_BENCH_WORKERS", "1,2").split(",")]:
        warm_rps, warm_p99, cold_rps, cold_p99 = verify_load(
            bench_runtime, workdir, hot=1_000, workers=workers
        )
        print(
            f"GET /certificates/{{address}}/verify, wrk 1 thread 32 connections {WRK_SECONDS}s, "
            f"{workers} worker(s):\n"
            f"  1,000 devices asked repeatedly (cached): {warm_rps:,.0f} requests/s, p99 {warm_p99} "
            "(target >= 2,000)\n"
            f"  every device once, random order (each verified): {cold_rps:,.0f} requests/s, p99 {cold_p99}"
        )
