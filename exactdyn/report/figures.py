"""The report's figures (PNG and SVG), drawn with matplotlib's Agg backend.

- ``trajectory``: closed form (lines) and float64 integrator (markers), every scalar
  observable on its own axes;
- ``error``: |integrator - closed form| against time on a log scale, float64 and high
  precision;
- ``conserved``: |Q(t) - Q(0)| of each conserved quantity along the float64 integrator,
  evaluated by code lowered from the quantity's sympy expression;
- ``regime``: the NTK relative to its initial value and the alignment along the path.
"""

from __future__ import annotations

import os

import mpmath
import numpy as np
import sympy as sp

from .. import _mp
from ..numeric.multi_index import lower_network_exprs
from .content import ReportContent

_LINES = {"linewidth": 1.4}
_MARKS = {"marker": "o", "markersize": 3, "linestyle": "none", "markerfacecolor": "none"}


def conserved_values(model, states: dict) -> dict:
    """Each scalar conserved quantity (no free neuron index) on states of shape (T, d).

    Lowered from ``gradient_flow(model).conserved`` with the package's own lowering;
    entry-wise quantities such as ``C_ab`` are shown through their invariants.
    """
    from ..flows import gradient_flow
    from ..numeric import lowering as low
    from ..symbolic.sums import SUM_INDEX

    flow = gradient_flow(model)
    if flow.notation in ("matrix", "chain"):
        return matrix_conserved_values(model, flow, states)
    if flow.notation == "multi_index":
        return network_conserved_values(model, flow, states)
    bases = flow.network.params
    values = model.symbol_values()
    out = {}
    for q in flow.conserved:
        free = {ix for a in q.expr.atoms(sp.Indexed) for ix in a.indices} - {SUM_INDEX}
        sums = {s.limits[0][0] for s in q.expr.atoms(sp.Sum)}
        if free - sums:
            continue
        params = low._parameters([q.expr])
        fn = low.lower_neuron_exprs([q.expr], bases, params, "conserved",
                                    batched=True).function()
        arrays = [np.asarray(states[b.name], dtype=float) for b in bases]
        val = fn(*arrays, *(float(values[p]) for p in params))[0]
        out[q.name] = np.broadcast_to(np.asarray(val, dtype=float), arrays[0].shape[:-1])
    return out


def network_conserved_values(model, flow, states: dict) -> dict:
    r"""Each conserved quantity of a network over several index kinds on states with a
    leading time axis, lowered by :func:`~exactdyn.numeric.multi_index.lower_network_exprs`;
    a quantity per neuron ``Q`` as ``Q_max``, :math:`\max_j |Q_j(t) - Q_j(0)|`."""
    net = flow.network
    data, scalars = model.data_arrays(), model.scalar_values()
    out = {}
    for q in flow.conserved:
        # A quantity per neuron (a free index j, of the kind of the position it holds in
        # a parameter) is shown through its largest drift over the neurons.
        free = {ix: net.param_indices[x.base][pos].name for x in q.expr.atoms(sp.Indexed)
                if x.base in net.param_indices for pos, ix in enumerate(x.indices)
                if ix not in net.kinds}
        src = lower_network_exprs(net, [q.expr], "conserved", batched=True, free=free)
        args = [np.asarray(states[b.name], dtype=float) for b in net.params]
        args += [data[a] if a in data else float(scalars[a])
                 for a in src.arg_names[len(net.params):]]
        lead = args[0].shape[:args[0].ndim - len(net.param_indices[net.params[0]])]
        val = np.asarray(src.function()(*args)[0], dtype=float)
        if free:
            val = np.broadcast_to(val, lead + val.shape[len(lead):]).reshape(lead + (-1,))
            val = np.max(np.abs(val - val[:1]), axis=-1)
            out[f"{q.name}_max"] = val  # plotted as Q_max: max_j |Q_j(t) - Q_j(0)|
        else:
            out[q.name] = np.broadcast_to(val, lead)
    return out


def matrix_conserved_values(model, flow, states: dict) -> dict:
    r"""Drifts :math:`\lVert Q(t) - Q(0)\rVert_F` of a matrix flow's conserved matrices.

    Each matrix is evaluated by ``sympy.lambdify`` of its sympy expression at every time
    (scalar hyperparameters from ``model.symbol_values()`` when the model has it).
    """
    names = [w.name for w in flow.state]
    values = getattr(model, "symbol_values", dict)()
    out = {}
    for q in flow.conserved:
        scalars = sorted((s for s in q.expr.free_symbols
                          if not isinstance(s, sp.MatrixSymbol) and s in values), key=str)
        fn = sp.lambdify([*flow.state, *scalars], q.expr, "numpy")
        args = [float(values[s]) for s in scalars]
        arrays = [np.asarray(states[n], dtype=float) for n in names]
        mats = [np.asarray(fn(*(a[i] for a in arrays), *args), dtype=float)
                for i in range(arrays[0].shape[0])]
        out[q.name] = np.array([np.linalg.norm(m - mats[0]) for m in mats])
    return out


