"""The Monte-Carlo solver on the cases that used to stall (issue 15), from both starts.

Prints, per case and start: steps, seconds, whether the stopping test held, and χ² on 2²² fresh
samples. Cases: `gauss` (2,000 Gaussian targets in 64-D), `grid` (1,000 samples of grid-25),
`cluster` (1,000 targets in 10 clusters of width 1e-6, 8-D), `shapes` (AE-OT codes of 2,000
`shapes` images, 8-D, 20-epoch autoencoder; trains the autoencoder first, ≈ 2 min).

Run: python benchmarks/stalls.py --cases gauss,grid,cluster,shapes
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from brenier import SemiDiscreteOT, UniformCube
from brenier.datasets import grid25


def targets(case: str) -> tuple[np.ndarray, np.ndarray | None]:
    if case == "gauss":
        return np.random.default_rng(0).standard_normal((2000, 64)), None
    if case == "grid":
        return grid25(1000, seed=0).points, None
    if case == "cluster":
        rng = np.random.default_rng(0)
        centres = rng.standard_normal((10, 8))
        return centres[rng.integers(0, 10, 1000)] + 1e-6 * rng.standard_normal((1000, 8)), None
    if case == "shapes":
        from brenier import AEOT
        from brenier.datasets import shapes

        model = AEOT(latent_dim=8, epochs=20, seed=0, max_iter=1).fit(shapes(2000, size=32, seed=0).images)
        index, weights = model._distinct_targets(model._choose_targets(len(model.codes_)))
        return model._normalise(model.codes_[index]), weights
    raise SystemExit(f"--cases: unknown case {case!r} (gauss, grid, cluster, shapes)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="gauss,grid,cluster")
    p.add_argument("--max-iter", type=int, default=40)
    a = p.parse_args()
    print("| case | start | steps | seconds | converged | χ² fresh (2²²) |")
    print("|---|---|---|---|---|---|")
    for case in a.cases.split(","):
        y, w = targets(case)
        for start in ("voronoi", "multiscale"):
            t0 = time.perf_counter()
            model = SemiDiscreteOT(UniformCube(y.shape[1]), method="monte-carlo", start=start,
                                   max_iter=a.max_iter, seed=0).fit(y, w)
            seconds = time.perf_counter() - t0
            chi2 = model.mass_error(n_samples=1 << 22, seed=5)["chi2"]
            print(f"| {case} | {start} | {model.n_iter_} | {seconds:.1f} | {model.converged_} | "
                  f"{chi2:.2e} |", flush=True)


if __name__ == "__main__":
    main()
