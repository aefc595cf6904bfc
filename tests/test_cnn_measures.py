"""CNN data and condensation measures (MATH.md §5, Zhou et al. arXiv:2305.09947).

The label-weighted patch matrix Z against a naive loop oracle, against finite
differences of the loss of a linear CNN at W = 0, and against its transpose symmetry;
the exact tie of tie_images; the measures on kernels with known answers and their
invariances; the linearized flow (integrated here with a matrix exponential, independent
of the SVD formula) condensing on synthetic data and spreading on the tie; the digits
loader; plots; bad input.
"""

import sys

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.linalg import expm
from scipy.signal import correlate2d

from exactdyn.analysis.cnn_measures import (
    eigenspace_spread,
    kernel_cosine_similarity,
    kernel_vectors,
    label_weighted_patches,
    u1_alignment,
    u1_cosines,
    u1_ratio,
)
from exactdyn.analysis.condensation import cosine_similarity
from exactdyn.models.datasets import digits, synthetic_images, tie_images
from exactdyn.plotting.cnn import plot_kernel_cosine, plot_kernels, plot_u1_ratio


def naive_z(images, y, s, padding="valid"):
    """Test oracle: Z by explicit loops, zero outside the image for 'same'."""
    n, H, W, C = images.shape
    off = 0 if padding == "valid" else (s - 1) // 2
    Hp, Wp = (H - s + 1, W - s + 1) if padding == "valid" else (H, W)
    Z = np.zeros((s * s * C, Hp * Wp))
    for i in range(n):
        for u in range(Hp):
            for v in range(Wp):
                for p in range(s):
                    for q in range(s):
                        r, c = u + p - off, v + q - off
                        if 0 <= r < H and 0 <= c < W:
                            for a in range(C):
                                Z[(p * s + q) * C + a, u * Wp + v] += y[i] * images[i, r, c, a]
    return Z / n


@given(n=st.integers(1, 4), H=st.integers(1, 6), W=st.integers(1, 6), C=st.integers(1, 3),
       s=st.integers(1, 4), padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 99))
def test_z_matches_naive_loops(n, H, W, C, s, padding, seed):
    assume(padding == "same" or s <= min(H, W))
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, H, W, C)), rng.standard_normal(n)
    Z = label_weighted_patches(x, y, s, padding)
    np.testing.assert_allclose(Z, naive_z(x, y, s, padding), rtol=1e-12, atol=1e-14)
    Zcf = label_weighted_patches(np.moveaxis(x, -1, 1), y, s, padding, channels_first=True)
    np.testing.assert_allclose(Zcf, Z, rtol=1e-12, atol=1e-14)


def test_z_is_minus_gradient_of_linear_cnn_loss_at_zero_kernels():
    """Layout check: for f(x) = sum a[u,v,b] <W[...,b], P_uv(x)> and L = 1/(2n) sum (f-y)^2,
    at W = 0 (f = 0) the flow is dW_b/dt = -dL/dW_b = Z vec(a_b) (MATH.md §5). The forward
    pass is scipy's correlate2d, the gradient central differences (exact: L is quadratic)."""
    rng = np.random.default_rng(3)
    n, H, Wd, C, s, M = 5, 6, 5, 2, 3, 2
    x, y = rng.standard_normal((n, H, Wd, C)), rng.choice([-1.0, 1.0], n)
    a = rng.standard_normal((H - s + 1, Wd - s + 1, M))

    def loss(K):
        f = np.array([sum(np.sum(a[..., b] * correlate2d(x[i, ..., c], K[..., c, b], "valid"))
                          for b in range(M) for c in range(C)) for i in range(n)])
        return np.sum((f - y) ** 2) / (2 * n)

    K0, h = np.zeros((s, s, C, M)), 1e-3
    grad = np.zeros_like(K0)
    for idx in np.ndindex(K0.shape):
        e = np.zeros_like(K0)
        e[idx] = h
        grad[idx] = (loss(K0 + e) - loss(K0 - e)) / (2 * h)
    Z = label_weighted_patches(x, y, s)
    flow = np.stack([Z @ a[..., b].ravel() for b in range(M)])  # (M, s*s*C)
    np.testing.assert_allclose(kernel_vectors(-grad), flow, rtol=1e-8, atol=1e-10)


def test_z_transposes_under_kernel_size_duality():
    """Single channel, valid padding: Z_s[(p,q),(u,v)] = mean y x[u+p, v+q] is symmetric in
    (p,q) <-> (u,v), so the patch matrix of kernel size s is the transpose of that of
    kernel size H - s + 1 (square images)."""
    x, y = synthetic_images(40, 7, 7, 1, seed=2)
    for s in (2, 3, 4):
        np.testing.assert_allclose(label_weighted_patches(x, y, s),
                                   label_weighted_patches(x, y, 8 - s).T, atol=1e-14)


