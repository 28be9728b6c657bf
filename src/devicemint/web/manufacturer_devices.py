"""The device application page: the case timeline and what is missing, the dossier, and the
applicant's steps: certifications, CX videos, submission for audit, and the remediation of a
failed audit. (The design itself is submitted in `manufacturer_designs`.)
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from devicemint.api.deps import Context
from devicemint.api.onboarding_routes import ApplicationId
from devicemint.errors import DevicemintError
from devicemint.onboarding.checklist import load_checklist
from devicemint.onboarding.design import (
    CertificationIn,
    CertificationScheme,
    DossierFile,
    RemediationIn,
    load_cx_rubric,
)
from devicemint.onboarding.device import Stage
from devicemint.onboarding.evidence import EvidenceKind
from devicemint.web.manufacturer_common import (
    PREFIX,
    Me,
    Step,
    accepted,
    acting,
    attempt,
    evidence_rows,
    not_a_party,
    status_of,
    store,
    text,
)
from devicemint.web.manufacturer_designs import dossier, slots
from devicemint.web.pages import Viewer, uploads

router = APIRouter(include_in_schema=False)

#: The stages in which the applicant may still add certifications and evidence.
_BEFORE_VOTE = tuple(
    s.value for s in Stage if s not in (Stage.COMMITTEE_VOTE, Stage.LICENSED, Stage.REJECTED)
)


# -- the device application page ------------------------------------------------------------------


def steps(case: dict[str, Any], names: Any) -> list[Step]:
    """What is still missing, in order, with who must act for each step."""
    stage = Stage(case["stage"])
    if stage in (Stage.LICENSED, Stage.REJECTED):
        return []
    hardware = names(case["hardware_auditor"]) if case["hardware_auditor"] else None
    cx = names(case["cx_auditor"]) if case["cx_auditor"] else None
    out: list[Step] = []
    if stage is Stage.DOSSIER_SUBMITTED:
        if not _current_certification(case):
            out.append(Step("Add a current certification (FCC, CE, ...)", "you"))
        out.append(Step("Submit the design for audit", "you"))
    if stage in (Stage.DOSSIER_SUBMITTED, Stage.HARDWARE_AUDIT, Stage.HARDWARE_REMEDIATION):
        if hardware is None:
            out.append(Step("Assign the hardware & security auditor", "the foundation"))
        if stage is Stage.HARDWARE_REMEDIATION:
            out.append(Step("Remediate the failed hardware & security audit", "you"))
        out.append(
            Step("Hardware & security audit", hardware or "the hardware & security auditor, once assigned")
        )
    if stage not in (Stage.INTEGRATION_REVIEW, Stage.COMMITTEE_VOTE):
        if cx is None:
            out.append(Step("Assign the CX auditor", "the foundation"))
        if stage is Stage.CX_REMEDIATION:
            out.append(Step("Remediate the failed CX assessment", "you"))
        out.append(Step("CX assessment, from unboxing to onboarding", cx or "the CX auditor, once assigned"))
    if stage is not Stage.COMMITTEE_VOTE:
        out.append(Step("Table the Device License proposal on chain", "the foundation or a committee member"))
    out.append(Step("Vote the Device License to quorum", "the committee (Hardware Integration Team)"))
    return [Step(s.what, s.who, now=i == 0) for i, s in enumerate(out)]


def _current_certification(case: dict[str, Any]) -> bool:
    today = date.today().isoformat()
    return any(c["expires_on"] is None or c["expires_on"] >= today for c in case["certifications"])


def _failed_items(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The items the last failed hardware & security round failed, with their titles."""
    rounds = [a for a in case["audits"] if a["scope"] == "hardware_security"]
    if not rounds or rounds[-1]["passed"]:
        return []
    titles = {i.id: i.title for i in load_checklist(rounds[-1]["results"].get("checklist_version", 1)).items}
    return [
        {**item, "title": titles.get(item["item_id"], item["item_id"])}
        for item in rounds[-1]["results"]["items"]
        if item["mark"] == "fail"
    ]


