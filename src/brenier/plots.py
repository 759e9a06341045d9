"""Pictures: Gu's singular-set figure and the grid-25 generator comparison (matplotlib, no pyplot).

* `gu_figure`: a uniform disc μ is transported to a non-convex region ν (semi-discrete OT); the
  disc is painted with the cells W_i(h), coloured by branch (connected pieces of the target support)
  or, for a one-piece target, by the position of T(x) along the shape; the singular facets are
  drawn as a curve inside the disc. Two more panels show the target with samples of the
  singular-aware extension and of the naive one (which fills the gaps: mode mixture).
* `grid25_comparison`: samples of several generators on grid-25, side by side.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import hsv_to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from . import io
from .validation import BrenierError, check_points

BRANCH_COLOURS = np.array([
    (0.12, 0.47, 0.71), (1.00, 0.50, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
    (0.58, 0.40, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.50, 0.50, 0.50),
    (0.74, 0.74, 0.13), (0.09, 0.75, 0.81)])


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write a figure atomically; the format follows the suffix (.png, .svg, .pdf)."""
    suffix = os.path.splitext(str(path))[1].lower() or ".png"
    with io.atomic_path(path, suffix=suffix) as tmp:
        fig.savefig(tmp, format=suffix[1:], dpi=dpi, bbox_inches="tight")


# ============================================================================================
# Gu's figure: disc → non-convex region, cells, branches and the singular set
# ============================================================================================


def target_colours(y: np.ndarray, branches: np.ndarray) -> np.ndarray:
    """RGB (N, 3) per target: one colour per branch, or a hue running along a one-piece shape."""
    if branches.max() > 0:
        return BRANCH_COLOURS[branches % len(BRANCH_COLOURS)]
    c = y - y.mean(axis=0)
    hue = (np.arctan2(c[:, 1], c[:, 0]) / (2 * np.pi)) % 1.0
    return hsv_to_rgb(np.stack([hue, np.full_like(hue, 0.55), np.full_like(hue, 0.95)], axis=1))


