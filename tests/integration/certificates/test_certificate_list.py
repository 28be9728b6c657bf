"""GET /certificates: filters (manufacturer, licence, batch, standing) and cursor pagination."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from devicemint.chain import keys

from .conftest import Served, Server, refused, sender


@pytest.fixture
def two_batches(server: Server) -> Served:
    """Ten devices: six in one factory batch, four in another."""
    s = server()
    s.mint(6, "first.csv")
    s.mint(4, "second.csv")
    s.index()
    return s


def _addresses(s: Served, **params: Any) -> list[str]:
    page = s.get("/certificates", params={"limit": 500, **params})
    assert page["next_cursor"] is None
    return [item["address"] for item in page["items"]]


def test_filters_by_manufacturer_licence_batch_and_standing(two_batches: Served) -> None:
    s = two_batches
    everything = sorted(s.devices)
    first, second = s.devices[:6], s.devices[6:]
    batch_1, batch_2 = s.batch_of[first[0]], s.batch_of[second[0]]
    assert batch_1 != batch_2
    assert set(_addresses(s)) == set(everything) and len(_addresses(s)) == 10

    holder = s.manufacturer.address
    for manufacturer in (str(s.p.manufacturer_licence_id), holder, holder.lower()):
        assert set(_addresses(s, manufacturer=manufacturer)) == set(everything)
    assert _addresses(s, manufacturer="2") == []
    assert _addresses(s, manufacturer=keys.dev_account(int(keys.DevRole.OWNER)).address) == []
    assert set(_addresses(s, licence=s.p.device_licence_id)) == set(everything)
    assert _addresses(s, licence=s.p.device_licence_id + 1) == []
    assert set(_addresses(s, batch=batch_1)) == set(first)
    assert set(_addresses(s, batch=batch_2)) == set(second)
    assert set(_addresses(s, batch=batch_2, licence=s.p.device_licence_id, manufacturer=holder)) == set(
        second
    )
    assert _addresses(s, batch=batch_2 + 1) == []
    assert set(_addresses(s, standing="genuine")) == set(everything)
    assert _addresses(s, standing="not_in_good_standing") == []

    item = next(
        i for i in s.get("/certificates", params={"batch": batch_2})["items"] if i["address"] == second[0]
    )
    assert item["token_id"] == str(int(second[0], 16))
    assert (item["manufacturer_licence_id"], item["device_licence_id"], item["batch_id"]) == (
        s.p.manufacturer_licence_id,
        s.p.device_licence_id,
        batch_2,
    )
    assert (item["owner"], item["standing"], item["stage"]) == (holder, "genuine", "active")

    licence = s.runtime.contracts.manufacturer_license.functions
    sender(s.runtime, keys.DevRole.FOUNDATION).transact(
        licence.suspend(s.p.manufacturer_licence_id, hashlib.sha256(b"audit overdue").digest()),
        what="suspending the manufacturer licence",
    )
    s.index()
    assert set(_addresses(s, standing="not_in_good_standing")) == set(everything)
    assert set(_addresses(s, standing="not_in_good_standing", batch=batch_1)) == set(first)
    assert _addresses(s, standing="genuine") == []

    assert "manufacturer" in refused(
        s.client.get("/certificates", params={"manufacturer": "acme"}), 422, "invalid_request"
    )
    for bad in ({"standing": "forged"}, {"licence": 0}, {"batch": "one"}):
        refused(s.client.get("/certificates", params=bad), 422, "invalid_request")


def test_a_cursor_walks_every_certificate_exactly_once(two_batches: Served) -> None:
    s = two_batches
    seen: list[str] = []
    sizes = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = s.get("/certificates", params=params)
        sizes.append(len(page["items"]))
        seen += [item["address"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 3, "cursor": page["next_cursor"]}
        assert len(sizes) < 10, "the cursor does not end"
    assert sizes == [3, 3, 3, 1]
    assert sorted(seen) == sorted(s.devices) and len(set(seen)) == 10
    assert seen == _addresses(s)  # the pages, end to end, are the one-page listing

    # Filtered pages continue inside the filter.
    second = s.devices[6:]
    page = s.get("/certificates", params={"limit": 3, "batch": s.batch_of[second[0]]})
    rest = s.get(
        "/certificates", params={"limit": 3, "batch": s.batch_of[second[0]], "cursor": page["next_cursor"]}
    )
    walked = [i["address"] for i in page["items"] + rest["items"]]
    assert sorted(walked) == sorted(second) and rest["next_cursor"] is None

    # Exactly a page's worth: no empty page after it.
    page = s.get("/certificates", params={"limit": 10})
    assert len(page["items"]) == 10 and page["next_cursor"] is None


def test_bad_cursors_and_limits_are_refused_with_a_reason(two_batches: Served) -> None:
    s = two_batches
    not_ours = [
        "garbage!",
        "bm90IGpzb24",  # "not json"
        base64.urlsafe_b64encode(json.dumps({"before": s.devices[0]}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"after": "0x1234"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["after"]).encode()).decode(),
    ]
    for cursor in not_ours:
        detail = refused(s.client.get("/certificates", params={"cursor": cursor}), 422, "invalid_request")
        assert "cursor" in detail, (cursor, detail)
    assert "cursor" in refused(
        s.client.get("/certificates", params={"cursor": "x" * 201}), 422, "invalid_request"
    )
    for limit in (0, 501, -1):
        detail = refused(s.client.get("/certificates", params={"limit": limit}), 422, "invalid_request")
        assert "limit" in detail, detail
    assert len(s.get("/certificates", params={"limit": 500})["items"]) == 10
    assert len(s.get("/certificates", params={"limit": 1})["items"]) == 1
