"""`devicemint device ...`: the lifecycle records of a certified device.

Each command acts in person with the `--as` party's key, or relays an attestation signed
elsewhere (`--attestation FILE`). `--sign-only FILE` makes such a file instead of sending: the
attesting party signs (EIP-712, its nonce, a deadline) and anyone can relay it later. Device-
attested records (factory reset, OTA update) are signed with the device's key from the factory
keystore (`--device-keystore`), and the `--as` party relays them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount

from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.cli.device_commands import keystore_passphrase
from devicemint.cli.onboarding_commands import (
    AsJson,
    AsParty,
    Party,
    address_param,
    emit,
    licence_app,
    read_json,
    sha256_param,
)
from devicemint.devices.keystore import read_keystore
from devicemint.devices.lifecycle import (
    IN_PERSON,
    Attestation,
    Lifecycle,
    Permission,
    Stage,
    attest,
    initial_firmware,
    token_id,
)
from devicemint.devices.verify import resolve
from devicemint.errors import UsageError
from devicemint.files import write_atomically
from devicemint.licensing import actions
from devicemint.licensing.registry import firmware_image
from devicemint.onboarding.auditors import checksum
from devicemint.runtime import Runtime

device_app = typer.Typer(help="Lifecycle records of a certified device.", no_args_is_help=True)

Query = Annotated[str, typer.Argument(help="The device: 0x address, token id, serial number or IMEI.")]
AttestationFile = Annotated[
    Path | None,
    typer.Option(
        "--attestation",
        exists=True,
        dir_okay=False,
        help="Relay this signed attestation (made with --sign-only) instead of attesting in person.",
    ),
]
SignOnly = Annotated[
    Path | None,
    typer.Option(
        "--sign-only", dir_okay=False, help="Only sign the attestation into this file; send nothing."
    ),
]
DeviceKeystore = Annotated[
    Path | None,
    typer.Option(
        "--device-keystore",
        exists=True,
        dir_okay=False,
        help="Factory keystore holding the device's key (written by `factory simulate`).",
    ),
]


@dataclass(frozen=True)
class Acting:
    """The opened runtime, the device named by the query, and the `--as` party's key."""

    runtime: Runtime
    device: str
    account: LocalAccount

    @property
    def lifecycle(self) -> Lifecycle:
        sender = TxSender(w3=self.runtime.w3, account=self.account, chain_id=self.runtime.settings.chain_id)
        return Lifecycle(contracts=self.runtime.contracts, sender=sender)


def _acting(ctx: typer.Context, query: str, party: Party) -> Acting:
    if not query.strip():
        raise UsageError("QUERY is empty: give a 0x address, token id, serial number or IMEI")
    settings = ctx.obj
    runtime = Runtime.open(settings)
    with runtime.sessions() as session:
        device = checksum(resolve(session, query))
    account = keys.load_signer(settings, party.dev_role, chain_id=settings.chain_id)
    return Acting(runtime=runtime, device=device, account=account)


def _device_key(acting: Acting, keystore: Path) -> LocalAccount:
    stored = read_keystore(keystore, keystore_passphrase(acting.runtime.settings))
    key = stored.get(acting.device.lower()) or stored.get(acting.device)
    if key is None:
        raise UsageError(f"{keystore} holds no key for device {acting.device}")
    return Account.from_key(key)


def _read_attestation(path: Path, action: str) -> Attestation:
    data = read_json(path)
    if not isinstance(data, Mapping) or data.get("action") != action:
        raise UsageError(f"{path}: not a signed {action} attestation (make one with --sign-only)")
    try:
        return Attestation(
            checksum(str(data["signer"])), int(data["deadline"]), bytes.fromhex(data["signature"][2:])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{path}: field {exc} is missing or malformed (signer, deadline, signature)"
        ) from exc


def _record(
    acting: Acting,
    *,
    action: str,
    fields: Mapping[str, Any],
    attester: LocalAccount | None,
    attestation_file: Path | None,
    sign_only: Path | None,
) -> dict[str, Any]:
    """Sign only, relay a file, relay the device's signature, or attest in person."""
    if attestation_file is not None and (sign_only is not None or attester is not None):
        raise UsageError(
            "--attestation relays a signature made elsewhere; it cannot be combined with signing here"
        )
    if sign_only is not None:
        signer = attester or acting.account
        attestation = attest(acting.runtime.contracts, signer, action, fields)
        document = {
            "action": action,
            "fields": {k: (v.hex() if isinstance(v, bytes) else v) for k, v in fields.items()},
            "signer": attestation.signer,
            "deadline": attestation.deadline,
            "signature": "0x" + attestation.signature.hex(),
        }
        write_atomically(sign_only, (json.dumps(document, indent=2) + "\n").encode())
        return {"device": acting.device, "signed": str(sign_only), "signer": attestation.signer}
    if attestation_file is not None:
        attestation = _read_attestation(attestation_file, action)
    elif attester is not None:
        attestation = attest(acting.runtime.contracts, attester, action, fields)
    else:
        attestation = IN_PERSON
    receipt = acting.lifecycle.record(action, fields, attestation)
    attested_by = attestation.signer if attestation.signature else acting.account.address
    return {
        "device": acting.device,
        "tx_hash": receipt["transactionHash"].to_0x_hex(),
        "attested_by": attested_by,
    }


