"""Mode collapse and mode mixture on ring-8 and grid-25 (PacGAN protocol), brenier vs GAN vs DDPM.

Protocol (docs BENCHMARKS.md §1): train on 100,000 points; evaluate 2,500 generated samples;
10 trials, mean ± s.e. Metrics: modes covered, %HQ (within 3σ of the nearest centre), reverse KL
of the HQ samples' mode histogram to uniform (`brenier.metrics.mode_metrics`); sliced W2 (POT,
500 directions) between the 2,500 samples and 20,000 fresh held-out real points; exact copies
(%: equal to a training point), copies (%: within 1e-6 × the data's spread of one, which dense
data also reach by chance) and "near" (%: closer to a training point than the 1 % quantile of the
training set's own nearest-neighbour spacing; fresh real data score ≈ 1 %); wall time of fit +
generation.

brenier: semi-discrete OT from the uniform square to a summary of the 100,000 training points:
10,000 of them drawn at random, each weighted by the share of training points nearest to it (a
Voronoi quantisation that keeps every region's mass). Measured on this machine (1 thread): the
exact power-diagram solver fits 10,000 cells in 3–7 s; with all 100,000 points as cells grid-25
took 179 s and stopped unconverged after 42 Newton steps, and ring-8 (σ = 0.01, near-duplicate
points) failed to find starting heights. Three generators share the potential: the
singular-aware piecewise-linear extension, the naive one and the plain map T, each fed the default
source points (scrambled Sobol points of the square, `qmc="auto"`, see `brenier.ot.extension`); the
extra row "singular-aware, i.i.d. source" feeds the same map i.i.d. points (qmc=False). The cell
kernel is forced to faiss: the 2-D k-d tree kernel answered top-2 queries ~15× slower on these
heights.

Run: python benchmarks/modes2d.py [--quick] [--trials 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from brenier import datasets  # noqa: E402
from brenier.generators.ot import OTGenerator  # noqa: E402
from brenier.metrics import memorisation, mixture_hq, mode_metrics, sliced_wasserstein  # noqa: E402
from brenier.models import DDPM, GAN, WGANGP  # noqa: E402
from brenier.ot.extension import PiecewiseLinearExtension, cached_singular_set  # noqa: E402

PUBLISHED = {  # PacGAN (Lin et al. 2018) Table 1: modes / %HQ / reverse KL, mean ± s.e.
    "GAN (PacGAN paper)": {"ring8": "6.3±0.5 / 98.2±0.2 / 0.45±0.09",
                           "grid25": "17.3±0.8 / 94.8±0.7 / 0.70±0.07"},
    "PacGAN2 (paper)": {"ring8": "7.9±0.1 / 95.6±2.0 / 0.07±0.03",
                        "grid25": "23.8±0.7 / 91.3±0.8 / 0.13±0.04"},
    "PacGAN4 (paper)": {"ring8": "7.8±0.1 / 95.9±1.4 / 0.07±0.02",
                        "grid25": "24.8±0.2 / 93.6±0.6 / 0.04±0.01"},
}
METHODS = ["real data (fresh)", "brenier (singular-aware)", "brenier (singular-aware, i.i.d. source)",
           "brenier (naive)", "brenier (plain map)", "GAN (non-saturating)", "WGAN-GP",
           "DDPM (DDIM-100)", "DDPM (ancestral-1000)"]
GANS = ("GAN (non-saturating)", "WGAN-GP")
FIELDS = ["modes", "hq", "reverse_kl", "sw2", "exact", "copies", "near", "seconds"]
DDPMS = ("DDPM (DDIM-100)", "DDPM (ancestral-1000)")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def evaluate(x: np.ndarray, mix, held: np.ndarray, train: np.ndarray, seconds: float) -> dict:
    m = mode_metrics(x, mix.centers, mix.sigma)
    mem = memorisation(x, train)
    return {**m, "sw2": sliced_wasserstein(x, held, n_projections=500, seed=0),
            "exact": 100 * mem["exact"], "copies": 100 * mem["copies"], "near": 100 * mem["near"],
            "seconds": seconds}


def trial(name: str, t: int, cfg: argparse.Namespace) -> dict[str, dict]:
    maker = getattr(datasets, name)
    mix = maker(cfg.n_train, seed=1000 + t)
    held = maker(20_000, seed=2000 + t).points
    fresh = maker(cfg.n_eval, seed=3000 + t).points
    out = {"real data (fresh)": evaluate(fresh, mix, held, mix.points, 0.0)}

    start = time.perf_counter()
    ot_gen = OTGenerator(n_targets=cfg.targets, seed=t, backend="faiss").fit(mix.points)
    sing = cached_singular_set(ot_gen.model_)
    fit_s = time.perf_counter() - start
    log(f"  {name} trial {t}: brenier fit {fit_s:.1f}s, {int(sing.singular.sum())} singular pairs of "
        f"{len(sing.pairs)}, {int(sing.branches().max() + 1)} branches, converged={ot_gen.model_.converged_}")
    maps = {}
    for ext, label in (("pl", "brenier (singular-aware)"), ("naive", "brenier (naive)"),
                       ("none", "brenier (plain map)")):
        start = time.perf_counter()
        maps[ext] = PiecewiseLinearExtension(ot_gen.model_, sing, ext)
        x = maps[ext].sample(cfg.n_eval, seed=t)  # default qmc="auto": Sobol points of the square
        out[label] = evaluate(x, mix, held, mix.points, fit_s + time.perf_counter() - start)
    # the same map fed i.i.d. source points: the sampling noise a low-discrepancy source removes
    start = time.perf_counter()
    x = maps["pl"].sample(cfg.n_eval, seed=t, qmc=False)
    out["brenier (singular-aware, i.i.d. source)"] = evaluate(x, mix, held, mix.points,
                                                              fit_s + time.perf_counter() - start)

    if not cfg.skip_gan:
        start = time.perf_counter()
        gan = WGANGP(steps=cfg.gan_steps, seed=t).fit(mix.points)
        x = gan.sample(cfg.n_eval, seed=t)
        out["WGAN-GP"] = evaluate(x, mix, held, mix.points, time.perf_counter() - start)
        log(f"  {name} trial {t}: WGAN-GP {out['WGAN-GP']['seconds']:.1f}s")
        start = time.perf_counter()
        gan = GAN(steps=cfg.ns_steps, seed=t).fit(mix.points)
        x = gan.sample(cfg.n_eval, seed=t)
        out["GAN (non-saturating)"] = evaluate(x, mix, held, mix.points, time.perf_counter() - start)
        log(f"  {name} trial {t}: GAN {out['GAN (non-saturating)']['seconds']:.1f}s")

    if cfg.skip_ddpm:
        return out
    start = time.perf_counter()
    ddpm = DDPM(steps=cfg.ddpm_steps, seed=t).fit(mix.points)
    fit_s = time.perf_counter() - start
    for sampler, label in (("ddim", "DDPM (DDIM-100)"), ("ddpm", "DDPM (ancestral-1000)")):
        start = time.perf_counter()
        x = ddpm.sample(cfg.n_eval, seed=t, sampler=sampler)
        out[label] = evaluate(x, mix, held, mix.points, fit_s + time.perf_counter() - start)
    log(f"  {name} trial {t}: DDPM {fit_s:.1f}s")
    return out


def mean_se(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, float)
    if not np.isfinite(v).all():
        return float("inf"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def fmt(values: list[float], digits: int) -> str:
    m, s = mean_se(values)
    if not np.isfinite(m):
        return "inf"
    return f"{m:.{digits}f}±{s:.{digits}f}" if np.isfinite(s) else f"{m:.{digits}f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 trials, 20k points, short training")
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--datasets", default="ring8,grid25")
    p.add_argument("--skip-gan", action="store_true", help="leave both GANs out (their rows say so)")
    p.add_argument("--skip-ddpm", action="store_true", help="leave DDPM out (its rows say so)")
    cfg = p.parse_args()
    torch.set_num_threads(1)
    cfg.n_eval = 2500
    if cfg.quick:
        cfg.trials = cfg.trials or 2
        cfg.n_train, cfg.targets, cfg.gan_steps, cfg.ddpm_steps = 20_000, 2000, 300, 3000
        cfg.ns_steps = 3000
    else:
        cfg.trials = cfg.trials or 10
        cfg.n_train, cfg.targets, cfg.gan_steps, cfg.ddpm_steps = 100_000, 10_000, 4000, 30_000
        cfg.ns_steps = 40_000
    names = cfg.datasets.split(",")
    methods = [m for m in METHODS
               if not (cfg.skip_gan and m in GANS) and not (cfg.skip_ddpm and m in DDPMS)]
    results = {n: {m: {f: [] for f in FIELDS} for m in methods} for n in names}
    total = time.perf_counter()
    for name in names:
        for t in range(cfg.trials):
            res = trial(name, t, cfg)
            for m in methods:
                for f in FIELDS:
                    results[name][m][f].append(res[m][f])
            # the table so far, after every trial: a long run that is stopped keeps its results
            report(results, [n for n in names if results[n][methods[0]]["sw2"]], methods, cfg,
                   time.perf_counter() - total)


def report(results: dict, names: list[str], methods: list[str], cfg: argparse.Namespace,
           seconds: float) -> None:
    """Print the markdown table of mean ± s.e. over the trials run so far."""
    done = {n: len(results[n][methods[0]]["sw2"]) for n in names}
    print(f"\n## Mode collapse / mixture on 2-D mixtures (trials: "
          f"{', '.join(f'{n} {k}' for n, k in done.items())} of {cfg.trials}; mean ± s.e.; "
          f"train {cfg.n_train:,} points, evaluate {cfg.n_eval:,} samples)\n")
    print("| data | method | modes | %HQ | reverse KL | sliced W2 | SW2 ratio | exact copies % "
          "| copies % | near % | time s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        ref = mean_se(results[name]["brenier (singular-aware)"]["sw2"])[0]
        for m in METHODS:
            if m not in methods:
                flag = "--skip-gan" if m in GANS else "--skip-ddpm"
                print(f"| {name} | {m} | not run ({flag}) | | | | | | | | |")
                continue
            r = results[name][m]
            ratio = mean_se(r["sw2"])[0] / ref
            print(f"| {name} | {m} | {fmt(r['modes'], 1)} | {fmt(r['hq'], 1)} | "
                  f"{fmt(r['reverse_kl'], 3)} | {fmt(r['sw2'], 3)} | {ratio:.2f} | "
                  f"{fmt(r['exact'], 2)} | {fmt(r['copies'], 2)} | {fmt(r['near'], 2)} | "
                  f"{fmt(r['seconds'], 1)} |")
        for m, row in PUBLISHED.items():
            print(f"| {name} | {m} | {row[name]} (modes / %HQ / KL, not rerun) | | | | | | | | |")
    print(f"\nExpected %HQ of the true mixture at 3σ in 2-D: {mixture_hq(2):.2f} %. "
          "SW2 ratio = method's mean sliced W2 ÷ brenier (singular-aware)'s. "
          f"brenier targets: {cfg.targets:,} training points weighted by their Voronoi share of "
          f"the {cfg.n_train:,}; GAN (non-saturating; G 4×128 ReLU + batch norm from a 2-D latent, "
          f"D 3×128 LeakyReLU, batch 100, Adam 2e-4 decaying over the second half) {cfg.ns_steps} "
          f"steps; WGAN-GP (G 4×128 + batch norm, critic 3×128 LeakyReLU, lr 2e-4 decaying, data "
          f"spread 16) {cfg.gan_steps} generator steps × 5 critic steps; "
          f"DDPM (MLP 4×128, T = 1000) {cfg.ddpm_steps} steps, batch 512; "
          f"CPU, 1 thread. Total {seconds:.0f} s.", flush=True)


if __name__ == "__main__":
    main()
