"""Saving and loading models without executing code, and saying which architecture was loaded.

nngeom never guesses an architecture. A model file is one of:

1. a **torch.export program** (``.pt2``), the recommended way to hand *any* model to the CLI::

       model.eval()
       ep = torch.export.export(model, (example,),
                                dynamic_shapes=({0: torch.export.Dim("batch")},))
       torch.export.save(ep, "model.pt2")

   It holds the graph and the weights. The archive is checked before ``torch.export.load`` reads
   it (see :func:`_check_pt2`), and the program's ``.module()`` (an fx ``GraphModule``) is returned.
2. **nngeom's own file** (:func:`save_model`): ``{"nngeom_format": 1, "arch": {...},
   "state_dict": {...}}`` read with ``torch.load(weights_only=True)``; a ``.safetensors`` file
   carries the same ``arch`` as JSON in its metadata. The recorded architecture is used exactly.
3. a **plain state dict** (or a checkpoint dictionary holding one under ``key``) together with an
   explicit architecture string ``arch`` (grammar in :func:`parse_arch`), e.g.
   ``"784-100-100-10:leaky_relu(0.1)"``. The tensors' shapes must match the declared sizes.

Anything else (a state dict without ``arch``, a pickle that would run code, a train-mode exported
graph, ...) is refused with a :class:`ModelFileError` that says what to do.
"""

from __future__ import annotations

import copy
import errno
import io
import json
import math
import os
import pickle
import pickletools
import re
import stat
import types
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._errors import ModelFileError
from ._paths import MAX_NAME_BYTES, output_path, path_arg, path_max, short, write_bytes
from .nets import MAX_PARAMETERS, activation_name, as_mlp, make_activation, mlp

__all__ = [
    "save_model",
    "load_model",
    "open_model",
    "LoadedModel",
    "arch_of",
    "parse_arch",
    "format_arch",
    "describe_model",
    "ARCH_HELP",
    "MODEL_HELP",
]

FORMAT = 1

ARCH_HELP = (
    "Architecture of a plain state dict: SIZES:ACT[:OUT], SIZES the layer sizes joined by '-' "
    "(input, hidden..., output), ACT the hidden activation, OUT an optional activation after the "
    "last layer; activations: relu, leaky_relu(SLOPE), tanh, sigmoid, softplus, softplus(BETA), "
    "identity. Example: 784-100-100-10:leaky_relu(0.1). Biases follow the state dict."
)
MODEL_HELP = (
    "A model file: a torch.export program (.pt2, recommended for any model: "
    "torch.export.save(torch.export.export(model.eval(), (x,), "
    "dynamic_shapes=({0: torch.export.Dim('batch')},)), 'model.pt2')), a file written by "
    "nngeom.save_model (.pt or .safetensors), or a state dict / checkpoint with --arch [--key]."
)
_OPTIONS = (
    "give the architecture: save the model as a torch.export program (.pt2: "
    "torch.export.save(torch.export.export(model.eval(), (x,)), 'model.pt2')), or with "
    "nngeom.save_model(model, 'model.pt'), or pass --arch SIZES:ACT (e.g. 784-100-10:relu) "
    "[with --key KEY for a checkpoint dictionary]"
)


# --------------------------------------------------------------------------------------------
# The architecture grammar: SIZES:ACT[:OUT]
# --------------------------------------------------------------------------------------------

_PARAM = {"leaky_relu": ("negative_slope", 0.01), "softplus": ("beta", 1.0)}
_ACT_RE = re.compile(r"^(?P<name>[a-z_]+)(?:\((?P<arg>[^()]*)\))?$")


def _parse_act(text: str, where: str) -> dict[str, Any]:
    m = _ACT_RE.match(text.strip().lower())
    known = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus", "identity")
    if m is None or m["name"] not in known:
        raise ModelFileError(
            f"--arch: unknown {where} activation {text!r}; use one of relu, leaky_relu(SLOPE), "
            "tanh, sigmoid, softplus[(BETA)], identity"
        )
    name, arg = m["name"], m["arg"]
    spec: dict[str, Any] = {"name": name}
    if arg is not None:
        if name not in _PARAM:
            raise ModelFileError(f"--arch: activation {name} takes no parameter, got {text!r}")
        try:
            value = float(arg)
        except ValueError:
            raise ModelFileError(
                f"--arch: the parameter of {name} must be a number, got {arg!r}"
            ) from None
        if not math.isfinite(value):
            raise ModelFileError(f"--arch: the parameter of {name} must be finite, got {arg!r}")
        spec[_PARAM[name][0]] = value
    elif name in _PARAM:
        spec[_PARAM[name][0]] = _PARAM[name][1]
    return spec


def parse_arch(text: str) -> dict[str, Any]:
    """Parse an architecture string into nngeom's architecture record (as :func:`arch_of` gives).

    Grammar: ``SIZES:ACT[:OUT]``. ``SIZES`` are positive ints joined by ``-`` (input size, hidden
    widths, output size; at least two); ``ACT`` is the activation after every hidden layer and
    ``OUT`` an optional activation after the last layer: ``relu``, ``leaky_relu(SLOPE)`` (``leaky_relu``
    alone means slope 0.01, PyTorch's default), ``tanh``, ``sigmoid``, ``softplus`` or
    ``softplus(BETA)``, ``identity``. Example: ``"784-100-100-10:leaky_relu(0.1)"``.
    """
    if not isinstance(text, str) or ":" not in text:
        raise ModelFileError(
            f"--arch {text!r} must be SIZES:ACT, e.g. 784-100-10:relu (the activation is "
            "required: nngeom does not assume one)"
        )
    parts = text.strip().split(":")
    if len(parts) > 3:
        raise ModelFileError(f"--arch {text!r} has too many ':' (grammar: SIZES:ACT[:OUT])")
    try:
        sizes = [int(s) for s in parts[0].split("-")]
    except ValueError:
        raise ModelFileError(
            f"--arch: sizes {parts[0]!r} must be positive integers joined by '-', e.g. 784-100-10"
        ) from None
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ModelFileError(
            f"--arch: sizes {parts[0]!r} need an input and an output size, all >= 1"
        )
    _check_size_limit(sizes, f"--arch {text!r}")
    act = _parse_act(parts[1], "hidden")
    out = _parse_act(parts[2], "output") if len(parts) == 3 else None
    spec: dict[str, Any] = {
        "kind": "mlp",
        "sizes": sizes,
        "activation": act["name"],
        "output_activation": None if out is None else out["name"],
    }
    for key, value in act.items():
        if key != "name":
            spec[key] = value
    if out is not None and len(out) > 1:
        spec["output_params"] = {k: v for k, v in out.items() if k != "name"}
    return spec


