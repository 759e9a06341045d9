"""The built-in demonstration behind `make demo` / `brenier demo`.

Written to `out/`:
* `square_to_grid25.png`, `disc_to_crescent.png` (+ `.safetensors`): the cells W_i(h) of two
  semi-discrete OT problems (uniform square → grid-25 samples, uniform disc → crescent samples),
  coloured by branch, with the singular set in black;
* `gu_two_moons.png`, `gu_dumbbell.png`: Gu's picture — uniform disc → a non-convex region, cells
  coloured by branch, the singular set drawn in the disc, and samples of the singular-aware and
  of the naive extension (the latter fills the gaps: mode mixture);
* `grid25_comparison.png`: grid-25 samples of brenier (singular-aware, naive, plain map T),
  WGAN-GP and DDPM, with modes / %HQ / reverse KL (the baselines get small budgets: a picture,
  not a benchmark — `benchmarks/modes2d.py` is the benchmark);
* `digits/`: the image generator (AE-OT) on the 8×8 digits — `model/` (the saved model with its
  evaluation against latent DDPM, pixel DDPM, VAE and AE + Gaussian), `samples.png` and
  `report.html` (sample grids, Gu's across-the-singular-set experiment, latent map, metrics);
* `summary.json`: the solves, the singular sets and the metrics of every generator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import io
from ..datasets import crescent, grid25
from ..evaluation.evaluate import evaluate_model, write_evaluation
from ..evaluation.point_metrics import memorisation, mixture_hq, mode_metrics, sliced_wasserstein
from ..generators.aeot import AEOT
from ..measures import UniformBall, UniformCube
from ..ot import SemiDiscreteOT
from ..ot.singular import singular_set
from . import plots
from .analysis import write_analysis
from .page import build_report, save_grid

GU_SHAPES = ("two_moons", "dumbbell")


def _cell_picture(model: SemiDiscreteOT, path: Path, title: str, seed: int) -> dict:
    """Cells coloured by branch with the singular set (`plots.singular_figure`); returns its summary."""
    sing = singular_set(model, seed=seed)
    fig = plots.singular_figure(model, sing)
    fig.suptitle(title)
    plots.save_figure(fig, path, dpi=110)
    return {"n_adjacent_pairs": len(sing.pairs), "n_singular": int(sing.singular.sum()),
            "n_branches": int(sing.branches().max() + 1),
            "threshold_degrees": float(np.degrees(sing.threshold))}


def _solve(source, targets, seed, n_check: int):
    t0 = time.perf_counter()
    model = SemiDiscreteOT(source, seed=seed, tol=1e-3, max_iter=60).fit(targets)
    seconds = time.perf_counter() - t0
    check = model.mass_error(n_samples=n_check, seed=seed + 1)
    return model, {"n_targets": len(targets), "dim": targets.shape[1], "source": repr(model.source_),
                   "converged": model.converged_, "steps": model.n_iter_, "seconds": round(seconds, 2),
                   "mass_error_independent": check,
                   "wasserstein2": model.wasserstein(2, n_samples=n_check // 8, seed=seed + 2)}


def _grid25_metrics(samples: dict, mix, seconds: dict, seed: int) -> dict:
    """Mode metrics, sliced W2 to fresh data and memorisation of every generator's samples."""
    held = grid25(4 * len(samples["real data"]), seed + 7).points  # fresh data for sliced W2
    rows = {}
    for name, x in samples.items():
        m = mode_metrics(x, mix.centers, mix.sigma)
        mem = memorisation(x, mix.points)
        m["reverse_kl"] = m["reverse_kl"] if np.isfinite(m["reverse_kl"]) else None  # no HQ sample
        rows[name] = {**m, "sliced_w2": sliced_wasserstein(x, held, n_projections=100, seed=0),
                      "copies_percent": 100 * mem["copies"], "near_percent": 100 * mem["near"],
                      "seconds": round(seconds[name], 2)}
    return rows


def _digits_stage(out: Path, seed: int, quick: bool, say: Callable[[str], None]) -> dict:
    """AE-OT on the 8×8 digits: fit → sample → evaluate against the baselines → HTML report,
    as `brenier fit digits`, `sample`, `evaluate --baselines` and `report` do."""
    latent, epochs, n, budget = (2, 20, 300, 0.02) if quick else (10, 300, 2000, 0.25)
    say(f"digits: autoencoder (latent {latent}) + semi-discrete OT to the 1,797 codes")
    model = AEOT(latent, seed=seed, epochs=epochs).fit("digits")
    info = model.fit_info_
    say(f"  reconstruction MSE {info['reconstruction_mse']:.4f}; OT {info['ot_steps']} steps, "
        f"χ² {info['ot_chi2']:.1e} ({info['autoencoder_seconds'] + info['ot_seconds']:.0f} s)")
    model_dir = out / "model"
    model.save(model_dir)
    save_grid(out / "samples.png", model.autoencoder_.decode(model.sample_codes(64, seed=seed + 1)), 8)
    say(f"digits: evaluating brenier and the baselines (latent/pixel DDPM, VAE, AE + Gaussian; "
        f"budget ×{budget}) on {n} samples each")
    results, samples = evaluate_model(model, n, seed=seed, baselines=True, budget=budget,
                                      log=lambda m: say(f"  {m}"))
    write_evaluation(model_dir, results, samples, n=n, seed=seed)
    for name, r in results.items():
        say(f"  {name:<24} Fréchet {r['frechet']:7.2f}  mixture p<0.5 {r['mixture_rate_50']:.3f}  "
            f"p<0.9 {r['mixture_rate_90']:.3f}  class KL {r['class_kl']:.4f}  "
            f"memorised {r['memorisation']:.3f}")
    write_analysis(model.codes_, model_dir / "analysis", max_dim=1, max_points=1000, seed=seed,
                   source="latent codes of digits")
    report = build_report(model_dir, out / "report.html", seed=seed, model=model)
    say(f"digits: wrote {report}")
    return {"fit": info, "evaluation": results, "report": str(report)}


