"""report.html: self-contained, every figure loads in a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

import nngeom as ng
from nngeom.report import build_report
from nngeom.runs import reproduce
from nngeom.studies import Figure, KeyNumber, Section, Study, Table


def run_task(config):
    return {"x": config["i"], "y": config["i"] ** 2}


def summarize(results, figdir: Path) -> Section:
    xs = [r["x"] for _, r in results]
    ys = [r["y"] for _, r in results]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(xs, ys, "o-")
    ax.set(xlabel="x", ylabel="x²", title="squares")
    fig.savefig(figdir / "squares.png", dpi=100)
    fig.savefig(figdir / "squares.svg")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(xs, ys)
    fig.savefig(figdir / "paper.png", dpi=100)
    plt.close(fig)
    return Section(
        title="Squares <study>",
        paper="A. Author, On squares (2024)",
        summary="Squares of small integers, as a check of the report.",
        key_numbers=[KeyNumber("largest square", str(max(ys)), "16", "reproduced")],
        tables=[Table("values", ["x", "x²"], list(zip(xs, ys)))],
        figures=[
            Figure(
                figdir / "squares.png",
                "x against x²",
                paper="Fig. 1",
                paper_path=figdir / "paper.png",
            )
        ],
    )


SQUARES = Study(
    name="squares",
    title="Squares",
    paper="A. Author, On squares (2024)",
    tasks=lambda scale, seed: [{"i": i} for i in range(5)],
    run_task=run_task,
    summarize=summarize,
)


@pytest.fixture(scope="module")
def report_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    summary = reproduce([SQUARES], out, progress=False)
    return summary.report


def test_report_is_self_contained(report_path):
    html = report_path.read_text()
    assert "Squares &lt;study&gt;" in html  # escaped
    assert html.count("data:image/png;base64,") == 2
    assert not re.search(r"""(src|href)=["']https?://""", html)
    for needle in ("largest square", "A. Author", "versions and machine", "torch", "Fig. 1"):
        assert needle in html


def test_report_rebuilds_from_the_run_directory(report_path):
    report_path.unlink()
    assert build_report(report_path.parent, [SQUARES]) == report_path and report_path.is_file()


def test_report_of_a_non_run_directory(tmp_path):
    with pytest.raises(ng.RunError, match="not a run directory"):
        build_report(tmp_path)


def test_broken_summary_is_reported_after_the_page_is_written(tmp_path):
    def bad(results, figdir):
        raise ValueError("boom")

    broken = Study("squares", "Squares", "", SQUARES.tasks, run_task, bad)
    with pytest.raises(ng.StudyError, match="boom"):
        reproduce([broken], tmp_path / "run", progress=False)
    assert "boom" in (tmp_path / "run" / "report.html").read_text()


def _browser():
    chromium = (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(
            "headless Chromium is not installed (make test installs it where apt is available)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,2000",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.mark.browser
def test_every_figure_loads_in_chromium_and_a_screenshot_is_taken(report_path, tmp_path):
    browser = _browser()
    try:
        browser.get(report_path.as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]);"
        )
        assert len(images) == 2
        assert all(done and w > 100 and h > 100 for done, w, h in images), images
        title = browser.title
        shot = tmp_path / "report.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.quit()
    assert "nngeom report" in title
    assert shot.stat().st_size > 20_000
