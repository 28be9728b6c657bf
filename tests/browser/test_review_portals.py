"""The review portals in a real browser: the foundation, the auditors and the committee take a
manufacturer from intake to a Device License, role by role, then act on its licence.

The manufacturer's own part (questionnaire, MOU signature, stake, design dossier) is done through
the domain, exactly as the demo's walkthrough does it: its portal is tested elsewhere. Everything
the foundation, the auditors and the committee do is clicked here, and checked on chain.
"""

from __future__ import annotations

import hashlib
import io
import time
from datetime import date
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, Page, expect

from devicemint.chain import keys
from devicemint.chain.tx import TxSender
from devicemint.licensing import actions
from devicemint.licensing.registry import (
    DeviceLicenceStatus,
    ManufacturerStatus,
    read_device_licence,
    read_manufacturer_licence,
)
from devicemint.onboarding.cases import Actor
from devicemint.onboarding.checklist import load_checklist
from devicemint.onboarding.design import (
    CertificationIn,
    CertificationScheme,
    DesignSubmission,
    DossierFile,
    DossierRole,
    load_cx_rubric,
)
from devicemint.onboarding.evidence import EvidenceKind
from devicemint.onboarding.manufacturer import MouSignature
from devicemint.onboarding.samples import sample_bom, sample_firmware, sample_mp4, sample_pdf
from devicemint.onboarding.service import Onboarding
from devicemint.onboarding.walkthrough import ANSWERS, FOUNDATION_NAME, SAMPLE_MODEL, SAMPLE_REVISION, STAKE
from devicemint.pki.authority import Authority
from tests.browser.conftest import Site, shoot

FOUNDATION = keys.dev_account(keys.DevRole.FOUNDATION)
MANUFACTURER = keys.dev_account(keys.DevRole.MANUFACTURER)
HW_AUDITOR = keys.dev_account(keys.DevRole.AUDITOR)
CX_AUDITOR = keys.dev_account(keys.DevRole.CX_AUDITOR)
TREASURY = keys.dev_account(keys.DevRole.TREASURY)
TOKEN = 10**18


# -- the manufacturer's part, through the domain (as onboarding/walkthrough.py does it) ------------


def sender(site: Site, account: LocalAccount) -> TxSender:
    return TxSender(w3=site.runtime.w3, account=account, chain_id=site.settings.chain_id)


def upload(domain: Onboarding, kind: EvidenceKind, name: str, content: bytes) -> str:
    return domain.evidence.put(io.BytesIO(content), kind=kind, filename=name).sha256


def manufacturer_signs_mou(domain: Onboarding, case: int) -> str:
    mou = upload(domain, EvidenceKind.MOU, "mou.pdf", sample_pdf("MOU between the foundation and Acme"))
    nonce, deadline = time.time_ns(), int(time.time()) + 3600
    data = domain.manufacturers.mou_typed_data(
        case, mou_sha256=mou, signer=MANUFACTURER.address, role="manufacturer", nonce=nonce, deadline=deadline
    )
    signature = Account.sign_message(encode_typed_data(full_message=data), MANUFACTURER.key).signature
    domain.manufacturers.sign_mou(
        Actor(MANUFACTURER.address), case, MouSignature(mou, nonce, deadline, signature.to_0x_hex())
    )
    return mou


def manufacturer_stakes(site: Site) -> None:
    contracts = site.runtime.contracts
    sender(site, FOUNDATION).transact(
        contracts.staking_token.functions.mint(MANUFACTURER.address, STAKE), what="funding the stake"
    )
    actions.stake(contracts, sender(site, MANUFACTURER), STAKE)