def _n_parameters(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def _check_size_limit(sizes: list[int], what: str) -> None:
    """Refuse sizes whose dense layers would exceed nngeom's parameter limit (before allocating)."""
    n = _n_parameters(sizes)
    if n > MAX_PARAMETERS:
        raise ModelFileError(
            f"{what} declares {n:,} parameters, more than nngeom's limit of {MAX_PARAMETERS:,}; "
            "check the layer sizes"
        )


def _fmt_number(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


def _fmt_act(name: str, params: dict[str, Any]) -> str:
    if name in _PARAM:
        key, default = _PARAM[name]
        value = params.get(key, default)
        if name == "softplus" and value == default:
            return name
        return f"{name}({_fmt_number(value)})"
    return name


def format_arch(arch: dict[str, Any]) -> str:
    """The one-line form of an architecture record (``784-100-10:leaky_relu(0.1)``)."""
    sizes = "-".join(str(int(s)) for s in arch["sizes"])
    act = arch.get("activation", "relu")
    if act == "vaf":
        vaf = arch.get("vaf") or [{}]
        cfg = vaf[0]
        text = f"{sizes}:vaf(k={cfg.get('k')},share={cfg.get('share')},hidden={cfg.get('hidden')})"
    else:
        text = f"{sizes}:{_fmt_act(act, arch)}"
    out = arch.get("output_activation")
    if out is not None:
        text += ":" + _fmt_act(out, arch.get("output_params") or {})
    if not arch.get("bias", True):
        text += " (no biases)"
    dtype = arch.get("dtype")
    if dtype not in (None, "float32"):
        text += f" ({dtype})"
    return text


# --------------------------------------------------------------------------------------------
# nngeom's own files
# --------------------------------------------------------------------------------------------


def _act_params(act: nn.Module) -> dict[str, Any]:
    if isinstance(act, nn.LeakyReLU):
        return {"negative_slope": float(act.negative_slope)}
    if isinstance(act, nn.Softplus):
        if float(act.threshold) != 20.0:
            raise ModelFileError(
                f"Softplus with threshold {act.threshold} cannot be recorded (only the default 20); "
                "save the model as a torch.export program (.pt2) instead"
            )
        return {"beta": float(act.beta)}
    return {}


def arch_of(model: nn.Module) -> dict[str, Any]:
    """A JSON-able description of an MLP's architecture (sizes, activation, bias, dtype).

    Dropout and Flatten layers (the identity in evaluation mode) are not part of the record.

    Raises:
        ModelFileError: the model mixes activations or uses one the format cannot rebuild.
    """
    view = as_mlp(model, check_finite=False)
    names = [activation_name(a) for a in view.activations]
    if len(set(names)) > 1:
        raise ModelFileError(
            f"layers with different activations ({', '.join(sorted(set(map(str, names))))}) "
            "cannot be saved by save_model; save the model as a torch.export program (.pt2)"
        )
    act = names[0] if names else "identity"
    params = [_act_params(a) for a in view.activations]
    if any(p != params[0] for p in params):
        raise ModelFileError(
            f"the {act} layers have different parameters ({params}); save the model as a "
            "torch.export program (.pt2)"
        )
    known = {"relu", "leaky_relu", "tanh", "sigmoid", "softplus", "identity", "vaf"}
    out_act = view.output_activation
    out_name = activation_name(out_act) if out_act is not None else None
    for name in (act, out_name):
        if name is not None and name not in known:
            raise ModelFileError(
                f"activation {name!r} cannot be rebuilt from a save_model file; save the model "
                "as a torch.export program (.pt2)"
            )
    if out_name == "vaf":
        raise ModelFileError("a trainable output activation cannot be saved by save_model yet")
    biases = {lin.bias is not None for lin in view.linears}
    if len(biases) != 1:
        raise ModelFileError(
            "some Linear layers have a bias and some do not; save the model as a torch.export "
            "program (.pt2)"
        )
    spec: dict[str, Any] = {
        "kind": "mlp",
        "sizes": list(view.sizes),
        "activation": act,
        "bias": biases.pop(),
        "output_activation": out_name,
        "dtype": str(view.dtype).removeprefix("torch."),
    }
    if params:
        spec.update(params[0])
    if out_act is not None:
        out_params = _act_params(out_act)
        if out_params:
            spec["output_params"] = out_params
    if act == "vaf":  # trainable activations: their settings per layer, their values in the state
        spec["vaf"] = [
            {
                "k": a.k,
                "share": a.share,
                "hidden": a.hidden,
                "channel_dim": a.channel_dim,
                "unit_shape": None if a.unit_shape is None else list(a.unit_shape),
            }
            for a in view.activations
        ]
    return spec


def _make_act(name: str, params: dict[str, Any]) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(float(params.get("negative_slope", 0.01)))
    if name == "softplus":
        return nn.Softplus(beta=float(params.get("beta", 1.0)))
    return make_activation(name)


_KNOWN_ACTS = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus", "identity")
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_MAX_VAF_K = 10_000


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_record(arch: Any, src: str) -> dict[str, Any]:
    """Refuse a malformed architecture record of a model file before anything is built.

    Every field is checked for type and range (sizes: positive ints within nngeom's parameter
    limit; activations from the known list with finite parameters; ``bias`` a bool; ``dtype`` a
    floating-point type; VAF settings per hidden layer), so a hand-made or corrupted file gets a
    message instead of a crash deep in the model builder.
    """

    def bad(why: str) -> ModelFileError:
        return ModelFileError(
            f"{src}: the architecture recorded in the file is malformed ({why}); save the model "
            "again with nngeom.save_model, or save its state_dict() and pass --arch"
        )

    if not isinstance(arch, dict):
        raise bad(f"a {type(arch).__name__}, not a dictionary")
    if arch.get("kind") != "mlp":
        raise bad(f"kind {str(arch.get('kind'))[:40]!r}, expected 'mlp'")
    sizes = arch.get("sizes")
    if not isinstance(sizes, list) or len(sizes) < 2:
        raise bad("'sizes' must be a list of at least two layer sizes")
    if len(sizes) > 10_000 or not all(_is_int(v) and v >= 1 for v in sizes):
        raise bad(f"'sizes' must be positive ints, got {str(sizes)[:80]}")
    n = _n_parameters(sizes)
    if n > MAX_PARAMETERS:
        raise bad(
            f"sizes {str(sizes)[:80]} give {n:,} parameters, more than nngeom's limit of "
            f"{MAX_PARAMETERS:,}"
        )
    act = arch.get("activation", "relu")
    if act not in (*_KNOWN_ACTS, "vaf"):
        raise bad(f"unknown activation {str(act)[:40]!r}; known: {', '.join(_KNOWN_ACTS)}, vaf")
    out = arch.get("output_activation")
    if out is not None and out not in _KNOWN_ACTS:
        raise bad(f"unknown output activation {str(out)[:40]!r}")
    for key in ("negative_slope", "beta"):
        if key in arch and not _is_real(arch[key]):
            raise bad(f"{key!r} must be a finite number, got {str(arch[key])[:40]!r}")
    if arch.get("beta", 1.0) == 0:
        raise bad("softplus 'beta' must not be 0")
    out_params = arch.get("output_params")
    if out_params is not None:
        if not isinstance(out_params, dict) or not all(
            k in ("negative_slope", "beta") and _is_real(v) for k, v in out_params.items()
        ):
            raise bad("'output_params' must map negative_slope/beta to finite numbers")
        if out_params.get("beta", 1.0) == 0:
            raise bad("softplus 'beta' must not be 0")
    if not isinstance(arch.get("bias", True), bool):
        raise bad(f"'bias' must be true or false, got {str(arch.get('bias'))[:40]!r}")
    if arch.get("dtype", "float32") not in _FLOAT_DTYPES:
        raise bad(
            f"dtype {str(arch.get('dtype'))[:40]!r}; the weights must be one of "
            f"{', '.join(_FLOAT_DTYPES)}"
        )
    if act == "vaf":
        vaf = arch.get("vaf")
        if not isinstance(vaf, list) or len(vaf) != len(sizes) - 2:
            raise bad("'vaf' must list the settings of each hidden layer")
        from .activations import SHARES

        for cfg in vaf:
            if not isinstance(cfg, dict):
                raise bad("a VAF setting is not a dictionary")
            if not (_is_int(cfg.get("k")) and 1 <= cfg["k"] <= _MAX_VAF_K):
                raise bad(
                    f"VAF 'k' must be an int in 1..{_MAX_VAF_K}, got {str(cfg.get('k'))[:40]}"
                )
            if cfg.get("share") not in SHARES:
                raise bad(
                    f"VAF 'share' {str(cfg.get('share'))[:40]!r} is not one of {list(SHARES)}"
                )
            if not isinstance(cfg.get("hidden"), str):
                raise bad("VAF 'hidden' must be an activation name")
            if not _is_int(cfg.get("channel_dim", 1)):
                raise bad("VAF 'channel_dim' must be an int")
            shape = cfg.get("unit_shape")
            if shape is not None and (
                not isinstance(shape, list)
                or len(shape) > 8
                or not all(_is_int(v) and v >= 1 for v in shape)
                or math.prod(shape) * (3 * cfg["k"] + 1) > MAX_PARAMETERS
            ):
                raise bad(
                    f"VAF 'unit_shape' {str(shape)[:60]} is not a small list of positive ints"
                )
    return arch


def _expected_linear_shapes(arch: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes of the Linear layers of ``_build(arch)`` (nothing allocated)."""
    sizes = arch["sizes"]
    shapes: dict[str, tuple[int, ...]] = {}
    for l, (a, b) in enumerate(zip(sizes, sizes[1:])):
        shapes[f"{2 * l}.weight"] = (b, a)
        if arch.get("bias", True):
            shapes[f"{2 * l}.bias"] = (b,)
    return shapes


def _check_state_matches(state: dict[str, torch.Tensor], arch: dict[str, Any], src: str) -> None:
    """Compare the file's tensors with the recorded architecture BEFORE building the model: a
    small file that declares huge layers is refused without allocating them."""
    for name, want in _expected_linear_shapes(arch).items():
        got = state.get(name)
        if got is None:
            raise ModelFileError(
                f"{src}: the recorded architecture {_safe_format(arch)} needs the tensor "
                f"{name!r} of shape {want}, which the file does not hold"
            )
        if tuple(got.shape) != want:
            raise ModelFileError(
                f"{src}: weights do not match the saved architecture: {name!r} has shape "
                f"{tuple(got.shape)} but {_safe_format(arch)} declares {want}"
            )
    total = sum(t.numel() for t in state.values())
    for cfg in arch.get("vaf") or []:
        shape = cfg.get("unit_shape")
        if shape and math.prod(shape) > total:
            raise ModelFileError(
                f"{src}: the recorded VAF unit shape {shape} has more units than the file has "
                "numbers; the file is corrupted"
            )


def _check_float_weights(state: dict[str, torch.Tensor], src: str) -> None:
    for name, t in state.items():
        if not t.is_floating_point():
            raise ModelFileError(
                f"{src}: the tensor {name!r} has dtype {str(t.dtype).removeprefix('torch.')}; "
                "nngeom needs floating-point weights: convert them (model.float()) and save again"
            )


def _build(arch: dict[str, Any], *, bias: bool | None = None) -> nn.Sequential:
    """The canonical ``nn.Sequential`` of an architecture record (Linear, act, ..., Linear[, out])."""
    if not isinstance(arch, dict) or arch.get("kind") != "mlp":
        raise ModelFileError(f"unknown architecture description {arch!r}")
    sizes = arch.get("sizes")
    if not isinstance(sizes, list) or len(sizes) < 2:
        raise ModelFileError(f"architecture description without valid sizes: {arch!r}")
    name = str(arch.get("activation", "relu"))
    vaf = arch.get("vaf")
    act: nn.Module = nn.Identity() if name == "vaf" else _make_act(name, arch)
    out_name = arch.get("output_activation")
    out = None if out_name is None else _make_act(out_name, arch.get("output_params") or {})
    dtype = getattr(torch, str(arch.get("dtype", "float32")), None)
    if not isinstance(dtype, torch.dtype):
        raise ModelFileError(f"unknown dtype {arch.get('dtype')!r} in the architecture record")
    net = mlp(
        [int(s) for s in sizes],
        act,
        bias=bool(arch.get("bias", True)) if bias is None else bias,
        dtype=dtype,
        output_activation=out,
    )
    if name == "vaf":
        from .activations import VAF

        if not isinstance(vaf, list) or len(vaf) != len(sizes) - 2:
            raise ModelFileError("the file's VAF settings do not match its number of hidden layers")
        for l, cfg in enumerate(vaf):
            shape = cfg.get("unit_shape")
            channels = (
                None if not shape else (shape[0] if cfg["share"] == "channel" else tuple(shape))
            )
            net[2 * l + 1] = VAF(
                int(cfg["k"]),
                share=cfg["share"],
                init=cfg["hidden"],
                hidden=cfg["hidden"],
                channel_dim=int(cfg["channel_dim"]),
                num_channels=channels,
                dtype=dtype,
            )
    return net


def _canonical_state(model: nn.Module, arch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model's weights in the layout of ``_build(arch)`` (Dropout/Flatten/nesting removed)."""
    view = as_mlp(model, check_finite=False)
    net = _build(arch)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    state: dict[str, torch.Tensor] = {}
    for l, (src, dst) in enumerate(zip(view.linears, linears, strict=True)):
        idx = list(net).index(dst)
        state[f"{idx}.weight"] = src.weight
        if src.bias is not None:
            state[f"{idx}.bias"] = src.bias
        if l < len(view.activations):
            for k, v in view.activations[l].state_dict().items():
                state[f"{idx + 1}.{k}"] = v
    if view.output_activation is not None:
        for k, v in view.output_activation.state_dict().items():
            state[f"{len(net) - 1}.{k}"] = v
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_model(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Save an MLP so that :func:`load_model` rebuilds it exactly (``.safetensors`` or torch format).

    The file records the architecture (sizes, activation and its parameters such as a LeakyReLU
    slope, output activation, bias, dtype). Dropout and Flatten layers, the identity in
    evaluation mode, are left out; everything else must be Linear layers and one kind of
    activation (other models: save a torch.export program, ``.pt2``).

    Raises:
        InvalidInput: ``path`` is not a file path that can be written (not a str/PathLike, empty,
            a NUL byte, a directory, a folder that does not exist).
        DataError: writing the file failed (permission denied, disk full).

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 4, 1], dtype=torch.float64)
    >>> path = ng.save_model(net, "net.safetensors")
    >>> path.name
    'net.safetensors'
    """
    path = output_path(path, "path", what="model file")
    if path.suffix == ".pt2":
        raise ModelFileError(
            "save_model writes nngeom's MLP format (.pt or .safetensors); for a .pt2 use "
            "torch.export.save(torch.export.export(model.eval(), (x,)), path)"
        )
    arch = arch_of(model)
    state = _canonical_state(model, arch)
    check = _build(arch)
    check.load_state_dict(state)  # the file will load: fail here rather than at load time
    # serialized in memory first, so every failure of the file itself is one OSError
    if path.suffix == ".safetensors":
        from safetensors.torch import save

        data = save(state, metadata={"nngeom_arch": json.dumps(arch)})
    else:
        buf = io.BytesIO()
        torch.save({"nngeom_format": FORMAT, "arch": arch, "state_dict": state}, buf)
        data = buf.getvalue()
    write_bytes(path, data, what="model file")
    return path


# --------------------------------------------------------------------------------------------
# Plain state dicts with an explicit architecture
# --------------------------------------------------------------------------------------------


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _from_state_dict(state: dict[str, torch.Tensor], arch: dict[str, Any], src: str) -> nn.Module:
    """Fill ``_build(arch)`` from a state dict, matching Linear layers in the dict's order."""
    stems: list[str] = []
    for key, value in state.items():
        stem, _, what = key.rpartition(".")
        if what == "weight" and value.ndim == 2:
            stems.append(stem)
        elif what == "bias" and value.ndim == 1 and f"{stem}.weight" in state:
            continue
        else:
            raise ModelFileError(
                f"{src}: entry {key!r} (shape {tuple(value.shape)}) is not the weight or bias of a "
                f"Linear layer, so the state dict is not the MLP --arch {format_arch(arch)} "
                "declares; save the model as a torch.export program (.pt2) instead"
            )
    sizes = [int(s) for s in arch["sizes"]]
    n_layers = len(sizes) - 1
    if len(stems) != n_layers:
        raise ModelFileError(
            f"{src}: --arch {format_arch(arch)} declares {n_layers} Linear layers but the state "
            f"dict has {len(stems)} ({', '.join(s + '.weight' for s in stems)})"
        )
    has_bias = [f"{stem}.bias" in state for stem in stems]
    if len(set(has_bias)) != 1:
        raise ModelFileError(
            f"{src}: some Linear layers have a bias and some do not; save the model as a "
            "torch.export program (.pt2) instead"
        )
    for l, stem in enumerate(stems):
        want = (sizes[l + 1], sizes[l])
        got = tuple(state[f"{stem}.weight"].shape)
        if got != want:
            raise ModelFileError(
                f"{src}: layer {l} ({stem}.weight) has shape {got} (out, in) but --arch "
                f"{format_arch(arch)} declares {want}; fix --arch to the model's sizes"
            )
        if has_bias[l] and tuple(state[f"{stem}.bias"].shape) != (sizes[l + 1],):
            raise ModelFileError(
                f"{src}: {stem}.bias has shape {tuple(state[f'{stem}.bias'].shape)}, expected "
                f"({sizes[l + 1]},)"
            )
    _check_float_weights(state, src)
    dtype = state[f"{stems[0]}.weight"].dtype
    arch = {**arch, "bias": has_bias[0], "dtype": str(dtype).removeprefix("torch.")}
    net = _build(arch)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, stem in zip(linears, stems, strict=True):
            lin.weight.copy_(state[f"{stem}.weight"])
            if lin.bias is not None:
                lin.bias.copy_(state[f"{stem}.bias"])
    return net


def _select_key(obj: Any, key: str, src: str) -> Any:
    here: Any = obj
    walked: list[str] = []
    for part in key.split("."):
        if not isinstance(here, dict):
            raise ModelFileError(
                f"{src}: --key {key!r}: {'.'.join(walked) or 'the file'} is a "
                f"{type(here).__name__}, not a dictionary"
            )
        if part not in here:
            keys = ", ".join(repr(k) for k in list(here)[:20])
            raise ModelFileError(
                f"{src}: --key {key!r}: no entry {part!r} in "
                f"{'.'.join(walked) or 'the file'} (its keys: {keys})"
            )
        here = here[part]
        walked.append(part)
    return here


# --------------------------------------------------------------------------------------------
# torch.export programs (.pt2)
# --------------------------------------------------------------------------------------------
#
# torch.export.load is NOT free of pickle in this torch (2.13; read in
# torch/export/pt2_archive/_package.py and torch/_export/serde/serialize.py): weights or
# constants marked "use_pickle" are read with torch.load(weights_only=False), opaque constants
# with pickle.loads and custom objects with torch._C._pickle_load_obj; the sample inputs (and
# legacy-format files) fall back to torch.load(weights_only=False) when weights_only=True fails;
# "guards_code" strings are exec'd by .module(); symbolic-shape expressions are parsed with
# sympy.sympify (eval); parameter names, forward argument names and dict keys of the input spec
# are pasted into the Python source that fx generates and execs; node targets are looked up by
# name in torch / operator / math. So the archive is read into memory once and checked first:
# only torch.export's standard entries, no pickled payload, no custom or opaque objects, sample
# inputs that load with weights_only=True (so the fallback never runs), no guards code, plain
# identifiers wherever a name reaches generated code, shape expressions from a small token set,
# and node targets that are aten / prims operators or arithmetic on sizes. The checked bytes are
# then handed to torch.export.load from memory.

_FQN = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*\Z")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TARGET = re.compile(
    r"(?:torch\.ops\.(?:aten|prims)\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+"
    r"|torch\._?sym_[a-z_]+|math\.[a-z_0-9]+)\Z"
)
_OPERATORS = {
    "getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "pos", "abs",
    "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_", "xor",
}  # fmt: skip
_EXPR_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<str>'[a-z]+\d+')"
    r"|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%(),=<>]))"
)
_EXPR_NAMES = {
    "Symbol", "Integer", "Float", "Rational", "True", "False", "positive", "integer", "real",
    "nonnegative", "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv",
    "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow",
    "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat",
    "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "Max", "Min", "Abs",
    "OpaqueUnaryFn_sqrt", "Eq", "Ne", "Ge", "Gt", "Le", "Lt", "And", "Or", "Not",
}  # fmt: skip
_SYMBOL = re.compile(r"[a-z]+\d+\Z")
_TOP_ENTRIES = {
    "archive_format", "archive_version", "byteorder", ".data/version",
    ".data/serialization_id", ".data/.format_version", ".data/.storage_alignment",
    "data/weights/model_weights_config.json", "data/constants/model_constants_config.json",
    "models/model.json", "data/sample_inputs/model.pt",
}  # fmt: skip
_PAYLOAD = re.compile(r"(data/weights/weight_\d+|data/constants/tensor_\d+)\Z")
_SPEC_TYPES = {None, "builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict"}


