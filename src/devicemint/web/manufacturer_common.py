"""What the manufacturer portal's pages share: who may act, the domains, refusals as pages, and
how a timeline names the parties.

Every page and every POST first asks `acting`: a person signed in whose roles make it a
manufacturer (any address that is not the foundation, a committee member or an auditor; see
`auth.roles`). Anyone else is answered with a 403 page naming who may act, before anything is
read or written. Domain refusals become pages too (the API's JSON error handlers are for the
API); the status is the one the API gives for the same refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from devicemint.api.deps import ApiContext, Principal
from devicemint.api.errors import answer_for
from devicemint.auth.roles import Role
from devicemint.errors import DevicemintError
from devicemint.onboarding.cases import Actor, CaseFile
from devicemint.onboarding.evidence import (
    DEFAULT_POLICIES,
    EvidenceKind,
    StoredEvidence,
    describe_media_type,
)
from devicemint.onboarding.service import Onboarding
from devicemint.runtime import Runtime
from devicemint.web.pages import has_role, refusal, render

PREFIX = "/portal/manufacturer"


def status_of(exc: DevicemintError) -> int:
    """The HTTP status of a domain refusal, as the API answers it."""
    return answer_for(exc)[0]


T = TypeVar("T")


@dataclass(frozen=True)
class Me:
    """A manufacturer acting in the portal, with what its pages need."""

    request: Request
    ctx: ApiContext
    who: Principal
    domain: Onboarding
    runtime: Runtime

    @property
    def address(self) -> str:
        return self.who.address

    @cached_property
    def actor(self) -> Actor:
        return self.domain.actor(self.who.address, (r.value for r in self.who.roles))

    def page(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        return render(self.request, self.ctx, self.who, template, status=status, prefix=PREFIX, **values)

    def refuse(self, status: int, title: str, detail: str) -> HTMLResponse:
        return refusal(self.request, self.ctx, self.who, status, title, detail)

    def refuse_error(self, exc: DevicemintError, title: str) -> HTMLResponse:
        return self.refuse(status_of(exc), title, str(exc))

    def is_me(self, address: str | None) -> bool:
        return address is not None and address.lower() == self.who.address.lower()

    def names(self) -> Names:
        return Names.of(self)


def acting(request: Request, ctx: ApiContext, who: Principal | None) -> Me | Response:
    """The manufacturer signed in, or the answer to give instead: sign in first, or a 403 page
    naming who may act here."""
    if who is None:
        target = request.url.path if request.method == "GET" else PREFIX
        return RedirectResponse(f"/sign-in?next={target}", status_code=303)
    if not has_role(who, Role.MANUFACTURER):
        held = ", ".join(r.value for r in sorted(who.roles) if r is not Role.PUBLIC)
        return refusal(
            request,
            ctx,
            who,
            403,
            "Only manufacturers act here",
            f"{who.address} is signed in as {held}. The manufacturer portal is for manufacturers "
            "(applicants and licensees: any address that is not the foundation, a committee member "
            "or an auditor); your own work is linked from the portal page.",
        )
    if ctx.onboarding is None or ctx.runtime is None:
        return refusal(
            request, ctx, who, 503, "Not available", "this server has no chain deployment to onboard against"
        )
    return Me(request=request, ctx=ctx, who=who, domain=ctx.onboarding, runtime=ctx.runtime)


def json_refusal(status: int, detail: str) -> JSONResponse:
    """The answer to the portal's wallet scripts: `detail` is what `wallet.js` shows."""
    return JSONResponse({"detail": detail}, status_code=status)


def acting_json(request: Request, ctx: ApiContext, who: Principal | None) -> Me | JSONResponse:
    """`acting` for the endpoints the wallet scripts call: the same refusals, as JSON."""
    me = acting(request, ctx, who)
    if isinstance(me, Me):
        return me
    if who is None:
        return json_refusal(401, "sign in first")
    return json_refusal(me.status_code, "only a manufacturer (applicant or licensee) may do this")


@dataclass(frozen=True)
class Step:
    """One step still to come: what, who acts, and whether the case waits on it now."""

    what: str
    who: str
    now: bool = False


# -- who is who in a timeline --------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """Labels for the addresses a case file names: you, the foundation, auditors by name."""

    me: str
    known: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, me: Me) -> Names:
        known = {a["address"].lower(): f"{a['name']} (auditor)" for a in me.domain.auditors.list()}
        foundation = str(me.runtime.contracts.manufacturer_license.functions.owner().call())
        known[foundation.lower()] = "the foundation"
        return cls(me=me.address.lower(), known=known)

    def __call__(self, address: str | None) -> str:
        if not address:
            return "nobody yet"
        if address.lower() == self.me:
            return "you"
        return self.known.get(address.lower(), address)


# -- uploads -------------------------------------------------------------------------------------


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def store(domain: Onboarding, upload: UploadFile, kind: EvidenceKind) -> StoredEvidence:
    """One uploaded file into the evidence store (content-addressed, type checked by content)."""
    return domain.evidence.put(upload.file, kind=kind, filename=upload.filename or "upload")


def accepted(kind: EvidenceKind) -> str:
    """What an upload of `kind` may be, for the hint beside its input."""
    policy = DEFAULT_POLICIES[kind]
    types = ", ".join(sorted(describe_media_type(t) for t in policy.media_types))
    return f"{policy.label}: {types}; at most {policy.max_bytes // (1024 * 1024)} MiB"


def evidence_rows(domain: Onboarding, timeline: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every piece of evidence a case's timeline names, once, with what the store knows of it."""
    rows: dict[str, dict[str, Any]] = {}
    for event in timeline:
        for sha256 in event["evidence"]:
            if sha256 in rows:
                continue
            row: dict[str, Any] = {"sha256": sha256, "action": event["action"], "note": event["note"]}
            if domain.evidence.exists(sha256):
                info = domain.evidence.info(sha256)
                row.update(filename=info.filename, kind=info.kind.value, size=info.size)
            rows[sha256] = row
    return list(rows.values())


def not_a_party(me: Me, flow: CaseFile[Any], application_id: int, title: str) -> Response | None:
    """The refusal page for anyone not a party to the case (or None): asked before any upload
    is stored, so nobody else's files reach the evidence store through someone's case."""
    try:
        flow.require_readable(me.actor, application_id)
    except DevicemintError as exc:
        return me.refuse_error(exc, title)
    return None


def attempt(action: Callable[[], T]) -> T | DevicemintError:
    """Run a domain action; its refusal is returned to be shown, not raised to the API's handlers."""
    try:
        return action()
    except DevicemintError as exc:
        return exc
