"""Lifecycle records relayed by the API: each party signs the EIP-712 typed data the API hands out
(its nonce, a deadline), the server sends it and pays, and the contract decides who may attest."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from eth_account import Account

from devicemint.chain import keys
from devicemint.licensing import actions

from .conftest import Served, refused, sender

FIRMWARE_2 = hashlib.sha256(b"AT-OBD-4G firmware 2.0.0").hexdigest()
EVIDENCE = hashlib.sha256(b"recycler's certificate of destruction").hexdigest()


def _publish_2_0_0(s: Served) -> None:
    actions.publish_firmware(
        s.runtime.contracts,
        sender(s.runtime, keys.DevRole.MANUFACTURER),
        licence_id=s.p.device_licence_id,
        version="2.0.0",
        image_sha256=bytes.fromhex(FIRMWARE_2),
    )


def _ok(response: Any, device: str, action: str, signer: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["device"], body["action"], body["attested_by"]) == (device, action, signer)
    assert body["tx_hash"].startswith("0x") and len(body["tx_hash"]) == 66
    return body  # type: ignore[no-any-return]


def test_typed_data_names_the_contract_the_signer_nonce_and_a_deadline(served: Served) -> None:
    s = served
    device = s.devices[0]
    owner = s.manufacturer
    expires = int(time.time()) + 86400
    fields = {
        "grantee": keys.dev_account(int(keys.DevRole.AUDITOR)).address,
        "permissions": ["read_data", "ota"],
    }
    response = s.typed_data(device, "authorize", owner.address, fields | {"expires_at": expires})
    assert response.status_code == 200, response.text
    typed = response.json()
    assert typed["primaryType"] == "Authorize"
    assert typed["domain"] == {
        "name": "DeviceCertificate",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": s.runtime.contracts.deployment.device_certificate,
    }
    assert [f["name"] for f in typed["types"]["Authorize"]] == [
        "tokenId",
        "grantee",
        "permissions",
        "expiresAt",
        "nonce",
        "deadline",
    ]
    message = typed["message"]
    assert int(message["tokenId"]) == int(device, 16)
    # Integers come as decimal strings: a browser's JSON.parse would round a token id.
    assert (message["grantee"], int(message["permissions"]), int(message["expiresAt"])) == (
        fields["grantee"],
        5,
        expires,
    )
    nonce = s.runtime.contracts.device_certificate.functions.nonces(owner.address).call()
    assert int(message["nonce"]) == nonce
    assert time.time() < int(message["deadline"]) <= time.time() + 3 * 3600

    reset = s.typed_data(device, "factory-reset", device, {}).json()
    assert reset["primaryType"] == "FactoryReset" and set(reset["message"]) == {
        "tokenId",
        "nonce",
        "deadline",
    }


def test_each_party_signs_the_server_relays_and_the_timeline_shows_it(served: Served) -> None:
    s = served
    device = s.devices[0]
    owner, device_key = s.manufacturer, s.device_keys[device]
    grantee = keys.dev_account(int(keys.DevRole.AUDITOR)).address
    foundation = keys.dev_account(int(keys.DevRole.FOUNDATION)).address
    _publish_2_0_0(s)
    initial = s.rows[device]["firmware_version"]
    expires = int(time.time()) + 30 * 86400

    steps = [
        (
            "authorize",
            owner,
            {"grantee": grantee, "permissions": ["read_data", "ota"], "expires_at": expires},
        ),
        ("factory-reset", device_key, {}),
        (
            "firmware-update",
            device_key,
            {"from_version": initial, "to_version": "2.0.0", "image_sha256": FIRMWARE_2},
        ),
    ]
    sent = []
    for action, signer, fields in steps:
        # The device is named by its serial number here: any query form works for writes too.
        query = s.rows[device]["serial_number"]
        record = s.signed_record(query, action, signer, fields)
        sent.append(_ok(s.relay(query, action, record), device, action, signer.address))
    s.index()
    middle = s.view(device)
    assert middle["authorizations"] == [
        {"grantee": grantee, "permissions": ["read_data", "ota"], "expires_at": expires}
    ]

    for action, signer, fields in [
        ("revoke", owner, {"grantee": grantee}),
        ("end-of-life", owner, {"stage": "decommissioned", "evidence_sha256": "0x" + EVIDENCE}),
    ]:
        record = s.signed_record(device, action, signer, fields)
        sent.append(_ok(s.relay(device, action, record), device, action, signer.address))
    # The server's key sent (and paid for) every record; the parties only signed.
    for body in sent:
        assert s.runtime.w3.eth.get_transaction(body["tx_hash"])["from"] == foundation
    s.index()

    view = s.view(device)
    timeline = view["timeline"]
    assert [e["type"] for e in timeline] == [
        "Minted",
        "AuthorizationGranted",
        "FactoryReset",
        "FirmwareUpdated",
        "AuthorizationRevoked",
        "EndOfLife",
    ]
    assert [e["tx_hash"] for e in timeline[1:]] == [b["tx_hash"] for b in sent]
    granted, reset, update, revoked, retired = (e["details"] for e in timeline[1:])
    assert granted == {
        "grantee": grantee,
        "permissions": ["read_data", "ota"],
        "expiresAt": expires,
        "attestedBy": owner.address,
        "role": "owner",
    }
    assert reset == {"count": 1, "attestedBy": device, "role": "device"}
    assert (update["fromVersion"], update["toVersion"], update["imageHash"]) == (
        initial,
        "2.0.0",
        "0x" + FIRMWARE_2,
    )
    assert (revoked["grantee"], revoked["attestedBy"]) == (grantee, owner.address)
    assert retired == {
        "stage": "decommissioned",
        "evidenceHash": "0x" + EVIDENCE,
        "attestedBy": owner.address,
        "role": "owner",
    }
    on_chain = view["on_chain"]
    assert (on_chain["stage"], on_chain["factory_resets"], on_chain["firmware_version"]) == (
        "decommissioned",
        1,
        "2.0.0",
    )
    assert on_chain["owner"] == owner.address and view["authorizations"] == []
    assert view["standing"] == "genuine"  # a retired device is still a genuine one
    # The other devices are untouched.
    assert [e["type"] for e in s.view(s.devices[1])["timeline"]] == ["Minted"]


def test_every_lifecycle_record_in_the_timeline_names_its_attester_and_role(served: Served) -> None:
    s = served
    device = s.devices[0]
    _publish_2_0_0(s)
    grantee = keys.dev_account(int(keys.DevRole.AUDITOR)).address
    expires = int(time.time()) + 86400
    for action, signer, fields in [
        (
            "authorize",
            s.manufacturer,
            {"grantee": grantee, "permissions": ["read_data"], "expires_at": expires},
        ),
        (
            "firmware-update",
            s.device_keys[device],
            {
                "from_version": s.rows[device]["firmware_version"],
                "to_version": "2.0.0",
                "image_sha256": FIRMWARE_2,
            },
        ),
    ]:
        _ok(
            s.relay(device, action, s.signed_record(device, action, signer, fields)),
            device,
            action,
            signer.address,
        )
    s.index()
    records = s.view(device)["timeline"][1:]
    assert [(e["type"], e["details"].get("attestedBy"), e["details"].get("role")) for e in records] == [
        ("AuthorizationGranted", s.manufacturer.address, "owner"),
        ("FirmwareUpdated", device, "device"),
    ]


def test_the_contract_refuses_wrong_signers_tampered_fields_replays_and_unpublished_firmware(
    served: Served,
) -> None:
    s = served
    device = s.devices[0]
    owner, device_key, stranger = s.manufacturer, s.device_keys[device], Account.create()
    grantee = keys.dev_account(int(keys.DevRole.AUDITOR)).address
    grant = {"grantee": grantee, "permissions": ["read_data"], "expires_at": int(time.time()) + 86400}

    def contract_says(response: Any) -> str:
        return refused(response, 409, "refused_by_contract")

    # Signed by a party the contract does not accept for the record.
    assert "NotAttester" in contract_says(
        s.relay(device, "authorize", s.signed_record(device, "authorize", stranger, grant))
    )
    assert "NotAttester" in contract_says(
        s.relay(device, "authorize", s.signed_record(device, "authorize", device_key, grant))
    )
    assert "NotAttester" in contract_says(
        s.relay(device, "factory-reset", s.signed_record(device, "factory-reset", owner, {}))
    )
    other = s.devices[1]  # another device's key cannot attest this one's reset
    assert "NotAttester" in contract_says(
        s.relay(device, "factory-reset", s.signed_record(device, "factory-reset", s.device_keys[other], {}))
    )
    assert "NotAttester" in contract_says(
        s.relay(
            device,
            "end-of-life",
            s.signed_record(
                device, "end-of-life", stranger, {"stage": "decommissioned", "evidence_sha256": EVIDENCE}
            ),
        )
    )

    # Fields changed after signing: the signature no longer recovers to the signer.
    record = s.signed_record(device, "authorize", owner, grant)
    for tampered in (
        record | {"permissions": ["read_data", "manage"]},
        record | {"expires_at": grant["expires_at"] + 1},
        record | {"grantee": stranger.address},
        record
        | {"attestation": record["attestation"] | {"deadline": record["attestation"]["deadline"] + 60}},
    ):
        assert "InvalidSignature" in contract_says(s.relay(device, "authorize", tampered))
    assert "InvalidSignature" in contract_says(s.relay(other, "authorize", record))  # another device
    # A signature is good once: its nonce is spent.
    _ok(s.relay(device, "authorize", record), device, "authorize", owner.address)
    assert "InvalidSignature" in contract_says(s.relay(device, "authorize", record))

    # A deadline in the past.
    typed = s.typed_data(device, "factory-reset", device_key.address, {}).json()
    # Before the newest block (the chain's clock need not be the wall clock: anvil snapshots move it).
    chain_now = s.runtime.w3.eth.get_block("latest")["timestamp"]
    typed["message"]["deadline"] = min(chain_now, int(time.time())) - 60
    signature = Account.sign_typed_data(device_key.key, full_message=typed).signature
    expired = {
        "attestation": {
            "signer": device,
            "deadline": int(typed["message"]["deadline"]),
            "signature": "0x" + bytes(signature).hex(),
        }
    }
    assert "SignatureExpired" in contract_says(s.relay(device, "factory-reset", expired))

    # Firmware nobody published for this licence, or published with another image.
    initial = s.rows[device]["firmware_version"]
    unpublished = {"from_version": initial, "to_version": "9.9.9", "image_sha256": FIRMWARE_2}
    detail = contract_says(
        s.relay(
            device, "firmware-update", s.signed_record(device, "firmware-update", device_key, unpublished)
        )
    )
    assert "FirmwareNotPublished" in detail and "9.9.9" in detail
    _publish_2_0_0(s)
    wrong_image = {"from_version": initial, "to_version": "2.0.0", "image_sha256": "ab" * 32}
    assert "FirmwareNotPublished" in contract_says(
        s.relay(
            device, "firmware-update", s.signed_record(device, "firmware-update", device_key, wrong_image)
        )
    )

    # Of all that, only the one good grant reached the chain.
    s.index()
    assert [e["type"] for e in s.view(device)["timeline"]] == ["Minted", "AuthorizationGranted"]


def test_missing_or_malformed_fields_are_422_before_anything_is_signed_or_sent(served: Served) -> None:
    s = served
    device = s.devices[0]
    owner = s.manufacturer
    by_owner: dict[str, str] = {"signer": owner.address}
    grant = {"grantee": owner.address, "permissions": ["read_data"], "expires_at": int(time.time()) + 86400}
    attestation = {"signer": owner.address, "deadline": int(time.time()) + 600, "signature": "0x" + "11" * 65}

    def typed(action: str, fields: dict[str, Any], params: dict[str, str] = by_owner) -> str:
        return refused(
            s.client.post(
                f"/certificates/{device}/lifecycle/{action}/typed-data", params=params, json=fields
            ),
            422,
            "invalid_request",
        )

    def relay(action: str, body: dict[str, Any]) -> str:
        return refused(s.relay(device, action, body), 422, "invalid_request")

    for missing in ("grantee", "permissions", "expires_at"):
        fields = {k: v for k, v in grant.items() if k != missing}
        assert missing in typed("authorize", fields)
        assert missing in relay("authorize", fields | {"attestation": attestation})
    assert "grantee" in typed("revoke", {})
    assert "to_version" in typed("firmware-update", {"from_version": "1.0.0", "image_sha256": FIRMWARE_2})
    assert "image_sha256" in relay(
        "firmware-update", {"from_version": "1.0.0", "to_version": "2.0.0", "attestation": attestation}
    )
    assert "stage" in typed("end-of-life", {"evidence_sha256": EVIDENCE})
    assert "evidence_sha256" in relay("end-of-life", {"stage": "recycled", "attestation": attestation})
    assert "attestation" in relay("authorize", grant)
    assert "signer" in typed("authorize", grant, params={})
    assert "signer" in typed("authorize", grant, params={"signer": "0x1234"})
    assert "permissions" in typed("authorize", grant | {"permissions": ["teleport"]})
    assert "stage" in typed("end-of-life", {"stage": "active", "evidence_sha256": EVIDENCE})
    assert "image_sha256" in typed(
        "firmware-update", {"from_version": "1", "to_version": "2", "image_sha256": "xyz"}
    )
    assert "colour" in typed("factory-reset", {"colour": "red"})  # unknown fields are refused, not ignored
    assert "signature" in relay("factory-reset", {"attestation": attestation | {"signature": "0x1234"}})
    assert "action" in typed("teleport", {})
    # Nothing was sent.
    s.index()
    assert [e["type"] for e in s.view(device)["timeline"]] == ["Minted"]


def test_typed_data_numbers_survive_a_javascript_client(served: Served) -> None:
    s = served
    device = s.devices[0]
    text = s.typed_data(device, "factory-reset", device, {}).text
    as_javascript = json.loads(text, parse_int=float)  # JSON.parse: every number is an IEEE-754 double
    token = as_javascript["message"]["tokenId"]
    assert int(token) == int(device, 16)