def _refuse(src: str, why: str) -> ModelFileError:
    return ModelFileError(
        f"{src} is refused: {why}; nngeom loads only plain torch.export programs (weights as "
        "tensors, standard aten operators) without running code from the file"
    )


def _check_expr(text: Any, src: str) -> None:
    if not isinstance(text, str) or len(text) > 2000:
        raise _refuse(src, "a symbolic shape expression is not a short string")
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _EXPR_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _refuse(src, f"symbolic shape expression {text[:80]!r} has unexpected syntax")
        name = m["name"]
        if name is not None and name not in _EXPR_NAMES and not _SYMBOL.match(name):
            raise _refuse(src, f"symbolic shape expression uses the name {name!r}")
        pos = m.end()


def _check_treespec(text: Any, src: str) -> None:
    if text is None:
        return
    try:
        spec = json.loads(text)
    except (TypeError, ValueError):
        raise _refuse(src, "an input/output spec is not JSON") from None

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for v in node:
                walk(v)
            return
        if not isinstance(node, dict):
            return
        if "type" in node and node["type"] not in _SPEC_TYPES:
            raise _refuse(src, f"inputs or outputs of type {node['type']!r} are not supported")
        ctx = node.get("context")
        if isinstance(ctx, str) and ctx != "null":
            try:
                keys = json.loads(ctx)
            except ValueError:
                raise _refuse(src, "an input/output spec context is not JSON") from None
            for k in keys if isinstance(keys, list) else [keys]:
                if k is not None and not (isinstance(k, str) and _IDENT.match(k)):
                    raise _refuse(src, f"input/output key {k!r} is not a plain identifier")
        for v in node.get("children_spec", []) or []:
            walk(v)

    walk(spec)


