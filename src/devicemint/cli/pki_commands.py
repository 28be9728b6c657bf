"""`devicemint pki ...`: the foundation root, manufacturer root requests, CRLs, device revocation;
and `devicemint licence revoke-manufacturer`, which reaches the chain of trust too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from devicemint.cli.onboarding_commands import AsJson, AsParty, Party, acting, emit, licence_app
from devicemint.devices.verify import resolve
from devicemint.errors import UsageError
from devicemint.files import write_atomically
from devicemint.licensing.registry import read_manufacturer_licence
from devicemint.licensing.revocation import revoke_manufacturer
from devicemint.pki.authority import Authority
from devicemint.pki.profiles import RevocationReason, fingerprint
from devicemint.runtime import Runtime, open_database

pki_app = typer.Typer(
    help="The X.509 chain of trust: roots, requests, CRLs, revocation.", no_args_is_help=True
)

OutFile = Annotated[
    Path | None, typer.Option("--out", dir_okay=False, help="Write PEM here instead of stdout.")
]
ManufacturerId = Annotated[
    int | None,
    typer.Option("--manufacturer", min=1, help="Manufacturer licence id (default: the foundation root)."),
]


def _authority(ctx: typer.Context) -> Authority:
    return Authority.of(ctx.obj, open_database(ctx.obj))


def _pem(data: bytes, out: Path | None) -> None:
    if out is None:
        typer.echo(data.decode(), nl=False)
    else:
        write_atomically(out, data, mode=0o644)


def _summary(certificate: x509.Certificate) -> dict[str, str]:
    return {
        "subject": certificate.subject.rfc4514_string(),
        "sha256": fingerprint(certificate).hex(),
        "serial": f"{certificate.serial_number:x}",
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }


@pki_app.command("init-root")
def init_root(
    ctx: typer.Context,
    organisation: Annotated[str, typer.Option("--organisation", help="The foundation's name.")],
    as_json: AsJson = False,
) -> None:
    """Create the foundation root CA (ECDSA P-256), its key encrypted under $DEVICEMINT_HOME/pki."""
    authority = _authority(ctx)
    root = authority.create_foundation_root(organisation)
    emit(
        as_json,
        {**_summary(root), "key_file": str(authority.foundation_key_path)},
        f"foundation root {root.subject.rfc4514_string()}, SHA-256 {fingerprint(root).hex()}; "
        f"key encrypted in {authority.foundation_key_path}",
    )


def _ca(ctx: typer.Context, manufacturer: int | None) -> tuple[Authority, x509.Certificate]:
    authority = _authority(ctx)
    if manufacturer is None:
        return authority, authority.foundation_root()
    licence = read_manufacturer_licence(Runtime.open(ctx.obj).contracts, manufacturer)
    return authority, authority.ca_certificate(licence.root_cert_fingerprint)


@pki_app.command("root")
def root_command(ctx: typer.Context, manufacturer: ManufacturerId = None, out: OutFile = None) -> None:
    """The foundation root certificate, or a manufacturer's root certificate, as PEM."""
    _, certificate = _ca(ctx, manufacturer)
    _pem(certificate.public_bytes(Encoding.PEM), out)


@pki_app.command("request")
def request_command(
    ctx: typer.Context,
    organisation: Annotated[str, typer.Option("--organisation", help="The manufacturer's name.")],
    out: OutFile = None,
    party: AsParty = Party.MANUFACTURER,
) -> None:
    """A manufacturer's root-certificate request (CSR), its P-256 key made in this home's encrypted
    keystore (or DEVICEMINT_MANUFACTURER_CA_KEY); the foundation grants with `--csr`."""
    act = acting(ctx, party)
    _pem(act.onboarding.manufacturers.authority.request(act.actor.address, organisation), out)


@pki_app.command("crl")
def crl_command(ctx: typer.Context, manufacturer: ManufacturerId = None, out: OutFile = None) -> None:
    """Write a new CRL for the foundation root (default) or a manufacturer root, signed with that
    CA's key; the API serves the newest. Run it before the last one lapses (7 days)."""
    authority, certificate = _ca(ctx, manufacturer)
    crl = authority.write_crl(fingerprint(certificate))
    _pem(crl.public_bytes(Encoding.PEM), out)


@pki_app.command("revoke-device")
def revoke_device(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="The device: 0x address, token id, serial number or IMEI.")],
    reason: Annotated[
        RevocationReason, typer.Option("--reason", help="Why (RFC 5280 reason).")
    ] = RevocationReason.KEY_COMPROMISE,
    as_json: AsJson = False,
) -> None:
    """Revoke one device's certificate (a cloned or stolen device) on its manufacturer's CRL,
    signed with the manufacturer root key; the device is no longer genuine."""
    if not query.strip():
        raise UsageError("QUERY is empty: give a 0x address, token id, serial number or IMEI")
    runtime = Runtime.open(ctx.obj)
    with runtime.sessions() as session:
        address = resolve(session, query)
    changed = Authority.of(runtime.settings, runtime.sessions).revoke_device(address, reason)
    note = "revoked" if changed else "was already revoked"
    emit(as_json, {"address": address, "reason": reason.value, "revoked_now": changed}, f"{address}: {note}")


@licence_app.command("revoke-manufacturer")
def revoke_manufacturer_command(
    ctx: typer.Context,
    licence_id: Annotated[int, typer.Argument(min=1, help="Manufacturer licence id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; its SHA-256 is recorded on chain.")],
    party: AsParty = Party.FOUNDATION,
    as_json: AsJson = False,
) -> None:
    """Revoke a manufacturer licence for cause (the foundation): on chain, and its root certificate
    on the foundation CRL, so no device minted under it is genuine any more."""
    act = acting(ctx, party)
    authority = act.onboarding.manufacturers.authority
    contracts = act.onboarding.manufacturers.contracts
    licence = revoke_manufacturer(contracts, authority, act.sender, licence_id, reason=reason)
    emit(
        as_json,
        {"licence_id": licence_id, "status": licence.status.name.lower()},
        f"manufacturer licence {licence_id} ({licence.name}) is {licence.status.name.lower()}; "
        "its root certificate is on the foundation CRL",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(pki_app, name="pki")
