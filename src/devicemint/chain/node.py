"""The embedded local chain: the pinned anvil from npm, run as a background process.

State is persisted under the data directory (`--state` dumps on a graceful stop, and every few
seconds while running), so stopping and starting the node keeps every certificate. Stop sends
SIGTERM and waits, because anvil writes its state only on an orderly exit.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from devicemint.config import LOCAL_CHAIN_ID
from devicemint.errors import ChainError, ConfigError

_PLATFORM_PACKAGES = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
}
STATE_DUMP_INTERVAL_SECONDS = 2
BLOCK_GAS_LIMIT = 60_000_000


def find_anvil() -> Path:
    """Locate the pinned anvil binary installed by npm (not the node wrapper script).

    The wrapper would not forward SIGTERM, and anvil must receive it to dump its state.
    """
    package = _PLATFORM_PACKAGES.get((platform.system(), platform.machine()))
    roots = [Path.cwd(), *Path(__file__).resolve().parents]
    for root in roots:
        if package:
            candidate = root / "node_modules" / "@foundry-rs" / package / "bin" / "anvil"
            if candidate.is_file():
                return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ConfigError(
        "anvil not found: run `make setup` (npm ci installs the pinned @foundry-rs/anvil) "
        "or set DEVICEMINT_ANVIL to an anvil binary"
    )


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    pid: int | None
    rpc_url: str
    chain_id: int | None = None
    block_number: int | None = None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now, for throwaway nodes (tests, benchmarks)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def rpc_call(rpc_url: str, method: str, params: list | None = None, timeout: float = 2.0) -> object:
    """One JSON-RPC call without web3, used to probe a node that may not be up yet."""
    response = requests.post(
        rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}, timeout=timeout
    )
    body = response.json()
    if "error" in body:
        raise ChainError(f"{method} failed at {rpc_url}: {body['error'].get('message')}")
    return body["result"]


class LocalNode:
    """An anvil process owned by a data directory."""

    def __init__(
        self,
        *,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 8545,
        chain_id: int = LOCAL_CHAIN_ID,
        persist: bool = True,
        block_gas_limit: int = BLOCK_GAS_LIMIT,
        anvil: Path | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.host = host
        self.port = port
        self.chain_id = chain_id
        self.persist = persist
        self.block_gas_limit = block_gas_limit
        self.anvil = anvil

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / "anvil.pid"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "anvil.log"

    def _pid(self) -> int | None:
        """The pid of our anvil, if it still runs. A stale pid file whose number now belongs to
        another program is ignored, so `stop` never signals a stranger."""
        try:
            pid = int(self._pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"anvil" not in cmdline.read_bytes():
            return None
        return pid

    def _answers(self) -> int | None:
        try:
            return int(str(rpc_call(self.rpc_url, "eth_chainId", timeout=0.5)), 16)
        except (requests.RequestException, ValueError, ChainError):
            return None

    def command(self) -> list[str]:
        cmd = [
            str(self.anvil or find_anvil()),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--gas-limit",
            str(self.block_gas_limit),
            "--silent",
        ]
        if self.persist:
            cmd += ["--state", str(self.state_file), "--state-interval", str(STATE_DUMP_INTERVAL_SECONDS)]
        return cmd

    def start(self, *, timeout: float = 30.0) -> NodeStatus:
        """Start anvil in its own session so it outlives the CLI command; idempotent."""
        if self._pid() is not None and self._answers() is not None:
            return self.status()
        answering = self._answers()
        if answering is not None:
            raise ChainError(
                f"something else already answers JSON-RPC at {self.rpc_url} (chain id {answering}); "
                "stop it or set DEVICEMINT_NODE_PORT to a free port"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed argument list
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ChainError(
                    f"anvil exited with code {process.returncode} while starting; see {self.log_file}"
                )
            if self._answers() == self.chain_id:
                return self.status()
            time.sleep(0.05)
        self.stop()
        raise ChainError(f"anvil did not answer at {self.rpc_url} within {timeout:.0f}s; see {self.log_file}")

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop gracefully so anvil dumps its state; returns False if it was not running.

        Only if anvil ignores SIGTERM for `timeout` seconds is it killed (its last periodic
        state dump, at most a few seconds old, is then what survives)."""
        pid = self._pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        self._pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> NodeStatus:
        pid = self._pid()
        chain_id = self._answers() if pid is not None else None
        block = None
        if chain_id is not None:
            block = int(str(rpc_call(self.rpc_url, "eth_blockNumber")), 16)
        return NodeStatus(
            running=chain_id is not None, pid=pid, rpc_url=self.rpc_url, chain_id=chain_id, block_number=block
        )


def _alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == 0
    except ChildProcessError:  # started by another command: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