def facet_segments(model: Any, pairs: np.ndarray, centers: np.ndarray, n_points: int = 81) -> np.ndarray:
    """(K, 2, 2) end points of the 2-D facets F_ij = W_i ∩ W_j through the given facet points.

    F_ij lies on the line ⟨x, y_i − y_j⟩ + h_i − h_j = 0; the segment kept is where i and j are
    the two best cells, found by probing the line around the facet point.
    """
    y, h = model.targets_, model.heights_
    i, j = pairs[:, 0], pairs[:, 1]
    dy = y[i] - y[j]
    normal = dy / np.linalg.norm(dy, axis=1, keepdims=True)
    along = np.stack([-normal[:, 1], normal[:, 0]], axis=1)
    # project the facet point onto the line, then probe ± a few cell sizes along it
    off = (np.sum(centers * dy, axis=1) + h[i] - h[j]) / np.linalg.norm(dy, axis=1)
    base = centers - off[:, None] * normal
    reach = 4.0 * np.sqrt(np.maximum(np.ptp(model.source_.sample(4096, seed=0), axis=0).prod(), 1e-300)
                          / len(y))
    t = np.linspace(-reach, reach, n_points)
    probe = base[:, None, :] + t[None, :, None] * along[:, None, :]
    top, _ = model.top_k(probe.reshape(-1, 2), 2)
    top = np.sort(top.reshape(len(pairs), n_points, 2), axis=2)
    hit = (top[:, :, 0] == np.minimum(i, j)[:, None]) & (top[:, :, 1] == np.maximum(i, j)[:, None])
    first = np.where(hit.any(axis=1), np.argmax(hit, axis=1), n_points // 2)
    last = np.where(hit.any(axis=1), n_points - 1 - np.argmax(hit[:, ::-1], axis=1), n_points // 2)
    return np.stack([base + t[first, None] * along, base + t[last, None] * along], axis=1)


def paint_cells(ax: Any, model: Any, colours: np.ndarray, resolution: int = 400) -> None:
    """Paint the source domain with the colour of each point's cell W_i(h) (2-D).

    Uniform boxes and discs are rasterised; other sources are shown by coloured samples.
    """
    from .measures import UniformBall, UniformCube

    src = model.source_
    if isinstance(src, (UniformCube, UniformBall)):
        if isinstance(src, UniformCube):
            lo, hi = src.low, src.high
        else:
            lo, hi = src.center - src.radius, src.center + src.radius
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
        pix = np.stack([gx.ravel(), gy.ravel()], axis=1)
        inside = np.ones(len(pix), bool)
        if isinstance(src, UniformBall):
            inside = np.sum((pix - src.center) ** 2, axis=1) <= src.radius**2
            ax.add_patch(Circle(tuple(src.center), src.radius, fill=False, color="black", lw=1.0))
        img = np.ones((len(pix), 3))
        img[inside] = colours[model.assign(pix[inside])]
        ax.imshow(img.reshape(resolution, resolution, 3), origin="lower", interpolation="nearest",
                  extent=(lo[0], hi[0], lo[1], hi[1]))
        pad = 0.03 * (hi - lo)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    else:
        x = src.sample(60_000, seed=0)
        ax.scatter(x[:, 0], x[:, 1], s=1, c=colours[model.assign(x)], linewidths=0)


def draw_singular(ax: Any, model: Any, sing: Any) -> int:
    """Draw the singular facets of a 2-D potential as black segments; returns how many."""
    sp = sing.singular_pairs
    if len(sp) == 0:
        return 0
    fc = sing.facet_centers[sing.singular]
    mid = 0.5 * (sing.centroids[sp[:, 0]] + sing.centroids[sp[:, 1]])
    fc = np.where(np.isfinite(fc), fc, mid)  # facets no sample fell near: start midway
    keep = np.isfinite(fc).all(axis=1)
    segs = facet_segments(model, sp[keep], fc[keep])
    ax.add_collection(LineCollection(segs, colors="black", linewidths=2.0))
    return int(keep.sum())


def singular_figure(model: Any, sing: Any) -> Figure:
    """Cells of a 2-D potential (coloured by branch) with the singular set, beside the targets."""
    y = model.targets_
    if y.shape[1] != 2:
        raise BrenierError(f"model: pictures are drawn in 2-D only, got d={y.shape[1]}")
    colours = target_colours(y, sing.branches())
    fig = Figure(figsize=(10, 5))
    ax0, ax1 = fig.subplots(1, 2)
    paint_cells(ax0, model, colours)
    n = draw_singular(ax0, model, sing)
    ax0.set_title(f"source μ: cells W_i(h) and {n} singular facets", fontsize=10)
    ax1.scatter(y[:, 0], y[:, 1], s=4, c=colours, linewidths=0)
    ax1.set_title(f"targets y_i ({int(sing.branches().max() + 1)} branch(es))", fontsize=10)
    for ax in (ax0, ax1):
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def gu_figure(path: str | os.PathLike | None = None, *, shape: str = "two_moons",
              n_targets: int = 1500, n_generated: int = 4000, seed: int = 0,
              threshold: float | str = "auto", resolution: int = 400) -> dict:
    """Gu's picture of the singular set for the uniform disc → `shape` (two_moons, crescent,
    dumbbell, disc). Returns {"figure", "model", "singular", "samples_pl", "samples_naive"}
    and writes the figure to `path` when given."""
    from . import datasets
    from .measures import UniformBall
    from .ot import SemiDiscreteOT
    from .ot.extend import PiecewiseLinearExtension
    from .ot.singular import singular_set

    makers = {"crescent": datasets.crescent, "two_moons": datasets.two_moons,
              "dumbbell": datasets.dumbbell, "disc": datasets.disc}
    if shape not in makers:
        raise BrenierError(f"shape: expected one of {sorted(makers)}, got {shape!r}")
    y = makers[shape](n_targets, seed)
    model = SemiDiscreteOT(UniformBall(2), seed=seed).fit(y)
    sing = singular_set(model, threshold=threshold, seed=seed)
    colours = target_colours(y, sing.branches())
    pl = PiecewiseLinearExtension(model, sing, "pl").sample(n_generated, seed=seed + 1)
    naive = PiecewiseLinearExtension(model, sing, "naive").sample(n_generated, seed=seed + 1)

    fig = Figure(figsize=(15, 5))
    axes = fig.subplots(1, 3)
    paint_cells(axes[0], model, colours, resolution)
    n_sing = draw_singular(axes[0], model, sing)
    axes[0].set_title(f"uniform disc μ: cells W_i(h), {n_sing} singular facets", fontsize=10)
    lo, hi = y.min(axis=0) - 0.15, y.max(axis=0) + 0.15
    for ax, pts, name in ((axes[1], pl, "singular-aware extension"),
                          (axes[2], naive, "naive extension")):
        ax.scatter(y[:, 0], y[:, 1], s=3, c=colours, alpha=0.6, linewidths=0)
        ax.scatter(pts[:, 0], pts[:, 1], s=1, c="black", alpha=0.5, linewidths=0)
        ax.set_title(f"{shape}: targets + {len(pts)} samples, {name}", fontsize=10)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if path is not None:
        save_figure(fig, path)
    return {"figure": fig, "model": model, "singular": sing, "samples_pl": pl,
            "samples_naive": naive}


# ============================================================================================
# grid-25: generators side by side
# ============================================================================================


def grid25_comparison(samples: dict[str, Any], centers: Any = None, sigma: float | None = None,
                      path: str | os.PathLike | None = None, *, n_sigma: float = 3.0) -> Figure:
    """One panel per generator: its samples over the grid-25 centres with their n_sigma·σ discs;
    titles carry modes / %HQ / reverse KL (`brenier.metrics.mode_metrics`)."""
    from .datasets import grid25_centers
    from .metrics import mode_metrics

    if not samples:
        raise BrenierError("samples: expected a non-empty {name: (n, 2) array} mapping")
    c = grid25_centers() if centers is None else check_points(centers, "centers", dim=2)
    s = 0.05 if sigma is None else float(sigma)
    k = len(samples)
    fig = Figure(figsize=(3.2 * k, 3.4))
    axes = np.atleast_1d(fig.subplots(1, k))
    span = np.abs(c).max() + 1.5
    for ax, (name, pts) in zip(axes, samples.items(), strict=True):
        x = check_points(pts, f"samples[{name!r}]", dim=2)
        m = mode_metrics(x, c, s, n_sigma=n_sigma)
        ax.scatter(x[:, 0], x[:, 1], s=1.5, c="tab:blue", alpha=0.5, linewidths=0)
        ax.scatter(c[:, 0], c[:, 1], s=8, marker="+", c="tab:red", linewidths=0.8)
        ax.set_title(f"{name}\n{m['modes']} modes · {m['hq']:.1f}% HQ · KL {m['reverse_kl']:.3f}",
                     fontsize=9)
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if path is not None:
        save_figure(fig, path)
    return fig


def grid25_samples(n: int = 2500, *, seed: int = 0, n_train: int = 100_000, n_targets: int = 5000,
                   gan_steps: int = 600, ddpm_steps: int = 5000) -> tuple[dict[str, np.ndarray], Any]:
    """Train every generator on grid-25 and draw n samples each, with small budgets (about a
    minute on one core) meant for pictures; `benchmarks/modes2d.py` measures them properly.

    Returns ({name: samples}, mixture). The OT generator uses `n_targets` training points as
    targets with weights = share of training points nearest to each (`brenier.ot.extend`).
    """
    from .datasets import grid25
    from .models import DDPM, WGANGP
    from .ot.extend import OTGenerator

    mix = grid25(n_train, seed)
    out: dict[str, np.ndarray] = {"real data": grid25(n, seed + 1).points}
    ot_gen = OTGenerator(n_targets=n_targets, seed=seed, backend="faiss").fit(mix.points)
    for ext, name in (("pl", "brenier (singular-aware)"), ("naive", "brenier (naive)")):
        ot_gen.extension = ext
        out[name] = ot_gen.generate(n, seed=seed + 2)
    out["WGAN-GP"] = WGANGP(steps=gan_steps, seed=seed).fit(mix.points).generate(n, seed=seed + 2)
    out["DDPM"] = DDPM(steps=ddpm_steps, seed=seed).fit(mix.points).generate(n, seed=seed + 2)
    return out, mix
