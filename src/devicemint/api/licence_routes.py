"""Licences, read by anyone from the chain; and factory batches, minted by the licence holder."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile

from devicemint.api.deps import ApiError, Context, Principal, forbidden, require_scope
from devicemint.auth.api_keys import Scope
from devicemint.devices.batchfile import CSV_SUFFIXES, JSONL_SUFFIXES
from devicemint.devices.minting import mint_batch_file
from devicemint.licensing.registry import (
    DeviceLicence,
    ManufacturerLicence,
    published_firmware,
    read_device_licence,
    read_manufacturer_licence,
)
from devicemint.onboarding.evidence import clean_filename
from devicemint.runtime import Runtime

router = APIRouter(tags=["licences"])

LicenceId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def runtime(ctx: Context) -> Runtime:
    if ctx.runtime is None:
        raise ApiError(503, "not_configured", "this server has no chain deployment")
    return ctx.runtime


Chain = Annotated[Runtime, Depends(runtime)]


def _hexed(record: ManufacturerLicence | DeviceLicence) -> dict[str, Any]:
    """A licence as JSON: hashes as 0x hex, the status by name."""
    view = {k: "0x" + v.hex() if isinstance(v, bytes) else v for k, v in asdict(record).items()}
    view["status"] = record.status.name.lower()
    return view


@router.get("/manufacturer-licences/{licence_id}", summary="A manufacturer licence (public)")
def manufacturer_licence(chain: Chain, licence_id: LicenceId) -> dict[str, Any]:
    return _hexed(read_manufacturer_licence(chain.contracts, licence_id))


@router.get("/device-licences/{licence_id}", summary="A device licence and its published firmware (public)")
def device_licence(chain: Chain, licence_id: LicenceId) -> dict[str, Any]:
    view = _hexed(read_device_licence(chain.contracts, licence_id))
    view["firmware"] = {v: "0x" + h.hex() for v, h in published_firmware(chain.contracts, licence_id).items()}
    return view


@router.post(
    "/device-licences/{licence_id}/batches", status_code=201, summary="Mint a factory batch (licence holder)"
)
def mint_batch(
    ctx: Context,
    chain: Chain,
    principal: Annotated[Principal, Depends(require_scope(Scope.MINT))],
    licence_id: LicenceId,
    file: Annotated[UploadFile, File(description="factory batch, CSV or JSON Lines (DESIGN section 7)")],
    dry_run: Annotated[bool, Form()] = False,
    design_hash: Annotated[str | None, Form(pattern=r"^0x[0-9a-fA-F]{64}$")] = None,
) -> dict[str, Any]:
    """Validated and minted in the request; a repeated upload of the same file resumes it."""
    holder = read_device_licence(chain.contracts, licence_id).holder
    if principal.address.lower() != holder.lower():
        raise forbidden(f"only the holder of device licence {licence_id} ({holder}) may mint under it")
    signer = ctx.minter_signer
    if signer is None:
        raise ApiError(503, "not_configured", "this server holds no minting key")
    name = clean_filename(file.filename or "")
    if not name.lower().endswith(CSV_SUFFIXES + JSONL_SUFFIXES):
        raise ApiError(
            422, "invalid_request", f"file: {name!r} is neither CSV (.csv) nor JSON Lines (.jsonl)"
        )
    with tempfile.TemporaryDirectory() as scratch:
        path = FilePath(scratch) / name
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        run = mint_batch_file(
            chain, path, licence_id, sender=signer, dry_run=dry_run, design_hash=design_hash
        )
    return run.as_dict()
