"""`devicemint factory simulate`, `devicemint mint` and `devicemint verify`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import requests
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from web3 import Web3

from devicemint.chain import keys
from devicemint.chain.deployments import Contracts
from devicemint.chain.tx import TxSender
from devicemint.config import Settings
from devicemint.devices import bundle as bundles
from devicemint.devices.intake import IntakeRejected
from devicemint.devices.minting import MintReport, mint_batch_file
from devicemint.devices.simulate import simulate_batch
from devicemint.devices.verify import Standing, Verification, Verifier
from devicemint.errors import ChainError, ConfigError, NotFound, UsageError
from devicemint.licensing.registry import published_firmware
from devicemint.runtime import Runtime

console = Console()
factory_app = typer.Typer(help="Factory tools.", no_args_is_help=True)

DEV_KEYSTORE_PASSPHRASE = "devicemint-dev-only"


def keystore_passphrase(settings: Settings) -> str:
    """Device keys are encrypted at rest; only the dev chain may use the published default."""
    if settings.device_keystore_passphrase:
        return settings.device_keystore_passphrase
    if settings.is_local_chain:
        return DEV_KEYSTORE_PASSPHRASE
    raise ConfigError("set DEVICEMINT_DEVICE_KEYSTORE_PASSPHRASE to encrypt the simulated device keys")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


@factory_app.command("simulate")
def simulate(
    ctx: typer.Context,
    count: int = typer.Option(..., "--count", min=1, help="How many devices."),
    device_licence: int = typer.Option(..., "--device-licence", min=1, help="Device licence id."),
    out: Path = typer.Option(..., "--out", help="Batch file to write (.csv or .jsonl)."),
    keystore: Path | None = typer.Option(
        None, "--keystore", help="Device keystore (default: OUT.keys.json)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Make the batch reproducible."),
    firmware_version: str | None = typer.Option(
        None, "--firmware-version", help="A release published for the licence (default: the latest)."
    ),
) -> None:
    """Write a realistic factory batch: device keys, IMEIs, test results, proofs of possession."""
    if seed is not None and not ctx.obj.is_local_chain:
        # A seeded generator makes the device keys predictable: fine for tests, never for devices.
        raise UsageError("--seed makes device keys predictable and is only allowed on the dev chain 31337")
    runtime = Runtime.open(ctx.obj)
    firmware = release(runtime, device_licence, firmware_version)
    keystore = keystore or out.with_name(out.name + ".keys.json")
    with progress_bar() as progress:
        task = progress.add_task("simulating devices", total=count)
        simulate_batch(
            count=count,
            out=out,
            keystore=keystore,
            passphrase=keystore_passphrase(ctx.obj),
            domain=runtime.domain,
            device_licence_id=device_licence,
            today=date.today(),
            seed=seed,
            firmware=firmware,
            on_progress=lambda n: progress.update(task, completed=n),
        )
    console.print(
        f"wrote {count} devices with firmware {firmware[0]} to {out}; device keys (encrypted) in {keystore}"
    )


def release(runtime: Runtime, device_licence_id: int, version: str | None) -> tuple[str, bytes]:
    """A firmware release published for the licence: the one named, or the latest."""
    published = published_firmware(runtime.contracts, device_licence_id)
    if not published:
        raise UsageError(
            f"device licence {device_licence_id} has no published firmware; publish a release first"
        )
    if version is None:
        version = list(published)[-1]
    if version not in published:
        raise UsageError(
            f"firmware {version!r} is not published for device licence {device_licence_id}; "
            f"published: {', '.join(published)}"
        )
    return version, published[version]


def mint_file(
    runtime: Runtime,
    path: Path,
    device_licence_id: int,
    *,
    dry_run: bool,
    as_json: bool = False,
    design_hash: str | None = None,
) -> MintReport | None:
    """Validate a batch file and, unless dry-run, mint it; resumable by calling it again."""
    settings = runtime.settings
    account = keys.load_signer(settings, keys.DevRole.MANUFACTURER, chain_id=settings.chain_id)
    with progress_bar() as progress:
        validating = progress.add_task("validating", total=None)
        minting: list[TaskID] = []

        def minted(n: int, total: int) -> None:
            if not minting:
                progress.update(validating, total=total, completed=total)
                minting.append(progress.add_task("minting", total=total))
            progress.update(minting[0], completed=n)

        run = mint_batch_file(
            runtime,
            path,
            device_licence_id,
            sender=TxSender(w3=runtime.w3, account=account, chain_id=settings.chain_id),
            dry_run=dry_run,
            design_hash=design_hash,
            on_validated=lambda n: progress.update(validating, completed=n),
            on_minted=minted,
        )
        count = run.intake.device_count
        progress.update(validating, total=count, completed=count)
    summary = run.as_dict()
    if run.report is None:
        # A file taken in before was validated then; it is not validated against itself again.
        state = f"already taken in as batch {run.intake.batch_id}" if run.intake.already_ingested else "valid"
        _say(
            as_json,
            summary,
            f"{path}: {count} devices {state}; Merkle root {run.intake.merkle_root} (dry run)",
        )
        return None
    report = run.report
    _say(
        as_json,
        summary,
        f"batch {report.chain_batch_id}: {report.minted_now} minted now, {report.already_minted} already minted, "
        f"{report.transactions} transactions, {summary['gas_per_device']:,} gas per device, "
        f"root {run.intake.merkle_root}",
    )
    return report


def _say(as_json: bool, data: dict, text: str) -> None:
    if as_json:
        print(json.dumps(data))
    else:
        console.print(text)


def mint_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Factory batch file (.csv or .jsonl)."),
    device_licence: int = typer.Option(..., "--device-licence", min=1),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate only; store and mint nothing."),
    design_hash: str | None = typer.Option(
        None,
        "--design-hash",
        help="The design the factory built (0x...); refused unless it is the licence's.",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Validate a factory batch and mint its certificates (re-run to resume after a crash)."""
    runtime = Runtime.open(ctx.obj)
    try:
        mint_file(runtime, file, device_licence, dry_run=dry_run, as_json=as_json, design_hash=design_hash)
    except IntakeRejected as exc:
        if as_json:
            print(
                json.dumps(
                    {
                        "valid": False,
                        "rows_read": exc.rows_read,
                        "errors": [{"row": e.row, "field": e.field, "reason": e.reason} for e in exc.errors],
                    }
                )
            )
        raise


