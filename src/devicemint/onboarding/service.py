"""The onboarding domain assembled over one chain, database and evidence store, as the API and
the CLI both use it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from devicemint.licensing.committee import Committee
from devicemint.onboarding.auditors import AuditorRegistry
from devicemint.onboarding.cases import Actor
from devicemint.onboarding.device import DeviceOnboarding
from devicemint.onboarding.evidence import EvidenceStore, LocalEvidenceStore
from devicemint.onboarding.manufacturer import ManufacturerOnboarding
from devicemint.pki.authority import Authority
from devicemint.runtime import Runtime


@dataclass(frozen=True)
class Onboarding:
    evidence: EvidenceStore
    auditors: AuditorRegistry
    committee: Committee
    manufacturers: ManufacturerOnboarding
    devices: DeviceOnboarding

    @classmethod
    def open(cls, runtime: Runtime, *, evidence: EvidenceStore | None = None) -> Onboarding:
        """Evidence defaults to the local store under the data directory."""
        store = evidence or LocalEvidenceStore(runtime.settings.home / "evidence")
        auditors = AuditorRegistry(sessions=runtime.sessions)
        return cls(
            evidence=store,
            auditors=auditors,
            committee=Committee(sessions=runtime.sessions, contracts=runtime.contracts),
            manufacturers=ManufacturerOnboarding(
                sessions=runtime.sessions,
                contracts=runtime.contracts,
                chain_id=runtime.settings.chain_id,
                auditors=auditors,
                evidence=store,
                authority=Authority.of(runtime.settings, runtime.sessions),
            ),
            devices=DeviceOnboarding(
                sessions=runtime.sessions,
                contracts=runtime.contracts,
                evidence=store,
                auditors=auditors,
                w3=runtime.w3,
            ),
        )

    def actor(self, address: str, roles: Iterable[str]) -> Actor:
        """An actor with its programme roles (foundation, committee) and auditor scopes."""
        return Actor(address, frozenset(roles) | self.auditors.roles_of(address))
