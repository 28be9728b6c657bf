"""The `devicemint` command: parse, call the library, map errors to exit codes.

Settings are read once here and handed to every command through the Typer context.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from devicemint.cli import (
    chain_commands,
    demo_command,
    device_commands,
    index_commands,
    lifecycle_commands,
    onboarding_commands,
    pki_commands,
)
from devicemint.config import load_settings
from devicemint.errors import DevicemintError

app = typer.Typer(
    name="devicemint",
    help="Licensed manufacturers, device licences and Device Minting Certificates on an EVM chain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
chain_commands.register(app)
device_commands.register(app)
demo_command.register(app)
index_commands.register(app)
lifecycle_commands.register(app)
onboarding_commands.register(app)
pki_commands.register(app)

stderr = Console(stderr=True)


@app.callback()
def _settings(ctx: typer.Context) -> None:
    ctx.obj = load_settings()


def main() -> None:
    """Entry point: Typer handles usage errors (exit 2); ours get their message and exit code."""
    try:
        app()
    except DevicemintError as exc:
        stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
