"""Headless Chromium for the tests that look at HTML: the report, and MLflow's own UI.

A test needing it is skipped only where Chromium is absent and ``CI`` is unset; in CI a
missing Chromium fails (``make browser`` installs it). Screenshots go to ``$NBFT_ARTIFACTS``
when that is set, for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["chromium", "run_chromium", "dump_dom", "visible_text", "keep_artifact"]

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str:
    """The browser's executable (skips or fails the test when there is none, see above)."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing in CI: run `make browser` (apt-get install chromium)")
    pytest.skip("Chromium not installed (`make browser` installs it); set CI to require it")


def run_chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile and ``args``."""
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # tests run as root in containers
        "--disable-gpu",
        "--disable-dev-shm-usage",  # small /dev/shm in containers crashes the renderer
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def dump_dom(browser: str, profile: Path, url: str, budget_ms: int = 15000) -> str:
    """The page's DOM once its scripts have run for ``budget_ms`` of virtual time."""
    done = run_chromium(browser, profile, f"--virtual-time-budget={budget_ms}", "--dump-dom", url)
    assert "<body" in done.stdout, done.stderr[-2000:]
    return done.stdout


def visible_text(dom: str) -> str:
    """The DOM's text without styles and scripts, one space between pieces."""
    dom = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)).strip()


def keep_artifact(path: Path, name: str) -> None:
    """Copy a screenshot to ``$NBFT_ARTIFACTS`` when it is set."""
    if os.environ.get("NBFT_ARTIFACTS"):
        artifacts = Path(os.environ["NBFT_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, artifacts / name)
