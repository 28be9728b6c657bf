"""The whole programme clicked through in a real browser, role by role (issue 6, item 4): the
foundation approves the auditors; a manufacturer applies, signs the MOU and stakes from its
wallet; an auditor signs it off and the foundation grants the manufacturer licence; its hardware
design is audited (hardware & security checklist, CX rubric), proposed and voted by the committee
into a Device License; the manufacturer publishes its firmware, uploads a factory batch and
watches it mint; anyone finds a device by its serial number and sees it genuine; the committee
revokes the licence on the foundation's proposal and the same search says "Not genuine" and why.

Each party has a browser context of its own, signed in with the development wallet. Two steps
are not portal actions and are done as an operator would: the foundation root CA is created
with `devicemint pki init-root` (a one-time ceremony, not a web page), and the manufacturer's
staking tokens are minted to it on the local chain (the test token has no faucet page). The
factory batch file comes from the factory simulator, as a factory's own tooling would make it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, FilePayload, Locator, Page, expect
from typer.testing import CliRunner

from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.cli.app import app
from devicemint.cli.device_commands import DEV_KEYSTORE_PASSPHRASE, release
from devicemint.devices.intake import chain_conflicts
from devicemint.devices.simulate import simulate_batch
from devicemint.licensing.registry import (
    DeviceLicenceStatus,
    ManufacturerStatus,
    read_device_licence,
    read_manufacturer_licence,
)
from devicemint.onboarding.checklist import load_checklist
from devicemint.onboarding.design import load_cx_rubric
from devicemint.onboarding.samples import sample_bom, sample_firmware, sample_mp4, sample_pdf
from devicemint.onboarding.walkthrough import FOUNDATION_NAME, SAMPLE_MANUFACTURER, STAKE
from tests.browser.conftest import Site, shoot

pytestmark = pytest.mark.slow

FOUNDATION = keys.dev_account(keys.DevRole.FOUNDATION)
MANUFACTURER = keys.dev_account(keys.DevRole.MANUFACTURER)
HW_AUDITOR = keys.dev_account(keys.DevRole.AUDITOR)
CX_AUDITOR = keys.dev_account(keys.DevRole.CX_AUDITOR)

MODEL, REVISION, FIRMWARE = "AT-OBD-4G", "rev-C", "1.0.0"
DEVICES = 6
REVOCATION_REASON = "secure element keys extractable through the debug port"
QUESTIONNAIRE = {
    "company_name": SAMPLE_MANUFACTURER,
    "legal_entity_id": "GB-12345678",
    "jurisdiction": "GB",
    "website": "https://acme-telematics.example",
    "contacts.0.name": "Grace Hopper",
    "contacts.0.email": "grace@acme-telematics.example",
    "contacts.0.role": "Head of Hardware",
    "device.name": MODEL,
    "device.secure_element": "NXP SE050",
    "device.target_markets": "GB, DE, US",
    "device.expected_units_first_year": "50000",
}
SEARCH = "Find a device by its 0x address, token id, serial number or IMEI"


# -- helpers ---------------------------------------------------------------------------------------


def signed_in(site: Site, browser: Browser, party: str, landing: str) -> Page:
    """A browser context of the party's own, signed in with the development wallet."""
    page = site.page(browser)
    page.goto(f"/sign-in?next={landing}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.get_by_role("button", name=party, exact=True).click()
    page.wait_for_url(lambda url: urlsplit(url).path == landing)
    return page


def submit(page: Page, button: str) -> int:
    """Click a form's submit button; the status of the POST's answer (before any redirect)."""
    with page.expect_navigation(), page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=button, exact=True).click()
    return answer.value.status


def payload(name: str, content: bytes, mime: str) -> FilePayload:
    return {"name": name, "mimeType": mime, "buffer": content}


def pdf(name: str, text: str) -> FilePayload:
    return payload(name, sample_pdf(text), "application/pdf")


