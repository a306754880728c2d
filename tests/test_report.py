"""report.html: self-contained, every figure loads in a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

import nngeom as ng
from _browser import browser as _browser
from _browser import images_on_page
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


@pytest.mark.browser
def test_every_figure_loads_in_chromium_and_a_screenshot_is_taken(report_path, tmp_path):
    browser = _browser()
    try:
        browser.get(report_path.as_uri())
        images_on_page(browser, 2)
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


# ------------------------------------------------------ links in the run directory, one process


def test_a_linked_figure_is_replaced_not_written_through(tmp_path):
    out = tmp_path / "run"
    reproduce([SQUARES], out, progress=False)
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    figure = out / "figures" / "squares" / "squares.png"
    figure.unlink()
    figure.symlink_to(victim)
    build_report(out, [SQUARES])
    assert victim.read_bytes() == b"precious"
    assert figure.is_file() and not figure.is_symlink() and figure.stat().st_size > 1000
    assert not list((out / "figures").glob(".staging*"))


@pytest.mark.parametrize("which", ["figures", "figures/squares"])
def test_a_linked_figures_folder_is_refused_and_nothing_is_written_there(tmp_path, which):
    out = tmp_path / "run"
    reproduce([SQUARES], out, progress=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(out / which)
    (out / which).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ng.RunError, match="symbolic link"):
        build_report(out, [SQUARES])
    assert list(elsewhere.iterdir()) == []


def test_a_report_while_the_directory_is_in_use_names_the_holder(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    reproduce([SQUARES], out, progress=False)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from nngeom.runs import RunDir; RunDir(sys.argv[1]).lock().__enter__(); "
            "print('locked', flush=True); sys.stdin.read()",
            str(out),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            ng.RunError, match=f"in use by another nngeom process \\(pid {holder.pid}\\)"
        ):
            build_report(out, [SQUARES])
    finally:
        holder.communicate("", timeout=30)
    assert build_report(out, [SQUARES]).is_file()  # released with its holder
