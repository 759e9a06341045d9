"""Semi-discrete OT engine benchmark: kernel throughput, time to accuracy, peak memory.

Run: `python benchmarks/sdot.py [--quick] [--skip-ott] [--cases 1000x2,1000x16]`. Prints markdown
tables; every peer is measured in the same run on the same problem, and the accuracy of every
answer is measured the same way (brenier's independent Monte-Carlo χ² on 2^21 fresh samples;
POT's heights come from the target dual of its discrete problem on N and 16N source samples).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch

from brenier import SemiDiscreteOT, UniformCube
from brenier.ot.assign import Assigner
from brenier.ot.potential import BrenierPotential
from brenier.ot.problem import TransportProblem

TARGET_CHI2 = 2.5e-3


def kernel_table(shapes):
    print("\n### Assignment kernel vs a plain matrix product (same shape, same run)\n")
    print("| M | d | N | matmul GFLOP/s | assign (faiss top-1) GFLOP/s | ratio |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for m, d, n in shapes:
        x = rng.standard_normal((m, d)).astype(np.float32)
        y = rng.standard_normal((n, d)).astype(np.float32)
        flops = 2.0 * m * n * d
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            _ = xt @ yt.T
            times.append(time.perf_counter() - t)
        mm = flops / min(times) / 1e9
        a = Assigner(y.astype(np.float64), backend="faiss")
        a.set_heights(rng.standard_normal(n) * 0.1)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            a.assign(x)
            times.append(time.perf_counter() - t)
        asg = flops / min(times) / 1e9
        print(f"| {m} | {d} | {n} | {mm:.1f} | {asg:.1f} | {asg / mm:.2f} |", flush=True)


def chi2_of(y, h, seed=123):
    problem = TransportProblem(UniformCube(y.shape[1]), y, np.full(len(y), 1 / len(y)))
    potential = BrenierPotential(problem, np.asarray(h, np.float64))
    return potential.mass_error(n_samples=1 << 21, seed=seed)["chi2"]


def run_brenier(y):
    t = time.perf_counter()
    model = SemiDiscreteOT(UniformCube(y.shape[1]), tol=TARGET_CHI2, seed=0, max_iter=60).fit(y)
    return time.perf_counter() - t, model.heights_, f"{model.method_}, {model.n_iter_} steps"


def run_ott(y, budget_iters):
    import jax
    import jax.numpy as jnp
    import optax
    from ott.geometry import semidiscrete_pointcloud as sdpc
    from ott.problems.linear import semidiscrete_linear_problem as sdlp
    from ott.solvers.linear import semidiscrete as sds

    d = y.shape[1]

    def sampler(rng, shape, dtype=None):
        return jax.random.uniform(rng, shape, dtype=dtype or jnp.float32) - 0.5

    geom = sdpc.SemidiscretePointCloud(sampler, jnp.asarray(y, jnp.float32), epsilon=0.0)
    prob = sdlp.SemidiscreteLinearProblem(geom)
    solver = sds.SemidiscreteSolver(num_iterations=budget_iters, batch_size=1024,
                                    optimizer=optax.adam(5e-3), error_eval_every=500,
                                    threshold=TARGET_CHI2)
    t = time.perf_counter()
    out = solver(jax.random.key(0), prob)
    g = np.asarray(jax.block_until_ready(out.g), np.float64)
    seconds = time.perf_counter() - t
    h = (g - np.sum(y**2, axis=1)) / 2  # c = |x − y|²: argmin c − g = argmax ⟨x, y⟩ + (g − |y|²)/2
    del d
    return seconds, h, f"{budget_iters} SGD iterations"


def run_pot(y, m):
    """POT's exact discrete OT between m uniform source samples and the N targets; its target
    dual v gives heights h = (v − |y|²)/2 (c = |x − y|²), whose χ² is measured like the others."""
    import ot

    n = len(y)
    x = UniformCube(y.shape[1]).sample(m, seed=0)
    t = time.perf_counter()
    _, log = ot.emd(np.full(m, 1 / m), np.full(n, 1 / n), ot.dist(x, y), numItermax=10**9, log=True)
    seconds = time.perf_counter() - t
    return seconds, (np.asarray(log["v"], np.float64) - np.sum(y**2, axis=1)) / 2


POT_MAX_SAMPLES = 5000 * 5000  # entries of the dense cost matrix POT's emd needs


def accuracy_table(cases, with_ott):
    print(f"\n### Time to χ² ≤ {TARGET_CHI2} (uniform cube → N Gaussian targets)\n")
    print("| N | d | brenier s | solver | brenier χ² | OTT-JAX s | OTT-JAX χ² | POT emd N samples: s | "
          "χ² | POT emd 16N samples: s | χ² | OTT/brenier |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, d in cases:
        y = np.random.default_rng(1).standard_normal((n, d))
        tb, hb, how = run_brenier(y)
        cb = chi2_of(y, hb)
        to = co = float("nan")
        if with_ott:
            try:
                to, ho, _ = run_ott(y, 4000)
                co = chi2_of(y, ho)
            except Exception as exc:  # report, don't hide
                print(f"<!-- OTT-JAX failed: {exc} -->")
        pot = []
        for m in (n, 16 * n):
            if m * n <= POT_MAX_SAMPLES:
                tp, hp = run_pot(y, m)
                pot += [f"{tp:.1f}", f"{chi2_of(y, hp):.2e}"]
            else:
                pot += ["—", "—"]
        print(f"| {n} | {d} | {tb:.1f} | {how} | {cb:.2e} | {to:.1f} | {co:.2e} | {' | '.join(pot)} | "
              f"{to / tb:.2f} |", flush=True)


def memory_probe(n, d, steps):
    code = f"""
import numpy as np, resource, json
from brenier import SemiDiscreteOT, UniformCube
y = np.random.default_rng(0).standard_normal(({n}, {d}))
m = SemiDiscreteOT(UniformCube({d}), max_iter={steps}, batch_size=1 << 17, method="monte-carlo").fit(y)
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        return float("nan"), (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
    return json.loads(r.stdout.strip().splitlines()[-1])["peak_mb"], f"{time.perf_counter() - t:.0f} s"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="small shapes and sizes (minutes)")
    p.add_argument("--skip-ott", action="store_true")
    p.add_argument("--cases", help="only the time-to-accuracy rows N×d, e.g. 1000x2,1000x16")
    args = p.parse_args()
    torch.set_num_threads(2)
    if args.cases:
        accuracy_table([tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")],
                       not args.skip_ott)
        return
    if args.quick:
        kernel_table([(4096, 64, 10_000), (2048, 64, 100_000)])
        accuracy_table([(1000, 2), (1000, 16), (1000, 64)], not args.skip_ott)
        n_mem = 100_000
    else:
        kernel_table([(16384, 64, 10_000), (4096, 64, 100_000), (4096, 512, 100_000)])
        accuracy_table([(1000, 2), (1000, 16), (1000, 64), (10_000, 2), (10_000, 16), (10_000, 64)],
                       not args.skip_ott)
        n_mem = 1_000_000
    peak, note = memory_probe(n_mem, 64, 2)
    print("\n### Memory\n\n| N | d | steps | peak RSS MB | goal | note |\n|---|---|---|---|---|---|")
    print(f"| {n_mem} | 64 | 2 | {peak:.0f} | < 2048 | {note} |")



if __name__ == "__main__":
    main()
