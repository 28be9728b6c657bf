"""The approved-auditor registry: who may audit, in which scopes. The foundation manages it.

Auditors decide nothing on chain themselves (their reports are anchored in the decisions the
foundation and the committee take), so the registry lives in the database.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from devicemint.db.models import utc_now
from devicemint.db.session import transaction
from devicemint.errors import NotFound, UsageError
from devicemint.onboarding.cases import FOUNDATION, Actor, NotPermitted, auditor_role
from devicemint.onboarding.models import ApprovedAuditor


class AuditScope(StrEnum):
    HARDWARE_SECURITY = "hardware_security"
    CX = "cx"
    INTEGRATION = "integration"


def parse_scopes(scopes: list[str]) -> list[AuditScope]:
    if not scopes:
        raise UsageError(f"an auditor needs at least one scope: {', '.join(s.value for s in AuditScope)}")
    unknown = [s for s in scopes if s not in AuditScope.__members__.values()]
    if unknown:
        raise UsageError(
            f"unknown auditor scope {', '.join(map(repr, unknown))}; "
            f"scopes are {', '.join(s.value for s in AuditScope)}"
        )
    return sorted({AuditScope(s) for s in scopes})


def checksum(address: str, what: str = "address") -> str:
    """An address in EIP-55 form, or a clear refusal naming what it was for."""
    if not Web3.is_address(address):
        raise UsageError(f"{what} {address!r} is not a 0x address (40 hex digits)")
    return Web3.to_checksum_address(address)


class AuditorRegistry:
    def __init__(self, *, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def approve(self, actor: Actor, address: str, *, name: str, scopes: list[str]) -> dict[str, Any]:
        """Approve an auditor, or change an approved auditor's name and scopes."""
        actor.require(FOUNDATION, "approve auditors")
        address = checksum(address, "auditor address")
        if not name.strip():
            raise UsageError("an auditor needs a name")
        chosen = [s.value for s in parse_scopes(scopes)]
        with transaction(self.sessions) as session:
            row = session.get(ApprovedAuditor, address)
            if row is None:
                row = ApprovedAuditor(address=address)
                session.add(row)
            row.name, row.scopes, row.active = name.strip(), chosen, True
            row.approved_by, row.updated_at = actor.address, utc_now()
            session.flush()
            return _view(row)

    def remove(self, actor: Actor, address: str) -> None:
        actor.require(FOUNDATION, "remove auditors")
        with transaction(self.sessions) as session:
            row = session.get(ApprovedAuditor, checksum(address, "auditor address"))
            if row is None or not row.active:
                raise NotFound(f"{address} is not an approved auditor")
            row.active, row.approved_by, row.updated_at = False, actor.address, utc_now()

    def scopes_of(self, address: str) -> frozenset[str]:
        """The scopes an address may audit in now (empty if it is not an approved auditor)."""
        if not Web3.is_address(address):
            return frozenset()
        with self.sessions() as session:
            row = session.get(ApprovedAuditor, Web3.to_checksum_address(address))
            return frozenset(row.scopes) if row is not None and row.active else frozenset()

    def roles_of(self, address: str) -> frozenset[str]:
        """The case-file roles (auditor:<scope>) the address holds."""
        return frozenset(auditor_role(s) for s in self.scopes_of(address))

    def require(self, address: str, scope: AuditScope, action: str) -> None:
        if scope.value not in self.scopes_of(address):
            raise NotPermitted(
                f"{address} may not {action}: it is not an approved auditor with the {scope.value} scope"
            )

    def list(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            rows = session.scalars(
                select(ApprovedAuditor).where(ApprovedAuditor.active).order_by(ApprovedAuditor.name)
            )
            return [_view(r) for r in rows]


def _view(row: ApprovedAuditor) -> dict[str, Any]:
    return {"address": row.address, "name": row.name, "scopes": list(row.scopes)}
