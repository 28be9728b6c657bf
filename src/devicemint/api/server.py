"""The API as `devicemint serve` runs it: over the configured chain, database and evidence store,
signing only with keys this machine holds."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI

from devicemint.api.app import create_app
from devicemint.auth.roles import ChainRoleResolver
from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.config import Settings, load_settings
from devicemint.onboarding.service import Onboarding
from devicemint.runtime import Runtime


def build_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The app with every domain wired in, signing with the keys this machine holds."""
    runtime = runtime or Runtime.open(settings)
    return wire_app(
        runtime,
        Onboarding.open(runtime),
        foundation_signer=server_signer(runtime, keys.DevRole.FOUNDATION),
        minter_signer=server_signer(runtime, keys.DevRole.MANUFACTURER),
    )


def app_from_environment() -> FastAPI:
    """The app of one of `devicemint serve --workers N`'s processes."""
    return build_app(load_settings())


def wire_app(
    runtime: Runtime,
    onboarding: Onboarding,
    *,
    foundation_signer: TxSender | None,
    minter_signer: TxSender | None,
    **options: Any,
) -> FastAPI:
    """The app over a runtime; roles come from the chain and the auditor registry. `options`
    go to `create_app` (sign-in domain, clock)."""
    contracts = runtime.contracts
    return create_app(
        settings=runtime.settings,
        sessions_factory=runtime.sessions,
        role_resolver=ChainRoleResolver(
            manufacturer_license=contracts.manufacturer_license,
            device_license=contracts.device_license,
            is_auditor=onboarding.auditors.scopes_of,
        ),
        runtime=runtime,
        onboarding=onboarding,
        foundation_signer=foundation_signer,
        minter_signer=minter_signer,
        **options,
    )


def server_signer(runtime: Runtime, role: keys.DevRole) -> TxSender | None:
    """The key the server signs with for `role`: the dev account on 31337, else the one
    configured key. None when no key is configured, so a read-only server (verification,
    licences, case files) still starts; a configured key that cannot be used is an error."""
    settings = runtime.settings
    if settings.key_file is None and not settings.is_local_chain:
        return None
    account = keys.load_signer(settings, role, chain_id=settings.chain_id)
    return TxSender(w3=runtime.w3, account=account, chain_id=settings.chain_id)


class Background:
    """What `devicemint serve` runs beside the API: the indexer (which queues webhook deliveries
    in its transactions) and the webhook dispatcher, each in a thread of its own, stopped together."""

    def __init__(self, runtime: Runtime) -> None:
        from devicemint.cli.index_commands import listeners_for
        from devicemint.indexer.indexer import indexer_for
        from devicemint.webhooks.dispatcher import Dispatcher

        self._stop = threading.Event()
        indexer = indexer_for(runtime, listeners=listeners_for(runtime))
        # Private and loopback receivers only on the local chain (a demo's or a test's); on a real
        # network anyone who signs in could otherwise make the server call its own network.
        self._dispatcher = Dispatcher(
            sessions=runtime.sessions, allow_private_networks=runtime.settings.is_local_chain
        )
        poll = {"stop": self._stop, "poll_seconds": runtime.settings.index_poll_seconds}
        self._threads = [
            threading.Thread(target=indexer.run, kwargs=poll, name="indexer", daemon=True),
            threading.Thread(target=self._dispatcher.run, kwargs=poll, name="webhooks", daemon=True),
        ]

    def start(self) -> Background:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self._dispatcher.close()