@device_app.command("authorize")
def authorize_command(
    ctx: typer.Context,
    query: Query,
    grantee: Annotated[str, typer.Argument(callback=address_param, help="The organisation's 0x address.")],
    permissions: Annotated[
        str, typer.Option("--permissions", help="Comma-separated: read_data, manage, ota, factory_reset.")
    ],
    days: Annotated[int, typer.Option("--days", min=1, help="How long the grant lasts.")] = 365,
    party: AsParty = Party.OWNER,
    attestation: AttestationFile = None,
    sign_only: SignOnly = None,
    as_json: AsJson = False,
) -> None:
    """The owner lets an organisation act on the device until the grant expires (a transfer clears it)."""
    granted = Permission.parse(permissions)
    acting = _acting(ctx, query, party)
    expires_at = _expiry(attestation, days)
    fields = {
        "tokenId": token_id(acting.device),
        "grantee": grantee,
        "permissions": int(granted),
        "expiresAt": expires_at,
    }
    result = _record(
        acting,
        action="Authorize",
        fields=fields,
        attester=None,
        attestation_file=attestation,
        sign_only=sign_only,
    )
    result |= {"grantee": grantee, "permissions": granted.names(), "expires_at": expires_at}
    emit(as_json, result, f"{acting.device}: {grantee} may {', '.join(granted.names())} until {expires_at}")


def _expiry(attestation: Path | None, days: int) -> int:
    """A relayed grant keeps the expiry its owner signed; a new one lasts `days` from now."""
    if attestation is not None:
        data = read_json(attestation)
        fields = data.get("fields", {}) if isinstance(data, Mapping) else {}
        if "expiresAt" not in fields:
            raise UsageError(f"{attestation}: no fields.expiresAt; is it an Authorize attestation?")
        return int(fields["expiresAt"])
    return int(time.time()) + days * 86400


@device_app.command("revoke")
def revoke_command(
    ctx: typer.Context,
    query: Query,
    grantee: Annotated[str, typer.Argument(callback=address_param, help="The organisation's 0x address.")],
    party: AsParty = Party.OWNER,
    attestation: AttestationFile = None,
    sign_only: SignOnly = None,
    as_json: AsJson = False,
) -> None:
    """The owner withdraws an organisation's authorisation."""
    acting = _acting(ctx, query, party)
    result = _record(
        acting,
        action="RevokeAuthorization",
        fields={"tokenId": token_id(acting.device), "grantee": grantee},
        attester=None,
        attestation_file=attestation,
        sign_only=sign_only,
    )
    emit(as_json, result | {"grantee": grantee}, f"{acting.device}: {grantee}'s authorisation revoked")


@device_app.command("reset")
def reset_command(
    ctx: typer.Context,
    query: Query,
    device_keystore: DeviceKeystore = None,
    party: AsParty = Party.MANUFACTURER,
    attestation: AttestationFile = None,
    sign_only: SignOnly = None,
    as_json: AsJson = False,
) -> None:
    """Record a factory reset, attested by the device's key (--device-keystore) or by the manufacturer
    holding the owner's factory_reset permission (the --as party, in person)."""
    acting = _acting(ctx, query, party)
    device_key = _device_key(acting, device_keystore) if device_keystore else None
    result = _record(
        acting,
        action="FactoryReset",
        fields={"tokenId": token_id(acting.device)},
        attester=device_key,
        attestation_file=attestation,
        sign_only=sign_only,
    )
    if "tx_hash" in result:
        result["factory_resets"] = acting.lifecycle.state(acting.device).factory_resets
    emit(
        as_json, result, f"{acting.device}: factory reset recorded ({result.get('factory_resets', 'signed')})"
    )


@device_app.command("ota")
def ota_command(
    ctx: typer.Context,
    query: Query,
    to_version: Annotated[str, typer.Option("--to", help="The firmware version now running.")],
    device_keystore: DeviceKeystore = None,
    from_version: Annotated[
        str | None,
        typer.Option("--from", help="Version updated from (default: the certificate's current one)."),
    ] = None,
    party: AsParty = Party.OWNER,
    attestation: AttestationFile = None,
    sign_only: SignOnly = None,
    as_json: AsJson = False,
) -> None:
    """Record an OTA update to firmware published for the device's licence, attested by the device."""
    acting = _acting(ctx, query, party)
    contracts = acting.runtime.contracts
    with acting.runtime.sessions() as session:
        initial = initial_firmware(session, acting.device)
    current = acting.lifecycle.current_firmware(acting.device, initial)
    source = from_version or current
    if source != current:
        raise UsageError(
            f"device {acting.device} runs firmware {current}, not {source}; an update starts from it"
        )
    licence_id = int(contracts.device_certificate.functions.certificate(token_id(acting.device)).call()[2])
    image = firmware_image(contracts, licence_id, to_version)
    if image is None:
        raise UsageError(f"firmware {to_version} is not published for device licence {licence_id}")
    if device_keystore is None and attestation is None and sign_only is None:
        raise UsageError("an OTA update is attested by the device: give --device-keystore or --attestation")
    device_key = _device_key(acting, device_keystore) if device_keystore else None
    fields = {
        "tokenId": token_id(acting.device),
        "fromVersion": source,
        "toVersion": to_version,
        "imageHash": image,
    }
    result = _record(
        acting,
        action="FirmwareUpdate",
        fields=fields,
        attester=device_key,
        attestation_file=attestation,
        sign_only=sign_only,
    )
    result |= {"from_version": source, "to_version": to_version, "image_sha256": image.hex()}
    emit(as_json, result, f"{acting.device}: firmware {source} -> {to_version}")


