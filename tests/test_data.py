"""IDX reader, bundled datasets, splits, the teacher task."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

import nngeom as ng
from nngeom import data


def write_idx(path, array: np.ndarray, code: int = 0x08, compress: bool = False) -> None:
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4", 0x0E: ">f8"}[code]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(dtype).tobytes()
    with (gzip.open if compress else open)(path, "wb") as fh:
        fh.write(raw)


@pytest.mark.parametrize(
    "code, compress", [(0x08, False), (0x08, True), (0x0B, False), (0x0D, True), (0x0E, False)]
)
def test_idx_round_trip(tmp_path, code, compress):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 200, size=(5, 3, 2)) if code in (0x08, 0x0B) else rng.normal(size=(4, 6))
    path = tmp_path / ("x.idx" + (".gz" if compress else ""))
    write_idx(path, a, code, compress)
    got = data.read_idx(path)
    assert got.shape == a.shape and np.allclose(got, a.astype(got.dtype))


def test_wrong_magic(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ng.DataError, match="not an IDX file"):
        data.read_idx(p)


def test_unknown_type_code(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(ng.DataError, match="type code"):
        data.read_idx(p)


def test_truncated_and_padded(tmp_path):
    p = tmp_path / "x"
    write_idx(p, np.arange(24).reshape(2, 3, 4))
    raw = p.read_bytes()
    p.write_bytes(raw[:-5])
    with pytest.raises(ng.DataError, match="truncated"):
        data.read_idx(p)
    p.write_bytes(raw + b"\x00")
    with pytest.raises(ng.DataError, match="longer"):
        data.read_idx(p)
    p.write_bytes(raw[:9])
    with pytest.raises(ng.DataError, match="header"):
        data.read_idx(p)


def test_missing_file(tmp_path):
    with pytest.raises(ng.DataError, match="not found"):
        data.read_idx(tmp_path / "nope")


def _mnist_layout(folder, n_train=6, n_test=4, mismatch=False):
    rng = np.random.default_rng(1)
    write_idx(
        folder / "train-images-idx3-ubyte.gz",
        rng.integers(0, 256, (n_train, 28, 28)),
        compress=True,
    )
    write_idx(
        folder / "train-labels-idx1-ubyte.gz",
        rng.integers(0, 10, (n_train + mismatch,)),
        compress=True,
    )
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte", rng.integers(0, 10, (n_test,)))


def test_load_idx_dataset(tmp_path):
    _mnist_layout(tmp_path)
    ds = data.load_idx_dataset(tmp_path, "mnist")
    assert ds.X_train.shape == (6, 784) and ds.X_test.shape == (4, 784)
    assert (
        ds.X_train.dtype == torch.float32
        and 0 <= float(ds.X_train.min())
        and float(ds.X_train.max()) <= 1
    )
    assert ds.y_train.dtype == torch.int64 and ds.n_features == 784


def test_load_idx_dataset_mismatch(tmp_path):
    _mnist_layout(tmp_path, mismatch=True)
    with pytest.raises(ng.DataError, match="do not match"):
        data.load_idx_dataset(tmp_path)


def test_fashion_mnist_missing_folder(tmp_path):
    with pytest.raises(ng.DataError, match="not installed"):
        data.fashion_mnist(tmp_path)


@pytest.mark.skipif(
    data.fashion_mnist_available() is None, reason="dataset-fashion-mnist not installed"
)
def test_fashion_mnist_installed():
    ds = data.fashion_mnist()
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert sorted(ds.y_train.unique().tolist()) == list(range(10))
    sub = data.image_classification("fashion-mnist", n_train=100, n_test=50, seed=3)
    assert sub.X_train.shape == (100, 784) and sub.name == "fashion-mnist"


def test_digits_and_auto():
    ds = data.digits(seed=0)
    assert ds.X_train.shape[1] == 64 and ds.X_train.shape[0] + ds.X_test.shape[0] == 1797
    auto = data.image_classification("auto", n_train=50, n_test=20, seed=0)
    assert auto.name in ("fashion-mnist", "digits") and auto.X_train.shape[0] == 50
    with pytest.raises(ng.InvalidInput):
        data.image_classification("cifar")


def test_split_is_seeded_and_disjoint():
    X = torch.arange(40.0).reshape(20, 2)
    y = torch.arange(20)
    a, b = data.split(X, y, seed=1), data.split(X, y, seed=1)
    assert torch.equal(a.y_train, b.y_train)
    assert set(a.y_train.tolist()).isdisjoint(a.y_test.tolist()) and len(a.y_test) == 5
    with pytest.raises(ng.InvalidInput):
        data.split(X, y, test_fraction=1.5)
    with pytest.raises(ng.InvalidInput):
        data.split(X, y[:3])


def test_teacher_student_grid():
    X, y, teacher = data.teacher_student_grid("softplus")
    assert X.shape == (1681, 2) and y.shape == (1681, 1) and X.dtype == torch.float64
    W = torch.tensor(data.TEACHER_INCOMING, dtype=torch.float64)
    want = torch.nn.functional.softplus(X @ W.T).sum(dim=1, keepdim=True)
    assert torch.allclose(y, want)
    assert float(X.min()) == -5 and float(X.max()) == 5


def test_load_arrays_and_inputs(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((3, 2)))
    np.savez(tmp_path / "b.npz", X=np.ones((4, 2)), y=np.arange(4))
    torch.save({"X": torch.ones(5, 1, 2, 2), "note": "ignored"}, tmp_path / "c.pt")
    torch.save(torch.zeros(2, 3, dtype=torch.int64), tmp_path / "d.pt")
    assert data.load_inputs(tmp_path / "a.npy").shape == (3, 2)
    got = data.load_arrays(tmp_path / "b.npz", ("X", "y"))
    assert got["y"].tolist() == [0, 1, 2, 3]
    assert data.load_inputs(tmp_path / "c.pt").shape == (5, 4)
    assert data.load_inputs(tmp_path / "d.pt").dtype == torch.float64
    with pytest.raises(ng.DataError, match="must hold 'X' and 'y'"):
        data.load_arrays(tmp_path / "a.npy", ("X", "y"))
    with pytest.raises(ng.DataError, match="unsupported"):
        (tmp_path / "e.csv").write_text("1,2")
        data.load_arrays(tmp_path / "e.csv")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ng.DataError, match="plain numpy"):
        data.load_arrays(tmp_path / "obj.npy")
    with pytest.raises(ng.DataError, match="shape"):
        np.save(tmp_path / "v.npy", np.ones(3))
        data.load_inputs(tmp_path / "v.npy")


def test_pool_images_averages_blocks():
    X = torch.arange(2 * 16, dtype=torch.float64).reshape(2, 16)  # two 4x4 images
    P = data.pool_images(X, 2)
    assert P.shape == (2, 4)
    img = X[0].reshape(4, 4)
    expected = torch.stack([img[r : r + 2, c : c + 2].mean() for r in (0, 2) for c in (0, 2)])
    assert torch.equal(P[0], expected)
    assert torch.equal(data.pool_images(X, 1), X)
    assert data.pool_images(torch.ones(3, 784), 4).shape == (3, 49)
    with pytest.raises(ng.InvalidInput, match="multiple"):
        data.pool_images(X, 3)
    with pytest.raises(ng.InvalidInput, match="square"):
        data.pool_images(torch.ones(2, 15), 1)
    with pytest.raises(ng.InvalidInput, match="factor must be >= 1"):
        data.pool_images(X, 0)