def main(page: Page) -> Locator:
    return page.locator("main")


def reload_until(page: Page, selector: str, text: str | re.Pattern[str], *, timeout: float = 30.0) -> None:
    """Reload a read page until `selector` shows `text`: explorer pages read what the server's
    indexer has projected, a block or two behind the chain."""
    attempts = max(int(timeout), 1)
    for _ in range(attempts):
        try:
            expect(page.locator(selector)).to_have_text(text, timeout=1_000)
            return
        except AssertionError:
            page.reload()
    expect(page.locator(selector)).to_have_text(text, timeout=1_000)


def search_until(page: Page, query: str, standing: str, *, timeout: float = 30.0) -> None:
    """Search the explorer for `query` (typed in the search box) until the device page's standing
    reads `standing`."""
    for _ in range(max(int(timeout), 1)):
        page.goto("/")
        page.get_by_label(SEARCH).fill(query)
        with page.expect_navigation():
            page.get_by_role("button", name="Search").click()
        standing_now = page.locator("#standing")
        if standing_now.count() and standing_now.inner_text() == standing:
            return
        page.wait_for_timeout(1_000)
    expect(page.locator("#standing")).to_have_text(standing, timeout=1_000)


def field_value(page: Page, label: str) -> str:
    """The value shown for a labelled field of a definition list."""
    return page.locator(f'dt:text-is("{label}") + dd').first.inner_text()


@dataclass
class Run:
    """The served programme, a browser, and one signed-in tab per party as the story needs them."""

    site: Site
    browser: Browser
    workdir: Path
    tabs: dict[str, Page] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def tab(self, party: str, landing: str) -> Page:
        if party not in self.tabs:
            self.tabs[party] = signed_in(self.site, self.browser, party, landing)
        else:
            self.tabs[party].goto(landing)
        return self.tabs[party]

    @property
    def contracts(self) -> Any:
        return self.site.runtime.contracts


# -- the operator's part: the foundation root CA and the test staking token ------------------------


def foundation_root_ca(run: Run) -> None:
    """`devicemint pki init-root`: the foundation's one-time root CA ceremony, from the CLI."""
    settings = run.site.settings
    env = {
        "DEVICEMINT_HOME": str(settings.home),
        "DEVICEMINT_DATABASE_URL": settings.effective_database_url,
        "DEVICEMINT_NODE_PORT": str(settings.node_port),
    }
    done = CliRunner().invoke(app, ["pki", "init-root", "--organisation", FOUNDATION_NAME], env=env)
    assert done.exit_code == 0, done.output


def fund_the_stake(run: Run) -> None:
    """The local chain's staking token has no faucet page: the foundation mints the tokens."""
    runtime = run.site.runtime
    sender = TxSender(w3=runtime.w3, account=FOUNDATION, chain_id=run.site.settings.chain_id)
    sender.transact(run.contracts.staking_token.functions.mint(MANUFACTURER.address, STAKE), what="funding")


# -- 1. the foundation approves the auditors -------------------------------------------------------


def foundation_approves_the_auditors(run: Run) -> None:
    foundation = run.tab("Foundation", "/portal/foundation")
    foundation.get_by_role("link", name="Auditors").click()
    for auditor, name, scope in (
        (HW_AUDITOR, "Prüfwerk AG", "hardware_security"),
        (CX_AUDITOR, "Northwind UX Lab", "cx"),
    ):
        foundation.get_by_label("Address").fill(auditor.address)
        foundation.get_by_label("Name").fill(name)
        foundation.get_by_label(scope, exact=True).check()
        assert submit(foundation, "Approve the auditor") == 303
        expect(foundation.get_by_role("status")).to_contain_text("Auditor approved")
        expect(main(foundation)).to_contain_text(name)
    shoot(foundation, "whole-1-auditors-approved")


# -- 2. the manufacturer applies -------------------------------------------------------------------


