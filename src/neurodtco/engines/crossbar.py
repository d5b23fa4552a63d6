"""One crossbar array with ideal virtual grounds: ``solve_crossbar`` for researchers' own studies.

The array follows the conventions of ``circuit.py``: row ``i`` is driven at its left end through
one word segment, neighbouring cells are one segment apart on both lines, and column ``j`` is
collected at its bottom end through one bit segment into an ideal virtual ground (0 V). The
network is linear, so it is factorized once and every input vector costs a few matrix products
(``engines/_nodal`` explains the elimination). Large arrays with resistive lines are reduced by
nested dissection to their transfer matrix (``_nodal/sparse.py``): 1000 vectors on a 1024 x 1024
array cost one factorization and one product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .._validate import check_finite_array
from ._nodal import ArrayNetwork, factorize, solve, unit_drives, wire_conductance
from ._nodal.sparse import dissection_pays, port_response
from .forward import torch_device

if TYPE_CHECKING:
    import torch

METHODS = ("auto", "dense", "dissection")


class CrossbarSolution(NamedTuple):
    """Output currents and every cell's node voltages (unpacks as ``current, word, bit``)."""

    current_a: Any
    word_v: Any
    bit_v: Any


def solve_crossbar(conductance: Any, v_in: Any, r_word: float, r_bit: float, return_nodes: bool = False,
                   method: str = "auto", device: Any = None) -> Any:
    """Output currents ``[batch, cols]`` (A) of a crossbar for input voltages ``[batch, rows]`` (V).

    ``conductance`` is ``[rows, cols]`` in siemens (>= 0); ``r_word`` and ``r_bit`` are the
    resistances of one word-line and one bit-line segment in ohms (0 = ideal wire, handled as
    the exact limit). With ``return_nodes`` a ``CrossbarSolution(current_a, word_v, bit_v)`` is
    returned, the node voltages ``[batch, rows, cols]``. A 1-D ``v_in`` is one input vector;
    torch tensors in give torch tensors out.

    ``method``: ``"dense"`` (row-by-row elimination, ``O(R C^3)``), ``"dissection"`` (nested
    dissection to the transfer matrix, ``O(N^3)`` for ``N x N``; resistive lines and currents
    only) or ``"auto"`` (dissection where it is measured faster). ``device`` (a torch device,
    e.g. ``"cuda"``): the currents are computed there in float64 as one product with the
    transfer matrix, itself factorized on the CPU; they come back as a torch tensor on it.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not accepted: choose one of {METHODS}")
    is_torch = type(v_in).__module__.startswith("torch")
    g = _as_float_array(conductance, "conductance")
    if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
        raise ValueError(f"conductance must be a [rows, cols] array in siemens; got shape {g.shape}")
    check_finite_array("conductance", g)
    if np.any(g < 0):
        where = tuple(int(i) for i in np.argwhere(g < 0)[0])
        raise ValueError(f"conductance[{where}]={g[where]:g} S is negative; conductances must be >= 0 S")
    v = _as_float_array(v_in, "v_in")
    single = v.ndim == 1
    if single:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != g.shape[0]:
        raise ValueError(f"v_in must have shape [batch, {g.shape[0]}] (one voltage per row); "
                         f"got {tuple(np.shape(v_in))}")
    check_finite_array("v_in", v)
    g_word, g_bit = wire_conductance("r_word", r_word), wire_conductance("r_bit", r_bit)
    if return_nodes and (method == "dissection" or device is not None):
        raise ValueError("return_nodes needs method='auto' or 'dense' on the CPU (device=None): nested dissection "
                         "keeps only the rows' drivers and the columns' outputs")
    dissect = method == "dissection" or (method == "auto" and not return_nodes
                                         and dissection_pays(*g.shape, g_word, g_bit))
    if device is not None:
        dev = torch_device(device)
        return _on_device(v, _transfer(g, g_word, g_bit, dissect), single, dev)
    if dissect or (not return_nodes and len(v) > g.shape[0]):
        # the transfer matrix (one unit drive per row) is cheaper than solving every vector
        current = v @ _transfer(g, g_word, g_bit, dissect)
        return _out(current[0] if single else current, is_torch)
    sol = solve(factorize(ArrayNetwork(g[None], g_word, g_bit)), v, nodes=return_nodes)
    current = sol.collected_a
    if not return_nodes:
        return _out(current[0] if single else current, is_torch)
    parts = (current, np.swapaxes(sol.word_v, 0, 1), np.swapaxes(sol.bit_v, 0, 1))  # rows first -> batch first
    return CrossbarSolution(*(_out(p[0] if single else p, is_torch) for p in parts))


def _transfer(g: np.ndarray, g_word: float, g_bit: float, dissect: bool) -> np.ndarray:
    """Collected current per volt on each row driver ``[rows, cols]``."""
    if dissect:
        return port_response(g, g_word, g_bit)[0]
    return unit_drives(factorize(ArrayNetwork(g[None], g_word, g_bit))).collected_a[:-1]


def _on_device(v: np.ndarray, transfer: np.ndarray, single: bool, device: "torch.device") -> Any:
    """``v @ transfer`` in float64 on a torch device."""
    import torch

    current = torch.as_tensor(v, device=device) @ torch.as_tensor(transfer, device=device)
    return current[0] if single else current


def _as_float_array(value: Any, name: str) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().double().numpy()
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers; got {type(value).__name__}") from None


def _out(array: np.ndarray, is_torch: bool) -> Any:
    if is_torch:
        import torch

        return torch.from_numpy(np.ascontiguousarray(array))
    return np.ascontiguousarray(array)
