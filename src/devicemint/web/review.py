"""What the review portals (foundation, auditor, committee) share: who may enter, the onboarding
domain they act through, forms read after the role check, refusals as pages, and the case file's
evidence as links anyone with the right role can download and hash.

Form handlers read the form themselves (`FormData`, parsed by a dependency) so a party without
the role gets the 403 page, not a validation error about fields it should never have filled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile
from web3 import Web3

from devicemint.api.deps import ApiError, Context, Principal
from devicemint.api.errors import answer_for
from devicemint.auth.roles import Role
from devicemint.errors import DevicemintError
from devicemint.licensing.registry import read_manufacturer_licence
from devicemint.onboarding.cases import Actor
from devicemint.onboarding.evidence import EvidenceError, EvidenceKind, EvidenceStore
from devicemint.onboarding.service import Onboarding
from devicemint.web.pages import PageRefused, Viewer, has_role, refusal, sign_in_first

_SHA256 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")

#: Who each portal belongs to, in the words of its refusal page.
ROLE_NAMES = {
    Role.FOUNDATION: "the foundation",
    Role.COMMITTEE: "committee members (the Hardware Integration Team)",
    Role.AUDITOR: "approved auditors",
}


async def form_data(request: Request) -> FormData:
    """The posted form (urlencoded or multipart), read once; an empty one for other bodies."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return await request.form(max_files=200, max_fields=2000)
    return FormData()


Form = Annotated[FormData, Depends(form_data)]


def text(form: FormData, name: str) -> str:
    """A text field, stripped; a file or nothing is the empty string."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def portal_of(role: Role, what: str) -> Callable[..., Principal]:
    """A dependency admitting the people who hold `role`; anyone else is shown the sign-in or a
    403 page naming who may act (raised as PageRefused, before the route runs)."""

    def dependency(request: Request, ctx: Context, who: Viewer) -> Principal:
        refused = _refused(request, ctx, who, role, what)
        if refused is not None:
            raise PageRefused(refused)
        assert who is not None
        return who

    return dependency


def _refused(request: Request, ctx: Context, who: Principal | None, role: Role, what: str) -> Response | None:
    """None if `who` holds `role`; else the sign-in redirect or a 403 page naming who may act."""
    if who is None:
        return sign_in_first(request)
    if not has_role(who, role):
        held = ", ".join(r.value for r in sorted(who.roles) if r is not Role.PUBLIC) or "none"
        return refusal(
            request,
            ctx,
            who,
            403,
            "Not allowed",
            f"Only {ROLE_NAMES[role]} may {what}. You are signed in as {who.address}, "
            f"whose roles are: {held}.",
        )
    if ctx.onboarding is None:
        return refusal(
            request, ctx, who, 503, "Not available", "This server has no chain deployment to review against."
        )
    return None


def onboarding(ctx: Context) -> Onboarding:
    """The domain; `portal_of` has already refused a server without one."""
    if ctx.onboarding is None:
        raise ApiError(503, "not_configured", "this server has no chain deployment to review against")
    return ctx.onboarding


def actor(domain: Onboarding, who: Principal) -> Actor:
    """The signed-in person as the domain sees them: programme roles and auditor scopes."""
    return domain.actor(who.address, (r.value for r in who.roles))


def status_of(exc: Exception) -> int:
    """The HTTP status of a refusal, as the API answers the same error."""
    if isinstance(exc, ApiError):
        return exc.status
    return answer_for(exc)[0] if isinstance(exc, DevicemintError) else 400


Refused = (DevicemintError, ApiError)


def done(path: str, code: str) -> RedirectResponse:
    """After a successful action: back to the page, which says what happened (`notice`)."""
    return RedirectResponse(f"{path}?done={code}", status_code=303)


def notice(request: Request, notices: dict[str, str]) -> str | None:
    """The fixed text of the `done` code in the URL, if any (never the URL's own text)."""
    return notices.get(request.query_params.get("done", ""))


def when(value: int | str | datetime | None) -> str:
    """A block timestamp or ISO time as people read it, in UTC."""
    if value is None or value == "":
        return ""
    if isinstance(value, int):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value)
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- evidence ---------------------------------------------------------------------------------


def parse_hashes(value: str) -> tuple[list[str], list[str]]:
    """(SHA-256s, the entries that are not one) from text separated by spaces, commas or lines."""
    good: list[str] = []
    bad: list[str] = []
    for entry in re.split(r"[\s,;]+", value.strip()):
        if not entry:
            continue
        if _SHA256.match(entry):
            good.append(entry.lower().removeprefix("0x"))
        else:
            bad.append(entry)
    return list(dict.fromkeys(good)), bad


def store_uploads(store: EvidenceStore, uploads: Iterable[UploadFile], kind: EvidenceKind) -> list[str]:
    """Put each upload in the evidence store (content-addressed, so a repeat is the same object);
    returns their SHA-256s. A refused upload raises EvidenceError naming the file."""
    hashes = []
    for upload in uploads:
        try:
            stored = store.put(upload.file, kind=kind, filename=upload.filename or "upload")
        except EvidenceError as exc:
            raise EvidenceError(f"{upload.filename}: {exc}") from exc
        hashes.append(stored.sha256)
    return hashes


@dataclass(frozen=True)
class EvidenceLink:
    """One document of a case file: its name as uploaded and its SHA-256 (its address)."""

    sha256: str
    filename: str
    kind: str
    size: int | None

    @property
    def href(self) -> str:
        return f"/evidence/{self.sha256}"

    @property
    def stored(self) -> bool:
        return self.size is not None


