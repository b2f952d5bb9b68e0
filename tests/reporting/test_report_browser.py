"""The HTML report in headless Chromium: it renders, and every image in it loads.

Skipped only where Chromium is absent and ``CI`` is unset; in CI a missing Chromium fails
(``make browser`` installs it). The screenshot stays in the test's tmp dir and is copied to
``$NBFT_ARTIFACTS`` when that is set, for a person to look at.
"""

from __future__ import annotations

import io
import re

from PIL import Image
from sweep_fixtures import make_results

from nonbinary_ft.reporting import write_report
from tests.browser import chromium, keep_artifact, run_chromium

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


def test_report_renders_in_chromium_with_every_image_loaded(tmp_path):
    browser = chromium()
    paths = write_report(make_results(), tmp_path / "report")
    screenshot = tmp_path / "report.png"
    shot = run_chromium(
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
    keep_artifact(screenshot, "report-screenshot.png")

    checked = paths.html.with_name("checked.html")
    checked.write_text(paths.html.read_text().replace("</body>", CHECK_IMAGES + "</body>"))
    dom = run_chromium(
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
