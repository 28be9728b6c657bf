"""The auditor's portal: its queue, the Hardware & Security Audit checklist as a form, the CX
rubric, and the sign-off of a manufacturer with its report.

An auditor decides nothing on chain; its reports are evidence the foundation and the committee
decide on, so every mark carries evidence (an uploaded file or the SHA-256 of one already in
the store) and every form keeps what was entered when the domain refuses it. Files uploaded
with a refused form are stored anyway (content-addressed, so harmless) and come back as their
SHA-256, since a browser cannot refill a file input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from web3 import Web3

from devicemint.api.deps import Context, Principal
from devicemint.api.onboarding_routes import ApplicationId
from devicemint.auth.roles import Role
from devicemint.onboarding.auditors import AuditScope
from devicemint.onboarding.cases import Actor
from devicemint.onboarding.checklist import (
    ChecklistIncomplete,
    ItemResult,
    Mark,
    check_results,
    load_checklist,
)
from devicemint.onboarding.design import (
    ChecklistMarkIn,
    CxAssessmentIn,
    CxVideo,
    HardwareAuditIn,
    load_cx_rubric,
)
from devicemint.onboarding.device import DeviceOnboarding
from devicemint.onboarding.device import Stage as DeviceStage
from devicemint.onboarding.evidence import EvidenceError, EvidenceKind, EvidenceStore
from devicemint.onboarding.manufacturer import ManufacturerOnboarding
from devicemint.onboarding.manufacturer import Stage as ManufacturerStage
from devicemint.onboarding.service import Onboarding
from devicemint.web.pages import PageRefused, refusal, render, uploads
from devicemint.web.review import (
    Form,
    Refused,
    actor,
    case_names,
    device_case_evidence,
    done,
    evidence_link,
    notice,
    onboarding,
    parse_hashes,
    portal_of,
    status_of,
    store_uploads,
    text,
    timeline_rows,
)

router = APIRouter(include_in_schema=False)

WHAT = "use the auditor's portal"
AuditorPage = Annotated[Principal, Depends(portal_of(Role.AUDITOR, WHAT))]
MARKS = ((Mark.PASS, "Pass"), (Mark.FAIL, "Fail"), (Mark.NOT_APPLICABLE, "n.a."))
NOTICES = {
    "hardware-pass": "Hardware & security audit recorded: the design passed; it goes on to the CX assessment.",
    "hardware-fail": "Hardware & security audit recorded: the design failed; the manufacturer must remediate.",
    "cx-pass": "CX assessment recorded: the design passed; it goes on to the integration review.",
    "cx-fail": "CX assessment recorded: the design failed; the manufacturer must remediate.",
    "approved": "Manufacturer signed off: the foundation may now grant the licence.",
}
# Advice added to the domain's per-item reasons, saying what would be right.
_ADVICE = (
    ("is not marked", "choose pass, fail or n.a."),
    ("without evidence", "upload a file or give the SHA-256 of evidence already uploaded"),
    ("without a note", "say in the note why the item does not apply"),
)


# -- the queue --------------------------------------------------------------------------------


@router.get("/portal/auditor", response_class=HTMLResponse, response_model=None)
def queue(request: Request, ctx: Context, who: AuditorPage) -> Response:
    domain = onboarding(ctx)
    me = actor(domain, who)
    devices = domain.devices.visible_to(me)
    return render(
        request,
        ctx,
        who,
        "auditor/queue.html",
        scopes=sorted(domain.auditors.scopes_of(who.address)),
        hardware=[
            {**d, "your_turn": d["stage"] == DeviceStage.HARDWARE_AUDIT}
            for d in devices
            if d["hardware_auditor"] and me.is_(d["hardware_auditor"])
        ],
        cx=[
            {**d, "your_turn": d["stage"] == DeviceStage.CX_ASSESSMENT}
            for d in devices
            if d["cx_auditor"] and me.is_(d["cx_auditor"])
        ],
        manufacturers=_manufacturer_cases(domain, me),
        waiting_for=domain.devices.waiting_for,
        manufacturer_waiting_for=domain.manufacturers.waiting_for,
        notice=notice(request, NOTICES),
    )


def _manufacturer_cases(domain: Onboarding, me: Actor) -> list[dict[str, Any]]:
    """The manufacturer applications this auditor is assigned to sign off."""
    cases = []
    for summary in domain.manufacturers.visible_to(me):
        case = domain.manufacturers.export(summary["application"])
        if case["auditor"] and me.is_(case["auditor"]):
            case["your_turn"] = case["stage"] == ManufacturerStage.STAKED
            cases.append(case)
    return cases


def _assigned_case(
    request: Request,
    ctx: Context,
    who: Principal,
    flow: ManufacturerOnboarding | DeviceOnboarding,
    application_id: int,
    role: str,
    what: str,
) -> dict[str, Any]:
    """The case file, if `who` is its assigned auditor in `role`; else the refusal page."""
    try:
        case: dict[str, Any] = flow.export(application_id)
    except Refused as exc:
        title = f"{flow.kind.capitalize()} application"
        raise PageRefused(refusal(request, ctx, who, status_of(exc), title, str(exc))) from exc
    if (refused := _assigned(request, ctx, who, case, role, what)) is not None:
        raise PageRefused(refused)
    return case


def _assigned(
    request: Request, ctx: Context, who: Principal, case: dict[str, Any], role: str, what: str
) -> Response | None:
    """A 403 page unless `who` is the auditor the foundation assigned for this part of the case."""
    assigned = case.get(role)
    if assigned and assigned.lower() == who.address.lower():
        return None
    return refusal(
        request,
        ctx,
        who,
        403,
        "Not your case",
        f"{what} is for the auditor the foundation assigned ({assigned or 'none assigned yet'}); "
        f"you are signed in as {who.address}.",
    )


# -- the hardware & security audit -------------------------------------------------------------


@dataclass
class ChecklistForm:
    """What the auditor entered, kept as entered, and what is wrong with it, item by item."""

    items: dict[str, dict[str, str]] = field(default_factory=dict)
    report_sha256: str = ""
    summary: str = ""
    item_errors: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def problem(self, item_id: str, message: str) -> None:
        self.item_errors.setdefault(item_id, []).append(message)

    @property
    def has_errors(self) -> bool:
        return bool(self.item_errors or self.errors or self.general)


def _sections() -> list[tuple[str, list[Any]]]:
    """The checklist's items by section, in the template's order."""
    return [(s, list(items)) for s, items in groupby(load_checklist().items, key=lambda i: i.section)]


def _last_round(case: dict[str, Any], scope: str) -> dict[str, Any] | None:
    rounds = [a for a in case["audits"] if a["scope"] == scope]
    return rounds[-1] if rounds else None


def _prefilled(case: dict[str, Any]) -> ChecklistForm:
    """A new round starts from the last one's marks, evidence and notes: after a remediation
    the auditor changes what changed."""
    form = ChecklistForm()
    last = _last_round(case, AuditScope.HARDWARE_SECURITY.value)
    for item in (last or {}).get("results", {}).get("items", []):
        form.items[item["item_id"]] = {
            "mark": item["mark"],
            "evidence": "\n".join(item["evidence"]),
            "note": item.get("note", ""),
        }
    return form


@router.get(
    "/portal/auditor/devices/{application_id}/hardware-audit",
    response_class=HTMLResponse,
    response_model=None,
)
def hardware_audit_page(
    request: Request, ctx: Context, who: AuditorPage, application_id: ApplicationId
) -> Response:
    return _hardware_page(request, ctx, who, application_id, None)


def _hardware_page(
    request: Request,
    ctx: Context,
    who: Principal,
    application_id: int,
    form: ChecklistForm | None,
    status: int = 200,
) -> Response:
    domain = onboarding(ctx)
    case = _assigned_case(request, ctx, who, domain.devices, application_id, "hardware_auditor", "This audit")
    names = case_names(domain, case)
    return render(
        request,
        ctx,
        who,
        "auditor/hardware_audit.html",
        status=status,
        case=case,
        form=form or _prefilled(case),
        sections=_sections(),
        checklist=load_checklist(),
        marks=MARKS,
        open=case["stage"] == DeviceStage.HARDWARE_AUDIT,
        waiting_for=domain.devices.waiting_for[case["stage"]],
        evidence=device_case_evidence(domain.evidence, case, names),
        timeline=timeline_rows(domain.evidence, case["timeline"], names),
    )


@router.post(
    "/portal/auditor/devices/{application_id}/hardware-audit",
    response_class=HTMLResponse,
    response_model=None,
)
def record_hardware_audit(
    request: Request, ctx: Context, who: AuditorPage, form_data: Form, application_id: ApplicationId
) -> Response:
    domain = onboarding(ctx)
    form, marks = _read_checklist(form_data, domain.evidence)
    report = _report(form_data, domain.evidence, form.errors)
    form.report_sha256, form.summary = report, text(form_data, "summary")
    results = [ItemResult(m.item_id, m.mark, tuple(m.evidence), m.note) for m in marks]
    try:
        check_results(load_checklist(), results)
    except ChecklistIncomplete as exc:
        _by_item(form, str(exc))
    if form.has_errors:
        return _hardware_page(request, ctx, who, application_id, form, status=422)
    try:
        audit = HardwareAuditIn(items=marks, report_sha256=report, summary=form.summary)
        passed = domain.devices.record_hardware_audit(actor(domain, who), application_id, audit)
    except ChecklistIncomplete as exc:
        _by_item(form, str(exc))
        return _hardware_page(request, ctx, who, application_id, form, status=422)
    except ValidationError as exc:
        form.general += [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return _hardware_page(request, ctx, who, application_id, form, status=422)
    except Refused as exc:
        form.general.append(str(exc))
        return _hardware_page(request, ctx, who, application_id, form, status=status_of(exc))
    return done("/portal/auditor", "hardware-pass" if passed else "hardware-fail")


def _read_checklist(form_data: Any, store: EvidenceStore) -> tuple[ChecklistForm, list[ChecklistMarkIn]]:
    """Every item's mark, evidence (uploads stored, hashes checked) and note, as entered."""
    form, marks = ChecklistForm(), []
    for item in load_checklist().items:
        mark, note = text(form_data, f"mark:{item.id}"), text(form_data, f"note:{item.id}")
        hashes, bad = parse_hashes(text(form_data, f"evidence:{item.id}"))
        if bad:
            form.problem(
                item.id, f"item {item.id}: {', '.join(bad)} is not a SHA-256 (64 hexadecimal digits)"
            )
        try:
            hashes += store_uploads(store, uploads(form_data, f"file:{item.id}"), EvidenceKind.DOCUMENT)
        except EvidenceError as exc:
            form.problem(item.id, f"item {item.id}: evidence file {exc}")
        hashes = list(dict.fromkeys(hashes))
        for missing in (h for h in hashes if not store.exists(h)):
            form.problem(
                item.id, f"item {item.id}: no evidence {missing} is in the store; upload the file instead"
            )
        form.items[item.id] = {"mark": mark, "evidence": "\n".join(hashes + bad), "note": note}
        if len(note) > 2000:
            form.problem(item.id, f"item {item.id}: the note has {len(note)} characters; at most 2000")
        if mark and mark not in {m.value for m in Mark}:
            form.problem(item.id, f"item {item.id}: {mark!r} is not a mark; choose pass, fail or n.a.")
        elif mark:
            marks.append(ChecklistMarkIn(item_id=item.id, mark=Mark(mark), evidence=hashes, note=note[:2000]))
    return form, marks


