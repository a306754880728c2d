"""The knots study: the derivation's steps on networks, the exhaustive one-layer search against
brute force, the refined bound against counted networks, and the study end to end (tiny scale)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import nngeom as ng
from nngeom import StudyError
from nngeom.studies import available
from nngeom.studies.knots import STUDY, attains_product, bounds, search, tasks
from nngeom.studies.knots.experiments import NarrowResult, TightResult

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------------------------
# the product bound: each step of the derivation, with exact counts as the oracle
# --------------------------------------------------------------------------------------------
def _random_net(widths, seed, *, outputs=1, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    net = ng.mlp([1, *widths, outputs], seed=seed, dtype=torch.float64)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return net


WIDTH_LISTS = [(1,), (4,), (2, 2), (3, 1), (1, 3), (5, 4), (2, 3, 2), (4, 4, 4), (1, 2, 1, 3)]


@pytest.mark.parametrize("widths", WIDTH_LISTS)
def test_each_step_of_the_product_bound_on_random_nets(widths):
    for seed in range(6):
        for outputs in (1, 3):
            net = _random_net(widths, seed, outputs=outputs)
            P = bounds.pieces_per_layer(net)
            assert P[0] == 1 and len(P) == len(widths) + 1
            # step 1: a layer cuts each piece into at most n_l + 1 pieces (each of its units
            # crosses zero at most once on a piece where its pre-activation is affine)
            for li, n in enumerate(widths):
                assert P[li] <= P[li + 1] <= (n + 1) * P[li], (widths, seed, li, P)
            # step 2: the affine output layer adds no breakpoint; knots are breakpoints
            k = ng.knots(net)
            assert k.n_breakpoints == P[-1] - 1
            assert k.count <= k.n_breakpoints
            assert set(k.positions.tolist()) <= set(k.breakpoints.tolist())
            assert k.count <= bounds.product_bound(widths) == ng.knot_upper_bound(list(widths))


def test_product_bound_steps_are_tight_on_the_construction():
    for widths in [(3,), (3, 3), (4, 3), (3, 3, 2)]:
        P = bounds.pieces_per_layer(ng.tight_knot_network(list(widths)))
        assert P == [math.prod(n + 1 for n in widths[:i]) for i in range(len(widths) + 1)]


# --------------------------------------------------------------------------------------------
# the exhaustive one-layer search against brute force
# --------------------------------------------------------------------------------------------
def _one_layer_brute(n, rng, samples):
    """Slopes of z = sum v_i relu(a_i x + b_i) on its pieces, directly; knots of relu(z) by
    count_small (itself checked against nngeom.knots below)."""
    best_runs = best_knots = 0
    for _ in range(samples):
        a = rng.choice([-1.0, 1.0], n) * rng.uniform(0.2, 2.0, n)
        p = np.sort(rng.uniform(-3, 3, n))
        b = -a * p
        v = rng.normal(size=n) * rng.choice([0.1, 1.0, 10.0], n)
        c = rng.normal() * 2
        order = np.argsort(-b / a)
        kinks = (-b / a)[order]
        mids = np.concatenate(([kinks[0] - 1], (kinks[1:] + kinks[:-1]) / 2, [kinks[-1] + 1]))
        slopes = [(v * a * ((a * m + b) > 0)).sum() for m in mids]
        signs = [int(np.sign(s)) if abs(s) > 1e-12 else 0 for s in slopes]
        best_runs = max(best_runs, bounds._runs(signs))
        theta = [*a, *b, *v, c, 1.0, 0.0]
        best_knots = max(best_knots, search.count_small(theta, [1, n, 1, 1])[0])
    return best_runs, best_knots


@pytest.mark.parametrize("n", [1, 2, 3])
def test_one_layer_exhaustive_search_against_brute_force(n):
    facts = bounds.one_layer_exhaustive(n)
    assert facts.max_runs == bounds.runs_bound(n)
    runs, kn = _one_layer_brute(n, np.random.default_rng(n), 3000)
    assert runs <= facts.max_runs and kn <= facts.max_relu_knots
    assert runs == facts.max_runs  # random sampling reaches the runs
    found = search.hill_climb([n, 1], objective="knots", steps=400, starts=4, seed=0)
    assert found.knots == facts.max_relu_knots  # the climb reaches the knots
    assert facts.max_relu_knots == bounds.relu_knots_bound(n, bounds.runs_bound(n), 2)
    # the one-network brute force agrees with the exact engine
    r, k = bounds.one_layer_knots_and_runs(
        [1.0, -2.0, 1.5][:n], [1.0, 1.0, -1.0][:n], [0.0, -1.0, 2.0][:n], -0.3
    )
    assert 1 <= r <= facts.max_runs and 0 <= k <= facts.max_relu_knots


def test_two_ramps_cannot_alternate():
    # the fact behind r(2) = 2: no sign sequence (+,-,+) or (-,+,-) is realizable
    assert not bounds._slope_feasible((1, -1, 1)) and not bounds._slope_feasible((-1, 1, -1))
    assert bounds._slope_feasible((1, -1, 1, -1))  # three units can


# --------------------------------------------------------------------------------------------
# the refined bound, Serra's bound, the fast counter
# --------------------------------------------------------------------------------------------
def test_count_small_matches_the_exact_engine():
    rng = np.random.default_rng(0)
    for _ in range(120):
        widths = list(rng.integers(1, 4, size=rng.integers(1, 4)))
        sizes = [1, *widths, 1]
        n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        theta = rng.normal(size=n).tolist()
        k = ng.knots(search.net_of(theta, sizes))
        assert search.count_small(theta, sizes) == (k.count, k.n_breakpoints)
        assert search.theta_of(search.net_of(theta, sizes)) == pytest.approx(theta)


def test_refined_bound_is_never_exceeded_by_counted_nets():
    rng = np.random.default_rng(1)
    lists = [
        (1, 1),
        (2, 1),
        (2, 2),
        (1, 2, 1),
        (2, 1, 1),
        (2, 2, 1),
        (2, 2, 2),
        (1, 1, 1, 1),
        (3, 1),
        (1, 3),
        (3, 1, 3),
        (2, 1, 2),
        (3, 1, 1),
        (2, 1, 1, 1),
        (1, 2, 1, 1),
    ]
    for widths in lists:
        sizes = [1, *widths, 1]
        ref = bounds.refined_bound(widths)
        assert ref.knots <= ref.breakpoints <= bounds.product_bound(widths)
        n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        for _ in range(150):
            theta = (rng.normal(size=n) * rng.choice([0.3, 1.0, 3.0], n)).tolist()
            kn, bp = search.count_small(theta, sizes)
            assert kn <= ref.knots and bp <= ref.breakpoints, (widths, kn, bp, ref)
        found = search.hill_climb(list(widths), objective="knots", steps=150, starts=2, seed=3)
        assert found.knots <= ref.knots and found.breakpoints <= ref.breakpoints


def test_refined_bound_known_values():
    assert bounds.refined_bound([1, 1]).knots == 2
    assert bounds.refined_bound([1, 1, 1]).knots == 2  # the leading-width-1 reduction
    assert bounds.refined_bound([1, 1, 1, 1]).knots == 2
    assert bounds.refined_bound([2, 2]).knots == 6  # two runs per functional of [2]
    assert bounds.refined_bound([2, 1, 1]).knots == 5  # end rays tracked with the kinks
    assert bounds.refined_bound([3, 1]).knots == 6 < 7 == bounds.product_bound([3, 1])
    assert bounds.refined_bound([3, 3]).knots == 15 == bounds.product_bound([3, 3])
    assert bounds.relu_knots_bound(0, 1, 2) == 1 and bounds.relu_knots_bound(3, 4, 2) == 6


def test_serra_regions():
    assert bounds.serra_regions([3, 3]) == 16 and bounds.serra_regions([4, 2, 5]) == 5 * 3 * 6
    assert bounds.serra_regions([1, 1]) == 3 and bounds.serra_regions([2, 1]) == 6
    assert bounds.serra_regions([1, 1, 1]) == 4
    assert bounds.serra_regions([3], n0=2) == 1 + 3 + 3  # one layer: sum_j C(n, j), j <= n0


def test_search_result_is_a_lower_bound_recounted_exactly():
    out = search.hill_climb([2, 2], objective="knots", steps=200, starts=2, seed=0, target=6)
    kn, bp = search.exact_counts(out.theta, [1, 2, 2, 1])
    assert (kn, bp) == (out.knots, out.breakpoints) and out.reached_target
    with pytest.raises(ValueError, match="objective"):
        search.hill_climb([2], objective="regions", steps=1, starts=1, seed=0)


# --------------------------------------------------------------------------------------------
# the study
# --------------------------------------------------------------------------------------------
def test_tasks_are_json_and_deterministic() -> None:
    for scale in ("test", "quick", "paper", "full"):
        configs = STUDY.tasks(scale, 0)
        assert configs == STUDY.tasks(scale, 0)
        json.dumps(configs)
        assert {c["task"].rsplit(":", 1)[-1] for c in configs} >= {
            "TightTask",
            "NarrowTask",
            "RandomTask",
            "TrainingTask",
            "Regions2DTask",
            "OneLayerTask",
        }
    assert len(tasks("paper", 0)) > len(tasks("quick", 0))
    assert len(tasks("full", 0)) > len(tasks("paper", 0))
    narrow = [t.widths for t in tasks("quick", 0) if hasattr(t, "steps")]
    assert narrow and not any(attains_product(w) for w in narrow)
    with pytest.raises(StudyError, match="unknown scale"):
        tasks("huge", 0)
    with pytest.raises(StudyError):
        STUDY.run_task({"task": "nope"})
    assert available()["knots"] is STUDY and STUDY.order == 20
    # the executors find the runner by (module, name)
    import importlib

    mod = importlib.import_module(STUDY.run_task.__module__)
    assert getattr(mod, STUDY.run_task.__name__) is STUDY.run_task


def test_study_end_to_end_tiny(tmp_path) -> None:
    configs = STUDY.tasks("test", 0)
    results = [(c, STUDY.run_task(c)) for c in configs]
    for _, r in results:
        json.dumps(r)
    for c, r in results:
        if c["task"].endswith(":TightTask"):
            t = TightResult(
                **{k: tuple(map(tuple, v)) if k == "widths" else tuple(v) for k, v in r.items()}
            )
            for w, b, k, a in zip(t.widths, t.bound, t.knots, t.ambiguous, strict=True):
                assert b == ng.knot_upper_bound(list(w)) and not a
                assert (k == b) == attains_product(w)
        if c["task"].endswith(":NarrowTask"):
            n = NarrowResult(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()})
            assert n.search_knots <= n.upper_knots <= n.product_bound
            assert n.construction_knots <= n.upper_knots
    small = next(c for c in configs if c["task"].endswith(":NarrowTask"))
    assert STUDY.run_task(small) == dict(results[configs.index(small)][1])
    section = STUDY.summarize(results, tmp_path)
    assert section.summary and section.tables and section.verdicts and section.departures
    keys = {v.key for v in section.verdicts}
    assert keys >= {"knots.bound", "knots.tight", "knots.narrow", "serra.exact", "hanin.linear"}
    assert len(section.figures) == 5
    for fig in section.figures:
        assert fig.path.exists() and fig.path.with_suffix(".svg").exists()
