"""Permutation symmetry of networks: permutations, permutation points, saddles, valleys, counting.

After Brea, Simsek, Illing & Gerstner (2019), "Weight-space symmetry in deep networks gives rise
to permutation saddles, connected by equal-loss valleys across the loss landscape".

Conventions: hidden layers are numbered from 0; neuron ``m`` of hidden layer ``l`` has the
*incoming* vector ``(W_l[m, :], b_l[m])`` and the *outgoing* vector ``W_{l+1}[:, m]`` (of length
``n_{l+1}``, the next layer's width or the output size). Functions return new modules and never
modify their inputs. Directions and paths live in the flat vector of the trainable parameters
(:func:`flatten_parameters`).

One file per thing computed:

* ``_permutations`` — :func:`permute`, :func:`permute_all`, :func:`canonical_form`,
  :func:`match_weights`, :func:`equivalent`: the ``prod n_l!`` equivalent copies of a network,
  and finding the permutation between two.
* ``_merging`` — :func:`merge_neurons` / :func:`split_neuron` / :func:`embed_merged` /
  :func:`merge_pairs`: a permutation point is a net in which two neurons of a layer have equal
  incoming vectors; it is the image of a net with one neuron fewer (the *reduced* net:
  incoming averaged, outgoing summed) under a split ``a -> (lam a, (1 - lam) a)``; every
  ``lam`` gives the same function.
* ``_flat_directions`` — :func:`flat_directions` (constant loss at a permutation point),
  :func:`rescaling_directions` (ReLU rescaling), :class:`FreeSubspace` /
  :func:`data_null_subspace` (first-layer directions that are flat at every point).
* ``_critical_points`` — :func:`find_critical_point` with :class:`CriticalPointSearch`: float64
  L-BFGS, then trust-region minimisation, then Levenberg-Marquardt steps on the squared
  gradient norm (which also converge to saddles), with restarts.
* ``_saddles`` — :func:`find_permutation_saddle`: merge two neurons, drive the reduced net to a
  critical point, embed it back, and report the loss, gradient norm, Hessian spectrum
  (:func:`spectrum_at`), saddle index and zero eigenvalues against the paper's ``n_{l+1}`` (the
  loss is constant along the ``n_{l+1}`` directions ``(delta, -delta)``; at a critical point
  that makes ``n_negative + n_zero >= n_{l+1}``, and ``n_{l+1} - rank(H D) >= 1`` of them are
  zero modes: all of them when ``n_{l+1} = 1``, not in general).
* ``_paths`` — :func:`equal_loss_path` (the three-segment constant-loss path from a
  configuration to its ``(i j)``-swapped copy), :func:`path_losses`,
  :func:`linear_path_losses`, :func:`bezier_path` for comparison.
* ``_counting`` — :func:`count_equivalent_minima`, :func:`count_permutation_points`,
  :func:`permutation_point_factor`: exact counts (Python ints / Fractions).
* ``_layers`` / ``_graph_edits`` / ``_mlp`` — the dense hidden layers of graph models and their
  edits; MLP chains taken apart and rebuilt.

Graph models (residual MLPs, conv nets with a dense head, anything :func:`nngeom.model_view`
traces that is not an MLP chain): :func:`dense_hidden_layers` finds the layers whose units can
be permuted alone (an activation between one ``nn.Linear`` and ``nn.Linear`` consumers only,
with BatchNorm1d in eval mode, Dropout, Identity and per-unit PReLU handled). :func:`permute`,
:func:`permute_all`, :func:`merge_neurons`, :func:`split_neuron`, :func:`embed_merged`,
:func:`flat_directions` and :func:`find_permutation_saddle` number those layers and return a
deep copy of the model (same class, same forward) with the layer's tensors reordered, merged or
split. The other functions (canonical form, weight matching, equal-loss paths, rescaling
directions, the data-null subspace) need an MLP chain and raise ``UnsupportedModel`` otherwise.
"""

from __future__ import annotations

from .._params import flatten_parameters, load_flat_parameters
from .._rescaling import rescaling_directions
from ._counting import count_equivalent_minima, count_permutation_points, permutation_point_factor
from ._critical_points import CriticalPoint, CriticalPointSearch, find_critical_point
from ._flat_directions import FreeSubspace, data_null_subspace, flat_directions
from ._layers import DenseLayer, dense_hidden_layers
from ._merging import embed_merged, merge_neurons, merge_pairs, split_neuron
from ._paths import (
    BezierPath,
    EqualLossPath,
    bezier_path,
    equal_loss_path,
    linear_path_losses,
    path_losses,
)
from ._permutations import canonical_form, equivalent, match_weights, permute, permute_all
from ._saddles import PermutationPoint, find_permutation_saddle, spectrum_at

__all__ = [
    "DenseLayer",
    "dense_hidden_layers",
    "permute",
    "permute_all",
    "canonical_form",
    "match_weights",
    "equivalent",
    "merge_neurons",
    "split_neuron",
    "embed_merged",
    "merge_pairs",
    "flat_directions",
    "rescaling_directions",
    "find_critical_point",
    "find_permutation_saddle",
    "CriticalPointSearch",
    "spectrum_at",
    "FreeSubspace",
    "data_null_subspace",
    "PermutationPoint",
    "CriticalPoint",
    "equal_loss_path",
    "EqualLossPath",
    "path_losses",
    "linear_path_losses",
    "bezier_path",
    "BezierPath",
    "count_equivalent_minima",
    "count_permutation_points",
    "permutation_point_factor",
    "flatten_parameters",
    "load_flat_parameters",
]
