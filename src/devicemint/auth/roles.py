"""Who may do what: the roles of an address.

The API depends only on `RoleResolver`; the chain-backed resolver reads the roles from the
licence contracts, where the foundation and the committee are recorded, and asks the auditor
registry (another domain) through an injected callable.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from enum import StrEnum
from typing import Protocol

from web3.contract import Contract
from web3.exceptions import Web3Exception

from devicemint.errors import ChainError


class Role(StrEnum):
    FOUNDATION = "foundation"
    COMMITTEE = "committee"
    AUDITOR = "auditor"
    MANUFACTURER = "manufacturer"
    PUBLIC = "public"


#: What anyone has, signed in or not.
PUBLIC_ROLES: frozenset[Role] = frozenset({Role.PUBLIC})


class RoleResolver(Protocol):
    def roles_of(self, address: str) -> frozenset[Role]:
        """The roles of a signed-in address (always including PUBLIC)."""
        ...


class ChainRoleResolver:
    """Roles from the chain: the foundation owns ManufacturerLicense, committee members are
    recorded in DeviceLicense, auditors come from `is_auditor` (address -> auditor scopes, empty
    when not an auditor); any other signed-in address is a manufacturer (applicant or licensee).
    """

    def __init__(
        self,
        *,
        manufacturer_license: Contract,
        device_license: Contract,
        is_auditor: Callable[[str], Set[str]] | None = None,
    ) -> None:
        self._manufacturer_license = manufacturer_license
        self._device_license = device_license
        self._is_auditor = is_auditor

    def roles_of(self, address: str) -> frozenset[Role]:
        roles = {Role.PUBLIC}
        try:
            foundation = self._manufacturer_license.functions.owner().call()
            if str(foundation).lower() == address.lower():
                roles.add(Role.FOUNDATION)
            if self._device_license.functions.isCommitteeMember(address).call():
                roles.add(Role.COMMITTEE)
        except (Web3Exception, OSError) as exc:
            raise ChainError(f"could not read the roles of {address} from the chain: {exc}") from exc
        if self._is_auditor is not None and self._is_auditor(address):
            roles.add(Role.AUDITOR)
        if roles == {Role.PUBLIC}:
            roles.add(Role.MANUFACTURER)
        return frozenset(roles)
