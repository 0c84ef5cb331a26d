"""Debian's Chromium, headless and offline, through Playwright (never `playwright install`): the launch the browser
test and `report.py --screenshot` share, with scripts/tools/chromium.sh installing it where it is missing."""

import subprocess
from pathlib import Path

from scripts import core
from scripts.core import AloeError

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = core.ROOT / "scripts" / "tools" / "chromium.sh"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed with apt-get (scripts/tools/chromium.sh) when it is missing."""
    if not CHROMIUM.exists():
        p = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True)
        if p.returncode or not CHROMIUM.exists():
            raise AloeError(f"{INSTALL} could not install Chromium (exit {p.returncode}): {p.stderr.strip()[-800:]}")
    return CHROMIUM


def launch(playwright):
    """A headless Chromium browser."""
    return playwright.chromium.launch(executable_path=str(ensure_chromium()), args=ARGS)


def offline(page):
    """Abort every request that is not for a local file: the page must need nothing else."""
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())


def screenshot(html: Path, png: Path, width: int = 1400):
    """A full-page PNG of the report."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": width, "height": 900})
        offline(page)
        page.goto(Path(html).resolve().as_uri())
        Path(png).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png), full_page=True)
        browser.close()
