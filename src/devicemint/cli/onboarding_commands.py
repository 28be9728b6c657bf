"""Onboarding from the command line: `devicemint evidence|auditor|committee|application|licence ...`
and `devicemint serve`.

Every step the API offers, calling the library directly rather than over HTTP. The acting party
is the key `load_signer` gives: on the dev chain 31337 `--as` picks the dev account of a party;
elsewhere the configured keystore acts whatever `--as` says. Its roles come from the chain and
the auditor registry, exactly as the API resolves a signed-in address, so the library's refusals
(wrong party, wrong stage) read the same on both.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from devicemint.auth.roles import ChainRoleResolver
from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.errors import UsageError
from devicemint.licensing import actions
from devicemint.licensing.committee import CommitteeState
from devicemint.licensing.registry import (
    DeviceLicence,
    ManufacturerLicence,
    published_firmware,
    read_device_licence,
    read_manufacturer_licence,
)
from devicemint.onboarding.auditors import AuditScope, checksum
from devicemint.onboarding.cases import FOUNDATION, Actor
from devicemint.onboarding.design import (
    CertificationIn,
    CxAssessmentIn,
    DesignSubmission,
    HardwareAuditIn,
    RemediationIn,
)
from devicemint.onboarding.device import DeviceOnboarding
from devicemint.onboarding.evidence import EvidenceError, EvidenceKind, describe_media_type, normalise_sha256
from devicemint.onboarding.manufacturer import ManufacturerOnboarding, MouSignature
from devicemint.onboarding.questionnaire import QuestionnaireInvalid
from devicemint.onboarding.service import Onboarding
from devicemint.runtime import Runtime

console = Console()
stderr = Console(stderr=True)

#: How long a MOU signature made here stays valid: long enough to reach the server, short
#: enough that a leaked one is soon useless.
MOU_SIGNATURE_SECONDS = 3600


class Party(StrEnum):
    """The parties `--as` can pick on the dev chain (their keys.DevRole accounts)."""

    FOUNDATION = "foundation"
    MANUFACTURER = "manufacturer"
    COMMITTEE_1 = "committee-1"
    COMMITTEE_2 = "committee-2"
    COMMITTEE_3 = "committee-3"
    AUDITOR = "auditor"
    OWNER = "owner"

    @property
    def dev_role(self) -> keys.DevRole:
        return keys.DevRole[self.name]


# -- parameters shared by the commands -------------------------------------------------------------


def sha256_param(value: str) -> str:
    try:
        return normalise_sha256(value)
    except EvidenceError as exc:
        raise typer.BadParameter(str(exc)) from exc


def address_param(value: str) -> str:
    try:
        return checksum(value)
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from exc


AsParty = Annotated[
    Party,
    typer.Option(
        "--as",
        help="Who acts, on the dev chain 31337 (elsewhere the configured key acts, whatever this says).",
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (a case: its whole case file).")
]
CaseId = Annotated[int, typer.Argument(min=1, help="Application id.")]
Address = Annotated[str, typer.Argument(callback=address_param, help="0x address.")]
InputFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="JSON input file.")
]
Reason = Annotated[str, typer.Option("--reason", help="Why; recorded in the case file.")]


# -- who acts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acting:
    """An opened onboarding domain and the party acting on it, with its own key."""

    onboarding: Onboarding
    actor: Actor
    sender: TxSender


def open_onboarding(ctx: typer.Context) -> Onboarding:
    return Onboarding.open(Runtime.open(ctx.obj))


def acting(ctx: typer.Context, party: Party) -> Acting:
    """The party's key and its roles, read from the chain and the auditor registry."""
    settings = ctx.obj
    runtime = Runtime.open(settings)
    onboarding = Onboarding.open(runtime)
    account = keys.load_signer(settings, party.dev_role, chain_id=settings.chain_id)
    resolver = ChainRoleResolver(
        manufacturer_license=runtime.contracts.manufacturer_license,
        device_license=runtime.contracts.device_license,
        is_auditor=onboarding.auditors.scopes_of,
    )
    actor = onboarding.actor(account.address, (r.value for r in resolver.roles_of(account.address)))
    stderr.print(f"acting as {actor.address} ({', '.join(sorted(actor.roles))})", highlight=False)
    sender = TxSender(w3=runtime.w3, account=account, chain_id=settings.chain_id)
    return Acting(onboarding=onboarding, actor=actor, sender=sender)