def manufacturer_submits_design(domain: Onboarding) -> int:
    files = [
        DossierFile(
            name="schematics.pdf",
            role=DossierRole.SCHEMATIC,
            sha256=upload(domain, EvidenceKind.SCHEMATIC, "schematics.pdf", sample_pdf("schematics")),
        ),
        DossierFile(
            name="bom.csv",
            role=DossierRole.BOM,
            sha256=upload(domain, EvidenceKind.BOM, "bom.csv", sample_bom(SAMPLE_MODEL)),
        ),
        DossierFile(
            name="firmware-1.0.0.bin",
            role=DossierRole.FIRMWARE,
            sha256=upload(
                domain, EvidenceKind.FIRMWARE, "firmware-1.0.0.bin", sample_firmware(SAMPLE_MODEL, "1.0.0")
            ),
        ),
    ]
    me = Actor(MANUFACTURER.address)
    case = domain.devices.submit(
        me, DesignSubmission(model=SAMPLE_MODEL, revision=SAMPLE_REVISION, files=files)
    )
    fcc = upload(domain, EvidenceKind.CERTIFICATION, "fcc-grant.pdf", sample_pdf("FCC grant 2AB3C-AT"))
    domain.devices.add_certification(
        me,
        case,
        CertificationIn(
            scheme=CertificationScheme.FCC,
            identifier="2AB3C-AT-OBD-4G",
            issued_on=date(2026, 1, 1),
            expires_on=date(2031, 1, 1),
            document_sha256=fcc,
        ),
    )
    domain.devices.submit_for_audit(me, case)
    return case


# -- browser helpers ---------------------------------------------------------------------------------


def signed_in(site: Site, browser: Browser, party: str, landing: str, **options: Any) -> Page:
    """A browser tab of its own, signed in with the development wallet as `party`."""
    page = site.page(browser, **options)
    page.goto(f"/sign-in?next={landing}")
    page.get_by_role("button", name=party, exact=True).click()
    page.wait_for_url(site.url + landing)
    return page


def submit(page: Page, button: str) -> int:
    """Click a form's submit button; the status of the POST's answer (before any redirect)."""
    with page.expect_navigation(), page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=button, exact=True).click()
    return answer.value.status


def pdf(text: str) -> dict[str, Any]:
    return {"name": f"{text[:20]}.pdf", "mimeType": "application/pdf", "buffer": sample_pdf(text)}


def main(page: Page) -> Any:
    return page.locator("main")


# -- the whole review, clicked -------------------------------------------------------------------------


