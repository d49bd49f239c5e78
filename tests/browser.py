"""Render run reports in headless Chromium (Debian's package; `make test` installs it where it
can) and check that the page shows its plots: every image decodes in the browser, and a
screenshot of the report holds many more inked pixels than one of the page without its images."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no chromium: install Debian's chromium package")
# no network, no background services: the page must render from the file alone
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
IMG = re.compile(r"<img\b[^>]*>")
PROBE = ("<script>addEventListener('load', () => document.body.setAttribute('data-decoded', "
         "[...document.images].map(i => i.complete && i.naturalWidth > 0 ? 1 : 0).join('')));</script>")


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "chromium-profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=True)


def screenshot(page: Path, png: Path, tmp: Path, height: int = 6000) -> np.ndarray:
    """The page rendered 1200 px wide, as an RGB array."""
    from PIL import Image

    _chromium(tmp, f"--window-size=1200,{height}", f"--screenshot={png}", page.resolve().as_uri())
    return np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)


def inked_pixels(rgb: np.ndarray) -> int:
    """Pixels that are not (near) white: text, table rules, and every drawn plot or image."""
    return int((rgb.min(axis=2) < 235).sum())


def assert_report_shows_plots(report: Path, tmp: Path, *, images: int, text: list[str]) -> None:
    """The report embeds `images` pictures, Chromium decodes and draws each, and the page shows `text`."""
    page = report.read_text(encoding="utf-8")
    tags = IMG.findall(page)
    assert len(tags) == images, f"{len(tags)} images in {report}"
    assert all('src="data:image/' in t for t in tags), "images must be embedded to be viewable offline"
    assert "http://" not in page and "https://" not in page, "the report must not load anything from the network"
    # a copy of the page (the report itself has no scripts) that records, once loaded, which images decoded
    probe = tmp / "report_probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(tmp, "--dump-dom", probe.resolve().as_uri()).stdout
    decoded = re.search(r'data-decoded="([01]*)"', dom)
    assert decoded and decoded.group(1) == "1" * images, f"images decoded: {decoded and decoded.group(1)}"
    for phrase in text:
        assert phrase in dom, phrase
    if not images:
        return
    bare = tmp / "report_without_images.html"
    bare.write_text(IMG.sub("", page), encoding="utf-8")
    shown = inked_pixels(screenshot(report, tmp / "with.png", tmp))
    blank = inked_pixels(screenshot(bare, tmp / "without.png", tmp))
    assert shown > blank + 5000 * images, (shown, blank)


def check_report(report: Path, tmp: Path, *, images: int, text: list[str]) -> None:
    """assert_report_shows_plots where Chromium is installed; the page's own checks elsewhere."""
    if CHROMIUM is not None:
        assert_report_shows_plots(report, tmp, images=images, text=text)
        return
    page = report.read_text(encoding="utf-8")
    assert len(IMG.findall(page)) == images and all(phrase in page for phrase in text)