def manufacturer_applies(run: Run) -> None:
    manufacturer = run.tab("Manufacturer (Acme Telematics)", "/portal/manufacturer")
    expect(main(manufacturer)).to_contain_text("You have not applied yet")
    manufacturer.get_by_role("link", name="Apply: answer the intake questionnaire").click()
    for name, value in QUESTIONNAIRE.items():
        manufacturer.fill(f"[name='{name}']", value)
    manufacturer.select_option("[name='device.type']", "obd-dongle")
    manufacturer.check("input[name='device.connectivity'][value='lte-m']")
    manufacturer.check("input[name='device.connectivity'][value='bluetooth']")
    manufacturer.get_by_role("button", name="Submit the questionnaire").click()
    manufacturer.wait_for_url("**/portal/manufacturer/applications/*")
    run.facts["application"] = int(manufacturer.url.rsplit("/", 1)[1].split("#")[0])
    expect(main(manufacturer)).to_contain_text("Intake submitted")
    expect(manufacturer.locator("#missing")).to_contain_text("the foundation to issue the audit checklist")
    shoot(manufacturer, "whole-2-applied")


# -- 3. to the manufacturer licence ----------------------------------------------------------------


def manufacturer_is_licensed(run: Run) -> None:
    application = run.facts["application"]
    case_link = f"{application}: {SAMPLE_MANUFACTURER}"

    # The foundation finds the case on its dashboard and issues the checklist.
    foundation = run.tab("Foundation", "/portal/foundation")
    expect(foundation.get_by_role("row", name="intake submitted")).to_contain_text(SAMPLE_MANUFACTURER)
    foundation.get_by_role("link", name=case_link).click()
    assert submit(foundation, "Issue the checklist") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Audit checklist issued")

    # The manufacturer uploads the MOU and signs it with its wallet (EIP-712).
    manufacturer = run.tabs["Manufacturer (Acme Telematics)"]
    manufacturer.reload()
    expect(manufacturer.locator("#mou")).to_contain_text("First upload the MOU")
    manufacturer.select_option("#evidence-kind", "mou")
    manufacturer.set_input_files(
        "#evidence-file", files=[pdf("mou.pdf", f"MOU between the foundation and {SAMPLE_MANUFACTURER}")]
    )
    manufacturer.get_by_role("button", name="Upload", exact=True).click()
    expect(manufacturer.locator("#evidence")).to_contain_text("mou.pdf")
    manufacturer.get_by_role("button", name="Sign the MOU with your wallet").click()
    expect(manufacturer.locator("main dl.fields").first).to_contain_text("MOU signed")
    expect(manufacturer.locator("#missing")).to_contain_text("the foundation's countersignature on the MOU")

    # The foundation countersigns it with its wallet: the stake comes after both signatures.
    foundation.reload()
    foundation.get_by_role("button", name="Countersign with your wallet").click()
    foundation.wait_for_url("**?done=countersigned", timeout=30_000)
    expect(main(foundation)).to_contain_text("mou countersigned")

    # The manufacturer stakes from its wallet (approve, stake) and the page confirms the stake.
    fund_the_stake(run)
    manufacturer.reload()
    expect(manufacturer.locator("#stake")).to_contain_text("Stake 100,000 more tokens")
    manufacturer.get_by_role("button", name="Approve and stake with your wallet").click()
    expect(manufacturer.locator("main dl.fields").first).to_contain_text("Staked", timeout=60_000)
    expect(manufacturer.locator("#timeline")).to_contain_text("confirm stake")
    assert int(run.contracts.manufacturer_license.functions.stakeOf(MANUFACTURER.address).call()) == STAKE
    shoot(manufacturer, "whole-3-mou-signed-and-staked")

    # The foundation assigns the hardware & security auditor.
    foundation.reload()
    foundation.get_by_label("Hardware & security auditor").select_option(HW_AUDITOR.address)
    assert submit(foundation, "Assign") == 303
    expect(main(foundation)).to_contain_text(HW_AUDITOR.address)

    # The auditor signs the manufacturer off with its report.
    auditor = run.tab("Hardware & security auditor (Prüfwerk AG)", "/portal/auditor")
    expect(auditor.get_by_role("row", name=f"Manufacturer application {application}")).to_contain_text(
        "Your sign-off is due"
    )
    auditor.get_by_role("link", name=f"Manufacturer application {application}").click()
    auditor.get_by_label("Audit report (PDF)").set_input_files(
        pdf("factory-audit.pdf", "factory and security audit: pass")
    )
    auditor.get_by_label("Note").fill("factory audit passed")
    assert submit(auditor, "Approve the manufacturer") == 303
    expect(auditor.get_by_role("status")).to_contain_text("Manufacturer signed off")

    # The foundation grants the manufacturer licence on chain.
    foundation.reload()
    assert submit(foundation, "Grant the licence") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Manufacturer licence granted")
    shoot(foundation, "whole-3-manufacturer-licensed")
    licence_id = int(run.contracts.manufacturer_license.functions.licenceIdOf(MANUFACTURER.address).call())
    assert licence_id >= 1
    assert read_manufacturer_licence(run.contracts, licence_id).status is ManufacturerStatus.ACTIVE
    run.facts["manufacturer_licence"] = licence_id


