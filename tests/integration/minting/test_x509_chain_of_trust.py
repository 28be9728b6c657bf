"""The chain of trust checked with tools nobody here wrote: `openssl verify` on exported bundles,
before and after revocations, and OpenZeppelin's JavaScript library on the exported proof."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select
from typer.testing import CliRunner

from devicemint.chain import keys
from devicemint.chain.deployments import Contracts
from devicemint.chain.tx import TransactionReverted, TxSender
from devicemint.cli.app import app
from devicemint.cli.device_commands import mint_file
from devicemint.db.models import Batch
from devicemint.devices import bundle as bundles
from devicemint.devices.minting import mint_batch_file
from devicemint.devices.verify import Standing, Verifier
from devicemint.errors import UsageError
from devicemint.licensing.registry import ManufacturerLicence, read_manufacturer_licence
from devicemint.licensing.revocation import revoke_manufacturer
from devicemint.pki.authority import Authority
from devicemint.pki.errors import PkiError
from devicemint.pki.profiles import RevocationReason, foundation_root
from devicemint.pki.signing import DEV_PKI_PASSPHRASE, KeyFileSigner
from devicemint.runtime import Runtime

from .conftest import Programme, read_rows

REPO = Path(__file__).resolve().parents[3]
PROOF_SCRIPT = REPO / "tests" / "integration" / "js" / "verify_bundle_proof.js"


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.fail("openssl is not on PATH; these tests check our certificates with it")
    return found


def openssl_verify(directory: Path) -> subprocess.CompletedProcess[str]:
    """The command VERIFY.txt gives a person, run as written."""
    return subprocess.run(
        [
            _openssl(),
            "verify",
            "-CAfile",
            "foundation-root.pem",
            "-untrusted",
            "manufacturer-root.pem",
            "-crl_check_all",
            "-CRLfile",
            "crls.pem",
            "device.pem",
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )


def _minted(p: Programme, count: int = 3) -> list[dict[str, str]]:
    batch = p.batch(count)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    return read_rows(batch)


def _export(p: Programme, query: str, directory: Path) -> Standing:
    return bundles.export(Verifier.of(p.runtime), query, directory).standing


def _foundation(p: Programme) -> TxSender:
    return TxSender(
        w3=p.runtime.w3, account=keys.dev_account(keys.DevRole.FOUNDATION), chain_id=p.settings.chain_id
    )


def _revoke(p: Programme) -> ManufacturerLicence:
    return revoke_manufacturer(
        p.runtime.contracts,
        _authority(p),
        _foundation(p),
        p.manufacturer_licence_id,
        reason="counterfeits found",
    )


def _authority(p: Programme) -> Authority:
    return Authority.of(p.settings, p.runtime.sessions)


def test_openssl_accepts_the_issued_chain_and_the_root_is_the_one_on_chain(
    programme: Programme, tmp_path: Path
) -> None:
    p = programme
    row = _minted(p)[0]
    out = tmp_path / "bundle"
    assert _export(p, row["serial_number"], out) is Standing.GENUINE

    verified = openssl_verify(out)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip() == "device.pem: OK"

    # The manufacturer root's SHA-256, as openssl prints it, is what the licence records on chain.
    printed = subprocess.run(
        [_openssl(), "x509", "-in", "manufacturer-root.pem", "-noout", "-fingerprint", "-sha256"],
        cwd=out,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    on_chain = read_manufacturer_licence(p.runtime.contracts, p.manufacturer_licence_id).root_cert_fingerprint
    assert printed.strip().split("=", 1)[1].replace(":", "").lower() == on_chain.hex()

    # The device certificate names the device as the seed and RFC 7254 / CAIP-10 say.
    text = subprocess.run(
        [_openssl(), "x509", "-in", "device.pem", "-noout", "-subject", "-ext", "subjectAltName"],
        cwd=out,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    imei = row["imei"]
    assert f"serialNumber = {row['serial_number']}" in text
    assert f"URI:urn:imei:{imei[:8]}-{imei[8:14]}-{imei[14]}" in text
    assert f"URI:eip155:31337:{row['device_address']}" in text


def test_a_revoked_device_is_rejected_by_openssl_and_by_verify(programme: Programme, tmp_path: Path) -> None:
    p = programme
    stolen, other = _minted(p)[:2]
    assert _authority(p).revoke_device(stolen["device_address"], RevocationReason.KEY_COMPROMISE)
    assert not _authority(p).revoke_device(stolen["device_address"], RevocationReason.KEY_COMPROMISE)

    out = tmp_path / "stolen"
    assert _export(p, stolen["imei"], out) is Standing.NOT_GENUINE
    verified = openssl_verify(out)
    assert verified.returncode != 0
    assert "error 23 at 0 depth lookup: certificate revoked" in verified.stdout + verified.stderr
    result = Verifier.of(p.runtime).verify(stolen["serial_number"])
    (x509_check,) = [c for c in result.checks if c.name == "x509_chain"]
    assert not x509_check.ok and "key_compromise" in x509_check.detail

    # Its batch-mates stay genuine, in openssl's eyes too.
    fine = tmp_path / "other"
    assert _export(p, other["serial_number"], fine) is Standing.GENUINE
    assert openssl_verify(fine).returncode == 0


def test_revoking_the_manufacturer_licence_revokes_its_root_and_every_device(
    programme: Programme, tmp_path: Path
) -> None:
    p = programme
    rows = _minted(p)
    before = tmp_path / "before"
    assert _export(p, rows[0]["serial_number"], before) is Standing.GENUINE

    # Only the foundation may revoke: anyone else is refused by the contract, and nothing changes.
    outsider = TxSender(
        w3=p.runtime.w3, account=keys.dev_account(keys.DevRole.OWNER), chain_id=p.settings.chain_id
    )
    with pytest.raises(TransactionReverted, match="OwnableUnauthorizedAccount"):
        revoke_manufacturer(
            p.runtime.contracts, _authority(p), outsider, p.manufacturer_licence_id, reason="no"
        )
    assert Verifier.of(p.runtime).verify(rows[0]["serial_number"]).standing is Standing.GENUINE

    assert _revoke(p).status.name == "REVOKED"
    for row in rows:
        result = Verifier.of(p.runtime).verify(row["device_address"])
        assert result.standing is Standing.NOT_GENUINE
        failed = {c.name for c in result.checks if not c.ok}
        assert failed == {"manufacturer_licence", "x509_chain"}

    after = tmp_path / "after"
    _export(p, rows[1]["serial_number"], after)
    verified = openssl_verify(after)
    assert "error 23 at 1 depth lookup: certificate revoked" in verified.stdout + verified.stderr
    # The bundle exported before the revocation still carries the old CRL: it verifies offline,
    # which is why `verify --bundle --rpc-url` asks the chain too.
    assert openssl_verify(before).returncode == 0
    w3 = p.runtime.w3
    online = bundles.BundleVerifier(
        bundle=bundles.Bundle.read(before), contracts=Contracts.bind(w3, p.runtime.contracts.deployment)
    ).verify()
    assert online.standing is Standing.NOT_GENUINE
    # A re-run (after a crash, say) finishes the revocation without a second transaction.
    foundation = _foundation(p).account.address
    sent = p.runtime.w3.eth.get_transaction_count(foundation)
    assert _revoke(p).status.name == "REVOKED"
    assert p.runtime.w3.eth.get_transaction_count(foundation) == sent


def test_the_exported_proof_verifies_with_openzeppelin_merkle_tree(
    programme: Programme, tmp_path: Path
) -> None:
    p = programme
    row = _minted(p, 5)[3]
    out = tmp_path / "bundle"
    _export(p, row["device_address"], out)
    proof = json.loads((out / "proof.json").read_text())
    assert proof["leaf_encoding"] == ["address", "bytes32"]

    def js_verify(path: Path) -> bool:
        node = shutil.which("node")
        assert node is not None, "node is part of the toolchain"
        done = subprocess.run(
            [node, str(PROOF_SCRIPT), str(path)],
            capture_output=True,
            text=True,
            env={"DEVICEMINT_NODE_MODULES": str(REPO / "node_modules"), "PATH": "/usr/bin:/bin"},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["verified"]

    assert js_verify(out / "proof.json") is True
    # The proof's value is the SHA-256 of the exported document, byte for byte.
    assert proof["value"][1] == "0x" + hashlib.sha256((out / "certificate.json").read_bytes()).hexdigest()
    tampered = dict(proof, value=[proof["value"][0], "0x" + "00" * 32])
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    assert js_verify(tmp_path / "tampered.json") is False


def test_verify_bundle_offline_and_against_the_chain(programme: Programme, tmp_path: Path) -> None:
    p = programme
    row = _minted(p)[0]
    runner = CliRunner()
    env = p.env()
    out = tmp_path / "bundle"
    exported = runner.invoke(app, ["verify", row["serial_number"], "--export", str(out), "--json"], env=env)
    assert exported.exit_code == 0, exported.output
    for name in (
        "certificate.json",
        "proof.json",
        "device.pem",
        "manufacturer-root.pem",
        "foundation-root.pem",
        "crls.pem",
        "VERIFY.txt",
    ):
        assert (out / name).is_file(), name

    offline = runner.invoke(app, ["verify", "--bundle", str(out), "--json"], env=env)
    assert offline.exit_code == 0, offline.output
    checks = {c["name"]: c["ok"] for c in json.loads(offline.stdout)["checks"]}
    assert checks == {
        "bundle": True,
        "document": True,
        "merkle_proof": True,
        "device_signature": True,
        "x509_chain": True,
    }

    rpc = f"http://127.0.0.1:{p.settings.node_port}"
    online = runner.invoke(app, ["verify", "--bundle", str(out), "--rpc-url", rpc, "--json"], env=env)
    assert online.exit_code == 0, online.output
    names = {c["name"] for c in json.loads(online.stdout)["checks"]}
    assert {"on_chain", "manufacturer_root", "manufacturer_licence", "device_licence"} <= names

    # A trust anchor that is not the bundle's root: the chain does not verify.
    impostor = KeyFileSigner(ec.generate_private_key(ec.SECP256R1()), path=tmp_path / "unused")
    fake_root = foundation_root(impostor, organisation="Impostor", now=datetime.now(UTC))
    pinned = tmp_path / "pinned.pem"
    pinned.write_bytes(fake_root.public_bytes(Encoding.PEM))
    refused = runner.invoke(
        app, ["verify", "--bundle", str(out), "--trust-root", str(pinned), "--json"], env=env
    )
    assert refused.exit_code == 3
    (x509_check,) = [c for c in json.loads(refused.stdout)["checks"] if c["name"] == "x509_chain"]
    assert not x509_check["ok"]

    # A changed document no longer matches its proof.
    document = out / "certificate.json"
    document.write_bytes(
        document.read_bytes().replace(b'"qa":{"inspection_date"', b'"qa":{"inspection_date" ')
    )
    changed = runner.invoke(app, ["verify", "--bundle", str(out), "--json"], env=env)
    assert changed.exit_code == 3

    # A missing part is a usage error naming the file.
    (out / "crls.pem").unlink()
    with pytest.raises(UsageError, match="crls.pem: missing from the bundle"):
        bundles.Bundle.read(out)


def test_device_certificates_need_the_manufacturer_root_key(programme: Programme, tmp_path: Path) -> None:
    """Minting signs device certificates with the manufacturer root key: a wrong passphrase or a
    key that is not the root's stops the batch before anything is stored."""
    p = programme
    batch = p.batch(2)
    wrong = replace(p.settings, pki_passphrase="not the passphrase")
    sender = TxSender(w3=p.runtime.w3, account=keys.dev_account(keys.DevRole.MANUFACTURER), chain_id=31337)
    runtime = Runtime(
        settings=wrong, w3=p.runtime.w3, contracts=p.runtime.contracts, sessions=p.runtime.sessions
    )
    with pytest.raises(PkiError, match="cannot decrypt the key") as caught:
        mint_batch_file(runtime, batch, p.device_licence_id, sender=sender, dry_run=False)
    assert "not the passphrase" not in str(caught.value) and DEV_PKI_PASSPHRASE not in str(caught.value)

    other_key = tmp_path / "other.key.pem"
    KeyFileSigner.generate(other_key, DEV_PKI_PASSPHRASE)
    misconfigured = replace(p.settings, manufacturer_ca_key=other_key)
    runtime = Runtime(
        settings=misconfigured, w3=p.runtime.w3, contracts=p.runtime.contracts, sessions=p.runtime.sessions
    )
    with pytest.raises(PkiError, match="is not the key that certificate certifies"):
        mint_batch_file(runtime, batch, p.device_licence_id, sender=sender, dry_run=False)
    assert p.runtime.contracts.device_certificate.functions.batchCount().call() == 0
    with p.runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 0
