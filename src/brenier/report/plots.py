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
from collections.abc import Callable
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import hsv_to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from .. import datasets, io
from ..datasets import grid25, grid25_centers
from ..evaluation.point_metrics import mode_metrics
from ..generators.baselines import DDPM, WGANGP
from ..generators.ot import OTGenerator
from ..measures import UniformBall, UniformCube
from ..ot import SemiDiscreteOT
from ..ot.cells.statistics import exact_statistics
from ..ot.extension import PiecewiseLinearExtension, cached_singular_set
from ..ot.singular import singular_set
from ..validation import BrenierError, check_points, check_positive_int

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
    n_branches = int(branches.max()) + 1
    if n_branches > len(BRANCH_COLOURS):  # many branches: hues spaced by the golden ratio
        k = np.arange(n_branches)
        hsv = np.stack([(k * 0.618034) % 1.0, 0.45 + 0.4 * (k % 2), 0.95 - 0.25 * (k % 3 == 2)], axis=1)
        return hsv_to_rgb(hsv)[branches]
    if n_branches > 1:
        return BRANCH_COLOURS[branches]
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


def exact_singular_segments(model: Any, sing: Any) -> np.ndarray | None:
    """(S, 2, 2) the singular facets cut from the exact power diagram (2-D, a source the exact
    solver handles), or None where there is no exact diagram."""
    if sing.singular_segments is not None:
        return sing.singular_segments
    if getattr(model, "method_", "") != "newton" or model.targets_.shape[1] != 2:
        return None
    exact = exact_statistics(model.source_, model.targets_, model.heights_)
    n = len(model.targets_)
    keys = exact.pairs[:, 0] * n + exact.pairs[:, 1]  # increasing
    sp = np.sort(sing.singular_pairs, axis=1)
    pos = np.minimum(np.searchsorted(keys, sp[:, 0] * n + sp[:, 1]), max(len(keys) - 1, 0))
    found = keys[pos] == sp[:, 0] * n + sp[:, 1] if len(keys) else np.zeros(len(sp), bool)
    return exact.segments[pos[found]]


def draw_singular(ax: Any, model: Any, sing: Any) -> int:
    """Draw the singular facets of a 2-D potential as black segments; returns how many. Exact
    facets where the exact diagram exists, else each facet's line probed around its strip samples."""
    sp = sing.singular_pairs
    if len(sp) == 0:
        return 0
    exact = exact_singular_segments(model, sing)
    if exact is not None:
        ax.add_collection(LineCollection(exact, colors="black", linewidths=2.0))
        return len(exact)
    fc = sing.facet_centers[sing.singular]
    mid = 0.5 * (sing.centroids[sp[:, 0]] + sing.centroids[sp[:, 1]])
    fc = np.where(np.isfinite(fc), fc, mid)  # facets no sample fell near: start midway
    keep = np.isfinite(fc).all(axis=1)
    segs = facet_segments(model, sp[keep], fc[keep])
    lines = LineCollection(segs, colors="black", linewidths=2.0)
    ax.add_collection(lines)
    src = model.source_  # keep the facets inside a disc or box source
    if isinstance(src, UniformBall):
        lines.set_clip_path(Circle(tuple(src.center), src.radius, transform=ax.transData))
    elif isinstance(src, UniformCube):
        lines.set_clip_path(Rectangle(tuple(src.low), *(src.high - src.low), transform=ax.transData))
    return int(keep.sum())


def singular_projection_figure(model: Any, sing: Any) -> Figure:
    """Above two dimensions: the targets on their first two principal axes, coloured by branch,
    with the adjacent pairs (grey) and the singular pairs (red) of the cells W_i(h)."""
    y = model.targets_
    yc = y - y.mean(axis=0)
    axes = np.linalg.svd(yc, full_matrices=False)[2][:2] if y.shape[1] > 1 else np.eye(1)
    p = yc @ axes.T if y.shape[1] > 1 else np.c_[yc[:, 0], np.zeros(len(y))]
    colours = target_colours(y, sing.branches())
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    regular = sing.pairs[~sing.singular]
    ax.add_collection(LineCollection(p[regular], colors=(0.8, 0.8, 0.8), linewidths=0.4))
    ax.add_collection(LineCollection(p[sing.singular_pairs], colors="red", linewidths=0.8))
    ax.scatter(p[:, 0], p[:, 1], s=6, c=colours, linewidths=0, zorder=3)
    ax.set_title(f"targets y_i in {y.shape[1]}-D on their two principal axes: "
                 f"{int(sing.branches().max() + 1)} branch(es),\n{len(sing.singular_pairs)} singular "
                 f"(red) of {len(sing.pairs)} adjacent pairs (grey)", fontsize=9)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def singular_figure(model: Any, sing: Any) -> Figure:
    """Cells of a 2-D potential (coloured by branch) with the singular set, beside the targets;
    in other dimensions the projection of `singular_projection_figure`."""
    y = model.targets_
    if y.shape[1] != 2:
        return singular_projection_figure(model, sing)
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


