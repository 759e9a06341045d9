"""The built-in demonstration behind `make demo` / `brenier demo`.

Two problems are solved and drawn:
* the uniform square [−½, ½]² → samples of the grid-25 Gaussian mixture (PacGAN's benchmark);
* the uniform disc → samples of a non-convex crescent (Gu's disc → non-convex region picture).
Each picture colours the cells W_i(h) of the Brenier potential; `summary.json` records the solve.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import io
from .measures import UniformBall, UniformCube
from .ot import SemiDiscreteOT


def _cell_picture(model: SemiDiscreteOT, extent: float, path: Path, title: str, inside=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 400
    g = np.linspace(-extent, extent, n)
    xx, yy = np.meshgrid(g, g)
    x = np.column_stack([xx.ravel(), yy.ravel()])
    idx = model.assign(x).astype(float)
    if inside is not None:
        idx[~inside(x)] = np.nan
    colours = np.random.default_rng(0).permutation(len(model.targets_))
    img = np.where(np.isnan(idx), np.nan, colours[np.nan_to_num(idx).astype(int)]).reshape(n, n)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].imshow(img, origin="lower", extent=(-extent, extent, -extent, extent), cmap="tab20",
                   interpolation="nearest")
    axes[0].set_title("cells W_i(h) in the source domain")
    y = model.targets_
    axes[1].scatter(y[:, 0], y[:, 1], s=2, c=colours, cmap="tab20")
    axes[1].set_title("targets y_i (same colours)")
    axes[1].set_aspect("equal")
    fig.suptitle(title)
    fig.tight_layout()
    with io.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _solve(source, targets, seed):
    t0 = time.perf_counter()
    model = SemiDiscreteOT(source, seed=seed, tol=1e-3, max_iter=60).fit(targets)
    seconds = time.perf_counter() - t0
    check = model.mass_error(n_samples=1 << 21, seed=seed + 1)
    return model, {"n_targets": len(targets), "dim": targets.shape[1], "source": repr(model.source_),
                   "converged": model.converged_, "steps": model.n_iter_, "seconds": round(seconds, 2),
                   "mass_error_independent": check,
                   "wasserstein2": model.wasserstein(2, n_samples=1 << 18, seed=seed + 2)}


def run_demo(out: str | Path, seed: int = 0) -> dict:
    """Solve the built-in problems and write pictures and `summary.json` to `out`."""
    from .datasets import crescent, grid25

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problems = {}
    grid = grid25(1000, seed=seed).points / 10.0  # scaled into the square's range
    model, info = _solve(UniformCube(2), grid, seed)
    model.save(out / "square_to_grid25.safetensors")
    _cell_picture(model, 0.5, out / "square_to_grid25.png", "uniform square → grid-25 samples")
    problems["square_to_grid25"] = info
    shape = crescent(1000, seed=seed)
    model, info = _solve(UniformBall(2), shape, seed)
    model.save(out / "disc_to_crescent.safetensors")
    _cell_picture(model, 1.0, out / "disc_to_crescent.png", "uniform disc → crescent samples",
                  inside=lambda x: np.sum(x**2, axis=1) <= 1.0)
    problems["disc_to_crescent"] = info
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) + ["summary.json"]
    summary = {"problems": problems, "files": sorted(set(files))}
    io.write_json(out / "summary.json", summary)
    return summary
