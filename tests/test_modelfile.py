"""Saving and loading models without executing code, and never guessing an architecture."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nngeom as ng
from nngeom.modelfile import describe_model, format_arch, open_model, parse_arch

# ---------------------------------------------------------------- nngeom.save_model files


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize(
    "act", ["relu", "tanh", "sigmoid", "identity", nn.LeakyReLU(0.2), nn.Softplus(beta=3.0)]
)
def test_round_trip(tmp_path, suffix, act):
    net = ng.mlp([3, 5, 4, 2], act, seed=3, dtype=torch.float64)
    path = ng.save_model(net, tmp_path / f"m{suffix}")
    back = ng.load_model(path)
    x = torch.randn(6, 3, dtype=torch.float64)
    assert torch.equal(back(x), net(x))


def test_round_trip_with_dropout_flatten_nesting_and_output_activation(tmp_path):
    net = nn.Sequential(
        nn.Flatten(),
        nn.Linear(4, 6),
        nn.LeakyReLU(0.1),
        nn.Dropout(0.3),
        nn.Sequential(nn.Linear(6, 5), nn.LeakyReLU(0.1), nn.Dropout(0.5)),
        nn.Linear(5, 2),
        nn.Sigmoid(),
    ).eval()
    for suffix in (".pt", ".safetensors"):
        loaded = open_model(ng.save_model(net, tmp_path / f"d{suffix}"))
        x = torch.randn(7, 4)
        assert torch.equal(loaded.module(x), net(x))
        assert loaded.architecture == "4-6-5-2:leaky_relu(0.1):sigmoid"
        assert loaded.source == "nngeom"


def test_round_trip_of_linears_in_a_row_and_custom_module(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    for net in (Net(), nn.Sequential(nn.Linear(2, 3), nn.Identity(), nn.Linear(3, 1))):
        back = open_model(ng.save_model(net, tmp_path / "c.pt"))
        x = torch.randn(5, 2)
        assert torch.allclose(back.module(x), net(x))
    assert back.architecture == "2-3-1:identity"


def test_save_model_refuses_what_it_cannot_rebuild(tmp_path):
    mixed = nn.Sequential(nn.Linear(1, 3), nn.LeakyReLU(0.1), nn.Linear(3, 3), nn.LeakyReLU(0.2))
    mixed.append(nn.Linear(3, 1))
    with pytest.raises(ng.ModelFileError, match="different parameters"):
        ng.save_model(mixed, tmp_path / "m.pt")
    two = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1))
    with pytest.raises(ng.ModelFileError, match="different activations.*pt2"):
        ng.save_model(two, tmp_path / "m.pt")
    with pytest.raises(ng.ModelFileError, match="torch.export"):
        ng.save_model(ng.mlp([1, 2, 1]), tmp_path / "m.pt2")


def test_saved_file_refuses_arch_and_key(tmp_path):
    path = ng.save_model(ng.mlp([2, 3, 1]), tmp_path / "m.pt")
    with pytest.raises(ng.ModelFileError, match="records its architecture.*2-3-1:relu"):
        ng.load_model(path, arch="2-3-1:tanh")


# ---------------------------------------------------------------- the --arch grammar


@pytest.mark.parametrize(
    "text, normal",
    [
        ("784-100-100-10:leaky_relu(0.1)", "784-100-100-10:leaky_relu(0.1)"),
        ("2-3-1:LEAKY_RELU", "2-3-1:leaky_relu(0.01)"),
        ("2-3-1:leaky_relu(0.10)", "2-3-1:leaky_relu(0.1)"),
        ("2-3-1:softplus(2)", "2-3-1:softplus(2)"),
        ("2-3-1:softplus(1)", "2-3-1:softplus"),
        (" 2-3-1:relu:sigmoid ", "2-3-1:relu:sigmoid"),
        ("3-1:identity", "3-1:identity"),
    ],
)
def test_parse_arch_normalises(text, normal):
    assert format_arch(parse_arch(text)) == normal


@pytest.mark.parametrize(
    "text, match",
    [
        ("784-100-10", "activation is required"),
        ("relu", "SIZES:ACT"),
        ("2-x-1:relu", "positive integers"),
        ("2:relu", "input and an output"),
        ("2-0-1:relu", ">= 1"),
        ("2-3-1:swish", "unknown hidden activation"),
        ("2-3-1:tanh(2)", "takes no parameter"),
        ("2-3-1:leaky_relu(a)", "must be a number"),
        ("2-3-1:leaky_relu(nan)", "finite"),
        ("2-3-1:relu:relu:relu", "too many"),
    ],
)
def test_parse_arch_errors(text, match):
    with pytest.raises(ng.ModelFileError, match=match):
        parse_arch(text)


# ---------------------------------------------------------------- plain state dicts


def test_plain_state_dict_needs_an_architecture(tmp_path):
    torch.save(ng.mlp([2, 6, 1], "tanh").state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ng.ModelFileError) as info:
        ng.load_model(tmp_path / "sd.pt")
    msg = str(info.value)
    assert "does not say its architecture" in msg
    assert ".pt2" in msg and "save_model" in msg and "--arch" in msg and "--key" in msg


def test_plain_state_dict_with_arch(tmp_path):
    net = ng.mlp([2, 6, 1], "tanh", seed=0)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    loaded = open_model(tmp_path / "sd.pt", arch="2-6-1:tanh")
    x = torch.randn(5, 2)
    assert torch.equal(loaded.module(x), net(x))
    assert loaded.architecture == "2-6-1:tanh" and loaded.source == "state_dict"


def test_leaky_relu_slope_of_arch_is_used(tmp_path):
    net = ng.mlp([1, 8, 8, 1], nn.LeakyReLU(0.1), seed=4)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    back = ng.load_model(tmp_path / "sd.pt", arch="1-8-8-1:leaky_relu(0.1)")
    assert [m.negative_slope for m in back if isinstance(m, nn.LeakyReLU)] == [0.1, 0.1]
    x = torch.linspace(-3, 3, 101)[:, None]
    assert torch.equal(back(x), net(x))


def test_state_dict_of_a_custom_module_in_key_order(tmp_path):
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.hid, self.out = nn.Linear(3, 4), nn.Linear(4, 5), nn.Linear(5, 2)

        def forward(self, x):
            return self.out(F.relu(self.hid(F.relu(self.inp(x)))))

    net = Wrapper()
    torch.save(net.state_dict(), tmp_path / "w.pt")
    back = ng.load_model(tmp_path / "w.pt", arch="3-4-5-2:relu")
    x = torch.randn(6, 3)
    assert torch.allclose(back(x), net(x))


def test_no_bias_and_float64_follow_the_state_dict(tmp_path):
    net = ng.mlp([2, 3, 1], bias=False, dtype=torch.float64)
    torch.save(net.state_dict(), tmp_path / "nb.pt")
    loaded = open_model(tmp_path / "nb.pt", arch="2-3-1:relu")
    assert loaded.architecture == "2-3-1:relu (no biases) (float64)"
    x = torch.randn(4, 2, dtype=torch.float64)
    assert torch.equal(loaded.module(x), net(x))


@pytest.mark.parametrize(
    "arch, match",
    [
        ("2-5-1:relu", r"layer 0 \(0.weight\) has shape \(6, 2\).*declares \(5, 2\)"),
        ("2-6-6-1:relu", "declares 3 Linear layers but the state dict has 2"),
        ("3-6-1:relu", r"has shape \(6, 2\)"),
    ],
)
def test_mismatched_arch_is_named(tmp_path, arch, match):
    torch.save(ng.mlp([2, 6, 1]).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ng.ModelFileError, match=match):
        ng.load_model(tmp_path / "sd.pt", arch=arch)


def test_state_dict_with_other_layers_is_refused(tmp_path):
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1))
    torch.save(net.state_dict(), tmp_path / "bn.pt")
    with pytest.raises(ng.ModelFileError, match=r"'1.weight' \(shape \(4,\)\) is not the weight"):
        ng.load_model(tmp_path / "bn.pt", arch="2-4-1:relu")


def test_checkpoint_dictionary_and_key(tmp_path):
    net = ng.mlp([2, 4, 1], seed=1)
    ckpt = {
        "epoch": 3,
        "model_state_dict": net.state_dict(),
        "optimizer": {"lr": 0.1},
        "nested": {"ema": net.state_dict()},
    }
    torch.save(ckpt, tmp_path / "ckpt.pt")
    with pytest.raises(ng.ModelFileError, match="'epoch'.*--key"):
        ng.load_model(tmp_path / "ckpt.pt", arch="2-4-1:relu")
    x = torch.randn(3, 2)
    for key in ("model_state_dict", "nested.ema"):
        back = ng.load_model(tmp_path / "ckpt.pt", arch="2-4-1:relu", key=key)
        assert torch.equal(back(x), net(x))
    with pytest.raises(ng.ModelFileError, match="no entry 'state' in the file.*'epoch'"):
        ng.load_model(tmp_path / "ckpt.pt", arch="2-4-1:relu", key="state")
    with pytest.raises(ng.ModelFileError, match="epoch is a int"):
        ng.load_model(tmp_path / "ckpt.pt", arch="2-4-1:relu", key="epoch.x")
    with pytest.raises(ng.ModelFileError, match="not a state dict"):
        ng.load_model(tmp_path / "ckpt.pt", arch="2-4-1:relu", key="optimizer")


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path):
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ng.ModelFileError, match="execute code"):
        ng.load_model(tmp_path / "evil.pt")
    torch.save(ng.mlp([2, 2, 1]), tmp_path / "whole.pt")  # a whole pickled module
    with pytest.raises(ng.ModelFileError, match="only loads weights"):
        ng.load_model(tmp_path / "whole.pt", arch="2-2-1:relu")


@pytest.mark.parametrize("obj, match", [([1, 2, 3], "holds a list"), ({}, "holds a dict")])
def test_not_a_state_dict(tmp_path, obj, match):
    torch.save(obj, tmp_path / "x.pt")
    with pytest.raises(ng.ModelFileError, match=match):
        ng.load_model(tmp_path / "x.pt", arch="2-2-1:relu")


def test_missing_and_garbage(tmp_path):
    with pytest.raises(ng.ModelFileError, match="not found"):
        ng.load_model(tmp_path / "none.pt")
    (tmp_path / "g.pt").write_bytes(b"garbage")
    with pytest.raises(ng.ModelFileError, match="not a torch file"):
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
    loaded = open_model(ng.save_model(net, tmp_path / f"v{suffix}"))
    assert torch.equal(loaded.module(x), want)
    assert ng.knots(loaded.module, -3, 3).count == ng.knots(net, -3, 3).count
    assert loaded.architecture.startswith("1-6-5-1:vaf(k=3")


# ---------------------------------------------------------------- torch.export programs


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(1, 6), nn.Linear(6, 6), nn.Linear(6, 1)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.out(h + F.relu(self.fc2(self.drop(h))))


class SmallConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.fc = nn.Conv2d(1, 3, 3), nn.Linear(3 * 3 * 3, 2)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x.view(-1, 1, 8, 8))), 2)
        return self.fc(x.flatten(1))


def export(model: nn.Module, x: torch.Tensor, path, *, dynamic: bool = True):
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    torch.export.save(torch.export.export(model, (x,), dynamic_shapes=shapes), path)
    return path


@pytest.fixture(scope="module")
def pt2_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("pt2")
    torch.manual_seed(0)
    models = {"res": Residual().eval(), "conv": SmallConv().eval()}
    export(models["res"], torch.randn(3, 1), d / "res.pt2")
    export(models["conv"], torch.randn(3, 64), d / "conv.pt2")
    return d, models


@pytest.fixture(scope="module")
def pt2_dir(pt2_models):
    return pt2_models[0]


def test_pt2_round_trip_residual_and_conv(pt2_models):
    pt2_dir, models = pt2_models
    want = {
        "res": "linear(1->6) relu linear(6->6) relu add linear(6->1)",
        "conv": "reshape conv2d(1->3,3x3) relu max_pool2d(2) flatten linear(27->2)",
    }
    for name, model in models.items():
        loaded = open_model(pt2_dir / f"{name}.pt2")
        assert loaded.source == "torch.export" and loaded.architecture == want[name]
        d = model.fc1.in_features if name == "res" else 64
        for n in (1, 7):
            x = torch.randn(n, d)
            assert torch.equal(loaded.module(x), model(x))
        assert loaded.module.eval() is loaded.module and not loaded.module.training
    with pytest.raises(ng.ModelFileError, match="holds its own graph"):
        open_model(pt2_dir / "res.pt2", arch="1-6-1:relu")


def test_pt2_of_an_f_relu_mlp(tmp_path):
    class FRelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(1, 5), nn.Linear(5, 1)

        def forward(self, x):
            return self.b(F.leaky_relu(self.a(x), 0.2))

    model = FRelu().eval()
    loaded = open_model(export(model, torch.randn(4, 1), tmp_path / "f.pt2"))
    assert loaded.architecture == "linear(1->5) leaky_relu(0.2) linear(5->1)"
    x = torch.linspace(-2, 2, 33)[:, None]
    assert torch.equal(loaded.module(x), model(x))
    # not exported: the MLP view's arch string where it applies, else the traced operations
    assert describe_model(model) in ("1-5-1:leaky_relu(0.2)", "linear leaky_relu(0.2) linear")


def test_pt2_in_training_mode_or_static_batch_is_refused(tmp_path):
    with pytest.raises(ng.ModelFileError, match=r"training mode.*model.eval\(\)"):
        open_model(export(Residual().train(), torch.randn(3, 1), tmp_path / "t.pt2"))
    static = export(Residual().eval(), torch.randn(3, 1), tmp_path / "s.pt2", dynamic=False)
    with pytest.raises(ng.ModelFileError, match="exactly 3 inputs.*Dim"):
        open_model(static)


def _rewrite(src, dst, edit):
    zin = zipfile.ZipFile(src)
    with zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename.split("/", 1)[1], zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


def _edit_json(entry, change):
    def edit(name, data):
        if name != entry:
            return data
        obj = json.loads(data)
        change(obj)
        return json.dumps(obj).encode()

    return edit


class Marker:
    """Unpickling this would create a file: the tests check that it never appears."""

    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def _pickled(path):
    m = Marker()
    m.path = str(path)
    buf = io.BytesIO()
    torch.save(m, buf)
    return buf.getvalue()


def _first_node(change):
    return _edit_json("models/model.json", lambda o: change(o["graph_module"]["graph"]["nodes"][0]))


def _pickle_weight(obj):
    first = next(iter(obj["config"]))
    obj["config"][first]["use_pickle"] = True


def _inject_fqn(obj):
    first = next(iter(obj["config"]))
    obj["config"]['x"); open("pwned", "w"); ("'] = obj["config"].pop(first)


def _inject_arg_name(obj):
    obj["graph_module"]["module_call_graph"][0]["signature"]["forward_arg_names"] = ["x=open('p')"]


def _inject_expr(obj):
    sizes = obj["graph_module"]["graph"]["tensor_values"]["x"]["sizes"]
    sizes[0]["as_expr"]["expr_str"] = "__import__('os').getcwd()"


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            _edit_json("data/weights/model_weights_config.json", _pickle_weight),
            "stored as a pickle",
        ),
        (_edit_json("data/weights/model_weights_config.json", _inject_fqn), "not a plain name"),
        (_edit_json("models/model.json", _inject_arg_name), "argument name"),
        (_edit_json("models/model.json", _inject_expr), "uses the name '__import__'"),
        (
            _edit_json("models/model.json", lambda o: o.update(guards_code=["open('p', 'w')"])),
            "guard code",
        ),
        (_first_node(lambda n: n.update(target="torch.load")), "calls 'torch.load'"),
        (_first_node(lambda n: n.update(target="_operator.methodcaller")), "not a standard aten"),
        (_first_node(lambda n: n.update(target="#custom.op")), "not a standard aten"),
        (lambda name, data: data if name != "archive_format" else b"zip", "not a 'pt2' archive"),
    ],
)
def test_doctored_pt2_is_refused(pt2_dir, tmp_path, edit, match):
    bad = _rewrite(pt2_dir / "res.pt2", tmp_path / "bad.pt2", edit)
    with pytest.raises(ng.ModelFileError, match=match):
        ng.load_model(bad)


def test_pt2_with_pickled_payloads_runs_no_code(pt2_dir, tmp_path):
    marker = tmp_path / "ran"

    def weight(name, data):
        if name == "data/weights/model_weights_config.json":
            obj = json.loads(data)
            _pickle_weight(obj)
            return json.dumps(obj).encode()
        return _pickled(marker) if name == "data/weights/weight_0" else data

    def sample_inputs(name, data):
        return _pickled(marker) if name == "data/sample_inputs/model.pt" else data

    cases = [(weight, "stored as a pickle"), (sample_inputs, "sample inputs are a pickle")]
    for i, (edit, match) in enumerate(cases):
        bad = _rewrite(pt2_dir / "res.pt2", tmp_path / f"b{i}.pt2", edit)
        with pytest.raises(ng.ModelFileError, match=match):
            ng.load_model(bad)
    extra = tmp_path / "legacy.pt2"
    _rewrite(pt2_dir / "res.pt2", extra, lambda name, data: data)
    with zipfile.ZipFile(extra, "a") as z:
        z.writestr("res/data/weights/model.pt", _pickled(marker))
    with pytest.raises(ng.ModelFileError, match="entry 'data/weights/model.pt'"):
        ng.load_model(extra)
    assert not marker.exists()


def test_garbage_pt2(tmp_path):
    (tmp_path / "g.pt2").write_bytes(b"garbage")
    with pytest.raises(ng.ModelFileError, match="not a torch.export archive"):
        ng.load_model(tmp_path / "g.pt2")
    with zipfile.ZipFile(tmp_path / "z.pt2", "w") as z:
        z.writestr("a/readme.txt", "hello")
    with pytest.raises(ng.ModelFileError, match="not a torch.export program"):
        ng.load_model(tmp_path / "z.pt2")
