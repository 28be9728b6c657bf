"""A factory file becomes certificates on a real chain; anyone can verify them."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from sqlalchemy import func, select

from devicemint.chain import keys
from devicemint.chain.deploy import Deployment
from devicemint.chain.tx import TransactionReverted, TxSender
from devicemint.cli.device_commands import mint_file, release
from devicemint.config import Settings
from devicemint.db.models import Batch, Certificate, Document
from devicemint.devices.intake import Intake, IntakeRejected
from devicemint.devices.merkle import leaf_hash, verify_proof
from devicemint.devices.minting import Minter
from devicemint.devices.verify import Standing, Verifier
from devicemint.errors import ConfigError, DevicemintError, NotFound
from devicemint.licensing.registry import read_minting_licence
from devicemint.runtime import bind_database, open_database

from .conftest import Programme, read_rows, write_rows


def _verifier(p: Programme) -> Verifier:
    return Verifier.of(p.runtime)


def _count(p: Programme, model) -> int:  # type: ignore[no-untyped-def]
    with p.runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _sender(p: Programme, role: keys.DevRole) -> TxSender:
    return TxSender(w3=p.runtime.w3, account=keys.dev_account(role), chain_id=p.settings.chain_id)


def test_batch_is_minted_on_chain_and_every_device_verifies(programme: Programme) -> None:
    p = programme
    batch = p.batch(45)
    report = mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    assert report is not None
    assert (report.minted_now, report.transactions) == (45, 3)  # chunks of 20
    certificate = p.runtime.contracts.device_certificate.functions
    rows = read_rows(batch)
    holder = keys.dev_account(keys.DevRole.MANUFACTURER).address
    for row in rows:
        token_id = int(row["device_address"], 16)
        owner, chain_batch, licence_id, root = certificate.certificate(token_id).call()
        assert (owner, chain_batch, licence_id) == (holder, report.chain_batch_id, p.device_licence_id)
    with p.runtime.sessions() as session:
        stored = session.scalar(select(Batch))
        assert stored.status == "minted" and stored.merkle_root == "0x" + bytes(root).hex()
    assert certificate.tokenURI(int(rows[0]["device_address"], 16)).call() == (
        p.runtime.batch_uri + rows[0]["device_address"].lower()
    )

    for query in (
        rows[0]["serial_number"],
        rows[1]["imei"],
        rows[2]["device_address"],
        str(int(rows[3]["device_address"], 16)),
    ):
        result = _verifier(p).verify(query)
        assert result.standing is Standing.GENUINE, result.checks
        assert result.exit_code == 0
        assert all(check.ok for check in result.checks)
    # The proof handed out checks against the on-chain root with no help from us.
    result = _verifier(p).verify(rows[5]["serial_number"])
    with p.runtime.sessions() as session:
        body = session.get(
            Document,
            hashlib.sha256(
                session.scalar(
                    select(Document.body)
                    .join(Certificate, Certificate.document_sha256 == Document.sha256)
                    .where(Certificate.serial_number == rows[5]["serial_number"])
                )
            ).hexdigest(),
        ).body
    leaf = leaf_hash(rows[5]["device_address"], hashlib.sha256(body).digest())
    assert verify_proof(
        bytes.fromhex(result.merkle_root[2:]), leaf, [bytes.fromhex(x[2:]) for x in result.proof]
    )


def test_dry_run_validates_and_stores_nothing(programme: Programme) -> None:
    p = programme
    assert mint_file(p.runtime, p.batch(10), p.device_licence_id, dry_run=True) is None
    assert _count(p, Certificate) == _count(p, Document) == _count(p, Batch) == 0
    assert p.runtime.contracts.device_certificate.functions.batchCount().call() == 0


def test_a_bad_row_rejects_the_whole_file_naming_row_and_field(programme: Programme) -> None:
    p = programme
    rows = read_rows(p.batch(6))
    rows[2]["imei"] = rows[2]["imei"][:-1] + str((int(rows[2]["imei"][-1]) + 1) % 10)
    rows[4]["ict_result"] = "fail"
    bad = write_rows(p.workdir / "bad.csv", rows)
    with pytest.raises(IntakeRejected) as caught:
        mint_file(p.runtime, bad, p.device_licence_id, dry_run=False)
    found = {(e.row, e.field) for e in caught.value.errors}
    assert (4, "imei") in found  # header is row 1, so rows[2] is row 4
    assert (6, "ict_result") in found
    assert "Luhn" in str(caught.value) or "check digit" in str(caught.value)
    assert _count(p, Certificate) == _count(p, Document) == _count(p, Batch) == 0


def test_devices_already_certified_are_refused_across_files(programme: Programme) -> None:
    p = programme
    first = p.batch(5, "first.csv")
    mint_file(p.runtime, first, p.device_licence_id, dry_run=False)
    rows = read_rows(p.batch(3, "second.csv"))
    rows[1] = read_rows(first)[0]  # a device from the first, minted batch
    with pytest.raises(IntakeRejected) as caught:
        mint_file(p.runtime, write_rows(p.workdir / "mixed.csv", rows), p.device_licence_id, dry_run=False)
    fields = {(e.row, e.field) for e in caught.value.errors}
    assert {(3, "serial_number"), (3, "imei"), (3, "device_address")} <= fields
    assert _count(p, Certificate) == 5


def test_minting_the_same_file_again_mints_nothing_twice(programme: Programme) -> None:
    p = programme
    batch = p.batch(8)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    again = mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    assert again is not None and (again.minted_now, again.already_minted) == (0, 8)
    assert (
        p.runtime.contracts.device_certificate.functions.balanceOf(
            keys.dev_account(keys.DevRole.MANUFACTURER).address
        ).call()
        == 8
    )


def test_verify_unknown_device_is_not_found(programme: Programme) -> None:
    with pytest.raises(NotFound):
        _verifier(programme).verify("0x" + "ab" * 20)
    with pytest.raises(NotFound):
        _verifier(programme).verify("NO-SUCH-SERIAL")


def test_revoking_the_manufacturer_licence_reaches_minted_devices(programme: Programme) -> None:
    p = programme
    batch = p.batch(4)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    serial = read_rows(batch)[0]["serial_number"]
    licence = p.runtime.contracts.manufacturer_license.functions
    _sender(p, keys.DevRole.FOUNDATION).transact(
        licence.suspend(p.manufacturer_licence_id, b"\x01" * 32), what="suspend"
    )
    suspended = _verifier(p).verify(serial)
    assert suspended.standing is Standing.NOT_IN_GOOD_STANDING and suspended.exit_code == 3
    with pytest.raises(DevicemintError, match="suspended"):
        mint_file(p.runtime, p.batch(2, "later.csv"), p.device_licence_id, dry_run=False)
    _sender(p, keys.DevRole.FOUNDATION).transact(
        licence.revoke(p.manufacturer_licence_id, b"\x02" * 32), what="revoke"
    )
    revoked = _verifier(p).verify(serial)
    assert revoked.standing is Standing.NOT_GENUINE and revoked.exit_code == 3
    assert any(c.name == "manufacturer_licence" and not c.ok for c in revoked.checks)


def test_a_tampered_document_is_not_genuine(programme: Programme) -> None:
    p = programme
    batch = p.batch(3)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    serial = read_rows(batch)[1]["serial_number"]
    with p.runtime.sessions() as session, session.begin():
        record = session.scalar(select(Certificate).where(Certificate.serial_number == serial))
        document = session.get(Document, record.document_sha256)
        document.body = document.body.replace(b'"passed":true', b'"passed":false')
    result = _verifier(p).verify(serial)
    assert result.standing is Standing.NOT_GENUINE
    failed = {c.name for c in result.checks if not c.ok}
    assert "merkle_proof" in failed and "device_signature" in failed


def test_only_the_licence_holder_may_mint(programme: Programme) -> None:
    p = programme
    batch = p.batch(3)
    outsider = _sender(p, keys.DevRole.OWNER)
    licence = read_minting_licence(p.runtime.contracts, p.device_licence_id)
    ingested = Intake(
        sessions=p.runtime.sessions,
        contracts=p.runtime.contracts,
        licence=licence,
        issuer=p.issuer(),
        domain=p.runtime.domain,
        uri=p.runtime.batch_uri,
        today=date.today(),
    ).run(batch)
    minter = Minter(sessions=p.runtime.sessions, contracts=p.runtime.contracts, sender=outsider)
    with pytest.raises(TransactionReverted, match="NotMinter|Unauthorized|NotLicenceHolder"):
        minter.mint(ingested.batch_id, recipient=outsider.account.address)
    assert p.runtime.contracts.device_certificate.functions.batchCount().call() == 0


def test_a_device_already_on_chain_is_refused_even_by_an_empty_database(
    programme: Programme, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Another database (or a reset one) cannot certify an address the chain already holds."""
    p = programme
    batch = p.batch(5)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    other = open_database(Settings(home=tmp_path / "other"))
    licence = read_minting_licence(p.runtime.contracts, p.device_licence_id)
    intake = Intake(
        sessions=other,
        contracts=p.runtime.contracts,
        licence=licence,
        issuer=p.issuer(),
        domain=p.runtime.domain,
        uri=p.runtime.batch_uri,
        today=date.today(),
    )
    with pytest.raises(IntakeRejected) as caught:
        intake.run(batch)
    assert [(e.row, e.field) for e in caught.value.errors] == [(r, "device_address") for r in range(2, 7)]
    assert "already holds a certificate on chain" in str(caught.value)


