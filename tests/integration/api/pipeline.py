"""The onboarding pipeline driven over HTTP, party by party, against a real chain and database.

Each party signs in with its own key (SIWE); on-chain acts that belong to a party's own wallet
(staking, voting, publishing firmware) are signed with that party's key, as a wallet would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from devicemint.api.server import wire_app
from devicemint.chain import keys
from devicemint.chain.node import LocalNode
from devicemint.chain.tx import TxSender
from devicemint.cli.chain_commands import deploy
from devicemint.config import Settings
from devicemint.licensing import actions
from devicemint.onboarding.checklist import load_checklist
from devicemint.onboarding.design import load_cx_rubric
from devicemint.onboarding.samples import sample_bom, sample_firmware, sample_mp4, sample_pdf
from devicemint.onboarding.service import Onboarding
from devicemint.pki.authority import Authority
from devicemint.runtime import Runtime
from tests.unit.auth.support import DOMAIN, URI, Clock, signed

STAKE = 100_000 * 10**18
ANSWERS = {
    "company_name": "Nordlicht Telematik GmbH",
    "legal_entity_id": "HRB 123456",
    "jurisdiction": "DE",
    "website": "https://nordlicht.example",
    "contacts": [{"name": "Ada Berg", "email": "ada@nordlicht.example", "role": "CTO"}],
    "device": {
        "name": "NL-1",
        "type": "obd-dongle",
        "connectivity": ["lte-m", "bluetooth"],
        "secure_element": "NXP SE050",
        "target_markets": ["DE", "AT"],
        "expected_units_first_year": 20000,
    },
}


def csr_pem(organisation: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@contextmanager
def started(anvil_node: LocalNode, tmp_path: Path, database_url: str | None = None) -> Iterator[Pipeline]:
    """A fresh deployment (the test's chain snapshot reverts it), its API, every party signed
    in and the auditors approved. SQLite unless a database URL is given."""
    settings = Settings(
        home=tmp_path / "home",
        node_port=anvil_node.port,
        database_url=database_url or f"sqlite:///{tmp_path / 'db.sqlite'}",
        intake_workers=0,
    )
    deploy(settings)
    runtime = Runtime.open(settings)
    Authority.of(settings, runtime.sessions).create_foundation_root("Test Network Foundation")
    try:
        pipeline = Pipeline.start(runtime)
        pipeline.approve_auditors()
        yield pipeline
    finally:
        runtime.sessions.kw["bind"].dispose()


@dataclass
class Party:
    """One signed-in party: its key and its session."""

    name: str
    account: LocalAccount
    client: TestClient
    token: str = ""

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        response = self.client.request(method, path, headers={**self.headers, **kw.pop("headers", {})}, **kw)
        assert response.status_code == expect, (
            f"{self.name} {method} {path}: {response.status_code} {response.text}"
        )
        return (
            response.json()
            if response.content and "json" in response.headers.get("content-type", "")
            else response
        )

    def content(self, path: str) -> bytes:
        """The exact bytes of a response (for hashing)."""
        response = self.client.get(path, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.content

    def get(self, path: str, expect: int = 200, **kw: Any) -> Any:
        return self.call("GET", path, expect, **kw)

    def post(self, path: str, expect: int = 200, **kw: Any) -> Any:
        return self.call("POST", path, expect, **kw)

    def upload(self, kind: str, filename: str, content: bytes) -> str:
        found = self.post("/evidence", 201, data={"kind": kind}, files={"file": (filename, content)})
        return str(found["sha256"])

    def sender(self, runtime: Runtime) -> TxSender:
        return TxSender(w3=runtime.w3, account=self.account, chain_id=runtime.settings.chain_id)


@dataclass
class Pipeline:
    runtime: Runtime
    onboarding: Onboarding
    client: TestClient
    clock: Clock
    parties: dict[str, Party] = field(default_factory=dict)

    @classmethod
    def start(cls, runtime: Runtime) -> Pipeline:
        onboarding = Onboarding.open(runtime)
        clock = Clock(datetime.now(UTC))
        app = wire_app(
            runtime,
            onboarding,
            foundation_signer=TxSender(
                w3=runtime.w3, account=keys.dev_account(keys.DevRole.FOUNDATION), chain_id=31337
            ),
            minter_signer=TxSender(
                w3=runtime.w3, account=keys.dev_account(keys.DevRole.MANUFACTURER), chain_id=31337
            ),
            siwe_domain=DOMAIN,
            siwe_uri=URI,
            clock=clock,
        )
        pipeline = cls(runtime=runtime, onboarding=onboarding, client=TestClient(app), clock=clock)
        for name, account in {
            "foundation": keys.dev_account(keys.DevRole.FOUNDATION),
            "manufacturer": keys.dev_account(keys.DevRole.MANUFACTURER),
            "member1": keys.dev_account(keys.DevRole.COMMITTEE_1),
            "member2": keys.dev_account(keys.DevRole.COMMITTEE_2),
            "member3": keys.dev_account(keys.DevRole.COMMITTEE_3),
            "hw_auditor": keys.dev_account(keys.DevRole.AUDITOR),
            "cx_auditor": Account.create(),
            "stranger": keys.dev_account(keys.DevRole.OWNER),
        }.items():
            pipeline.parties[name] = pipeline.sign_in(name, account)
        return pipeline

    def sign_in(self, name: str, account: LocalAccount) -> Party:
        party = Party(name, account, self.client)
        nonce = self.client.get("/auth/nonce").json()["nonce"]
        text, signature = signed(account, nonce, issued_at=self.clock.now)
        response = self.client.post("/auth/sign-in", json={"message": text, "signature": signature})
        assert response.status_code == 200, response.text
        party.token = response.json()["token"]
        return party

    def __getattr__(self, name: str) -> Party:
        try:
            return self.__dict__["parties"][name]
        except KeyError:
            raise AttributeError(name) from None

    # -- stages ---------------------------------------------------------------------------------

    def approve_auditors(self) -> None:
        self.foundation.call(
            "PUT",
            f"/auditors/{self.hw_auditor.address}",
            json={"name": "Prüfwerk AG", "scopes": ["hardware_security"]},
        )
        self.foundation.call(
            "PUT", f"/auditors/{self.cx_auditor.address}", json={"name": "UX Lab", "scopes": ["cx"]}
        )

    def sign_mou(self, party: Party, application: int, role: str, mou: str, *, nonce: int) -> dict[str, Any]:
        deadline = int(time.time()) + 3600
        data = party.get(
            f"/manufacturer-applications/{application}/mou-typed-data",
            params={"mou_sha256": mou, "role": role, "nonce": nonce, "deadline": deadline},
        )
        signature = Account.sign_typed_data(party.account.key, full_message=data).signature.to_0x_hex()
        return {"mou_sha256": mou, "nonce": nonce, "deadline": deadline, "signature": signature}

    def license_manufacturer(self) -> int:
        """Intake to manufacturer licence; returns the licence id."""
        m, f = self.manufacturer, self.foundation
        case = m.post("/manufacturer-applications", 201, json=ANSWERS)["application"]
        f.post(f"/manufacturer-applications/{case}/checklist", json={"version": 1})
        mou = m.upload("mou", "mou.pdf", sample_pdf("MOU between the foundation and Nordlicht"))
        m.post(
            f"/manufacturer-applications/{case}/mou-signature",
            json=self.sign_mou(m, case, "manufacturer", mou, nonce=1),
        )
        f.post(
            f"/manufacturer-applications/{case}/mou-countersignature",
            json=self.sign_mou(f, case, "foundation", mou, nonce=1),
        )
        contracts = self.runtime.contracts
        f.sender(self.runtime).transact(contracts.staking_token.functions.mint(m.address, STAKE), what="fund")
        actions.stake(contracts, m.sender(self.runtime), STAKE)
        assert m.post(f"/manufacturer-applications/{case}/stake-confirmation")["stake"] == str(STAKE)
        f.post(f"/manufacturer-applications/{case}/auditor", json={"auditor": self.hw_auditor.address})
        report = self.hw_auditor.upload(
            "audit_report", "factory-audit.pdf", sample_pdf("factory audit: pass")
        )
        self.hw_auditor.post(f"/manufacturer-applications/{case}/approval", json={"report_sha256": report})
        # No CSR: the server makes the manufacturer's root key in its encrypted keystore.
        granted = f.post(f"/manufacturer-applications/{case}/grant", json={})
        self.manufacturer_case = case
        return int(granted["licence_id"])

    def dossier(self, revision: str, firmware_version: str = "1.0.0") -> list[dict[str, str]]:
        m = self.manufacturer
        return [
            {
                "name": "schematics.pdf",
                "role": "schematic",
                "sha256": m.upload("schematic", "schematics.pdf", sample_pdf(f"NL-1 {revision} schematics")),
            },
            {
                "name": "bom.csv",
                "role": "bom",
                "sha256": m.upload("bom", "bom.csv", sample_bom(f"NL-1 {revision}")),
            },
            {
                "name": "firmware.bin",
                "role": "firmware",
                "sha256": m.upload("firmware", "firmware.bin", sample_firmware("NL-1", firmware_version)),
            },
        ]

    def submit_design(self, revision: str = "rev-A", **extra: Any) -> dict[str, Any]:
        files = extra.pop("files", None) or self.dossier(revision)
        return self.manufacturer.post(
            "/device-applications", 201, json={"model": "NL-1", "revision": revision, "files": files, **extra}
        )

    def certify_and_submit(self, case: int) -> None:
        m = self.manufacturer
        fcc = m.upload("certification", "fcc-grant.pdf", sample_pdf(f"FCC grant for application {case}"))
        m.post(
            f"/device-applications/{case}/certifications",
            json={
                "scheme": "FCC",
                "identifier": "2AB3C-NL1",
                "issued_on": "2026-09-01",
                "expires_on": "2031-09-01",
                "document_sha256": fcc,
            },
        )
        m.post(f"/device-applications/{case}/submission")

    def assign(self, case: int) -> None:
        for scope, auditor in (("hardware_security", self.hw_auditor), ("cx", self.cx_auditor)):
            self.foundation.post(
                f"/device-applications/{case}/auditors", json={"scope": scope, "auditor": auditor.address}
            )

    def hardware_audit(self, case: int, *, failing: tuple[str, ...] = (), expect: int = 200) -> Any:
        auditor = self.hw_auditor
        photo = auditor.upload(
            "document", "teardown.pdf", sample_pdf(f"teardown of application {case} {failing}")
        )
        report = auditor.upload(
            "audit_report", "hw-report.pdf", sample_pdf(f"hardware audit {case} {failing}")
        )
        items = [
            {"item_id": item.id, "mark": "fail" if item.id in failing else "pass", "evidence": [photo]}
            for item in load_checklist().items
        ]
        return auditor.post(
            f"/device-applications/{case}/hardware-audits",
            expect,
            json={"items": items, "report_sha256": report},
        )

    def cx_assessment(self, case: int, *, score: int = 4) -> Any:
        auditor = self.cx_auditor
        rubric = load_cx_rubric()
        videos = [
            {
                "step": step,
                "sha256": auditor.upload("cx_video", f"{step}.mp4", sample_mp4(f"{case} {step} {score}")),
            }
            for step in rubric.steps
        ]
        report = auditor.upload("audit_report", "cx-report.pdf", sample_pdf(f"CX assessment {case} {score}"))
        return auditor.post(
            f"/device-applications/{case}/cx-assessments",
            json={
                "videos": videos,
                "scores": {c.id: score for c in rubric.criteria},
                "report_sha256": report,
            },
        )

    def vote(self, member: Party, case: int, support: bool, *, expect: int = 200, reason: str = "") -> Any:
        call = member.get(f"/device-applications/{case}/vote-transaction", params={"support": support})
        sender = member.sender(self.runtime)
        signed_tx = sender.sign_data(
            to=call["to"],
            data=bytes.fromhex(call["data"][2:]),
            nonce=sender.next_nonce(),
            gas=call["gas"] or 300_000,
        )
        return member.post(
            f"/device-applications/{case}/votes",
            expect,
            json={"signed_transaction": "0x" + signed_tx.raw.hex(), "reason": reason},
        )

    def to_vote(self, revision: str = "rev-A", **extra: Any) -> int:
        """A design taken from submission to the committee's vote; returns the case."""
        case = int(self.submit_design(revision, **extra)["application"])
        self.certify_and_submit(case)
        self.assign(case)
        self.hardware_audit(case)
        self.cx_assessment(case)
        self.foundation.post(f"/device-applications/{case}/proposal")
        return case

    def licensed(self, case: int) -> int:
        self.vote(self.member1, case, True)
        done = self.vote(self.member2, case, True)
        assert done["stage"] == "licensed", done
        return int(done["licence_id"])

    def publish(self, licence_id: int, dossier: list[dict[str, str]]) -> None:
        """The holder publishes the dossier's firmware as release 1.0.0 (with its own wallet)."""
        image = next(f["sha256"] for f in dossier if f["role"] == "firmware")
        actions.publish_firmware(
            self.runtime.contracts,
            self.manufacturer.sender(self.runtime),
            licence_id=licence_id,
            version="1.0.0",
            image_sha256=bytes.fromhex(image),
        )

    def batch_file(self, tmp: Path, licence_id: int, count: int = 3) -> Path:
        from datetime import date

        from devicemint.devices.simulate import simulate_batch
        from devicemint.licensing.registry import firmware_image

        version = "1.0.0"
        image = firmware_image(self.runtime.contracts, licence_id, version)
        assert image is not None
        out = tmp / f"batch-{licence_id}.csv"
        simulate_batch(
            count=count,
            out=out,
            keystore=tmp / f"batch-{licence_id}.keys.json",
            passphrase="test-only",
            domain=self.runtime.domain,
            device_licence_id=licence_id,
            today=date.today(),
            seed=licence_id,
            model="NL1",
            firmware=(version, image),
        )
        return out
