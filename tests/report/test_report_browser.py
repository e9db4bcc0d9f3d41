"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``), with every host name unresolvable
so nothing can come from the network, shows the tables and decodes every figure. A screenshot of the page is kept at
test-artifacts/report-browser.png (a CI artifact; git-ignored). Skipped with a reason when Chromium is absent
(.ci/run installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ARTIFACTS
from test_report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
SCREENSHOT = ARTIFACTS / "report-browser.png"


def _chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium offline: no background networking, every host name unresolvable, a throwaway profile."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-default-apps", "--no-first-run",
               "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
               *args, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


def _images_loaded(page: Path, profile: Path) -> tuple[int, int, str]:
    dom = _chromium(page, profile, "--dump-dom").stdout
    marker = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert marker, "the page's load script did not run"
    return int(marker.group(1)), int(marker.group(2)), dom


#: params.yaml's default methods, so the first held-out design's verdict table has its full size (5 methods against
#: the reference and the 3 default contrasts: 8 rows, each with both tasks' macro accuracy and average gap)
DEFAULT_METHODS = {"uncorrected": (1, 0.0), "label_mask": (1, 0.5), "unimodal": (1, 1.0), "crossmodal_linear": (1, 1.5),
                   "corrector": (2, 3.0), "corrector_tuned": (1, 2.5)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_report(tmp_path_factory.mktemp("browser"), methods=DEFAULT_METHODS)


def test_browser_shows_the_tables_and_every_figure_offline(built, tmp_path):
    loaded, total, dom = _images_loaded(built["html"], tmp_path / "profile")
    assert total == len(list(built["figures"].glob("*.png"))) > 0
    assert loaded == total
    assert "Reproduction of the paper's table" in dom and dom.count("<table") >= 3
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    _chromium(built["html"], tmp_path / "profile2", f"--screenshot={SCREENSHOT}", "--window-size=1400,2400")
    assert SCREENSHOT.stat().st_size > 10_000


def test_browser_check_detects_a_figure_that_cannot_load(built, tmp_path):
    page = built["html"].read_text()
    first = page.index('src="data:image/png;base64,')
    end = page.index('"', first + 5)
    broken = tmp_path / "broken.html"
    broken.write_text(page[:first] + 'src="https://example.org/figure.png' + page[end:])
    loaded, total, _ = _images_loaded(broken, tmp_path / "profile")
    assert (loaded, total) == (total - 1, len(list(built["figures"].glob("*.png"))))


#: measures the first verdict table once the page has laid out (injected into a copy of the page, not the report)
_MEASURE = """<script>window.addEventListener('load', function () {
  var table = document.querySelector('table.verdicts'), heading = table && table.previousElementSibling;
  var box = table ? table.getBoundingClientRect() : null;
  document.body.setAttribute('data-verdicts', box ? [box.top, box.bottom, window.innerHeight].join('/') : 'none');
  document.body.setAttribute('data-verdicts-heading', heading ? heading.textContent : '');
});</script></body>"""


def test_the_first_screen_at_1400x900_shows_the_first_held_out_designs_verdict_table(built, tmp_path):
    page = tmp_path / "measured.html"
    page.write_text(built["html"].read_text().replace("</body>", _MEASURE, 1))
    dom = _chromium(page, tmp_path / "profile", "--dump-dom", "--window-size=1400,900").stdout
    found = re.search(r'data-verdicts="([\d.]+)/([\d.]+)/(\d+)"', dom)
    assert found, "no verdict table (table.verdicts) on the page"
    top, bottom, height = (float(v) for v in found.groups())
    # a 1400x900 window; headless Chromium keeps room for a browser's bars, so the page's viewport is <= 900 high
    assert 600 < height <= 900 and 0 <= top < bottom <= height, (top, bottom, height)
    assert re.search(r'data-verdicts-heading="ADFES, split faces-&gt;adfes \(\d+ people\)"', dom)
    assert dom.count("<tr>", dom.index('class="verdicts"'), dom.index("</table>", dom.index('class="verdicts"'))) == 1 + 8
    _chromium(page, tmp_path / "profile2", f"--screenshot={SCREENSHOT.with_name('report-first-screen.png')}",
              "--window-size=1400,900")
