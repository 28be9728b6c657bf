"""`devicemint index`: follow the chain into the database (also run by `devicemint serve`)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from devicemint.cli.onboarding_commands import AsJson, emit
from devicemint.indexer.indexer import Listener, StepResult, forget_everything, indexer_for
from devicemint.runtime import Runtime
from devicemint.webhooks.outbox import WebhookOutbox

stderr = Console(stderr=True)


def index_command(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Catch up with the confirmed head, then stop.")
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Drop what was indexed and index again from the deployment block."),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Index every event of the programme's contracts into the database, reorg-safe and resumable:
    killed at any moment, the next run goes on from the last complete step."""
    runtime = Runtime.open(ctx.obj)
    if rebuild:
        forget_everything(runtime.sessions)
    indexer = indexer_for(runtime, listeners=listeners_for(runtime))
    if once:
        events = indexer.catch_up()
        emit(
            as_json,
            {"events": events, "cursor": indexer.cursor()},
            f"indexed {events} events; at block {indexer.cursor()}",
        )
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report(step: StepResult) -> None:
        if step.rolled_back_to is not None:
            stderr.print(f"reorg: rolled back to block {step.rolled_back_to}")
        if step.events:
            stderr.print(f"blocks {step.from_block}-{step.to_block}: {step.events} events")

    stderr.print(f"indexing from block {indexer.cursor() + 1}; Ctrl-C to stop")
    try:
        indexer.run(stop=stop, poll_seconds=runtime.settings.index_poll_seconds, on_step=report)
    except KeyboardInterrupt:
        stop.set()


def listeners_for(runtime: Runtime) -> tuple[Listener, ...]:
    """What else happens in the indexer's transaction (webhook deliveries are queued there)."""
    return (WebhookOutbox(),)


def register(app: typer.Typer) -> None:
    app.command("index")(index_command)
