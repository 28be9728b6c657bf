"""`devicemint device ...` and `devicemint licence publish-firmware`, run as a person runs them
(the real command, in its own process) against the programme's chain and database."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devicemint.chain import keys
from devicemint.devices.lifecycle import Lifecycle, Permission, Stage, token_id

from .conftest import Served, Server, keystore_path, sender

DEVICEMINT = str(Path(sys.executable).parent / "devicemint")
IMAGE = hashlib.sha256(b"AT-OBD-4G firmware 2.0.0").hexdigest()
EVIDENCE = hashlib.sha256(b"decommissioning report").hexdigest()


def devicemint(s: Served, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [DEVICEMINT, *args],
        env={**os.environ, **s.p.env()},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == expect, (args, result.returncode, result.stdout, result.stderr)
    return result


def as_json(s: Served, *args: str) -> Any:
    return json.loads(devicemint(s, *args, "--json").stdout)


@pytest.fixture
def minted(server: Server) -> Served:
    s = server()
    s.mint(4, "batch.csv")
    return s


def test_a_device_life_from_the_command_line(minted: Served, tmp_path: Path) -> None:
    s = minted
    device = s.devices[0]
    row = s.rows[device]
    serial, imei = row["serial_number"], row["imei"]
    keystore = str(keystore_path(s.p))
    owner = keys.dev_account(int(keys.DevRole.OWNER)).address
    grantee = keys.dev_account(int(keys.DevRole.CX_AUDITOR)).address
    auditor = keys.dev_account(int(keys.DevRole.AUDITOR)).address
    life = Lifecycle(contracts=s.runtime.contracts, sender=sender(s.runtime, keys.DevRole.FOUNDATION))

    moved = as_json(s, "device", "transfer", serial, owner, "--as", "manufacturer")
    assert (moved["device"], moved["to"]) == (device, owner)
    assert life.owner(device) == owner

    granted = as_json(
        s,
        "device",
        "authorize",
        imei,
        grantee,
        "--permissions",
        "read_data,ota",
        "--days",
        "30",
        "--as",
        "owner",
    )
    assert (granted["device"], granted["grantee"], granted["attested_by"]) == (device, grantee, owner)
    assert granted["permissions"] == ["read_data", "ota"]
    assert abs(granted["expires_at"] - (time.time() + 30 * 86400)) < 600
    on_chain = life.grant(device, grantee)
    assert (on_chain.permissions, on_chain.expires_at) == (
        Permission.READ_DATA | Permission.OTA,
        granted["expires_at"],
    )

    revoked = as_json(s, "device", "revoke", device, grantee, "--as", "owner")
    assert (revoked["grantee"], revoked["attested_by"]) == (grantee, owner)
    assert life.grant(device, grantee).permissions == Permission(0)

    reset = as_json(s, "device", "reset", serial, "--device-keystore", keystore)
    assert (reset["attested_by"], reset["factory_resets"]) == (device, 1)

    # Signed by the device now, relayed later by a third party with gas.
    signed_file = tmp_path / "reset.json"
    signed = as_json(
        s, "device", "reset", serial, "--device-keystore", keystore, "--sign-only", str(signed_file)
    )
    assert signed == {"device": device, "signed": str(signed_file), "signer": device}
    attestation = json.loads(signed_file.read_text())
    assert attestation["action"] == "FactoryReset" and attestation["signer"] == device
    assert life.state(device).factory_resets == 1  # nothing sent yet
    relayed = as_json(s, "device", "reset", serial, "--attestation", str(signed_file), "--as", "auditor")
    assert (relayed["attested_by"], relayed["factory_resets"]) == (device, 2)
    assert s.runtime.w3.eth.get_transaction(relayed["tx_hash"])["from"] == auditor

    published = as_json(s, "licence", "publish-firmware", "1", "2.0.0", "--image-sha256", IMAGE)
    assert published == {"licence_id": 1, "version": "2.0.0", "image_sha256": IMAGE}
    updated = as_json(s, "device", "ota", imei, "--to", "2.0.0", "--device-keystore", keystore)
    assert (updated["from_version"], updated["to_version"], updated["image_sha256"]) == (
        row["firmware_version"],
        "2.0.0",
        IMAGE,
    )
    assert updated["attested_by"] == device

    retired = as_json(s, "device", "eol", serial, "decommissioned", "--evidence", EVIDENCE, "--as", "owner")
    assert (retired["stage"], retired["attested_by"]) == ("decommissioned", owner)

    refused = devicemint(s, "device", "transfer", serial, auditor, "--as", "owner", expect=1)
    assert "DeviceRetired" in refused.stderr, refused.stderr
    assert life.owner(device) == owner

    shown = as_json(s, "device", "show", str(token_id(device)))
    assert shown == {
        "device": device,
        "owner": owner,
        "stage": "decommissioned",
        "factory_resets": 2,
        "firmware": "2.0.0",
        "transfers": 1,
    }
    # The other devices are untouched.
    assert as_json(s, "device", "show", s.devices[1])["factory_resets"] == 0

    # And the API, once the chain is indexed, tells the same story.
    s.index()
    view = s.view(device)
    assert [e["type"] for e in view["timeline"]] == [
        "Minted",
        "AuthorizationsCleared",
        "Transferred",
        "AuthorizationGranted",
        "AuthorizationRevoked",
        "FactoryReset",
        "FactoryReset",
        "FirmwareUpdated",
        "EndOfLife",
    ]
    assert {
        k: view["on_chain"][k] for k in ("owner", "stage", "factory_resets", "firmware_version", "transfers")
    } == {
        "owner": owner,
        "stage": "decommissioned",
        "factory_resets": 2,
        "firmware_version": "2.0.0",
        "transfers": 1,
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # chain and argument refusals
def test_refusals_name_the_reason_and_change_nothing(minted: Served, tmp_path: Path) -> None:
    s = minted
    device = s.devices[0]
    keystore = str(keystore_path(s.p))
    grantee = keys.dev_account(int(keys.DevRole.CX_AUDITOR)).address
    life = Lifecycle(contracts=s.runtime.contracts, sender=sender(s.runtime, keys.DevRole.FOUNDATION))

    # The auditor does not own the device: the contract refuses and says so.
    wrong = devicemint(
        s, "device", "authorize", device, grantee, "--permissions", "read_data", "--as", "auditor", expect=1
    )
    assert "NotAttester" in wrong.stderr, wrong.stderr

    unknown = devicemint(
        s,
        "device",
        "authorize",
        device,
        grantee,
        "--permissions",
        "read_data,teleport",
        "--as",
        "manufacturer",
        expect=2,
    )
    assert "teleport" in unknown.stderr and "read_data, manage, ota, factory_reset" in unknown.stderr, (
        unknown.stderr
    )

    unpublished = devicemint(
        s, "device", "ota", device, "--to", "9.9.9", "--device-keystore", keystore, expect=2
    )
    assert "firmware 9.9.9 is not published for device licence 1" in unpublished.stderr, unpublished.stderr

    reset_file = tmp_path / "reset.json"
    devicemint(s, "device", "reset", device, "--device-keystore", keystore, "--sign-only", str(reset_file))
    misused = devicemint(s, "device", "revoke", device, grantee, "--attestation", str(reset_file), expect=2)
    assert "not a signed RevokeAuthorization attestation" in misused.stderr, misused.stderr
    misused = devicemint(
        s,
        "device",
        "eol",
        device,
        "decommissioned",
        "--evidence",
        EVIDENCE,
        "--attestation",
        str(reset_file),
        expect=2,
    )
    assert "not a signed EndOfLife attestation" in misused.stderr, misused.stderr
    # Another device's reset, relayed for this one: the contract sees a signature that does not match.
    other = devicemint(s, "device", "reset", s.devices[1], "--attestation", str(reset_file), expect=1)
    assert "InvalidSignature" in other.stderr, other.stderr

    state = life.state(device)
    assert (state.stage, state.factory_resets, state.firmware_version_hash) == (Stage.ACTIVE, 0, None)
    assert life.grant(device, grantee).permissions == Permission(0)
    # The signed reset is still good for the device it was made for.
    done = as_json(s, "device", "reset", device, "--attestation", str(reset_file))
    assert done["factory_resets"] == 1
