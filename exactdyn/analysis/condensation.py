r"""Condensation measures of two-layer networks [ZX].

Zhou et al., "Towards understanding the condensation of neural networks at initial
training", NeurIPS 2022: the cosine-similarity matrix of the normalized input weights
(:math:`C_{kl} = \langle\hat w_k, \hat w_l\rangle`, near-zero rows dropped), ordered by
the top eigenvector of C (drawn as a heat map on [−1, 1] by
:func:`exactdyn.plotting.condensation.plot_condensation`); the number of condensed
directions is the number of clusters of directions. The criterion followed (arXiv:2105.11686,
§1, the part read): "the input weights of hidden neurons ... (the input weight or the
feature of a hidden neuron consists of the weight from its input layer to the hidden neuron
and its bias term) condense onto isolated orientations during the training". The clustering
of :func:`direction_clusters` (greedy, cosine ≥ 0.95) and the ordering of the heat map are
ours; the paper's body was not read (docs/papers/zhou_cnn.md).

Luo, Xu, Ma, Zhang, "Phase diagram for two-layer ReLU neural networks at infinite-width
limit", JMLR 22 (2021) 71 [LX]: for 1-D data plus a bias, each neuron drawn as a point
(orientation of :math:`w_k`, amplitude :math:`|a_k|\,\|w_k\|`, ours; their code's signed
:math:`a_k\|w_k\|` is ``amplitude="signed"``)
(:func:`orientation_amplitude`; the scatter is
:func:`exactdyn.plotting.condensation.plot_orientation_amplitude`).
"""

from __future__ import annotations

import numpy as np

from .. import _validation as check

__all__ = ["AMPLITUDES", "cosine_similarity", "direction_clusters", "orientation_amplitude",
           "orientation_amplitude_series", "principal_direction"]


def _weights(W):
    W = np.asarray(W, dtype=float)
    if W.ndim != 2 or W.shape[0] == 0:
        raise ValueError(f"W must be an (m, d_in) array of input weights, got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W must be finite")
    return W


def cosine_similarity(W, rel_tol: float = 1e-3):
    r"""Ordered cosine-similarity matrix of input weights.

    Rows with :math:`\|w_k\| < \text{rel\_tol}\cdot\max_l\|w_l\|` are dropped. Returns
    ``(C, kept)``: C (q × q) ordered by the entries of the top eigenvector of the
    similarity matrix, and the indices of the kept neurons in that order.
    """
    W = _weights(W)
    if not (0 <= rel_tol < 1):
        raise ValueError(f"rel_tol must be in [0, 1), got {check.show(rel_tol)}")
    norms = np.linalg.norm(W, axis=1)
    keep = np.flatnonzero(norms > rel_tol * norms.max()) if norms.max() > 0 else np.array([], int)
    U = W[keep] / norms[keep, None]
    C = U @ U.T
    if keep.size == 0:
        return C, keep
    _vals, vecs = np.linalg.eigh(C)
    v = vecs[:, -1]
    order = np.argsort(v, kind="stable")
    return C[np.ix_(order, order)], keep[order]


def direction_clusters(W, cos_threshold: float = 0.95, rel_tol: float = 1e-3,
                       signed: bool = True) -> int:
    r"""Number of clusters of input-weight directions.

    Greedy: each direction joins the first cluster whose representative has cosine
    :math:`\ge` ``cos_threshold`` with it (:math:`|\cos|` when ``signed=False``, so that
    :math:`\pm u` count as one line), else starts a new cluster.
    """
    if not (0 < cos_threshold <= 1):
        raise ValueError(f"cos_threshold must be in (0, 1], got {check.show(cos_threshold)}")
    C, _kept = cosine_similarity(W, rel_tol)
    reps = []
    for k in range(C.shape[0]):
        c = C[k, reps] if signed else np.abs(C[k, reps])
        if not reps or np.max(c) < cos_threshold:
            reps.append(k)
    return len(reps)


