"""The HTML report in a real browser: headless Chromium loads it without errors, every figure decodes, and the
verdict and figure elements are in the rendered DOM. Skipped where /usr/bin/chromium is absent (CI)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from simcert.report.html import load_certificate, write_report

CHROMIUM = Path(os.environ.get("SIMCERT_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars"]

# appended to a copy of the page only: records script errors and images that did not decode
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute('data-probe', JSON.stringify({images: imgs.length, broken: broken,
                                                           errors: window.__errors}));
});
</script>"""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_report_renders_in_chromium(certs: dict[str, Path], tmp_path: Path) -> None:
    pairs = [(p.name, load_certificate(p)) for p in certs.values()]
    page = write_report(tmp_path / "report.html", pairs, title="browser test", base_dir=tmp_path)
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))

    dom = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    probe = re.search(r'data-probe="([^"]*)"', html)
    assert probe, "the load handler did not run"
    info = probe.group(1).replace("&quot;", '"')
    assert '"broken":0' in info and '"errors":[]' in info, info
    n_images = int(re.search(r'"images":(\d+)', info).group(1))
    assert n_images == html.count('class="plot"') >= 9  # 4 bounds, 4 heat maps, 1 histogram
    assert html.count('<section class="certificate"') == 4
    for verdict in ("holds", "violated"):
        assert f'class="verdict verdict-{verdict}"' in html
    assert "Certified (probabilistic)" in html and "Violated: at x = (" in html
    assert "Uncaught" not in dom.stderr

    shot = tmp_path / "report.png"
    res = _chromium(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    keep = os.environ.get("SIMCERT_KEEP_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(shot.read_bytes())
