"""`devicemint demo`: the whole story on a local chain, from licences to a verified device."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from devicemint.chain import keys
from devicemint.chain.node import LocalNode
from devicemint.chain.tx import TxSender
from devicemint.cli.chain_commands import deploy, local_node
from devicemint.cli.device_commands import (
    keystore_passphrase,
    mint_file,
    print_verification,
    progress_bar,
    release,
)
from devicemint.config import Settings
from devicemint.devices.simulate import simulate_batch
from devicemint.devices.verify import Verifier
from devicemint.licensing import actions
from devicemint.runtime import Runtime

console = Console()

SAMPLE_MANUFACTURER = "Acme Telematics Ltd"
SAMPLE_MODEL = "AT-OBD-4G"
SAMPLE_REVISION = "rev-C"
SAMPLE_FIRMWARE = "1.0.0"
SERIAL_MODEL = "ATOBD4G"  # the model as it appears in serial numbers
STAKE = 100_000 * 10**18

# Sample evidence: in the onboarding pipeline these are real uploaded documents.
SAMPLE_EVIDENCE = {
    "mou": b"Memorandum of Understanding between the foundation and Acme Telematics Ltd (sample)",
    "root_certificate": b"Acme Telematics manufacturer root certificate (sample, until the PKI issue)",
    "design_dossier": b"AT-OBD-4G rev-C schematics, BOM, firmware image and documents (sample)",
    "integration_audit": b"Hardware, CX and integration audit reports for AT-OBD-4G rev-C (sample)",
    "firmware_image": b"AT-OBD-4G firmware 1.0.0 image (sample)",
}


def _sha(name: str) -> bytes:
    return hashlib.sha256(SAMPLE_EVIDENCE[name]).digest()


def _sender(runtime: Runtime, role: keys.DevRole) -> TxSender:
    return TxSender(w3=runtime.w3, account=keys.dev_account(role), chain_id=runtime.settings.chain_id)


def onboard_sample_manufacturer(runtime: Runtime) -> tuple[int, int]:
    """Licence the sample manufacturer and its design (once; later runs reuse them)."""
    contracts = runtime.contracts
    foundation = _sender(runtime, keys.DevRole.FOUNDATION)
    manufacturer = _sender(runtime, keys.DevRole.MANUFACTURER)
    address = manufacturer.account.address
    licence_id = int(contracts.manufacturer_license.functions.licenceIdOf(address).call())
    if licence_id == 0:
        foundation.transact(contracts.staking_token.functions.mint(address, STAKE), what="funding the stake")
        actions.stake(contracts, manufacturer, STAKE)
        licence_id = actions.grant_manufacturer_licence(
            contracts,
            foundation,
            manufacturer=address,
            name=SAMPLE_MANUFACTURER,
            root_cert_fingerprint=_sha("root_certificate"),
            evidence_hash=_sha("mou"),
        )
    console.print(f"manufacturer licence {licence_id}: {SAMPLE_MANUFACTURER} ({address}), 100,000 staked")

    design_hash = _sha("design_dossier")
    device_licence_id = int(contracts.device_license.functions.licenceOfDesign(design_hash).call())
    if device_licence_id == 0:
        committee = [_sender(runtime, r) for r in (keys.DevRole.COMMITTEE_1, keys.DevRole.COMMITTEE_2)]
        device_licence_id = actions.issue_device_licence(
            contracts,
            committee[0],
            committee,
            manufacturer=address,
            design_hash=design_hash,
            model=SAMPLE_MODEL,
            revision=SAMPLE_REVISION,
            evidence_hash=_sha("integration_audit"),
        )
        actions.publish_firmware(
            contracts,
            manufacturer,
            licence_id=device_licence_id,
            version=SAMPLE_FIRMWARE,
            image_sha256=_sha("firmware_image"),
        )
    console.print(
        f"device licence {device_licence_id}: {SAMPLE_MODEL} {SAMPLE_REVISION}, "
        f"design 0x{design_hash.hex()[:16]}..., voted by the committee"
    )
    return licence_id, device_licence_id


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
    result = Verifier(sessions=runtime.sessions, contracts=runtime.contracts, domain=runtime.domain).verify(
        first_serial
    )
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
    """Local chain, contracts, a licensed sample manufacturer, N minted devices, one verification."""
    code = run_demo(ctx.obj, devices=devices)
    if not no_serve:
        console.print(
            "\nThe portal and API arrive with later issues; nothing to serve yet. "
            "Stop the chain with `devicemint node stop`."
        )
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