def evidence_link(store: EvidenceStore, sha256: str) -> EvidenceLink:
    try:
        info = store.info(sha256)
    except EvidenceError:
        return EvidenceLink(sha256, "not in this server's evidence store", "", None)
    return EvidenceLink(sha256, info.filename, info.kind.value, info.size)


@dataclass
class EvidenceEntry:
    """A line of the case file: what it is, its documents, a detail, pass/fail, and its parts
    (an audit round's checklist items or videos)."""

    label: str
    links: list[EvidenceLink]
    detail: str = ""
    passed: bool | None = None
    parts: list[EvidenceEntry] = field(default_factory=list)


@dataclass
class EvidenceGroup:
    title: str
    entries: list[EvidenceEntry] = field(default_factory=list)


def device_case_evidence(
    store: EvidenceStore, case: dict[str, Any], names: dict[str, str] | None = None
) -> list[EvidenceGroup]:
    """Every piece of evidence of a device application, grouped as a reviewer reads it: the
    dossier, certifications, each audit round (report, per-item evidence, CX videos), remediation."""

    def links(hashes: Iterable[str]) -> list[EvidenceLink]:
        return [evidence_link(store, h) for h in dict.fromkeys(hashes)]

    dossier = EvidenceGroup(
        "Design dossier",
        [EvidenceEntry(str(f["role"]), links([f["sha256"]])) for f in case["dossier"]],
    )
    certifications = EvidenceGroup(
        "Certifications",
        [
            EvidenceEntry(
                f"{c['scheme']} {c['identifier']}",
                links([c["document_sha256"]]),
                f"issued {c['issued_on']}" + (f", expires {c['expires_on']}" if c["expires_on"] else ""),
            )
            for c in case["certifications"]
        ],
    )
    audits = EvidenceGroup("Audits")
    for audit in case["audits"]:
        scope = "Hardware & security audit" if audit["scope"] == "hardware_security" else "CX assessment"
        results = audit["results"]
        round_ = EvidenceEntry(
            f"{scope}, round {audit['round']}, by {(names or {}).get(audit['auditor'].lower(), audit['auditor'])}",
            links([audit["report_sha256"]]),
            audit["summary"],
            audit["passed"],
        )
        round_.parts += [
            EvidenceEntry(
                f"{item['item_id']}: {item['mark']}",
                links(item["evidence"]),
                item.get("note", ""),
                {"pass": True, "fail": False}.get(item["mark"]),
            )
            for item in results.get("items", [])
        ]
        round_.parts += [
            EvidenceEntry(f"video of the {v['step']} step", links([v["sha256"]]))
            for v in results.get("videos", [])
        ]
        round_.parts += [
            EvidenceEntry(f"score for {criterion}: {score} of 5", [])
            for criterion, score in results.get("scores", {}).items()
        ]
        audits.entries.append(round_)
    remediation = EvidenceGroup(
        "Remediation",
        [
            EvidenceEntry(f"remediation of {when(e['at'])}", links(e["evidence"]), e["note"])
            for e in case["timeline"]
            if e["action"] == "remediate"
        ],
    )
    filed = EvidenceGroup(
        "Further evidence from the applicant",
        [
            EvidenceEntry(f"filed {when(e['at'])}", links(e["evidence"]), e["note"])
            for e in case["timeline"]
            if e["action"] == "add_evidence"
        ],
    )
    return [g for g in (dossier, certifications, audits, remediation, filed) if g.entries]


#: Timeline actions whose evidence is the SHA-256 of the anchored case file, not a document.
ANCHORING_ACTIONS = frozenset({"grant", "propose"})


def manufacturer_name(domain: Onboarding, address: str) -> str:
    """The licensed name of a manufacturer (from its licence on chain), else its address."""
    contracts = domain.manufacturers.contracts
    licence_id = int(
        contracts.manufacturer_license.functions.licenceIdOf(Web3.to_checksum_address(address)).call()
    )
    if licence_id == 0:
        return address
    return read_manufacturer_licence(contracts, licence_id).name


def party_names(domain: Onboarding, known: dict[str, str] | None = None) -> dict[str, str]:
    """Who is behind the addresses of a timeline: the foundation, approved auditors, and the
    parties the page knows (the applicant by its company name); lowercase addresses as keys."""
    owner = domain.manufacturers.contracts.manufacturer_license.functions.owner().call()
    names = {a["address"].lower(): f"{a['name']} (auditor)" for a in domain.auditors.list()}
    names[str(owner).lower()] = "Foundation"
    names.update({address.lower(): name for address, name in (known or {}).items()})
    return names


def case_names(domain: Onboarding, case: dict[str, Any]) -> dict[str, str]:
    """`party_names` for one case: its applicant by company name (questionnaire or licence)."""
    questionnaire = case.get("questionnaire")
    company = questionnaire["company_name"] if questionnaire else manufacturer_name(domain, case["applicant"])
    return party_names(domain, {case["applicant"]: company})


def timeline_rows(
    store: EvidenceStore, timeline: list[dict[str, Any]], names: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """A case's timeline with its times readable, who acted named, and its documents as links
    (the decisions' anchored case file is linked by the page itself)."""
    names = names or {}
    return [
        {
            **event,
            "at": when(event["at"]),
            "name": names.get(
                event["actor"].lower(), "Committee member" if event["action"] == "vote" else ""
            ),
            "anchors": event["action"] in ANCHORING_ACTIONS,
            "links": []
            if event["action"] in ANCHORING_ACTIONS
            else [evidence_link(store, h) for h in event["evidence"]],
        }
        for event in timeline
    ]
