"""The HTML report in headless Chromium: it renders, and every image in it loads.

Skipped only where Chromium is absent and ``CI`` is unset; in CI a missing Chromium fails
(``make browser`` installs it). The screenshot stays in the test's tmp dir and is copied to
``$NBFT_ARTIFACTS`` when that is set, for a person to look at.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from sweep_fixtures import make_results

from nonbinary_ft.reporting import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1280, 4000
# Added to a copy of the page: after load, record on <body> how many images decoded.
CHECK_IMAGES = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((img) => !(img.complete && img.naturalWidth > 0));
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-broken", String(broken.length));
});
</script>
"""


def _chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing in CI: run `make browser` (apt-get install chromium)")
    pytest.skip("Chromium not installed (`make browser` installs it); set CI to require it")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
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
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def test_report_renders_in_chromium_with_every_image_loaded(tmp_path):
    browser = _chromium()
    paths = write_report(make_results(), tmp_path / "report")
    screenshot = tmp_path / "report.png"
    shot = _run(
        browser,
        tmp_path / "profile",
        f"--screenshot={screenshot}",
        f"--window-size={WIDTH},{HEIGHT}",
        "--hide-scrollbars",
        paths.html.resolve().as_uri(),
    )
    assert screenshot.is_file(), shot.stderr[-2000:]
    image = Image.open(io.BytesIO(screenshot.read_bytes())).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    assert len(image.getcolors(maxcolors=1 << 20) or ()) > 50, "a blank page?"
    if os.environ.get("NBFT_ARTIFACTS"):
        artifacts = Path(os.environ["NBFT_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, artifacts / "report-screenshot.png")

    checked = paths.html.with_name("checked.html")
    checked.write_text(paths.html.read_text().replace("</body>", CHECK_IMAGES + "</body>"))
    dom = _run(
        browser,
        tmp_path / "profile-dom",
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=5000",
        "--dump-dom",
        checked.resolve().as_uri(),
    )
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body is not None, dom.stderr[-2000:]
    images = re.search(r'data-images="(\d+)"', body[0])
    broken = re.search(r'data-broken="(\d+)"', body[0])
    assert images and broken, f"the load handler did not run: {body[0]}"
    assert int(images[1]) == len(paths.images) == 7
    assert int(broken[1]) == 0
