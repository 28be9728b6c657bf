"""The committee (Hardware Integration Team): membership and quorum live in DeviceLicense and
only the foundation changes them; the database keeps a mirror for listing and joins."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract.contract import ContractFunctions

from devicemint.chain.deployments import Contracts
from devicemint.chain.tx import TxSender
from devicemint.db.session import transaction
from devicemint.licensing.models import CommitteeSeat


@dataclass(frozen=True)
class CommitteeState:
    members: tuple[str, ...]
    quorum: int
    voting_period_seconds: int


class Committee:
    def __init__(self, *, sessions: sessionmaker[Session], contracts: Contracts) -> None:
        self.sessions = sessions
        self.contracts = contracts

    @property
    def _functions(self) -> ContractFunctions:
        return self.contracts.device_license.functions

    def set_member(self, foundation: TxSender, address: str, *, member: bool) -> CommitteeState:
        """Seat or unseat a member (the contract refuses anyone but the foundation)."""
        verb = "seating" if member else "unseating"
        foundation.transact(
            self._functions.setCommitteeMember(address, member), what=f"{verb} committee member {address}"
        )
        return self.sync()

    def set_quorum(self, foundation: TxSender, quorum: int) -> CommitteeState:
        foundation.transact(
            self._functions.setQuorum(quorum), what=f"setting the committee quorum to {quorum}"
        )
        return self.sync()

    def sync(self) -> CommitteeState:
        """Rebuild the mirror from the chain's CommitteeMemberSet events (the last one per
        address wins); returns the chain's current committee."""
        events = self.contracts.device_license.events.CommitteeMemberSet().get_logs(from_block=0)
        seated: dict[str, int] = {}
        for event in sorted(events, key=lambda e: (e["blockNumber"], e["logIndex"])):
            account = Web3.to_checksum_address(event["args"]["account"])
            if event["args"]["isMember"]:
                seated[account] = int(event["blockNumber"])
            else:
                seated.pop(account, None)
        with transaction(self.sessions) as session:
            session.execute(delete(CommitteeSeat))
            session.add_all(CommitteeSeat(address=a, since_block=b) for a, b in seated.items())
        return CommitteeState(
            members=tuple(sorted(seated)),
            quorum=int(self._functions.quorum().call()),
            voting_period_seconds=int(self._functions.votingPeriod().call()),
        )
