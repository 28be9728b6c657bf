"""Onboarding through the `devicemint` command, party by party (`--as`), on a real chain and both
databases: a manufacturer from intake to licence, a design to its Device License by the
committee's votes, the refusals a person meets, and the API server `devicemint serve` runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from eth_account import Account
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from devicemint.api.server import build_app, server_signer
from devicemint.chain import keys
from devicemint.chain.node import LocalNode, free_port
from devicemint.chain.tx import TxSender
from devicemint.cli.app import app
from devicemint.cli.chain_commands import deploy
from devicemint.config import Settings
from devicemint.errors import DevicemintError
from devicemint.onboarding.checklist import load_checklist
from devicemint.onboarding.design import load_cx_rubric
from devicemint.onboarding.samples import sample_bom, sample_firmware, sample_mp4, sample_pdf
from devicemint.runtime import Runtime
from tests.integration.api.pipeline import ANSWERS, STAKE

pytestmark = pytest.mark.xdist_group("chain")

DEVICEMINT = str(Path(sys.executable).with_name("devicemint"))
FOUNDATION = keys.dev_account(keys.DevRole.FOUNDATION)
MANUFACTURER = keys.dev_account(keys.DevRole.MANUFACTURER)
AUDITOR = keys.dev_account(keys.DevRole.AUDITOR)
COMMITTEE = [keys.dev_account(r) for r in (keys.DevRole.COMMITTEE_1, keys.DevRole.COMMITTEE_2)]


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """`devicemint` against one data directory: in-process (fast) or as a real process."""

    def __init__(self, settings: Settings, env: dict[str, str], files: Path) -> None:
        self.settings = settings
        self.env = env
        self.files = files
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int = 0) -> Outcome:
        """In-process; a devicemint error gets its exit code and message as `main()` gives them."""
        result = self.runner.invoke(app, list(args), env=self.env)
        error = result.exception
        if isinstance(error, DevicemintError):
            outcome = Outcome(error.exit_code, result.stdout, str(error))
        elif error is not None and not isinstance(error, SystemExit):
            raise error
        else:
            outcome = Outcome(result.exit_code, result.stdout, result.stderr)
        assert outcome.exit_code == expect, f"devicemint {' '.join(args)}: {outcome}"
        return outcome

    def process(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real command, so exit codes and messages are exactly what a person sees."""
        env = {**os.environ, **self.env}
        return subprocess.run([DEVICEMINT, *args], env=env, capture_output=True, text=True, timeout=300)

    def file(self, name: str, content: bytes | str | object) -> str:
        path = self.files / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
        return str(path)

    def upload(self, kind: str, name: str, content: bytes) -> str:
        return str(self("evidence", "upload", kind, self.file(name, content), "--json").json["sha256"])


@pytest.fixture
def cli(anvil_node: LocalNode, database_url: str, tmp_path: Path, chain_snapshot: None) -> Cli:
    settings = Settings(
        home=tmp_path / "home", node_port=anvil_node.port, database_url=database_url, intake_workers=0
    )
    deploy(settings)
    files = tmp_path / "files"
    files.mkdir()
    env = {
        "DEVICEMINT_HOME": str(settings.home),
        "DEVICEMINT_NODE_PORT": str(anvil_node.port),
        "DEVICEMINT_DATABASE_URL": database_url,
        "DEVICEMINT_CONFIG": str(tmp_path / "no-devicemint.toml"),
    }
    return Cli(settings, env, files)


def fund(settings: Settings) -> None:
    """The stand-in staking token gives the manufacturer tokens (on 31337 only)."""
    runtime = Runtime.open(settings)
    foundation = TxSender(w3=runtime.w3, account=FOUNDATION, chain_id=settings.chain_id)
    contracts = runtime.contracts
    foundation.transact(contracts.staking_token.functions.mint(MANUFACTURER.address, STAKE), what="fund")
    runtime.sessions.kw["bind"].dispose()


def approve_auditor(cli: Cli) -> None:
    approved = cli(
        "auditor", "approve", AUDITOR.address, "--name", "Prüfwerk AG",
        "--scope", "hardware_security", "--scope", "cx", "--as", "foundation", "--json",
    ).json  # fmt: skip
    assert approved["scopes"] == ["cx", "hardware_security"]