# -- 4. to the Device License ----------------------------------------------------------------------


def design_is_submitted(run: Run) -> None:
    manufacturer = run.tab("Manufacturer (Acme Telematics)", "/portal/manufacturer")
    expect(main(manufacturer)).to_contain_text("Licensed")
    manufacturer.get_by_role("link", name="Submit a hardware design").click()
    manufacturer.fill("#model", MODEL)
    manufacturer.fill("#revision", REVISION)
    firmware = sample_firmware(MODEL, FIRMWARE)
    run.facts["firmware_sha256"] = hashlib.sha256(firmware).hexdigest()
    manufacturer.set_input_files("#file_schematic", files=[pdf("schematics.pdf", f"{MODEL} schematics")])
    manufacturer.set_input_files("#file_bom", files=[payload("bom.csv", sample_bom(MODEL), "text/csv")])
    manufacturer.set_input_files(
        "#file_firmware", files=[payload(f"firmware-{FIRMWARE}.bin", firmware, "application/octet-stream")]
    )
    manufacturer.set_input_files("#file_document", files=[pdf("user-manual.pdf", f"{MODEL} user manual")])
    manufacturer.get_by_role("button", name="Submit the design").click()
    manufacturer.wait_for_url("**/portal/manufacturer/devices/*")
    run.facts["device_case"] = int(manufacturer.url.rsplit("/", 1)[1].split("#")[0])
    expect(manufacturer.locator("#dossier")).to_contain_text("schematics.pdf")
    run.facts["design_hash"] = field_value(manufacturer, "Design hash")

    manufacturer.select_option("#cert-scheme", "FCC")
    manufacturer.fill("#cert-identifier", "2AB3C-ATOBD4G")
    manufacturer.fill("#cert-issued", "2026-01-15")
    manufacturer.fill("#cert-expires", "2031-01-15")
    manufacturer.set_input_files("#cert-document", files=[pdf("fcc-grant.pdf", "FCC grant 2AB3C-ATOBD4G")])
    manufacturer.get_by_role("button", name="Add the certification").click()
    expect(manufacturer.locator("#certifications tbody")).to_contain_text("2AB3C-ATOBD4G")

    unboxing = sample_mp4(f"{MODEL} unboxing, filed by the manufacturer")
    run.facts["unboxing_video"] = unboxing
    manufacturer.select_option("#video-step", "unboxing")
    manufacturer.set_input_files("#video-file", files=[payload("unboxing.mp4", unboxing, "video/mp4")])
    manufacturer.get_by_role("button", name="Upload the video").click()
    expect(manufacturer.locator("#evidence")).to_contain_text("unboxing.mp4")

    manufacturer.get_by_role("button", name="Submit the design for audit").click()
    expect(manufacturer.locator("main dl.fields").first).to_contain_text("Hardware audit")
    expect(manufacturer.locator("#missing tbody tr").first).to_contain_text(
        "Assign the hardware & security auditor"
    )
    shoot(manufacturer, "whole-4-design-submitted")