def _check_graph(graph: Any, src: str) -> None:
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        raise _refuse(src, "the program has no graph")
    if graph.get("custom_obj_values"):
        raise _refuse(src, "the graph holds custom objects")
    for node in graph["nodes"]:
        target = node.get("target") if isinstance(node, dict) else None
        if not isinstance(target, str):
            raise _refuse(src, "a graph node has no operator name")
        ok = bool(_TARGET.match(target))
        if target.startswith("_operator."):
            ok = target.removeprefix("_operator.") in _OPERATORS
        if not ok:
            raise _refuse(src, f"the graph calls {target!r}, which is not a standard aten operator")

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in ("as_graph", "as_graphs"):
                    raise _refuse(src, "the graph has nested subgraphs (control flow)")
                if k in ("as_operator", "as_custom_obj", "as_custom_objs"):
                    raise _refuse(src, "the graph passes operators or objects as arguments")
                if k == "expr_str":
                    _check_expr(v, src)
                elif k != "metadata":
                    walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(graph)


def _check_strings(obj: Any, pattern: re.Pattern[str], src: str, what: str) -> None:
    if isinstance(obj, str):
        if obj and not pattern.match(obj):
            raise _refuse(src, f"{what} {obj[:80]!r} is not a plain name")
    elif isinstance(obj, dict):
        for v in obj.values():
            _check_strings(v, pattern, src, what)
    elif isinstance(obj, list):
        for v in obj:
            _check_strings(v, pattern, src, what)


