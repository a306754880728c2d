"""The documentation site: gallery examples run (quick mode), every public name has an API entry,
the site is self-contained, and it works in headless Chromium (pages, images, search).

The site is built once per session into a temporary directory (a copy of docs/ and examples/,
so a build running in the working tree is not disturbed), with ``NNGEOM_QUICK=1``. The build runs
every example (sphinx-gallery, in the example's folder, stopping at the first error), so the
examples are checked there: each draws a figure and writes no file beside itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _browser import browser as _browser
from _browser import images_on_page

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

sys.path.insert(0, str(DOCS))
import public_api  # noqa: E402  (docs/public_api.py)

sys.path.remove(str(DOCS))

pytest.importorskip("sphinx", reason="the docs extra is not installed (make test installs it)")
pytest.importorskip("sphinx_gallery", reason="sphinx-gallery is not installed")


# --------------------------------------------------------------------------------------------
# the gallery scripts, run as they are (quick mode)
# --------------------------------------------------------------------------------------------
def test_there_are_at_least_eight_examples():
    assert len(EXAMPLES) >= 8, [p.name for p in EXAMPLES]


def test_every_example_has_a_title_and_reads_quick_mode():
    for script in EXAMPLES:
        text = script.read_text(encoding="utf-8")
        assert re.match(r'"""\n[^\n]+\n=+\n', text), f"{script.name}: no gallery title docstring"
        assert "NNGEOM_QUICK" in text, f"{script.name} does not read NNGEOM_QUICK"


# --------------------------------------------------------------------------------------------
# the built site
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("docs")
    ignore = shutil.ignore_patterns("_build", "api", "gallery", "__pycache__", "sg_execution_*")
    shutil.copytree(DOCS, work / "docs", ignore=ignore)
    shutil.copytree(ROOT / "examples", work / "examples", ignore=ignore)
    out = work / "html"
    before = sorted(p.name for p in (work / "examples").iterdir())
    env = dict(os.environ, NNGEOM_QUICK="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    proc = subprocess.run(
        [*cmd, str(work / "docs"), str(out)], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}"
    written = sorted(set(p.name for p in (work / "examples").iterdir()) - set(before))
    assert not written, f"examples wrote files into their folder: {written}"
    return out


def test_every_public_name_has_an_api_entry(site):
    html = "".join(p.read_text(encoding="utf-8") for p in (site / "api").glob("*.html"))
    ids = set(re.findall(r'<dt class="sig[^"]*" id="([^"]+)"', html))
    names = public_api.all_public("nngeom")
    assert "nngeom.regions_2d" in names and "nngeom.chaos.mackey_glass" in names
    missing = [n for n in names if n not in ids]
    assert not missing, f"public names without an API entry: {missing}"
    # each entry has the object's docstring, not an empty signature
    for name in ("nngeom.regions_2d", "nngeom.VAF", "nngeom.chaos.embed"):
        entry = html.split(f'id="{name}"', 1)[1].split("</dd>", 1)[0]
        assert len(re.sub(r"<[^>]+>", "", entry).split()) > 10, name


def test_the_papers_and_getting_started_pages_exist(site):
    assert (site / "getting_started.html").is_file()
    papers = sorted(p.stem for p in (site / "papers").glob("*.html") if p.stem != "index")
    assert papers == ["activations", "chaos", "knots", "saddles", "tangent"]
    for name in papers:
        html = (site / "papers" / f"{name}.html").read_text(encoding="utf-8")
        text = " ".join(re.sub(r"<[^>]+>", "", html).split())
        assert f"nngeom reproduce {name}" in text
        assert "results/paper" in text  # where the published paper-scale run is


def test_every_example_has_a_gallery_page_with_its_figures(site):
    for script in EXAMPLES:
        page = site / "gallery" / f"{script.stem}.html"
        assert page.is_file(), f"no gallery page for {script.name}"
        images = re.findall(r'<img[^>]+src="([^"]+)"', page.read_text(encoding="utf-8"))
        figures = [s for s in images if f"sphx_glr_{script.stem}_" in s]
        assert figures, f"{script.name}: no figure on its gallery page"
        for src in figures:
            assert (page.parent / src).is_file(), src


def test_the_site_loads_nothing_from_the_network(site):
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        remote = re.findall(
            r'<(?:script|link|img)\b[^>]*(?:src|href)="((?:https?:)?//[^"]+)"', text
        )
        assert not remote, f"{page.relative_to(site)} loads {remote}"


# --------------------------------------------------------------------------------------------
# in a browser
# --------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_site_pages_images_and_search_work_in_chromium(site, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    drv = _browser()
    try:
        drv.set_page_load_timeout(60)
        drv.get((site / "index.html").as_uri())
        assert "nngeom" in drv.title
        links = {a.get_attribute("href") for a in drv.find_elements(By.CSS_SELECTOR, "a")}
        for page in ("getting_started.html", "gallery/index.html", "api/index.html"):
            assert any(h and h.endswith(page) for h in links), page

        # every gallery page: its figures are decoded by the browser
        for script in EXAMPLES:
            drv.get((site / "gallery" / f"{script.stem}.html").as_uri())
            n, broken = images_on_page(drv)
            assert n >= 1 and not broken, (script.stem, n, broken)
        drv.get((site / "gallery" / "index.html").as_uri())
        n, broken = images_on_page(drv, len(EXAMPLES))
        assert n >= len(EXAMPLES) and not broken, (n, broken)
        drv.save_screenshot(str(tmp_path / "gallery.png"))

        # the API page of a public name renders its docstring
        drv.get((site / "api" / "knots-and-regions.html").as_uri())
        entry = drv.find_element(By.ID, "nngeom.regions_2d")
        assert "regions_2d" in entry.text

        # search (Sphinx's client-side index, no server) finds a public name
        drv.get((site / "search.html").as_uri() + "?q=regions_2d")
        WebDriverWait(drv, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results ul.search li")
        )
        hits = drv.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")
        assert any("regions_2d" in h.text for h in hits), [h.text for h in hits]
        drv.save_screenshot(str(tmp_path / "search.png"))
    finally:
        drv.quit()