def design_is_audited(run: Run) -> None:
    case = run.facts["device_case"]

    # The foundation opens the device case from its dashboard and assigns both auditors.
    foundation = run.tab("Foundation", "/portal/foundation")
    foundation.get_by_role("link", name=re.compile(rf"^{case}: {SAMPLE_MANUFACTURER} {MODEL}")).click()
    foundation.get_by_label("Hardware & security auditor to assign").select_option(HW_AUDITOR.address)
    assert submit(foundation, "Assign the hardware & security auditor") == 303
    foundation.get_by_label("CX auditor to assign").select_option(CX_AUDITOR.address)
    assert submit(foundation, "Assign the cx auditor") == 303
    expect(main(foundation)).to_contain_text("Northwind UX Lab")

    # The hardware & security auditor fills the checklist, evidence per item, and submits.
    auditor = run.tab("Hardware & security auditor (Prüfwerk AG)", "/portal/auditor")
    expect(auditor.get_by_role("row", name=f"Device application {case}")).to_contain_text("Your audit is due")
    auditor.get_by_role("link", name=f"Device application {case}").click()
    teardown = pdf("teardown.pdf", f"{MODEL} teardown photos and probe readings")
    for item in load_checklist().items:
        auditor.locator(f'input[name="mark:{item.id}"][value="pass"]').check()
        auditor.locator(f'input[name="file:{item.id}"]').set_input_files(teardown)
    auditor.get_by_label("Audit report (PDF)").set_input_files(pdf("hw-audit.pdf", "hardware audit: pass"))
    auditor.get_by_label("Summary").fill("Every checklist item passes.")
    shoot(auditor, "whole-4-hardware-checklist")
    assert submit(auditor, "Submit the audit report") == 303
    expect(auditor.get_by_role("status")).to_contain_text("the design passed")

    # The CX auditor takes the manufacturer's unboxing video from the case file, records the
    # other steps, scores the rubric and submits.
    cx = run.tab("CX auditor (Northwind UX Lab)", "/portal/auditor")
    cx.get_by_role("link", name=f"Device application {case}").click()
    with cx.expect_download() as download:
        cx.get_by_role("link", name="unboxing.mp4").first.click()
    filed = run.workdir / "unboxing.mp4"
    download.value.save_as(filed)
    assert filed.read_bytes() == run.facts["unboxing_video"]
    rubric = load_cx_rubric()
    for step in rubric.steps:
        video: FilePayload | Path = filed
        if step != "unboxing":
            video = payload(f"{step}.mp4", sample_mp4(f"{MODEL} {step}"), "video/mp4")
        cx.get_by_label(f"Video of the {step} step").set_input_files(video)
    for criterion in rubric.criteria:
        cx.locator(f'select[name="score:{criterion.id}"]').select_option("4")
    cx.get_by_label("CX report (PDF)").set_input_files(pdf("cx-report.pdf", "CX assessment: pass"))
    cx.get_by_label("Summary").fill("Unboxing to first data in 7 minutes.")
    shoot(cx, "whole-4-cx-rubric")
    assert submit(cx, "Submit the CX assessment") == 303
    expect(cx.get_by_role("status")).to_contain_text("CX assessment recorded: the design passed")


