"""The `devicemint` command: parse, call the library, map errors to exit codes.

Settings are read once here and handed to every command through the Typer context.
"""

from __future__ import annotations

import sys

import click
import typer
from rich.console import Console

from devicemint.cli import chain_commands, device_commands, demo_command
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

stderr = Console(stderr=True)


@app.callback()
def _settings(ctx: typer.Context) -> None:
    ctx.obj = load_settings()


def main() -> None:
    try:
        result = app(standalone_mode=False)
    except click.UsageError as exc:
        exc.show()
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DevicemintError as exc:
        stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        stderr.print("interrupted; re-run the same command to finish where it stopped")
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