def test_foundation_auditors_and_committee_take_a_manufacturer_to_a_device_license(
    site: Site, browser: Browser
) -> None:
    domain = Onboarding.open(site.runtime)
    contracts = site.runtime.contracts
    Authority.of(site.settings, site.runtime.sessions).create_foundation_root(FOUNDATION_NAME)
    foundation = signed_in(site, browser, "Foundation", "/portal/foundation")

    # The foundation approves the auditors; a form missing its scopes keeps what was typed.
    foundation.get_by_role("link", name="Auditors").click()
    foundation.get_by_label("Address").fill(HW_AUDITOR.address)
    foundation.get_by_label("Name").fill("Prüfwerk AG")
    assert submit(foundation, "Approve the auditor") == 422
    expect(main(foundation)).to_contain_text("scopes: choose at least one scope")
    expect(foundation.get_by_label("Address")).to_have_value(HW_AUDITOR.address)
    expect(foundation.get_by_label("Name")).to_have_value("Prüfwerk AG")
    foundation.get_by_label("hardware_security").check()
    assert submit(foundation, "Approve the auditor") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Auditor approved")
    # The second one with the keyboard only: fields, checkboxes and the button in reading order.
    foundation.get_by_label("Address").focus()
    foundation.keyboard.type(CX_AUDITOR.address)
    foundation.keyboard.press("Tab")
    foundation.keyboard.type("Northwind UX Lab")
    foundation.keyboard.press("Tab")  # hardware_security
    foundation.keyboard.press("Tab")  # cx
    foundation.keyboard.press("Space")
    foundation.keyboard.press("Tab")  # integration
    foundation.keyboard.press("Tab")  # the button
    with foundation.expect_navigation():
        foundation.keyboard.press("Enter")
    expect(main(foundation)).to_contain_text("Northwind UX Lab")
    assert domain.auditors.scopes_of(CX_AUDITOR.address) == {"cx"}

    # A manufacturer applies; the dashboard shows the case by stage; the foundation issues the checklist.
    application = domain.manufacturers.submit_intake(Actor(MANUFACTURER.address), ANSWERS)
    foundation.get_by_role("link", name="Cases").click()
    expect(foundation.get_by_role("row", name="intake submitted")).to_contain_text("Acme Telematics Ltd")
    shoot(foundation, "foundation-dashboard")
    foundation.get_by_role("link", name=f"{application}: Acme Telematics Ltd").click()
    assert submit(foundation, "Issue the checklist") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Audit checklist issued")

    # The manufacturer signs the MOU; the foundation countersigns it with its wallet (EIP-712).
    manufacturer_signs_mou(domain, application)
    foundation.reload()
    foundation.get_by_role("button", name="Countersign with your wallet").click()
    foundation.wait_for_url("**?done=countersigned", timeout=30_000)
    assert domain.manufacturers.export(application)["stage"] == "mou_countersigned"

    # The stake is on chain; the foundation confirms it and assigns the auditor.
    manufacturer_stakes(site)
    assert submit(foundation, "Check the stake on chain") == 303
    foundation.get_by_label("Hardware & security auditor").select_option(HW_AUDITOR.address)
    assert submit(foundation, "Assign") == 303
    expect(main(foundation)).to_contain_text(HW_AUDITOR.address)
    shoot(foundation, "foundation-case")

    # The auditor signs the manufacturer off with its report, having downloaded the MOU.
    auditor = signed_in(site, browser, "Hardware & security auditor (Prüfwerk AG)", "/portal/auditor")
    expect(auditor.get_by_role("row", name=f"Manufacturer application {application}")).to_contain_text(
        "Your sign-off is due"
    )
    auditor.get_by_role("link", name=f"Manufacturer application {application}").click()
    with auditor.expect_download() as download:
        auditor.get_by_role("link", name="mou.pdf").first.click()
    mou = domain.manufacturers.export(application)["mou_sha256"]
    assert hashlib.sha256(download.value.path().read_bytes()).hexdigest() == mou
    auditor.get_by_label("Audit report (PDF)").set_input_files(pdf("factory and security audit: pass"))
    auditor.get_by_label("Note").fill("factory audit passed")
    assert submit(auditor, "Approve the manufacturer") == 303
    expect(auditor.get_by_role("status")).to_contain_text("Manufacturer signed off")

    # The foundation grants the manufacturer licence on chain.
    foundation.reload()
    assert submit(foundation, "Grant the licence") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Manufacturer licence granted")
    licence_id = int(contracts.manufacturer_license.functions.licenceIdOf(MANUFACTURER.address).call())
    assert licence_id == 1
    assert read_manufacturer_licence(contracts, licence_id).status is ManufacturerStatus.ACTIVE

    # A design is submitted; the foundation assigns both auditors.
    case = manufacturer_submits_design(domain)
    foundation.goto(f"/portal/foundation/devices/{case}")
    foundation.get_by_label("Hardware & security auditor to assign").select_option(HW_AUDITOR.address)
    assert submit(foundation, "Assign the hardware & security auditor") == 303
    foundation.get_by_label("CX auditor to assign").select_option(CX_AUDITOR.address)
    assert submit(foundation, "Assign the cx auditor") == 303
    exported = domain.devices.export(case)
    assert (exported["hardware_auditor"], exported["cx_auditor"]) == (HW_AUDITOR.address, CX_AUDITOR.address)

    # The auditor's checklist: first incomplete (errors per item, input kept), then complete.
    auditor.goto("/portal/auditor")
    expect(auditor.get_by_role("row", name=f"Device application {case}")).to_contain_text("Your audit is due")
    shoot(auditor, "auditor-queue")
    auditor.get_by_role("link", name=f"Device application {case}").click()
    teardown = pdf("teardown photos and probe readings")
    items = load_checklist().items
    for item in items:
        if item.id == "memory.wear":
            auditor.locator(f'textarea[name="note:{item.id}"]').fill("storage is sized for 15 years")
            continue  # left unmarked
        auditor.locator(f'input[name="mark:{item.id}"][value="pass"]').check()
        if item.id != "factory.provisioning":  # marked pass without evidence
            auditor.locator(f'input[name="file:{item.id}"]').set_input_files(teardown)
    auditor.get_by_label("Audit report (PDF)").set_input_files(pdf("hardware & security audit: pass"))
    auditor.get_by_label("Summary").fill("All items pass after review.")
    assert submit(auditor, "Submit the audit report") == 422
    errors = auditor.get_by_role("alert")
    expect(errors).to_contain_text("item memory.wear is not marked: choose pass, fail or n.a.")
    expect(errors).to_contain_text("item factory.provisioning is marked pass without evidence")
    expect(auditor.locator('textarea[name="note:memory.wear"]')).to_have_value(
        "storage is sized for 15 years"
    )
    expect(auditor.locator('input[name="mark:chip.inventory"][value="pass"]')).to_be_checked()
    teardown_sha = hashlib.sha256(teardown["buffer"]).hexdigest()
    expect(auditor.locator('textarea[name="evidence:chip.inventory"]')).to_have_value(teardown_sha)
    expect(auditor.get_by_label("Summary")).to_have_value("All items pass after review.")
    expect(auditor.locator("#report_sha256")).to_have_value(
        hashlib.sha256(sample_pdf("hardware & security audit: pass")).hexdigest()
    )
    shoot(auditor, "auditor-checklist-errors")
    auditor.locator('input[name="mark:memory.wear"][value="n.a."]').check()
    auditor.locator('textarea[name="evidence:factory.provisioning"]').fill(teardown_sha)
    assert submit(auditor, "Submit the audit report") == 303
    expect(auditor.get_by_role("status")).to_contain_text("the design passed")
    assert domain.devices.export(case)["stage"] == "cx_assessment"

    # The CX auditor scores the rubric with a video of every step.
    cx = signed_in(site, browser, "CX auditor (Northwind UX Lab)", "/portal/auditor")
    cx.get_by_role("link", name=f"Device application {case}").click()
    rubric = load_cx_rubric()
    for step in rubric.steps:
        cx.get_by_label(f"Video of the {step} step").set_input_files(
            {"name": f"{step}.mp4", "mimeType": "video/mp4", "buffer": sample_mp4(f"{SAMPLE_MODEL} {step}")}
        )
    for criterion in rubric.criteria:
        cx.locator(f'select[name="score:{criterion.id}"]').select_option("4")
    cx.get_by_label("CX report (PDF)").set_input_files(pdf("CX assessment: pass"))
    cx.get_by_label("Summary").fill("Unboxing to first data in 7 minutes.")
    shoot(cx, "auditor-cx-rubric")
    assert submit(cx, "Submit the CX assessment") == 303
    expect(cx.get_by_role("status")).to_contain_text("CX assessment recorded: the design passed")

    # The foundation proposes the Device License to the committee.
    foundation.reload()
    assert submit(foundation, "Propose the Device License") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Proposal tabled on chain")
    proposal = domain.devices.export(case)["proposal_id"]

    # Committee members vote from their wallets; the tally updates; quorum issues the licence.
    member = signed_in(site, browser, "Committee member 1", "/portal/committee")
    expect(member.get_by_role("row", name=f"Proposal {proposal}")).to_contain_text(
        "0 for, 0 against; quorum 2"
    )
    shoot(member, "committee-proposals")
    member.get_by_role("link", name=f"Proposal {proposal}").click()
    expect(main(member)).to_contain_text("schematics.pdf")
    expect(main(member)).to_contain_text("its SHA-256 matches the proposal on chain")
    member.get_by_role("button", name="Vote for").click()
    expect(member.locator("#tally")).to_have_text("1 for · 0 against · quorum 2", timeout=30_000)
    expect(main(member)).to_contain_text("You voted for")

    # An auditor may neither see the proposals nor record a vote.
    refused = auditor.goto(f"/portal/committee/proposals/{proposal}")
    assert refused is not None and refused.status == 403
    expect(main(auditor)).to_contain_text("Only committee members")
    vote = auditor.request.post(
        f"{site.url}/portal/committee/proposals/{proposal}/votes", data={"tx_hash": "0x" + "ab" * 32}
    )
    assert vote.status == 403, vote.text()

    second = signed_in(site, browser, "Committee member 2", f"/portal/committee/proposals/{proposal}")
    second.get_by_role("button", name="Vote for").click()
    expect(second.locator("#tally")).to_have_text("2 for · 0 against · quorum 2", timeout=30_000)
    expect(second.locator("#outcome")).to_contain_text("Device licence 1 issued")
    shoot(second, "committee-tally")
    device_licence = int(
        contracts.device_license.functions.licenceOfDesign(bytes.fromhex(exported["design_hash"])).call()
    )
    assert device_licence == 1
    assert domain.devices.export(case)["stage"] == "licensed"

    # The proposal page reads without JavaScript (same session, scripts off), on a phone's screen.
    reader = site.page(browser, java_script_enabled=False, viewport={"width": 390, "height": 844})
    reader.context.add_cookies(second.context.cookies())
    reader.goto(f"/portal/committee/proposals/{proposal}")
    expect(reader.locator("#tally")).to_have_text("2 for · 0 against · quorum 2")
    expect(reader.get_by_role("link", name="fcc-grant.pdf").first).to_be_visible()
    assert reader.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # Licence actions: suspend, reinstate, slash (confirmed), revoke for cause; each on chain.
    foundation.goto("/portal/foundation/licences")
    foundation.get_by_role("link", name=f"Manufacturer licence {licence_id}").click()
    foundation.locator("#suspension-reason").fill("QA records missing for batch 3")
    assert submit(foundation, "Suspend the licence") == 303
    expect(foundation.locator("#licence-status")).to_have_text("suspended")
    assert read_manufacturer_licence(contracts, licence_id).status is ManufacturerStatus.SUSPENDED
    assert submit(foundation, "Reinstate the licence") == 303
    expect(foundation.locator("#licence-status")).to_have_text("active")
    assert read_manufacturer_licence(contracts, licence_id).status is ManufacturerStatus.ACTIVE

    treasury_before = int(contracts.staking_token.functions.balanceOf(TREASURY.address).call())
    foundation.get_by_label("Amount (tokens)").fill("1000")
    foundation.locator("#slash-reason").fill("cloned devices found in the field")
    foundation.locator("#slash-confirm").fill("2")
    assert submit(foundation, "Slash the stake") == 422
    expect(main(foundation)).to_contain_text(f"confirm: type the licence id {licence_id}")
    expect(foundation.get_by_label("Amount (tokens)")).to_have_value("1000")
    expect(foundation.locator("#slash-reason")).to_have_value("cloned devices found in the field")
    shoot(foundation, "foundation-licence-actions")
    foundation.locator("#slash-confirm").fill(str(licence_id))
    assert submit(foundation, "Slash the stake") == 303
    stake = int(contracts.manufacturer_license.functions.stakeOf(MANUFACTURER.address).call())
    assert stake == STAKE - 1000 * TOKEN
    treasury_after = int(contracts.staking_token.functions.balanceOf(TREASURY.address).call())
    assert treasury_after - treasury_before == 1000 * TOKEN
    # Below the minimum stake the contract suspends the licence itself.
    expect(foundation.locator("#licence-status")).to_have_text("suspended")

    foundation.locator("#revocation-reason").fill("cloned devices: keys extracted at the factory")
    foundation.locator("#revocation-confirm").fill(str(licence_id))
    assert submit(foundation, "Revoke the licence") == 303
    expect(foundation.locator("#licence-status")).to_have_text("revoked")
    revoked = read_manufacturer_licence(contracts, licence_id)
    assert revoked.status is ManufacturerStatus.REVOKED
    assert revoked.reason_hash == hashlib.sha256(b"cloned devices: keys extracted at the factory").digest()
    expect(main(foundation)).to_contain_text("slashed")

    # A device licence is revoked only by the committee's vote, on the foundation's proposal.
    foundation.goto(f"/portal/foundation/licences/device/{device_licence}")
    foundation.locator("#revoke-reason").fill("the design's keys can be extracted")
    assert submit(foundation, "Propose the revocation") == 422
    expect(main(foundation)).to_contain_text(f"confirm: type the licence id {device_licence}")
    expect(foundation.locator("#revoke-reason")).to_have_value("the design's keys can be extracted")
    foundation.locator("#revoke-confirm").fill(str(device_licence))
    assert submit(foundation, "Propose the revocation") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Revocation tabled on chain")
    revocation = int(contracts.device_license.functions.proposalCount().call())
    member.goto("/portal/committee")
    member.get_by_role("link", name=f"Proposal {revocation}").click()
    expect(main(member)).to_contain_text(f"revoke device licence {device_licence}")
    expect(main(member)).to_contain_text(hashlib.sha256(b"the design's keys can be extracted").hexdigest())
    member.get_by_role("button", name="Vote for").click()
    expect(member.locator("#tally")).to_have_text("1 for · 0 against · quorum 2", timeout=30_000)
    second.goto(f"/portal/committee/proposals/{revocation}")
    second.get_by_role("button", name="Vote for").click()
    expect(second.locator("#outcome")).to_contain_text(
        f"Device licence {device_licence} revoked", timeout=30_000
    )
    assert read_device_licence(contracts, device_licence).status is DeviceLicenceStatus.REVOKED