def print_verification(result: Verification) -> None:
    colour = {Standing.GENUINE: "green", Standing.NOT_IN_GOOD_STANDING: "yellow"}.get(result.standing, "red")
    console.print(f"[bold {colour}]{result.standing.value.replace('_', ' ')}[/] {result.address}")
    table = Table(show_header=True, header_style="bold")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for check in result.checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAIL[/]", check.detail)
    console.print(table)
    if result.document:
        device = result.document["device"]
        known = [f"serial {device['serial_number']}", f"IMEI {device['imei']}"]
        known += [f"batch {result.chain_batch_id}"] if result.chain_batch_id is not None else []
        known += [f"owner {result.owner}"] if result.owner else []
        console.print(", ".join(known))


def verify_command(
    ctx: typer.Context,
    query: str = typer.Argument(None, help="0x address, token id, serial number or IMEI."),
    as_json: bool = typer.Option(False, "--json"),
    export: Path | None = typer.Option(
        None,
        "--export",
        file_okay=False,
        help="Also write the device's verification bundle into this directory.",
    ),
    bundle: Path | None = typer.Option(
        None,
        "--bundle",
        file_okay=False,
        help="Verify an exported bundle instead (offline unless --rpc-url).",
    ),
    rpc_url: str | None = typer.Option(
        None, "--rpc-url", help="With --bundle: also check the on-chain root and licences at this endpoint."
    ),
    trust_root: Path | None = typer.Option(
        None,
        "--trust-root",
        dir_okay=False,
        exists=True,
        help="With --bundle: the foundation root PEM to trust.",
    ),
) -> None:
    """Is this device genuine and in good standing? Exit 0 yes, 3 known but not, 4 not found."""
    if bundle is not None:
        if query or export:
            raise UsageError("--bundle verifies a bundle: give no QUERY and no --export with it")
        result = _verify_bundle(bundle, rpc_url=rpc_url, trust_root=trust_root)
    else:
        if rpc_url or trust_root:
            raise UsageError("--rpc-url and --trust-root go with --bundle")
        if not query or not query.strip():
            raise UsageError("QUERY is empty: give a 0x address, token id, serial number or IMEI")
        result = _verify_query(ctx.obj, query, export=export, as_json=as_json)
    if as_json:
        print(json.dumps(result.to_dict(), default=str))
    else:
        print_verification(result)
        if bundle is not None and rpc_url is None:
            console.print("offline: the on-chain root and licence standing were not checked (give --rpc-url)")
        if export is not None:
            console.print(f"bundle written to {export} (see {export / 'VERIFY.txt'})")
    raise typer.Exit(result.exit_code)


def _verify_query(settings: Settings, query: str, *, export: Path | None, as_json: bool) -> Verification:
    verifier = Verifier.of(Runtime.open(settings))
    try:
        return verifier.verify(query) if export is None else bundles.export(verifier, query, export)
    except NotFound as exc:
        if as_json:
            print(json.dumps({"query": query, "standing": "not_found", "detail": str(exc), "exit_code": 4}))
        raise


def _verify_bundle(directory: Path, *, rpc_url: str | None, trust_root: Path | None) -> Verification:
    bundle = bundles.Bundle.read(directory, trust_root=trust_root)
    contracts = None
    if rpc_url is not None:
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
        try:
            chain_id = int(w3.eth.chain_id)
        except requests.RequestException as exc:
            raise ChainError(f"cannot reach the chain at {rpc_url}") from exc
        if chain_id != bundle.deployment.chain_id:
            raise UsageError(
                f"{rpc_url} is chain {chain_id}; the bundle is for chain {bundle.deployment.chain_id}"
            )
        contracts = Contracts.bind(w3, bundle.deployment)
    return bundles.BundleVerifier(bundle=bundle, contracts=contracts).verify()


def register(app: typer.Typer) -> None:
    app.add_typer(factory_app, name="factory")
    app.command("mint")(mint_command)
    app.command("verify")(verify_command)
