"""The saddles study end to end at its "test" scale, and the derived bound on small nets."""

from __future__ import annotations

import json

import pytest

from nngeom.studies import Section, get, saddles
from nngeom.studies.saddles import MnistTask, TeacherMultilayerTask, ToyTask
from nngeom.studies.saddles.tasks import closest_pair

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = dict(
    step=1.0,
    adam_epochs=0,
    attempts=1,
    lbfgs_steps=10,
    trust_steps=40,
    pair_lbfgs=5,
    pair_trust=40,
    path_steps=5,
    bezier_epochs=20,
)


def test_study_is_registered_and_scales_are_checked():
    assert get("saddles") is saddles.STUDY
    assert saddles.STUDY.order == 10
    for scale in ("quick", "paper", "full"):
        records = saddles.STUDY.tasks(scale, 0)
        json.dumps(records)
        names = {r["task"].rsplit(":", 1)[-1] for r in records}
        assert {"ToyTask", "TeacherMultilayerTask", "CountingTask"} <= names
    paper = saddles.tasks("paper", 0)
    mnist = [t for t in paper if isinstance(t, MnistTask)]
    assert len(mnist) == 1 and mnist[0].hidden == 100 and mnist[0].dataset == "fashion-mnist"
    assert any(isinstance(t, ToyTask) and t.step == 0.25 and t.outputs == 1 for t in paper)
    assert any(isinstance(t, ToyTask) and t.outputs > 1 for t in paper)
    assert not any(isinstance(t, MnistTask) for t in saddles.tasks("quick", 0))
    full = [t for t in saddles.tasks("full", 0) if isinstance(t, MnistTask)]
    assert full[0].n_train == 60000
    with pytest.raises(Exception, match="unknown scale"):
        saddles.tasks("huge", 0)


def test_tiny_study_end_to_end(tmp_path):
    st = saddles.STUDY
    results = [(c, st.run_task(c)) for c in st.tasks("test", 0)]
    json.loads(json.dumps(results))
    section = st.summarize(results, tmp_path)
    assert isinstance(section, Section)
    assert section.figures and all(
        f.path.exists() and f.path.with_suffix(".svg").exists() for f in section.figures
    )
    keys = {v.key: v for v in section.verdicts}
    assert keys["saddles.critical"].outcome.value == "reproduced"
    assert keys["saddles.valley"].outcome.value == "reproduced"
    assert keys["saddles.counting"].outcome.value == "reproduced"
    assert keys["saddles.first_order_mnist"].outcome.value == "not run"
    assert "claims tested" in section.summary and section.departures


def test_multi_output_permutation_points_cannot_be_first_order():
    """A layer feeding n_2 = 3 units with fan-in 2: at each certified permutation point the flat
    directions give n_2 - rank(H D) zero modes and force index >= rank(H D); here
    rank(H D) = min(n_2 - 1, fan-in) = 2, so index + zeros >= 3 and no point is first-order."""
    r = ToyTask(3, 0, outputs=3, **FAST).run()
    assert r.n_next == 3
    for k in range(len(r.pair_i)):
        assert r.converged[k] and r.grad_norm[k] < 1e-8
        assert r.flat_quad[k] < 1e-12  # the loss is flat on D to second order
        assert r.flat_rank[k] == 2
        assert r.index[k] >= r.flat_rank[k] and r.zeros[k] >= r.n_next - r.flat_rank[k]
        assert r.index[k] + r.zeros[k] >= r.n_next
        assert r.index[k] != 1
    # one output: rank(H D) = 0, every flat direction is a zero mode, first order possible
    r1 = ToyTask(3, 0, **FAST).run()
    assert all(rank == 0 for rank in r1.flat_rank)
    assert all(z >= 1 for z in r1.zeros) and 1 in r1.index
    assert max(r1.valley) - min(r1.valley) < 1e-12


@pytest.mark.parametrize("dataset", ["auto", "digits"])
def test_constructed_multilayer_case(dataset):
    r = TeacherMultilayerTask(
        hidden=4,
        n_train=400,
        dataset=dataset,
        pool=7,
        pool_digits=2,
        lbfgs_steps=30,
        trust_steps=40,
        newton_steps=20,
        restarts=1,
        lanczos_k=3,
    ).run()
    assert r.converged and r.grad_norm < 1e-8 and r.full_spectrum
    assert r.standardized and r.n_inputs == 16 and r.data_null == 0
    assert r.n_next == 10 and r.flat_quad < 1e-12
    # only n_3 - rank(H D) of the 10 flat directions are zero modes, and index >= rank(H D)
    assert 1 <= r.zeros_free == r.n_next - r.flat_rank < r.n_next
    assert r.index >= r.flat_rank >= 2 and r.index + r.zeros_free >= r.n_next
    assert r.zero_gap[0] < 1e-12 < r.zero_gap[1]
    assert r.lanczos_converged and r.lanczos_check < 1e-8
    assert all(-40 < lo and hi < 40 for lo, hi in r.preactivations)


def test_mnist_task_runs_on_a_small_net(tmp_path):
    task = MnistTask(
        hidden=5,
        n_train=200,
        adam_epochs=2,
        lbfgs_epochs=2,
        search_lbfgs=2,
        search_trust=0,
        search_newton=0,
        lanczos_k=3,
    )
    r = task.run()
    assert r.case == "onehot" and r.sizes == (784, 5, 5, 10) and r.n_next == 10
    assert not r.full_spectrum and len(r.smallest) == len(r.largest) == 3
    assert r.smallest[0] <= r.largest[-1] and r.data_null > 0
    assert r.converged == (r.grad_norm <= 1e-8)
    assert r.zeros is None and 0 <= r.flat_rank <= r.n_next
    # the report's parts accept a Lanczos-only point
    pairs = [(task, r)]
    figs = saddles.figures(pairs, tmp_path)
    assert [f.path.name for f in figs] == ["saddles_multilayer.png"]
    assert any("Lanczos (" in n for n in saddles.notes(pairs))
    assert saddles.tables(pairs) and saddles.protocol(pairs).startswith("Paper's multilayer case")


def test_closest_pair():
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Softplus(), torch.nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.0, 0.0], [5.0, 5.0], [5.1, 5.0]]))
        net[0].bias.zero_()
    assert closest_pair(net, 0) == (1, 2)
