"""The built book loads nothing from outside the build: no CDN script, style sheet or font, MathJax
served from _static, the thebe snippet at most once per page, no script file twice. Builds the committed executed
chapters into a temporary folder (execution is off in _config.yml), so it takes a minute."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = re.compile(r"""<(?:script|link|img|iframe|source)\b[^>]*?(?:src|href)=["'](?:https?:)?//""", re.I)
CSS_EXTERNAL = re.compile(r"""(?:@import\s+|url\()\s*["']?(?:https?:)?//""", re.I)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not shutil.which("make"):
        pytest.skip("needs make")
    subprocess.run(["make", "-s", "mathjax"], cwd=REPO, check=True)           # the Makefile's copy step
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    res = subprocess.run([str(jb), "build", "book", "--path-output", str(out), "-W", "-n", "--keep-going"],
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out / "_build" / "html"


def test_no_page_fetches_anything_from_outside(built):
    pages = sorted(built.glob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        html = page.read_text(errors="replace")
        assert not EXTERNAL.findall(html), f"{page.name} loads {EXTERNAL.findall(html)[:3]}"
        assert len(re.findall(r"<script[^>]*thebe[^>]*>", html)) <= 1, page.name    # the inert config at most
        assert "THEBE_JS_URL" not in html, f"{page.name} still carries sphinx-thebe's inline snippet"
        srcs = [s.split("?", 1)[0] for s in re.findall(r"""<script[^>]*\bsrc=["']([^"']+)""", html)]
        assert len(srcs) == len(set(srcs)), f"{page.name} loads {[s for s in srcs if srcs.count(s) > 1][:2]} twice"
    for css in built.rglob("*.css"):
        assert not CSS_EXTERNAL.findall(css.read_text(errors="replace")), f"{css.relative_to(built)} imports remotely"


def test_math_is_rendered_by_the_local_mathjax(built):
    page = (built / "03_balanced_truncation.html").read_text()
    assert re.search(r"""<script[^>]*src=["'][^"']*_static/mathjax/tex-svg\.js""", page)
    assert (built / "_static" / "mathjax" / "tex-svg.js").stat().st_size > 1_000_000
