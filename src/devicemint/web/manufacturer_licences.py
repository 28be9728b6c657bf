"""The manufacturer's licences, read from the chain (the source of truth for who may mint what),
and the firmware releases it publishes for a device licence from its wallet.

Which device licences a manufacturer holds is found from the indexer's projection and from the
device applications the onboarding pipeline licensed; each is then read from the chain and kept
only if the chain says this address holds it.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from devicemint.api.deps import Context
from devicemint.db.models import Batch
from devicemint.errors import DevicemintError
from devicemint.indexer.models import DeviceLicenceState
from devicemint.licensing.registry import (
    DeviceLicence,
    ManufacturerLicence,
    published_firmware,
    read_device_licence,
    read_manufacturer_licence,
)
from devicemint.onboarding.cases import NotPermitted
from devicemint.onboarding.models import DeviceApplication
from devicemint.web.manufacturer_common import Me, acting, acting_json, attempt, json_refusal, status_of
from devicemint.web.pages import Viewer

router = APIRouter(include_in_schema=False)

LicenceId = Annotated[int, Path(ge=1, le=2**31 - 1)]
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")


def manufacturer_licence(me: Me) -> ManufacturerLicence | None:
    """The manufacturer licence this address holds on chain, if any."""
    functions = me.runtime.contracts.manufacturer_license.functions
    licence_id = int(functions.licenceIdOf(me.address).call())
    return read_manufacturer_licence(me.runtime.contracts, licence_id) if licence_id else None


def held_device_licences(me: Me) -> list[DeviceLicence]:
    """The device licences the chain says this address holds, by id."""
    lowered = me.address.lower()
    with me.runtime.sessions() as session:
        ids = set(
            session.scalars(
                select(DeviceLicenceState.licence_id).where(func.lower(DeviceLicenceState.holder) == lowered)
            )
        )
        ids |= set(
            session.scalars(
                select(DeviceApplication.licence_id).where(
                    func.lower(DeviceApplication.applicant) == lowered,
                    DeviceApplication.licence_id.is_not(None),
                )
            )
        )
    licences = [read_device_licence(me.runtime.contracts, i) for i in sorted(ids) if i]
    return [lic for lic in licences if lic.holder.lower() == lowered]


def held_licence(me: Me, licence_id: int) -> DeviceLicence:
    """A device licence this manufacturer holds; another's is refused, naming its holder."""
    licence = read_device_licence(me.runtime.contracts, licence_id)
    if licence.holder.lower() != me.address.lower():
        raise NotPermitted(
            f"device licence {licence_id} is held by {licence.holder}; only its holder acts on it here"
        )
    return licence


@router.get("/licences/{licence_id}", response_model=None)
def licence_page(request: Request, ctx: Context, who: Viewer, licence_id: LicenceId) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    licence = attempt(lambda: held_licence(me, licence_id))
    if isinstance(licence, DevicemintError):
        return me.refuse_error(licence, f"Device licence {licence_id}")
    with me.runtime.sessions() as session:
        batches = session.scalars(
            select(Batch).where(Batch.device_licence_id == licence_id).order_by(Batch.id.desc())
        ).all()
        application = session.scalar(
            select(DeviceApplication).where(DeviceApplication.licence_id == licence_id)
        )
        dossier_firmware = [
            f for f in (application.dossier if application else []) if f["role"] == "firmware"
        ]
    return me.page(
        "manufacturer/licence.html",
        licence=licence,
        firmware=published_firmware(me.runtime.contracts, licence_id),
        batches=batches,
        dossier_firmware=dossier_firmware,
    )


class FirmwareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(max_length=64)
    image_sha256: str = Field(max_length=66)


@router.post("/licences/{licence_id}/firmware-transaction", response_model=None)
def firmware_transaction(
    request: Request, ctx: Context, who: Viewer, licence_id: LicenceId, body: FirmwareIn
) -> JSONResponse:
    """The `publishFirmware` call the holder's wallet sends, after the checks the contract would
    make are made here with messages naming the field."""
    me = acting_json(request, ctx, who)
    if not isinstance(me, Me):
        return me
    version = body.version.strip()
    image = body.image_sha256.strip().lower().removeprefix("0x")
    if not VERSION.fullmatch(version):
        return json_refusal(422, "Version: letters, digits and . + _ - only, such as 1.2.0")
    if not re.fullmatch(r"[0-9a-f]{64}", image):
        return json_refusal(422, "Image SHA-256: 64 hexadecimal characters")
    licence = attempt(lambda: held_licence(me, licence_id))
    if isinstance(licence, DevicemintError):
        return json_refusal(status_of(licence), str(licence))
    if version in published_firmware(me.runtime.contracts, licence_id):
        return json_refusal(
            409, f"Version: firmware {version} is already published for device licence {licence_id}"
        )
    device_license = me.runtime.contracts.device_license
    call = device_license.functions.publishFirmware(licence_id, version, bytes.fromhex(image))
    return JSONResponse({"to": device_license.address, "data": call._encode_transaction_data()})
