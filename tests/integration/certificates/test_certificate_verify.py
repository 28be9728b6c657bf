"""GET /certificates/{query}/verify: the standing follows the licences on chain once indexed,
through the per-device cache (revocation for cause, suspension, reinstatement)."""

from __future__ import annotations

import hashlib

from devicemint.chain import keys
from devicemint.licensing.registry import ManufacturerStatus
from devicemint.licensing.revocation import revoke_manufacturer
from devicemint.pki.authority import Authority

from .conftest import Served, sender


def _checks(verification: dict) -> dict[str, bool]:  # type: ignore[type-arg]
    return {c["name"]: c["ok"] for c in verification["checks"]}


def test_a_genuine_device_then_revocation_for_cause_makes_it_not_genuine(served: Served) -> None:
    s = served
    device = s.devices[0]
    serial = s.rows[device]["serial_number"]
    before = s.verification(serial)
    assert before["standing"] == "genuine" and before["exit_code"] == 0
    assert all(_checks(before).values()), before["checks"]
    assert before["address"] == device and before["query"] == device
    assert s.verification(device) == before  # asked again: the same (cached) answer

    revoked = revoke_manufacturer(
        s.runtime.contracts,
        Authority.of(s.runtime.settings, s.runtime.sessions),
        sender(s.runtime, keys.DevRole.FOUNDATION),
        s.p.manufacturer_licence_id,
        reason="counterfeits found in the field",
    )
    assert revoked.status is ManufacturerStatus.REVOKED
    s.index()

    for query in (serial, device, s.rows[s.devices[3]]["imei"]):
        after = s.verification(query)
        assert after["standing"] == "not_genuine" and after["exit_code"] == 3
        failed = {name for name, ok in _checks(after).items() if not ok}
        assert "manufacturer_licence" in failed, after["checks"]
        detail = next(c["detail"] for c in after["checks"] if c["name"] == "manufacturer_licence")
        assert "revoked" in detail
    assert s.view(device)["standing"] == "not_genuine"


def test_suspension_and_reinstatement_reach_the_cached_answer_once_indexed(served: Served) -> None:
    s = served
    device = s.devices[1]
    licence = s.runtime.contracts.manufacturer_license.functions
    foundation = sender(s.runtime, keys.DevRole.FOUNDATION)
    assert s.verification(device)["standing"] == "genuine"

    foundation.transact(
        licence.suspend(s.p.manufacturer_licence_id, hashlib.sha256(b"audit overdue").digest()),
        what="suspending the manufacturer licence",
    )
    # Served from the indexer's database: nothing changes until the suspension is indexed ...
    assert s.verification(device)["standing"] == "genuine"
    s.index()
    # ... then the cached answer gives way.
    suspended = s.verification(device)
    assert suspended["standing"] == "not_in_good_standing" and suspended["exit_code"] == 3
    assert {name for name, ok in _checks(suspended).items() if not ok} == {"manufacturer_licence"}
    assert "suspended" in next(
        c["detail"] for c in suspended["checks"] if c["name"] == "manufacturer_licence"
    )
    assert s.view(device)["standing"] == "not_in_good_standing"
    assert s.verification(s.devices[2])["standing"] == "not_in_good_standing"  # every device under it

    foundation.transact(licence.reinstate(s.p.manufacturer_licence_id), what="reinstating the licence")
    s.index()
    assert s.verification(device)["standing"] == "genuine"
    assert all(_checks(s.verification(device)).values())
