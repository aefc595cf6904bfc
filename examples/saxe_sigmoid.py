"""Saxe, McClelland & Ganguli's sigmoidal mode learning (arXiv:1312.6120, Fig. 3 style).

A two-layer linear network f(x) = W2 W1 x on whitened inputs learns each singular mode
of Sigma_yx = U S V^T along a sigmoid; from a small balanced decoupled init the mode
strength is u(t) = s e^{2st}/(e^{2st} - 1 + s/u0), so stronger modes are learned first,
at t ~ ln(s/u0)/(2s). The closed form (per mode: the 1-D model of MATH.md §1) is drawn
with the integrator's trajectory of the full 3 x 4 x 3 network on top, and Saxe's
formula as a check.

Parameters (ours; the paper's figure parameters were not read): s = (3, 2, 1), u0 = 1e-3,
tau = 1. Key number (tested): each mode's half-learning time from the integrator against
Saxe et al.'s t = (tau/2s) ln(u_f (s - u0)/(u0 (s - u_f))) at u_f = s/2.

Run: ``python examples/saxe_sigmoid.py [--out DIR]`` -> saxe_sigmoid.png (default DIR: a new
temporary directory); run time: about 7 s (measured).
"""

from __future__ import annotations

import sys

import matplotlib
from _out import out_dir, parser

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import exactdyn as ed  # noqa: E402

S = np.array([3.0, 2.0, 1.0])
U0 = 1e-3


def setup(s=S, u0=U0):
    """The 3 x 4 x 3 network: Sigma_yx = U diag(s) V^T (random orthogonal U, V, seed 0) and
    a decoupled init of mode strengths u0."""
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    V, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    sigma_yx = U @ np.diag(s) @ V.T
    model = ed.LinearNet.decoupled(sigma_yx, hidden=4, strengths=np.sqrt(u0), seed=1)
    return model, U, V


def half_times(s=S, u0=U0, points=601):
    """Key number: the time each mode reaches half its strength s/2, read off the
    integrator's trajectory of the full network (linear interpolation), against Saxe et
    al.'s t = (tau/2s) ln(u_f (s - u0) / (u0 (s - u_f))) at u_f = s/2, tau = 1:
    t_half = ln(s/u0 - 1)/(2s)."""
    model, U, V = setup(s, u0)
    t = np.linspace(0.0, 1.5 * np.log(s.max() / u0) / (2 * s.min()), points)
    num = ed.solve(model, t, rtol=1e-10)
    modes = np.einsum("oa,toi,ia->ta", U, num["end_to_end"], V)
    measured = []
    for a in range(len(s)):
        k = int(np.flatnonzero(modes[:, a] >= s[a] / 2)[0])
        f = (s[a] / 2 - modes[k - 1, a]) / (modes[k, a] - modes[k - 1, a])
        measured.append(t[k - 1] + f * (t[k] - t[k - 1]))
    return np.array(measured), np.log(s / u0 - 1) / (2 * s)


def main(out=None):
    path = out_dir(out, "saxe_sigmoid") / "saxe_sigmoid.png"
    s, u0 = S, U0
    model, U, V = setup(s, u0)
    t = np.linspace(0, 6, 241)
    exact = ed.exact(model, t)
    num = ed.solve(model, t[::8])
    modes = np.einsum("oa,toi,ia->ta", U, exact["end_to_end"], V)
    modes_num = np.einsum("oa,toi,ia->ta", U, num["end_to_end"], V)
    e = np.exp(2 * np.outer(t, s))
    saxe = s * e / (e - 1 + s / u0)
    print(f"max |closed form - Saxe's formula| = {np.abs(modes - saxe).max():.2e}")
    print(f"max |closed form - integrator|     = "
          f"{np.abs(modes[::8] - modes_num).max():.2e}")
    measured, theory = half_times()
    for a in range(3):
        print(f"mode {a + 1} (s = {s[a]:g}): half-learned at t = {measured[a]:.4f} "
              f"(integrator), Saxe's ln(s/u0 - 1)/(2s) = {theory[a]:.4f}")
    fig, ax = plt.subplots(figsize=(6, 4))
    for a in range(3):
        ax.plot(t, modes[:, a], label=f"mode {a + 1}, s = {s[a]:g} (closed form)")
        ax.plot(t[::8], modes_num[:, a], "k.", ms=3)
        ax.axvline(np.log(s[a] / u0) / (2 * s[a]), color="0.8", lw=0.8)
    ax.plot([], [], "k.", label="integrator (DOP853)")
    ax.set_xlabel("t")
    ax.set_ylabel(r"mode strength $u_\alpha^\top W_2W_1 v_\alpha$")
    ax.set_title("Saxe et al.: sigmoidal learning of singular modes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(parser(__doc__, "saxe_sigmoid").parse_args(sys.argv[1:]).out)
