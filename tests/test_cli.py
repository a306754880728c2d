"""The command line: one-line errors, reproduce, report."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nngeom
import nngeom.report
import nngeom.studies
from nngeom.cli import main
from nngeom.studies._probe import probe_study


@pytest.fixture
def probe_registered(monkeypatch):
    study = probe_study(3, epochs=3)
    monkeypatch.setattr(nngeom.studies, "available", lambda: {"probe": study})
    monkeypatch.setattr(nngeom.report, "available", lambda: {"probe": study})
    return study


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"nngeom {nngeom.__version__}"


def test_help_without_arguments(capsys):
    assert main([]) == 0
    assert "reproduce" in capsys.readouterr().out


def test_unknown_study(capsys, tmp_path):
    assert main(["reproduce", "nonsense", "--out", str(tmp_path / "r")]) == 1
    assert "unknown study 'nonsense'" in _one_error_line(capsys)


def test_unknown_option(capsys):
    assert main(["reproduce", "--frobnicate"]) == 2
    assert "--frobnicate" in _one_error_line(capsys)


def test_unwritable_out(capsys, tmp_path, probe_registered):
    (tmp_path / "f").write_text("")
    assert (
        main(
            ["reproduce", "probe", "--out", str(tmp_path / "f" / "run"), "--quiet", "--n-jobs", "1"]
        )
        == 1
    )
    assert "cannot write" in _one_error_line(capsys)


def test_reproduce_lists_studies(capsys, probe_registered):
    assert main(["reproduce"]) == 0
    assert "probe" in capsys.readouterr().out


def test_reproduce_resume_and_report(capsys, tmp_path, probe_registered):
    out = str(tmp_path / "run")
    assert main(["reproduce", "all", "--out", out, "--quiet", "--n-jobs", "1"]) == 0
    assert "report:" in capsys.readouterr().out
    assert main(["reproduce", "probe", "--out", out, "--quiet", "--n-jobs", "1"]) == 1
    assert "--resume" in _one_error_line(capsys)
    assert main(["reproduce", "probe", "--out", out, "--quiet", "--resume", "--n-jobs", "1"]) == 0
    assert "0 tasks run, 3 already done" in capsys.readouterr().out
    assert main(["report", out]) == 0
    (tmp_path / "run" / "results.sqlite").write_bytes(b"garbage" * 500)
    assert main(["report", out]) == 1
    assert "corrupted" in _one_error_line(capsys)


def test_missing_out_and_bad_scale(capsys, tmp_path, probe_registered):
    assert main(["reproduce", "probe"]) == 1
    assert "--out" in _one_error_line(capsys)
    assert main(["reproduce", "probe", "--out", str(tmp_path / "r"), "--scale", "huge"]) == 1
    assert "scale" in _one_error_line(capsys)


def test_ray_address_needs_ray_executor(capsys, tmp_path, probe_registered):
    assert (
        main(["reproduce", "probe", "--out", str(tmp_path / "r"), "--ray-address", "1.2.3.4:1"])
        == 1
    )
    assert "--executor ray" in _one_error_line(capsys)


def test_failed_tasks_exit_non_zero(capsys, tmp_path, monkeypatch):
    study = probe_study(2, epochs=2, fail=True)
    monkeypatch.setattr(nngeom.studies, "available", lambda: {"probe": study})
    monkeypatch.setattr(nngeom.report, "available", lambda: {"probe": study})
    assert (
        main(["reproduce", "probe", "--out", str(tmp_path / "r"), "--quiet", "--n-jobs", "1"]) == 1
    )
    err = capsys.readouterr().err
    assert err.count("failed: probe") == 2 and "asked to fail" in err


def test_installed_entry_point_prints_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "nngeom.cli", "report", "/nonexistent/dir"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: /nonexistent/dir is not a run directory (no config.json); run `nngeom reproduce` first"
    ]