def _element_size(code: Any) -> int | None:
    try:
        from torch._export.serde.schema import ScalarType
        from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

        return _SERIALIZE_TO_TORCH_DTYPE[ScalarType(code)].itemsize
    except Exception:  # noqa: BLE001 - an unknown code (or a torch without these tables)
        return None


def _check_declared_tensor(meta: Any, nbytes: int, fqn: str, src: str) -> None:
    """Refuse a weight whose declared shape is not backed by its bytes in the archive, BEFORE
    ``torch.export.load`` runs: it allocates ``torch.zeros(declared shape)`` for an empty record
    and views the bytes with the declared sizes and strides otherwise."""

    def ints(key: str) -> list[int]:
        vals = meta.get(key) if isinstance(meta, dict) else None
        vals = [vals] if key == "storage_offset" else vals
        if not isinstance(vals, list) or len(vals) > 64:
            raise _refuse(src, f"weight {fqn!r} has no plain {key}")
        out = [v.get("as_int") if isinstance(v, dict) else None for v in vals]
        if not all(_is_int(v) and v >= 0 for v in out):
            raise _refuse(src, f"weight {fqn!r} has symbolic or negative {key}")
        return out  # type: ignore[return-value]

    sizes, strides, (offset,) = ints("sizes"), ints("strides"), ints("storage_offset")
    if len(strides) != len(sizes):
        raise _refuse(src, f"weight {fqn!r} has {len(sizes)} sizes but {len(strides)} strides")
    numel = math.prod(sizes)
    if numel > MAX_PARAMETERS:
        raise _refuse(
            src,
            f"weight {fqn!r} declares shape {tuple(sizes)} ({numel:,} numbers), more than "
            f"nngeom's limit of {MAX_PARAMETERS:,}",
        )
    itemsize = _element_size(meta.get("dtype"))
    if itemsize is None:
        raise _refuse(src, f"weight {fqn!r} has an unknown dtype code {meta.get('dtype')!r}")
    needed = 0 if numel == 0 else offset + sum((n - 1) * st for n, st in zip(sizes, strides)) + 1
    if needed * itemsize > nbytes:
        raise _refuse(
            src,
            f"weight {fqn!r} declares shape {tuple(sizes)} ({needed * itemsize:,} bytes) but the "
            f"archive holds {nbytes:,} bytes for it (corrupted or forged)",
        )


