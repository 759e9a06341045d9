"""Benchmark of `brenier analyze`'s engines: time and peak memory vs point count, and intrinsic
dimension on the scikit-dimension benchmark manifolds.

    python benchmarks/topology.py            # n = 1e3, 1e4, 1e5 and n = 2500 per manifold
    python benchmarks/topology.py --quick    # n = 1e3, 1e4 and n = 1000 per manifold
    python benchmarks/topology.py --only scaling|manifolds

Table 1 (scaling): each case runs in a fresh process on one thread; peak memory is the growth of
the process's peak RSS during the call. Peers, measured in the same run:
* dimension: skdim's TwoNN on all n points (its own neighbour search) vs
  `intrinsic_dimension` (TwoNN + MLE on one shared search, at most 10,000 points);
* alpha (torus in R^3, H0..H2, Z/2 and Z/3, all n points): plain Rips (ripser, H0..H1, Z/2) on
  the same points where it fits (n ≤ 2,000);
* rips (Klein bottle in R^4, H0..H2, Z/2 and Z/3, 300 maxmin landmarks): ripser with its own greedy
  landmarks (`n_perm=300`), one field.
Table 2 (manifolds): estimated vs true dimension on skdim's BenchmarkManifolds (needs pandas).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

SCALING_CASES = ("dimension", "alpha", "rips")


# ----------------------------------------------------------------------------- data
def torus(n: int, rng: np.random.Generator) -> np.ndarray:
    u, v = rng.uniform(0, 2 * np.pi, (2, n))
    return np.c_[(2 + np.cos(v)) * np.cos(u), (2 + np.cos(v)) * np.sin(u), np.sin(v)]


def klein_bottle(n: int, rng: np.random.Generator) -> np.ndarray:
    u, v = rng.uniform(0, 2 * np.pi, (2, n))
    return np.c_[(2 + np.cos(v)) * np.cos(u), (2 + np.cos(v)) * np.sin(u),
                 np.sin(v) * np.cos(u / 2), np.sin(v) * np.sin(u / 2)]


def linear5in20(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, 5)) @ rng.standard_normal((5, 20))


# ----------------------------------------------------------------------------- one case (child)
def run_case(case: str, who: str, n: int) -> dict:
    """Run one measurement in this process; return seconds, peak-memory growth and a result."""
    from brenier.manifold import intrinsic_dimension, topology

    rng = np.random.default_rng(0)
    x = {"dimension": linear5in20, "alpha": torus, "rips": klein_bottle}[case](n, rng)
    import gudhi  # noqa: F401  (imports are not timed)
    import skdim
    import sklearn.neighbors  # noqa: F401
    from ripser import ripser

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case == "dimension" and who == "ours":
            res = intrinsic_dimension(x)
            answer = f"twonn {res.by_method['twonn']:.2f}, mle {res.by_method['mle']:.2f}"
        elif case == "dimension":
            answer = f"twonn {skdim.id.TwoNN().fit(x).dimension_:.2f}"
        elif who == "ours":
            kw = {"max_points": n} if case == "alpha" else {"n_landmarks": 300}
            topo = topology(x, max_dim=2, **kw)
            answer = f"betti Z/2 {topo.betti_by_coeff[2]}, Z/3 {topo.betti_by_coeff[3]}"
        elif case == "alpha":
            dg = ripser(x, maxdim=1)["dgms"]
            answer = f"{len(dg[1])} H1 bars (longest {np.max(dg[1][:, 1] - dg[1][:, 0]):.2f})"
        else:
            dg = ripser(x, maxdim=2, n_perm=300)["dgms"]
            answer = f"{len(dg[1])} H1, {len(dg[2])} H2 bars"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "mem_mb": max(0, peak - before) / 1024, "answer": answer}


def measure(case: str, who: str, n: int) -> dict | None:
    """Run `run_case` in a fresh one-thread process (clean peak memory)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--case", case, "--who", who, "--n", str(n)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        return {"seconds": float("nan"), "mem_mb": float("nan"),
                "answer": "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1][:60]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def scaling_table(sizes: list[int]) -> None:
    print("| case | n | ours: time s | ours: peak MB | peer | peer: time s | peer: peak MB |"
          " time ratio ours/peer | ours: answer | peer: answer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    peer_name = {"dimension": "skdim TwoNN, all n", "alpha": "ripser Rips H0-H1, all n",
                 "rips": "ripser n_perm=300, Z/2"}
    for case in SCALING_CASES:
        for n in sizes:
            ours = measure(case, "ours", n)
            peer = measure(case, "peer", n) if not (case == "alpha" and n > 2000) else None
            if peer is None:
                ptime = pmem = ratio = "—"
                panswer = "not run (dense n×n distances)"
            else:
                ptime, pmem = f"{peer['seconds']:.2f}", f"{peer['mem_mb']:.0f}"
                ratio = f"{ours['seconds'] / peer['seconds']:.2f}"
                panswer = peer["answer"]
            print(f"| {case} | {n:,} | {ours['seconds']:.2f} | {ours['mem_mb']:.0f} | "
                  f"{peer_name[case]} | {ptime} | {pmem} | {ratio} | {ours['answer']} | "
                  f"{panswer} |", flush=True)


# ----------------------------------------------------------------------------- manifolds
def manifolds_table(n: int, with_danco: bool) -> None:
    try:
        import pandas  # noqa: F401  (skdim's BenchmarkManifolds needs it)
    except ImportError:
        print("manifolds table skipped: skdim.datasets.BenchmarkManifolds needs pandas "
              "(pip install pandas)")
        return
    import skdim

    from brenier.manifold import intrinsic_dimension

    bench = skdim.datasets.BenchmarkManifolds(random_state=0)
    data = bench.generate(n=n)
    methods = ["twonn", "mle"] + (["danco"] if with_danco else [])
    head = " | ".join(f"{m} | {m}/true" for m in methods)
    print(f"| manifold | true d | D | {head} | seconds |")
    print("|---|---|---|" + "---|---|" * len(methods) + "---|")
    errors: dict[str, list[float]] = {m: [] for m in methods}
    for name, x in data.items():
        true = int(bench.truth.loc[name, "Intrinsic Dimension"])
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = intrinsic_dimension(x, cross_check=tuple(methods))
        cells = []
        for m in methods:
            v = est.by_method[m]
            errors[m].append(abs(v - true) / true)
            cells.append(f"{v:.2f} | {v / true:.2f}")
        print(f"| {name} | {true} | {x.shape[1]} | {' | '.join(cells)} | "
              f"{time.perf_counter() - t0:.2f} |", flush=True)
    mean = " | ".join(f"{np.mean(e):.2f} | " for e in errors.values())
    print(f"| **mean abs. relative error, all {len(data)}** | | | {mean} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n up to 1e4; 1000 points per manifold")
    ap.add_argument("--only", choices=("scaling", "manifolds"), default=None)
    ap.add_argument("--case", choices=SCALING_CASES, help=argparse.SUPPRESS)
    ap.add_argument("--who", choices=("ours", "peer"), help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:  # child process of `measure`
        print(json.dumps(run_case(args.case, args.who, args.n)))
        return
    if args.only in (None, "scaling"):
        print("\n### Time and peak memory vs n (one thread)\n")
        scaling_table([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    if args.only in (None, "manifolds"):
        n = 1000 if args.quick else 2500
        print(f"\n### Intrinsic dimension on skdim BenchmarkManifolds (n = {n})\n")
        manifolds_table(n, with_danco=not args.quick)


if __name__ == "__main__":
    main()