def run_demo(out: str | Path, seed: int = 0, *, quick: bool = False, images: bool = True,
             log: Callable[[str], None] | None = None) -> dict:
    """Solve the built-in problems and write pictures and `summary.json` to `out`.

    `quick=True` shrinks every problem (for tests: seconds instead of minutes); `images=False`
    skips the digits stage (AE-OT); `log` receives progress lines (default: printed with the
    elapsed time).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def say(msg: str) -> None:
        line = f"[{time.perf_counter() - t_start:6.1f} s] {msg}"
        if log is None:
            print(line, flush=True)
        else:
            log(line)

    n_cells = 300 if quick else 1000
    n_check = 1 << (16 if quick else 21)
    problems = {}
    say(f"uniform square → {n_cells} grid-25 samples")
    grid = grid25(n_cells, seed=seed).points / 10.0  # scaled into the square's range
    model, info = _solve(UniformCube(2), grid, seed, n_check)
    model.save(out / "square_to_grid25.safetensors")
    info["singular_set"] = _cell_picture(model, out / "square_to_grid25.png",
                                         "uniform square → grid-25 samples", seed)
    problems["square_to_grid25"] = info
    say(f"uniform disc → {n_cells} crescent samples")
    model, info = _solve(UniformBall(2), crescent(n_cells, seed=seed), seed, n_check)
    model.save(out / "disc_to_crescent.safetensors")
    info["singular_set"] = _cell_picture(model, out / "disc_to_crescent.png",
                                         "uniform disc → crescent samples", seed)
    problems["disc_to_crescent"] = info

    gu = {}
    for shape in GU_SHAPES[:1] if quick else GU_SHAPES:
        start = time.perf_counter()
        res = plots.gu_figure(out / f"gu_{shape}.png", shape=shape, seed=seed,
                              n_targets=400 if quick else 1500, n_generated=1000 if quick else 4000,
                              resolution=150 if quick else 400)
        sing = res["singular"]
        gu[shape] = {"n_targets": len(res["model"].targets_), "n_branches": res["n_branches"],
                     "n_adjacent_pairs": len(sing.pairs), "n_singular": res["n_singular"],
                     "threshold_degrees": float(np.degrees(sing.threshold)), "kappa": sing.kappa,
                     "outside_percent_singular_aware": 100 * res["outside_pl"],
                     "outside_percent_naive": 100 * res["outside_naive"],
                     "seconds": round(time.perf_counter() - start, 2)}
        say(f"Gu's figure, disc → {shape}: {res['n_branches']} branch(es), {res['n_singular']} "
            f"singular facets; samples outside the region: singular-aware "
            f"{100 * res['outside_pl']:.1f} %, naive {100 * res['outside_naive']:.1f} %")

    budget = ({"n": 500, "n_train": 5000, "n_targets": 300, "gan_steps": 20, "ddpm_steps": 50} if quick
              else {"n": 2500, "n_train": 100_000, "n_targets": 2000, "gan_steps": 600,
                    "ddpm_steps": 5000})
    say(f"grid-25: training brenier, WGAN-GP ({budget['gan_steps']} steps) and DDPM "
        f"({budget['ddpm_steps']} steps) on {budget['n_train']:,} points")
    samples, mix, seconds = plots.grid25_samples(seed=seed, log=say, **budget)
    metrics = _grid25_metrics(samples, mix, seconds, seed)
    plots.grid25_comparison(
        samples, mix.centers, mix.sigma, out / "grid25_comparison.png",
        title=f"grid-25: {budget['n']:,} samples per generator, trained on {budget['n_train']:,} points; "
              f"HQ = within 3σ of a centre (real mixture: {mixture_hq(2):.1f} %)\n"
              "baselines get small CPU budgets: a picture, not a benchmark (see benchmarks/modes2d.py)")
    for name, m in metrics.items():
        kl = "inf" if m["reverse_kl"] is None else f"{m['reverse_kl']:.3f}"
        say(f"  {name:<45} {m['modes']:>2} modes  {m['hq']:5.1f} % HQ  KL {kl:>5}  "
            f"SW2 {m['sliced_w2']:.3f}  copies {m['copies_percent']:.0f} %")

    digits_summary = _digits_stage(out / "digits", seed, quick, say) if images else None

    files = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) + ["summary.json"]
    summary = {"problems": problems, "gu_figure": gu,
               "grid25": {"budget": budget, "expected_real_hq": mixture_hq(2), "generators": metrics},
               "digits": digits_summary,
               "quick": quick, "seconds": round(time.perf_counter() - t_start, 1),
               "files": sorted(set(files))}
    io.write_json(out / "summary.json", summary)
    say(f"done: wrote {len(summary['files'])} files to {out}/")
    return summary
