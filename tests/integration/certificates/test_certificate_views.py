"""GET /certificates/{query}: one certificate (document, chain state, timeline, grants, standing,
proof) served from the indexer's database, whichever way the device is named."""

from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy import select

from devicemint.chain import keys
from devicemint.db.models import Certificate
from devicemint.devices.lifecycle import Lifecycle, Permission, attest, token_id
from devicemint.devices.merkle import leaf_hash, verify_proof
from devicemint.licensing.registry import read_device_licence, read_manufacturer_licence

from .conftest import Served, canonical, refused, sender


def test_address_token_id_serial_and_imei_give_the_same_view(served: Served) -> None:
    s = served
    device = s.devices[1]
    row = s.rows[device]
    queries = [device, device.lower(), str(token_id(device)), row["serial_number"], row["imei"]]
    views = [s.view(query) for query in queries]
    assert views[0]["address"] == device and views[0]["token_id"] == str(int(device, 16))
    assert all(canonical(v) == canonical(views[0]) for v in views[1:])
    # ... and it is this device's, not a neighbour's.
    assert views[0]["document"]["device"]["serial_number"] == row["serial_number"]
    assert s.view(s.devices[2])["address"] == s.devices[2]


def test_the_view_holds_every_seed_field_the_chain_state_and_the_mint(served: Served) -> None:
    s = served
    device = s.devices[0]
    row = s.rows[device]
    contracts = s.runtime.contracts
    design = read_device_licence(contracts, s.p.device_licence_id)
    maker = read_manufacturer_licence(contracts, s.p.manufacturer_licence_id)
    view = s.view(device)

    expected = {
        "schema": "devicemint/certificate/v1",
        "device": {"serial_number": row["serial_number"], "imei": row["imei"], "address": device},
        "manufacturing": {
            "manufacturer_name": maker.name,
            "manufacturer_licence_id": s.p.manufacturer_licence_id,
            "manufacturing_date": row["manufacturing_date"],
            "device_licence_id": s.p.device_licence_id,
            "hardware_model": design.hardware_model,
            "hardware_revision": design.hardware_revision,
            "design_hash": "0x" + design.design_hash.hex(),
        },
        "tests": {
            "ict": {"result": row["ict_result"], "report_sha256": row["ict_report_sha256"]},
            "mechanical": {
                "result": row["mechanical_result"],
                "report_sha256": row["mechanical_report_sha256"],
            },
            "qa": {
                "passed": row["qa_passed"] == "true",
                "inspection_date": row["qa_inspection_date"],
                "inspector": row["qa_inspector"],
            },
        },
        "firmware": {"initial_version": row["firmware_version"], "image_sha256": row["firmware_sha256"]},
        "provisioning_date": row["provisioning_date"],
        "device_signature": row["device_signature"].lower(),
    }
    assert view["document"] == expected
    assert view["document"] == json.loads(s.document_bytes(device))  # the committed bytes, as served

    assert view["standing"] == "genuine"
    assert {c["name"]: c["ok"] for c in view["checks"]} == {
        "on_chain": True,
        "document": True,
        "merkle_proof": True,
        "device_signature": True,
        "device_licence_binding": True,
        "device_licence": True,
        "manufacturer_licence_binding": True,
        "manufacturer_licence": True,
        "x509_chain": True,
    }

    owner, batch_id, licence_id, _root = contracts.device_certificate.functions.certificate(
        token_id(device)
    ).call()
    on_chain = view["on_chain"]
    assert owner == s.manufacturer.address
    assert {k: on_chain[k] for k in ("owner", "batch_id", "device_licence_id")} == {
        "owner": owner,
        "batch_id": batch_id,
        "device_licence_id": licence_id,
    }
    assert batch_id == s.batch_of[device]
    assert (on_chain["stage"], on_chain["factory_resets"], on_chain["firmware_version"]) == (
        "active",
        0,
        None,
    )
    assert on_chain["transfers"] == 0
    assert view["authorizations"] == []

    with s.runtime.sessions() as session:
        mint_tx = session.scalar(select(Certificate.mint_tx_hash).where(Certificate.address == device))
    (minted,) = view["timeline"]
    assert minted["type"] == "Minted"
    assert minted["tx_hash"] == mint_tx
    assert minted["block_number"] == on_chain["minted_block"]
    assert minted["details"]["to"] == s.manufacturer.address
    assert minted["details"]["batchId"] == batch_id