def test_renouncing_keeps_devices_genuine_but_stops_minting(programme: Programme) -> None:
    p = programme
    batch = p.batch(3)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    _sender(p, keys.DevRole.MANUFACTURER).transact(
        p.runtime.contracts.manufacturer_license.functions.beginWithdrawal(), what="renounce"
    )
    result = _verifier(p).verify(read_rows(batch)[0]["serial_number"])
    assert result.standing is Standing.GENUINE
    assert "renounced" in next(c.detail for c in result.checks if c.name == "manufacturer_licence")
    with pytest.raises(DevicemintError, match="renounced"):
        mint_file(p.runtime, p.batch(2, "after.csv"), p.device_licence_id, dry_run=False)


def test_revoking_the_device_licence_by_committee_vote_reaches_its_devices(programme: Programme) -> None:
    p = programme
    batch = p.batch(3)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    licence = p.runtime.contracts.device_license.functions
    member1, member2 = _sender(p, keys.DevRole.COMMITTEE_1), _sender(p, keys.DevRole.COMMITTEE_2)
    member1.transact(licence.proposeRevoke(p.device_licence_id, b"\x09" * 32), what="propose revoke")
    proposal = licence.proposalCount().call()
    member1.transact(licence.vote(proposal, True), what="vote")
    member2.transact(licence.vote(proposal, True), what="vote")
    result = _verifier(p).verify(read_rows(batch)[2]["imei"])
    assert result.standing is Standing.NOT_GENUINE and result.exit_code == 3
    assert any(c.name == "device_licence" and not c.ok and "revoked" in c.detail for c in result.checks)
    with pytest.raises(DevicemintError, match="device licence 1 is revoked"):
        mint_file(p.runtime, p.batch(2, "after.csv"), p.device_licence_id, dry_run=False)


