"""Benchmark: AE-OT on Fashion-MNIST, scored on the held-out test split, against latent DDPM,
pixel DDPM, VAE and AE + Gaussian.

The classifier of the metrics is trained (once, cached) on the 10,000 *test* images, and Fréchet
distance, class KL, mixture rate and precision / recall / density / coverage compare every method's
samples with the test images; memorisation counts near-copies of the *training* images
(`brenier.evaluation.evaluate.evaluate_model(..., reference=test split)`). Two reference rows:
"autoencoder reconstructions" (the AE-OT autoencoder applied to test images — the ceiling of any
latent generator on it) and "data (training images)" (the floor).

For each seed: train AE-OT on the training split (autoencoder, then semi-discrete OT on all the codes),
draw n samples of every method, score them. Each phase is timed; the peak RSS is recorded. Prints
the metric table (mean ± s.d. over the seeds), the phase times and the issue's goals with ✓ / ✗.

    .venv/bin/python benchmarks/fashion.py [--n-train 60000] [--n 10000] [--seeds 1] [--budget 1.0]
        [--ot-tol 2.5e-3] [--baselines "latent DDPM" VAE] [--json out.json] [--report DIR]

Quick check:

    .venv/bin/python benchmarks/fashion.py --n-train 2000 --n 500 --budget 0.05

The classifier is cached (by content) under $BRENIER_CACHE or ~/.cache/brenier: training it on the
10,000 test images takes ≈ 6 min on one thread, once. Pixel DDPM (a U-Net on 28 × 28) is the
slowest baseline by far; `--baselines "AE + Gaussian" "latent DDPM" VAE` leaves it out, and
`--n-reference` subsamples the test split, for checks of the script itself.

--budget scales every training budget: the autoencoder's epochs (300·budget, at least 5; AEOT's
default 300 at budget 1; --epochs overrides) and the baselines' (evaluate.baseline_generators).
With --report DIR the model and its evaluation are saved so that `brenier report DIR` shows the
sample grids of every method side by side (DIR/seed-<s> with several seeds).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from brenier import AEOT
from brenier.datasets import fashion_mnist
from brenier.evaluation.classifier import load_or_train_classifier
from brenier.evaluation.evaluate import (
    BASELINES,
    RECONSTRUCTIONS,
    baseline_names,
    evaluate_model,
    write_evaluation,
)

FULL_TRAIN, FULL_N = 60_000, 10_000
AE_EPOCHS = 300  # AEOT's default

FIELDS = (
    ("frechet", "Fréchet", 3),
    ("mixture_rate_50", "mix p<0.5", 3),
    ("mixture_rate_90", "mix p<0.9", 3),
    ("class_kl", "class KL", 4),
    ("min_class", "min class", 3),
    ("precision", "precision", 3),
    ("recall", "recall", 3),
    ("density", "density", 3),
    ("coverage", "coverage", 3),
    ("memorisation", "near-copies", 3),
    ("seconds", "wall s", 0),
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST idx files")
    p.add_argument("--n-train", type=int, default=FULL_TRAIN,
                   help="training images used (a fixed random subset; default all 60,000)")
    p.add_argument("--n-reference", type=int, default=None,
                   help="test images used as the reference (default all 10,000; fewer only for quick checks)")
    p.add_argument("--n", type=int, default=FULL_N, help="samples per method")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="threads for torch, BLAS and faiss")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget", type=float, default=1.0,
                   help="scale of the training budgets (autoencoder epochs and baselines)")
    p.add_argument("--epochs", type=int, default=None, help="autoencoder epochs (default 300·budget)")
    p.add_argument("--latent-dim", default="auto", help="AEOT latent_dim: an integer or 'auto'")
    p.add_argument("--latent-noise", type=float, default=0.0, help="AEOT latent_noise")
    p.add_argument("--ot-tol", type=float, default=None,
                   help="χ² tolerance of the OT solve (AEOT tol; default AEOT's)")
    p.add_argument("--ot-max-iter", type=int, default=None, help="AEOT max_iter (default AEOT's)")
    p.add_argument("--max-targets", type=int, default=None,
                   help="AEOT max_targets (default: all codes, as the goals require)")
    p.add_argument("--baselines", nargs="*", default=list(BASELINES), metavar="NAME",
                   help=f"baselines to run (default all: {', '.join(BASELINES)}); none: --baselines")
    p.add_argument("--cache-dir", default=None, help="classifier cache (default $BRENIER_CACHE or ~/.cache)")
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--report", default=None, metavar="DIR",
                   help="save the model and its evaluation here for `brenier report DIR`")
    return p.parse_args()


def subset(data, n: int | None, what: str):
    """A fixed random subset (seed 0, sorted) of n images, or the data itself."""
    if n is None or n >= len(data.images):
        return data
    if n < 10:
        raise SystemExit(f"--{what}: need at least 10 images, got {n}")
    keep = np.sort(np.random.default_rng(0).choice(len(data.images), n, replace=False))
    return data._replace(images=data.images[keep], labels=data.labels[keep], name=f"{data.name}-{n}")


def peak_rss_gb() -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return {"self": own, "children": children, "peak": own + children}


def main() -> None:
    cfg = parse_args()
    torch.set_num_threads(cfg.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(cfg.threads)  # numpy / scikit-learn BLAS and faiss's OpenMP too
    except ImportError:
        pass
    names = baseline_names(cfg.baselines)
    epochs = cfg.epochs or max(5, round(AE_EPOCHS * cfg.budget))
    latent = cfg.latent_dim if cfg.latent_dim == "auto" else int(cfg.latent_dim)
    ot_kw = {k: v for k, v in (("tol", cfg.ot_tol), ("max_iter", cfg.ot_max_iter),
                               ("max_targets", cfg.max_targets)) if v is not None}

    start = time.perf_counter()
    train = subset(fashion_mnist("train", cfg.data_dir), cfg.n_train, "n-train")
    test = subset(fashion_mnist("test", cfg.data_dir), cfg.n_reference, "n-reference")
    t_data = time.perf_counter() - start
    print(f"data: {len(train.images)} training, {len(test.images)} reference images ({t_data:.1f} s)",
          flush=True)
    t = time.perf_counter()
    clf = load_or_train_classifier(test, cache_dir=cfg.cache_dir, seed=0)
    t_clf = time.perf_counter() - t
    print(f"classifier on the reference: {t_clf:.1f} s (held-out accuracy {clf.accuracy_:.3f})", flush=True)

    runs: dict[str, list[dict]] = {}
    phases: list[dict] = []
    for seed in range(cfg.first_seed, cfg.first_seed + cfg.seeds):
        log = lambda m, s=seed: print(f"  seed {s}: {m}", flush=True)  # noqa: E731
        t = time.perf_counter()
        model = AEOT(latent, seed=seed, epochs=epochs, latent_noise=cfg.latent_noise, **ot_kw).fit(train)
        info = model.fit_info_
        log(f"AE-OT fitted in {time.perf_counter() - t:.0f} s: autoencoder "
            f"{info['autoencoder_seconds']:.0f} s (d = {info['latent_dim']}, MSE "
            f"{info['reconstruction_mse']:.4f}), OT {info['ot_seconds']:.0f} s on {info['n_targets']} codes, "
            f"χ² {info['ot_chi2']:.2e} after {info['ot_steps']} steps (converged: {info['ot_converged']})")
        timings: dict = {}
        results, samples = evaluate_model(model, cfg.n, seed=seed, baselines=names, budget=cfg.budget,
                                          reference=test, classifier=clf, timings=timings, log=log)
        gen = timings["generation"]
        phase = {
            "autoencoder": info["autoencoder_seconds"],
            "OT": info["ot_seconds"],
            f"sampling (brenier, {cfg.n})": gen["brenier"],
            **{f"{name} (fit + sample)": gen[name] for name in names},
            "evaluation (all rows)": timings["real_side"] + sum(timings["evaluation"].values()),
        }
        phases.append({"seed": seed, "phases": phase, "fit_info": info,
                       "ot_tol": info.get("ot_tol", model.tol),
                       "rss_gb": peak_rss_gb(),
                       "end_to_end": info["autoencoder_seconds"] + info["ot_seconds"] + gen["brenier"]})
        for name, r in results.items():
            runs.setdefault(name, []).append(r | {"min_class": float(min(r["class_histogram"]))})
        if cfg.report:
            out = Path(cfg.report) if cfg.seeds == 1 else Path(cfg.report) / f"seed-{seed}"
            model.save(out)
            write_evaluation(out, results, samples, n=cfg.n, seed=seed, reference=test.name)
            log(f"saved to {out}; view with: brenier report {out}")
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s)", flush=True)
    report(runs, phases, cfg, names, t_data, t_clf, clf.accuracy_, len(train.images), len(test.images),
           epochs, time.perf_counter() - start)


def _stats(values) -> tuple[float, float]:
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std())


def report(runs, phases, cfg, names, t_data, t_clf, clf_acc, n_train, n_ref, epochs, seconds) -> None:
    """Print the metric table, the phase times and the goals; write the JSON."""
    print(f"\n| method | {' | '.join(label for _, label, _ in FIELDS)} |")
    print("|---" * (len(FIELDS) + 1) + "|")
    summary = {}
    for name, rs in runs.items():
        summary[name] = {key: _stats([r[key] for r in rs]) for key, _, _ in FIELDS}
        cells = [f"{m:.{d}f} ± {s:.{d}f}" for (key, _, d), (m, s) in
                 zip(FIELDS, (summary[name][k] for k, _, _ in FIELDS), strict=True)]
        print(f"| {name} | {' | '.join(cells)} |")

    print("\n| phase | seconds (mean ± s.d.) |\n|---|---|")
    print(f"| data loading | {t_data:.1f} |\n| classifier on the reference (train or cache) | {t_clf:.1f} |")
    timing = {}
    for key in phases[0]["phases"]:
        timing[key] = _stats([p["phases"][key] for p in phases])
        print(f"| {key} | {timing[key][0]:.1f} ± {timing[key][1]:.1f} |")

    full = n_train >= FULL_TRAIN and cfg.n >= FULL_N and cfg.max_targets is None
    size = "" if full else f" [reduced run: {n_train} images, {cfg.n} samples]"
    e2e = max(p["end_to_end"] for p in phases)
    ot = max(p["fit_info"]["ot_seconds"] for p in phases)
    chi2 = [p["fit_info"]["ot_chi2"] for p in phases]
    info = phases[-1]["fit_info"]
    rss = max(p["rss_gb"]["peak"] for p in phases)
    b, rec = summary["brenier"], summary[RECONSTRUCTIONS]
    goals = []

    def goal(text, value, ok):
        goals.append({"goal": text, "value": value, "met": ok})

    goal(f"AE-OT end to end (autoencoder + OT on all {info['n_targets']} codes + {cfg.n} samples) ≤ 30 min"
         + size, f"{e2e / 60:.1f} min", e2e <= 1800)
    steps = ", ".join(str(p["fit_info"]["ot_steps"]) for p in phases)
    converged = all(p["fit_info"]["ot_converged"] for p in phases)
    goal("OT alone ≤ 10 min" + size,
         f"{ot / 60:.1f} min; χ² (last step, fresh samples) {', '.join(f'{c:.2e}' for c in chi2)}, "
         f"tol {phases[-1]['ot_tol']:g}, {steps} steps, converged: {converged}", ot <= 600)
    mix_b, mix_r = b["mixture_rate_50"][0], rec["mixture_rate_50"][0]
    goal("mixture p<0.5: brenier ≤ 1.25 × reconstructions + 0.01",
         f"{mix_b:.4f} vs {1.25 * mix_r + 0.01:.4f}", mix_b <= 1.25 * mix_r + 0.01)
    if "latent DDPM" in summary:
        mix_d = summary["latent DDPM"]["mixture_rate_50"][0]
        goal("mixture p<0.5: brenier − reconstructions ≤ ½ (latent DDPM − reconstructions)",
             f"{mix_b - mix_r:.4f} vs {(mix_d - mix_r) / 2:.4f}", mix_b - mix_r <= (mix_d - mix_r) / 2)
    else:
        goal("mixture p<0.5: brenier − reconstructions ≤ ½ (latent DDPM − reconstructions)",
             "latent DDPM not run", None)
    if names:
        best = min(names, key=lambda m: summary[m]["frechet"][0])
        goal("Fréchet distance: brenier < every baseline",
             f"{b['frechet'][0]:.3f} vs {summary[best]['frechet'][0]:.3f} ({best})",
             all(b["frechet"][0] < summary[m]["frechet"][0] for m in names))
    else:
        goal("Fréchet distance: brenier < every baseline", "no baseline run", None)
    kls = [r["class_kl"] for r in runs["brenier"]]
    goal("class KL ≤ 0.02 (every seed)", ", ".join(f"{v:.4f}" for v in kls), all(v <= 0.02 for v in kls))
    goal("smallest class share ≥ 3 %", f"{100 * b['min_class'][0]:.2f} %", b["min_class"][0] >= 0.03)
    goal("near-copies (memorisation) ≤ 5 %", f"{100 * b['memorisation'][0]:.2f} %",
         b["memorisation"][0] <= 0.05)
    goal("peak RSS ≤ 6 GB (this process + children)", f"{rss:.2f} GB", rss <= 6.0)

    print("\n| goal | value | met |\n|---|---|---|")
    for g in goals:
        mark = "–" if g["met"] is None else ("✓" if g["met"] else "✗")
        print(f"| {g['goal']} | {g['value']} | {mark} |")
    print(
        f"\nFashion-MNIST: {n_train} training images, reference = {n_ref} test images (classifier "
        f"accuracy {clf_acc:.3f} on its held-out fifth), {cfg.n} samples per method, {len(phases)} seed(s) "
        f"from {cfg.first_seed}, latent d = {info['latent_dim']}, autoencoder {epochs} epochs max, baseline "
        f"budget ×{cfg.budget}; CPU, {cfg.threads} thread(s). Total {seconds:.0f} s."
    )
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump({"config": vars(cfg), "runs": runs, "summary": summary, "phases": phases,
                       "timing": timing, "classifier_seconds": t_clf, "goals": goals},
                      f, indent=1, default=float)


if __name__ == "__main__":
    main()