def test_the_proof_leads_from_the_stored_document_to_the_root_on_chain(served: Served) -> None:
    s = served
    for device in (s.devices[0], s.devices[3]):
        view = s.view(device)
        body = s.document_bytes(device)
        *_, root = s.runtime.contracts.device_certificate.functions.certificate(token_id(device)).call()
        proof = [bytes.fromhex(node[2:]) for node in view["proof"]["proof"]]
        leaf = leaf_hash(device, hashlib.sha256(body).digest())

        assert view["proof"]["merkle_root"] == "0x" + bytes(root).hex()
        assert view["proof"]["batch_id"] == s.batch_of[device]
        assert view["proof"]["leaf_encoding"] == ["address", "bytes32"]
        assert proof and verify_proof(bytes(root), leaf, proof)
        # The proof commits to these exact bytes: one changed byte of the document, no proof.
        forged = body.replace(b'"pass"', b'"PASS"', 1)
        assert forged != body
        assert not verify_proof(bytes(root), leaf_hash(device, hashlib.sha256(forged).digest()), proof)
        # ... nor does it prove the neighbour's document.
        other = s.document_bytes(s.devices[1])
        assert not verify_proof(bytes(root), leaf_hash(device, hashlib.sha256(other).digest()), proof)


def test_the_timeline_names_who_attested_and_only_live_grants_are_listed(served: Served) -> None:
    s = served
    device = s.devices[0]
    maker = Lifecycle(contracts=s.runtime.contracts, sender=sender(s.runtime, keys.DevRole.MANUFACTURER))
    brief = keys.dev_account(int(keys.DevRole.AUDITOR)).address
    lasting = keys.dev_account(int(keys.DevRole.CX_AUDITOR)).address
    chain_now = s.runtime.w3.eth.get_block("latest")["timestamp"]
    short_expiry = max(chain_now, int(time.time())) + 5
    long_expiry = int(time.time()) + 7 * 86400
    maker.authorize(device, brief, Permission.READ_DATA, short_expiry)
    maker.authorize(device, lasting, Permission.READ_DATA | Permission.OTA, long_expiry)
    reset_by_device = attest(
        s.runtime.contracts, s.device_keys[device], "FactoryReset", {"tokenId": token_id(device)}
    )
    maker.factory_reset(device, reset_by_device)  # relayed by the manufacturer
    s.index()

    view = s.view(device)
    if time.time() < short_expiry:  # answered before the brief grant ran out (a slow machine may not)
        assert {a["grantee"] for a in view["authorizations"]} == {brief, lasting}
    while time.time() <= short_expiry:
        time.sleep(0.25)
    view = s.view(device)
    assert view["authorizations"] == [
        {"grantee": lasting, "permissions": ["read_data", "ota"], "expires_at": long_expiry}
    ]

    timeline = view["timeline"]
    assert [e["type"] for e in timeline] == [
        "Minted",
        "AuthorizationGranted",
        "AuthorizationGranted",
        "FactoryReset",
    ]
    blocks = [(e["block_number"], e["log_index"]) for e in timeline]
    assert blocks == sorted(blocks)
    granted = timeline[1]["details"]
    assert granted["attestedBy"] == s.manufacturer.address  # the owner, in person
    assert (granted["grantee"], granted["permissions"], granted["expiresAt"]) == (
        brief,
        ["read_data"],
        short_expiry,
    )
    reset = timeline[3]["details"]
    assert (reset["attestedBy"], reset["role"], reset["count"]) == (device, "device", 1)
    assert view["on_chain"]["factory_resets"] == 1


UNKNOWN = ("0x" + "12" * 20, "123456789", "SERIAL-THAT-NEVER-WAS", "358520869371605")


def test_unknown_devices_are_404_and_malformed_queries_a_clear_4xx(served: Served) -> None:
    s = served
    for unknown in UNKNOWN:
        for path in (f"/certificates/{unknown}", f"/certificates/{unknown}/verify"):
            assert "no " in refused(s.client.get(path), 404, "not_found")
    assert "empty" in refused(s.client.get("/certificates/%20%20"), 422, "invalid_request")
    assert "query" in refused(s.client.get("/certificates/" + "9" * 81), 422, "invalid_request")
    for garbage in ("0xZZ", "0", "-1", "%C3%A9", "..%2F..%2Fetc", "1e5"):
        response = s.client.get(f"/certificates/{garbage}")
        assert 400 <= response.status_code < 500, (garbage, response.status_code, response.text)
        assert response.json()["detail"], response.text


def test_a_nul_byte_in_the_query_is_a_4xx(served: Served) -> None:
    for path in ("/certificates/%00", "/certificates/SN%00X/verify"):
        response = served.client.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.json()["detail"], response.text


def test_a_404_names_what_was_asked(served: Served) -> None:
    for unknown in UNKNOWN:
        detail = refused(served.client.get(f"/certificates/{unknown}"), 404, "not_found")
        assert unknown.lower() in detail.lower(), detail
