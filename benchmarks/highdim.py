"""The Monte-Carlo solver on N standard Gaussian targets in d dimensions from the uniform cube.

Prints every solver step (χ², batch, rescued cells, seconds), then χ² on 2²⁰ independent samples
and the process's peak RSS. The sdot.py memory probe is `--n 1000000 --d 64 --max-iter 2
--batch 131072 --skip-check`.

Run: python benchmarks/highdim.py --n 1000 --d 64
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from brenier import SemiDiscreteOT, UniformCube


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--max-iter", type=int, default=60)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--skip-check", action="store_true", help="no independent χ² measurement")
    a = p.parse_args()
    y = np.random.default_rng(0).standard_normal((a.n, a.d))
    start = time.perf_counter()

    def show(rec: dict) -> None:
        keep = ("step", "batch", "chi2", "rescued", "rejected", "seconds")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print({k: rec[k] for k in keep if k in rec}, f"peak {peak:.0f} MB", flush=True)

    model = SemiDiscreteOT(UniformCube(a.d), seed=0, max_iter=a.max_iter, batch_size=a.batch,
                           method="monte-carlo").fit(y, callback=show)
    seconds = time.perf_counter() - start
    print(f"N={a.n} d={a.d}: {seconds:.1f} s, {model.n_iter_} steps, converged={model.converged_}")
    if not a.skip_check:
        print(f"chi2 on fresh samples: {model.mass_error(n_samples=1 << 20, seed=3)['chi2']:.2e}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
