"""Settings, read once at start-up and passed in.

Sources, later ones winning: built-in defaults, `devicemint.toml` in the working directory
(or the file named by DEVICEMINT_CONFIG), then DEVICEMINT_* environment variables. Nothing in
the package reads the environment anywhere else.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from devicemint.errors import ConfigError

LOCAL_CHAIN_ID = 31337


@dataclass(frozen=True, kw_only=True)
class Settings:
    home: Path = Path(".devicemint")
    database_url: str = ""
    # Empty means the local node that `devicemint node start` runs.
    rpc_url: str = ""
    chain_id: int = LOCAL_CHAIN_ID
    node_host: str = "127.0.0.1"
    node_port: int = 8545
    # Signing key for the acting party on a non-dev chain: an eth-account (V3) keystore file.
    key_file: Path | None = None
    key_passphrase: str | None = None
    # Device keystore passphrase used by `factory simulate` (only a dev default on 31337).
    device_keystore_passphrase: str | None = None
    # Passphrase of the encrypted X.509 CA keys (foundation root, manufacturer roots): from the
    # environment, or from a file such as a mounted secret. A dev default exists on 31337 only.
    pki_passphrase: str | None = None
    pki_passphrase_file: Path | None = None
    # The manufacturer root key that signs device certificates when minting, if not the one in
    # this home's keystore (for example a key the manufacturer made itself for its CSR).
    manufacturer_ca_key: Path | None = None
    # Deployment parties on a non-dev chain (on 31337 they are dev accounts). The staking token
    # is the network's own ERC-20 there; a stand-in is deployed on 31337.
    staking_token: str | None = None
    foundation: str | None = None
    treasury: str | None = None
    committee: str = ""  # comma-separated addresses
    quorum: int = 2
    # Processes that validate batch rows (signature recovery is the costly part); 0 = in-process.
    intake_workers: int = min(os.cpu_count() or 1, 4)
    mint_chunk_size: int = 500
    max_in_flight: int = 4
    # The anvil binary for the embedded node (default: the pinned one installed by npm).
    anvil: Path | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    # Blocks the indexer stays behind the head, so short reorgs never reach the database (it
    # follows deeper ones too). None: 0 on the local chain, where blocks are final at once; 12
    # elsewhere.
    index_confirmations: int | None = None
    index_poll_seconds: int = 1
    # Requests an anonymous client may make to the public API (e.g. "120/minute"), counted in
    # memory or in Redis ("redis://127.0.0.1:6379") so that several workers share the count.
    api_anonymous_rate_limit: str = "120/minute"
    rate_limit_storage: str = "memory://"
    # How long after the index or the revocation list changed a cached verification may still be
    # served: each API process looks for a change at most this often (0: on every request).
    verify_staleness_seconds: float = 0.5
    # Blocks read per step (one eth_getLogs, one database transaction).
    index_max_blocks: int = 2000

    @property
    def effective_index_confirmations(self) -> int:
        if self.index_confirmations is not None:
            return self.index_confirmations
        return 0 if self.is_local_chain else 12

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'devicemint.db').resolve()}"

    @property
    def effective_rpc_url(self) -> str:
        return self.rpc_url or f"http://{self.node_host}:{self.node_port}"

    @property
    def is_local_chain(self) -> bool:
        return self.chain_id == LOCAL_CHAIN_ID

    def with_home(self, home: Path) -> Settings:
        return replace(self, home=home)


_ENV_PREFIX = "DEVICEMINT_"
# Secrets come from the environment only, never from a file that may be committed or copied.
_SECRETS = frozenset({"key_passphrase", "device_keystore_passphrase", "pki_passphrase"})


def _coerce(name: str, raw: object, annotation: str) -> object:
    """Turn a TOML or environment value into the field's type, with a clear error."""
    if raw is None:
        return None
    try:
        if annotation.startswith("int"):
            return int(raw)  # type: ignore[call-overload]
        if annotation.startswith("Path"):
            return Path(str(raw)).expanduser()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: {raw!r} is not a valid {annotation.split(' ')[0]}") from exc


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read settings once: defaults, then devicemint.toml, then the environment."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    known = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, object] = {}

    toml_path = Path(environ.get("DEVICEMINT_CONFIG", cwd / "devicemint.toml"))
    if toml_path.is_file():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_path}: not valid TOML ({exc})") from exc
        for key, raw in data.items():
            if key in _SECRETS:
                raise ConfigError(
                    f"{toml_path}: {key} must not be written in a file; set DEVICEMINT_{key.upper()} instead"
                )
            if key not in known:
                raise ConfigError(
                    f"{toml_path}: unknown setting {key!r}; known settings: {', '.join(sorted(known))}"
                )
            values[key] = _coerce(key, raw, known[key])

    for name, annotation in known.items():
        env_name = _ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _coerce(env_name, environ[env_name], annotation)

    settings = Settings(**values)  # type: ignore[arg-type]
    if (settings.index_confirmations or 0) < 0 or min(
        settings.index_poll_seconds, settings.index_max_blocks
    ) < 1:
        raise ConfigError(
            "index_confirmations cannot be negative; index_poll_seconds and index_max_blocks must be at least 1"
        )
    if settings.mint_chunk_size < 1 or settings.max_in_flight < 1:
        raise ConfigError("mint_chunk_size and max_in_flight must be at least 1")
    return settings