def committee_issues_the_device_license(run: Run) -> None:
    case = run.facts["device_case"]
    foundation = run.tab("Foundation", f"/portal/foundation/devices/{case}")
    assert submit(foundation, "Propose the Device License") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Proposal tabled on chain")

    for number, tally in ((1, "1 for · 0 against · quorum 2"), (2, "2 for · 0 against · quorum 2")):
        member = run.tab(f"Committee member {number}", "/portal/committee")
        member.get_by_role("link", name="vote now").click()
        expect(main(member)).to_contain_text("schematics.pdf")
        expect(main(member)).to_contain_text("its SHA-256 matches the proposal on chain")
        member.get_by_role("button", name="Vote for").click()
        expect(member.locator("#tally")).to_have_text(tally, timeout=30_000)
    expect(member.locator("#outcome")).to_contain_text(re.compile(r"Device licence \d+ issued"))
    shoot(member, "whole-4-committee-voted")

    # On chain: the licence is bound to the design the manufacturer submitted.
    design = bytes.fromhex(run.facts["design_hash"].removeprefix("0x"))
    licence_id = int(run.contracts.device_license.functions.licenceOfDesign(design).call())
    assert licence_id >= 1
    licence = read_device_licence(run.contracts, licence_id)
    assert licence.status is DeviceLicenceStatus.ACTIVE
    assert (licence.holder, licence.hardware_model, licence.hardware_revision) == (
        MANUFACTURER.address,
        MODEL,
        REVISION,
    )
    run.facts["device_licence"] = licence_id

    # On the explorer: anyone finds the licence from the home page, with the committee's votes.
    anyone = run.tab("anyone", "/")
    reload_until(anyone, f"a:text-is('Device licence {licence_id}')", f"Device licence {licence_id}")
    anyone.get_by_role("link", name=f"Device licence {licence_id}").first.click()
    reload_until(anyone, "#status", f"Device licence {licence_id}: active")
    issue = anyone.locator("section.proposal").first
    expect(issue.get_by_role("heading")).to_contain_text("issue the licence (executed)")
    expect(issue.locator(".tally")).to_have_text("2 for, 0 against; quorum 2")
    expect(anyone.locator("#certifications")).to_contain_text("FCC")
    shoot(anyone, "whole-4-explorer-licence")


# -- 5. a factory batch minted from the portal -----------------------------------------------------


def batch_is_minted(run: Run) -> None:
    licence_id = run.facts["device_licence"]
    manufacturer = run.tab("Manufacturer (Acme Telematics)", "/portal/manufacturer")

    # Devices ship only with a published firmware release: the licensed dossier's, from the wallet.
    manufacturer.get_by_role("link", name=f"Device licence {licence_id}").first.click()
    expect(manufacturer.locator("#fw-image-hint")).to_contain_text(run.facts["firmware_sha256"])
    manufacturer.fill("#fw-version", FIRMWARE)
    manufacturer.fill("#fw-image", run.facts["firmware_sha256"])
    manufacturer.get_by_role("button", name="Publish with your wallet").click()
    expect(manufacturer.locator("#firmware tbody")).to_contain_text(FIRMWARE, timeout=30_000)

    # The factory's tooling provisions the devices and writes the batch file.
    batch = run.workdir / "factory-batch.csv"
    simulate_batch(
        count=DEVICES,
        out=batch,
        keystore=run.workdir / "factory-batch.keys.json",
        passphrase=DEV_KEYSTORE_PASSPHRASE,
        domain=run.site.runtime.domain,
        device_licence_id=licence_id,
        today=date.today(),
        model="ATOBD4G",
        firmware=release(run.site.runtime, licence_id, FIRMWARE),
    )
    rows = batch.read_text().splitlines()
    header = rows[0].split(",")
    first = dict(zip(header, rows[1].split(","), strict=True))
    run.facts["device"] = first
    addresses = [dict(zip(header, r.split(","), strict=True))["device_address"] for r in rows[1:]]

    manufacturer.get_by_role("link", name="Upload a factory batch").click()
    expect(manufacturer.locator("#batch-licence")).to_have_value(str(licence_id))
    manufacturer.set_input_files("#batch-file", str(batch))
    manufacturer.get_by_role("button", name="Validate and mint").click()
    manufacturer.wait_for_url("**/portal/manufacturer/batches/*")
    shoot(manufacturer, "whole-5-batch-minting")
    expect(manufacturer.locator("#batch-progress")).to_have_attribute("data-state", "done", timeout=120_000)
    expect(manufacturer.locator("#minted-count")).to_have_text(f"{DEVICES} of {DEVICES}")
    expect(
        manufacturer.locator(f"#minted-devices a[href='/devices/{first['device_address']}']")
    ).to_be_visible()
    shoot(manufacturer, "whole-5-batch-minted")
    manufacturer.reload()
    assert re.fullmatch(r"\d+", field_value(manufacturer, "Batch on chain"))
    assert chain_conflicts(run.contracts)(addresses) == set(addresses)


