"""The public explorer: find a device and see whether it is genuine, and why; the licences behind
it; the network's figures. No sign-in, no JavaScript needed.

Every answer comes from what the API serves (`Certificates.view` runs the same checks as
`devicemint verify`) and from the indexer's projections, whose times are block timestamps; the
page adds words, never a conclusion of its own. What a visitor can download (the certificate
document's exact bytes, its Merkle proof, the X.509 chain) is what they need to check the answer
without trusting this server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from devicemint.api.deps import ApiContext, Context, Principal
from devicemint.db.models import Certificate, Document
from devicemint.devices.certificates import STANDINGS, Certificates
from devicemint.devices.merkle import leaf_hash
from devicemint.devices.verify import ADDRESS
from devicemint.errors import NotFound, UsageError
from devicemint.indexer.models import (
    BatchState,
    ChainEvent,
    DeviceLicenceState,
    DeviceState,
    FirmwareRelease,
    ManufacturerLicenceState,
)
from devicemint.onboarding.cases import timeline
from devicemint.onboarding.models import Certification, DeviceApplication, ManufacturerApplication
from devicemint.web.pages import Viewer, refusal, render

router = APIRouter(include_in_schema=False)

#: What the search box accepts, said the same way everywhere.
ACCEPTED = "a 0x address (0x and 40 hexadecimal digits), a token id, a serial number or a 15-digit IMEI"
MAX_QUERY = 80  # the API's limit on a device query; serial numbers have at most 64 characters
DAY = 86_400
CHART_DAYS = 60  # the chart's longest span: the last 60 days with mints
CHART_MIN_DAYS = 14  # and its shortest, so a new network's first day still reads as a series

STANDING_WORDS = {
    "genuine": "Genuine, licensed and in good standing",
    "not_genuine": "Not genuine",
    "not_in_good_standing": "Not in good standing",
    "not_minted": "Not minted yet",
}
CHECK_WORDS = {
    "on_chain": "Certificate token on chain",
    "document": "Certificate document is this device's",
    "merkle_proof": "Document committed by the batch's Merkle root",
    "device_signature": "Device's proof of possession",
    "device_licence_binding": "Document matches its device licence",
    "device_licence": "Device licence not revoked",
    "manufacturer_licence_binding": "Document matches its manufacturer licence",
    "manufacturer_licence": "Manufacturer licence in standing",
    "x509_chain": "X.509 certificate chain",
}
EVENT_WORDS = {
    "Minted": "Minted",
    "Transferred": "Transferred",
    "AuthorizationGranted": "Authorisation granted",
    "AuthorizationRevoked": "Authorisation revoked",
    "AuthorizationsCleared": "Authorisations cleared",
    "FactoryReset": "Factory reset",
    "FirmwareUpdated": "Firmware updated (OTA)",
    "EndOfLife": "End of life",
}


# -- small words ----------------------------------------------------------------------------------


def when(timestamp: int | None) -> str:
    """A block timestamp as people read it, in UTC (the chain's clock has no time zone)."""
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def tokens(amount: int) -> str:
    """An 18-decimal token amount in whole tokens, with thousands separators."""
    whole = Decimal(amount) / Decimal(10**18)
    return f"{whole:,.18f}".rstrip("0").rstrip(".")


def _plain_hash(value: str | None) -> str | None:
    """A bytes32 as 0x hex, or None for the zero hash (no reason given, no evidence)."""
    if not value or int(value, 16) == 0:
        return None
    return value


def _whole_number(text: str) -> int | None:
    """A licence or batch id as typed: a whole number from 1, or None (the page then says so)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        return None
    return int(text)


# -- access to the data ---------------------------------------------------------------------------


def _no_deployment(request: Request, ctx: ApiContext, who: Principal | None) -> HTMLResponse:
    return refusal(
        request,
        ctx,
        who,
        503,
        "No chain deployment",
        "This server is not connected to a devicemint deployment, so there is nothing to explore yet.",
    )


def _over_limit(request: Request, ctx: ApiContext, who: Principal | None) -> HTMLResponse | None:
    """Anonymous visitors share the API's read budget (a page costs what its API call costs);
    signed-in people are not limited, as in the API."""
    if who is not None or ctx.rate_limiter is None:
        return None
    client = request.client.host if request.client else "unknown"
    if ctx.rate_limiter.hit(client):
        return None
    return refusal(
        request,
        ctx,
        who,
        429,
        "Too many requests",
        f"Too many requests from {client} ({ctx.rate_limiter.describe()}). Wait a minute, or sign in.",
    )


@dataclass(frozen=True)
class Figures:
    """The network at a glance, from the indexer's projections."""

    manufacturers_active: int
    manufacturers_total: int
    device_licences_active: int
    device_licences_total: int
    devices_minted: int
    batches: int


def figures(session: Session) -> Figures:
    def count(query: Any) -> int:
        return int(session.scalar(query) or 0)

    return Figures(
        manufacturers_active=count(
            select(func.count())
            .select_from(ManufacturerLicenceState)
            .where(ManufacturerLicenceState.status == "active")
        ),
        manufacturers_total=count(select(func.count()).select_from(ManufacturerLicenceState)),
        device_licences_active=count(
            select(func.count()).select_from(DeviceLicenceState).where(DeviceLicenceState.status == "active")
        ),
        device_licences_total=count(select(func.count()).select_from(DeviceLicenceState)),
        devices_minted=count(select(func.count()).select_from(DeviceState)),
        batches=count(select(func.count()).select_from(BatchState)),
    )


def _minted_under(session: Session, *licence_ids: int) -> dict[int, int]:
    """Devices minted per device licence."""
    if not licence_ids:
        return {}
    rows = session.execute(
        select(DeviceState.device_licence_id, func.count())
        .where(DeviceState.device_licence_id.in_(licence_ids))
        .group_by(DeviceState.device_licence_id)
    ).all()
    found = {int(licence): int(n) for licence, n in rows}
    return {licence: found.get(licence, 0) for licence in licence_ids}


def _events(session: Session, subject: str, *names: str) -> list[tuple[ChainEvent, dict[str, Any]]]:
    query = select(ChainEvent).where(ChainEvent.subject == subject)
    if names:
        query = query.where(ChainEvent.name.in_(names))
    rows = session.scalars(query.order_by(ChainEvent.block_number, ChainEvent.log_index))
    return [(event, json.loads(event.args)) for event in rows]


# -- home, search ---------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, ctx: Context, who: Viewer) -> HTMLResponse:
    with ctx.sessions() as session:
        numbers = figures(session)
        device_licences = session.execute(
            select(DeviceLicenceState, ManufacturerLicenceState.name)
            .join(ManufacturerLicenceState, ManufacturerLicenceState.holder == DeviceLicenceState.holder)
            .order_by(DeviceLicenceState.issued_at.desc(), DeviceLicenceState.licence_id.desc())
            .limit(5)
        ).all()
        manufacturers = session.scalars(
            select(ManufacturerLicenceState)
            .order_by(ManufacturerLicenceState.granted_at.desc(), ManufacturerLicenceState.licence_id.desc())
            .limit(5)
        ).all()
        latest_device_licences = [
            {
                "id": licence.licence_id,
                "model": licence.model,
                "revision": licence.revision,
                "status": licence.status,
                "manufacturer": name,
                "issued": when(licence.issued_at),
            }
            for licence, name in device_licences
        ]
        latest_manufacturers = [
            {"id": m.licence_id, "name": m.name, "status": m.status, "granted": when(m.granted_at)}
            for m in manufacturers
        ]
    return render(
        request,
        ctx,
        who,
        "explorer/home.html",
        figures=numbers,
        device_licences=latest_device_licences,
        manufacturers=latest_manufacturers,
        accepted=ACCEPTED,
        query="",
    )


def _search_page(
    request: Request, ctx: ApiContext, who: Principal | None, status: int, query: str, message: str
) -> HTMLResponse:
    """The search box again, keeping what was typed, with what went wrong in plain words."""
    title = "Nothing found" if status == 404 else "Check the search"
    return render(
        request,
        ctx,
        who,
        "explorer/search.html",
        status=status,
        title=title,
        query=query,
        message=message,
        accepted=ACCEPTED,
    )


def _malformed(text: str) -> str | None:
    """Why a query can name no device, whatever is on record; None if it could."""
    if len(text) > MAX_QUERY:
        return (
            f"The search is {len(text)} characters long; serial numbers have at most 64 characters. "
            f"Give {ACCEPTED}."
        )
    if text[:2].lower() == "0x" and not ADDRESS.match(text):
        digits = len(text) - 2
        return (
            f"“{text}” starts like a 0x address but has {digits} characters after 0x; an address "
            "is 0x followed by exactly 40 hexadecimal digits (0-9, a-f)."
        )
    return None


def _known(session: Session, address: str) -> bool:
    """A device this installation has a record of: minted (indexed) or taken in from a batch."""
    return session.get(DeviceState, address) is not None or session.get(Certificate, address) is not None


@router.get("/search", response_class=HTMLResponse, response_model=None)
def search(request: Request, ctx: Context, who: Viewer, q: str | None = None) -> Response:
    certificates = ctx.certificates
    if certificates is None:
        return _no_deployment(request, ctx, who)
    text = (q or "").strip()
    if not text:
        return _search_page(request, ctx, who, 422, q or "", f"Type what to search for: {ACCEPTED}.")
    if limited := _over_limit(request, ctx, who):
        return limited
    try:
        address = certificates.address_of(text)
    except UsageError as exc:
        return _search_page(request, ctx, who, 422, text, f"{exc}.")
    except NotFound:
        address = None
    with ctx.sessions() as session:
        if address is not None and _known(session, address):
            return RedirectResponse(f"/devices/{address}", status_code=303)
    problem = _malformed(text)
    if problem is not None:
        return _search_page(request, ctx, who, 422, text, problem)
    return _search_page(
        request,
        ctx,
        who,
        404,
        text,
        f"No device matches “{text}”. We looked for it as {ACCEPTED}. "
        "Check it against the label or the device's settings and search again.",
    )


# -- devices --------------------------------------------------------------------------------------


def _timeline_rows(entries: Sequence[dict[str, Any]], holder: str | None) -> list[dict[str, Any]]:
    """The lifecycle in words: what happened, who attested it and in which role, when."""
    rows = []
    for entry in entries:
        details = dict(entry["details"])
        kind = entry["type"]
        who, role = details.get("attestedBy"), details.get("role")
        if kind == "Minted":
            who, role = holder, "manufacturer (device licence holder)"
            what = (
                f"certificate minted to {details['to']} in batch {details.get('batchId')} "
                f"under device licence {details.get('deviceLicenceId')}"
            )
        elif kind == "Transferred":
            who, role = details["from"], "owner"
            what = f"from {details['from']} to {details['to']}"
        elif kind == "AuthorizationGranted":
            what = (
                f"{details['grantee']} may {', '.join(details.get('permissions', []))} "
                f"until {when(details.get('expiresAt'))}"
            )
        elif kind == "AuthorizationRevoked":
            what = f"{details['grantee']} no longer authorised"
        elif kind == "AuthorizationsCleared":
            who, role = None, "contract (on transfer)"
            what = "every authorisation ended by the change of owner"
        elif kind == "FactoryReset":
            what = f"factory reset number {details.get('count')}"
        elif kind == "FirmwareUpdated":
            what = (
                f"firmware {details.get('fromVersion')} → {details.get('toVersion')}, "
                f"image SHA-256 {details.get('imageHash')}"
            )
        elif kind == "EndOfLife":
            what = f"stage {details.get('stage')}, evidence SHA-256 {details.get('evidenceHash')}"
        else:
            what = ", ".join(f"{k}: {v}" for k, v in sorted(details.items()))
        rows.append(
            {
                "event": EVENT_WORDS.get(kind, kind),
                "what": what,
                "who": who,
                "role": role or "—",
                "when": when(entry["block_time"]),
                "block": entry["block_number"],
                "tx_hash": entry["tx_hash"],
            }
        )
    return rows


def _device_view(ctx: ApiContext, certificates: Certificates, query: str) -> dict[str, Any]:
    """`Certificates.view` with the words the page shows beside it."""
    view = certificates.view(query)
    document = view["document"] or {}
    on_chain = view["on_chain"]
    holder = None
    manufacturer_licence_id = None
    with ctx.sessions() as session:
        if on_chain is not None:
            licence = session.get(DeviceLicenceState, on_chain["device_licence_id"])
            holder = licence.holder if licence else None
            if holder is not None:
                manufacturer_licence_id = session.scalar(
                    select(ManufacturerLicenceState.licence_id).where(
                        ManufacturerLicenceState.holder == holder
                    )
                )
        record = session.get(Certificate, view["address"])
        document_sha256 = record.document_sha256 if record else None
    failing = [c for c in view["checks"] if not c["ok"]]
    return {
        **view,
        "standing_words": STANDING_WORDS.get(view["standing"], view["standing"]),
        "reasons": [c["detail"] for c in failing],
        "check_rows": [
            {"name": CHECK_WORDS.get(c["name"], c["name"]), "ok": c["ok"], "detail": c["detail"]}
            for c in view["checks"]
        ],
        "doc": document,
        "document_sha256": document_sha256,
        "timeline_rows": _timeline_rows(view["timeline"], holder),
        "grants": [{**g, "expires": when(g["expires_at"])} for g in view["authorizations"]],
        "minted_when": when(on_chain["minted_at"]) if on_chain else None,
        "holder": holder,
        "manufacturer_licence_id": manufacturer_licence_id,
    }


@router.get("/devices", response_class=HTMLResponse, response_model=None)
def device_list(
    request: Request,
    ctx: Context,
    who: Viewer,
    licence: str | None = None,
    manufacturer: str | None = None,
    batch: str | None = None,
    standing: str | None = None,
    cursor: str | None = None,
) -> Response:
    """Certificates filtered by licence, manufacturer, batch or the licences' standing, a page at a
    time (the links of the licence and manufacturer pages lead here)."""
    certificates = ctx.certificates
    if certificates is None:
        return _no_deployment(request, ctx, who)
    if limited := _over_limit(request, ctx, who):
        return limited
    filters = {"licence": licence, "manufacturer": manufacturer, "batch": batch, "standing": standing}
    try:
        numbers = {}
        for name in ("licence", "batch"):
            value = filters[name]
            if value:
                number = _whole_number(value)
                if number is None:
                    raise UsageError(f"{name} {value!r}: give a whole number from 1")
                numbers[name] = number
        page = certificates.page(
            manufacturer=manufacturer or None,
            licence=numbers.get("licence"),
            batch=numbers.get("batch"),
            standing=standing or None,
            cursor=cursor or None,
            limit=50,
        )
    except UsageError as exc:
        return refusal(request, ctx, who, 422, "Check the filter", f"{exc}.")
    kept = {k: v for k, v in filters.items() if v}
    described = ", ".join(f"{k} {v}" for k, v in kept.items()) or "all devices"
    next_link = None
    if page.next_cursor:
        next_link = "/devices?" + urlencode({**kept, "cursor": page.next_cursor})
    return render(
        request,
        ctx,
        who,
        "explorer/devices.html",
        items=[
            {**item, "standing_words": STANDING_WORDS[item["standing"]], "minted": when(item["minted_at"])}
            for item in page.items
        ],
        described=described,
        next_link=next_link,
        standings=STANDINGS,
    )


@router.get("/devices/{query}", response_class=HTMLResponse, response_model=None)
def device_page(request: Request, ctx: Context, who: Viewer, query: str) -> Response:
    certificates = ctx.certificates
    if certificates is None:
        return _no_deployment(request, ctx, who)
    if limited := _over_limit(request, ctx, who):
        return limited
    if problem := _malformed(query.strip()):
        return _search_page(request, ctx, who, 422, query, problem)
    try:
        device = _device_view(ctx, certificates, query)
    except NotFound as exc:
        if _indexing(ctx, certificates, query):
            return refusal(request, ctx, who, 503, "Not indexed yet", f"{exc}; try again in a moment.")
        return _search_page(
            request, ctx, who, 404, query, f"No device matches “{query}”. We looked for it as {ACCEPTED}."
        )
    except UsageError as exc:
        return _search_page(request, ctx, who, 422, query, f"{exc}.")
    return render(request, ctx, who, "explorer/device.html", device=device)


def _indexing(ctx: ApiContext, certificates: Certificates, query: str) -> bool:
    """Whether a device whose certificate could not be read is one we know, so what is missing is
    the indexer's copy of its licences (it lags the chain by a few blocks), not the device."""
    try:
        address = certificates.address_of(query)
    except (NotFound, UsageError):
        return False
    with ctx.sessions() as session:
        return _known(session, address)


def _document_record(ctx: ApiContext, certificates: Certificates, query: str) -> tuple[str, Document]:
    """The device's address and its certificate document, as stored (the committed bytes)."""
    address = certificates.address_of(query)
    with ctx.sessions() as session:
        record = session.get(Certificate, address)
        document = session.get(Document, record.document_sha256) if record else None
    if document is None:
        raise NotFound(f"no certificate document is known for {query!r}")
    return address, document


def _download_refused(
    request: Request, ctx: ApiContext, who: Principal | None, exc: NotFound | UsageError
) -> HTMLResponse:
    status = 404 if isinstance(exc, NotFound) else 422
    return refusal(request, ctx, who, status, "Nothing to download", f"{exc}.")


@router.get("/devices/{query}/certificate.json", response_model=None)
def certificate_document(request: Request, ctx: Context, who: Viewer, query: str) -> Response:
    """The certificate document, byte for byte as committed: its SHA-256 is the leaf's bytes32."""
    certificates = ctx.certificates
    if certificates is None:
        return _no_deployment(request, ctx, who)
    if limited := _over_limit(request, ctx, who):
        return limited
    try:
        address, document = _document_record(ctx, certificates, query)
    except (NotFound, UsageError) as exc:
        return _download_refused(request, ctx, who, exc)
    return Response(
        document.body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="certificate-{address}.json"'},
    )


@router.get("/devices/{query}/proof.json", response_model=None)
def merkle_proof(request: Request, ctx: Context, who: Viewer, query: str) -> Response:
    """The Merkle proof of the device's document, with everything needed to check it against the
    chain: the leaf's values and encoding, the batch and its root, the contract that holds it."""
    certificates = ctx.certificates
    if certificates is None:
        return _no_deployment(request, ctx, who)
    if limited := _over_limit(request, ctx, who):
        return limited
    try:
        address, document = _document_record(ctx, certificates, query)
        proof = certificates.view(address)["proof"]
    except (NotFound, UsageError) as exc:
        return _download_refused(request, ctx, who, exc)
    leaf = leaf_hash(address, bytes.fromhex(document.sha256))
    runtime = ctx.runtime
    body = {
        "format": "OpenZeppelin StandardMerkleTree (sorted pairs, keccak256, double-hashed leaves)",
        "chain_id": ctx.chain_id,
        "device_certificate_contract": runtime.contracts.deployment.device_certificate if runtime else None,
        "address": address,
        "token_id": str(int(address, 16)),
        "batch_id": proof["batch_id"],
        "merkle_root": proof["merkle_root"],
        "leaf_encoding": proof["leaf_encoding"],
        "leaf_values": [address, "0x" + document.sha256],
        "document_sha256": document.sha256,
        "leaf": "0x" + leaf.hex(),
        "proof": proof["proof"],
    }
    return Response(
        json.dumps(body, indent=2) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="proof-{address}.json"'},
    )


# -- licences -------------------------------------------------------------------------------------


def _case_evidence(session: Session, kind: str, case_id: int) -> list[dict[str, Any]]:
    """The decisions of an onboarding case that rest on evidence: what was decided, when, and the
    SHA-256 of each document it rests on (the documents themselves are not public)."""
    return [
        {
            "action": step["action"].replace("_", " "),
            "stage": step["to"].replace("_", " "),
            "at": step["at"][:16].replace("T", " ") + " UTC",
            "evidence": step["evidence"],
            "tx_hash": step["tx_hash"],
        }
        for step in timeline(session, kind, case_id)
        if step["evidence"] or step["tx_hash"]
    ]


def _anchoring(anchored_case_file: str | None, on_chain: str) -> bool | None:
    """Whether the case file the database holds is the one whose SHA-256 the chain records."""
    if anchored_case_file is None:
        return None
    return "0x" + hashlib.sha256(anchored_case_file.encode()).hexdigest() == on_chain.lower()


def _stake_of(ctx: ApiContext, holder: str) -> int | None:
    """The holder's stake now, from the chain (the projections keep licences, not balances)."""
    if ctx.runtime is None:
        return None
    return int(ctx.runtime.contracts.manufacturer_license.functions.stakeOf(holder).call())


MANUFACTURER_DECISIONS = {
    "Granted": "Licence granted",
    "Suspended": "Licence suspended",
    "Reinstated": "Licence reinstated",
    "Revoked": "Licence revoked for cause",
    "Renounced": "Licence renounced by the holder",
}
STAKE_EVENTS = {
    "Staked": "Staked",
    "Slashed": "Slashed",
    "WithdrawalBegun": "Withdrawal begun",
    "Withdrawn": "Withdrawn",
}


def _manufacturer_view(
    ctx: ApiContext, session: Session, licence: ManufacturerLicenceState
) -> dict[str, Any]:
    decisions = [
        {
            "what": MANUFACTURER_DECISIONS[event.name],
            "when": when(event.block_time),
            "block": event.block_number,
            "tx_hash": event.tx_hash,
            "hash_label": "evidence SHA-256" if "evidenceHash" in args else "reason SHA-256",
            "hash": _plain_hash(args.get("evidenceHash") or args.get("reasonHash")),
        }
        for event, args in _events(
            session, f"manufacturer_licence:{licence.licence_id}", *MANUFACTURER_DECISIONS
        )
    ]
    stake_history = [
        {
            "what": STAKE_EVENTS[event.name],
            "amount": tokens(int(args.get("amount", args.get("stake", 0)))),
            "reason": _plain_hash(args.get("reasonHash")),
            "when": when(event.block_time),
            "tx_hash": event.tx_hash,
        }
        for event, args in _events(session, f"account:{licence.holder}", *STAKE_EVENTS)
    ]
    case = session.scalar(
        select(ManufacturerApplication)
        .where(ManufacturerApplication.licence_id == licence.licence_id)
        .order_by(ManufacturerApplication.id.desc())
    )
    device_licences = session.scalars(
        select(DeviceLicenceState)
        .where(DeviceLicenceState.holder == licence.holder)
        .order_by(DeviceLicenceState.licence_id)
    ).all()
    minted = _minted_under(session, *(d.licence_id for d in device_licences))
    stake = _stake_of(ctx, licence.holder)
    return {
        "id": licence.licence_id,
        "holder": licence.holder,
        "name": licence.name,
        "status": licence.status,
        "for_cause": licence.for_cause,
        "reason_hash": _plain_hash(licence.reason_hash),
        "granted": when(licence.granted_at),
        "root_fingerprint": licence.root_cert_fingerprint,
        "evidence_hash": licence.evidence_hash,
        "stake": None if stake is None else tokens(stake),
        "stake_history": stake_history,
        "decisions": decisions,
        "case_matches": _anchoring(case.anchored_case_file if case else None, licence.evidence_hash),
        "case_evidence": _case_evidence(session, "manufacturer", case.id) if case else [],
        "device_licences": [
            {
                "id": d.licence_id,
                "model": d.model,
                "revision": d.revision,
                "status": d.status,
                "issued": when(d.issued_at),
                "minted": minted[d.licence_id],
            }
            for d in device_licences
        ],
        "devices_minted": sum(minted.values()),
    }


@router.get("/manufacturers/{licence_id}", response_class=HTMLResponse)
def manufacturer_page(request: Request, ctx: Context, who: Viewer, licence_id: str) -> HTMLResponse:
    number = _whole_number(licence_id)
    with ctx.sessions() as session:
        licence = session.get(ManufacturerLicenceState, number) if number else None
        if licence is None:
            return refusal(
                request,
                ctx,
                who,
                404,
                "No such manufacturer licence",
                f"There is no manufacturer licence “{licence_id}” on record. Manufacturer licences are "
                "numbered from 1; the network page lists the licensed manufacturers.",
            )
        view = _manufacturer_view(ctx, session, licence)
    return render(request, ctx, who, "explorer/manufacturer.html", m=view)


PROPOSAL_KINDS = {1: "issue", 2: "revoke"}


def _proposals(session: Session, licence: DeviceLicenceState) -> list[dict[str, Any]]:
    """The committee's proposals about this licence: to issue it (by its design hash) and to
    revoke it (by its id), with every vote, the tally, quorum and deadline."""
    created = session.scalars(
        select(ChainEvent)
        .where(ChainEvent.contract == "DeviceLicense", ChainEvent.name == "ProposalCreated")
        .order_by(ChainEvent.block_number, ChainEvent.log_index)
    )
    found = []
    now = int(datetime.now(UTC).timestamp())
    for event in created:
        args = json.loads(event.args)
        kind = PROPOSAL_KINDS.get(int(args["kind"]), str(args["kind"]))
        about_this = (kind == "issue" and args["designHash"] == licence.design_hash) or (
            kind == "revoke" and int(args["licenceId"]) == licence.licence_id
        )
        if not about_this:
            continue
        proposal_id = int(args["proposalId"])
        events = _events(session, f"proposal:{proposal_id}")
        votes = [
            {
                "voter": a["voter"],
                "support": bool(a["support"]),
                "when": when(e.block_time),
                "tx_hash": e.tx_hash,
            }
            for e, a in events
            if e.name == "VoteCast"
        ]
        names = {e.name for e, _ in events}
        deadline = int(args["deadline"])
        if "ProposalExecuted" in names:
            outcome = "executed"
        elif "ProposalRejected" in names:
            outcome = "rejected"
        elif now > deadline:
            outcome = "expired (voting closed without a decision)"
        else:
            outcome = "open for votes"
        found.append(
            {
                "id": proposal_id,
                "kind": kind,
                "proposer": args["proposer"],
                "tabled": when(event.block_time),
                "deadline": when(deadline),
                "quorum": int(args["quorum"]),
                "yes": sum(v["support"] for v in votes),
                "no": sum(not v["support"] for v in votes),
                "votes": votes,
                "outcome": outcome,
                "evidence_hash": _plain_hash(args.get("evidenceHash")),
                "reason_hash": _plain_hash(args.get("reasonHash")),
            }
        )
    return found


def _firmware(session: Session, licence_id: int) -> list[dict[str, Any]]:
    published = {
        args["version"]: event.block_time
        for event, args in _events(session, f"device_licence:{licence_id}", "FirmwarePublished")
    }
    releases = session.scalars(
        select(FirmwareRelease)
        .where(FirmwareRelease.device_licence_id == licence_id)
        .order_by(FirmwareRelease.published_block, FirmwareRelease.version)
    )
    return [
        {"version": r.version, "image_hash": r.image_hash, "published": when(published.get(r.version))}
        for r in releases
    ]


def _batches(session: Session, licence_id: int) -> list[dict[str, Any]]:
    batches = session.scalars(
        select(BatchState).where(BatchState.device_licence_id == licence_id).order_by(BatchState.batch_id)
    ).all()
    opened = {
        e.block_number: e.block_time
        for e in session.scalars(
            select(ChainEvent).where(
                ChainEvent.name == "BatchOpened",
                ChainEvent.subject.in_([f"batch:{b.batch_id}" for b in batches]),
            )
        )
    }
    return [
        {
            "id": b.batch_id,
            "devices": b.device_count,
            "minted": b.minted,
            "root": b.merkle_root,
            "opened": when(opened.get(b.opened_block)),
        }
        for b in batches
    ]


def _licence_view(session: Session, licence: DeviceLicenceState) -> dict[str, Any]:
    maker = session.scalar(
        select(ManufacturerLicenceState).where(ManufacturerLicenceState.holder == licence.holder)
    )
    case = session.scalar(
        select(DeviceApplication)
        .where(DeviceApplication.licence_id == licence.licence_id)
        .order_by(DeviceApplication.id.desc())
    )
    certifications = (
        session.scalars(
            select(Certification).where(Certification.application_id == case.id).order_by(Certification.id)
        ).all()
        if case
        else []
    )
    proposals = _proposals(session, licence)
    return {
        "id": licence.licence_id,
        "holder": licence.holder,
        "manufacturer": {"id": maker.licence_id, "name": maker.name, "status": maker.status}
        if maker
        else None,
        "design_hash": licence.design_hash,
        "model": licence.model,
        "revision": licence.revision,
        "status": licence.status,
        "reason_hash": _plain_hash(licence.reason_hash),
        "issued": when(licence.issued_at),
        "evidence_hash": licence.evidence_hash,
        "case_matches": _anchoring(case.anchored_case_file if case else None, licence.evidence_hash),
        "case_evidence": _case_evidence(session, "device", case.id) if case else [],
        "certifications": [
            {
                "scheme": c.scheme.upper(),
                "identifier": c.identifier,
                "issued_on": c.issued_on.isoformat(),
                "expires_on": c.expires_on.isoformat() if c.expires_on else "—",
                "document_sha256": c.document_sha256,
            }
            for c in certifications
        ],
        "proposals": proposals,
        "firmware": _firmware(session, licence.licence_id),
        "batches": _batches(session, licence.licence_id),
        "devices_minted": _minted_under(session, licence.licence_id)[licence.licence_id],
    }


@router.get("/licences/{licence_id}", response_class=HTMLResponse)
def licence_page(request: Request, ctx: Context, who: Viewer, licence_id: str) -> HTMLResponse:
    number = _whole_number(licence_id)
    with ctx.sessions() as session:
        licence = session.get(DeviceLicenceState, number) if number else None
        if licence is None:
            return refusal(
                request,
                ctx,
                who,
                404,
                "No such device licence",
                f"There is no device licence “{licence_id}” on record. Device licences are numbered "
                "from 1; the network page lists the licences there are.",
            )
        view = _licence_view(session, licence)
    return render(request, ctx, who, "explorer/licence.html", d=view)


# -- network --------------------------------------------------------------------------------------


def minted_per_day(session: Session) -> list[tuple[date, int]]:
    """Devices minted per UTC day (by the block timestamp of each mint), every day up to the last
    day with mints, over at least `CHART_MIN_DAYS` and at most `CHART_DAYS` days; days without
    mints are included as 0."""
    rows = session.execute(
        select(DeviceState.minted_at // DAY, func.count()).group_by(DeviceState.minted_at // DAY)
    ).all()
    counts = {int(day): int(n) for day, n in rows}
    if not counts:
        return []
    last = max(counts)
    first = max(min(min(counts), last - CHART_MIN_DAYS + 1), last - CHART_DAYS + 1)
    epoch = date(1970, 1, 1)
    return [(epoch + timedelta(days=day), counts.get(day, 0)) for day in range(first, last + 1)]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: str
    count: int


@dataclass(frozen=True)
class Chart:
    """An SVG bar chart laid out here, so the page needs no script to draw it."""

    width: int
    height: int
    bars: list[Bar]
    peak: int
    baseline: float
    top: float
    left: float
    right: float
    labels: list[tuple[float, str]]
    summary: str


def chart(days: Iterable[tuple[date, int]]) -> Chart | None:
    series = list(days)
    if not series:
        return None
    width, height, left, right, top, bottom = 720, 260, 56, 12, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(n for _, n in series) or 1
    slot = plot_w / len(series)
    bar_w = min(slot * 0.8, 48.0)
    bars = []
    for i, (day, n) in enumerate(series):
        h = plot_h * n / peak
        x = left + i * slot + (slot - bar_w) / 2
        bars.append(
            Bar(round(x, 1), round(top + plot_h - h, 1), round(bar_w, 1), round(h, 1), day.isoformat(), n)
        )
    step = max(1, len(series) // 6)
    labels = [(round(b.x + b.width / 2, 1), b.day) for b in bars[::step]]
    total = sum(n for _, n in series)
    summary = (
        f"Devices minted per day from {series[0][0].isoformat()} to {series[-1][0].isoformat()}: "
        f"{total} in all, at most {peak} in one day."
    )
    return Chart(width, height, bars, peak, top + plot_h, top, left, width - right, labels, summary)


@router.get("/network", response_class=HTMLResponse)
def network_page(request: Request, ctx: Context, who: Viewer) -> HTMLResponse:
    with ctx.sessions() as session:
        numbers = figures(session)
        days = minted_per_day(session)
        manufacturers = session.scalars(
            select(ManufacturerLicenceState).order_by(ManufacturerLicenceState.licence_id)
        ).all()
        device_licences = session.scalars(
            select(DeviceLicenceState).order_by(DeviceLicenceState.licence_id)
        ).all()
        minted = _minted_under(session, *(d.licence_id for d in device_licences))
        names = {m.holder: m for m in manufacturers}
        manufacturer_rows = [
            {"id": m.licence_id, "name": m.name, "status": m.status, "granted": when(m.granted_at)}
            for m in manufacturers
        ]
        licence_rows = [
            {
                "id": d.licence_id,
                "model": d.model,
                "revision": d.revision,
                "status": d.status,
                "manufacturer": names[d.holder].name if d.holder in names else d.holder,
                "minted": minted[d.licence_id],
            }
            for d in device_licences
        ]
    return render(
        request,
        ctx,
        who,
        "explorer/network.html",
        figures=numbers,
        days=[(d.isoformat(), n) for d, n in days],
        chart=chart(days),
        manufacturers=manufacturer_rows,
        licences=licence_rows,
    )
