"""The command line: one-line errors, reproduce, report."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nngeom
from _probe_study import probe_study
from nngeom.cli import main


@pytest.fixture
def probe_registered(register_studies):
    study = probe_study(3, epochs=3)
    register_studies(study)
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
    assert "is a file" in _one_error_line(capsys)


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


def test_failed_tasks_exit_non_zero(capsys, tmp_path, register_studies):
    register_studies(probe_study(2, epochs=2, fail=True))
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


# ------------------------------------------------------------- saved models: one line, never a guess


def test_state_dict_without_arch_is_one_line(capsys, tmp_path):
    import torch

    import nngeom as ng

    torch.save(ng.mlp([1, 4, 1], "tanh").state_dict(), tmp_path / "sd.pt")
    assert main(["knots", str(tmp_path / "sd.pt")]) == 1
    line = _one_error_line(capsys)
    assert "does not say its architecture" in line and "--arch" in line and ".pt2" in line
    assert main(["knots", str(tmp_path / "sd.pt"), "--arch", "1-4-1:tanh"]) == 1
    assert "tanh" in _one_error_line(capsys).lower()
    assert main(["knots", str(tmp_path / "sd.pt"), "--arch", "1-5-1:tanh"]) == 1
    assert "(4, 1)" in _one_error_line(capsys)
    assert main(["knots", str(tmp_path / "sd.pt"), "--arch", "1-4-1:swish"]) == 1
    assert "unknown hidden activation" in _one_error_line(capsys)


def test_garbage_and_malicious_model_files_are_one_line(capsys, tmp_path):
    import io

    import torch

    (tmp_path / "g.pt2").write_bytes(b"\x00garbage")
    (tmp_path / "g.pt").write_bytes(b"\x00garbage")
    marker = tmp_path / "ran"

    class Marker:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buf = io.BytesIO()
    torch.save({"0.weight": torch.zeros(2, 1), "x": Marker()}, buf)
    (tmp_path / "evil.pt").write_bytes(buf.getvalue())
    for name, msg in [
        ("g.pt2", "not a torch.export archive"),
        ("g.pt", "not a torch file"),
        ("evil.pt", "execute code"),
    ]:
        assert main(["knots", str(tmp_path / name)]) == 1
        assert msg in _one_error_line(capsys)
    assert not marker.exists()


def test_hessian_ce_on_one_output_is_one_line(capsys, tmp_path):
    import numpy as np

    import nngeom as ng

    path = ng.save_model(ng.mlp([2, 3, 1]), tmp_path / "one.pt")
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
    assert main(["hessian", str(path), "--data", str(tmp_path / "d.npz"), "--loss", "ce"]) == 1
    line = _one_error_line(capsys)
    assert "one output" in line and "cross-entropy" in line


def test_architecture_in_hessian_and_sensitivity_json(capsys, tmp_path):
    import json

    import numpy as np
    import torch

    import nngeom as ng

    net = ng.mlp([2, 3, 2], torch.nn.LeakyReLU(0.3))
    torch.save({"model": {"sd": net.state_dict()}}, tmp_path / "ck.pt")
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).normal(size=(6, 2)), y=np.zeros((6, 2)))
    np.save(tmp_path / "X.npy", np.random.default_rng(0).normal(size=(6, 2)).astype("float32"))
    common = [str(tmp_path / "ck.pt"), "--arch", "2-3-2:leaky_relu(0.3)", "--key", "model.sd"]
    assert main(["hessian", *common, "--data", str(tmp_path / "d.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["architecture"] == "2-3-2:leaky_relu(0.3)"
    sens = ["sensitivity", *common, "--data", str(tmp_path / "X.npy"), "--no-bounds"]
    assert main([*sens, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["architecture"] == "2-3-2:leaky_relu(0.3)"
    assert main(sens) == 0
    assert "architecture: 2-3-2:leaky_relu(0.3)" in capsys.readouterr().out


# ------------------------------------------- reproduce: dying workers, --retry-failed, --ray-timeout


def test_a_task_killing_its_worker_exits_non_zero_and_resume_skips_it(
    capsys, tmp_path, register_studies
):
    import dataclasses

    study = dataclasses.replace(
        probe_study(),
        tasks=lambda scale, seed: [{"seed": i, "epochs": 2, "kill": i == 1} for i in range(3)],
    )
    register_studies(study)
    out = str(tmp_path / "run")
    assert main(["reproduce", "probe", "--out", out, "--quiet", "--n-jobs", "2"]) == 1
    captured = capsys.readouterr()
    assert "2 tasks run, 0 already done, 1 failed" in captured.out
    assert "failed: probe" in captured.err and "signal 9" in captured.err
    assert main(["reproduce", "probe", "--out", out, "--quiet", "--n-jobs", "2", "--resume"]) == 1
    captured = capsys.readouterr()
    assert "0 tasks run, 2 already done, 0 failed, 1 failed before and skipped" in captured.out
    assert "failed before (not rerun)" in captured.err and "--retry-failed" in captured.err


def test_retry_failed_needs_resume_and_ray_timeout_is_checked(capsys, tmp_path, probe_registered):
    out = str(tmp_path / "r")
    assert main(["reproduce", "probe", "--out", out, "--retry-failed"]) == 1
    assert "--resume" in _one_error_line(capsys)
    args = ["reproduce", "probe", "--out", out, "--executor", "ray", "--ray-address", "127.0.0.1:1"]
    assert main([*args, "--ray-timeout", "0"]) == 1
    assert "--ray-timeout" in _one_error_line(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "args, match",
    [
        (["reproduce", "knots", "--out", "{file}/x"], "is a file"),
        (["reproduce", "knots", "--out", "{tmp}/run", "--seed", "-1"], "--seed"),
        (["reproduce", "knots", "--out", "{tmp}/run", "--seed", str(10**26)], "--seed"),
        (["reproduce", "knots", "--out", "{tmp}/" + "a" * 300], "too long"),
        (["report", "{tmp}/" + "b/" * 2100], "too long"),
        (["report", "{tmp}/missing"], "not a run directory (no config.json)"),
    ],
)
def test_reproduce_and_report_refuse_bad_paths_and_seeds(tmp_path, capsys, args, match):
    from nngeom.cli import main

    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = [a.format(file=afile, tmp=tmp_path) for a in args]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0] and "unexpected" not in err[0]