# -- 6. genuine, then not genuine after the revocation ---------------------------------------------


def device_is_genuine_then_revoked(run: Run) -> None:
    licence_id = run.facts["device_licence"]
    device = run.facts["device"]

    # Anyone, not signed in, finds the device by its serial number.
    anyone = run.site.page(run.browser)
    search_until(anyone, device["serial_number"], "Genuine, licensed and in good standing")
    anyone.wait_for_url(f"**/devices/{device['device_address']}")
    expect(anyone.get_by_role("heading", level=1)).to_have_text(f"Device {device['serial_number']}")
    assert field_value(anyone, "IMEI") == device["imei"]
    assert field_value(anyone, "Device licence") == str(licence_id)
    assert anyone.get_by_role("link", name="Sign in").count() >= 1  # nobody is signed in here
    shoot(anyone, "whole-6-device-genuine")

    # The foundation tables the device licence's revocation; two committee members vote it through.
    foundation = run.tab("Foundation", "/portal/foundation")
    foundation.get_by_role("link", name="Licences", exact=True).click()
    foundation.get_by_role("link", name=f"Device licence {licence_id}").click()
    foundation.locator("#revoke-reason").fill(REVOCATION_REASON)
    foundation.locator("#revoke-confirm").fill(str(licence_id))
    assert submit(foundation, "Propose the revocation") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Revocation tabled on chain")
    shoot(foundation, "whole-6-revocation-proposed")
    for number in (1, 2):
        member = run.tab(f"Committee member {number}", "/portal/committee")
        member.get_by_role("link", name="vote now").click()
        expect(main(member)).to_contain_text(f"revoke device licence {licence_id}")
        expect(main(member)).to_contain_text(hashlib.sha256(REVOCATION_REASON.encode()).hexdigest())
        member.get_by_role("button", name="Vote for").click()
        expect(member.locator("#tally")).to_have_text(f"{number} for · 0 against · quorum 2", timeout=30_000)
    expect(member.locator("#outcome")).to_contain_text(f"Device licence {licence_id} revoked", timeout=30_000)
    assert read_device_licence(run.contracts, licence_id).status is DeviceLicenceStatus.REVOKED

    # The same search now says the device is not genuine, and why.
    search_until(anyone, device["serial_number"], "Not genuine")
    expect(anyone.locator("#reasons")).to_have_text(f"device licence {licence_id} is revoked")
    expect(anyone.locator("#checks tr", has_text="Device licence not revoked")).to_contain_text("fail")
    shoot(anyone, "whole-6-device-not-genuine")


# -- the whole programme ---------------------------------------------------------------------------


def test_the_whole_programme_clicked_role_by_role_to_a_minted_device_then_its_revocation(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    run = Run(site, browser, tmp_path)
    run.tabs["anyone"] = site.page(browser)
    foundation_root_ca(run)
    foundation_approves_the_auditors(run)
    manufacturer_applies(run)
    manufacturer_is_licensed(run)
    design_is_submitted(run)
    design_is_audited(run)
    committee_issues_the_device_license(run)
    batch_is_minted(run)
    device_is_genuine_then_revoked(run)
