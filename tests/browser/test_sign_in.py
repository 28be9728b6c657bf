"""Sign-In with Ethereum in a real browser: with the development wallet (local chain), and with
an injected EIP-1193 wallet whose key signs in the test process (as a browser extension would)."""

from __future__ import annotations

import json

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from playwright.sync_api import Browser, expect

from devicemint.chain import keys
from tests.browser.conftest import Site, get, shoot


def test_development_sign_in_reaches_the_portal_with_the_partys_roles(site: Site, browser: Browser) -> None:
    page = site.page(browser)
    page.goto("/sign-in")
    expect(page.get_by_role("note")).to_contain_text("Local development chain 31337")
    shoot(page, "sign-in")
    page.get_by_role("button", name="Foundation").click()
    page.wait_for_url("**/portal")
    foundation = keys.dev_account(int(keys.DevRole.FOUNDATION)).address
    expect(page.locator("main")).to_contain_text(foundation)
    expect(page.locator("main")).to_contain_text("foundation")
    expect(page.get_by_role("link", name="Foundation dashboard")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(site.url + "/")
    page.goto("/portal")
    page.wait_for_url("**/sign-in?next=/portal")


def test_an_injected_wallet_signs_the_eip4361_message(site: Site, browser: Browser) -> None:
    account = Account.create()
    signed: list[str] = []

    def personal_sign(hex_message: str) -> str:
        message = bytes.fromhex(hex_message.removeprefix("0x"))
        signed.append(message.decode())
        return account.sign_message(encode_defunct(primitive=message)).signature.to_0x_hex()

    page = site.page(browser)
    page.expose_function("walletSign", personal_sign)
    page.add_init_script(
        "window.ethereum = { request: async ({method, params}) => {"
        f" if (method === 'eth_requestAccounts') return [{json.dumps(account.address.lower())}];"
        " if (method === 'personal_sign') return await window.walletSign(params[0]);"
        " throw new Error('unsupported ' + method); } };"
    )
    page.goto("/sign-in?next=/portal")
    page.get_by_role("button", name="Sign in with your wallet").click()
    page.wait_for_url("**/portal")
    expect(page.locator("main")).to_contain_text(account.address)  # checksummed by the server
    assert signed and signed[0].startswith(f"127.0.0.1:{site.url.rsplit(':', 1)[1]} wants you to sign in")
    assert "Chain ID: 31337" in signed[0]


def test_a_refused_signature_is_shown_and_nothing_is_signed_in(site: Site, browser: Browser) -> None:
    other = Account.create()
    page = site.page(browser)
    page.expose_function(
        "walletSign",
        lambda hex_message: other.sign_message(
            encode_defunct(primitive=bytes.fromhex(hex_message[2:]))
        ).signature.to_0x_hex(),
    )
    page.add_init_script(
        "window.ethereum = { request: async ({method, params}) => {"
        f" if (method === 'eth_requestAccounts') return [{json.dumps(Account.create().address)}];"
        " return await window.walletSign(params[0]); } };"
    )
    page.goto("/sign-in")
    page.get_by_role("button", name="Sign in with your wallet").click()
    expect(page.locator("#sign-in-error")).to_contain_text("the signature is not by")
    assert page.url.endswith("/sign-in")


def test_the_development_wallet_refuses_other_accounts_and_open_redirects(site: Site) -> None:
    stranger = Account.create().address
    refused = httpx.post(
        site.url + "/dev-wallet", json={"address": stranger, "method": "eth_accounts"}, timeout=10
    )
    assert refused.status_code == 403, refused.text
    assert stranger in refused.json()["detail"]
    page = get(site, "/sign-in?next=//evil.example/")
    assert 'data-next="/portal"' in page.text and "evil.example" not in page.text
