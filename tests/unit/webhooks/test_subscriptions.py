"""What a subscription selects, what it may ask for, and the payload it gets."""

from __future__ import annotations

import json

import pytest

from devicemint.indexer.events import canonical_json as encode
from devicemint.indexer.models import ChainEvent
from devicemint.webhooks.errors import SubscriptionInvalid
from devicemint.webhooks.outbox import event_key, payload_of
from devicemint.webhooks.subscriptions import (
    Selector,
    check_contract,
    check_event_types,
    check_subject,
    check_url,
)

DEVICE = "device:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"


def matches(
    selector: Selector, name: str = "Transfer", contract: str = "DeviceCertificate", subject: str = DEVICE
) -> bool:
    return selector.matches(name=name, contract=contract, subject=subject)


def test_event_types_select_by_name_and_star_selects_all() -> None:
    assert matches(Selector(frozenset({"Transfer"})))
    assert not matches(Selector(frozenset({"EndOfLife", "FactoryReset"})))
    assert matches(Selector(frozenset({"*"})), name="VoteCast")


def test_an_exact_subject_matches_only_itself_in_any_case() -> None:
    exact = Selector(frozenset({"*"}), subject=DEVICE.lower())
    assert matches(exact)
    assert not matches(exact, subject=DEVICE[:-1] + "2")
    assert not matches(exact, subject=DEVICE + "0")  # not a prefix match


def test_a_subject_ending_in_star_is_a_prefix() -> None:
    licences = Selector(frozenset({"*"}), subject="device_licence:*")
    assert matches(licences, subject="device_licence:1")
    assert matches(licences, subject="device_licence:12")
    assert not matches(licences, subject="manufacturer_licence:1")
    assert not matches(licences, subject="device:0x01")


def test_the_contract_filter_and_the_others_must_all_hold() -> None:
    both = Selector(frozenset({"Transfer"}), subject="manufacturer_licence:*", contract="ManufacturerLicense")
    assert matches(both, contract="ManufacturerLicense", subject="manufacturer_licence:1")
    assert not matches(both, contract="DeviceCertificate", subject="manufacturer_licence:1")
    assert not matches(both, name="Slashed", contract="ManufacturerLicense", subject="manufacturer_licence:1")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", r"http:// or https:// \(got ftp://\)"),
        ("example.com/hook", r"http:// or https:// \(got no scheme\)"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https:///hook", "no host name"),
        ("https://user:pw@example.com/hook", "user name or password"),
        ("https://example.com/hook#part", "fragment"),
        ("https://example.com/a b", "spaces"),
        ("https://example.com:99999/", "cannot be parsed"),
        ("https://example.com/" + "a" * 2048, "at most 2048"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(SubscriptionInvalid, match=reason):
        check_url(url)


@pytest.mark.parametrize(
    "url", ["https://example.com/hook", "http://127.0.0.1:8080/x?y=1", "https://[::1]/h"]
)
def test_good_urls_pass(url: str) -> None:
    assert check_url(url) == url


def test_event_types_are_checked_against_the_contracts() -> None:
    assert check_event_types(["Transfer", "EndOfLife", "Transfer"]) == ["EndOfLife", "Transfer"]
    assert check_event_types(["Transfer", "*"]) == ["*"]
    with pytest.raises(SubscriptionInvalid, match=r"unknown event type\(s\) 'Transfr'; known: .*Transfer"):
        check_event_types(["Transfr"])
    with pytest.raises(SubscriptionInvalid, match="at least one event type"):
        check_event_types([])


def test_subject_and_contract_filters_are_checked() -> None:
    assert check_subject("device:*") == "device:*"
    assert check_subject(None) is None
    for bad, reason in [
        ("", "1 to 80"),
        ("device *", "spaces"),
        ("dev*ce:1", "may only end it"),
        ("x" * 81, "1 to 80"),
    ]:
        with pytest.raises(SubscriptionInvalid, match=reason):
            check_subject(bad)
    assert check_contract("DeviceLicense") == "DeviceLicense"
    with pytest.raises(
        SubscriptionInvalid, match="unknown contract 'StakingToken'; one of: ManufacturerLicense"
    ):
        check_contract("StakingToken")


def test_the_payload_carries_the_event_and_its_stable_id() -> None:
    event = ChainEvent(
        block_number=12,
        log_index=3,
        block_hash="0x" + "ab" * 32,
        block_time=1_800_000_000,
        tx_hash="0x" + "cd" * 32,
        contract="DeviceCertificate",
        name="EndOfLife",
        subject=DEVICE,
        args='{"stage":1,"tokenId":"5"}',
    )
    key = "0x" + "ab" * 32 + ":3"
    assert event_key(event) == key
    assert payload_of(event) == {
        "id": key,
        "type": "EndOfLife",
        "contract": "DeviceCertificate",
        "subject": DEVICE,
        "block_number": 12,
        "block_hash": "0x" + "ab" * 32,
        "log_index": 3,
        "tx_hash": "0x" + "cd" * 32,
        "block_time": 1_800_000_000,
        "args": {"stage": 1, "tokenId": "5"},
        "removed": False,
    }
    removed = payload_of(event, removed=True)
    assert (removed["id"], removed["removed"]) == (key + ":removed", True)
    body = encode(payload_of(event))
    assert json.loads(body) == payload_of(event) and " " not in body
