"""Debian's chromium driven by Playwright for Python, for the web view's tests.

Never a browser Playwright downloads: ``/usr/bin/chromium`` (scripts/setup-test-env
installs it), a fresh profile per browser, no network beyond the page under test. A step
that fails writes a screenshot of every open page and logs where.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import BrowserContext, Page, Playwright

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(tempfile.gettempdir()) / "liqmon-web-shots"


def require_chromium() -> str:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `bash scripts/setup-test-env`, which "
                           "installs Debian's chromium package")
    return CHROMIUM


@asynccontextmanager
async def browser(pw: Playwright, width: int = 1400, height: int = 1000
                  ) -> AsyncIterator[BrowserContext]:
    """One chromium process with a fresh profile (its own user-data-dir)."""
    with tempfile.TemporaryDirectory(prefix="liqmon-chromium-") as profile:
        context = await pw.chromium.launch_persistent_context(
            profile, executable_path=require_chromium(), headless=True, args=ARGS,
            viewport={"width": width, "height": height})
        try:
            yield context
        finally:
            await context.close()


async def screenshot(pages: Sequence[Page], name: str) -> list[Path]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, page in enumerate(pages):
        path = SHOTS / f"{name}-{n}.png"
        try:
            await page.screenshot(path=str(path), full_page=True)
        except Exception as exc:  # a dead page must not hide the failure being reported
            log.error("no screenshot of page %d: %s", n, exc)
            continue
        paths.append(path)
    return paths


@asynccontextmanager
async def step(pages: Sequence[Page], name: str) -> AsyncIterator[None]:
    """A step of a browser test: when it fails, every page is photographed first."""
    try:
        yield
    except BaseException as exc:
        paths = await screenshot(pages, name)
        log.error("step %r failed; screenshots: %s", name, ", ".join(map(str, paths)))
        exc.add_note(f"screenshots of the failed step {name!r}: "
                     + ", ".join(map(str, paths)))
        raise