def _check_pt2(data: bytes, src: str) -> None:
    """Refuse an archive that would make ``torch.export.load`` or ``.module()`` run file content."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ModelFileError(
            f"{src} is not a torch.export archive ({exc}); write one with "
            "torch.export.save(torch.export.export(model.eval(), (x,)), 'model.pt2')"
        ) from None
    prefixes = {n.split("/", 1)[0] for n in names}
    if len(prefixes) != 1 or not all("/" in n for n in names):
        raise _refuse(src, "its entries are not in one archive folder")
    prefix = prefixes.pop() + "/"

    def read(name: str) -> bytes:
        try:
            return zf.read(prefix + name)
        except KeyError:
            raise ModelFileError(
                f"{src} is not a torch.export program (no {name}); write one with "
                "torch.export.save(torch.export.export(model.eval(), (x,)), 'model.pt2')"
            ) from None

    if read("archive_format").strip() != b"pt2":
        raise _refuse(src, "it is not a 'pt2' archive")
    for name in names:
        rel = name[len(prefix) :]
        if rel.endswith("/") or rel in _TOP_ENTRIES or _PAYLOAD.match(rel):
            continue
        if rel.startswith("extra/"):
            continue
        raise _refuse(src, f"it has the entry {rel!r} (pickled, compiled or legacy content)")
    try:
        program = json.loads(read("models/model.json"))
        configs = [
            json.loads(read("data/weights/model_weights_config.json")),
            json.loads(read("data/constants/model_constants_config.json")),
        ]
    except (ValueError, UnicodeDecodeError):
        raise _refuse(src, "its program or weight index is not valid JSON") from None
    for cfg in configs:
        entries = cfg.get("config") if isinstance(cfg, dict) else None
        if not isinstance(entries, dict):
            raise _refuse(src, "its weight index is malformed")
        for fqn, meta in entries.items():
            if not _FQN.match(fqn):
                raise _refuse(src, f"weight name {fqn[:80]!r} is not a plain name")
            if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
                raise _refuse(src, f"weight {fqn!r} is stored as a pickle")
            path = meta.get("path_name")
            if not isinstance(path, str) or not re.match(r"(weight|tensor)_\d+\Z", path):
                raise _refuse(src, f"weight {fqn!r} is not a plain tensor")
            folder = "data/weights/" if cfg is configs[0] else "data/constants/"
            try:
                nbytes = zf.getinfo(prefix + folder + path).file_size
            except KeyError:
                raise _refuse(src, f"weight {fqn!r} has no data ({folder}{path})") from None
            _check_declared_tensor(meta.get("tensor_meta"), nbytes, fqn, src)
    try:
        torch.load(io.BytesIO(read("data/sample_inputs/model.pt")), weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" in str(exc).lower():
            raise _refuse(src, "its sample inputs are a pickle that would execute code") from None
        raise _refuse(src, "its sample inputs are not a torch file") from None
    except Exception as exc:
        raise _refuse(src, f"its sample inputs cannot be read ({type(exc).__name__})") from None
    gm = program.get("graph_module") if isinstance(program, dict) else None
    if not isinstance(gm, dict):
        raise _refuse(src, "it has no graph module")
    if program.get("guards_code"):
        raise _refuse(src, "it carries guard code (Python source)")
    for key in (program.get("range_constraints") or {}).keys():
        if not _SYMBOL.match(str(key)):
            raise _refuse(src, f"shape symbol {str(key)[:40]!r} is not a plain symbol name")
    if gm.get("treespec_namedtuple_fields"):
        raise _refuse(src, "its inputs or outputs are namedtuples")
    _check_graph(gm.get("graph"), src)
    _check_strings(gm.get("signature"), _FQN, src, "name")
    for entry in gm.get("module_call_graph") or []:
        sig = entry.get("signature") if isinstance(entry, dict) else None
        if not sig:
            continue
        _check_strings(sig.get("forward_arg_names"), _IDENT, src, "argument name")
        for k in ("inputs", "outputs"):
            _check_strings(sig.get(k), _FQN, src, "name")
        _check_treespec(sig.get("in_spec"), src)
        _check_treespec(sig.get("out_spec"), src)


def _fixed_mode(self: nn.Module, mode: bool = True) -> nn.Module:
    return self


def _fixed_eval(self: nn.Module) -> nn.Module:
    return self


def _deepcopy_sharing_specs(self: nn.Module, memo: dict[int, Any]) -> nn.Module:
    # Deep-copying a pytree TreeSpec warns in torch 2.13 (FutureWarning about LeafSpec); the
    # input/output specs are immutable, so a copy of the module shares them.
    graph = getattr(self, "_graph", None)
    info = getattr(getattr(graph, "_codegen", None), "pytree_info", None)
    for spec in (
        self.__dict__.get("_in_spec"),
        self.__dict__.get("_out_spec"),
        getattr(info, "in_spec", None),
        getattr(info, "out_spec", None),
    ):
        if spec is not None:
            memo.setdefault(id(spec), spec)
    return type(self).__deepcopy__(self, memo)


def _share_codegen(codegen: Any) -> None:
    # fx's Graph.__deepcopy__ copies its codegen (which holds the specs) without the memo
    def share(memo: dict[int, Any] | None = None) -> Any:
        return copy.copy(codegen)

    codegen.__deepcopy__ = share


def _train_mode_ops(gm: nn.Module) -> list[str]:
    """Operators of the graph called with ``train=True`` / ``training=True`` (dropout, batch norm)."""
    found = []
    graph = getattr(gm, "graph", None)
    for node in [] if graph is None else graph.nodes:
        schema = getattr(node.target, "_schema", None)
        if node.op != "call_function" or schema is None:
            continue
        for i, arg in enumerate(schema.arguments):
            if arg.name in ("train", "training"):
                value = node.args[i] if i < len(node.args) else node.kwargs.get(arg.name)
                if value is True:
                    found.append(node.target._overloadpacket.__name__)
    return found


def _load_pt2(data: bytes, src: str) -> nn.Module:
    _check_pt2(data, src)
    import logging

    log = logging.getLogger("torch.export")
    level = log.level
    try:
        log.setLevel(logging.ERROR)  # torch logs a warning with a traceback before re-raising
        ep = torch.export.load(io.BytesIO(data))
        module = ep.module(check_guards=False)  # input checks in a hook, not a graph node
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(
            f"{src} is a torch.export archive this torch ({torch.__version__}) cannot load "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); re-export it with this "
            "torch version"
        ) from None
    finally:
        log.setLevel(level)
    train_ops = _train_mode_ops(module)
    if train_ops:
        raise ModelFileError(
            f"{src} was exported in training mode ({', '.join(sorted(set(train_ops)))} with "
            "train=True: random or batch-dependent); call model.eval() before "
            "torch.export.export and save it again"
        )
    for node in module.graph.find_nodes(op="placeholder"):
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor) and val.ndim >= 1 and isinstance(val.shape[0], int):
            raise ModelFileError(
                f"{src} was exported for batches of exactly {val.shape[0]} inputs (a static "
                "batch dimension), but the analyses evaluate it on other batch sizes; export "
                "with a dynamic batch: torch.export.export(model.eval(), (x,), "
                "dynamic_shapes=({0: torch.export.Dim('batch')},))"
            )
    # The graph's behaviour is fixed at export time (eval mode, checked above); the module that
    # .module() returns raises on .train()/.eval(), so both are made no-ops that keep it as is.
    nn.Module.train(module, False)
    module.train = types.MethodType(_fixed_mode, module)  # type: ignore[method-assign]
    module.eval = types.MethodType(_fixed_eval, module)  # type: ignore[method-assign]
    module.__deepcopy__ = types.MethodType(_deepcopy_sharing_specs, module)
    _share_codegen(module.graph._codegen)
    module.nngeom_exported = True
    return module


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model and the architecture it was built with.

    Attributes:
        module: the model (an ``nn.Sequential`` MLP, or an fx ``GraphModule`` for ``.pt2``).
        architecture: one line: the arch string (``784-100-10:relu``) for nngeom files and
            ``--arch``, a summary of the graph's operations for ``.pt2``.
        source: ``"torch.export"``, ``"nngeom"`` or ``"state_dict"``.
    """

    module: nn.Module
    architecture: str
    source: str