def _report(
    form_data: Any,
    store: EvidenceStore,
    errors: dict[str, str],
    kind: EvidenceKind = EvidenceKind.AUDIT_REPORT,
) -> str:
    """The report's SHA-256: an uploaded PDF, or one already in the store; errors under "report"."""
    hashes, bad = parse_hashes(text(form_data, "report_sha256"))
    try:
        hashes = list(dict.fromkeys(hashes + store_uploads(store, uploads(form_data, "report"), kind)))
    except EvidenceError as exc:
        errors["report"] = f"report file {exc}"
        return hashes[0] if len(hashes) == 1 else ""
    if bad:
        errors["report"] = f"{', '.join(bad)} is not a SHA-256 (64 hexadecimal digits)"
    elif not hashes:
        errors["report"] = (
            "the report is missing: upload it as a PDF, or give the SHA-256 of one already uploaded"
        )
    elif len(hashes) > 1:
        errors["report"] = "give one report: either a file or a SHA-256, not both"
    elif not store.exists(hashes[0]):
        errors["report"] = f"no evidence {hashes[0]} is in the store; upload the report instead"
    return hashes[0] if len(hashes) == 1 else ""


def _by_item(form: ChecklistForm, message: str) -> None:
    """Spread the domain's refusal ("...: item X is not marked; item Y is ...") over the items
    it names, each with what would be right; anything else is shown above the form."""
    ids = set(load_checklist().item_ids)
    for problem in message.partition(": ")[2].split("; ") if ": " in message else [message]:
        words = problem.split(" ")
        if len(words) > 2 and words[0] == "item" and words[1] in ids:
            advice = next((a for needle, a in _ADVICE if needle in problem), "")
            form.problem(words[1], f"{problem}: {advice}" if advice else problem)
        else:
            form.general.append(problem)


