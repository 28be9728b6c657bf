"""The public explorer in a real browser: a licensed sample manufacturer, devices minted from
factory batches and indexed by the server's own indexer, then found by each form of query,
shown genuine with every certificate field, shown not genuine (or not in good standing) after a
licence decision, and checked from the downloaded proof against the chain's root."""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Select, func, select

from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.cli.demo_command import onboard_sample_manufacturer
from devicemint.cli.device_commands import DEV_KEYSTORE_PASSPHRASE, mint_file, release
from devicemint.devices.keystore import read_keystore
from devicemint.devices.lifecycle import Lifecycle, Permission, attest, token_id
from devicemint.devices.merkle import leaf_hash, process_proof
from devicemint.devices.simulate import simulate_batch
from devicemint.indexer.models import DeviceLicenceState, DeviceState, ManufacturerLicenceState
from devicemint.licensing import actions
from devicemint.licensing.registry import read_device_licence
from devicemint.onboarding.walkthrough import SAMPLE_MANUFACTURER, Cast
from tests.browser.conftest import Site, get, shoot, wait_for


@dataclass
class Programme:
    """The sample manufacturer's licences and the factory rows of the devices minted under them."""

    manufacturer_licence_id: int
    device_licence_id: int
    rows: list[dict[str, str]]


def minted(site: Site, workdir: Path, *batches: int) -> Programme:
    """Onboard the sample manufacturer, mint one factory batch per count given, and wait until the
    server's indexer has every device."""
    runtime = site.runtime
    manufacturer_id, licence_id = onboard_sample_manufacturer(runtime)
    rows: list[dict[str, str]] = []
    for number, count in enumerate(batches, start=1):
        out = workdir / f"batch-{number}.csv"
        simulate_batch(
            count=count,
            out=out,
            keystore=workdir / f"batch-{number}.keys.json",
            passphrase=DEV_KEYSTORE_PASSPHRASE,
            domain=runtime.domain,
            device_licence_id=licence_id,
            today=date.today(),
            seed=number,
            firmware=release(runtime, licence_id, None),
        )
        mint_file(runtime, out, licence_id, dry_run=False)
        with out.open(newline="", encoding="utf-8") as handle:
            rows.extend(csv.DictReader(handle))
    wait_for(lambda: indexed(site, select(func.count()).select_from(DeviceState)) == len(rows))
    return Programme(manufacturer_id, licence_id, rows)


def indexed(site: Site, query: Select[Any]) -> Any:
    """One value from the database the server's indexer writes."""
    with site.runtime.sessions() as session:
        return session.scalar(query)


def sender(site: Site, account: LocalAccount) -> TxSender:
    return TxSender(w3=site.runtime.w3, account=account, chain_id=site.settings.chain_id)


def minted_per_day_on_chain(site: Site) -> dict[str, int]:
    """Devices minted per UTC day, from the chain's DevicesMinted logs and their blocks' timestamps
    (not from the indexer the page reads), every day from the first to the last."""
    w3 = site.runtime.w3
    counts: dict[date, int] = {}
    for log in site.runtime.contracts.device_certificate.events.DevicesMinted().get_logs(from_block=0):
        stamp = w3.eth.get_block(log["blockNumber"])["timestamp"]
        day = datetime.fromtimestamp(stamp, UTC).date()
        counts[day] = counts.get(day, 0) + int(log["args"]["count"])
    first, last = min(counts), max(counts)
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return {day.isoformat(): counts.get(day, 0) for day in days}


def field(page: Page, label: str) -> str:
    """The value shown for a labelled field of a definition list."""
    return page.locator(f'dt:text-is("{label}") + dd').first.inner_text()


def search(page: Page, query: str) -> None:
    page.goto("/")
    page.get_by_label("Find a device by its 0x address, token id, serial number or IMEI").fill(query)
    page.get_by_role("button", name="Search").click()