# -- refusals -----------------------------------------------------------------------------------------


def test_other_roles_are_refused_on_every_portal_page_and_action(site: Site, browser: Browser) -> None:
    manufacturer = signed_in(site, browser, "Manufacturer (Acme Telematics)", "/portal")
    for path in ("/portal/foundation", "/portal/foundation/licences", "/portal/auditor", "/portal/committee"):
        answer = manufacturer.goto(path)
        assert answer is not None and answer.status == 403, path
        expect(manufacturer.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(main(manufacturer)).to_contain_text("Only committee members")
    posted = manufacturer.request.post(
        f"{site.url}/portal/foundation/auditors",
        form={"address": MANUFACTURER.address, "name": "Me", "scopes": "hardware_security"},
    )
    assert posted.status == 403 and "Only the foundation" in posted.text()
    assert Onboarding.open(site.runtime).auditors.scopes_of(MANUFACTURER.address) == frozenset()

    member = signed_in(site, browser, "Committee member 1", "/portal/committee")
    answer = member.goto("/portal/foundation/committee")
    assert answer is not None and answer.status == 403
    posted = member.request.post(f"{site.url}/portal/foundation/committee/quorum", form={"quorum": "1"})
    assert posted.status == 403
    assert int(site.runtime.contracts.device_license.functions.quorum().call()) == 2
    posted = member.request.post(f"{site.url}/portal/auditor/manufacturers/1/approval", form={"note": "x"})
    assert posted.status == 403 and "Only approved auditors" in posted.text()

    anonymous = site.page(browser)
    anonymous.goto("/portal/foundation")
    anonymous.wait_for_url("**/sign-in?next=/portal/foundation")


def test_the_foundation_manages_the_committee_on_chain_and_removes_auditors(
    site: Site, browser: Browser
) -> None:
    contracts = site.runtime.contracts
    functions = contracts.device_license.functions
    newcomer = Account.create().address
    foundation = signed_in(site, browser, "Foundation", "/portal/foundation/committee")
    expect(main(foundation)).to_contain_text("3 members, quorum 2")

    foundation.get_by_label("Member address").fill(newcomer)
    assert submit(foundation, "Seat the member") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Committee member seated")
    assert functions.isCommitteeMember(newcomer).call()

    # The contract refuses to leave fewer members than the quorum: the refusal is shown.
    foundation.get_by_label("Yes votes a new proposal needs").fill("4")
    assert submit(foundation, "Set the quorum") == 303
    assert int(functions.quorum().call()) == 4
    assert submit(foundation, f"Unseat {newcomer}") == 409
    expect(foundation.get_by_role("alert").first).to_contain_text("InvalidQuorum")
    assert functions.isCommitteeMember(newcomer).call()
    foundation.get_by_label("Yes votes a new proposal needs").fill("3")
    assert submit(foundation, "Set the quorum") == 303
    assert submit(foundation, f"Unseat {newcomer}") == 303
    assert not functions.isCommitteeMember(newcomer).call()
    expect(main(foundation)).to_contain_text("3 members, quorum 3")

    # Auditors: approved, then removed (the address loses the auditor's portal).
    foundation.goto("/portal/foundation/auditors")
    foundation.get_by_label("Address").fill(HW_AUDITOR.address)
    foundation.get_by_label("Name").fill("Prüfwerk AG")
    foundation.get_by_label("hardware_security").check()
    foundation.get_by_label("integration").check()
    assert submit(foundation, "Approve the auditor") == 303
    auditor = signed_in(site, browser, "Hardware & security auditor (Prüfwerk AG)", "/portal/auditor")
    expect(main(auditor)).to_contain_text("hardware_security, integration")
    assert submit(foundation, "Remove Prüfwerk AG") == 303
    expect(foundation.get_by_role("status")).to_contain_text("Auditor removed")
    answer = auditor.goto("/portal/auditor")
    assert answer is not None and answer.status == 403
