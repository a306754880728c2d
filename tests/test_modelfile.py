"""Saving and loading models without executing code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nngeom as ng


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("act", ["relu", "tanh", nn.LeakyReLU(0.2)])
def test_round_trip(tmp_path, suffix, act):
    net = ng.mlp([3, 5, 4, 2], act, seed=3, dtype=torch.float64)
    path = ng.save_model(net, tmp_path / f"m{suffix}")
    back = ng.load_model(path)
    x = torch.randn(6, 3, dtype=torch.float64)
    assert torch.equal(back(x), net(x))


def test_plain_state_dict(tmp_path):
    net = ng.mlp([2, 6, 1], "tanh", seed=0)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    back = ng.load_model(tmp_path / "sd.pt", activation="tanh")
    x = torch.randn(5, 2)
    assert torch.allclose(back(x), net(x))


def test_plain_state_dict_with_prefix(tmp_path):
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = ng.mlp([2, 3, 1])

    torch.save(Wrapper().state_dict(), tmp_path / "w.pt")
    assert ng.as_mlp(ng.load_model(tmp_path / "w.pt")).sizes == (2, 3, 1)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path):
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ng.ModelFileError, match="execute code"):
        ng.load_model(tmp_path / "evil.pt")
    torch.save(ng.mlp([2, 2, 1]), tmp_path / "whole.pt")  # a whole pickled module
    with pytest.raises(ng.ModelFileError, match="only loads weights"):
        ng.load_model(tmp_path / "whole.pt")


@pytest.mark.parametrize(
    "obj, match",
    [
        ([1, 2, 3], "not a state dict"),
        ({"conv.weight": torch.zeros(2, 1, 3, 3)}, "nn.Sequential MLP"),
        ({"0.weight": torch.zeros(3, 2), "1.weight": torch.zeros(1, 4)}, "takes 4 inputs"),
    ],
)
def test_not_a_state_dict(tmp_path, obj, match):
    torch.save(obj, tmp_path / "x.pt")
    with pytest.raises(ng.ModelFileError, match=match):
        ng.load_model(tmp_path / "x.pt")


def test_missing_and_garbage(tmp_path):
    with pytest.raises(ng.ModelFileError, match="not found"):
        ng.load_model(tmp_path / "none.pt")
    (tmp_path / "g.pt").write_bytes(b"garbage")
    with pytest.raises(ng.ModelFileError):
        ng.load_model(tmp_path / "g.pt")
    (tmp_path / "g.safetensors").write_bytes(b"garbage")
    with pytest.raises(ng.ModelFileError, match="safetensors"):
        ng.load_model(tmp_path / "g.safetensors")


@pytest.mark.parametrize("share", ["layer", "neuron"])
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_round_trip_of_a_vaf_net(tmp_path, share, suffix):
    from nngeom.activations import VAF

    net = ng.mlp(
        [1, 6, 5, 1],
        VAF(3, share=share, init="tanh", num_channels=6 if share == "neuron" else None),
    )
    if share == "neuron":
        net[3] = VAF(3, share="neuron", init="tanh", num_channels=5)
    x = torch.linspace(-2, 2, 50).unsqueeze(1)
    want = net(x)
    back = ng.load_model(ng.save_model(net, tmp_path / f"v{suffix}"))
    assert torch.equal(back(x), want)
    assert ng.knots(back, -3, 3).count == ng.knots(net, -3, 3).count
