"""A sample manufacturer taken through every onboarding stage on the local chain, as the demo
shows it: intake, checklist, MOU, stake, auditor sign-off, manufacturer licence; then a design
dossier, certification, a failed and a passed hardware & security audit, the CX assessment, the
committee's vote and the Device License. Each party acts with its own dev key and role.

Only for chain 31337 (dev keys). Running it again reuses what is already licensed.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.errors import ConfigError
from devicemint.licensing import actions
from devicemint.licensing.registry import read_manufacturer_licence
from devicemint.onboarding.auditors import AuditScope
from devicemint.onboarding.cases import COMMITTEE, FOUNDATION, Actor
from devicemint.onboarding.checklist import Mark, load_checklist
from devicemint.onboarding.design import (
    CertificationIn,
    CertificationScheme,
    ChecklistMarkIn,
    CxAssessmentIn,
    CxVideo,
    DesignSubmission,
    DossierFile,
    DossierRole,
    HardwareAuditIn,
    RemediationIn,
    design_hash,
    load_cx_rubric,
)
from devicemint.onboarding.evidence import EvidenceKind
from devicemint.onboarding.manufacturer import MouSignature
from devicemint.onboarding.models import DeviceApplication
from devicemint.onboarding.samples import sample_bom, sample_firmware, sample_mp4, sample_pdf
from devicemint.onboarding.service import Onboarding
from devicemint.pki.errors import NoFoundationRoot
from devicemint.pki.profiles import fingerprint
from devicemint.runtime import Runtime

FOUNDATION_NAME = "devicemint Network Foundation"
SAMPLE_MANUFACTURER = "Acme Telematics Ltd"
SAMPLE_MODEL = "AT-OBD-4G"
SAMPLE_REVISION = "rev-C"
SAMPLE_FIRMWARE = "1.0.0"
STAKE = 100_000 * 10**18
ANSWERS = {
    "company_name": SAMPLE_MANUFACTURER,
    "legal_entity_id": "GB-12345678",
    "jurisdiction": "GB",
    "website": "https://acme-telematics.example",
    "contacts": [
        {"name": "Grace Hopper", "email": "grace@acme-telematics.example", "role": "Head of Hardware"}
    ],
    "device": {
        "name": SAMPLE_MODEL,
        "type": "obd-dongle",
        "connectivity": ["lte-m", "bluetooth"],
        "secure_element": "NXP SE050",
        "target_markets": ["GB", "DE", "US"],
        "expected_units_first_year": 50000,
    },
}

Say = Callable[[str], None]


@dataclass(frozen=True)
class Cast:
    """Who plays which part in the demo (dev accounts)."""

    foundation: LocalAccount
    manufacturer: LocalAccount
    hardware_auditor: LocalAccount
    cx_auditor: LocalAccount
    members: tuple[LocalAccount, ...]

    @classmethod
    def dev(cls) -> Cast:
        return cls(
            foundation=keys.dev_account(keys.DevRole.FOUNDATION),
            manufacturer=keys.dev_account(keys.DevRole.MANUFACTURER),
            hardware_auditor=keys.dev_account(keys.DevRole.AUDITOR),
            cx_auditor=keys.dev_account(keys.DevRole.CX_AUDITOR),
            members=(keys.dev_account(keys.DevRole.COMMITTEE_1), keys.dev_account(keys.DevRole.COMMITTEE_2)),
        )


class Walkthrough:
    def __init__(self, runtime: Runtime, *, say: Say) -> None:
        if not runtime.settings.is_local_chain:
            raise ConfigError("the demo walkthrough acts with dev keys, so it runs only on chain 31337")
        self.runtime = runtime
        self.onboarding = Onboarding.open(runtime)
        self.cast = Cast.dev()
        self.say = say
        self.foundation = Actor(self.cast.foundation.address, frozenset({FOUNDATION}))
        self.manufacturer = Actor(self.cast.manufacturer.address)

    def _sender(self, account: LocalAccount) -> TxSender:
        return TxSender(w3=self.runtime.w3, account=account, chain_id=self.runtime.settings.chain_id)

    def _upload(self, kind: EvidenceKind, filename: str, content: bytes) -> str:
        return self.onboarding.evidence.put(io.BytesIO(content), kind=kind, filename=filename).sha256

    def _auditor(self, account: LocalAccount) -> Actor:
        return self.onboarding.actor(account.address, ())

    # -- manufacturer -----------------------------------------------------------------------------

    def manufacturer_licence(self) -> int:
        contracts = self.runtime.contracts
        existing = int(contracts.manufacturer_license.functions.licenceIdOf(self.manufacturer.address).call())
        if existing:
            self.say(f"manufacturer licence {existing}: {SAMPLE_MANUFACTURER} (already licensed)")
            return existing
        self._foundation_root()
        auditors = self.onboarding.auditors
        auditors.approve(
            self.foundation,
            self.cast.hardware_auditor.address,
            name="Prüfwerk AG",
            scopes=["hardware_security"],
        )
        auditors.approve(
            self.foundation, self.cast.cx_auditor.address, name="Northwind UX Lab", scopes=["cx"]
        )
        self.say("auditors approved: Prüfwerk AG (hardware_security), Northwind UX Lab (cx)")

        flow = self.onboarding.manufacturers
        case = flow.submit_intake(self.manufacturer, ANSWERS)
        flow.issue_checklist(self.foundation, case)
        self.say(f"manufacturer application {case}: intake questionnaire submitted, audit checklist issued")
        mou = self._upload(
            EvidenceKind.MOU, "mou.pdf", sample_pdf(f"MOU between the foundation and {SAMPLE_MANUFACTURER}")
        )
        flow.sign_mou(
            self.manufacturer, case, self._mou_signature(case, self.cast.manufacturer, "manufacturer", mou)
        )
        flow.countersign_mou(
            self.foundation, case, self._mou_signature(case, self.cast.foundation, FOUNDATION, mou)
        )
        self.say(
            f"  MOU {mou[:12]}... signed (EIP-712) by the manufacturer and countersigned by the foundation"
        )

        foundation = self._sender(self.cast.foundation)
        foundation.transact(
            contracts.staking_token.functions.mint(self.manufacturer.address, STAKE), what="funding the stake"
        )
        actions.stake(contracts, self._sender(self.cast.manufacturer), STAKE)
        flow.confirm_stake(self.manufacturer, case)
        self.say("  100,000 tokens staked on chain and confirmed")

        flow.assign_auditor(self.foundation, case, auditor=self.cast.hardware_auditor.address)
        report = self._upload(
            EvidenceKind.AUDIT_REPORT, "factory-audit.pdf", sample_pdf("factory and security audit: pass")
        )
        flow.approve(
            self._auditor(self.cast.hardware_auditor), case, report_sha256=report, note="factory audit passed"
        )
        licence_id = flow.grant(self.foundation, case, foundation=foundation)
        root = flow.authority.ca_certificate(
            read_manufacturer_licence(contracts, licence_id).root_cert_fingerprint
        )
        self.say(
            f"manufacturer licence {licence_id}: {SAMPLE_MANUFACTURER}, auditor signed off; root certificate "
            f"{root.subject.rfc4514_string()} (SHA-256 {fingerprint(root).hex()[:16]}...) recorded on chain"
        )
        return licence_id

    def _foundation_root(self) -> None:
        authority = self.onboarding.manufacturers.authority
        try:
            root = authority.foundation_root()
        except NoFoundationRoot:
            root = authority.create_foundation_root(FOUNDATION_NAME)
            self.say(f"foundation root CA created: {root.subject.rfc4514_string()}")

    def _mou_signature(self, case: int, account: LocalAccount, role: str, mou: str) -> MouSignature:
        nonce, deadline = time.time_ns(), int(time.time()) + 3600
        data = self.onboarding.manufacturers.mou_typed_data(
            case, mou_sha256=mou, signer=account.address, role=role, nonce=nonce, deadline=deadline
        )
        signature = Account.sign_message(encode_typed_data(full_message=data), account.key).signature
        return MouSignature(mou_sha256=mou, nonce=nonce, deadline=deadline, signature=signature.to_0x_hex())

    # -- device -----------------------------------------------------------------------------------

    def _dossier(self) -> list[DossierFile]:
        upload = self._upload
        return [
            DossierFile(
                name="schematics.pdf",
                role=DossierRole.SCHEMATIC,
                sha256=upload(
                    EvidenceKind.SCHEMATIC,
                    "schematics.pdf",
                    sample_pdf(f"{SAMPLE_MODEL} {SAMPLE_REVISION} schematics"),
                ),
            ),
            DossierFile(
                name="bom.csv",
                role=DossierRole.BOM,
                sha256=upload(EvidenceKind.BOM, "bom.csv", sample_bom(SAMPLE_MODEL)),
            ),
            DossierFile(
                name="firmware-1.0.0.bin",
                role=DossierRole.FIRMWARE,
                sha256=upload(
                    EvidenceKind.FIRMWARE,
                    "firmware-1.0.0.bin",
                    sample_firmware(SAMPLE_MODEL, SAMPLE_FIRMWARE),
                ),
            ),
            DossierFile(
                name="user-manual.pdf",
                role=DossierRole.DOCUMENT,
                sha256=upload(
                    EvidenceKind.DOCUMENT, "user-manual.pdf", sample_pdf(f"{SAMPLE_MODEL} user manual")
                ),
            ),
        ]

    def device_licence(self) -> int:
        contracts = self.runtime.contracts
        files = self._dossier()
        design = design_hash(SAMPLE_MODEL, SAMPLE_REVISION, files)
        existing = int(contracts.device_license.functions.licenceOfDesign(bytes.fromhex(design)).call())
        if existing:
            self.say(f"device licence {existing}: {SAMPLE_MODEL} {SAMPLE_REVISION} (already licensed)")
            return existing
        flow = self.onboarding.devices
        case = self._open_case(files)
        self.say(f"device application {case}: {SAMPLE_MODEL} {SAMPLE_REVISION}, design {design[:16]}...")
        fcc = self._upload(
            EvidenceKind.CERTIFICATION, "fcc-grant.pdf", sample_pdf(f"FCC grant 2AB3C-{SAMPLE_MODEL}")
        )
        flow.add_certification(
            self.manufacturer,
            case,
            CertificationIn(
                scheme=CertificationScheme.FCC,
                identifier=f"2AB3C-{SAMPLE_MODEL}",
                issued_on=date(2026, 6, 1),
                expires_on=date(2031, 6, 1),
                document_sha256=fcc,
            ),
        )
        flow.submit_for_audit(self.manufacturer, case)
        for scope, account in (
            (AuditScope.HARDWARE_SECURITY, self.cast.hardware_auditor),
            (AuditScope.CX, self.cast.cx_auditor),
        ):
            flow.assign_auditor(self.foundation, case, scope=scope, auditor=account.address)
        self.say("  FCC certification added; hardware & security and CX auditors assigned")

        self._hardware_audit(case, failing=("ota.signed",))
        self.say("  hardware & security audit round 1: fail (OTA images not signed)")
        fix = self._upload(
            EvidenceKind.DOCUMENT, "ota-signing.pdf", sample_pdf("OTA images now signed and verified")
        )
        flow.remediate(
            self.manufacturer,
            case,
            RemediationIn(note="OTA images signed with the release key", evidence=[fix]),
        )
        self._hardware_audit(case, failing=())
        self.say("  remediation submitted; round 2: pass")
        self._cx_assessment(case)
        self.say("  CX assessment from unboxing to onboarding: pass")

        flow.propose(self.foundation, case, proposer=self._sender(self.cast.foundation))
        for member in self.cast.members:
            flow.vote(
                Actor(member.address, frozenset({COMMITTEE})), case, voter=self._sender(member), support=True
            )
        licence_id = flow.export(case)["licence_id"]
        self.say(f"device licence {licence_id}: voted by the committee, bound to design {design[:16]}...")
        actions.publish_firmware(
            contracts,
            self._sender(self.cast.manufacturer),
            licence_id=licence_id,
            version=SAMPLE_FIRMWARE,
            image_sha256=bytes.fromhex(next(f.sha256 for f in files if f.role is DossierRole.FIRMWARE)),
        )
        return int(licence_id)

    def _open_case(self, files: list[DossierFile]) -> int:
        """A new application for the design. One left open by a demo stopped midway is
        withdrawn first (the foundation rejects it, saying why), so the walkthrough restarts."""
        with self.runtime.sessions() as session:
            stale = session.scalars(
                select(DeviceApplication.id).where(
                    DeviceApplication.design_hash == design_hash(SAMPLE_MODEL, SAMPLE_REVISION, files),
                    DeviceApplication.stage.not_in(["licensed", "rejected"]),
                )
            ).all()
        for case in stale:
            self.onboarding.devices.reject(
                self.foundation, case, reason="demo restarted after an interruption"
            )
        submission = DesignSubmission(model=SAMPLE_MODEL, revision=SAMPLE_REVISION, files=files)
        return self.onboarding.devices.submit(self.manufacturer, submission)

    def _hardware_audit(self, case: int, *, failing: tuple[str, ...]) -> None:
        photos = self._upload(EvidenceKind.DOCUMENT, "teardown.pdf", sample_pdf(f"teardown photos {failing}"))
        report = self._upload(
            EvidenceKind.AUDIT_REPORT, "hw-audit.pdf", sample_pdf(f"hardware & security audit {failing}")
        )
        items = [
            ChecklistMarkIn(
                item_id=item.id, mark=Mark.FAIL if item.id in failing else Mark.PASS, evidence=[photos]
            )
            for item in load_checklist().items
        ]
        self.onboarding.devices.record_hardware_audit(
            self._auditor(self.cast.hardware_auditor),
            case,
            HardwareAuditIn(items=items, report_sha256=report),
        )

    def _cx_assessment(self, case: int) -> None:
        rubric = load_cx_rubric()
        videos = [
            CxVideo(
                step=step,
                sha256=self._upload(
                    EvidenceKind.CX_VIDEO, f"{step}.mp4", sample_mp4(f"{SAMPLE_MODEL} {step}")
                ),
            )
            for step in rubric.steps
        ]
        report = self._upload(EvidenceKind.AUDIT_REPORT, "cx-report.pdf", sample_pdf("CX assessment: pass"))
        assessment = CxAssessmentIn(
            videos=videos, scores={c.id: 4 for c in rubric.criteria}, report_sha256=report
        )
        self.onboarding.devices.record_cx_assessment(self._auditor(self.cast.cx_auditor), case, assessment)
