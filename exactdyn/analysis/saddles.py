r"""Saddle-to-saddle analysis of deep linear trajectories [JG], MATH.md §3.

From the singular values :math:`\sigma_1(t) \ge \sigma_2(t) \ge \dots` of the end-to-end
map: the numerical rank :math:`k(t) = \#\{\beta: \sigma_\beta(t) > \epsilon\}`, the
escape times (when the rank first reaches :math:`k`; the crossing is interpolated in
:math:`\log\sigma`), and the plateaus: on each stretch of constant rank :math:`k`, the
flattest point of the loss gives the plateau level, compared with the saddle's loss

.. math:: L_k = \tfrac12\sum_{\beta > k} s_\beta^2

(whitened inputs, :math:`s_\beta` the teacher's singular values); start and end are where
the loss leaves a band of ``band`` times the next drop :math:`\tfrac12 s_{k+1}^2` around it.
A stretch on which the loss stays in that band at fewer than two output times is a
passage, not a plateau, and is not reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import show


@dataclass(frozen=True)
class Plateau:
    """One plateau: rank ``rank`` held on ``[start, end]`` at loss ``loss``."""

    rank: int
    start: float
    end: float
    loss: float
    predicted_loss: float  # 1/2 sum_{beta > rank} s_beta^2

    @property
    def rel_error(self) -> float:
        if self.predicted_loss == 0:
            return float("nan")
        return abs(self.loss - self.predicted_loss) / self.predicted_loss


@dataclass
class SaddleAnalysis:
    """Result of :func:`analyze_saddles`."""

    t: np.ndarray
    singular_values: np.ndarray
    rank: np.ndarray
    rank_tol: float
    teacher_svals: np.ndarray
    escape_times: list = field(default_factory=list)
    plateaus: list = field(default_factory=list)

    @property
    def rank_increments(self) -> list:
        """Rank changes between consecutive output times where it changed."""
        d = np.diff(self.rank)
        return d[d != 0].tolist()

    def table(self) -> str:
        rows = [f"{'rank':>4} {'start':>11} {'end':>11} {'loss':>12} {'1/2 sum s^2':>12} "
                f"{'rel err':>9}"]
        for p in self.plateaus:
            rows.append(f"{p.rank:>4} {p.start:11.4g} {p.end:11.4g} {p.loss:12.6g} "
                        f"{p.predicted_loss:12.6g} {p.rel_error:9.2e}")
        rows.append("escape times: " + ", ".join(f"{e:.4g}" for e in self.escape_times))
        return "\n".join(rows)

    __str__ = table


def numerical_rank(svals, tol: float) -> np.ndarray:
    """Number of singular values above ``tol`` (last axis)."""
    return np.sum(np.asarray(svals, dtype=float) > tol, axis=-1)


def _teacher_svals(traj):
    params = traj.meta.get("params", {})
    syx = params.get("sigma_yx")
    if syx is None and params.get("beta") is not None:
        # single neuron: y = beta . x, so Sigma_yx = beta^T Sigma_xx (one row)
        beta = np.atleast_2d(np.asarray(params["beta"], dtype=float))
        sxx = params.get("sigma_xx")
        syx = beta if sxx is None else beta @ np.asarray(sxx, dtype=float)
    if syx is None:
        raise ValueError("teacher_svals must be given: the trajectory's meta has no sigma_yx")
    if params.get("sigma_xx") is not None:
        sxx = np.asarray(params["sigma_xx"], dtype=float)
        vals, vecs = np.linalg.eigh(sxx)
        isqrt = (vecs / np.sqrt(vals)) @ vecs.T
        return np.linalg.svd(np.asarray(syx) @ isqrt, compute_uv=False)
    return np.linalg.svd(np.asarray(syx, dtype=float), compute_uv=False)


def analyze_saddles(traj, teacher_svals=None, rank_tol: float | None = None,
                    band: float = 0.01) -> SaddleAnalysis:
    r"""Plateaus, ranks and escape times of a deep linear trajectory.

    Parameters
    ----------
    traj : Trajectory
        With observables ``singular_values`` and ``loss`` (``solve`` or ``exact`` of a
        :class:`~exactdyn.DeepLinear`); dense output times make sharper estimates.
    teacher_svals : array_like, optional
        The teacher's singular values (default: from the trajectory's ``sigma_yx``,
        whitened by ``sigma_xx`` when given).
    rank_tol : float, optional
        Threshold :math:`\epsilon` of the numerical rank (default: half the smallest
        nonzero teacher singular value).
    band : float
        Plateau extent: the loss within ``band`` times the next drop of its level.
    """
    s = np.sort(np.asarray(_teacher_svals(traj) if teacher_svals is None else teacher_svals,
                           dtype=float))[::-1]
    if s.ndim != 1 or np.any(~np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"teacher_svals must be non-negative numbers, got {show(teacher_svals)}")
    if not band > 0:
        raise ValueError(f"band must be > 0, got {show(band)}")
    t = np.asarray(traj.t, dtype=float)
    sv = np.asarray(traj["singular_values"], dtype=float)
    loss = np.asarray(traj["loss"], dtype=float)
    if rank_tol is None:
        pos = s[s > 0]
        if pos.size == 0:
            raise ValueError("rank_tol must be given when the teacher is zero")
        rank_tol = 0.5 * float(pos.min())
    elif not rank_tol > 0:
        raise ValueError(f"rank_tol must be > 0, got {show(rank_tol)}")
    rank = numerical_rank(sv, rank_tol)
    out = SaddleAnalysis(t, sv, rank, float(rank_tol), s)
    # Escape times: the first crossing of sigma_k over the threshold, interpolated in log.
    for k in range(1, int(rank.max(initial=0)) + 1):
        idx = int(np.argmax(rank >= k))
        if idx == 0:
            out.escape_times.append(float(t[0]))
            continue
        a, b = sv[idx - 1, k - 1], sv[idx, k - 1]
        la, lb, lt = np.log(max(a, 1e-300)), np.log(b), np.log(rank_tol)
        frac = (lt - la) / (lb - la) if lb != la else 1.0
        out.escape_times.append(float(t[idx - 1] + frac * (t[idx] - t[idx - 1])))
    # Plateaus: per stretch of constant rank, the flattest point of the loss.
    pad = np.concatenate([s, np.zeros(max(0, sv.shape[1] - s.size + 1))])
    dl = np.gradient(loss, t) if t.size > 1 else np.zeros_like(loss)
    change = np.flatnonzero(np.diff(rank)) + 1
    for lo, hi in zip(np.r_[0, change], np.r_[change, t.size]):
        k = int(rank[lo])
        seg = np.arange(lo, hi)
        if seg.size < 3:
            continue
        flat = seg[int(np.argmin(np.abs(dl[seg]) * np.maximum(t[seg], t[seg][-1] * 1e-12)))]
        level = float(loss[flat])
        drop = 0.5 * pad[k] ** 2 if k < pad.size else 0.0
        width = band * (drop if drop > 0 else max(level, 1e-300))
        inside = np.abs(loss[seg] - level) <= width
        j = int(np.flatnonzero(seg == flat)[0])
        a = j
        while a > 0 and inside[a - 1]:
            a -= 1
        b = j
        while b < seg.size - 1 and inside[b + 1]:
            b += 1
        if b == a:  # a single sample within the band: a passage, not a plateau
            continue
        out.plateaus.append(Plateau(k, float(t[seg[a]]), float(t[seg[b]]), level,
                                    0.5 * float(np.sum(s[k:] ** 2))))
    return out