def license_manufacturer(cli: Cli) -> int:
    """Intake to manufacturer licence, each step by its party; returns the licence id."""
    m = ("application", "manufacturer")
    case = cli(*m, "submit", cli.file("answers.json", ANSWERS), "--as", "manufacturer", "--json").json
    number = str(case["application"])
    assert case["stage"] == "intake_submitted" and case["applicant"] == MANUFACTURER.address
    assert cli(*m, "checklist", number, "--as", "foundation", "--json").json["stage"] == "checklist_issued"
    mou = cli.upload("mou", "mou.pdf", sample_pdf("MOU between the foundation and Nordlicht"))
    signed = cli(*m, "sign-mou", number, "--mou", mou, "--as", "manufacturer", "--json").json
    assert signed["stage"] == "mou_signed" and signed["mou_sha256"] == mou
    countersigned = cli(*m, "countersign-mou", number, "--mou", mou, "--as", "foundation", "--json").json
    assert countersigned["stage"] == "mou_countersigned" and countersigned["mou_countersignature"]
    fund(cli.settings)
    cli(*m, "stake", "100000", "--as", "manufacturer")
    staked = cli(*m, "confirm-stake", number, "--as", "manufacturer", "--json").json
    assert staked["stage"] == "staked" and staked["stake"] == str(STAKE)
    cli(*m, "assign-auditor", number, AUDITOR.address, "--as", "foundation")
    report = cli.upload("audit_report", "factory-audit.pdf", sample_pdf("factory audit: pass"))
    approved = cli(*m, "approve", number, "--report", report, "--as", "auditor", "--json").json
    assert approved["stage"] == "auditor_approved"
    # Bring your own key: the manufacturer makes its root key (encrypted) and a CSR for it.
    csr = cli("pki", "request", "--organisation", ANSWERS["company_name"], "--as", "manufacturer").stdout
    cli("pki", "init-root", "--organisation", "Test Network Foundation")
    granted = cli(*m, "grant", number, "--csr", cli.file("root.csr", csr), "--as", "foundation", "--json")
    assert granted.json["stage"] == "licensed"
    root = x509.load_pem_x509_certificate(cli("pki", "root", "--manufacturer", "1").stdout.encode())
    assert root.public_key() == x509.load_pem_x509_csr(csr.encode()).public_key()
    assert granted.json["root_cert_fingerprint"] == root.fingerprint(hashes.SHA256()).hex()
    return int(granted.json["licence_id"])


def dossier(cli: Cli, revision: str) -> dict[str, Any]:
    files = [
        ("schematics.pdf", "schematic", sample_pdf(f"NL-1 {revision} schematics")),
        ("bom.csv", "bom", sample_bom(f"NL-1 {revision}")),
        ("firmware.bin", "firmware", sample_firmware("NL-1", "1.0.0")),
    ]
    return {
        "model": "NL-1",
        "revision": revision,
        "files": [{"name": n, "role": r, "sha256": cli.upload(r, n, c)} for n, r, c in files],
    }


def hardware_audit(cli: Cli, number: str, failing: tuple[str, ...] = ()) -> dict[str, Any]:
    photo = cli.upload("document", "teardown.pdf", sample_pdf(f"teardown {number} {failing}"))
    items = [
        {"item_id": item.id, "mark": "fail" if item.id in failing else "pass", "evidence": [photo]}
        for item in load_checklist().items
    ]
    report = cli.upload("audit_report", "hw-report.pdf", sample_pdf(f"hardware audit {number} {failing}"))
    audit = cli.file(f"audit-{len(failing)}.json", {"items": items, "report_sha256": report})
    return dict(
        cli("application", "device", "hardware-audit", number, audit, "--as", "auditor", "--json").json
    )


def cx_assessment(cli: Cli, number: str) -> dict[str, Any]:
    rubric = load_cx_rubric()
    videos = [
        {"step": s, "sha256": cli.upload("cx_video", f"{s}.mp4", sample_mp4(f"{number} {s}"))}
        for s in rubric.steps
    ]
    report = cli.upload("audit_report", "cx-report.pdf", sample_pdf(f"CX assessment {number}"))
    cx = {"videos": videos, "scores": {c.id: 4 for c in rubric.criteria}, "report_sha256": report}
    return dict(
        cli(
            "application",
            "device",
            "cx-assessment",
            number,
            cli.file("cx.json", cx),
            "--as",
            "auditor",
            "--json",
        ).json
    )


def test_a_manufacturer_from_intake_to_its_licence(cli: Cli) -> None:
    approve_auditor(cli)
    licence_id = license_manufacturer(cli)
    assert licence_id == 1

    licence = cli("licence", "manufacturer", "1", "--json").json
    assert licence["holder"] == MANUFACTURER.address and licence["status"] == "active"
    case = cli("application", "manufacturer", "show", "1", "--as", "manufacturer", "--json").json
    assert [e["action"] for e in case["timeline"]] == [
        "submit_intake", "issue_checklist", "sign_mou", "countersign_mou",
        "confirm_stake", "assign_auditor", "approve", "grant",
    ]  # fmt: skip
    assert {e["actor"] for e in case["timeline"]} == {
        FOUNDATION.address,
        MANUFACTURER.address,
        AUDITOR.address,
    }
    anchored = cli("application", "manufacturer", "anchored-case-file", "1").stdout
    assert json.loads(anchored)["application"] == 1
    listed = cli("application", "manufacturer", "list", "--json").json
    assert listed == [
        {"application": 1, "applicant": MANUFACTURER.address, "stage": "licensed", "licence_id": 1}
    ]
    assert "licensed" in cli("application", "manufacturer", "list").stdout


