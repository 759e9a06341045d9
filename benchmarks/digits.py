"""Benchmark (issue 4): AE-OT on the 8×8 digits against latent DDPM, pixel DDPM, VAE and AE + Gaussian.

For each seed: train the autoencoder and solve the latent OT problem (brenier.AEOT), then train every
baseline on the same images (latent ones on the same autoencoder) and score n samples of each with
`brenier.metrics.evaluate_samples` (classifier trained on the same data, fixed seed). Prints one
markdown table of mean ± s.d. over seeds and the goals of the issue.

    .venv/bin/python benchmarks/digits.py [--seeds 5] [--first-seed 0] [--n 2000] [--budget 1.0]
                                 [--latent-noise 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from brenier import AEOT
from brenier.datasets import digits
from brenier.evaluation.evaluate import evaluate_model

FIELDS = (
    ("frechet", "Fréchet", 2),
    ("mixture_rate_50", "mix p<0.5", 3),
    ("mixture_rate_90", "mix p<0.9", 3),
    ("class_kl", "class KL", 4),
    ("coverage", "coverage", 3),
    ("precision", "precision", 3),
    ("recall", "recall", 3),
    ("memorisation", "memorised", 3),
    ("seconds", "wall s", 0),
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds first-seed … first-seed + seeds − 1 (e.g. 5 for a held-out set)")
    p.add_argument("--n", type=int, default=2000, help="samples per method")
    p.add_argument("--latent-dim", default="10")
    p.add_argument("--latent-noise", type=float, default=0.0,
                   help="σ of the autoencoder's code noise (brenier.AEOT latent_noise)")
    p.add_argument("--budget", type=float, default=1.0, help="scale of the baselines' training budget")
    p.add_argument("--json", default=None, help="also write the raw results here")
    cfg = p.parse_args()
    torch.set_num_threads(1)
    latent = cfg.latent_dim if cfg.latent_dim == "auto" else int(cfg.latent_dim)
    data = digits()
    runs: dict[str, list[dict]] = {}
    start = time.perf_counter()
    for seed in range(cfg.first_seed, cfg.first_seed + cfg.seeds):
        model = AEOT(latent, seed=seed, latent_noise=cfg.latent_noise).fit(data)
        results, _ = evaluate_model(
            model,
            cfg.n,
            seed=seed,
            baselines=True,
            budget=cfg.budget,
            log=lambda m, s=seed: print(f"  seed {s}: {m}", flush=True),
        )
        for name, r in results.items():
            runs.setdefault(name, []).append(r)
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)
        report(runs, cfg, seed + 1 - cfg.first_seed, time.perf_counter() - start)


def report(runs: dict[str, list[dict]], cfg: argparse.Namespace, n_seeds: int, seconds: float) -> None:
    """Print the table (mean ± s.d. over the seeds so far) and the goals; write the JSON."""
    print(f"\n| method | {' | '.join(label for _, label, _ in FIELDS)} |")
    print("|---" * (len(FIELDS) + 1) + "|")
    summary = {}
    for name, rs in runs.items():
        cells, summary[name] = [], {}
        for key, _, digits_ in FIELDS:
            v = np.array([r[key] for r in rs], float)
            summary[name][key] = (float(v.mean()), float(v.std()))
            cells.append(f"{v.mean():.{digits_}f} ± {v.std():.{digits_}f}")
        print(f"| {name} | {' | '.join(cells)} |")
    b, ddpm = summary["brenier"], summary["latent DDPM"]
    best_fd = min(summary[m]["frechet"][0] for m in ("latent DDPM", "pixel DDPM", "VAE", "AE + Gaussian"))
    kl_ok = all(r["class_kl"] <= 0.02 for r in runs["brenier"])
    mix_ok = b["mixture_rate_50"][0] <= ddpm["mixture_rate_50"][0] / 3
    print(
        f"\nGoals: mixture(p<0.5) ≤ ⅓ latent DDPM's: {b['mixture_rate_50'][0]:.4f} vs "
        f"{ddpm['mixture_rate_50'][0] / 3:.4f} → {'met' if mix_ok else 'NOT met'}; "
        f"class KL ≤ 0.02 every seed: {'met' if kl_ok else 'NOT met'}; Fréchet ≤ best baseline "
        f"({best_fd:.2f}): {'met' if b['frechet'][0] <= best_fd else 'NOT met'}; memorisation < 5 %: "
        f"{'met' if b['memorisation'][0] < 0.05 else 'NOT met'}."
    )
    print(
        f"digits (1797 images), latent d = {cfg.latent_dim}, {cfg.n} samples per method, {n_seeds} seeds "
        f"from {cfg.first_seed}, "
        f"baseline budget ×{cfg.budget}; CPU, 1 thread. Total {seconds:.0f} s."
    )
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump({"runs": runs, "summary": summary}, f, indent=1, default=float)


if __name__ == "__main__":
    main()