# ---- orientation / amplitude scatter --------------------------------------------------------

AMPLITUDES = ("auto", "w", "aw", "signed")


def principal_direction(W) -> np.ndarray:
    r"""First principal direction of the input weights, as a unit vector.

    The top eigenvector of the uncentred second-moment matrix :math:`\sum_k w_k w_k^\top`
    (= the top right singular vector of W), so that :math:`\pm v` are the same line and a
    condensed set of weights :math:`w_k \approx c_k v` gives back :math:`v`. The sign is
    fixed by the largest weight: :math:`\langle v, w_{k^*}\rangle \ge 0` for
    :math:`k^* = \arg\max_k\|w_k\|`.
    """
    W = _weights(W)
    if not np.any(W):
        raise ValueError("W must have a nonzero row to define a principal direction")
    _u, _s, vt = np.linalg.svd(W, full_matrices=False)
    v = vt[0]
    k = int(np.argmax(np.linalg.norm(W, axis=1)))
    return v if W[k] @ v >= 0 else -v


def orientation_amplitude(W, a=None, reference=None, amplitude: str = "auto"):
    r"""Orientation angle and amplitude of every neuron's input weight [LX, ZX].

    Luo et al. (JMLR 2021) and Zhou et al. (NeurIPS 2022) draw, for 1-D data plus
    a bias (:math:`w_k = (w_{k,1}, b_k) \in \mathbb R^2`), each neuron as a point
    (orientation :math:`\theta_k`, amplitude :math:`A_k`); a condensed network has its
    large-amplitude points on a few vertical lines.

    **Orientation.** With ``d_in = 2`` the full polar angle in :math:`(-\pi, \pi]`,

    .. math:: \theta_k = \operatorname{atan2}(w_{k,2}, w_{k,1}) - \theta_{\mathrm{ref}},

    wrapped to :math:`(-\pi, \pi]`, where :math:`\theta_{\mathrm{ref}} = 0` (the data axis;
    the bias axis is :math:`\theta = \pi/2`) unless a ``reference`` is given. With
    ``d_in > 2`` a plane angle no longer exists; we use the unsigned angle to a reference
    direction :math:`v`,

    .. math:: \theta_k = \arccos\langle \hat w_k, \hat v\rangle \in [0, \pi],

    so :math:`\theta = 0` and :math:`\theta = \pi` are the two halves of the line
    :math:`\mathbb R v`. The default :math:`v` is the first principal direction of the
    weights (:func:`principal_direction`): it needs no data and, once the weights have
    condensed onto one line, is that line. For a multiplicity-1 activation that line is
    :math:`\mathbb R z`, :math:`z = \frac1n\sum_i y_i x_i` (MATH.md §4), so passing
    ``reference=z`` measures the prediction directly; before condensation the principal
    direction is a random direction and :math:`\hat z` is the better reference.

    What was read of it is Luo et al.'s code (github.com/xuzhiqin1990/phasediagram_twolayerNN,
    ``scalestudy1d_191224.py``, ``wb2theta``): ``amp_av=a*self.L2norm(v,0)`` and
    ``angle_v=[math.atan2(dy,dx) for dy,dx in zip(b, w)]``, plotted as "angle" against
    "amp"; the orientation above is that angle. The papers' figures were not read
    (docs/papers/luo_chen.md, docs/papers/zhou_cnn.md).

    **Amplitude.** ``"w"``: :math:`A_k = \|w_k\|`; ``"aw"``: :math:`A_k = |a_k|\,\|w_k\|`
    (the neuron's weight in the output; ours, positive so it can be drawn on a log axis);
    ``"signed"``: :math:`A_k = a_k\|w_k\|`, signed, as Luo et al.'s code computes
    ``amp_av``; ``"auto"``: ``"aw"`` when ``a`` is given, else ``"w"``.

    Parameters
    ----------
    W : array_like, shape (m, d_in)
        Input weights (bias weight last, as in :class:`~exactdyn.TwoLayer`).
    a : array_like, shape (m,), optional
        Output weights.
    reference : array_like, shape (d_in,), optional
        Nonzero reference direction (see above).
    amplitude : {"auto", "w", "aw", "signed"}

    Returns
    -------
    theta, amp : ndarray, shape (m,)
        Orientation (radians) and amplitude. A zero row has amplitude 0 and orientation
        ``nan`` (it has no direction).
    """
    W = _weights(W)
    m, d = W.shape
    check.choice("amplitude", amplitude, AMPLITUDES)
    if a is not None:
        a = check.finite_vector("a", a)
        if a.size != m:
            raise ValueError(f"a must have one entry per row of W ({m}), got {a.size}")
    if amplitude in ("aw", "signed") and a is None:
        raise ValueError(f"amplitude={amplitude!r} needs the output weights a")
    if d < 2:
        raise ValueError(f"W must have at least 2 columns (d_in >= 2) for an orientation, "
                         f"got shape {W.shape}")
    norms = np.linalg.norm(W, axis=1)
    if reference is not None:
        ref = check.finite_vector("reference", reference)
        if ref.size != d or not np.any(ref):
            raise ValueError(f"reference must be a nonzero vector of length d_in = {d}, "
                             f"got {check.show(reference)}")
        ref = ref / np.linalg.norm(ref)
    elif d > 2:
        ref = principal_direction(W)
    else:
        ref = None
    with np.errstate(invalid="ignore", divide="ignore"):
        if d == 2:
            theta = np.arctan2(W[:, 1], W[:, 0])
            if ref is not None:
                theta = theta - np.arctan2(ref[1], ref[0])
            theta = np.pi - np.mod(np.pi - theta, 2 * np.pi)   # wrap to (-pi, pi]
        else:
            theta = np.arccos(np.clip((W @ ref) / norms, -1.0, 1.0))
    theta[norms == 0] = np.nan
    if amplitude == "signed":
        return theta, norms * a
    amp = norms * np.abs(a) if (amplitude == "aw" or (amplitude == "auto" and a is not None)) \
        else norms
    return theta, amp