# -- input files and output -------------------------------------------------------------------------

Model = TypeVar("Model", bound=BaseModel)


def read_json(path: Path) -> object:
    """A JSON input file, or an error naming the file and where it stops being JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text; a JSON file is expected") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror})") from exc


def load_input(path: Path, model: type[Model]) -> Model:
    """A JSON input file validated by the library's model; every wrong field named with its path."""
    try:
        return model.model_validate(read_json(path))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(document)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise UsageError(f"{path}: {exc.error_count()} problem(s): {problems}") from exc


def emit(as_json: bool, data: object, text: str) -> None:
    """JSON on stdout for scripts, or one line for a person."""
    if as_json:
        print(json.dumps(data, default=str))
    else:
        say(text)


def say(text: str) -> None:
    """A line for a person, printed as written: names and notes are not Rich markup."""
    console.print(text, highlight=False, soft_wrap=True, markup=False)


def emit_case(as_json: bool, kind: str, case: dict[str, Any], note: str = "") -> None:
    text = f"{kind} application {case['application']}: stage {case['stage']}"
    emit(as_json, case, text + (f"; {note}" if note else ""))


def print_table(rows: list[dict[str, Any]], columns: tuple[str, ...], empty: str) -> None:
    if not rows:
        say(empty)
        return
    table = Table(show_header=True, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")  # wrap, never cut: people copy addresses from here
    for row in rows:
        table.add_row(*(Text(_cell(row.get(column))) for column in columns))
    console.print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def show_case(as_json: bool, kind: str, case: dict[str, Any]) -> None:
    """The whole case file: its facts, then its timeline (who moved it, when, on what)."""
    if as_json:
        print(json.dumps(case, default=str))
        return
    console.print(
        f"[bold]{kind} application {case['application']}[/]: stage {case['stage']}", highlight=False
    )
    for key, value in case.items():
        if key not in ("application", "stage", "timeline") and not isinstance(value, dict | list):
            say(f"  {key}: {_cell(value)}")
    for line in _details(case):
        say(line)
    console.print("[bold]timeline[/]")
    for event in case["timeline"]:
        say(_event_line(event))


def _details(case: dict[str, Any]) -> Iterator[str]:
    """A device case's dossier, certifications and audit rounds, one line each."""
    for f in case.get("dossier", []):
        yield f"  file {f['name']} ({f['role']}) {f['sha256']}"
    for c in case.get("certifications", []):
        yield f"  certification {c['scheme']} {c['identifier']}, {c['issued_on']} to {c['expires_on'] or '-'}"
    for a in case.get("audits", []):
        verdict = "pass" if a["passed"] else "fail"
        yield f"  audit {a['scope']} round {a['round']} by {a['auditor']}: {verdict}, report {a['report_sha256']}"


def _event_line(event: dict[str, Any]) -> str:
    """One event on one line: when, what, the stage it moved to, who, on what evidence, why."""
    moved = event["from"] not in (None, event["to"])
    stage = f"{event['from']} -> {event['to']}" if moved else event["to"]
    line = f"  {event['at'][:19].replace('T', ' ')}  {event['action']} [{stage}] by {event['actor']}"
    if event["evidence"]:
        line += f", {len(event['evidence'])} evidence"
    return line + (f": {event['note']}" if event["note"] else "")


# -- evidence ----------------------------------------------------------------------------------------

evidence_app = typer.Typer(
    help="Evidence: documents stored content-addressed by SHA-256.", no_args_is_help=True
)


@evidence_app.command("upload")
def evidence_upload(
    ctx: typer.Context,
    kind: Annotated[EvidenceKind, typer.Argument(help="What the document is.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The document.")],
    as_json: AsJson = False,
) -> None:
    """Store a document; its SHA-256 is what cases and the chain refer to."""
    with file.open("rb") as stream:
        stored = open_onboarding(ctx).evidence.put(stream, kind=kind, filename=file.name)
    view = {**asdict(stored), "kind": stored.kind.value}
    emit(
        as_json,
        view,
        f"{stored.sha256} {file.name} ({stored.kind.value}, {describe_media_type(stored.media_type)})",
    )


@evidence_app.command("show")
def evidence_show(
    ctx: typer.Context,
    sha256: Annotated[str, typer.Argument(callback=sha256_param, help="The document's SHA-256.")],
    as_json: AsJson = False,
) -> None:
    """What is stored under a SHA-256, re-hashed so a damaged copy is reported, not trusted."""
    stored = open_onboarding(ctx).evidence.verify(sha256)
    view = {**asdict(stored), "kind": stored.kind.value}
    emit(
        as_json, view, f"{stored.sha256} {stored.filename} ({stored.kind.value}, {stored.size} bytes): intact"
    )


@evidence_app.command("download")
def evidence_download(
    ctx: typer.Context,
    sha256: Annotated[str, typer.Argument(callback=sha256_param, help="The document's SHA-256.")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="Where to write the document.")],
) -> None:
    """Copy a document out of the store, checked against its SHA-256 first.

    The command reads the data directory itself, so whoever can run it can read the files
    already; the check that matters here is that the bytes are the ones the hash names.
    """
    with open_onboarding(ctx).evidence.open(sha256, verify=True) as stream, out.open("wb") as copy:
        shutil.copyfileobj(stream, copy)
    say(f"wrote {sha256} to {out}")


