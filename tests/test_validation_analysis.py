"""Bad input to the analysis modules (sensitivity, measures, activations, data, chaos): every
case gets an nngeom error (never a raw Python/PyTorch exception, a hang or a silent NaN/inf)."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch

import nngeom as ng
from nngeom import chaos, data
from nngeom import measures as M
from nngeom._errors import DataError, InvalidInput, InvalidModel, NngeomError


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    return ng.mlp([3, 5, 2], seed=0)


@pytest.fixture(scope="module")
def huge_net() -> torch.nn.Module:
    m = ng.mlp([3, 5, 2], seed=0)
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(1e30)  # finite, but the squared products overflow float32
    return m


X = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
METHODS = ("auto", "closed_form", "autodiff")


# --- 10: hangs become refusals, checked from the declared sizes --------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: chaos.henon_map(10, transient=10**30),
        lambda: chaos.lorenz(10, dt=1e300),
        lambda: chaos.lorenz(10, transient=1e300),
        lambda: chaos.lorenz(10**7, dt=10.0),
        lambda: chaos.mackey_glass(10, tau=1e300),
        lambda: chaos.mackey_glass(10, transient=1e300),
        lambda: chaos.mackey_glass(10, dt=1e300),
        lambda: ng.bootstrap_ci(lambda i: 1.0, 10, n_boot=10**30),
        lambda: ng.bootstrap_ci(lambda i: 1.0, 10**6, n_boot=10**5),
        lambda: chaos.embed_indices(10**12),
        lambda: chaos.LinearAR("lms", epochs=10**30).fit(
            *chaos.embed(np.sin(0.3 * np.arange(200.0)))
        ),
        lambda: data.teacher_student_grid(step=1e-9),
        lambda: ng.VAF(share="neuron", num_channels=(10**5, 10**5)),
        lambda: chaos.bump_network(np.zeros((10**5, 2)), 1.0, np.ones(10**5)),
    ],
)
def test_absurd_sizes_are_refused_with_the_limit(call) -> None:
    with pytest.raises(InvalidInput, match="limit|<="):
        call()


def test_infinite_transient_is_an_nngeom_error() -> None:
    with pytest.raises(InvalidInput, match="transient"):
        chaos.lorenz(10, transient=math.inf)


def test_lorenz_is_unchanged_by_the_faster_loop() -> None:
    # the Python-float loop does the array form's operations in the same order
    s = np.array([1.0, 1.0, 1.0]) + np.random.default_rng(0).uniform(-0.5, 0.5, size=3)
    h, sigma, rho, beta = 0.005, 10.0, 28.0, 8.0 / 3.0

    def f(v):
        return np.array(
            [sigma * (v[1] - v[0]), v[0] * (rho - v[2]) - v[1], v[0] * v[1] - beta * v[2]]
        )

    ref = []
    for k in range(41):
        if k % 4 == 0:
            ref.append(s)
        k1 = f(s)
        k2 = f(s + 0.5 * h * k1)
        k3 = f(s + 0.5 * h * k2)
        k4 = f(s + h * k3)
        s = s + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
    assert np.array_equal(chaos.lorenz(11, transient=0.0), np.array(ref))


# --- 9: seeds -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["abc", 2**64, -1, 1.5, True, None])
def test_bad_seeds_are_refused(net, seed) -> None:
    calls = [
        lambda: ng.tangent_sensitivity_hutchinson(net, X, seed=seed),
        lambda: ng.bootstrap_ci(lambda i: 1.0, 5, seed=seed),
        lambda: M.sharpness(net, X, torch.randn(4, 2), seed=seed),
        lambda: chaos.ESN(units=5, washout=2, seed=seed).fit_series(np.sin(0.3 * np.arange(200.0))),
        lambda: chaos.LapedesFarberMLP(seed=seed).fit(*chaos.embed(np.sin(0.3 * np.arange(200.0)))),
        lambda: data.split(torch.randn(8, 2), torch.randn(8), seed=seed),
    ]
    if seed is not None:  # None: the classic history / default draw of the systems
        calls += [lambda: chaos.henon_map(5, seed=seed), lambda: chaos.mackey_glass(5, seed=seed)]
    for call in calls:
        with pytest.raises(InvalidInput, match="seed"):
            call()


def test_largest_seed_is_accepted(net) -> None:
    est = ng.tangent_sensitivity_hutchinson(net, X, seed=2**64 - 1)
    assert torch.isfinite(est.squared).all()
    assert chaos.henon_map(3, seed=2**64 - 1).shape == (3, 2)
    lo, hi = ng.bootstrap_ci(lambda i: float(i.mean()), 5, n_boot=10, seed=2**64 - 1)
    assert lo <= hi


# --- 9: chunk sizes, probes, outputs, methods ---------------------------------------------------


@pytest.mark.parametrize("chunk", [0, -1, 1.5, "a", True])
def test_bad_chunk_sizes(net, chunk) -> None:
    for method in METHODS:
        with pytest.raises(InvalidInput, match="chunk_size"):
            ng.tangent_sensitivity(net, X, method=method, chunk_size=chunk)
        with pytest.raises(InvalidInput, match="chunk_size"):
            ng.tangent_sensitivity_hutchinson(net, X, method=method, chunk_size=chunk)
    with pytest.raises(InvalidInput, match="chunk_size"):
        ng.tangent_sensitivity_bounds(net, X, chunk_size=chunk)
    with pytest.raises(InvalidInput, match="chunk_size"):
        ng.input_jacobian_norm(net, X, chunk_size=chunk)


def test_outputs_and_generators(net) -> None:
    with pytest.raises(InvalidInput, match="output"):
        ng.tangent_sensitivity(net, X, output="abc")
    with pytest.raises(InvalidInput, match="output"):
        ng.tangent_sensitivity(net, X, output=1.5)
    got = ng.tangent_sensitivity(net, X, output=np.int64(1))  # numpy ints are ints
    assert torch.allclose(got, ng.tangent_sensitivity(net, X, output=1))
    with pytest.raises(InvalidInput, match="generator"):
        ng.tangent_sensitivity_hutchinson(net, X, generator="g")
    with pytest.raises(InvalidInput, match="probes"):
        ng.tangent_sensitivity_hutchinson(net, X, probes=10**9)


# --- 9: complex, meta, dtype mismatches ----------------------------------------------------------


BAD_X = [
    torch.randn(4, 3, dtype=torch.complex64),
    torch.randn(4, 3, device="meta"),
]


@pytest.mark.parametrize("bad", BAD_X, ids=["complex", "meta"])
def test_complex_and_meta_inputs(net, bad) -> None:
    for method in METHODS:
        with pytest.raises(InvalidInput, match="complex|meta"):
            ng.tangent_sensitivity(net, bad, method=method)
        with pytest.raises(InvalidInput, match="complex|meta"):
            ng.tangent_sensitivity_hutchinson(net, bad, method=method)
    for call in (ng.input_jacobian_norm, ng.tangent_sensitivity_bounds):
        with pytest.raises(InvalidInput, match="complex|meta"):
            call(net, bad)
    with pytest.raises(InvalidInput, match="complex|meta"):
        M.sharpness(net, bad, torch.randn(4, 2))


def test_complex_model_is_refused() -> None:
    m = ng.mlp([3, 5, 2], seed=0)
    with torch.no_grad():
        m[0].weight = torch.nn.Parameter(m[0].weight.to(torch.complex64))
    for call in (
        lambda: ng.tangent_sensitivity(m, X),
        lambda: ng.input_jacobian_norm(m, X),
        lambda: M.path_norm(m),
        lambda: chaos.decompose(m, np.ones((2, 3))),
    ):
        with pytest.raises(InvalidModel, match="complex"):
            call()


def test_float64_data_on_a_float32_model_is_cast(net) -> None:
    X64 = X.double()
    for method in METHODS:
        a = ng.tangent_sensitivity(net, X64, method=method)
        b = ng.tangent_sensitivity(net, X, method=method)
        assert a.dtype == torch.float32 and torch.allclose(a, b)
    e = ng.tangent_sensitivity_hutchinson(net, X64, method="autodiff", probes=2)
    assert e.squared.dtype == torch.float32
    assert ng.input_jacobian_norm(torch.nn.Sequential(net, torch.nn.Tanh()), X64).dtype == (
        torch.float32
    )
    assert math.isfinite(M.sharpness(net, X64, torch.randn(4, 2), samples=2, iters=2))
    with pytest.raises(InvalidInput, match="range"):  # 1e300 does not fit in float32
        ng.tangent_sensitivity(net, torch.full((2, 3), 1e300, dtype=torch.float64))


# --- 9: finite but huge weights: flagged, never a silent NaN/inf --------------------------------


def test_overflowing_results_are_refused(huge_net) -> None:
    for method in METHODS:
        with pytest.raises(InvalidModel, match="overflow"):
            ng.tangent_sensitivity(huge_net, X, method=method)
        with pytest.raises(InvalidModel, match="overflow"):
            ng.tangent_sensitivity_hutchinson(huge_net, X, method=method)
    with pytest.raises(InvalidModel, match="overflow"):
        ng.input_jacobian_norm(huge_net, X)


def test_norm_measures_do_not_overflow() -> None:
    m = ng.mlp([3, 5, 2], seed=0).double()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(1e200)
    assert math.isfinite(M.log_spectral_product(m))
    assert math.isfinite(M.log_frobenius_product(m))
    assert math.isfinite(M.distance_from_init(m, ng.mlp([3, 5, 2], seed=1).double()))
    with pytest.raises(InvalidModel, match="path norm"):
        M.path_norm(m)
    z = ng.mlp([3, 5, 2], seed=0)
    with torch.no_grad():
        z[0].weight.zero_()
    with pytest.raises(InvalidModel, match="zero"):
        M.log_spectral_product(z)


# --- 9: measures and rank statistics -----------------------------------------------------------


def test_measure_arguments(net) -> None:
    y = torch.randn(4, 2)
    with pytest.raises(InvalidInput, match="target"):
        M.sharpness(net, X, y, target="a")
    with pytest.raises(InvalidInput, match="sigma_range"):
        M.sharpness(net, X, y, sigma_range=(math.nan, 1.0))
    with pytest.raises(InvalidInput, match="shape"):
        M.sharpness(net, X, torch.randn(4))
    with pytest.raises(InvalidInput, match="labels"):
        M.sharpness(net, X, torch.tensor([0, 1, 5, 0]))
    with pytest.raises(InvalidInput, match="init"):
        M.distance_from_init(net, "abc")
    with pytest.raises(InvalidInput, match="complex"):
        ng.kendall_tau([1j, 2j], [1, 2])
    with pytest.raises(InvalidInput, match="numbers"):
        ng.kendall_tau(["a", "b"], [1, 2])
    with pytest.raises(InvalidInput, match="statistic"):
        ng.bootstrap_ci(lambda i: "x", 5)
    with pytest.raises(InvalidInput, match="level"):
        ng.bootstrap_ci(lambda i: 1.0, 5, level="a")
    with pytest.raises(InvalidInput, match="unhashable"):
        ng.granulated_psi([1, 2], [1, 2], {"a": [[1], [2]]})
    psi = ng.granulated_psi(
        [1, 2, 3, 4], [1, 2, 4, 3], {"lr": [1, 2, 1, 2], "s": [0, 0, 1, 1]}, vary="lr"
    )
    assert set(psi.per_factor) == {"lr"}


def test_kendall_tau_long_inputs_match_the_direct_count() -> None:
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 50, 6000).astype(float), rng.normal(size=6000)
    assert ng.kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)


# --- 9: activations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fit_range", [(math.nan, 1.0), (1.0,), ("a", "b"), 5, (2.0, 1.0), (-1e300, 1e300)]
)
def test_bad_fit_ranges(fit_range) -> None:
    with pytest.raises(InvalidInput, match="fit_range"):
        ng.Rational(fit_range=fit_range)
    with pytest.raises(InvalidInput, match="fit_range"):
        ng.VAF(init="gelu", fit_range=fit_range)


def test_activation_arguments(net) -> None:
    for bad in (torch.complex64, torch.int64, "float"):
        with pytest.raises(InvalidInput, match="dtype"):
            ng.VAF(dtype=bad)
    with pytest.raises(InvalidInput, match="meta"):
        ng.VAF(device="meta")
    with pytest.raises(InvalidInput, match="init"):
        ng.VAF(init=["relu"])
    with pytest.raises(InvalidInput, match="num_channels"):
        ng.VAF(share="neuron", num_channels=1.5)
    with pytest.raises(InvalidInput, match="beta"):
        ng.SwishBeta(math.nan)
    with pytest.raises(InvalidInput, match="init"):
        ng.Rational(init=["relu"])
    with pytest.raises(InvalidInput, match="options"):
        ng.make_baseline("relu", k=3)
    with pytest.raises(InvalidInput, match="options"):
        ng.make_baseline("rational", nope=1)
    with pytest.raises(InvalidInput, match="weight_decay"):
        ng.param_groups(net, weight_decay=math.nan)
    with pytest.raises(InvalidInput, match="activation_lr"):
        ng.param_groups(net, activation_lr="a")
    with pytest.raises(InvalidInput, match="Module"):
        ng.export_activations("model")
    vaf = ng.VAF()
    with pytest.raises(InvalidInput, match="complex"):
        vaf.evaluate([1j])
    with pytest.raises(InvalidInput, match="floating"):
        vaf(torch.randn(3, dtype=torch.complex64))
    with pytest.raises(InvalidInput, match="unit"):
        ng.VAF(share="neuron", num_channels=3).knots("a")


# --- 9: data loaders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage garbage",
        b"\x00\x00\x08\x01",
        b"\x00\x00\x08\x01\x00\x00\x00\x05abc",
        b"\x00\x00\x08\x04" + b"\xff" * 16,  # a header declaring ~2^128 bytes
        b"\x00\x00\x07\x01\x00\x00\x00\x01a",
    ],
)
def test_idx_reader_on_garbage(tmp_path, content) -> None:
    for name, raw in (("f", content), ("f.gz", gzip.compress(content))):
        p = tmp_path / name
        p.write_bytes(raw)
        with pytest.raises(DataError):
            data.read_idx(p)


def test_idx_reader_on_corrupt_gzip_and_non_paths(tmp_path) -> None:
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05abcde")[:-12] + b"\x00" * 12)
    with pytest.raises(DataError):
        data.read_idx(p)
    with pytest.raises(DataError, match="path"):
        data.read_idx(5)
    with pytest.raises(DataError):
        data.read_idx(tmp_path)


def test_data_helpers(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="complex"):
        data.pool_images(torch.randn(2, 16, dtype=torch.complex64), 2)
    with pytest.raises(InvalidInput, match="float"):
        data.pool_images(torch.arange(32).reshape(2, 16), 2)
    with pytest.raises(InvalidInput, match="step"):
        data.teacher_student_grid(step=math.nan)
    with pytest.raises(InvalidInput, match="dtype"):
        data.teacher_student_grid(dtype=torch.int64)
    with pytest.raises(InvalidInput, match="test_fraction"):
        data.split(torch.randn(8, 2), torch.randn(8), test_fraction="a")
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError):
        data.load_arrays(bad)
    c = tmp_path / "c.npy"
    np.save(c, np.ones((2, 3), dtype=complex))
    with pytest.raises(DataError, match="complex"):
        data.load_inputs(c)


# --- 9: chaos ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", math.nan, math.inf, 1j])
def test_chaos_system_parameters(value) -> None:
    calls = [
        lambda: chaos.mackey_glass(10, a=value),
        lambda: chaos.mackey_glass(10, step=value),
        lambda: chaos.logistic_map(10, r=value),
        lambda: chaos.henon_map(10, a=value),
        lambda: chaos.henon_map(10, x0=(value, 0.0)),
        lambda: chaos.lorenz(10, rho=value),
        lambda: chaos.lorenz(10, x0=value),
    ]
    for call in calls:
        with pytest.raises(NngeomError):
            call()


def test_chaos_divergence_is_flagged() -> None:
    with pytest.raises(InvalidInput, match="diverged"):
        chaos.lorenz(100, rho=1e200)
    with pytest.raises(InvalidInput, match="diverged|number"):
        chaos.mackey_glass(10, p=1e300, history=2.0, transient=0.0)
    with pytest.raises(InvalidInput, match="number"):
        chaos.mackey_glass(10, history=lambda t: "x")


def test_chaos_arrays_and_metrics() -> None:
    s = np.sin(np.arange(200) * 0.3)
    for bad in (np.ones(5, complex), torch.randn(5, device="meta"), "abc", [None, 1]):
        with pytest.raises(InvalidInput):
            chaos.embed(bad)
        with pytest.raises(InvalidInput):
            chaos.nrmse(bad, bad)
        with pytest.raises(InvalidInput):
            chaos.mean_spread(bad)
    assert chaos.as_series(torch.randn(5, requires_grad=True)).shape == (5,)
    with pytest.raises(InvalidInput, match="scale"):
        chaos.nrmse(s, s, scale="a")
    with pytest.raises(InvalidInput, match="step"):
        chaos.nrmse_at(s[None, :], s[None, :], step=1.5)
    with pytest.raises(InvalidInput, match="dt"):
        chaos.valid_prediction_time(s, s, dt=math.nan)
    with pytest.raises(InvalidInput, match="NaN"):
        chaos.mean_spread([1.0, math.nan])
    # finite but huge predictions: the error is computed without spurious overflow
    assert chaos.nrmse([1.0, 2.0, 3.0], [1e300, -1e300, 3.0]) == pytest.approx(1e300)
    assert math.isfinite(chaos.smape([1.0, 2.0], [1e308, -1e308]))
    with pytest.raises(InvalidInput, match="starts"):
        chaos.contexts(s, [10**30], 10, 5)
    with pytest.raises(InvalidInput, match="length"):
        chaos.contexts(s, [50], "a", 5)


REGRESSORS = {
    "linear": lambda: chaos.LinearAR(),
    "lms": lambda: chaos.LinearAR("lms", epochs=2),
    "poly": lambda: chaos.Polynomial(2),
    "local": lambda: chaos.LocalLinear(),
    "nvar": lambda: chaos.NVAR(),
    "mlp": lambda: chaos.LapedesFarberMLP(max_iter=3),
}


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_predictors_on_bad_data(name) -> None:
    s = np.sin(np.arange(200) * 0.3)
    Xe, ye = chaos.embed(s)
    make = REGRESSORS[name]
    for bad in (np.ones((5, 4), complex), np.full(Xe.shape, np.nan), "abc", np.ones(3)):
        with pytest.raises(InvalidInput):
            make().fit(bad, ye)
    for bad in (ye * 1j, np.full(len(ye), np.inf), np.ones((len(ye), 2)), "abc"):
        with pytest.raises(InvalidInput):
            make().fit(Xe, bad)
    with pytest.raises(InvalidInput, match="fit"):
        make().predict(Xe)
    fitted = make().fit(Xe, ye)
    with pytest.raises(InvalidInput, match="columns"):
        fitted.predict(Xe[:, :2])
    with pytest.raises(InvalidInput, match="N, lags"):
        fitted.predict(np.ones((0, 4)))
    huge = np.full(Xe.shape, 1e300)
    try:
        pred = fitted.predict(huge)
    except InvalidInput as exc:
        assert "non-finite" in str(exc)
    else:
        assert np.isfinite(pred).all()  # a saturating model predicts finite values there


def test_predictor_options() -> None:
    s = np.sin(np.arange(200) * 0.3)
    for call in (
        lambda: chaos.LinearAR("lms", mu="a").fit(*chaos.embed(s)),
        lambda: chaos.LinearAR(ridge=math.nan).fit(*chaos.embed(s)),
        lambda: chaos.LocalLinear().fit(*chaos.embed(s)).predict(chaos.embed(s)[0], chunk_size=0),
        lambda: chaos.LapedesFarberMLP(lr=math.nan).fit(*chaos.embed(s)),
        lambda: chaos.LapedesFarberMLP(device="meta").fit(*chaos.embed(s)),
        lambda: chaos.LapedesFarberMLP(hidden=(1.5,)).fit(*chaos.embed(s)),
        lambda: chaos.ESN(spectral_radius=math.nan).fit_series(s),
        lambda: chaos.ESN(leak="a").fit_series(s),
        lambda: chaos.ESN(units=10).fit_series(s).forecast(s[None, :20], 10**12),
        lambda: chaos.IteratedForecaster(chaos.LinearAR(), lags="a").fit_series(s),
        lambda: chaos.IteratedForecaster(None).fit_series(s),
        lambda: chaos.IteratedForecaster(chaos.LinearAR()).fit_series(s).forecast(s[None, :40], 0),
        lambda: chaos.DirectForecaster(chaos.LinearAR, ["a"]).fit_series(s),
        lambda: chaos.DirectForecaster(chaos.LinearAR, [1]).forecast_at(np.ones((1, 40))),
        lambda: chaos.make_regressor("linear", nope=1),
        lambda: chaos.bump(np.ones((3, 2)), [0, 0], math.nan),
        lambda: chaos.ridge(np.ones((3, 2)), [1, 1, 1]),
        lambda: chaos.ridge(np.ones((3, 2), complex), [1, 1]),
        lambda: chaos.bump_network([[0.0, 0.0]], 1.0, [1.0], steepness=math.inf),
        lambda: chaos.slab(np.ones((3, 2)), [1, 1], "a", 2),
    ):
        with pytest.raises(InvalidInput):
            call()


def test_iterated_forecast_of_a_diverging_model_is_inf() -> None:
    s = np.sin(np.arange(200) * 0.3)
    f = chaos.IteratedForecaster(chaos.Polynomial(3), lags=2, delay=1, horizon=1).fit_series(s)
    out = f.forecast(np.full((1, 2), 1e100), 50)
    assert np.isinf(out[:, -1]).all()  # a diverged forecast stays diverged (documented)


def test_csv_series_errors(tmp_path) -> None:
    p = tmp_path / "h.csv"
    p.write_text("x\n1\n1e999\n")
    with pytest.raises(DataError, match="finite"):
        chaos.read_csv_column(p)
    with pytest.raises(DataError, match="column"):
        chaos.read_csv_column(p, 1.5)
    with pytest.raises(DataError, match="path"):
        chaos.read_csv_column(None)
    with pytest.raises(InvalidInput, match="complex"):
        chaos.write_csv_column(tmp_path / "w.csv", np.ones(3, complex))


# --- round 2 of the fuzz: leaks found by tests/test_fuzz.py -------------------------------------

HUGE_FLOATS = [10**400, -(10**400), 1e308, -0.0]


@pytest.mark.parametrize(
    "vaf",
    [None, "abc", 1j, [], {"a": 1}, object(), torch.zeros(2), torch.nn.ReLU(), ng.mlp([2, 1])],
)
def test_vafexport_needs_a_vaf(vaf) -> None:
    with pytest.raises(InvalidInput, match="VAFExport needs an nngeom.VAF"):
        ng.VAFExport(vaf)


def test_vafexport_refuses_unmaterialized_and_meta_vafs() -> None:
    with pytest.raises(InvalidInput, match="no parameters yet"):
        ng.VAFExport(ng.VAF(k=2, share="channel"))
    with pytest.raises(InvalidModel, match="meta"):
        ng.VAFExport(ng.VAF(k=2).to("meta"))
    v = ng.VAF(k=2)
    x = torch.linspace(-2, 2, 7)
    torch.testing.assert_close(ng.VAFExport(v)(x), v(x))


@pytest.mark.parametrize("value", [10**400, -(10**400), math.nan, math.inf, 1j, "1.0"])
def test_activation_numbers_beyond_float64(value) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), ng.VAF(k=2), torch.nn.Linear(3, 1))
    with pytest.raises(InvalidInput):
        ng.SwishBeta(value)
    for name in ("weight_decay", "activation_lr", "activation_weight_decay"):
        with pytest.raises(InvalidInput, match=name):
            ng.param_groups(model, **{name: value})


@pytest.mark.parametrize("vary", [3, 1j, object(), 2.5, [[1]], ["nope"]])
def test_granulated_psi_bad_vary(vary) -> None:
    factors = {"w": [i % 3 for i in range(12)], "s": [i // 3 for i in range(12)]}
    with pytest.raises(InvalidInput, match="vary"):
        ng.granulated_psi(np.arange(12.0), np.arange(12.0) % 5, factors, vary=vary)


def test_granulated_psi_accepts_any_sequence_of_values() -> None:
    m, g = np.arange(12.0), (np.arange(12.0) * 7) % 5
    as_lists = {"w": [i % 3 for i in range(12)], "s": [i // 3 for i in range(12)]}
    as_arrays = {k: np.array(v) for k, v in as_lists.items()}
    a = ng.granulated_psi(m, g, as_lists, vary=("w",))
    b = ng.granulated_psi(m, g, as_arrays, vary="w")
    assert a.per_factor == b.per_factor


@pytest.mark.parametrize("level", [10**400, 1e308, -0.0, math.nan, 1j])
def test_bootstrap_ci_bad_level(level) -> None:
    with pytest.raises(InvalidInput, match="level"):
        ng.bootstrap_ci(lambda i: float(i.mean()), 10, n_boot=5, level=level)


@pytest.mark.parametrize(
    "returned", [10**400, np.complex128(1 + 1j), 1j, np.array([1j]), torch.ones(2), "x", None]
)
def test_bootstrap_ci_bad_statistic_values(returned) -> None:
    with pytest.raises(InvalidInput, match="statistic returned"):
        ng.bootstrap_ci(lambda i: returned, 10, n_boot=5)


@pytest.mark.parametrize("path", [None, 3, [], {"a": 1}, object(), 1j, "", "a\0b.pt"])
def test_model_files_need_a_path(tmp_path, path) -> None:
    with pytest.raises(InvalidInput, match="path"):
        ng.save_model(ng.mlp([2, 3, 1]), path)
    with pytest.raises(InvalidInput, match="path"):
        ng.load_model(path)


def test_save_model_output_folder_checks(tmp_path) -> None:
    model = ng.mlp([2, 3, 1])
    with pytest.raises(InvalidInput, match="does not exist"):
        ng.save_model(model, tmp_path / "missing" / "m.pt")
    with pytest.raises(InvalidInput, match="is a directory"):
        ng.save_model(model, tmp_path)
    with pytest.raises(InvalidInput, match="names a folder"):
        ng.save_model(model, tmp_path / "..")
    with pytest.raises(InvalidInput, match="too long"):
        ng.save_model(model, tmp_path / ("x" * 300 + ".pt"))
    with pytest.raises(InvalidModel, match="meta"):
        ng.save_model(ng.mlp([2, 3, 1]).to("meta"), tmp_path / "meta.pt")
    assert not (tmp_path / "meta.pt").exists()
    # bytes and PathLike paths work; both formats round-trip
    for name in ("m.pt", "m.safetensors"):
        p = ng.save_model(model, bytes(tmp_path / name))
        x = torch.randn(4, 2)
        torch.testing.assert_close(ng.load_model(p)(x), model(x))


def test_save_model_write_failure_is_a_data_error(tmp_path, monkeypatch) -> None:
    import builtins

    from nngeom import modelfile

    real_open = builtins.open

    def full_disk(file, mode="r", *a, **k):
        if "w" in mode and str(file).endswith("full.pt"):
            raise OSError(28, "No space left on device")
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", full_disk)
    with pytest.raises(DataError, match="No space left"):
        modelfile.save_model(ng.mlp([2, 3, 1]), tmp_path / "full.pt")


@pytest.mark.parametrize(
    "kw",
    [
        {"bias_scaling": 10**400},
        {"bias_scaling": 1e308},
        {"input_scaling": 10**400},
        {"input_scaling": 1e308},
        {"spectral_radius": 1e308},
        {"spectral_radius": 10**400},
        {"leak": 10**400},
        {"connectivity": 10**400},
        {"ridge": 10**400},
    ],
)
def test_esn_numbers_beyond_range(kw) -> None:
    with pytest.raises(InvalidInput, match=next(iter(kw))):
        chaos.ESN(units=10, washout=5, **kw).fit_series(np.sin(0.3 * np.arange(80.0)))


@pytest.mark.parametrize("name", ["input_scaling", "bias_scaling", "spectral_radius"])
def test_esn_negative_zero_is_zero(name) -> None:
    esn = chaos.ESN(units=10, washout=5, **{name: -0.0})
    esn.fit_series(np.sin(0.3 * np.arange(80.0)))
    assert np.isfinite(esn.W_out_).all()


@pytest.mark.parametrize(
    "make",
    [
        chaos.LinearAR,
        lambda: chaos.Polynomial(degree=2),
        chaos.NVAR,
        lambda: chaos.LocalLinear(k=3),
        lambda: chaos.LapedesFarberMLP(hidden=(3,), max_iter=2),
    ],
)
def test_fit_without_targets(make) -> None:
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(InvalidInput, match="needs the targets y"):
        make().fit(X, None)


@pytest.mark.parametrize(
    "make",
    [
        lambda v: chaos.LinearAR(ridge=v),
        lambda v: chaos.LinearAR("lms", mu=v),
        lambda v: chaos.Polynomial(ridge=v),
        lambda v: chaos.NVAR(ridge=v),
        lambda v: chaos.LocalLinear(ridge=v),
        lambda v: chaos.LapedesFarberMLP(lr=v),
    ],
)
def test_predictor_numbers_beyond_float64(make) -> None:
    with pytest.raises(InvalidInput, match="too large for a float64"):
        make(10**400).fit(*chaos.embed(np.sin(0.3 * np.arange(200.0))))


@pytest.mark.parametrize("path", ["missing", "dir", "", "nul", 3, None])
def test_write_csv_column_paths(tmp_path, path) -> None:
    p = {
        "missing": tmp_path / "no" / "s.csv",
        "dir": tmp_path,
        "": "",
        "nul": str(tmp_path / "a\0b.csv"),
    }.get(path, path)
    with pytest.raises(InvalidInput, match="path"):
        chaos.write_csv_column(p, np.ones(3))


def test_write_csv_column_round_trips_and_refuses_bad_headers(tmp_path) -> None:
    x = np.array([0.1, -2.5e-300, 3.0])
    p = chaos.write_csv_column(tmp_path / "s.csv", x, "h\u00e9")
    np.testing.assert_array_equal(chaos.read_csv_column(p, "h\u00e9"), x)
    for bad in ("a\0b", "\ud800", "a,b", ""):
        with pytest.raises(InvalidInput, match="name"):
            chaos.write_csv_column(tmp_path / "t.csv", x, bad)


@pytest.mark.parametrize("fn", [chaos.henon_map, chaos.lorenz])
def test_tensor_x0_with_grad(fn) -> None:
    dim = 2 if fn is chaos.henon_map else 3
    x0 = torch.full((dim,), 0.1, dtype=torch.float64, requires_grad=True)
    np.testing.assert_array_equal(fn(5, x0=x0), fn(5, x0=[0.1] * dim))
    for bad in (torch.ones(dim, dtype=torch.complex64), torch.ones(dim, device="meta")):
        with pytest.raises(InvalidInput, match="x0"):
            fn(5, x0=bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda v: chaos.mackey_glass(10, tau=v, transient=0.0),
        lambda v: chaos.mackey_glass(10, a=v, transient=0.0),
        lambda v: chaos.mackey_glass(10, p=v, transient=0.0),
        lambda v: chaos.mackey_glass(10, history=v, transient=0.0),
        lambda v: chaos.mackey_glass(10, history=lambda t: v, transient=0.0),
        lambda v: chaos.mackey_glass_convergence(t_end=v),
        lambda v: chaos.mackey_glass_convergence(reference_step=v),
        lambda v: chaos.mackey_glass_convergence(steps=(1.0, v)),
        lambda v: chaos.lorenz(10, sigma=v),
        lambda v: chaos.lorenz(10, transient=v),
        lambda v: chaos.logistic_map(10, r=v),
        lambda v: chaos.logistic_map(10, x0=v),
        lambda v: chaos.henon_map(10, a=v),
        lambda v: chaos.henon_map(10, x0=[v, 0.0]),
    ],
)
@pytest.mark.parametrize("value", [10**400, -(10**400), np.complex128(1.0)])
def test_system_numbers_beyond_float64(call, value) -> None:
    with pytest.raises(InvalidInput):
        call(value)


def test_mackey_glass_convergence_needs_distinct_steps() -> None:
    with pytest.raises(InvalidInput, match="distinct"):
        chaos.mackey_glass_convergence(t_end=5.0, steps=(0.5, 0.5))


@pytest.mark.parametrize(
    "call",
    [
        lambda v: chaos.nrmse(np.sin(np.arange(9.0)), np.zeros(9), scale=v),
        lambda v: chaos.nrmse_at(np.sin(np.arange(9.0))[None], np.zeros((1, 9)), 2, scale=v),
        lambda v: chaos.nrmse_curve(np.sin(np.arange(9.0))[None], np.zeros((1, 9)), scale=v),
        lambda v: chaos.log10_nrmse_curve(np.sin(np.arange(9.0))[None], np.zeros((1, 9)), v),
        lambda v: chaos.valid_prediction_time(np.ones((1, 9)), np.ones((1, 9)), dt=v),
        lambda v: chaos.valid_prediction_time(
            np.ones((1, 9)), np.ones((1, 9)), lyapunov_exponent=v
        ),
        lambda v: chaos.valid_prediction_time(np.ones((1, 9)), np.ones((1, 9)), threshold=v),
        lambda v: chaos.valid_prediction_time(np.ones((1, 9)), np.ones((1, 9)), scale=v),
    ],
)
def test_metric_numbers_beyond_float64(call) -> None:
    with pytest.raises(InvalidInput, match="too large for a float64"):
        call(10**400)


def test_valid_prediction_time_overflow_is_refused() -> None:
    y = np.sin(np.arange(30.0))[None].repeat(3, 0)
    with pytest.raises(InvalidInput, match="exceed float64"):
        chaos.valid_prediction_time(y, y, dt=1e308)
    with pytest.raises(InvalidInput, match="exceed float64"):
        chaos.valid_prediction_time(y, y, dt=1e300, lyapunov_exponent=1e300)
    # an error beyond float64 between huge finite values is past the threshold, quietly
    t = chaos.valid_prediction_time(np.full((1, 4), 1e308), np.full((1, 4), -1e308), scale=1.0)
    assert t.tolist() == [0.0]


@pytest.mark.parametrize(
    "call",
    [
        lambda v: chaos.ridge(np.ones((3, 2)), np.ones(2), a=v),
        lambda v: chaos.ridge(np.ones((3, 2)), np.ones(2), steepness=v),
        lambda v: chaos.slab(np.ones((3, 2)), np.ones(2), v, 1.0),
        lambda v: chaos.bump(np.ones((3, 2)), np.zeros(2), v),
        lambda v: chaos.bump(np.ones((3, 2)), np.zeros(2), 0.5, sharpness=v),
        lambda v: chaos.bump_network(np.zeros((2, 2)), v, np.ones(2)),
        lambda v: chaos.bump_network(np.zeros((2, 2)), 0.5, np.ones(2), bias=v),
    ],
)
def test_bump_numbers_beyond_float64(call) -> None:
    with pytest.raises(InvalidInput, match="float64"):
        call(10**400)


def test_bump_overflow_is_refused_without_a_warning() -> None:
    with pytest.raises(InvalidInput, match="overflow"):
        chaos.bump_network(np.full((2, 2), 1e308), 1e308, np.ones(2))
    with pytest.raises(InvalidInput, match="overflow"):
        chaos.bump_network(np.zeros((2, 2)), 1e308, np.ones(2))
    with pytest.raises(InvalidInput, match="overflows"):
        chaos.bump(np.ones((3, 2)), np.full(2, 1e308), 1e308)
