"""A real browser for the HTML syncd gives people: Debian's headless Chromium prints a page to
PDF (``pdfinfo`` counts its pages) or takes a screenshot (Pillow counts its colours)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    return found


def _run(args: list[str], page: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="syncd-chromium-") as profile:
        subprocess.run(
            [
                _chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )


def pdf_pages(page: Path, out: Path) -> int:
    """Print ``page`` to ``out`` (PDF) as a person would with Ctrl+P; its page count."""
    if shutil.which("pdfinfo") is None:
        pytest.skip("poppler-utils (pdfinfo) is not installed (make test installs it)")
    _run(["--no-pdf-header-footer", f"--print-to-pdf={out}"], page)
    info = subprocess.run(["pdfinfo", str(out)], check=True, capture_output=True, text=True)
    found = re.search(r"^Pages:\s+(\d+)", info.stdout, re.MULTILINE)
    assert found, info.stdout
    return int(found.group(1))


def screenshot_colours(page: Path, out: Path) -> int:
    """Screenshot ``page`` into ``out`` (PNG); the number of distinct colours in it (a blank
    or unstyled failure page has one or two)."""
    from PIL import Image

    _run(["--window-size=1200,900", f"--screenshot={out}"], page)
    with Image.open(out) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours or [])


def pdf_page_texts(pdf: Path, pages: int) -> list[str]:
    """The text of each page of ``pdf`` (poppler's pdftotext), to see what landed where."""
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(pdf), "-"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for n in range(1, pages + 1)
    ]
