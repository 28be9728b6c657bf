"""The manufacturer portal, under /portal/manufacturer: its applications and their stage, its
licences and factory batches at a glance, and the pages of each step (see the manufacturer_*
modules: apply, the manufacturer application, device applications, licences, batches).

Read pages work without JavaScript; only what a wallet signs (the MOU, the stake, a firmware
release) needs `static/manufacturer.js`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from devicemint.api.deps import Context
from devicemint.db.models import Batch, Certificate
from devicemint.web import (
    manufacturer_apply,
    manufacturer_batches,
    manufacturer_cases,
    manufacturer_designs,
    manufacturer_devices,
    manufacturer_licences,
)
from devicemint.web.manufacturer_common import PREFIX, Me, acting
from devicemint.web.pages import Viewer

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("", response_model=None)
def overview(request: Request, ctx: Context, who: Viewer) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    manufacturers = me.domain.manufacturers
    applications = [
        {**case, "waiting_for": manufacturers.waiting_for[case["stage"]]}
        for case in manufacturers.visible_to(me.actor)
        if me.is_me(case["applicant"])
    ]
    devices = [
        {**case, "waiting_for": me.domain.devices.waiting_for[case["stage"]]}
        for case in me.domain.devices.visible_to(me.actor)
        if me.is_me(case["applicant"])
    ]
    licence = manufacturer_licences.manufacturer_licence(me)
    device_licences = manufacturer_licences.held_device_licences(me)
    return me.page(
        "manufacturer/overview.html",
        applications=applications,
        devices=devices,
        licence=licence,
        stake=int(me.runtime.contracts.manufacturer_license.functions.stakeOf(me.address).call()),
        device_licences=device_licences,
        batches=_batches(me, [lic.licence_id for lic in device_licences]),
        may_apply=not any(a["stage"] != "rejected" for a in applications),
    )


def _batches(me: Me, licence_ids: list[int]) -> list[dict[str, Any]]:
    """The factory batches under these licences, newest first, with devices minted so far."""
    minted = (
        select(Certificate.batch_id, func.count().label("minted"))
        .where(Certificate.minted.is_(True))
        .group_by(Certificate.batch_id)
        .subquery()
    )
    with me.runtime.sessions() as session:
        rows = session.execute(
            select(Batch, func.coalesce(minted.c.minted, 0))
            .outerjoin(minted, minted.c.batch_id == Batch.id)
            .where(Batch.device_licence_id.in_(licence_ids), Batch.merkle_root.is_not(None))
            .order_by(Batch.id.desc())
        ).all()
    return [{"batch": batch, "minted": int(count)} for batch, count in rows]


for _module in (
    manufacturer_apply,
    manufacturer_cases,
    manufacturer_designs,
    manufacturer_devices,
    manufacturer_licences,
    manufacturer_batches,
):
    router.include_router(_module.router)
