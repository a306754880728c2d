"""Saving and loading models without executing code.

Files are read with ``torch.load(..., weights_only=True)`` (or safetensors): a pickle that would
run code is refused with :class:`ModelFileError`. Three forms are understood:

1. nngeom's own file (``save_model``): ``{"nngeom_format": 1, "arch": {...}, "state_dict": {...}}``;
   a ``.safetensors`` file carries the same ``arch`` as JSON in its metadata.
2. A plain ``state_dict`` of an ``nn.Sequential`` MLP (``"0.weight", "0.bias", "2.weight", ...``,
   any common prefix): the Linear sizes are read from the shapes, the activation comes from the
   caller (``activation=``, default ReLU).
3. Anything else is refused with a message saying what was found.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._errors import ModelFileError
from .nets import activation_name, as_mlp, mlp

__all__ = ["save_model", "load_model", "arch_of"]

FORMAT = 1


def arch_of(model: nn.Module) -> dict[str, Any]:
    """A JSON-able description of an MLP's architecture (sizes, activation, bias, dtype)."""
    view = as_mlp(model, check_finite=False)
    acts = {activation_name(a) for a in view.activations}
    if len(acts) > 1:
        raise ModelFileError("layers with different activations cannot be saved by save_model yet")
    out_act = (
        activation_name(view.output_activation) if view.output_activation is not None else None
    )
    act = acts.pop() if acts else "identity"
    spec: dict[str, Any] = {
        "kind": "mlp",
        "sizes": list(view.sizes),
        "activation": act,
        "bias": view.linears[0].bias is not None,
        "output_activation": out_act,
        "dtype": str(view.dtype).removeprefix("torch."),
    }
    first = view.activations[0] if view.activations else None
    if isinstance(first, nn.LeakyReLU):
        spec["negative_slope"] = first.negative_slope
    if (
        act == "vaf"
    ):  # trainable activations: their settings per layer, their values in the state dict
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


def _build(arch: dict[str, Any]) -> nn.Sequential:
    if arch.get("kind") != "mlp" or not isinstance(arch.get("sizes"), list):
        raise ModelFileError(f"unknown architecture description {arch!r}")
    act: str | nn.Module = arch.get("activation", "relu")
    if act == "leaky_relu":
        act = nn.LeakyReLU(float(arch.get("negative_slope", 0.01)))
    vaf = arch.get("vaf")
    if act == "vaf":
        act = "identity"  # replaced layer by layer below
    dtype = getattr(torch, str(arch.get("dtype", "float32")), torch.float32)
    net = mlp(
        [int(s) for s in arch["sizes"]],
        act,
        bias=bool(arch.get("bias", True)),
        dtype=dtype,
        output_activation=arch.get("output_activation"),
    )
    if vaf is not None:
        from .activations import VAF

        if len(vaf) != len(arch["sizes"]) - 2:
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


def save_model(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Save an MLP so that ``load_model`` rebuilds it exactly (``.safetensors`` or torch format)."""
    path = Path(path)
    arch = arch_of(model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path), metadata={"nngeom_arch": json.dumps(arch)})
    else:
        torch.save({"nngeom_format": FORMAT, "arch": arch, "state_dict": state}, path)
    return path


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


_KEY = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)\.(?P<what>weight|bias)$")


def _from_plain_state_dict(state: dict[str, torch.Tensor], activation: str) -> nn.Sequential:
    layers: dict[int, dict[str, torch.Tensor]] = {}
    prefixes = set()
    for key, value in state.items():
        m = _KEY.match(key)
        if m is None:
            raise ModelFileError(
                f"state dict key {key!r} is not of an nn.Sequential MLP ('<i>.weight' / '<i>.bias'); "
                "save the model with nngeom.save_model to keep its architecture"
            )
        prefixes.add(m["prefix"])
        layers.setdefault(int(m["index"]), {})[m["what"]] = value
    if len(prefixes) != 1:
        raise ModelFileError(
            f"state dict mixes several modules ({sorted(prefixes)}); cannot rebuild it"
        )
    order = sorted(layers)
    sizes: list[int] = []
    for i, idx in enumerate(order):
        w = layers[idx].get("weight")
        if w is None or w.ndim != 2:
            raise ModelFileError(f"layer {idx} has no 2-D weight: not a Linear layer")
        if i == 0:
            sizes.append(int(w.shape[1]))
        elif int(w.shape[1]) != sizes[-1]:
            raise ModelFileError(
                f"layer {idx} takes {w.shape[1]} inputs but the previous gives {sizes[-1]}"
            )
        sizes.append(int(w.shape[0]))
    has_bias = {("bias" in layers[idx]) for idx in order}
    if len(has_bias) != 1:
        raise ModelFileError(
            "some Linear layers have a bias and some do not; save with nngeom.save_model"
        )
    dtype = layers[order[0]]["weight"].dtype
    net = mlp(sizes, activation, bias=has_bias.pop(), dtype=dtype)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, idx in zip(linears, order):
            lin.weight.copy_(layers[idx]["weight"])
            if lin.bias is not None:
                lin.bias.copy_(layers[idx]["bias"])
    return net


def load_model(path: str | os.PathLike[str], *, activation: str = "relu") -> nn.Sequential:
    """Load a model saved by :func:`save_model` or a plain MLP ``state_dict``, without running code.

    Args:
        path: a ``.pt``/``.pth`` file (read with ``weights_only=True``) or a ``.safetensors`` file.
        activation: the hidden activation to assume for a plain state dict (ignored otherwise).

    Raises:
        ModelFileError: the file is missing, is a pickle with code in it, or is not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    arch = None
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                state = {k: fh.get_tensor(k) for k in fh.keys()}
        except Exception as exc:
            raise ModelFileError(f"{path} is not a readable safetensors file ({exc})") from exc
        if "nngeom_arch" in meta:
            arch = json.loads(meta["nngeom_arch"])
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ModelFileError(
                f"{path} is a pickle that would execute code (a whole pickled model or custom "
                "objects); nngeom only loads weights: save model.state_dict() or use "
                "nngeom.save_model / safetensors"
            ) from exc
        except Exception as exc:
            raise ModelFileError(f"{path} is not a torch file nngeom can read ({exc})") from exc
        if isinstance(obj, dict) and obj.get("nngeom_format") is not None:
            if obj.get("nngeom_format") != FORMAT:
                raise ModelFileError(
                    f"{path} has nngeom model format {obj.get('nngeom_format')}; this nngeom reads {FORMAT}"
                )
            arch, state = obj.get("arch"), obj.get("state_dict")
        else:
            state = obj
        if not _is_state_dict(state):
            raise ModelFileError(
                f"{path} holds a {type(state).__name__}, not a state dict of tensors; save "
                "model.state_dict() or use nngeom.save_model"
            )
    if arch is None:
        return _from_plain_state_dict(state, activation)
    net = _build(arch)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(
            f"{path}: weights do not match the saved architecture ({exc})"
        ) from exc
    return net