def _snapshot_indices(t, times):
    """Indices of the trajectory samples nearest to ``times`` (default: first, middle,
    last)."""
    t = np.asarray(t, dtype=float)
    if times is None:
        return sorted({0, (t.size - 1) // 2, t.size - 1})
    ts = check.times("times", times)
    if ts.max() > t[-1] * (1 + 1e-12) + 1e-300:
        raise ValueError(f"times must lie within the trajectory's [0, {t[-1]:g}], got "
                         f"{ts.max():g}")
    return [int(np.argmin(np.abs(t - s))) for s in ts]


def orientation_amplitude_series(traj, times=None, reference=None, amplitude="auto"):
    r""":func:`orientation_amplitude` at several times of a two-layer
    :class:`~exactdyn.Trajectory` (states ``"W"`` and ``"a"``).

    ``times`` are matched to the nearest output time (default: first, middle and last).
    Returns a list of ``(t, theta, amp)``, one per selected time, all against one
    ``reference``: for ``d_in > 2`` and no reference, the principal direction of the
    trajectory's *last* weights (the most condensed), so early and late snapshots are
    measured against the same line.
    """
    if "W" not in traj or "a" not in traj:
        raise ValueError("traj must be a two-layer Trajectory with states 'W' and 'a'")
    Ws, As = np.asarray(traj["W"], dtype=float), np.asarray(traj["a"], dtype=float)
    if Ws.ndim != 3:
        raise ValueError(f"traj['W'] must have shape (T, m, d_in), got {Ws.shape}")
    if reference is None and Ws.shape[2] > 2:
        reference = principal_direction(Ws[-1])
    out = []
    for i in _snapshot_indices(traj.t, times):
        th, amp = orientation_amplitude(Ws[i], As[i], reference=reference, amplitude=amplitude)
        out.append((float(traj.t[i]), th, amp))
    return out
