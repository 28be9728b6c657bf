"""Browser tests: Debian's Chromium driven by Playwright against `devicemint serve`'s app (API,
portal and explorer, with the indexer and webhook dispatcher beside it) over a real anvil.

Chromium comes from the system (`make setup` installs the Debian package), never a download.
Screenshots of the pages the tests visit go to `build/screenshots/` (the README names it), or to
$DEVICEMINT_SCREENSHOTS.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from devicemint.api.server import Background, build_app
from devicemint.chain.node import LocalNode, free_port
from devicemint.cli.chain_commands import deploy
from devicemint.config import Settings
from devicemint.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("DEVICEMINT_SCREENSHOTS", ROOT / "build" / "screenshots"))

pytestmark = pytest.mark.browser


def chromium_path() -> str:
    found = (
        os.environ.get("DEVICEMINT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if found is None:
        pytest.fail("Chromium is not installed: run `make setup` (it installs Debian's chromium package)")
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
    yield browser
    browser.close()


@dataclass
class Site:
    """A served devicemint: its base URL, runtime and settings."""

    url: str
    runtime: Runtime
    settings: Settings

    def page(self, browser: Browser, **options: object) -> Page:
        context = browser.new_context(base_url=self.url, **options)  # type: ignore[arg-type]
        context.set_default_timeout(20_000)
        return context.new_page()


def shoot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under SCREENSHOTS/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot; the test ends it
        pass


def serve(settings: Settings) -> Iterator[Site]:
    """Run the app as `devicemint serve` does, on `settings.public_base_url`'s port, until the
    generator is closed."""
    runtime = Runtime.open(settings)
    app = build_app(settings, runtime)
    background = Background(runtime).start()
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the portal did not start within 30 s")
        time.sleep(0.05)
    try:
        yield Site(settings.public_base_url, runtime, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        background.stop()
        runtime.sessions.kw["bind"].dispose()


@pytest.fixture
def site(anvil_node: LocalNode, tmp_path: Path, chain_snapshot: None) -> Iterator[Site]:
    """A freshly deployed programme (no manufacturer yet), served; SQLite database."""
    port = free_port()
    settings = Settings(
        home=tmp_path / "home", node_port=anvil_node.port, public_base_url=f"http://127.0.0.1:{port}"
    )
    deploy(settings)
    yield from serve(settings)


def wait_for(check: object, *, timeout: float = 30.0) -> None:
    """Poll `check()` until it is truthy (the indexer runs beside the server)."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {check}")
        time.sleep(0.1)


def get(site: Site, path: str) -> httpx.Response:
    return httpx.get(site.url + path, timeout=30)