# -- the CX assessment ------------------------------------------------------------------------


@dataclass
class CxForm:
    videos: dict[str, str] = field(default_factory=dict)
    scores: dict[str, str] = field(default_factory=dict)
    report_sha256: str = ""
    summary: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)


@router.get(
    "/portal/auditor/devices/{application_id}/cx-assessment", response_class=HTMLResponse, response_model=None
)
def cx_assessment_page(
    request: Request, ctx: Context, who: AuditorPage, application_id: ApplicationId
) -> Response:
    return _cx_page(request, ctx, who, application_id, CxForm())


def _cx_page(
    request: Request, ctx: Context, who: Principal, application_id: int, form: CxForm, status: int = 200
) -> Response:
    domain = onboarding(ctx)
    case = _assigned_case(
        request, ctx, who, domain.devices, application_id, "cx_auditor", "This CX assessment"
    )
    names = case_names(domain, case)
    return render(
        request,
        ctx,
        who,
        "auditor/cx_assessment.html",
        status=status,
        case=case,
        form=form,
        rubric=load_cx_rubric(),
        open=case["stage"] == DeviceStage.CX_ASSESSMENT,
        waiting_for=domain.devices.waiting_for[case["stage"]],
        evidence=device_case_evidence(domain.evidence, case, names),
        timeline=timeline_rows(domain.evidence, case["timeline"], names),
    )


