"""Fuzz test of the input-validation contract (docs/DESIGN.md, "Bad input"): every public
function and class of nngeom, called with ONE bad argument at a time, raises an nngeom exception
(``ng.NngeomError``) or succeeds -- never a raw Python/PyTorch exception -- and returns within
the time limit. The targets, baselines and bad values live in ``tests/fuzz_cases.py``.

- the quick test (``make test``): a few hundred hypothesis-drawn calls;
- the slow test (``make bench``, ``-m slow``): every (target, argument, bad value) combination
  plus hypothesis-drawn numbers, thousands of calls; it prints the counts and the leaks grouped
  by module and writes them to ``$NNGEOM_FUZZ_REPORT`` (JSON) when that is set.

Each call runs under a SIGALRM watchdog (``fuzz_cases.TIME_LIMIT_S``); absurd sizes run in a
forked child with a capped address space. Failures list every leaking (function, argument
case, exception) so it can be fixed where it leaks.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import fuzz_cases as F  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread", "_in_tmp_dir")


@pytest.fixture
def _in_tmp_dir(tmp_path, monkeypatch):
    """Fuzzed path arguments ("a", "abc", ...) are relative: keep them out of the checkout."""
    monkeypatch.chdir(tmp_path)


QUICK_LIMIT_S = 5.0  # per call in the quick test (the slow one uses fuzz_cases.TIME_LIMIT_S)


def _generated(kind: str) -> st.SearchStrategy[F.Bad]:
    """Bad values for ``kind``: the listed cases, plus numbers hypothesis draws."""
    listed = st.sampled_from(F.cases_for(kind))
    if kind in ("size", "index", "seed"):
        small = st.integers(max_value=0 if kind == "size" else -1).map(
            lambda v: F.Bad(f"int {v}", lambda v=v: v)
        )
        huge = st.integers(min_value=10**9).map(
            lambda v: F.Bad(f"int {v}", lambda v=v: v, bomb=kind == "size")
        )
        floats = st.floats(allow_nan=True, allow_infinity=True).map(
            lambda v: F.Bad(f"float {v!r}", lambda v=v: v)
        )
        return st.one_of(listed, small, huge, floats)
    if kind == "float":
        weird = st.one_of(
            st.sampled_from([math.nan, math.inf, -math.inf, -0.0]),
            st.floats(min_value=1e300),
            st.floats(max_value=-1e300),
            st.floats(max_value=0.0),
        ).map(lambda v: F.Bad(f"float {v!r}", lambda v=v: v))
        return st.one_of(listed, weird)
    return listed


@st.composite
def calls(draw):
    target = draw(st.sampled_from(F.TARGETS))
    if not target.kinds:
        return target, None, None
    arg = draw(st.sampled_from(sorted(target.kinds)))
    bad = draw(_generated(target.kinds[arg]))
    return target, arg, bad


def _fuzz(n: int, limit: float | None = None) -> list[F.Outcome]:
    """``n`` hypothesis-drawn calls; every outcome recorded (no shrinking: all leaks listed)."""
    outcomes: list[F.Outcome] = []

    @settings(max_examples=n, database=None, deadline=None)
    @given(calls())
    def run(call):
        target, arg, bad = call
        outcomes.append(F.run_call(target, arg, bad, limit))

    run()
    return outcomes


def _assert_clean(outcomes: list[F.Outcome]) -> None:
    c = F.counts(outcomes)
    leaks = F.format_leaks(outcomes)
    assert c["raw_exceptions"] == 0 and c["hangs"] == 0, (
        f"{c['raw_exceptions']} raw exceptions and {c['hangs']} hangs in {c['calls']} calls "
        "(only ng.NngeomError may escape; each call must finish within its time limit):\n"
        f"{leaks}"
    )


def test_every_public_callable_is_fuzzed_or_excluded_with_a_reason():
    covered = {t.name for t in F.TARGETS} | set(F.EXCLUDED)
    missing = [n for n in F.public_names() if n not in covered]
    assert not missing, f"public names without a fuzz target (add one to fuzz_cases.py): {missing}"
    for name in F.TARGETS:
        assert name.name.split(".")[0] not in F.EXCLUDED


def test_baselines_succeed():
    """The harness is honest: every target's unmutated call succeeds within the time limit."""
    failed = [o for o in (F.run_call(t, None, None) for t in F.TARGETS) if o.status != "ok"]
    assert not failed, "\n".join(
        f"{o.target}: {o.status} {o.exc_type}: {o.message}" for o in failed
    )


def test_harness_catches_leaks_and_hangs():
    """The classifier itself: a raw exception, an nngeom error and a hang are told apart, and an
    allocation bomb in the forked child is stopped by its memory cap."""
    import time

    def leak():
        raise KeyError("x")

    def hang():
        time.sleep(30)

    def bomb():
        return torch.empty(2**40, dtype=torch.uint8).fill_(1)

    def refuse():
        import nngeom as ng

        raise ng.InvalidInput("no")

    def t(fn):
        return F.Target("probe", lambda: fn(), dict, {})

    assert F.run_call(t(leak), None, None, 1.0).status == "raw"
    assert F.run_call(t(refuse), None, None, 1.0).status == "nngeom"
    assert F.run_call(t(hang), None, None, 1.0).status == "hang"
    o = F.run_call(t(bomb), "x", F.Bad("bomb", lambda: 0, bomb=True), 5.0)
    assert o.status == "raw", o


def test_fuzz_quick():
    """A few hundred drawn calls: only nngeom errors escape, nothing hangs."""
    _assert_clean(_fuzz(int(os.environ.get("NNGEOM_FUZZ_QUICK", "300")), limit=QUICK_LIMIT_S))


@pytest.mark.slow
def test_fuzz_full(capsys):
    """Every (target, argument, bad value) combination, then drawn calls; prints the counts and
    the leaks grouped by module (and writes them to $NNGEOM_FUZZ_REPORT when set)."""
    outcomes = [F.run_call(t, a, b) for t, a, b in F.all_cases()]
    outcomes += _fuzz(int(os.environ.get("NNGEOM_FUZZ_DRAWN", "1000")))
    c = F.counts(outcomes)
    leaks = F.format_leaks(outcomes)
    with capsys.disabled():  # the counts are the point of `make bench`: always shown
        print("\nnngeom fuzz:", json.dumps(c, indent=1))
        print(leaks)
    report = os.environ.get("NNGEOM_FUZZ_REPORT")
    if report:
        Path(report).write_text(
            json.dumps(
                {
                    "counts": c,
                    "leaks": [vars(o) for o in outcomes if o.status in ("raw", "hang")],
                },
                indent=1,
            )
        )
    assert c["calls"] >= 2000
    _assert_clean(outcomes)