@pytest.mark.parametrize("s,H,W", [(2, 8, 8), (3, 8, 8), (3, 10, 7), (4, 9, 9), (5, 12, 6)])
def test_tie_images_have_an_exact_tie(s, H, W):
    x, y = tie_images(60, s, H, W, seed=s, noise=0.7)
    assert x.shape == (60, H, W, 2) and set(y) == {-1.0, 1.0}
    sv = np.linalg.svd(label_weighted_patches(x, y, s), compute_uv=False)
    assert abs(sv[0] - sv[1]) <= 1e-12 * sv[0]
    assert sv[2] < 0.8 * sv[0]  # the top eigenspace is exactly two-dimensional
    np.testing.assert_allclose(sv[0::2], sv[1::2], rtol=1e-10, atol=1e-13)  # all paired


def test_synthetic_images_gap_follows_contrast():
    x, y = synthetic_images(400, 8, 8, 3, seed=1, noise=0.3, contrast=0.5)
    Z = label_weighted_patches(x, y, 3)
    U, sv, _ = np.linalg.svd(Z)
    assert 1.7 < sv[0] / sv[1] < 2.3 and sv[2] < 0.1 * sv[0]
    # u1 is the horizontal stripe detector (-1)^p, weighted 1/(1+alpha) over channels
    h = np.einsum("p,q,a->pqa", (-1.0) ** np.arange(3), np.ones(3), 1 / (1 + np.arange(3)))
    assert abs(U[:, 0] @ h.ravel()) / np.linalg.norm(h) > 0.999
    x2, y2 = synthetic_images(400, 8, 8, 1, seed=1)
    np.testing.assert_array_equal(synthetic_images(400, 8, 8, 1, seed=1)[0], x2)


def linear_flow(Z, W0, a0, t):
    """Test oracle: the linearized flow dW_b = Z a_b, da_b = Z^T W_b by a matrix exponential."""
    d, P = Z.shape
    A = np.zeros((d + P, d + P))
    A[:d, d:], A[d:, :d] = Z, Z.T
    x0 = np.concatenate([kernel_vectors(W0).T, a0.reshape(P, -1)])
    return np.array([(expm(A * tt) @ x0)[:d].reshape(W0.shape) for tt in t])


def test_linearized_kernels_condense_with_a_gap_and_spread_with_a_tie():
    rng = np.random.default_rng(0)
    M = 64
    # gap: synthetic stripes, s1/s2 ~ 2
    x, y = synthetic_images(200, 8, 8, 1, seed=0)
    Z = label_weighted_patches(x, y, 3)
    U, sv, _ = np.linalg.svd(Z)
    t = np.linspace(0, 2.5, 16)
    Ws = linear_flow(Z, 1e-6 * rng.standard_normal((3, 3, 1, M)),
                     1e-6 * rng.standard_normal((6, 6, M)), t)
    ratio = u1_ratio(Ws, U[:, 0])
    slope = np.polyfit(t[-6:], np.log(ratio[-6:]), 1)[0]
    assert slope == pytest.approx(-(sv[0] - sv[1]), rel=1e-3)  # e^{-(s1-s2)t}
    assert u1_alignment(Ws[-1], U[:, 0])[1] > 0.99
    assert u1_alignment(Ws[0], U[:, 0])[1] < 0.1
    gap = eigenspace_spread(Ws[-1], U[:, :2])
    assert gap.fraction > 0.999 and gap.effective_dim < 1.01
    # tie: s1 = s2, the kernels fill the top plane
    x, y = tie_images(200, 3, 8, 8, seed=0)
    Z = label_weighted_patches(x, y, 3)
    U, sv, _ = np.linalg.svd(Z)
    t = np.linspace(0, 20 / sv[0], 5)
    Ws = linear_flow(Z, 1e-6 * rng.standard_normal((3, 3, 2, M)),
                     1e-6 * rng.standard_normal((6, 6, M)), t)
    tie = eigenspace_spread(Ws[-1], U[:, :2])
    assert tie.fraction > 0.999 and tie.effective_dim > 1.5
    assert u1_alignment(Ws[-1], U[:, 0])[1] < 0.5


def unit(d, rng):
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