@router.post(
    "/portal/auditor/devices/{application_id}/cx-assessment", response_class=HTMLResponse, response_model=None
)
def record_cx_assessment(
    request: Request, ctx: Context, who: AuditorPage, form_data: Form, application_id: ApplicationId
) -> Response:
    domain = onboarding(ctx)
    rubric = load_cx_rubric()
    form = CxForm(summary=text(form_data, "summary"))
    videos = [_video(form_data, domain.evidence, step, form) for step in rubric.steps]
    scores: dict[str, int] = {}
    for criterion in rubric.criteria:
        raw = form.scores[criterion.id] = text(form_data, f"score:{criterion.id}")
        if raw not in {str(n) for n in range(6)}:
            form.errors[f"score:{criterion.id}"] = f"score {criterion.title.lower()}: choose 0 to 5"
        else:
            scores[criterion.id] = int(raw)
    form.report_sha256 = _report(form_data, domain.evidence, form.errors)
    if len(form.summary) > 5000:
        form.errors["summary"] = f"the summary has {len(form.summary)} characters; at most 5000"
    if form.errors:
        return _cx_page(request, ctx, who, application_id, form, status=422)
    try:
        assessment = CxAssessmentIn(
            videos=[v for v in videos if v is not None],
            scores=scores,
            report_sha256=form.report_sha256,
            summary=form.summary,
        )
        passed = domain.devices.record_cx_assessment(actor(domain, who), application_id, assessment)
    except ValidationError as exc:
        form.general += [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return _cx_page(request, ctx, who, application_id, form, status=422)
    except Refused as exc:
        form.general.append(str(exc))
        return _cx_page(request, ctx, who, application_id, form, status=status_of(exc))
    return done("/portal/auditor", "cx-pass" if passed else "cx-fail")


def _video(form_data: Any, store: EvidenceStore, step: str, form: CxForm) -> CxVideo | None:
    """The video of one rubric step: an uploaded MP4/WebM or the SHA-256 of one in the store."""
    name = f"video:{step}"
    hashes, bad = parse_hashes(text(form_data, f"video_sha256:{step}"))
    try:
        hashes = list(
            dict.fromkeys(hashes + store_uploads(store, uploads(form_data, name), EvidenceKind.CX_VIDEO))
        )
    except EvidenceError as exc:
        form.errors[name] = f"video of the {step} step: {exc}"
    form.videos[step] = "\n".join(hashes + bad)
    if name in form.errors:
        return None
    if bad:
        form.errors[name] = f"video of the {step} step: {', '.join(bad)} is not a SHA-256"
    elif len(hashes) != 1:
        form.errors[name] = (
            f"the video of the {step} step is missing: upload it (MP4 or WebM) or give its SHA-256"
            if not hashes
            else f"give one video of the {step} step, not {len(hashes)}"
        )
    elif not store.exists(hashes[0]):
        form.errors[name] = f"no evidence {hashes[0]} is in the store; upload the video instead"
    else:
        return CxVideo(step=step, sha256=hashes[0])
    return None


# -- the manufacturer's sign-off --------------------------------------------------------------


@router.get(
    "/portal/auditor/manufacturers/{application_id}", response_class=HTMLResponse, response_model=None
)
def manufacturer_audit_page(
    request: Request, ctx: Context, who: AuditorPage, application_id: ApplicationId
) -> Response:
    return _manufacturer_page(request, ctx, who, application_id, {}, {}, [])


def _manufacturer_page(
    request: Request,
    ctx: Context,
    who: Principal,
    application_id: int,
    values: dict[str, str],
    errors: dict[str, str],
    general: list[str],
    status: int = 200,
) -> Response:
    domain = onboarding(ctx)
    case = _assigned_case(request, ctx, who, domain.manufacturers, application_id, "auditor", "This sign-off")
    functions = domain.manufacturers.contracts.manufacturer_license.functions
    applicant = Web3.to_checksum_address(case["applicant"])
    return render(
        request,
        ctx,
        who,
        "auditor/manufacturer_audit.html",
        status=status,
        case=case,
        mou=evidence_link(domain.evidence, case["mou_sha256"]) if case["mou_sha256"] else None,
        stake=int(functions.stakeOf(applicant).call()) / 10**18,
        min_stake=int(functions.minStake().call()) / 10**18,
        open=case["stage"] == ManufacturerStage.STAKED,
        waiting_for=domain.manufacturers.waiting_for[case["stage"]],
        timeline=timeline_rows(domain.evidence, case["timeline"], case_names(domain, case)),
        values=values,
        errors=errors,
        general=general,
    )


@router.post(
    "/portal/auditor/manufacturers/{application_id}/approval",
    response_class=HTMLResponse,
    response_model=None,
)
def approve_manufacturer(
    request: Request, ctx: Context, who: AuditorPage, form_data: Form, application_id: ApplicationId
) -> Response:
    domain = onboarding(ctx)
    errors: dict[str, str] = {}
    report = _report(form_data, domain.evidence, errors)
    values = {"report_sha256": report, "note": text(form_data, "note")}
    if len(values["note"]) > 5000:
        errors["note"] = f"the note has {len(values['note'])} characters; at most 5000"
    if errors:
        return _manufacturer_page(request, ctx, who, application_id, values, errors, [], status=422)
    try:
        domain.manufacturers.approve(
            actor(domain, who), application_id, report_sha256=report, note=values["note"]
        )
    except Refused as exc:
        return _manufacturer_page(
            request, ctx, who, application_id, values, {}, [str(exc)], status=status_of(exc)
        )
    return done("/portal/auditor", "approved")
