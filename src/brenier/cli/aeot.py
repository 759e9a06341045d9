"""`brenier fit | sample | evaluate | report`: the AE-OT image generator from the command line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .. import io
from ..validation import BrenierError
from .common import console, progress_bar
from .generate import parse_threshold


def _auto_or(value: str, cast: type, option: str, what: str) -> int | float | str:
    """'auto' or `cast(value)`; anything else is a one-line error naming the option."""
    if value == "auto":
        return "auto"
    try:
        return cast(value)
    except ValueError:
        raise BrenierError(f"{option}: expected 'auto' or {what}, got {value!r}") from None


def _latent(value: str) -> int | str:
    return _auto_or(value, int, "--latent-dim", "a positive integer")


def _tol(value: str) -> float | str:
    return _auto_or(value, float, "--tol", "a positive number")


def fit(
    data: Annotated[str, typer.Argument(
        help="digits | shapes | fashion-mnist | a folder of PNG/JPEG or IDX files | .npy/.npz images")],
    out: Annotated[Path, typer.Option("--out", help="model directory to write")],
    latent_dim: Annotated[
        str, typer.Option("--latent-dim", help="'auto' (intrinsic dimension) or d")
    ] = "auto",
    epochs: Annotated[int, typer.Option(help="autoencoder epochs (early stopping)")] = 300,
    latent_noise: Annotated[
        float,
        typer.Option("--latent-noise", help="decoder trained on z + σ·sd(z)·ε: smoother, fewer near-copies"),
    ] = 0.0,
    max_targets: Annotated[
        int | None, typer.Option("--max-targets", help="at most this many OT targets")
    ] = None,
    tol: Annotated[str, typer.Option(
        help="OT stopping rule: χ² mass error, or auto (2.5e-3·max(1, N/1000), at most 0.05)")] = "auto",
    threshold: Annotated[
        str, typer.Option(help="singular threshold: auto, topology (β₀ branches), spectral (graph "
                                "branches) or θ* in radians")
    ] = "auto",
    checkpoint: Annotated[Path | None, typer.Option(help="directory for resumable training")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
) -> None:
    """Train the autoencoder, solve the latent OT problem, save MODEL_DIR."""
    from ..datasets.images import as_images
    from ..generators.aeot import AEOT

    model = AEOT(
        _latent(latent_dim),
        seed=seed,
        epochs=epochs,
        latent_noise=latent_noise,
        max_targets=max_targets,
        tol=_tol(tol),
        threshold=parse_threshold(threshold),
        device=device,
        progress=True,
        checkpoint=checkpoint,
    )
    start = time.perf_counter()
    images = as_images(data, "DATA")  # bad data fails here, before any progress bar is drawn
    with progress_bar("latent OT", None) as advance:
        model.fit(images, ot_callback=lambda r: advance(f"step {r['step']} χ² {r['chi2']:.2e}"))
    model.save(out)
    info = model.fit_info_
    console.print(
        f"fitted {info['n_images']} images → latent d={info['latent_dim']} "
        f"(reconstruction MSE {info['reconstruction_mse']:.4g}); OT {info['ot_steps']} steps, "
        f"χ² {info['ot_chi2']:.2e}; {time.perf_counter() - start:.1f} s; wrote {out}/"
    )


def sample(
    model_dir: Annotated[Path, typer.Argument(help="a model directory written by `brenier fit`")],
    n: Annotated[int, typer.Option("-n", "--n", help="number of images")] = 64,
    out: Annotated[Path, typer.Option("--out", help=".png (a grid) or .npy (the images)")] = Path(
        "samples.png"
    ),
    seed: Annotated[int | None, typer.Option(help="seed of the source samples")] = None,
    extension: Annotated[str, typer.Option(help="pl (singular-aware) | naive | none (plain map)")] = "pl",
) -> None:
    """Generate n new images."""
    from ..generators.aeot import AEOT
    from ..report.page import save_grid

    suffix = out.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise BrenierError(f"--out: expected a .png or .npy file name, got {out}")
    model = AEOT.load(model_dir)
    x = model.sample(n, seed=seed, extension=extension)
    if suffix == ".npy":
        io.save_npy(out, x)
    else:
        lo, hi = model.value_range_
        unit = (x - lo) / (hi - lo)
        save_grid(out, unit.reshape(len(x), *model.image_shape_))
    console.print(f"wrote {out} ({n} images, extension={extension})")


def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="a model directory written by `brenier fit`")],
    n: Annotated[int, typer.Option("-n", "--n", help="samples per method")] = 2000,
    baselines: Annotated[
        bool,
        typer.Option("--baselines/--no-baselines", help="also train AE+Gaussian, latent/pixel DDPM, VAE"),
    ] = False,
    budget: Annotated[float, typer.Option(help="scale of the baselines' training budget")] = 1.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    reference: Annotated[str | None, typer.Option(
        help="held-out labelled images to score against (classifier trained on them): "
             "fashion-mnist:test, IDX-FOLDER:test, or any image data `fit` reads")] = None,
) -> None:
    """Score the model (and the baselines) against the training data, or against a held-out
    `--reference` set (near-copies still count against the training images); writes evaluation.json."""
    from ..evaluation.evaluate import evaluate_model, write_evaluation
    from ..generators.aeot import AEOT
    from ..report.page import METRIC_COLUMNS

    model = AEOT.load(model_dir)
    ref = None if reference is None else _reference(reference)
    with console.status("evaluating") as status:
        results, samples = evaluate_model(
            model,
            n,
            seed=seed,
            baselines=baselines,
            budget=budget,
            reference=ref,
            log=lambda m: status.update(f"evaluating — done: {m}"),
        )
    write_evaluation(model_dir, results, samples, n=n, seed=seed,
                     reference=None if ref is None else ref.name)
    table = Table(title=f"{model.data_name_}: {n} samples per method")
    table.add_column("method")
    for _, label, _ in METRIC_COLUMNS:
        table.add_column(label, justify="right")
    for name, r in results.items():
        table.add_row(name, *[_fmt(r.get(key), digits) for key, _, digits in METRIC_COLUMNS])
    console.print(table)
    console.print(f"wrote {model_dir / 'evaluation.json'}")


def _reference(value: str):
    """The --reference images: 'NAME:SPLIT' (fashion-mnist or an IDX folder; split train | test) or
    anything `as_images` reads."""
    from ..datasets import as_images, fashion_mnist, load_idx_images
    from ..datasets.idx import is_idx_folder

    base, _, split = value.rpartition(":")
    if split in ("train", "test") and base:
        if base == "fashion-mnist":
            return fashion_mnist(split)
        if Path(base).is_dir() and is_idx_folder(Path(base)):
            return load_idx_images(base, split, Path(base).name)
        raise BrenierError(f"--reference: {base!r} is neither fashion-mnist nor a folder of IDX files")
    return as_images(value, "--reference")


def _fmt(v, digits: int) -> str:
    if isinstance(v, dict):
        v = v.get("near", v.get("rate"))
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "–"


def report(
    model_dir: Annotated[Path, typer.Argument(help="a model directory written by `brenier fit`")],
    out: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default MODEL_DIR/report.html)")
    ] = None,
    analyze: Annotated[
        bool,
        typer.Option("--analyze/--no-analyze", help="add the topology of the latent codes (brenier analyze)"),
    ] = True,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """One HTML page: samples, latent map with singular pairs, metrics vs baselines, training curves."""
    from ..generators.aeot import AEOT
    from ..report.analysis import write_analysis
    from ..report.page import build_report

    model = AEOT.load(model_dir)
    if analyze and not (model_dir / "analysis" / "analysis.json").exists():
        write_analysis(
            model.codes_,
            model_dir / "analysis",
            max_dim=1,
            max_points=1000,
            seed=seed,
            source=f"latent codes of {model.data_name_}",
            status=console.status,
        )
    path = build_report(model_dir, out, seed=seed, model=model)
    console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
    app.command("sample")(sample)
    app.command("evaluate")(evaluate)
    app.command("report")(report)