def device_page(
    me: Me, application_id: int, *, status: int = 200, typed: dict[str, str] | None = None, **problems: str
) -> Response:
    """The device application page; `problems` (certification, video, submission, remediation)
    are shown beside their form, with what was typed in `typed`."""
    flow = me.domain.devices
    try:
        flow.require_readable(me.actor, application_id)
        case = flow.export(application_id)
    except DevicemintError as exc:
        return me.refuse_error(exc, f"Device application {application_id}")
    names = me.names()
    return me.page(
        "manufacturer/device.html",
        status=status,
        case=case,
        names=names,
        waiting_for=flow.waiting_for[case["stage"]],
        steps=steps(case, names),
        evidence=evidence_rows(me.domain, case["timeline"]),
        failed_items=_failed_items(case),
        schemes=[s.value for s in CertificationScheme],
        cx_steps=load_cx_rubric().steps,
        slots=slots(),
        video_hint=accepted(EvidenceKind.CX_VIDEO),
        certification_hint=accepted(EvidenceKind.CERTIFICATION),
        remediation_hint=accepted(EvidenceKind.DOCUMENT),
        open_for_evidence=case["stage"] in _BEFORE_VOTE,
        typed=typed or {},
        problems=problems,
        mine=me.is_me(case["applicant"]),
    )


@router.get("/devices/{application_id}", response_model=None)
def device_application(
    request: Request, ctx: Context, who: Viewer, application_id: ApplicationId
) -> Response:
    me = acting(request, ctx, who)
    return device_page(me, application_id) if isinstance(me, Me) else me


async def _posted(request: Request, ctx: Any, who: Any, handler: Any, application_id: int) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    form = await request.form()

    def guarded() -> Response:
        refused = not_a_party(me, me.domain.devices, application_id, f"Device application {application_id}")
        return refused or handler(me, application_id, form)

    return await run_in_threadpool(guarded)