# -- auditors ----------------------------------------------------------------------------------------

auditor_app = typer.Typer(
    help="Approved auditors and their scopes (the foundation manages them).", no_args_is_help=True
)


@auditor_app.command("approve")
def auditor_approve(
    ctx: typer.Context,
    address: Address,
    name: Annotated[str, typer.Option("--name", help="The auditor's name.")],
    scopes: Annotated[list[AuditScope], typer.Option("--scope", help="A scope; repeat for several.")],
    party: AsParty = Party.FOUNDATION,
    as_json: AsJson = False,
) -> None:
    """Approve an auditor, or change an approved auditor's name and scopes."""
    act = acting(ctx, party)
    approved = act.onboarding.auditors.approve(
        act.actor, address, name=name, scopes=[s.value for s in scopes]
    )
    emit(
        as_json,
        approved,
        f"approved {approved['name']} ({approved['address']}): {', '.join(approved['scopes'])}",
    )


@auditor_app.command("remove")
def auditor_remove(ctx: typer.Context, address: Address, party: AsParty = Party.FOUNDATION) -> None:
    """Remove an approved auditor; its past reports stay in the case files."""
    act = acting(ctx, party)
    act.onboarding.auditors.remove(act.actor, address)
    say(f"removed auditor {address}")


@auditor_app.command("list")
def auditor_list(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The approved auditors and their scopes."""
    auditors = open_onboarding(ctx).auditors.list()
    if as_json:
        print(json.dumps(auditors))
    else:
        print_table(auditors, ("address", "name", "scopes"), "no approved auditors")


# -- committee ---------------------------------------------------------------------------------------

committee_app = typer.Typer(
    help="The committee (Hardware Integration Team), as recorded on chain.", no_args_is_help=True
)


def _committee(as_json: bool, state: CommitteeState) -> None:
    view = {
        "members": list(state.members),
        "quorum": state.quorum,
        "voting_period_seconds": state.voting_period_seconds,
    }
    text = (
        f"quorum {state.quorum} of {len(state.members)}, voting period {state.voting_period_seconds}s; "
        f"members: {', '.join(state.members) or 'none'}"
    )
    emit(as_json, view, text)


def _foundation_key(act: Acting, action: str) -> TxSender:
    """The contract refuses anyone else; saying so first beats a reverted transaction."""
    act.actor.require(FOUNDATION, action)
    return act.sender


@committee_app.command("show")
def committee_show(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The committee's members, quorum and voting period."""
    _committee(as_json, open_onboarding(ctx).committee.sync())


@committee_app.command("seat")
def committee_seat(
    ctx: typer.Context, address: Address, party: AsParty = Party.FOUNDATION, as_json: AsJson = False
) -> None:
    """Seat a committee member (on chain)."""
    act = acting(ctx, party)
    key = _foundation_key(act, "seat committee members")
    _committee(as_json, act.onboarding.committee.set_member(key, address, member=True))


@committee_app.command("unseat")
def committee_unseat(
    ctx: typer.Context, address: Address, party: AsParty = Party.FOUNDATION, as_json: AsJson = False
) -> None:
    """Unseat a committee member (on chain)."""
    act = acting(ctx, party)
    key = _foundation_key(act, "unseat committee members")
    _committee(as_json, act.onboarding.committee.set_member(key, address, member=False))


@committee_app.command("quorum")
def committee_quorum(
    ctx: typer.Context,
    quorum: Annotated[int, typer.Argument(min=1, max=1000, help="Yes votes that issue a licence.")],
    party: AsParty = Party.FOUNDATION,
    as_json: AsJson = False,
) -> None:
    """Set the committee quorum (on chain)."""
    act = acting(ctx, party)
    _committee(as_json, act.onboarding.committee.set_quorum(_foundation_key(act, "set the quorum"), quorum))


# -- manufacturer applications ---------------------------------------------------------------------

application_app = typer.Typer(help="Manufacturer and device applications.", no_args_is_help=True)
manufacturer_app = typer.Typer(
    help="The manufacturer application: intake questionnaire to manufacturer licence.", no_args_is_help=True
)
MANUFACTURER = "manufacturer"
MouSha = Annotated[str, typer.Option("--mou", callback=sha256_param, help="SHA-256 of the uploaded MOU.")]


def sign_mou(act: Acting, application_id: int, mou: str, role: str) -> MouSignature:
    """Sign the MOU's EIP-712 typed data with the actor's key, with a fresh nonce and a deadline."""
    nonce, deadline = time.time_ns(), int(time.time()) + MOU_SIGNATURE_SECONDS
    data = act.onboarding.manufacturers.mou_typed_data(
        application_id, mou_sha256=mou, signer=act.actor.address, role=role, nonce=nonce, deadline=deadline
    )
    signature = act.sender.account.sign_typed_data(full_message=data).signature.to_0x_hex()
    return MouSignature(mou_sha256=mou, nonce=nonce, deadline=deadline, signature=signature)


@manufacturer_app.command("submit")
def manufacturer_submit(
    ctx: typer.Context, answers: InputFile, party: AsParty = Party.MANUFACTURER, as_json: AsJson = False
) -> None:
    """Open an application with the intake questionnaire (ANSWERS.json)."""
    act = acting(ctx, party)
    try:
        application_id = act.onboarding.manufacturers.submit_intake(act.actor, read_json(answers))
    except QuestionnaireInvalid as exc:
        raise UsageError(f"{answers}: {exc}") from exc
    emit_case(as_json, MANUFACTURER, act.onboarding.manufacturers.export(application_id))


@manufacturer_app.command("checklist")
def manufacturer_checklist(
    ctx: typer.Context,
    application_id: CaseId,
    version: Annotated[int, typer.Option("--version", min=1, help="Checklist version.")] = 1,
    party: AsParty = Party.FOUNDATION,
    as_json: AsJson = False,
) -> None:
    """Issue the audit checklist (the foundation)."""
    act = acting(ctx, party)
    act.onboarding.manufacturers.issue_checklist(act.actor, application_id, version)
    emit_case(as_json, MANUFACTURER, act.onboarding.manufacturers.export(application_id))


@manufacturer_app.command("sign-mou")
def manufacturer_sign_mou(
    ctx: typer.Context,
    application_id: CaseId,
    mou: MouSha,
    party: AsParty = Party.MANUFACTURER,
    as_json: AsJson = False,
) -> None:
    """Sign the MOU with the applicant's key (EIP-712, valid for an hour, usable once)."""
    act = acting(ctx, party)
    act.onboarding.manufacturers.sign_mou(
        act.actor, application_id, sign_mou(act, application_id, mou, MANUFACTURER)
    )
    emit_case(as_json, MANUFACTURER, act.onboarding.manufacturers.export(application_id))


@manufacturer_app.command("countersign-mou")
def manufacturer_countersign_mou(
    ctx: typer.Context,
    application_id: CaseId,
    mou: MouSha,
    party: AsParty = Party.FOUNDATION,
    as_json: AsJson = False,
) -> None:
    """Countersign the MOU the applicant signed (the foundation's key)."""
    act = acting(ctx, party)
    signed = sign_mou(act, application_id, mou, FOUNDATION)
    act.onboarding.manufacturers.countersign_mou(act.actor, application_id, signed)
    emit_case(as_json, MANUFACTURER, act.onboarding.manufacturers.export(application_id))


@manufacturer_app.command("stake")
def manufacturer_stake(
    ctx: typer.Context,
    tokens: Annotated[int, typer.Argument(min=1, help="Whole tokens to stake (18 decimals on chain).")],
    party: AsParty = Party.MANUFACTURER,
) -> None:
    """Approve and stake TOKENS of the staking token with the applicant's own key."""
    act = acting(ctx, party)
    actions.stake(act.onboarding.manufacturers.contracts, act.sender, tokens * 10**18)
    console.print(f"{act.actor.address} staked {tokens:,} tokens; now run confirm-stake")


@manufacturer_app.command("confirm-stake")
def manufacturer_confirm_stake(
    ctx: typer.Context, application_id: CaseId, party: AsParty = Party.MANUFACTURER, as_json: AsJson = False
) -> None:
    """Confirm the applicant's stake on chain (any party to the case may ask; the chain decides)."""
    act = acting(ctx, party)
    act.onboarding.manufacturers.require_readable(act.actor, application_id)
    stake = act.onboarding.manufacturers.confirm_stake(act.actor, application_id)
    case = {"stake": str(stake), **act.onboarding.manufacturers.export(application_id)}
    emit_case(as_json, MANUFACTURER, case, f"stake {stake / 10**18:,.0f} tokens")


@manufacturer_app.command("assign-auditor")
def manufacturer_assign_auditor(
    ctx: typer.Context,
    application_id: CaseId,
    auditor: Address,
    party: AsParty = Party.FOUNDATION,
    as_json: AsJson = False,
) -> None:
    """Assign the hardware & security auditor who signs the applicant off (the foundation)."""
    act = acting(ctx, party)
    act.onboarding.manufacturers.assign_auditor(act.actor, application_id, auditor=auditor)
    emit_case(as_json, MANUFACTURER, act.onboarding.manufacturers.export(application_id))


@manufacturer_app.command("approve")
def manufacturer_approve(
    ctx: typer.Context,
    application_id: CaseId,
    report: Annotated[
        str, typer.Option("--report", callback=sha256_param, help="SHA-256 of the audit report.")
    ],
    note: Annotated[str, typer.Option("--note", help="The auditor's note.")] = "",
    party: AsParty = Party.AUDITOR,
    as_json: AsJson = False,
) -> None:
    """Sign the manufacturer off (its assigned auditor)."""
    act = acting(ctx, party)
    act.onboarding.manufacturers.approve(act.actor, application_id, report_sha256=report, note=note)
    emit_case(as_json, MANUFACTURER, act.onboarding.manufacturers.export(application_id))


@manufacturer_app.command("grant")
def manufacturer_grant(
    ctx: typer.Context,
    application_id: CaseId,
    csr: Annotated[
        Path | None,
        typer.Option(
            "--csr",
            exists=True,
            dir_okay=False,
            readable=True,
            help="The manufacturer's PEM request for its root certificate (see `devicemint pki request`); "
            "without it a root key is made in this home's encrypted keystore.",
        ),
    ] = None,
    party: AsParty = Party.FOUNDATION,
    as_json: AsJson = False,
) -> None:
    """Issue the manufacturer root certificate and grant the licence on chain with its SHA-256,
    anchoring the whole case file (the foundation)."""
    act = acting(ctx, party)
    licence_id = act.onboarding.manufacturers.grant(
        act.actor, application_id, foundation=act.sender, csr_pem=csr.read_bytes() if csr else None
    )
    case = {"licence_id": licence_id, **act.onboarding.manufacturers.export(application_id)}
    emit_case(as_json, MANUFACTURER, case, f"manufacturer licence {licence_id}")


def write_bytes(data: bytes, out: Path | None) -> None:
    """Exact bytes (so they hash as anchored): to a file, or to stdout unchanged."""
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        out.write_bytes(data)


# -- device applications ---------------------------------------------------------------------------

device_app = typer.Typer(
    help="The device application: design dossier to Device License.", no_args_is_help=True
)
DEVICE = "device"


@device_app.command("submit")
def device_submit(
    ctx: typer.Context, dossier: InputFile, party: AsParty = Party.MANUFACTURER, as_json: AsJson = False
) -> None:
    """Open an application with a design dossier (DOSSIER.json: model, revision, files by SHA-256)."""
    submission = load_input(dossier, DesignSubmission)
    act = acting(ctx, party)
    application_id = act.onboarding.devices.submit(act.actor, submission)
    case = act.onboarding.devices.export(application_id)
    emit_case(as_json, DEVICE, case, f"design {case['design_hash']}")


@device_app.command("diff")
def device_diff(
    ctx: typer.Context, application_id: CaseId, party: AsParty = Party.FOUNDATION, as_json: AsJson = False
) -> None:
    """For a design change: what changed against the licensed design's dossier."""
    act = acting(ctx, party)
    act.onboarding.devices.require_readable(act.actor, application_id)
    diff = act.onboarding.devices.diff(application_id)
    if as_json:
        print(json.dumps(diff))
        return
    say(f"design {diff['licensed_design_hash']} -> {diff['design_hash']}")
    for change in ("added", "removed", "changed"):
        for entry in diff[change]:
            say(f"  {change}: {entry['name']} ({entry['role']})")
    say(f"  unchanged: {', '.join(diff['unchanged']) or 'none'}")


@device_app.command("certify")
def device_certify(
    ctx: typer.Context,
    application_id: CaseId,
    certification: InputFile,
    party: AsParty = Party.MANUFACTURER,
    as_json: AsJson = False,
) -> None:
    """Add a certification (CERT.json: scheme, identifier, dates, document SHA-256)."""
    cert = load_input(certification, CertificationIn)
    act = acting(ctx, party)
    act.onboarding.devices.add_certification(act.actor, application_id, cert)
    emit_case(as_json, DEVICE, act.onboarding.devices.export(application_id))


@device_app.command("submit-for-audit")
def device_submit_for_audit(
    ctx: typer.Context, application_id: CaseId, party: AsParty = Party.MANUFACTURER, as_json: AsJson = False
) -> None:
    """Submit the design for audit (needs a current certification)."""
    act = acting(ctx, party)
    act.onboarding.devices.submit_for_audit(act.actor, application_id)
    emit_case(as_json, DEVICE, act.onboarding.devices.export(application_id))


@device_app.command("assign-auditor")
def device_assign_auditor(
    ctx: typer.Context,
    application_id: CaseId,
    auditor: Address,
    scope: Annotated[AuditScope, typer.Option("--scope", help="hardware_security or cx.")],
    party: AsParty = Party.FOUNDATION,
    as_json: AsJson = False,
) -> None:
    """Assign an approved auditor for one scope (the foundation)."""
    act = acting(ctx, party)
    act.onboarding.devices.assign_auditor(act.actor, application_id, scope=scope, auditor=auditor)
    emit_case(as_json, DEVICE, act.onboarding.devices.export(application_id))


@device_app.command("hardware-audit")
def device_hardware_audit(
    ctx: typer.Context,
    application_id: CaseId,
    audit: InputFile,
    party: AsParty = Party.AUDITOR,
    as_json: AsJson = False,
) -> None:
    """Record the hardware & security audit (AUDIT.json: every checklist item marked, the report)."""
    results = load_input(audit, HardwareAuditIn)
    act = acting(ctx, party)
    passed = act.onboarding.devices.record_hardware_audit(act.actor, application_id, results)
    case = {"passed": passed, **act.onboarding.devices.export(application_id)}
    emit_case(as_json, DEVICE, case, "passed" if passed else "failed: remediation needed")


@device_app.command("cx-assessment")
def device_cx_assessment(
    ctx: typer.Context,
    application_id: CaseId,
    assessment: InputFile,
    party: AsParty = Party.AUDITOR,
    as_json: AsJson = False,
) -> None:
    """Record the CX assessment (CX.json: a video per rubric step, a score per criterion, the report)."""
    cx = load_input(assessment, CxAssessmentIn)
    act = acting(ctx, party)
    passed = act.onboarding.devices.record_cx_assessment(act.actor, application_id, cx)
    case = {"passed": passed, **act.onboarding.devices.export(application_id)}
    emit_case(as_json, DEVICE, case, "passed" if passed else "failed: remediation needed")


@device_app.command("remediate")
def device_remediate(
    ctx: typer.Context,
    application_id: CaseId,
    remediation: InputFile,
    party: AsParty = Party.MANUFACTURER,
    as_json: AsJson = False,
) -> None:
    """Answer a failed audit (REMEDIATION.json: note, evidence, optionally a new dossier)."""
    answer = load_input(remediation, RemediationIn)
    act = acting(ctx, party)
    act.onboarding.devices.remediate(act.actor, application_id, answer)
    emit_case(as_json, DEVICE, act.onboarding.devices.export(application_id))


@device_app.command("propose")
def device_propose(
    ctx: typer.Context, application_id: CaseId, party: AsParty = Party.FOUNDATION, as_json: AsJson = False
) -> None:
    """Table the Device License on chain for the committee's vote (the foundation or a member)."""
    act = acting(ctx, party)
    proposal_id = act.onboarding.devices.propose(act.actor, application_id, proposer=act.sender)
    emit_case(as_json, DEVICE, act.onboarding.devices.export(application_id), f"proposal {proposal_id}")


@device_app.command("vote")
def device_vote(
    ctx: typer.Context,
    application_id: CaseId,
    support: Annotated[bool, typer.Option("--yes/--no", help="For or against the licence.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded with the vote.")] = "",
    party: AsParty = Party.COMMITTEE_1,
    as_json: AsJson = False,
) -> None:
    """Vote on the tabled Device License with the member's own key; quorum issues it."""
    act = acting(ctx, party)
    devices = act.onboarding.devices
    tx_hash = devices.vote(act.actor, application_id, voter=act.sender, support=support, reason=reason)
    case = {"tx_hash": tx_hash, **devices.export(application_id)}
    licence = f"; device licence {case['licence_id']}" if case["licence_id"] else ""
    emit_case(as_json, DEVICE, case, f"voted {'yes' if support else 'no'} in {tx_hash}{licence}")


@device_app.command("sync")
def device_sync(
    ctx: typer.Context, application_id: CaseId, party: AsParty = Party.FOUNDATION, as_json: AsJson = False
) -> None:
    """Bring the case up to the chain: votes cast from any wallet, quorum, rejection, expiry."""
    act = acting(ctx, party)
    act.onboarding.devices.require_readable(act.actor, application_id)
    act.onboarding.devices.sync(act.actor, application_id)
    emit_case(as_json, DEVICE, act.onboarding.devices.export(application_id))


# -- licences ----------------------------------------------------------------------------------------

licence_app = typer.Typer(help="Licences as recorded on chain (public).", no_args_is_help=True)
LicenceId = Annotated[int, typer.Argument(min=1, help="Licence id.")]


def licence_view(record: ManufacturerLicence | DeviceLicence) -> dict[str, Any]:
    """A licence as JSON: hashes as 0x hex, the status by name (as the API shows it)."""
    view = {k: "0x" + v.hex() if isinstance(v, bytes) else v for k, v in asdict(record).items()}
    view["status"] = record.status.name.lower()
    return view


@licence_app.command("manufacturer")
def licence_manufacturer(ctx: typer.Context, licence_id: LicenceId, as_json: AsJson = False) -> None:
    """A manufacturer licence: holder, name, root key fingerprint, anchored evidence, status."""
    record = read_manufacturer_licence(Runtime.open(ctx.obj).contracts, licence_id)
    emit(
        as_json,
        licence_view(record),
        f"manufacturer licence {licence_id}: {record.name} ({record.holder}), {record.status.name.lower()}",
    )


@licence_app.command("device")
def licence_device(ctx: typer.Context, licence_id: LicenceId, as_json: AsJson = False) -> None:
    """A device licence: holder, design hash, model, revision, status and published firmware."""
    contracts = Runtime.open(ctx.obj).contracts
    record = read_device_licence(contracts, licence_id)
    firmware = {v: "0x" + h.hex() for v, h in published_firmware(contracts, licence_id).items()}
    text = (
        f"device licence {licence_id}: {record.hardware_model} {record.hardware_revision} of {record.holder}, "
        f"design 0x{record.design_hash.hex()}, {record.status.name.lower()}; "
        f"firmware: {', '.join(firmware) or 'none published'}"
    )
    emit(as_json, {**licence_view(record), "firmware": firmware}, text)


# -- the API server ----------------------------------------------------------------------------------


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, max=64, help="API processes (the indexer runs once, in this one)."),
    ] = 1,
) -> None:
    """Serve the API (OpenAPI at /openapi.json) and index the chain until Ctrl-C.

    Sign-in messages must name the domain of the public_base_url setting (where people reach it).
    """
    # Imported here: the web stack costs every other command most of a second at start-up.
    import uvicorn

    from devicemint.api.server import Background, build_app

    runtime = Runtime.open(ctx.obj)
    app = build_app(ctx.obj, runtime)
    background = Background(runtime).start()
    stderr.print(
        f"serving the API on http://{host}:{port} (OpenAPI at /openapi.json), indexing the chain; Ctrl-C to stop"
    )
    # No access log: formatting a line per request cost a quarter of the verify throughput.
    try:
        if workers == 1:
            uvicorn.run(app, host=host, port=port, access_log=False)
        else:  # each worker builds its app from the same settings (read from the environment)
            uvicorn.run(
                "devicemint.api.server:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                access_log=False,
            )
    finally:
        background.stop()