def _shade_region(ax: Any, contains: Any, lo: np.ndarray, hi: np.ndarray, n: int = 300) -> None:
    """Paint the region {contains(x)} light grey over the box [lo, hi]."""
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    inside = contains(np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(n, n)
    img = np.where(inside[:, :, None], 0.88, 1.0) * np.ones((n, n, 3))
    ax.imshow(img, origin="lower", interpolation="bilinear", extent=(lo[0], hi[0], lo[1], hi[1]))


def gu_figure(path: str | os.PathLike | None = None, *, shape: str = "two_moons",
              n_targets: int = 1500, n_generated: int = 4000, seed: int = 0,
              threshold: float | str = "auto", resolution: int = 400) -> dict:
    """Gu's picture of the singular set for the uniform disc → `shape` (two_moons, crescent,
    dumbbell, disc).

    Panel 1: the disc painted with the cells W_i(h) (colour = branch of y_i, or position along a
    one-piece shape) and the singular facets in black. Panels 2–3: the region ν (grey), its
    targets y_i (coloured) and `n_generated` samples (black) of the singular-aware and of the
    naive extension; the titles give the share of samples outside the region.

    Returns {"figure", "model", "singular", "samples_pl", "samples_naive", "outside_pl",
    "outside_naive", "n_branches", "n_singular"} (outside_*: share in [0, 1]) and writes the
    figure to `path` when given.
    """
    makers = {"crescent": (datasets.crescent, datasets.crescent_contains),
              "two_moons": (datasets.two_moons, datasets.two_moons_contains),
              "dumbbell": (datasets.dumbbell, datasets.dumbbell_contains),
              "disc": (datasets.disc, datasets.disc_contains)}
    if shape not in makers:
        raise BrenierError(f"shape: expected one of {sorted(makers)}, got {shape!r}")
    make, contains = makers[shape]
    y = make(n_targets, seed)
    model = SemiDiscreteOT(UniformBall(2), seed=seed).fit(y)
    sing = singular_set(model, threshold=threshold, seed=seed)
    branches = sing.branches()
    colours = target_colours(y, branches)
    pl = PiecewiseLinearExtension(model, sing, "pl").sample(n_generated, seed=seed + 1)
    naive = PiecewiseLinearExtension(model, sing, "naive").sample(n_generated, seed=seed + 1)
    outside = {"pl": float(np.mean(~contains(pl))), "naive": float(np.mean(~contains(naive)))}
    n_branches = int(branches.max() + 1)

    fig = Figure(figsize=(15, 5.4), layout="constrained")
    axes = fig.subplots(1, 3)
    paint_cells(axes[0], model, colours, resolution)
    n_sing = draw_singular(axes[0], model, sing)
    colouring = "by branch" if n_branches > 1 else "by position along the shape"
    axes[0].set_title(f"uniform disc μ: cells $W_i(h)$ coloured {colouring}\n"
                      f"singular set ({n_sing} facets) in black", fontsize=10)
    pad = 0.15
    lo, hi = y.min(axis=0) - pad, y.max(axis=0) + pad
    for ax, pts, key, name in ((axes[1], pl, "pl", "singular-aware extension"),
                               (axes[2], naive, "naive", "naive extension")):
        _shade_region(ax, contains, lo, hi)
        ax.scatter(y[:, 0], y[:, 1], s=3, c=colours, alpha=0.7, linewidths=0)
        ax.scatter(pts[:, 0], pts[:, 1], s=1.2, c="black", alpha=0.6, linewidths=0)
        ax.set_title(f"{name}: {len(pts)} samples\n{100 * outside[key]:.1f} % outside the region",
                     fontsize=10)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Gu's picture: uniform disc → {shape.replace('_', ' ')} ({len(y)} targets, "
                 f"{n_branches} branch{'es' if n_branches > 1 else ''}); grey = support of ν",
                 fontsize=11)
    if path is not None:
        save_figure(fig, path)
    return {"figure": fig, "model": model, "singular": sing, "samples_pl": pl,
            "samples_naive": naive, "outside_pl": outside["pl"], "outside_naive": outside["naive"],
            "n_branches": n_branches, "n_singular": int(sing.singular.sum())}


# ============================================================================================
# grid-25: generators side by side
# ============================================================================================


