"""The committee's portal (the Hardware Integration Team): open proposals with every piece of
evidence, the tally, quorum and deadline, and the vote.

A vote is a transaction from the member's own wallet: the server prepares it (`vote-transaction`,
the domain's `vote_call`), `static/committee.js` has the wallet send it, and the server then
checks the mined vote and brings the case up to the chain (`sync`), which issues the Device
License in the case file once the vote that reached quorum executed on chain. Proposals are read
from the chain, the source of truth for the tally.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from web3 import Web3
from web3.exceptions import TimeExhausted, TransactionNotFound
from web3.logs import DISCARD

from devicemint.api.deps import Context, Principal
from devicemint.auth.roles import Role
from devicemint.errors import NotFound
from devicemint.licensing.registry import read_device_licence
from devicemint.onboarding.models import DeviceApplication
from devicemint.onboarding.service import Onboarding
from devicemint.web.pages import Viewer, refusal, render
from devicemint.web.review import (
    ROLE_NAMES,
    Refused,
    actor,
    case_names,
    device_case_evidence,
    manufacturer_name,
    onboarding,
    portal_of,
    status_of,
    timeline_rows,
    when,
)

router = APIRouter(include_in_schema=False)

ProposalId = Annotated[int, Path(ge=1, le=2**63 - 1)]
WHAT = "see and vote on the committee's proposals"
MemberPage = Annotated[Principal, Depends(portal_of(Role.COMMITTEE, WHAT))]
_KINDS = {1: "issue", 2: "revoke"}
_PENDING = 1
_STATUSES = {_PENDING: "pending", 2: "executed", 3: "rejected"}
RECENT = 20


@dataclass(frozen=True)
class Proposal:
    """One committee proposal as the chain has it, with the case file it decides (if any)."""

    id: int
    kind: str
    status: str
    proposer: str
    deadline: int
    quorum: int
    yes: int
    no: int
    licence_id: int
    manufacturer: str
    design_hash: str
    model: str
    revision: str
    evidence_hash: str
    reason_hash: str
    expired: bool
    application: int | None

    @property
    def open(self) -> bool:
        return self.status == "pending" and not self.expired

    @property
    def outcome(self) -> str:
        """The result in plain words."""
        if self.status == "executed":
            return (
                f"device licence {self.licence_id} issued"
                if self.kind == "issue"
                else f"device licence {self.licence_id} revoked"
            )
        if self.status == "rejected":
            return "rejected: quorum can no longer be reached"
        if self.expired:
            return "closed without quorum (the deadline passed)"
        return f"open: {max(self.quorum - self.yes, 0)} more yes vote(s) needed"

    @property
    def subject(self) -> str:
        if self.kind == "issue":
            return f"issue a Device License for {self.model} {self.revision}"
        return f"revoke device licence {self.licence_id}"


def read_proposal(domain: Onboarding, proposal_id: int, now: int) -> Proposal:
    functions = domain.devices.contracts.device_license.functions
    if not 1 <= proposal_id <= int(functions.proposalCount().call()):
        raise NotFound(f"there is no proposal {proposal_id}")
    raw = functions.proposal(proposal_id).call()
    kind, status, proposer, deadline, quorum, yes, no, licence_id, manufacturer = raw[:9]
    design_hash, model, revision, evidence_hash, reason_hash = raw[9:]
    with domain.devices.sessions() as session:
        application = session.scalar(
            select(DeviceApplication.id).where(DeviceApplication.proposal_id == proposal_id)
        )
    return Proposal(
        id=proposal_id,
        kind=_KINDS.get(kind, "unknown"),
        status=_STATUSES.get(status, "unknown"),
        proposer=proposer,
        deadline=int(deadline),
        quorum=int(quorum),
        yes=int(yes),
        no=int(no),
        licence_id=int(licence_id),
        manufacturer=manufacturer,
        design_hash=bytes(design_hash).hex(),
        model=model,
        revision=revision,
        evidence_hash=bytes(evidence_hash).hex(),
        reason_hash=bytes(reason_hash).hex(),
        expired=status == _PENDING and now > int(deadline),
        application=application,
    )


def chain_time(domain: Onboarding) -> int:
    """The latest block's timestamp: the clock the contract's deadlines are measured on."""
    return int(domain.devices.w3.eth.get_block("latest")["timestamp"])


def all_proposals(domain: Onboarding) -> list[Proposal]:
    count = int(domain.devices.contracts.device_license.functions.proposalCount().call())
    now = chain_time(domain)
    return [read_proposal(domain, i, now) for i in range(count, 0, -1)]


def votes_of(domain: Onboarding, proposal_id: int) -> dict[str, dict[str, Any]]:
    """Who voted on a proposal, how, in which transaction (the chain's VoteCast events)."""
    logs = domain.devices.contracts.device_license.events.VoteCast().get_logs(
        from_block=0, argument_filters={"proposalId": proposal_id}
    )
    return {
        Web3.to_checksum_address(log["args"]["voter"]): {
            "support": bool(log["args"]["support"]),
            "tx_hash": log["transactionHash"].to_0x_hex(),
            "block": int(log["blockNumber"]),
        }
        for log in logs
    }


# -- pages ------------------------------------------------------------------------------------


@router.get("/portal/committee", response_class=HTMLResponse, response_model=None)
def proposals_page(request: Request, ctx: Context, who: MemberPage) -> Response:
    domain = onboarding(ctx)
    proposals = all_proposals(domain)
    voted = domain.devices.contracts.device_license.functions.hasVoted
    committee = domain.committee.sync()
    return render(
        request,
        ctx,
        who,
        "committee/proposals.html",
        open=[(p, bool(voted(p.id, who.address).call())) for p in proposals if p.open],
        closed=[p for p in proposals if not p.open][:RECENT],
        names={
            p.manufacturer: manufacturer_name(domain, p.manufacturer) for p in proposals if p.kind == "issue"
        },
        committee=committee,
        when=when,
    )


@router.get("/portal/committee/proposals/{proposal_id}", response_class=HTMLResponse, response_model=None)
def proposal_page(request: Request, ctx: Context, who: MemberPage, proposal_id: ProposalId) -> Response:
    domain = onboarding(ctx)
    try:
        proposal = read_proposal(domain, proposal_id, chain_time(domain))
        context = _evidence_context(domain, proposal)
    except Refused as exc:
        return refusal(request, ctx, who, status_of(exc), f"Proposal {proposal_id}", str(exc))
    votes = votes_of(domain, proposal_id)
    committee = domain.committee.sync()
    return render(
        request,
        ctx,
        who,
        "committee/proposal.html",
        proposal=proposal,
        votes=votes,
        members=sorted(set(committee.members) | set(votes)),
        seated=set(committee.members),
        mine=votes.get(Web3.to_checksum_address(who.address)),
        member=Web3.to_checksum_address(who.address) in committee.members,
        deadline=when(proposal.deadline),
        when=when,
        **context,
    )


def _evidence_context(domain: Onboarding, proposal: Proposal) -> dict[str, Any]:
    """What a member weighs: for an issue, the case file the proposal anchors (checked against
    the hash on chain) and all its evidence; for a revocation, the licence and the case it came from."""
    application = proposal.application
    licence = None
    if proposal.kind == "revoke":
        licence = read_device_licence(domain.devices.contracts, proposal.licence_id)
        with domain.devices.sessions() as session:
            application = session.scalar(
                select(DeviceApplication.id).where(DeviceApplication.licence_id == proposal.licence_id)
            )
    if application is None:
        return {"case": None, "evidence": [], "timeline": [], "anchored_matches": None, "licence": licence}
    case = domain.devices.export(application)
    names = case_names(domain, case)
    anchored_matches = None
    if proposal.kind == "issue" and case["proposal_id"] == proposal.id:
        anchored = domain.devices.anchored_case_file(application)
        anchored_matches = hashlib.sha256(anchored).hexdigest() == proposal.evidence_hash
    return {
        "case": case,
        "evidence": device_case_evidence(domain.evidence, case, names),
        "timeline": timeline_rows(domain.evidence, case["timeline"], names),
        "anchored_matches": anchored_matches,
        "licence": licence,
        "manufacturer_name": manufacturer_name(domain, case["applicant"]),
    }


# -- the vote (JSON for committee.js) -----------------------------------------------------------


def _refused_json(ctx: Context, who: Principal | None) -> JSONResponse | None:
    if who is None:
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    if Role.COMMITTEE not in who.roles:
        return JSONResponse(
            {"detail": f"only {ROLE_NAMES[Role.COMMITTEE]} may vote; {who.address} is not a member"},
            status_code=403,
        )
    if ctx.onboarding is None:
        return JSONResponse({"detail": "this server has no chain deployment"}, status_code=503)
    return None


@router.get("/portal/committee/proposals/{proposal_id}/vote-transaction", response_model=None)
def vote_transaction(
    ctx: Context, who: Viewer, proposal_id: ProposalId, support: Annotated[bool, Query()]
) -> JSONResponse:
    """The transaction the member's wallet sends: `vote(proposalId, support)` on DeviceLicense."""
    if (refused := _refused_json(ctx, who)) is not None:
        return refused
    assert who is not None
    domain = onboarding(ctx)
    try:
        proposal = read_proposal(domain, proposal_id, chain_time(domain))
        if proposal.application is not None:
            call = domain.devices.vote_call(proposal.application, support=support, voter=who.address)
            tx = {"to": call["to"], "data": call["data"]}
        else:  # a revocation: no case file of its own, the same vote on chain
            device_license = domain.devices.contracts.device_license
            data = device_license.functions.vote(proposal_id, support)._encode_transaction_data()
            tx = {"to": device_license.address, "data": data}
    except Refused as exc:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))
    if not proposal.open:
        return JSONResponse({"detail": f"proposal {proposal_id} is {proposal.outcome}"}, status_code=409)
    return JSONResponse(tx)


