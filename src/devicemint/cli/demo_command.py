"""`devicemint demo`: the whole story on a local chain, from licences to a verified device."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from devicemint.chain.node import LocalNode
from devicemint.cli.chain_commands import deploy, local_node
from devicemint.cli.device_commands import (
    keystore_passphrase,
    mint_file,
    print_verification,
    progress_bar,
    release,
)
from devicemint.cli.onboarding_commands import serve_command
from devicemint.config import Settings
from devicemint.devices.simulate import simulate_batch
from devicemint.devices.verify import Verifier
from devicemint.onboarding.walkthrough import SAMPLE_FIRMWARE, Walkthrough
from devicemint.runtime import Runtime

console = Console()

SERIAL_MODEL = "ATOBD4G"  # the model as it appears in serial numbers


def onboard_sample_manufacturer(runtime: Runtime) -> tuple[int, int]:
    """The sample manufacturer through every onboarding stage (once; later runs reuse it)."""
    walkthrough = Walkthrough(runtime, say=lambda line: console.print(line, highlight=False))
    return walkthrough.manufacturer_licence(), walkthrough.device_licence()


def run_demo(settings: Settings, *, devices: int) -> int:
    node: LocalNode = local_node(settings)
    status = node.start()
    console.print(f"[bold]local chain[/] at {status.rpc_url} (state in {node.state_file})")
    deployment, is_new = deploy(settings)
    console.print(
        ("deployed contracts" if is_new else "contracts already deployed")
        + f"; certificates at {deployment.device_certificate}"
    )
    runtime = Runtime.open(settings)
    _, device_licence_id = onboard_sample_manufacturer(runtime)

    batch_dir = settings.home / "demo"
    batch_dir.mkdir(parents=True, exist_ok=True)
    batch_file = _next_batch_file(batch_dir)
    with progress_bar() as progress:
        task = progress.add_task("factory: provisioning devices", total=devices)
        simulate_batch(
            count=devices,
            out=batch_file,
            keystore=batch_file.with_name(batch_file.name + ".keys.json"),
            passphrase=keystore_passphrase(settings),
            domain=runtime.domain,
            device_licence_id=device_licence_id,
            today=date.today(),
            seed=None,
            model=SERIAL_MODEL,
            firmware=release(runtime, device_licence_id, SAMPLE_FIRMWARE),
            on_progress=lambda n: progress.update(task, completed=n),
        )
    console.print(f"factory batch {batch_file} ({devices} devices)")
    mint_file(runtime, batch_file, device_licence_id, dry_run=False)

    first_serial = _first_serial(batch_file)
    console.print(f"\n[bold]devicemint verify {first_serial}[/]")
    result = Verifier.of(runtime).verify(first_serial)
    print_verification(result)
    return result.exit_code


def _next_batch_file(batch_dir: Path) -> Path:
    number = len(list(batch_dir.glob("batch-*.csv"))) + 1
    return batch_dir / f"batch-{number:04d}.csv"


def _first_serial(batch_file: Path) -> str:
    with batch_file.open(newline="", encoding="utf-8") as handle:
        return next(csv.DictReader(handle))["serial_number"]


def demo_command(
    ctx: typer.Context,
    devices: int = typer.Option(1000, "--devices", min=1, help="How many simulated devices to mint."),
    no_serve: bool = typer.Option(False, "--no-serve", help="End after the verification."),
) -> None:
    """Local chain, contracts, the sample manufacturer through every onboarding stage, N minted
    devices, one verification; then the API on http://127.0.0.1:8000 until Ctrl-C."""
    settings: Settings = ctx.obj
    code = run_demo(settings, devices=devices)
    if not no_serve:
        serve_command(ctx, host="127.0.0.1", port=8000)
        console.print("The chain keeps running; stop it with `devicemint node stop`.")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
