"""`devicemint demo`: the whole story on a local chain, from licences to a verified device."""

from __future__ import annotations

import csv
import hashlib
import os
import sys
import threading
import time
import webbrowser
from datetime import date
from pathlib import Path

import typer
from eth_account import Account
from rich.console import Console
from web3 import Web3

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
from devicemint.cli.onboarding_commands import serve_command
from devicemint.config import Settings
from devicemint.devices.keystore import read_keystore
from devicemint.devices.lifecycle import Lifecycle, Permission, attest, token_id
from devicemint.devices.simulate import simulate_batch
from devicemint.devices.verify import Verifier, resolve
from devicemint.indexer.indexer import indexer_for
from devicemint.licensing import actions
from devicemint.licensing.registry import firmware_image
from devicemint.onboarding.walkthrough import SAMPLE_FIRMWARE, Walkthrough
from devicemint.runtime import Runtime

console = Console()

SERIAL_MODEL = "ATOBD4G"  # the model as it appears in serial numbers
#: The release the demo's first device is updated to over the air.
DEMO_UPDATE = ("1.1.0", hashlib.sha256(b"devicemint demo firmware 1.1.0").digest())


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
    _lifecycle_records(runtime, batch_file, first_serial)
    console.print(f"\n[bold]devicemint verify {first_serial}[/]")
    result = Verifier.of(runtime).verify(first_serial)
    print_verification(result)
    return result.exit_code


def _lifecycle_records(runtime: Runtime, batch_file: Path, serial: str) -> None:
    """A few records of the first device's life: sold, a service organisation authorised, a
    factory reset and an OTA update attested by the device's own key; then indexed."""
    contracts, settings = runtime.contracts, runtime.settings
    with runtime.sessions() as session:
        device = Web3.to_checksum_address(resolve(session, serial))
    stored = read_keystore(
        batch_file.with_name(batch_file.name + ".keys.json"), keystore_passphrase(settings)
    )
    device_key = Account.from_key(stored.get(device) or stored[device.lower()])

    def acting(role: keys.DevRole) -> tuple[TxSender, Lifecycle]:
        account = keys.load_signer(settings, role, chain_id=settings.chain_id)
        sender = TxSender(w3=runtime.w3, account=account, chain_id=settings.chain_id)
        return sender, Lifecycle(contracts=contracts, sender=sender)

    manufacturer, by_manufacturer = acting(keys.DevRole.MANUFACTURER)
    owner, by_owner = acting(keys.DevRole.OWNER)
    service = keys.dev_account(8).address
    by_manufacturer.transfer(device, owner.account.address)
    by_owner.authorize(device, service, Permission.READ_DATA | Permission.OTA, int(time.time()) + 365 * 86400)
    token = token_id(device)
    by_owner.factory_reset(device, attest(contracts, device_key, "FactoryReset", {"tokenId": token}))
    licence_id = int(contracts.device_certificate.functions.certificate(token).call()[2])
    if firmware_image(contracts, licence_id, DEMO_UPDATE[0]) is None:
        actions.publish_firmware(
            contracts,
            manufacturer,
            licence_id=licence_id,
            version=DEMO_UPDATE[0],
            image_sha256=DEMO_UPDATE[1],
        )
    update = {
        "tokenId": token,
        "fromVersion": SAMPLE_FIRMWARE,
        "toVersion": DEMO_UPDATE[0],
        "imageHash": DEMO_UPDATE[1],
    }
    by_owner.firmware_update(
        device,
        from_version=SAMPLE_FIRMWARE,
        to_version=DEMO_UPDATE[0],
        image_sha256=DEMO_UPDATE[1],
        attestation=attest(contracts, device_key, "FirmwareUpdate", update),
    )
    events = indexer_for(runtime).catch_up()
    console.print(
        f"\n[bold]lifecycle of {serial}[/]: sold to {owner.account.address}; {service} authorised "
        f"(read_data, ota); factory reset and OTA update {SAMPLE_FIRMWARE} -> {DEMO_UPDATE[0]} attested by "
        f"the device's key; indexed ({events} new events); see GET /certificates/{device}",
        highlight=False,
    )


def _next_batch_file(batch_dir: Path) -> Path:
    number = len(list(batch_dir.glob("batch-*.csv"))) + 1
    return batch_dir / f"batch-{number:04d}.csv"


def _first_serial(batch_file: Path) -> str:
    with batch_file.open(newline="", encoding="utf-8") as handle:
        return next(csv.DictReader(handle))["serial_number"]


def _open_browser(url: str) -> None:
    """Open the explorer where there is a screen to show it on; on a server (no display) the
    printed address is enough, and a text browser must not take over the terminal."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("darwin", "win32"):
        # A timer: the browser asks once the server below has started.
        threading.Timer(1.5, webbrowser.open, args=(url,)).start()


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
        console.print(
            "\n[bold]portal[/]: the explorer at http://127.0.0.1:8000/ (search any serial, IMEI or address "
            "above), the network figures at /network, each role's portal at /sign-in (development "
            "sign-in: the local chain's dev keys)",
            highlight=False,
        )
        _open_browser("http://127.0.0.1:8000/")
        serve_command(ctx, host="127.0.0.1", port=8000)
        console.print("The chain keeps running; stop it with `devicemint node stop`.")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