def _is_pt2(path: Path, data: bytes) -> bool:
    if path.suffix == ".pt2":
        return True
    if data[:2] != b"PK":
        return False
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
    return any(n.endswith("/archive_format") and n.count("/") == 1 for n in names)


def open_model(
    path: str | os.PathLike[str], *, arch: str | None = None, key: str | None = None
) -> LoadedModel:
    """Load a model file (see the module docstring) and describe its architecture.

    Args:
        path: a ``.pt2`` torch.export program, a file of :func:`save_model` (``.pt``/``.pth`` or
            ``.safetensors``), or a ``torch.save``'d state dict / checkpoint dictionary.
        arch: the architecture of a plain state dict (:func:`parse_arch` grammar); required for
            one, refused for the files that record their own architecture.
        key: where the state dict sits in a checkpoint dictionary (``"model_state_dict"``, or a
            dotted path ``"a.b"``).

    Raises:
        ModelFileError: the file is missing or unreadable, would execute code, is a state dict
            without ``arch``, or does not match ``arch``.
    """
    path = path_arg(path, "path")
    src = short(path)
    data = _read_model_bytes(path)
    spec = parse_arch(arch) if arch is not None else None
    if _is_pt2(path, data):
        if arch is not None or key is not None:
            raise ModelFileError(
                f"{src} is a torch.export program: it holds its own graph, so --arch and --key "
                "do not apply; drop them"
            )
        module = _load_pt2(data, src)
        return LoadedModel(module, describe_model(module), "torch.export")
    recorded: dict[str, Any] | None = None
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load as st_load

            state: Any = st_load(data)
            from safetensors import safe_open  # metadata

            with safe_open(src, framework="pt") as fh:
                meta = fh.metadata() or {}
        except Exception as exc:
            raise ModelFileError(f"{src} is not a readable safetensors file ({exc})") from None
        if "nngeom_arch" in meta:
            try:
                recorded = json.loads(meta["nngeom_arch"])
            except ValueError:
                raise ModelFileError(f"{src}: its nngeom_arch metadata is not JSON") from None
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch warns about pickle protocols first
                obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure: say whether it is code or garbage
            raise _unreadable(data, src, exc) from None
        if isinstance(obj, dict) and obj.get("nngeom_format") is not None:
            if obj.get("nngeom_format") != FORMAT:
                raise ModelFileError(
                    f"{src} has nngeom model format {obj.get('nngeom_format')}; this nngeom "
                    f"reads {FORMAT}"
                )
            recorded, state = obj.get("arch"), obj.get("state_dict")
        elif key is not None:
            state = _select_key(obj, key, src)
        else:
            state = obj
    if recorded is not None:
        if arch is not None or key is not None:
            raise ModelFileError(
                f"{src} was written by nngeom.save_model and records its architecture "
                f"({_safe_format(recorded)}); drop --arch and --key"
            )
        recorded = _check_record(recorded, src)
        if not _is_state_dict(state):
            raise ModelFileError(f"{src}: the nngeom file holds no state dict of tensors")
        _check_float_weights(state, src)
        _check_state_matches(state, recorded, src)
        net = _build_checked(recorded, src)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ModelFileError(
                f"{src}: weights do not match the saved architecture "
                f"({' '.join(str(exc).split())[:300]})"
            ) from None
        return LoadedModel(net, format_arch(recorded), "nngeom")
    if not _is_state_dict(state):
        if isinstance(state, dict) and state:
            keys = ", ".join(repr(k) for k in list(state)[:12])
            raise ModelFileError(
                f"{src} holds a dictionary that is not a state dict of tensors (keys: {keys}); "
                "for a checkpoint pass --key with the entry holding the state dict (e.g. --key "
                "model_state_dict) and --arch"
            )
        raise ModelFileError(
            f"{src} holds a {type(state).__name__}, not a state dict of tensors; " + _OPTIONS
        )
    if spec is None:
        raise ModelFileError(
            f"{src} is a plain state dict, which does not say its architecture; " + _OPTIONS
        )
    net = _from_state_dict(state, spec, src)
    return LoadedModel(net, format_arch(spec | _dtype_of(net)), "state_dict")


