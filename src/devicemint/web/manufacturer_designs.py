"""Submitting a hardware design: model, revision and the design dossier, every file uploaded.

Every file goes to the evidence store through the onboarding domain (which checks its type by
content and its size) before the domain takes the design; a file accepted in an attempt the
domain then refused is kept (its SHA-256 rides along in the form), so the person only chooses
again the files that were wrong. The dossier's inputs (`slots`) serve the remediation form too.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from devicemint.api.deps import Context
from devicemint.errors import DevicemintError
from devicemint.onboarding.design import REQUIRED_ROLES, DesignSubmission, DossierFile, DossierRole
from devicemint.onboarding.evidence import clean_filename, normalise_sha256
from devicemint.web.manufacturer_common import (
    PREFIX,
    Me,
    accepted,
    acting,
    attempt,
    status_of,
    store,
    text,
)
from devicemint.web.manufacturer_licences import held_device_licences, manufacturer_licence
from devicemint.web.pages import Viewer, uploads

router = APIRouter(include_in_schema=False)

#: Roles a dossier holds several files of; the others hold exactly one.
MANY = (DossierRole.DOCUMENT, DossierRole.ARCHIVE)


@dataclass(frozen=True)
class Slot:
    """One file input of the dossier form, for one role."""

    role: DossierRole
    required: bool
    many: bool
    hint: str

    @property
    def name(self) -> str:
        return f"file_{self.role.value}"


def slots() -> list[Slot]:
    """The dossier's inputs, from the design domain: its roles, which are required, and what
    the evidence store accepts for each."""
    return [
        Slot(role, role in REQUIRED_ROLES, role in MANY, accepted(role.evidence_kind)) for role in DossierRole
    ]


def _kept(form: FormData) -> list[DossierFile]:
    """Files accepted in an earlier attempt (name|role|sha256), still in the store."""
    kept = []
    for value in form.getlist("kept"):
        if isinstance(value, str) and value.count("|") == 2:
            name, role, sha256 = value.split("|")
            try:
                kept.append(
                    DossierFile(
                        name=clean_filename(name), role=DossierRole(role), sha256=normalise_sha256(sha256)
                    )
                )
            except (ValueError, DevicemintError):
                continue
    return kept


def dossier(me: Me, form: FormData, base: list[DossierFile]) -> tuple[list[DossierFile], dict[str, str]]:
    """The dossier: `base` with every role a file was chosen for replaced by the new files.
    Returns it with the upload problems by input name."""
    files = {role: [f for f in base if f.role is role] for role in DossierRole}
    problems: dict[str, str] = {}
    for slot in slots():
        chosen = uploads(form, slot.name)
        if not chosen:
            continue
        stored: list[DossierFile] = []
        for upload in chosen:
            kind = slot.role.evidence_kind
            outcome = attempt(lambda u=upload, k=kind: store(me.domain, u, k))  # type: ignore[misc]
            if isinstance(outcome, DevicemintError):
                problems[slot.name] = str(outcome)
                break
            stored.append(DossierFile(name=outcome.filename, role=slot.role, sha256=outcome.sha256))
        else:
            files[slot.role] = stored
    return [f for role in DossierRole for f in files[role]], problems


def _design_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's problems with a submission, by the input they belong to."""
    out: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        name = loc[0] if loc and loc[0] in ("model", "revision", "supersedes_licence_id") else "files"
        message = str(error["msg"]).removeprefix("Value error, ")
        out[name] = f"{out[name]}; {message}" if name in out else message
    return out


def _design_page(
    me: Me,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    kept: list[DossierFile] | None = None,
    errors: dict[str, str] | None = None,
    refused: str = "",
) -> Response:
    return me.page(
        "manufacturer/design_new.html",
        status=status,
        slots=slots(),
        typed=typed or {},
        kept=kept or [],
        errors=errors or {},
        refused=refused,
        licence=manufacturer_licence(me),
        licences=[lic for lic in held_device_licences(me) if lic.status.name == "ACTIVE"],
    )


@router.get("/designs/new", response_model=None)
def design_form(request: Request, ctx: Context, who: Viewer) -> Response:
    me = acting(request, ctx, who)
    return _design_page(me) if isinstance(me, Me) else me


@router.post("/designs", response_model=None)
async def submit_design(request: Request, ctx: Context, who: Viewer) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    form = await request.form()
    return await run_in_threadpool(_submit_design, me, form)


def _submit_design(me: Me, form: FormData) -> Response:
    typed = {k: text(form, k).strip() for k in ("model", "revision", "supersedes_licence_id")}
    licence = manufacturer_licence(me)
    if licence is None or licence.status.name != "ACTIVE":
        # Refused before any file is stored: only a licensed manufacturer submits designs.
        refusal = f"{me.address} may not submit a design: it holds no active manufacturer licence"
        return _design_page(me, status=403, typed=typed, refused=refusal)
    files, errors = dossier(me, form, _kept(form))
    if errors:
        return _design_page(me, status=422, typed=typed, kept=files, errors=errors)
    try:
        submission = DesignSubmission(
            model=typed["model"],
            revision=typed["revision"],
            files=files,
            supersedes_licence_id=typed["supersedes_licence_id"] or None,  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        return _design_page(me, status=422, typed=typed, kept=files, errors=_design_errors(exc))
    outcome = attempt(lambda: me.domain.devices.submit(me.actor, submission))
    if isinstance(outcome, DevicemintError):
        return _design_page(me, status=status_of(outcome), typed=typed, kept=files, refused=str(outcome))
    return RedirectResponse(f"{PREFIX}/devices/{outcome}", status_code=303)