def test_a_document_naming_another_model_is_not_genuine(programme: Programme) -> None:
    p = programme
    batch = p.batch(2)
    mint_file(p.runtime, batch, p.device_licence_id, dry_run=False)
    serial = read_rows(batch)[0]["serial_number"]
    with p.runtime.sessions() as session, session.begin():
        record = session.scalar(select(Certificate).where(Certificate.serial_number == serial))
        document = session.get(Document, record.document_sha256)
        document.body = document.body.replace(
            b'"hardware_model":"AT-OBD-4G"', b'"hardware_model":"AT-OBD-5G"'
        )
    result = _verifier(p).verify(serial)
    binding = next(c for c in result.checks if c.name == "device_licence_binding")
    assert not binding.ok and "'AT-OBD-5G'" in binding.detail and "'AT-OBD-4G'" in binding.detail
    assert result.standing is Standing.NOT_GENUINE


def test_a_database_is_bound_to_its_deployment(programme: Programme) -> None:
    p = programme
    deployment = p.runtime.contracts.deployment
    bind_database(p.runtime.sessions, deployment)  # the same deployment again is fine
    other = Deployment(**{**deployment.to_dict(), "device_certificate": "0x" + "99" * 20})
    with pytest.raises(ConfigError, match="this database belongs to the DeviceCertificate at"):
        bind_database(p.runtime.sessions, other)


def test_devices_must_ship_with_firmware_published_for_their_licence(programme: Programme) -> None:
    p = programme
    published = dict([release(p.runtime, p.device_licence_id, None)])
    unpublished = p.batch(2, "unpublished.csv", firmware=("9.9.9", b"\x01" * 32))
    with pytest.raises(IntakeRejected) as caught:
        mint_file(p.runtime, unpublished, p.device_licence_id, dry_run=False)
    assert [(e.row, e.field) for e in caught.value.errors] == [
        (2, "firmware_version"),
        (3, "firmware_version"),
    ]
    assert "'9.9.9' is not published for device licence 1" in caught.value.errors[0].reason

    version = next(iter(published))
    other_image = p.batch(2, "other-image.csv", firmware=(version, b"\x02" * 32))
    with pytest.raises(IntakeRejected) as caught:
        mint_file(p.runtime, other_image, p.device_licence_id, dry_run=False)
    assert {e.field for e in caught.value.errors} == {"firmware_sha256"}
    assert published[version].hex() in caught.value.errors[0].reason
    assert _count(p, Certificate) == 0