def _read_model_bytes(path: Path) -> bytes:
    """The file's bytes, or a one-line ModelFileError saying why not (missing, a directory, a
    name too long, unreadable)."""
    src = short(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {src}") from None
    except NotADirectoryError:
        raise ModelFileError(f"model file not found: {src} (a parent is not a folder)") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ModelFileError(
                f"the model path is too long ({len(str(path))} characters; the system allows "
                f"{path_max()} in all and {MAX_NAME_BYTES} per name): {src}"
            ) from None
        raise ModelFileError(f"cannot read the model file {src}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(f"{src} is a directory, not a model file; give the file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{src} is not a regular file; give a model file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read the model file {src}: {exc.strerror or exc}") from None


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def _pickle_imports(blob: bytes) -> list[str] | None:
    """The names a *well-formed* pickle imports, or None when ``blob`` is not a complete pickle
    (so random bytes are never mistaken for a pickle that runs code). Nothing is executed:
    ``pickletools.genops`` only decodes opcodes."""
    names: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(blob):
            if op.name in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                names.append(".".join(strings[-2:]) if len(strings) >= 2 else "?")
            elif isinstance(arg, str):
                strings.append(arg)
            if op.name == "STOP":
                return [n for n in names if _DOTTED.match(n)] if names else names
    except Exception:  # noqa: BLE001 - any decoding failure means: not a pickle
        return None
    return None


def _unreadable(data: bytes, src: str, exc: Exception) -> ModelFileError:
    """Why ``torch.load(weights_only=True)`` failed: a pickle that would run code, or garbage."""
    blob = data
    if data[:2] == b"PK":
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
            blob = zf.read(pkl[0]) if pkl else b""
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError):
            blob = b""
    imports = _pickle_imports(blob)
    if imports:
        shown = ", ".join(sorted(set(imports))[:3])
        return ModelFileError(
            f"{src} is a pickle that would execute code (it imports {shown}: a whole pickled "
            "model or custom objects); nngeom only loads weights: save a torch.export program "
            "(.pt2), use nngeom.save_model, or save model.state_dict() and pass --arch"
        )
    what = "an empty file" if not data else "not a torch archive or a complete pickle"
    return ModelFileError(
        f"{src} is not a torch file nngeom can read ({what}; torch.load: {type(exc).__name__}); "
        "give a .pt2 program, an nngeom.save_model file, or a torch.save'd state dict"
    )


def _build_checked(arch: dict[str, Any], src: str) -> nn.Sequential:
    try:
        return _build(arch)
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a checked record that still cannot be built
        raise ModelFileError(
            f"{src}: the recorded architecture {_safe_format(arch)} cannot be built "
            f"({' '.join(str(exc).split())[:160]}); save the model again with nngeom.save_model"
        ) from None


def _dtype_of(net: nn.Module) -> dict[str, Any]:
    p = next(net.parameters())
    return {
        "dtype": str(p.dtype).removeprefix("torch."),
        "bias": all(m.bias is not None for m in net if isinstance(m, nn.Linear)),
    }


def _safe_format(arch: Any) -> str:
    try:
        return format_arch(arch)
    except Exception:  # noqa: BLE001 - only for a message
        return "recorded"


def load_model(
    path: str | os.PathLike[str], *, arch: str | None = None, key: str | None = None
) -> nn.Module:
    """Load a model without running code from the file; :func:`open_model` also describes it.

    Args:
        path: a ``.pt2`` torch.export program, a :func:`save_model` file, or a state dict.
        arch: the architecture of a plain state dict, e.g. ``"784-100-10:leaky_relu(0.1)"``
            (required for one: nngeom does not guess).
        key: the entry of a checkpoint dictionary holding the state dict (``"a.b"`` nests).

    Raises:
        ModelFileError: see :func:`open_model`.

    >>> import torch, nngeom as ng
    >>> net = ng.mlp([2, 4, 1], dtype=torch.float64)
    >>> _ = ng.save_model(net, "net.safetensors")
    >>> back = ng.load_model("net.safetensors")
    >>> x = torch.ones(3, 2, dtype=torch.float64)
    >>> torch.equal(back(x), net(x))
    True
    """
    return open_model(path, arch=arch, key=key).module


# --------------------------------------------------------------------------------------------
# Describing a model in one line
# --------------------------------------------------------------------------------------------


def _shape(module: nn.Module, node: Any) -> tuple[int, ...] | None:
    if getattr(node, "op", None) != "get_attr":
        val = getattr(node, "meta", {}).get("val") if hasattr(node, "meta") else None
        return tuple(val.shape) if isinstance(val, torch.Tensor) else None
    obj: Any = module
    for part in str(node.target).split("."):
        obj = getattr(obj, part, None)
    return tuple(obj.shape) if isinstance(obj, torch.Tensor) else None


def _ints(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        vals = [int(v) for v in value]
        return str(vals[0]) if len(set(vals)) == 1 else "x".join(map(str, vals))
    return str(int(value))


def _describe_node(module: nn.Module, node: Any) -> str | None:
    target = node.target
    packet = getattr(target, "_overloadpacket", None)
    name = packet.__name__ if packet is not None else getattr(target, "__name__", str(target))
    args = node.args
    if name in ("getitem", "dropout", "feature_dropout", "alpha_dropout", "detach", "clone"):
        return None  # eval-mode dropout is the identity; the rest is bookkeeping
    if name == "linear":
        shape = _shape(module, args[1]) if len(args) > 1 else None
        return f"linear({shape[1]}->{shape[0]})" if shape and len(shape) == 2 else "linear"
    if name.startswith("conv") and len(args) > 1:
        shape = _shape(module, args[1])
        if shape and len(shape) >= 3:
            kernel = "x".join(str(s) for s in shape[2:])
            return f"{name}({shape[1]}->{shape[0]},{kernel})"
    if name in ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"):
        return f"{name}({_ints(args[1])})" if len(args) > 1 else name
    if name == "leaky_relu":
        slope = args[1] if len(args) > 1 else node.kwargs.get("negative_slope", 0.01)
        return f"leaky_relu({_fmt_number(slope)})"
    if name in ("softplus",) and len(args) > 1 and args[1] != 1:
        return f"softplus({_fmt_number(args[1])})"
    if name in ("view", "reshape", "flatten", "_unsafe_view"):
        return "flatten" if name == "flatten" else "reshape"
    return name


def describe_model(module: nn.Module) -> str:
    """One line saying what ``module`` computes.

    An MLP (Linear layers and one kind of activation) is written in the ``--arch`` grammar
    (``784-100-10:leaky_relu(0.1)``); a graph (the fx ``GraphModule`` of a ``.pt2``) as its
    operations in order, e.g. ``conv2d(1->6,5x5) relu max_pool2d(2) ... linear(84->10)``.
    """
    if not getattr(module, "nngeom_exported", False):
        try:
            return format_arch(arch_of(module))
        except Exception:  # noqa: BLE001 - not an MLP nngeom can record: describe the graph
            pass
    graph = getattr(module, "graph", None)
    if graph is None:
        try:
            graph = torch.fx.symbolic_trace(module).graph
        except Exception:  # noqa: BLE001
            return type(module).__name__
    parts: list[str] = []
    for node in graph.nodes:
        if node.op == "call_function":
            text = _describe_node(module, node)
        elif node.op == "call_module":
            if str(node.target).startswith("_guards"):
                continue  # torch.export's input checks
            text = type(module.get_submodule(str(node.target))).__name__.lower()
        elif node.op == "call_method":
            text = str(node.target)
        else:
            continue
        if text is not None and not text.startswith("_"):
            parts.append(text)
    return " ".join(parts) if parts else type(module).__name__