def case_commands(
    app: typer.Typer,
    kind: str,
    cases_of: Callable[[Onboarding], ManufacturerOnboarding | DeviceOnboarding],
    columns: tuple[str, ...],
) -> None:
    """list, show, reject and anchored-case-file: the same for every kind of application."""

    @app.command("list")
    def list_cases(ctx: typer.Context, party: AsParty = Party.FOUNDATION, as_json: AsJson = False) -> None:
        """The applications the party may see."""
        act = acting(ctx, party)
        cases = cases_of(act.onboarding).visible_to(act.actor)
        if as_json:
            print(json.dumps(cases))
        else:
            print_table(cases, columns, f"no {kind} applications")

    @app.command("show")
    def show(
        ctx: typer.Context, application_id: CaseId, party: AsParty = Party.FOUNDATION, as_json: AsJson = False
    ) -> None:
        """The whole case file with its timeline (for its parties, the foundation and the committee)."""
        act = acting(ctx, party)
        cases = cases_of(act.onboarding)
        cases.require_readable(act.actor, application_id)
        show_case(as_json, kind, cases.export(application_id))

    @app.command("reject")
    def reject(
        ctx: typer.Context,
        application_id: CaseId,
        reason: Reason,
        party: AsParty = Party.FOUNDATION,
        as_json: AsJson = False,
    ) -> None:
        """Reject the application, with reasons (the foundation)."""
        act = acting(ctx, party)
        cases = cases_of(act.onboarding)
        cases.reject(act.actor, application_id, reason=reason)
        emit_case(as_json, kind, cases.export(application_id))

    @app.command("anchored-case-file")
    def anchored(
        ctx: typer.Context,
        application_id: CaseId,
        out: Annotated[
            Path | None, typer.Option("--out", dir_okay=False, help="Write here, not stdout.")
        ] = None,
        party: AsParty = Party.FOUNDATION,
    ) -> None:
        """The exact case file whose SHA-256 the decision on chain carries."""
        act = acting(ctx, party)
        cases = cases_of(act.onboarding)
        cases.require_readable(act.actor, application_id)
        write_bytes(cases.anchored_case_file(application_id), out)


case_commands(
    manufacturer_app,
    MANUFACTURER,
    lambda o: o.manufacturers,
    ("application", "applicant", "stage", "licence_id"),
)
case_commands(
    device_app,
    DEVICE,
    lambda o: o.devices,
    ("application", "applicant", "model", "revision", "stage", "licence_id"),
)


def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app, name="evidence")
    app.add_typer(auditor_app, name="auditor")
    app.add_typer(committee_app, name="committee")
    application_app.add_typer(manufacturer_app, name="manufacturer")
    application_app.add_typer(device_app, name="device")
    app.add_typer(application_app, name="application")
    app.add_typer(licence_app, name="licence")
    app.command("serve")(serve_command)