def test_search_by_address_token_id_serial_and_imei_shows_the_genuine_certificate(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    programme = minted(site, tmp_path, 3)
    row = programme.rows[1]
    address = row["device_address"]
    page = site.page(browser)
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Is this device genuine?")
    expect(page.locator(".figures")).to_contain_text("3 devices minted")
    expect(page.get_by_role("link", name=f"Device licence {programme.device_licence_id}")).to_be_visible()
    shoot(page, "explorer-home")

    for query in (address, str(int(address, 16)), row["serial_number"], row["imei"]):
        search(page, query)
        page.wait_for_url(f"**/devices/{address}")
        expect(page.locator("#standing")).to_have_text("Genuine, licensed and in good standing")
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Device {row['serial_number']}")

    # Every seed field of the certificate document, from the factory row and the licences.
    licence = read_device_licence(site.runtime.contracts, programme.device_licence_id)
    assert field(page, "Serial number") == row["serial_number"]
    assert field(page, "IMEI") == row["imei"]
    assert field(page, "Address") == address
    assert field(page, "Token id") == str(int(address, 16))
    assert field(page, "Manufacturer") == SAMPLE_MANUFACTURER
    assert field(page, "Manufacturer licence") == str(programme.manufacturer_licence_id)
    assert field(page, "Manufacturing date") == row["manufacturing_date"]
    assert field(page, "Device licence") == str(programme.device_licence_id)
    assert field(page, "Hardware model") == licence.hardware_model
    assert field(page, "Hardware revision") == licence.hardware_revision
    assert field(page, "Design hash") == "0x" + licence.design_hash.hex()
    assert field(page, "In-circuit test (ICT)") == f"pass; report SHA-256 {row['ict_report_sha256']}"
    assert field(page, "Mechanical test") == f"pass; report SHA-256 {row['mechanical_report_sha256']}"
    assert field(page, "Quality assurance") == (
        f"pass; inspected {row['qa_inspection_date']} by {row['qa_inspector']}"
    )
    assert field(page, "Initial firmware") == row["firmware_version"]
    assert field(page, "Firmware image SHA-256") == row["firmware_sha256"]
    assert field(page, "Provisioning date") == row["provisioning_date"]
    assert field(page, "Device signature") == row["device_signature"]
    # On-chain state, every check passed, and the mint in the timeline attested by the manufacturer.
    assert field(page, "Owner") == licence.holder
    assert field(page, "Firmware now") == f"{row['firmware_version']} (initial)"
    assert field(page, "Stage") == "active"
    checks = page.locator("#checks tbody tr")
    expect(checks).to_have_count(9)
    expect(page.locator("#checks .fail")).to_have_count(0)
    expect(page.locator("#timeline")).to_contain_text("Minted")
    expect(page.locator("#timeline")).to_contain_text(licence.holder)
    expect(page.locator("#timeline")).to_contain_text("manufacturer (device licence holder)")
    shoot(page, "explorer-device")


def test_the_downloaded_proof_folds_the_document_to_the_root_on_chain(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    programme = minted(site, tmp_path, 5)
    address = programme.rows[3]["device_address"]
    page = site.page(browser, accept_downloads=True)
    page.goto(f"/devices/{programme.rows[3]['imei']}")
    with page.expect_download() as proof_download:
        page.get_by_role("link", name="Merkle proof (JSON: batch, root, proof, leaf encoding)").click()
    with page.expect_download() as document_download:
        page.get_by_role("link", name="Certificate document (JSON, the committed bytes)").click()
    proof = json.loads(Path(proof_download.value.path()).read_text())
    document = Path(document_download.value.path()).read_bytes()

    assert json.loads(document)["device"]["address"] == address
    assert proof["leaf_encoding"] == ["address", "bytes32"]
    # Recompute the leaf from the document's bytes, fold the proof, and compare with the chain.
    leaf = leaf_hash(address, hashlib.sha256(document).digest())
    root = process_proof(leaf, [bytes.fromhex(p[2:]) for p in proof["proof"]])
    functions = site.runtime.contracts.device_certificate.functions
    _, batch_id, _, chain_root = functions.certificate(int(address, 16)).call()
    assert root == bytes(chain_root)
    assert proof["batch_id"] == batch_id
    assert proof["merkle_root"] == "0x" + root.hex()
    assert proof["leaf"] == "0x" + leaf.hex()

    chain = get(site, f"/devices/{address}/x509-chain.pem")
    assert chain.status_code == 200 and chain.text.count("BEGIN CERTIFICATE") == 3


def test_the_timeline_says_who_attested_each_record_and_the_page_shows_live_authorisations(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    programme = minted(site, tmp_path, 1)
    row = programme.rows[0]
    device = row["device_address"]
    contracts = site.runtime.contracts
    device_key = Account.from_key(
        read_keystore(tmp_path / "batch-1.keys.json", DEV_KEYSTORE_PASSPHRASE)[device]
    )
    manufacturer = sender(site, Cast.dev().manufacturer)
    owner = sender(site, keys.dev_account(keys.DevRole.OWNER))
    service = keys.dev_account(8).address
    by_owner = Lifecycle(contracts=contracts, sender=owner)
    Lifecycle(contracts=contracts, sender=manufacturer).transfer(device, owner.account.address)
    by_owner.authorize(device, service, Permission.READ_DATA | Permission.OTA, int(time.time()) + 86_400 * 30)
    token = token_id(device)
    by_owner.factory_reset(device, attest(contracts, device_key, "FactoryReset", {"tokenId": token}))
    image = hashlib.sha256(b"explorer test firmware 1.1.0").digest()
    actions.publish_firmware(
        contracts, manufacturer, licence_id=programme.device_licence_id, version="1.1.0", image_sha256=image
    )
    update = {
        "tokenId": token,
        "fromVersion": row["firmware_version"],
        "toVersion": "1.1.0",
        "imageHash": image,
    }
    by_owner.firmware_update(
        device,
        from_version=row["firmware_version"],
        to_version="1.1.0",
        image_sha256=image,
        attestation=attest(contracts, device_key, "FirmwareUpdate", update),
    )
    wait_for(lambda: indexed(site, select(DeviceState.firmware_version).where(DeviceState.address == device)))

    page = site.page(browser)
    page.goto(f"/devices/{row['serial_number']}")
    expect(page.locator("#standing")).to_have_text("Genuine, licensed and in good standing")
    assert field(page, "Owner") == owner.account.address
    assert field(page, "Firmware now") == "1.1.0 (updated over the air)"
    assert field(page, "Factory resets") == "1"
    assert field(page, "Transfers") == "1"
    timeline = page.locator("#timeline tbody tr")

    def attested(event: str) -> list[str]:
        cells = timeline.filter(has=page.get_by_role("rowheader", name=event, exact=True)).locator("td")
        return cells.all_inner_texts()

    assert attested("Transferred")[2:] == [manufacturer.account.address, "owner"]
    assert attested("Authorisation granted")[2:] == [owner.account.address, "owner"]
    assert attested("Factory reset")[2:] == [device, "device"]
    assert attested("Firmware updated (OTA)")[2:] == [device, "device"]
    assert f"{row['firmware_version']} → 1.1.0" in attested("Firmware updated (OTA)")[1]
    expect(page.locator("#authorisations")).to_contain_text(service)
    expect(page.locator("#authorisations")).to_contain_text("read_data, ota")


def revoke_device_licence(site: Site, licence_id: int, reason: str) -> None:
    """The foundation tables the revocation and the committee votes it through (quorum 2)."""
    contracts = site.runtime.contracts
    cast = Cast.dev()
    receipt = sender(site, cast.foundation).transact(
        contracts.device_license.functions.proposeRevoke(
            licence_id, hashlib.sha256(reason.encode()).digest()
        ),
        what="proposing the revocation",
    )
    (created,) = contracts.device_license.events.ProposalCreated().process_receipt(receipt)
    for member in cast.members:
        sender(site, member).transact(
            contracts.device_license.functions.vote(created["args"]["proposalId"], True), what="voting"
        )


def test_a_revoked_device_licence_makes_its_devices_not_genuine_and_says_why(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    programme = minted(site, tmp_path, 2)
    serial = programme.rows[0]["serial_number"]
    page = site.page(browser)
    search(page, serial)
    expect(page.locator("#standing")).to_have_text("Genuine, licensed and in good standing")

    revoke_device_licence(site, programme.device_licence_id, "OTA signing key leaked")
    wait_for(
        lambda: (
            indexed(
                site,
                select(DeviceLicenceState.status).where(
                    DeviceLicenceState.licence_id == programme.device_licence_id
                ),
            )
            == "revoked"
        )
    )
    page.reload()
    expect(page.locator("#standing")).to_have_text("Not genuine")
    expect(page.locator("#reasons")).to_have_text(f"device licence {programme.device_licence_id} is revoked")
    expect(page.locator("#checks tr", has_text="Device licence not revoked")).to_contain_text("fail")
    shoot(page, "explorer-device-revoked")

    page.get_by_role("link", name=f"Device licence {programme.device_licence_id}").first.click()
    expect(page.locator("#status")).to_have_text(f"Device licence {programme.device_licence_id}: revoked")
    reason = "0x" + hashlib.sha256(b"OTA signing key leaked").hexdigest()
    expect(page.locator("#licence")).to_contain_text(reason)
    revoke = page.get_by_role("heading", name="Proposal 2: revoke the licence (executed)")
    expect(revoke).to_be_visible()
    expect(page.locator("section.proposal", has=revoke).locator(".tally")).to_have_text(
        "2 for, 0 against; quorum 2"
    )


def test_a_suspended_manufacturer_leaves_its_devices_not_in_good_standing(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    programme = minted(site, tmp_path, 2)
    reason = hashlib.sha256(b"factory audit overdue").digest()
    sender(site, Cast.dev().foundation).transact(
        site.runtime.contracts.manufacturer_license.functions.suspend(
            programme.manufacturer_licence_id, reason
        ),
        what="suspending the manufacturer licence",
    )
    wait_for(
        lambda: (
            indexed(
                site,
                select(ManufacturerLicenceState.status).where(
                    ManufacturerLicenceState.licence_id == programme.manufacturer_licence_id
                ),
            )
            == "suspended"
        )
    )
    page = site.page(browser)
    search(page, programme.rows[1]["imei"])
    expect(page.locator("#standing")).to_have_text("Not in good standing")
    expect(page.locator("#reasons")).to_have_text(
        f"manufacturer licence {programme.manufacturer_licence_id} ({SAMPLE_MANUFACTURER}) is suspended"
    )
    page.get_by_role("link", name=f"Manufacturer licence {programme.manufacturer_licence_id}").first.click()
    expect(page.locator("#status")).to_have_text(
        f"Manufacturer licence {programme.manufacturer_licence_id}: suspended"
    )
    expect(page.locator("#decisions")).to_contain_text("Licence suspended")
    expect(page.locator("#decisions")).to_contain_text("0x" + reason.hex())


def test_unknown_and_malformed_searches_say_what_was_searched_and_what_is_accepted(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    minted(site, tmp_path, 1)
    page = site.page(browser)

    search(page, "NO-SUCH-SERIAL-42")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nothing found")
    expect(page.locator("#q-error")).to_contain_text("No device matches “NO-SUCH-SERIAL-42”")
    expect(page.locator("#q-error")).to_contain_text("a 0x address")
    expect(page.locator("#q-error")).to_contain_text("15-digit IMEI")
    expect(
        page.get_by_label("Find a device by its 0x address, token id, serial number or IMEI")
    ).to_have_value("NO-SUCH-SERIAL-42")
    assert get(site, "/search?q=NO-SUCH-SERIAL-42").status_code == 404
    assert get(site, "/search?q=12345").status_code == 404  # a token id never minted

    search(page, "0x12345")
    expect(page.locator("#q-error")).to_contain_text("exactly 40 hexadecimal digits")
    expect(
        page.get_by_label("Find a device by its 0x address, token id, serial number or IMEI")
    ).to_have_value("0x12345")
    assert get(site, "/search?q=0x12345").status_code == 422

    search(page, "   ")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check the search")
    expect(page.locator("#q-error")).to_contain_text("Type what to search for")
    assert get(site, "/search?q=").status_code == 422

    bad_filter = get(site, "/devices?licence=abc")
    assert (
        bad_filter.status_code == 422
        and "licence &#39;abc&#39;: give a whole number from 1" in bad_filter.text
    )
    missing = get(site, "/devices/0x000000000000000000000000000000000000dEaD")
    assert missing.status_code == 404 and "No device matches" in missing.text
    for path, words in (
        ("/licences/99", "There is no device licence “99” on record"),
        ("/licences/abc", "There is no device licence “abc” on record"),
        ("/manufacturers/7", "There is no manufacturer licence “7” on record"),
    ):
        answer = get(site, path)
        assert answer.status_code == 404, path
        assert words in answer.text, path


def test_manufacturer_licence_and_network_pages_show_the_numbers(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    programme = minted(site, tmp_path, 3, 2)
    page = site.page(browser)

    page.goto(f"/manufacturers/{programme.manufacturer_licence_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(SAMPLE_MANUFACTURER)
    expect(page.locator("#status")).to_have_text(
        f"Manufacturer licence {programme.manufacturer_licence_id}: active"
    )
    assert field(page, "Holder") == Cast.dev().manufacturer.address
    assert field(page, "Stake") == "100,000 tokens"
    assert field(page, "Devices minted") == "5"
    expect(page.locator("#decisions")).to_contain_text("Licence granted")
    expect(page.locator("#device-licences")).to_contain_text("AT-OBD-4G")
    expect(page.get_by_text("The case file this server holds has exactly that SHA-256.")).to_be_visible()
    root = get(site, f"/manufacturer-licences/{programme.manufacturer_licence_id}/root-certificate.pem")
    assert root.status_code == 200 and "BEGIN CERTIFICATE" in root.text
    shoot(page, "explorer-manufacturer")

    page.get_by_role("link", name=f"Device licence {programme.device_licence_id}").click()
    expect(page.locator("#status")).to_have_text(f"Device licence {programme.device_licence_id}: active")
    licence = read_device_licence(site.runtime.contracts, programme.device_licence_id)
    assert field(page, "Design hash") == "0x" + licence.design_hash.hex()
    assert field(page, "Hardware model") == "AT-OBD-4G"
    assert field(page, "Devices minted") == "5 devices"
    issue = page.locator("section.proposal").first
    expect(issue.get_by_role("heading")).to_have_text("Proposal 1: issue the licence (executed)")
    expect(issue.locator(".tally")).to_have_text("2 for, 0 against; quorum 2")
    for member in Cast.dev().members:
        expect(issue.locator(".votes")).to_contain_text(member.address)
    expect(page.locator("#firmware")).to_contain_text("1.0.0")
    expect(page.locator("#batches tbody tr")).to_have_count(2)
    expect(page.locator("#certifications")).to_contain_text("FCC")
    shoot(page, "explorer-licence")
    page.get_by_role("link", name="5 devices").click()
    expect(page.locator("#devices tbody tr")).to_have_count(5)
    for row in programme.rows:
        expect(page.locator("#devices")).to_contain_text(row["device_address"])

    page.goto("/network")
    expect(page.locator("#manufacturers")).to_have_text("1")
    expect(page.locator("#device-licences")).to_have_text("1")
    expect(page.locator("#devices-minted")).to_have_text("5")
    expect(page.locator("#batches")).to_have_text("2")
    chart = page.get_by_role("img", name="Devices minted per day")
    expect(chart).to_be_visible()
    per_day = minted_per_day_on_chain(site)
    assert sum(per_day.values()) == 5
    for day, count in per_day.items():
        expect(page.get_by_role("row", name=f"{day} {count}", exact=True)).to_be_visible()
    # The table has every day the chart draws (at least two weeks), the quiet ones as 0.
    rows = page.locator("#per-day tbody tr")
    expect(rows).to_have_count(14)
    assert sum(int(n) for n in rows.locator("td").all_inner_texts()) == 5
    expect(chart.locator("rect")).to_have_count(14)
    shoot(page, "explorer-network")


def test_read_pages_work_without_javascript(site: Site, browser: Browser, tmp_path: Path) -> None:
    programme = minted(site, tmp_path, 1)
    row = programme.rows[0]
    page = site.page(browser, java_script_enabled=False)
    search(page, row["serial_number"])
    page.wait_for_url(f"**/devices/{row['device_address']}")
    expect(page.locator("#standing")).to_have_text("Genuine, licensed and in good standing")
    page.get_by_role("link", name=f"Device licence {programme.device_licence_id}").first.click()
    expect(page.locator("#status")).to_have_text(f"Device licence {programme.device_licence_id}: active")
    page.get_by_role("link", name="Network", exact=True).click()
    expect(page.locator("#devices-minted")).to_have_text("1")


def test_the_device_page_fits_a_phone(site: Site, browser: Browser, tmp_path: Path) -> None:
    programme = minted(site, tmp_path, 1)
    page = site.page(browser, viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(f"/devices/{programme.rows[0]['serial_number']}")
    expect(page.locator("#standing")).to_have_text("Genuine, licensed and in good standing")
    widths = page.evaluate(
        "() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page is {widths[0]}px wide on a {widths[1]}px screen"
    shoot(page, "explorer-device-phone")