def _back(application_id: int, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/devices/{application_id}#{anchor}", status_code=303)


@router.post("/devices/{application_id}/certifications", response_model=None)
async def add_certification(
    request: Request, ctx: Context, who: Viewer, application_id: ApplicationId
) -> Response:
    return await _posted(request, ctx, who, _add_certification, application_id)


def _add_certification(me: Me, application_id: int, form: FormData) -> Response:
    typed = {k: text(form, k).strip() for k in ("scheme", "identifier", "issued_on", "expires_on")}

    def refused(status: int, message: str) -> Response:
        return device_page(me, application_id, status=status, typed=typed, certification=message)

    files = uploads(form, "document")
    if not files:
        return refused(422, "Document: choose the certificate document (PDF or image).")
    document = attempt(lambda: store(me.domain, files[0], EvidenceKind.CERTIFICATION))
    if isinstance(document, DevicemintError):
        return refused(status_of(document), f"Document: {document}")
    try:
        cert = CertificationIn(
            scheme=typed["scheme"],  # type: ignore[arg-type]
            identifier=typed["identifier"],
            issued_on=typed["issued_on"],  # type: ignore[arg-type]
            expires_on=typed["expires_on"] or None,  # type: ignore[arg-type]
            document_sha256=document.sha256,
        )
    except ValidationError as exc:
        return refused(
            422,
            "; ".join(
                f"{_field(e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()
            ),
        )
    outcome = attempt(lambda: me.domain.devices.add_certification(me.actor, application_id, cert))
    if isinstance(outcome, DevicemintError):
        return refused(status_of(outcome), str(outcome))
    return _back(application_id, "certifications")


def _field(loc: tuple[Any, ...]) -> str:
    labels = {
        "scheme": "Scheme",
        "identifier": "Identifier",
        "issued_on": "Issued on",
        "expires_on": "Expires on",
    }
    return labels.get(str(loc[0]), str(loc[0])) if loc else "Certification"


@router.post("/devices/{application_id}/videos", response_model=None)
async def add_videos(request: Request, ctx: Context, who: Viewer, application_id: ApplicationId) -> Response:
    return await _posted(request, ctx, who, _add_videos, application_id)


def _add_videos(me: Me, application_id: int, form: FormData) -> Response:
    step = text(form, "step")
    typed = {"step": step}
    if step not in load_cx_rubric().steps:
        return device_page(
            me,
            application_id,
            status=422,
            typed=typed,
            video=f"Step: choose one of {', '.join(load_cx_rubric().steps)}.",
        )
    files = uploads(form, "video")
    if not files:
        return device_page(
            me, application_id, status=422, typed=typed, video="Video: choose the video file(s) to upload."
        )

    def file_them() -> None:
        hashes = [store(me.domain, f, EvidenceKind.CX_VIDEO).sha256 for f in files]
        me.domain.devices.add_evidence(
            me.actor, application_id, kind=EvidenceKind.CX_VIDEO, hashes=hashes, note=f"CX video: {step}"
        )

    outcome = attempt(file_them)
    if isinstance(outcome, DevicemintError):
        return device_page(me, application_id, status=status_of(outcome), typed=typed, video=str(outcome))
    return _back(application_id, "evidence")


@router.post("/devices/{application_id}/submission", response_model=None)
def submit_for_audit(request: Request, ctx: Context, who: Viewer, application_id: ApplicationId) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    outcome = attempt(lambda: me.domain.devices.submit_for_audit(me.actor, application_id))
    if isinstance(outcome, DevicemintError):
        return device_page(me, application_id, status=status_of(outcome), submission=str(outcome))
    return _back(application_id, "missing")


@router.post("/devices/{application_id}/remediation", response_model=None)
async def remediate(request: Request, ctx: Context, who: Viewer, application_id: ApplicationId) -> Response:
    return await _posted(request, ctx, who, _remediate, application_id)


def _remediate(me: Me, application_id: int, form: FormData) -> Response:
    note = text(form, "note").strip()
    typed = {"note": text(form, "note")}

    def refused(status: int, message: str) -> Response:
        return device_page(me, application_id, status=status, typed=typed, remediation=message)

    evidence_files = uploads(form, "evidence")
    if not evidence_files:
        return refused(422, "Evidence: choose at least one document (PDF) showing the fix.")
    evidence = attempt(lambda: [store(me.domain, f, EvidenceKind.DOCUMENT).sha256 for f in evidence_files])
    if isinstance(evidence, DevicemintError):
        return refused(status_of(evidence), f"Evidence: {evidence}")
    replaced = any(uploads(form, slot.name) for slot in slots())
    files = None
    if replaced:
        current = attempt(lambda: me.domain.devices.export(application_id))
        if isinstance(current, DevicemintError):
            return refused(status_of(current), str(current))
        files, problems = dossier(me, form, [DossierFile(**f) for f in current["dossier"]])
        if problems:
            return refused(
                422, "; ".join(f"{k.removeprefix('file_').capitalize()}: {v}" for k, v in problems.items())
            )
    try:
        remediation = RemediationIn(note=note, evidence=evidence, files=files)
    except ValidationError as exc:
        return refused(
            422,
            "; ".join(
                f"{_remediation_field(e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors()
            ),
        )
    outcome = attempt(lambda: me.domain.devices.remediate(me.actor, application_id, remediation))
    if isinstance(outcome, DevicemintError):
        return refused(status_of(outcome), str(outcome))
    return _back(application_id, "missing")


def _remediation_field(loc: tuple[Any, ...]) -> str:
    return {"note": "What you changed", "evidence": "Evidence", "files": "Dossier"}.get(
        str(loc[0]) if loc else "", "Remediation"
    )