def test_measures_on_kernels_along_u1():
    rng = np.random.default_rng(1)
    u = unit(18, rng)
    coef = np.array([1.0, -2.0, 0.5, -0.1, 3.0])
    W = np.einsum("d,m->dm", u, coef).reshape(3, 3, 2, 5)
    assert u1_ratio(W, u) <= 1e-15
    np.testing.assert_allclose(u1_cosines(W, u), 1.0, rtol=1e-14)
    np.testing.assert_allclose(u1_alignment(W, -3 * u.reshape(3, 3, 2)), (1.0, 1.0), rtol=1e-14)
    C, kept = kernel_cosine_similarity(W)
    np.testing.assert_allclose(np.abs(C), 1.0, rtol=1e-14)
    assert np.count_nonzero(np.diff(np.sign(coef[kept]))) == 1  # the two signs contiguous
    sp = eigenspace_spread(W, np.linalg.qr(np.column_stack([u, unit(18, rng)]))[0])
    assert sp.fraction == pytest.approx(1.0) and sp.effective_dim == pytest.approx(1.0)


@given(seed=st.integers(0, 10_000), m=st.integers(1, 12))
def test_u1_ratio_and_cosines_on_known_decomposition(seed, m):
    """w_b = alpha_b u + gamma_b e_b with e_b a unit vector orthogonal to u: the ratio is
    |gamma| / |alpha| and |cos_b| = |alpha_b| / sqrt(alpha_b^2 + gamma_b^2)."""
    rng = np.random.default_rng(seed)
    d = 12
    u = unit(d, rng)
    E = rng.standard_normal((m, d))
    E -= np.outer(E @ u, u)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    alpha, gamma = rng.uniform(0.1, 2, m) * rng.choice([-1, 1], m), rng.uniform(0, 2, m)
    V = alpha[:, None] * u + gamma[:, None] * E
    W = V.T.reshape(2, 2, 3, m)
    assert u1_ratio(W, 5 * u) == pytest.approx(np.linalg.norm(gamma) / np.linalg.norm(alpha),
                                               rel=1e-12)
    np.testing.assert_allclose(u1_cosines(W, u, rel_tol=0), np.abs(alpha) / np.hypot(alpha, gamma),
                               rtol=1e-12)
    # time series: each time alone
    Ws = np.stack([W, 2 * W[..., ::-1]])
    np.testing.assert_allclose(u1_ratio(Ws, u), [u1_ratio(W, u)] * 2, rtol=1e-12)


@given(seed=st.integers(0, 10_000), m=st.integers(3, 20))
def test_spread_on_known_configurations(seed, m):
    rng = np.random.default_rng(seed)
    d = 18
    U = np.linalg.qr(rng.standard_normal((d, 3)))[0]
    e3 = U[:, 2]
    U = U[:, :2]
    # uniform angles on a half circle in span(U): isotropic, S = I/2
    ang = np.pi * np.arange(m) / m
    scale = rng.uniform(0.5, 2.0, m) * rng.choice([-1, 1], m)  # sign- and scale-blind
    V = scale[:, None] * (np.cos(ang)[:, None] * U[:, 0] + np.sin(ang)[:, None] * U[:, 1])
    sp = eigenspace_spread(V.T.reshape(3, 3, 2, m), U)
    assert sp.effective_dim == pytest.approx(2.0, rel=1e-10)
    np.testing.assert_allclose(sp.eigenvalues, [0.5, 0.5], atol=1e-12)
    assert sp.fraction == pytest.approx(1.0, rel=1e-12)
    # invariant under a rotation of the basis of the eigenspace
    th = rng.uniform(0, 2 * np.pi)
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    assert eigenspace_spread(V.T.reshape(3, 3, 2, m), U @ R).effective_dim == pytest.approx(2.0)
    # an orthogonal component of known weight lowers only the fraction
    g = rng.uniform(0.1, 1.0)
    V2 = V + g * np.abs(scale)[:, None] * e3
    sp2 = eigenspace_spread(V2.T.reshape(3, 3, 2, m), U)
    assert sp2.fraction == pytest.approx(1 / (1 + g**2), rel=1e-10)
    assert sp2.effective_dim == pytest.approx(2.0, rel=1e-10)


def test_cosine_matrix_is_that_of_the_flattened_kernels():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((3, 3, 2, 7))
    W[..., 3] *= 1e-9  # dropped
    C, kept = kernel_cosine_similarity(W)
    V = np.stack([W[..., b].ravel() for b in range(7)])
    C2, kept2 = cosine_similarity(V)
    assert 3 not in kept
    np.testing.assert_array_equal(kept, kept2)
    np.testing.assert_allclose(C, C2)
    Vn = V[kept] / np.linalg.norm(V[kept], axis=1, keepdims=True)
    np.testing.assert_allclose(C, Vn @ Vn.T, atol=1e-14)
    assert np.isnan(u1_cosines(W, V[0])[3])