class VoteSent(BaseModel):
    tx_hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")


@router.post("/portal/committee/proposals/{proposal_id}/votes", response_model=None)
def vote_sent(ctx: Context, who: Viewer, proposal_id: ProposalId, body: VoteSent) -> JSONResponse:
    """After the wallet sent the vote: check it is this member's mined vote on this proposal,
    then bring the case up to the chain (the vote may have reached quorum)."""
    if (refused := _refused_json(ctx, who)) is not None:
        return refused
    assert who is not None
    domain = onboarding(ctx)
    w3 = domain.devices.w3
    try:
        receipt = w3.eth.wait_for_transaction_receipt(body.tx_hash, timeout=60)  # type: ignore[arg-type]
        sender = w3.eth.get_transaction(body.tx_hash)["from"]  # type: ignore[arg-type]
    except (TransactionNotFound, TimeExhausted):
        return JSONResponse(
            {"detail": f"transaction {body.tx_hash} is not on chain (yet); reload the page once it is mined"},
            status_code=409,
        )
    if sender.lower() != who.address.lower():
        return JSONResponse(
            {"detail": f"transaction {body.tx_hash} was sent by {sender}, not by {who.address}"},
            status_code=403,
        )
    logs = domain.devices.contracts.device_license.events.VoteCast().process_receipt(receipt, errors=DISCARD)
    if receipt["status"] != 1 or not any(log["args"]["proposalId"] == proposal_id for log in logs):
        return JSONResponse(
            {"detail": f"transaction {body.tx_hash} is not a vote on proposal {proposal_id}"}, status_code=409
        )
    try:
        proposal = read_proposal(domain, proposal_id, chain_time(domain))
        stage = None
        if proposal.application is not None:
            stage = domain.devices.sync(actor(domain, who), proposal.application)
    except Refused as exc:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))
    return JSONResponse(
        {
            "proposal": proposal_id,
            "yes": proposal.yes,
            "no": proposal.no,
            "quorum": proposal.quorum,
            "outcome": proposal.outcome,
            "stage": stage,
        }
    )