def test_a_design_to_its_device_licence_by_the_committees_votes(cli: Cli) -> None:
    approve_auditor(cli)
    license_manufacturer(cli)
    d = ("application", "device")
    case = cli(*d, "submit", cli.file("dossier.json", dossier(cli, "rev-A")), "--json").json
    number = str(case["application"])
    assert case["stage"] == "dossier_submitted" and len(case["design_hash"]) == 64

    fcc = cli.upload("certification", "fcc.pdf", sample_pdf("FCC grant"))
    certification = {
        "scheme": "FCC",
        "identifier": "2AB3C-NL1",
        "issued_on": "2026-01-01",
        "document_sha256": fcc,
    }
    cli(*d, "certify", number, cli.file("fcc.json", certification))
    assert cli(*d, "submit-for-audit", number, "--json").json["stage"] == "hardware_audit"
    for scope in ("hardware_security", "cx"):
        cli(*d, "assign-auditor", number, AUDITOR.address, "--scope", scope, "--as", "foundation")

    # A failed round, the manufacturer's remediation, and a passing round.
    failed = hardware_audit(cli, number, failing=("boot.secure-boot",))
    assert failed["passed"] is False and failed["stage"] == "hardware_remediation"
    fix = cli.upload("document", "secure-boot-fix.pdf", sample_pdf("secure boot fused on"))
    remediation = cli.file("remediation.json", {"note": "secure boot fused on", "evidence": [fix]})
    assert cli(*d, "remediate", number, remediation, "--json").json["stage"] == "hardware_audit"
    assert hardware_audit(cli, number)["stage"] == "cx_assessment"
    assert cx_assessment(cli, number)["stage"] == "integration_review"

    tabled = cli(*d, "propose", number, "--as", "foundation", "--json").json
    assert tabled["stage"] == "committee_vote" and tabled["proposal_id"]
    first = cli(*d, "vote", number, "--yes", "--as", "committee-1", "--json").json
    assert first["stage"] == "committee_vote" and first["tx_hash"].startswith("0x")
    second = cli(
        *d, "vote", number, "--yes", "--reason", "meets the bar", "--as", "committee-2", "--json"
    ).json
    assert second["stage"] == "licensed" and second["licence_id"] == 1

    licence = cli("licence", "device", "1", "--json").json
    assert licence["design_hash"] == "0x" + case["design_hash"] and licence["holder"] == MANUFACTURER.address
    assert cli(*d, "sync", number, "--json").json["stage"] == "licensed"
    shown = cli(*d, "show", number, "--as", "committee-3", "--json").json
    votes = [e for e in shown["timeline"] if e["action"] == "vote"]
    assert {v["actor"] for v in votes} == {a.address for a in COMMITTEE}
    assert votes[1]["note"] == "yes: meets the bar"
    assert [(a["scope"], a["round"], a["passed"]) for a in shown["audits"]] == [
        ("hardware_security", 1, False),
        ("hardware_security", 2, True),
        ("cx", 1, True),
    ]
    human = cli(*d, "show", number).stdout
    assert "stage licensed" in human
    assert f"vote [committee_vote] by {COMMITTEE[1].address}: yes: meets the bar" in human


def test_refusals_name_the_party_and_exit_2_and_unknown_cases_exit_4(cli: Cli) -> None:
    cli("application", "manufacturer", "submit", cli.file("answers.json", ANSWERS), "--as", "manufacturer")

    refused = cli.process("application", "manufacturer", "checklist", "1", "--as", "manufacturer")
    assert refused.returncode == 2
    assert f"{MANUFACTURER.address} may not issue the audit checklist" in refused.stderr
    assert "foundation role" in refused.stderr

    stranger = cli.process("application", "manufacturer", "show", "1", "--as", "owner")
    owner = keys.dev_account(keys.DevRole.OWNER).address
    assert (
        stranger.returncode == 2
        and f"{owner} is not a party to manufacturer application 1" in stranger.stderr
    )

    missing = cli.process("application", "device", "show", "7")
    assert missing.returncode == 4 and "no device application 7" in missing.stderr

    no_case = cli("application", "device", "vote", "1", "--no", "--as", "committee-1", expect=4)
    assert "no device application 1" in no_case.stderr