def grid25_comparison(samples: dict[str, Any], centers: Any = None, sigma: float | None = None,
                      path: str | os.PathLike | None = None, *, n_sigma: float = 3.0,
                      title: str | None = None, ncols: int | None = None) -> Figure:
    """One panel per generator: its samples over the grid-25 centres (red +);
    titles carry modes / %HQ / reverse KL (`mode_metrics`, n_sigma·σ test).
    Panels are laid out in rows of `ncols` (default: one row up to 4 panels, else 3 per row)."""
    if not samples:
        raise BrenierError("samples: expected a non-empty {name: (n, 2) array} mapping")
    c = grid25_centers() if centers is None else check_points(centers, "centers", dim=2)
    s = 0.05 if sigma is None else float(sigma)
    k = len(samples)
    cols = check_positive_int(ncols, "ncols", allow_none=True) or (k if k <= 4 else 3)
    rows = -(-k // cols)
    fig = Figure(figsize=(3.3 * cols, 3.4 * rows + (0.5 if title else 0.0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    lo, hi = c.min(axis=0) - 2.0, c.max(axis=0) + 2.0
    for ax, (name, pts) in zip(axes, samples.items(), strict=False):
        x = check_points(pts, f"samples[{name!r}]", dim=2)
        m = mode_metrics(x, c, s, n_sigma=n_sigma)
        ax.scatter(x[:, 0], x[:, 1], s=1.5, c="tab:blue", alpha=0.5, linewidths=0)
        ax.scatter(c[:, 0], c[:, 1], s=10, marker="+", c="tab:red", linewidths=0.8)
        ax.set_title(f"{name}\n{m['modes']} modes · {m['hq']:.1f} % HQ · KL {m['reverse_kl']:.3f}",
                     fontsize=9)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[k:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig


def grid25_samples(n: int = 2500, *, seed: int = 0, n_train: int = 100_000, n_targets: int = 2000,
                   gan_steps: int = 1500, ddpm_steps: int = 8000,
                   log: Callable[[str], None] | None = None,
                   ) -> tuple[dict[str, np.ndarray], Any, dict[str, float]]:
    """Train every generator on grid-25 and draw n samples each, with small budgets meant for
    pictures (torch on one thread); `benchmarks/modes2d.py` measures them properly.

    The OT generator uses `n_targets` training points as targets weighted by the share of
    training points nearest to each (`brenier.generators.ot.OTGenerator`) and gives three panels:
    singular-aware, naive and the plain map T. Panel names carry the baselines' budgets.
    Returns ({name: samples}, mixture, {name: seconds of fit + generation}).
    """
    import time

    import torch

    say = log or (lambda _msg: None)
    mix = grid25(n_train, seed)
    out: dict[str, np.ndarray] = {"real data": grid25(n, seed + 1).points}
    seconds: dict[str, float] = {"real data": 0.0}
    start = time.perf_counter()
    model = OTGenerator(n_targets=n_targets, seed=seed, backend="faiss").fit(mix.points).model_
    sing = cached_singular_set(model)
    fit_s = time.perf_counter() - start
    say(f"brenier: {n_targets} cells solved, {int(sing.singular.sum())} singular facets, "
        f"{int(sing.branches().max() + 1)} branches ({fit_s:.1f} s)")
    for ext, name in (("pl", "brenier (singular-aware)"), ("naive", "brenier (naive)"),
                      ("none", "brenier (plain map T)")):
        start = time.perf_counter()
        out[name] = PiecewiseLinearExtension(model, sing, ext).sample(n, seed=seed + 2)
        seconds[name] = fit_s + time.perf_counter() - start
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small MLPs: one thread is fastest and leaves a core free
    try:
        start = time.perf_counter()
        gan = WGANGP(steps=gan_steps, seed=seed).fit(mix.points)
        name = f"WGAN-GP ({gan_steps} steps, small budget)"
        out[name] = gan.sample(n, seed=seed + 2)
        seconds[name] = time.perf_counter() - start
        say(f"WGAN-GP: {gan_steps} generator steps ({seconds[name]:.1f} s)")
        start = time.perf_counter()
        ddpm = DDPM(steps=ddpm_steps, seed=seed).fit(mix.points)
        name = f"DDPM ({ddpm_steps} steps, DDIM-100, small budget)"
        out[name] = ddpm.sample(n, seed=seed + 2, sampler="ddim")
        seconds[name] = time.perf_counter() - start
        say(f"DDPM: {ddpm_steps} training steps, DDIM-100 sampling ({seconds[name]:.1f} s)")
    finally:
        torch.set_num_threads(threads)
    return out, mix, seconds