@device_app.command("eol")
def eol_command(
    ctx: typer.Context,
    query: Query,
    stage: Annotated[str, typer.Argument(help="decommissioned, then recycled or disposed.")],
    evidence: Annotated[
        str,
        typer.Option(
            "--evidence",
            callback=sha256_param,
            help="SHA-256 of the evidence (`devicemint evidence upload`).",
        ),
    ],
    party: AsParty = Party.OWNER,
    attestation: AttestationFile = None,
    sign_only: SignOnly = None,
    as_json: AsJson = False,
) -> None:
    """Record end of life: decommissioned, then recycled or disposed. Terminal: no transfer, grant,
    reset or OTA update afterwards."""
    try:
        chosen = Stage[stage.upper()]
    except KeyError:
        raise UsageError(f"unknown stage {stage!r}; use decommissioned, recycled or disposed") from None
    acting = _acting(ctx, query, party)
    evidence_hash = bytes.fromhex(evidence)
    result = _record(
        acting,
        action="EndOfLife",
        fields={"tokenId": token_id(acting.device), "stage": int(chosen), "evidenceHash": evidence_hash},
        attester=None,
        attestation_file=attestation,
        sign_only=sign_only,
    )
    emit(as_json, result | {"stage": chosen.name.lower()}, f"{acting.device}: {chosen.name.lower()}")


@device_app.command("transfer")
def transfer_command(
    ctx: typer.Context,
    query: Query,
    to: Annotated[str, typer.Argument(callback=address_param, help="The new owner's 0x address.")],
    party: AsParty = Party.MANUFACTURER,
    as_json: AsJson = False,
) -> None:
    """The owner hands the certificate on with the device; every authorisation is cleared."""
    acting = _acting(ctx, query, party)
    receipt = acting.lifecycle.transfer(acting.device, to)
    result = {"device": acting.device, "to": to, "tx_hash": receipt["transactionHash"].to_0x_hex()}
    emit(as_json, result, f"{acting.device}: now owned by {to}; authorisations cleared")


@device_app.command("show")
def show_command(ctx: typer.Context, query: Query, as_json: AsJson = False) -> None:
    """Owner and lifecycle state on chain: stage, factory resets, current firmware."""
    acting = _acting(ctx, query, Party.OWNER)
    lifecycle = acting.lifecycle
    state = lifecycle.state(acting.device)
    with acting.runtime.sessions() as session:
        initial = initial_firmware(session, acting.device)
    data = {
        "device": acting.device,
        "owner": lifecycle.owner(acting.device),
        "stage": state.stage.name.lower(),
        "factory_resets": state.factory_resets,
        "firmware": lifecycle.current_firmware(acting.device, initial),
        "transfers": state.grant_epoch,
    }
    emit(as_json, data, "  ".join(f"{k}: {v}" for k, v in data.items()))


@licence_app.command("publish-firmware")
def publish_firmware_command(
    ctx: typer.Context,
    licence_id: Annotated[int, typer.Argument(min=1, help="Device licence id.")],
    version: Annotated[str, typer.Argument(help="Firmware version, e.g. 1.1.0.")],
    image_sha256: Annotated[
        str, typer.Option("--image-sha256", callback=sha256_param, help="SHA-256 of the image.")
    ],
    party: AsParty = Party.MANUFACTURER,
    as_json: AsJson = False,
) -> None:
    """The licence holder publishes a firmware release; devices may then record OTA updates to it."""
    settings = ctx.obj
    runtime = Runtime.open(settings)
    account = keys.load_signer(settings, party.dev_role, chain_id=settings.chain_id)
    sender = TxSender(w3=runtime.w3, account=account, chain_id=settings.chain_id)
    image = bytes.fromhex(image_sha256)
    actions.publish_firmware(
        runtime.contracts, sender, licence_id=licence_id, version=version, image_sha256=image
    )
    result = {"licence_id": licence_id, "version": version, "image_sha256": image_sha256}
    emit(as_json, result, f"device licence {licence_id}: firmware {version} published")


def register(app: typer.Typer) -> None:
    app.add_typer(device_app, name="device")