def test_evidence_auditors_and_a_rejection(cli: Cli, tmp_path: Path) -> None:
    content = sample_pdf("audit report")
    sha = cli.upload("audit_report", "report.pdf", content)
    shown = cli("evidence", "show", sha, "--json").json
    assert shown == {
        "sha256": sha,
        "size": len(content),
        "media_type": "application/pdf",
        "kind": "audit_report",
        "filename": "report.pdf",
    }
    cli("evidence", "download", sha, "--out", str(tmp_path / "copy.pdf"))
    assert (tmp_path / "copy.pdf").read_bytes() == content
    refused = cli("evidence", "upload", "cx_video", cli.file("not-a-video.pdf", content), expect=1)
    assert "not accepted as a CX assessment video" in refused.stderr

    approve_auditor(cli)
    assert [a["address"] for a in cli("auditor", "list", "--json").json] == [AUDITOR.address]
    cli("auditor", "remove", AUDITOR.address)
    assert cli("auditor", "list", "--json").json == []

    cli("application", "manufacturer", "submit", cli.file("answers.json", ANSWERS))
    rejected = cli(
        "application", "manufacturer", "reject", "1", "--reason", "no secure element", "--json"
    ).json
    assert rejected["stage"] == "rejected" and rejected["timeline"][-1]["note"] == "no secure element"


def test_a_bad_input_file_names_the_file_and_the_field(cli: Cli) -> None:
    bad = dossier(cli, "rev-A")
    bad["files"][1]["sha256"] = "not-a-hash"
    path = cli.file("dossier.json", bad)
    result = cli.process("application", "device", "submit", path)
    assert result.returncode == 2
    assert path in result.stderr and "files.1.sha256" in result.stderr

    broken = cli.file("broken.json", '{"model": "NL-1",')
    result = cli.process("application", "device", "submit", broken)
    assert result.returncode == 2 and broken in result.stderr and "not valid JSON" in result.stderr

    answers = cli.file("answers.json", {**ANSWERS, "jurisdiction": "Germany"})
    refused = cli("application", "manufacturer", "submit", answers, expect=2)
    assert answers in refused.stderr and "jurisdiction" in refused.stderr

    bad_mou = cli("application", "manufacturer", "sign-mou", "1", "--mou", "abc", expect=2)
    assert "--mou" in bad_mou.stderr and "not a SHA-256" in bad_mou.stderr


def test_committee_commands_read_and_change_the_chain(cli: Cli) -> None:
    shown = cli("committee", "show", "--json").json
    assert shown["quorum"] == 2 and len(shown["members"]) == 3
    owner = keys.dev_account(keys.DevRole.OWNER).address
    seated = cli("committee", "seat", owner, "--as", "foundation", "--json").json
    assert owner in seated["members"]
    assert cli("committee", "quorum", "3", "--json").json["quorum"] == 3
    assert owner not in cli("committee", "unseat", owner, "--json").json["members"]
    refused = cli("committee", "quorum", "1", "--as", "committee-1", expect=2)
    assert "needs the foundation role" in refused.stderr


def test_build_app_serves_the_api_with_the_foundation_key(cli: Cli) -> None:
    api = build_app(cli.settings)
    client = TestClient(api)
    schema = client.get("/openapi.json")
    assert (
        schema.status_code == 200 and "/device-applications/{application_id}/votes" in schema.json()["paths"]
    )
    committee = client.get("/committee").json()
    assert committee["quorum"] == 2 and set(a.address for a in COMMITTEE) <= set(committee["members"])
    context = api.state.devicemint
    assert context.foundation_signer.account.address == FOUNDATION.address
    assert context.minter_signer.account.address == MANUFACTURER.address


def test_off_the_dev_chain_the_server_signs_with_the_one_configured_key_or_none(
    cli: Cli, tmp_path: Path
) -> None:
    runtime = Runtime.open(cli.settings)
    public = replace(runtime, settings=replace(cli.settings, chain_id=137))
    assert server_signer(public, keys.DevRole.FOUNDATION) is None  # read-only, not refused

    key = Account.create()
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key.encrypt("test-only")))
    configured = replace(
        public, settings=replace(public.settings, key_file=key_file, key_passphrase="test-only")
    )
    for role in (keys.DevRole.FOUNDATION, keys.DevRole.MANUFACTURER):
        signer = server_signer(configured, role)
        assert signer is not None and signer.account.address == key.address
    runtime.sessions.kw["bind"].dispose()


def test_serve_answers_over_http_until_stopped(cli: Cli) -> None:
    port = free_port()
    env = {**os.environ, **cli.env}
    server = subprocess.Popen(
        [DEVICEMINT, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/committee", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "devicemint serve did not answer within 60s"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["quorum"] == 2
    finally:
        server.terminate()
        server.wait(timeout=30)
