"""The manufacturer portal in a real browser: apply with the questionnaire, sign the MOU and stake
from the wallet, submit a design with its dossier, certification and videos, remediate a failed
audit, upload factory batches and watch them mint (and resume after a stop), and refusals of
every other role.

The development wallet signs as "Manufacturer (Acme Telematics)". What other parties do (the
foundation's checklist and countersignature, an auditor's audit) is done through the onboarding
domain in the set-up, as their own portals would.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, FilePayload, Page, expect

from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.cli.demo_command import onboard_sample_manufacturer
from devicemint.cli.device_commands import DEV_KEYSTORE_PASSPHRASE, release
from devicemint.devices.intake import chain_conflicts
from devicemint.devices.minting import Minter
from devicemint.devices.simulate import simulate_batch
from devicemint.licensing.registry import published_firmware, read_device_licence
from devicemint.onboarding.auditors import AuditScope
from devicemint.onboarding.cases import FOUNDATION, Actor
from devicemint.onboarding.checklist import Mark, load_checklist
from devicemint.onboarding.design import ChecklistMarkIn, HardwareAuditIn
from devicemint.onboarding.evidence import EvidenceKind
from devicemint.onboarding.manufacturer import MouSignature
from devicemint.onboarding.samples import sample_bom, sample_firmware, sample_mp4, sample_pdf
from devicemint.onboarding.service import Onboarding
from devicemint.onboarding.walkthrough import ANSWERS, STAKE, Walkthrough
from devicemint.web.manufacturer_batches import take_in
from tests.browser.conftest import Site, shoot

MANUFACTURER = "Manufacturer (Acme Telematics)"
PORTAL = "/portal/manufacturer"


def sign_in(site: Site, browser: Browser, party: str = MANUFACTURER, **options: object) -> Page:
    page = site.page(browser, **options)
    page.goto(f"/sign-in?next={PORTAL}")
    page.get_by_role("button", name=party, exact=True).click()
    page.wait_for_url(lambda url: urlsplit(url).path == PORTAL)
    return page


def foundation() -> Actor:
    return Actor(keys.dev_account(int(keys.DevRole.FOUNDATION)).address, frozenset({FOUNDATION}))


def manufacturer_address() -> str:
    return keys.dev_account(int(keys.DevRole.MANUFACTURER)).address


def upload(name: str, content: bytes, mime: str) -> FilePayload:
    return {"name": name, "mimeType": mime, "buffer": content}


def fill_questionnaire(page: Page, answers: dict[str, str]) -> None:
    for name, value in answers.items():
        page.fill(f"[name='{name}']", value)


GOOD = {
    "company_name": "Acme Telematics Ltd",
    "legal_entity_id": "GB-12345678",
    "jurisdiction": "GB",
    "website": "https://acme-telematics.example",
    "contacts.0.name": "Grace Hopper",
    "contacts.0.email": "grace@acme-telematics.example",
    "contacts.0.role": "Head of Hardware",
    "device.name": "AT-OBD-4G",
    "device.secure_element": "NXP SE050",
    "device.target_markets": "GB, DE, US",
    "device.expected_units_first_year": "50000",
}


def mou_signature(domain: Onboarding, case: int, account: LocalAccount, role: str, mou: str) -> MouSignature:
    nonce, deadline = time.time_ns(), int(time.time()) + 3600
    data = domain.manufacturers.mou_typed_data(
        case, mou_sha256=mou, signer=account.address, role=role, nonce=nonce, deadline=deadline
    )
    signature = Account.sign_message(encode_typed_data(full_message=data), account.key).signature
    return MouSignature(mou, nonce, deadline, signature.to_0x_hex())


def test_apply_sign_the_mou_and_stake_from_the_wallet(site: Site, browser: Browser) -> None:
    page = sign_in(site, browser)
    expect(page.locator("main")).to_contain_text("You have not applied yet")
    page.get_by_role("link", name="Apply: answer the intake questionnaire").click()

    # The questions come from the questionnaire's model, each with its label.
    expect(page.get_by_label("Company name")).to_be_visible()
    expect(page.get_by_label("Secure element")).to_be_visible()
    fill_questionnaire(
        page,
        {
            **GOOD,
            "jurisdiction": "Britain",
            "contacts.0.email": "grace-at-acme",
            "device.target_markets": "GB, de",
        },
    )
    page.select_option("[name='device.type']", "obd-dongle")
    page.check("input[name='device.connectivity'][value='lte-m']")
    page.check("input[name='device.connectivity'][value='bluetooth']")
    with page.expect_response(lambda r: r.url.endswith("/apply") and r.request.method == "POST") as sent:
        page.get_by_role("button", name="Submit the questionnaire").click()
    assert sent.value.status == 422
    expect(page.locator("#q-jurisdiction-error")).to_contain_text("'Britain' is not an ISO 3166-1 alpha-2")
    expect(page.locator("#q-contacts-0-email-error")).to_contain_text("email")
    expect(page.locator("#q-device-target_markets-error")).to_contain_text("'de' is not ISO 3166-1")
    expect(page.locator("#error-summary")).to_contain_text("3 problems")
    # What the person typed is kept, every kind of input.
    expect(page.locator("[name='jurisdiction']")).to_have_value("Britain")
    expect(page.locator("[name='company_name']")).to_have_value("Acme Telematics Ltd")
    expect(page.locator("[name='device.target_markets']")).to_have_value("GB, de")
    expect(page.locator("[name='device.type']")).to_have_value("obd-dongle")
    expect(page.locator("input[name='device.connectivity'][value='bluetooth']")).to_be_checked()
    expect(page.locator("[name='jurisdiction']")).to_have_attribute("aria-invalid", "true")
    shoot(page, "manufacturer-apply-errors")

    fill_questionnaire(
        page,
        {
            "jurisdiction": "GB",
            "contacts.0.email": GOOD["contacts.0.email"],
            "device.target_markets": "GB, DE",
        },
    )
    page.get_by_role("button", name="Submit the questionnaire").click()
    page.wait_for_url(f"**{PORTAL}/applications/*")
    case = int(page.url.rsplit("/", 1)[1])
    main = page.locator("main")
    expect(main).to_contain_text("Intake submitted")
    expect(page.locator("#missing")).to_contain_text("the foundation to issue the audit checklist")
    expect(page.locator("#missing tbody tr").first).to_contain_text("Issue the audit checklist")
    expect(page.locator("#timeline")).to_contain_text("submit intake")
    expect(page.locator("#timeline tbody tr").first).to_contain_text("you")

    # The foundation issues the checklist (its own portal's work); the MOU is then the applicant's.
    domain = Onboarding.open(site.runtime)
    domain.manufacturers.issue_checklist(foundation(), case)
    page.reload()
    expect(page.locator("#mou")).to_contain_text("First upload the MOU")
    mou_pdf = sample_pdf("MOU between the foundation and Acme Telematics Ltd")
    page.select_option("#evidence-kind", "mou")
    page.set_input_files("#evidence-file", files=[upload("mou.pdf", mou_pdf, "application/pdf")])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#evidence")).to_contain_text("mou.pdf")
    page.get_by_role("button", name="Sign the MOU with your wallet").click()
    expect(page.locator("main dl.fields").first).to_contain_text("MOU signed")
    expect(page.locator("#timeline")).to_contain_text("sign MOU")
    expect(page.locator("#missing")).to_contain_text("the foundation's countersignature on the MOU")

    # The foundation countersigns and funds the stake; the applicant stakes from its wallet.
    exported = domain.manufacturers.export(case)
    founder = keys.dev_account(int(keys.DevRole.FOUNDATION))
    domain.manufacturers.countersign_mou(
        foundation(), case, mou_signature(domain, case, founder, FOUNDATION, exported["mou_sha256"])
    )
    contracts = site.runtime.contracts
    TxSender(w3=site.runtime.w3, account=founder, chain_id=site.settings.chain_id).transact(
        contracts.staking_token.functions.mint(manufacturer_address(), STAKE), what="funding the stake"
    )
    page.reload()
    expect(page.locator("#stake")).to_contain_text("Stake 100,000 more tokens")
    page.get_by_role("button", name="Approve and stake with your wallet").click()
    expect(page.locator("main dl.fields").first).to_contain_text("Staked", timeout=60_000)
    assert int(contracts.manufacturer_license.functions.stakeOf(manufacturer_address()).call()) == STAKE
    expect(page.locator("#timeline")).to_contain_text("confirm stake")
    expect(page.locator("#missing tbody")).to_contain_text("Assign the hardware & security auditor")
    shoot(page, "manufacturer-application")

    # The read pages work without JavaScript (the session is the same).
    quiet = browser.new_context(
        base_url=site.url, java_script_enabled=False, storage_state=page.context.storage_state()
    ).new_page()
    quiet.goto(f"{PORTAL}/applications/{case}")
    expect(quiet.locator("#timeline")).to_contain_text("confirm stake")
    expect(quiet.locator("#missing")).to_contain_text("an approved hardware & security auditor's sign-off")
    quiet.goto(PORTAL)
    expect(quiet.locator("main")).to_contain_text(f"Application {case}")


def _audit(domain: Onboarding, case: int, failing: tuple[str, ...]) -> None:
    """The assigned hardware & security auditor's round (its own portal's work)."""
    auditor = keys.dev_account(int(keys.DevRole.AUDITOR))
    put = domain.evidence.put
    photos = put(
        io.BytesIO(sample_pdf(f"teardown {failing}")), kind=EvidenceKind.DOCUMENT, filename="teardown.pdf"
    )
    report = put(
        io.BytesIO(sample_pdf(f"audit {failing}")), kind=EvidenceKind.AUDIT_REPORT, filename="audit.pdf"
    )
    items = [
        ChecklistMarkIn(
            item_id=item.id,
            mark=Mark.FAIL if item.id in failing else Mark.PASS,
            evidence=[photos.sha256],
            note="OTA images are not signed" if item.id in failing else "",
        )
        for item in load_checklist().items
    ]
    domain.devices.record_hardware_audit(
        domain.actor(auditor.address, ()), case, HardwareAuditIn(items=items, report_sha256=report.sha256)
    )


def test_submit_a_design_with_its_dossier_certification_and_videos_then_remediate(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    Walkthrough(site.runtime, say=lambda _: None).manufacturer_licence()
    page = sign_in(site, browser)
    expect(page.locator("main")).to_contain_text("Manufacturer licence")
    expect(page.locator("main")).to_contain_text("Licensed")
    page.get_by_role("link", name="Submit a hardware design").click()

    page.fill("#model", "AT-OBD-5G")
    page.fill("#revision", "rev-A")
    schematics = upload("schematics.pdf", sample_pdf("AT-OBD-5G rev-A schematics"), "application/pdf")
    firmware = upload("firmware-2.0.0.bin", sample_firmware("AT-OBD-5G", "2.0.0"), "application/octet-stream")
    page.set_input_files("#file_schematic", files=[schematics])
    # A PDF where the bill of materials (CSV or XLSX) belongs: refused by the evidence store.
    page.set_input_files("#file_bom", files=[upload("bom.pdf", sample_pdf("not a BOM"), "application/pdf")])
    page.set_input_files("#file_firmware", files=[firmware])
    with page.expect_response(lambda r: r.url.endswith("/designs") and r.request.method == "POST") as sent:
        page.get_by_role("button", name="Submit the design").click()
    assert sent.value.status == 422
    expect(page.locator("#file_bom-error")).to_contain_text("bill of materials")
    expect(page.locator("#model")).to_have_value("AT-OBD-5G")
    expect(page.locator("#files")).to_contain_text("Already uploaded: schematics.pdf")
    expect(page.locator("#files")).to_contain_text("Already uploaded: firmware-2.0.0.bin")

    page.set_input_files("#file_bom", files=[upload("bom.csv", sample_bom("AT-OBD-5G"), "text/csv")])
    page.set_input_files(
        "#file_document",
        files=[upload("user-manual.pdf", sample_pdf("AT-OBD-5G user manual"), "application/pdf")],
    )
    page.get_by_role("button", name="Submit the design").click()
    page.wait_for_url(f"**{PORTAL}/devices/*")
    case = int(page.url.rsplit("/", 1)[1].split("#")[0])
    expect(page.locator("#dossier")).to_contain_text("schematics.pdf")
    expect(page.locator("#dossier")).to_contain_text("bom.csv")
    expect(page.locator("#dossier")).to_contain_text("user-manual.pdf")
    expect(page.locator("#missing tbody tr").first).to_contain_text("Add a current certification")

    page.select_option("#cert-scheme", "FCC")
    page.fill("#cert-identifier", "2AB3C-ATOBD5G")
    page.fill("#cert-issued", "2026-01-15")
    page.fill("#cert-expires", "2031-01-15")
    page.set_input_files(
        "#cert-document", files=[upload("fcc.pdf", sample_pdf("FCC grant 2AB3C-ATOBD5G"), "application/pdf")]
    )
    page.get_by_role("button", name="Add the certification").click()
    expect(page.locator("#certifications tbody")).to_contain_text("2AB3C-ATOBD5G")

    page.select_option("#video-step", "unboxing")
    page.set_input_files(
        "#video-file", files=[upload("unboxing.mp4", sample_mp4("AT-OBD-5G unboxing"), "video/mp4")]
    )
    page.get_by_role("button", name="Upload the video").click()
    expect(page.locator("#evidence")).to_contain_text("unboxing.mp4")
    expect(page.locator("#timeline")).to_contain_text("CX video: unboxing")

    page.get_by_role("button", name="Submit the design for audit").click()
    expect(page.locator("main dl.fields").first).to_contain_text("Hardware audit")
    expect(page.locator("#missing tbody tr").first).to_contain_text("Assign the hardware & security auditor")
    expect(page.locator("#missing tbody tr").first).to_contain_text("the foundation")
    shoot(page, "manufacturer-device-application")

    # The foundation assigns the auditor, whose first round fails one item.
    domain = Onboarding.open(site.runtime)
    auditor = keys.dev_account(int(keys.DevRole.AUDITOR)).address
    domain.devices.assign_auditor(foundation(), case, scope=AuditScope.HARDWARE_SECURITY, auditor=auditor)
    _audit(domain, case, failing=("ota.signed",))
    page.reload()
    expect(page.locator("main dl.fields").first).to_contain_text("Hardware remediation")
    expect(page.locator("#failed")).to_contain_text("OTA images are not signed")
    expect(page.locator("#missing tbody tr").first).to_contain_text(
        "Remediate the failed hardware & security audit"
    )
    page.fill("#remediation-note", "OTA images are now signed with the release key")
    page.set_input_files(
        "#remediation-evidence",
        files=[upload("ota-signing.pdf", sample_pdf("OTA signing in place"), "application/pdf")],
    )
    page.get_by_role("button", name="Submit the remediation").click()
    expect(page.locator("main dl.fields").first).to_contain_text("Hardware audit")
    expect(page.locator("#timeline")).to_contain_text("OTA images are now signed with the release key")


def _batch(site: Site, tmp_path: Path, licence: int, count: int, name: str) -> Path:
    out = tmp_path / name
    simulate_batch(
        count=count,
        out=out,
        keystore=tmp_path / f"{name}.keys.json",
        passphrase=DEV_KEYSTORE_PASSPHRASE,
        domain=site.runtime.domain,
        device_licence_id=licence,
        today=date.today(),
        firmware=release(site.runtime, licence, None),
    )
    return out


def _addresses(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["device_address"] for row in csv.DictReader(handle)]


def test_upload_a_factory_batch_see_its_row_errors_then_mint_one(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    _, licence = onboard_sample_manufacturer(site.runtime)
    good = _batch(site, tmp_path, licence, 12, "batch.csv")
    rows = good.read_text().splitlines()
    header = rows[0].split(",")
    broken = rows[2].split(",")
    imei = header.index("imei")
    broken[imei] = broken[imei][:-1] + str((int(broken[imei][-1]) + 1) % 10)  # a wrong Luhn check digit
    bad = tmp_path / "batch-bad.csv"
    bad.write_text("\n".join([rows[0], rows[1], ",".join(broken), *rows[3:]]) + "\n")

    page = sign_in(site, browser)
    page.get_by_role("link", name="Upload a factory batch").click()
    expect(page.locator("#batch-licence")).to_have_value(str(licence))
    page.set_input_files("#batch-file", str(bad))
    with page.expect_response(lambda r: r.url.endswith("/batches") and r.request.method == "POST") as sent:
        page.get_by_role("button", name="Validate and mint").click()
    assert sent.value.status == 422
    row = page.locator("#row-errors tbody tr").first
    expect(row).to_contain_text("3")
    expect(row).to_contain_text("imei")
    expect(row).to_contain_text("check digit")
    expect(page.locator("#batch-licence")).to_have_value(str(licence))
    shoot(page, "manufacturer-batch-errors")

    page.set_input_files("#batch-file", str(good))
    page.get_by_role("button", name="Validate and mint").click()
    page.wait_for_url(f"**{PORTAL}/batches/*")
    expect(page.locator("#batch-progress")).to_have_attribute("data-state", "done", timeout=90_000)
    expect(page.locator("#minted-count")).to_have_text("12 of 12")
    addresses = _addresses(good)
    expect(page.locator(f"#minted-devices a[href='/devices/{addresses[0]}']")).to_be_visible()
    assert chain_conflicts(site.runtime.contracts)(addresses) == set(addresses)

    # Reloaded without JavaScript, the page says the same.
    quiet = browser.new_context(
        base_url=site.url, java_script_enabled=False, storage_state=page.context.storage_state()
    ).new_page()
    quiet.goto(page.url)
    expect(quiet.locator("#minted-count")).to_have_text("12 of 12")

    # A firmware release published from the wallet, for the next batches to ship with.
    page.get_by_role("link", name="Device licence 1").first.click()
    page.fill("#fw-version", "1.1 beta!")
    page.fill("#fw-image", "ab" * 32)
    page.get_by_role("button", name="Publish with your wallet").click()
    expect(page.locator("#publish-error")).to_contain_text("Version: letters, digits")
    page.fill("#fw-version", "1.1.0")
    page.get_by_role("button", name="Publish with your wallet").click()
    expect(page.locator("#firmware tbody")).to_contain_text("1.1.0", timeout=30_000)
    assert "1.1.0" in published_firmware(site.runtime.contracts, licence)

    # The overview: the licensed application, both licences, the device application, the batch.
    page.get_by_role("link", name="Back to the manufacturer portal").click()
    expect(page.locator("main")).to_contain_text("nothing: the licence is granted")
    expect(page.locator("main")).to_contain_text(f"Device licence {licence}")
    expect(page.locator("main")).to_contain_text("AT-OBD-4G rev-C")
    expect(page.locator("main")).to_contain_text("12 of 12")
    shoot(page, "manufacturer-overview")


class Stop(Exception):
    """Stands for the server dying between two mint transactions."""


def stop_at(count: int) -> Callable[[int], None]:
    def check(minted: int) -> None:
        if minted >= count:
            raise Stop(f"stopped after {minted} devices")

    return check


def test_a_batch_stopped_mid_mint_shows_its_progress_and_resumes(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    _, licence = onboard_sample_manufacturer(site.runtime)
    path = _batch(site, tmp_path, licence, 20, "batch.csv")
    batch = take_in(site.runtime, path, licence).batch_id
    assert batch is not None
    holder = read_device_licence(site.runtime.contracts, licence).holder
    sender = TxSender(
        w3=site.runtime.w3,
        account=keys.dev_account(int(keys.DevRole.MANUFACTURER)),
        chain_id=site.settings.chain_id,
    )

    def mint_until(count: int) -> None:
        minter = Minter(
            sessions=site.runtime.sessions,
            contracts=site.runtime.contracts,
            sender=sender,
            chunk_size=5,
            max_in_flight=1,
        )
        with pytest.raises(Stop):
            minter.mint(batch, recipient=holder, on_progress=stop_at(count))

    mint_until(5)  # the first chunk, then the "server" dies
    page = sign_in(site, browser)
    page.goto(f"{PORTAL}/batches/{batch}")
    expect(page.locator("#minted-count")).to_have_text("5 of 20")
    expect(page.locator("#batch-progress")).to_have_attribute("data-state", "stopped")
    expect(page.get_by_role("button", name="Resume minting")).to_be_visible()
    shoot(page, "manufacturer-batch-progress")

    # Minted elsewhere (as `devicemint mint` re-run would), the open page follows by polling.
    mint_until(10)
    expect(page.locator("#minted-count")).to_have_text("10 of 20", timeout=10_000)

    page.get_by_role("button", name="Resume minting").click()
    expect(page.locator("#batch-progress")).to_have_attribute("data-state", "done", timeout=90_000)
    expect(page.locator("#minted-count")).to_have_text("20 of 20")
    shoot(page, "manufacturer-batch-done")
    addresses = _addresses(path)
    assert chain_conflicts(site.runtime.contracts)(addresses) == set(addresses)
    expect(page.locator("#minted-devices tbody tr")).to_have_count(20)


@pytest.mark.parametrize(
    "party",
    ["Foundation", "Hardware & security auditor (Prüfwerk AG)", "Committee member 1"],
)
def test_other_roles_are_refused_the_pages_and_the_posts(site: Site, browser: Browser, party: str) -> None:
    Onboarding.open(site.runtime).auditors.approve(
        foundation(),
        keys.dev_account(int(keys.DevRole.AUDITOR)).address,
        name="Prüfwerk AG",
        scopes=["hardware_security"],
    )
    page = sign_in(site, browser, party)
    expect(page.get_by_role("heading", level=1)).to_have_text("Only manufacturers act here")
    expect(page.locator("main")).to_contain_text("The manufacturer portal is for manufacturers")
    for path in (PORTAL, f"{PORTAL}/apply", f"{PORTAL}/batches"):
        assert page.request.get(path).status == 403, path
    posts = {
        f"{PORTAL}/apply": {"form": {"company_name": "Not a manufacturer"}},
        f"{PORTAL}/applications/1/stake-confirmation": {"form": {}},
        f"{PORTAL}/devices/1/submission": {"form": {}},
        f"{PORTAL}/batches": {
            "multipart": {"licence": "1", "file": {"name": "b.csv", "mimeType": "text/csv", "buffer": b"x"}}
        },
        f"{PORTAL}/batches/1/resume": {"form": {}},
    }
    for path, body in posts.items():
        answer = page.request.post(path, **body)  # type: ignore[arg-type]
        assert answer.status == 403, (path, answer.status)
        assert "Only manufacturers act here" in answer.text()
    # The wallet scripts' endpoints refuse them too, in JSON their error box shows.
    answer = page.request.post(f"{PORTAL}/applications/1/mou/typed-data", data={"mou_sha256": "ab" * 32})
    assert answer.status == 403
    assert "only a manufacturer" in answer.json()["detail"]


def test_a_manufacturer_sees_only_its_own_cases(site: Site, browser: Browser) -> None:
    case = Onboarding.open(site.runtime).manufacturers.submit_intake(Actor(manufacturer_address()), ANSWERS)
    page = sign_in(site, browser, "Device owner")
    expect(page.locator("main")).to_contain_text("You have not applied yet")
    page.goto(f"{PORTAL}/applications/{case}")
    expect(page.locator("main")).to_contain_text("is not a party to manufacturer application")
    assert page.request.get(f"{PORTAL}/applications/{case}").status == 403
    answer = page.request.post(f"{PORTAL}/applications/{case}/stake-confirmation", form={})
    assert answer.status == 403
    pdf = upload("notes.pdf", sample_pdf("not my case"), "application/pdf")
    answer = page.request.post(
        f"{PORTAL}/applications/{case}/evidence", multipart={"kind": "document", "file": pdf}
    )
    assert answer.status == 403
    assert "is not a party to manufacturer application" in answer.text()
    # Not licensed: its design is refused before any dossier file is stored.
    schematic = upload("schematics.pdf", sample_pdf("a design of someone unlicensed"), "application/pdf")
    answer = page.request.post(
        f"{PORTAL}/designs", multipart={"model": "X1", "revision": "a", "file_schematic": schematic}
    )
    assert answer.status == 403
    assert "holds no active manufacturer licence" in answer.text()
    assert not Onboarding.open(site.runtime).evidence.exists(hashlib.sha256(schematic["buffer"]).hexdigest())
    page.goto(f"{PORTAL}/batches/1")
    expect(page.locator("main")).to_contain_text("no factory batch 1")