def test_digits_loader():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    x, y = digits()
    target = load_digits().target
    assert x.shape == (np.sum(np.isin(target, (0, 1))), 8, 8, 1) and x.dtype == float
    assert np.sum(y == 1) == np.sum(target == 0) and np.sum(y == -1) == np.sum(target == 1)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-13)
    raw, y_raw = digits(normalize=False)
    assert raw.min() == 0 and raw.max() == 16
    np.testing.assert_allclose(raw / 16 - (raw / 16).mean(axis=0), x, atol=1e-14)
    np.testing.assert_array_equal(y_raw, y)
    a, ya = digits((3, 8), n=51, seed=7)
    b, yb = digits((3, 8), n=51, seed=7)
    c, _ = digits((3, 8), n=51, seed=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert a.shape == (51, 8, 8, 1) and np.sum(ya == 1) == 26 and not np.array_equal(a, c)
    # a real data set with a gap: the kernels have a direction to condense onto
    sv = np.linalg.svd(label_weighted_patches(x, y, 3), compute_uv=False)
    assert 1.15 < sv[0] / sv[1] < 1.3
    # the pair the docstring recommends for showing condensation: s1/s2 close to 2
    x27, y27 = digits((2, 7))
    sv = np.linalg.svd(label_weighted_patches(x27, y27, 2), compute_uv=False)
    assert sv[0] / sv[1] > 1.9


def test_digits_without_scikit_learn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install exactdyn\[cnn\]"):
        digits()


def test_plots_write_files(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(5)
    u = unit(18, rng)
    Ws = np.stack([rng.standard_normal((3, 3, 2, 6)) * 0.5**k
                   + np.einsum("d,m->dm", u, rng.standard_normal(6)).reshape(3, 3, 2, 6)
                   for k in range(5)])
    plot_kernel_cosine(Ws[-1], path=tmp_path / "cos.png")
    plot_u1_ratio(np.arange(5.0), Ws, u, path=tmp_path / "ratio.png", label="run", onset=2.0)
    plot_kernels(Ws[-1], u, path=tmp_path / "k.png")
    plot_kernels(Ws[-1], u, channel="all", max_kernels=3, path=tmp_path / "k_all.png")
    for name in ("cos", "ratio", "k", "k_all"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    plt.close("all")


@pytest.mark.parametrize("call,match", [
    (lambda: label_weighted_patches(np.zeros((2, 5, 5)), [1, -1], 3), "4-D"),
    (lambda: label_weighted_patches(np.full((2, 5, 5, 1), np.nan), [1, -1], 3), "finite"),
    (lambda: label_weighted_patches(np.zeros((2, 5, 5, 1)), [1, -1, 1], 3), "one label"),
    (lambda: label_weighted_patches(np.zeros((2, 5, 5, 1)), [1, -1], 6), "kernel_size"),
    (lambda: label_weighted_patches(np.zeros((2, 5, 5, 1)), [1, -1], 0), "kernel_size"),
    (lambda: label_weighted_patches(np.zeros((2, 5, 5, 1)), [1, -1], 3, "full"), "padding"),
    (lambda: kernel_vectors(np.zeros((3, 3, 2))), "W must be"),
    (lambda: kernel_cosine_similarity(np.zeros((2, 3, 3, 1, 4))), "one set"),
    (lambda: u1_ratio(np.ones((3, 3, 1, 2)), np.ones(8)), "u1 must have"),
    (lambda: u1_ratio(np.ones((3, 3, 1, 2)), np.zeros(9)), "nonzero"),
    (lambda: u1_cosines(np.ones((3, 3, 1, 2)), np.ones(9), rel_tol=1), "rel_tol"),
    (lambda: eigenspace_spread(np.ones((3, 3, 1, 2)), np.ones((9, 2))), "orthonormal"),
    (lambda: eigenspace_spread(np.ones((3, 3, 1, 2)), np.eye(8)[:, :2]), "basis"),
    (lambda: synthetic_images(1), "n must"),
    (lambda: synthetic_images(10, contrast=2), "contrast"),
    (lambda: synthetic_images(10, noise=-1), "noise"),
    (lambda: tie_images(11), "even"),
    (lambda: tie_images(10, kernel_size=8, height=8), "kernel_size"),
    (lambda: tie_images(10, kernel_size=9, height=8), "kernel_size"),
    (lambda: digits((0, 0)), "classes"),
    (lambda: digits((0, 10)), "classes"),
    (lambda: digits(n=10_000), "n must be at most"),
    (lambda: plot_kernels(np.ones((3, 3, 1, 2)), channel=1), "channel"),
    (lambda: plot_u1_ratio([0, 1], np.ones((3, 3, 3, 1, 2)), np.ones(9)), "time series"),
])
def test_bad_input(call, match):
    if "digits" in repr(call.__code__.co_names):
        pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match=match):
        call()