def _scalar_names(traj) -> list:
    """Scalar observables, and each singular value of the matrix models
    (``singular_values[0]``, ...), never whole matrices or weight vectors."""
    out = []
    for k, v in traj.observables.items():
        if np.ndim(v) == 1:
            out.append(k)
        elif k == "singular_values" and np.ndim(v) == 2 and np.shape(v)[1] <= 4:
            out += [f"{k}[{i}]" for i in range(np.shape(v)[1])]
    return out


def _series(traj, name):
    """The time series ``name`` of :func:`_scalar_names` (``obs[i]`` picks a column)."""
    if name.endswith("]") and "[" in name:
        base, i = name[:-1].split("[")
        return [row[int(i)] for row in traj.observables[base]]
    return traj[name]


def _save(fig, directory: str, stem: str) -> None:
    fig.savefig(os.path.join(directory, f"{stem}.png"), dpi=120, metadata={"Software": None})
    fig.savefig(os.path.join(directory, f"{stem}.svg"), metadata={"Date": None})


def draw(content: ReportContent, directory: str) -> list:
    """Draw every figure of ``content.figures`` into ``directory``; returns file names."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..closed_form import exact
    from ..solve import solve
    from ..verify import VERIFY_RTOL

    model, t = content.model, content.times
    stems = {s for s, _ in content.figures}
    num = solve(model, t, rtol=VERIFY_RTOL)
    ref = exact(model, t) if stems & {"trajectory", "error"} else None
    written = []
    with plt.rc_context({"svg.hashsalt": "exactdyn", "font.size": 9}):
        if ref is not None:
            names = _scalar_names(ref)
            cols = 3
            rows = -(-len(names) // cols)
            fig, axes = plt.subplots(rows, cols, figsize=(9, 2.6 * rows), squeeze=False)
            for ax, name in zip(axes.flat, names):
                ax.plot(t, np.asarray(_series(ref, name), float), color="C0",
                        label="closed form", **_LINES)
                ax.plot(t, np.asarray(_series(num, name), float), color="C1",
                        label="integrator", **_MARKS)
                ax.set_title(name)
                ax.set_xlabel("t")
            for ax in list(axes.flat)[len(names):]:
                ax.set_visible(False)
            axes.flat[0].legend()
            fig.tight_layout()
            _save(fig, directory, "trajectory")
            plt.close(fig)
            written.append("trajectory")
        if "error" in stems:
            high = f"{content.precision} digits" in content.verification
            if high:
                mp_ref = exact(model, t, precision=content.precision)
                mp_num = solve(model, t, precision=content.precision)
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
            for name in _scalar_names(ref):
                err = np.abs(np.asarray(_series(num, name), float)
                             - np.asarray(_series(ref, name), float))
                _logplot(axes[0], t, err, name)
                if not high:
                    continue
                with _mp.workdps(content.precision + 5):
                    mp_err = [abs(a - b) if mpmath.isfinite(a) and mpmath.isfinite(b)
                              else mpmath.nan
                              for a, b in zip(_series(mp_num, name), _series(mp_ref, name))]
                    mp_log = np.array([float(mpmath.log10(e)) if e > 0 else np.nan
                                       for e in mp_err])
                axes[1].plot(t, mp_log, label=name, marker=".", **_LINES)
            axes[0].set_title("float64")
            axes[0].set_ylabel("|integrator - closed form|")
            axes[1].set_title(f"{content.precision} digits")
            if not high:
                axes[1].text(0.5, 0.5, "not available:\nno high-precision integrator\n"
                             "for this model", ha="center", va="center",
                             transform=axes[1].transAxes)
            axes[1].set_ylabel("log10 |integrator - closed form|")
            for ax in axes:
                ax.set_xlabel("t")
            axes[0].legend(fontsize=7)
            fig.tight_layout()
            _save(fig, directory, "error")
            plt.close(fig)
            written.append("error")
        if "conserved" in stems:
            qs = conserved_values(model, num.state)
            fig, ax = plt.subplots(figsize=(5, 3.2))
            for name, q in qs.items():
                _logplot(ax, t, np.abs(q - q[0]), f"${sp.latex(sp.Symbol(name))}$")
            ax.set_xlabel("t")
            ax.set_ylabel("|Q(t) - Q(0)|, float64 integrator")
            ax.legend()
            fig.tight_layout()
            _save(fig, directory, "conserved")
            plt.close(fig)
            written.append("conserved")
        if "regime" in stems:
            fig, ax = plt.subplots(figsize=(5, 3.2))
            if "ntk" in num.observables:
                k = np.asarray(num["ntk"], float)
                ax.plot(t, k / k[0], label="K(t)/K(0)", **_LINES)
            if "alignment" in num.observables:
                ax.plot(t, np.asarray(num["alignment"], float), label="alignment", **_LINES)
            ax.set_xlabel("t")
            ax.legend()
            fig.tight_layout()
            _save(fig, directory, "regime")
            plt.close(fig)
            written.append("regime")
        for stem, hook in content.figure_hooks.items():
            if stem in stems:
                fig = hook(content, num)
                _save(fig, directory, stem)
                plt.close(fig)
                written.append(stem)
    return [s for s, _ in content.figures if s in written]


def _logplot(ax, t, err, label):
    err = np.asarray(err, dtype=float)
    shown = np.where(err > 0, err, np.nan)
    ax.semilogy(t, shown, label=label, marker=".", **_LINES)
