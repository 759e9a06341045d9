"""Side-by-side evaluation of an AE-OT model and the image baselines on the same training data.

Every generator draws `n` images; `evaluate_samples` (`brenier.evaluation.image_metrics`) scores
them against the training images with the classifier trained on the same data (Fréchet distance in
its features, class-histogram KL, mixture rate, precision / recall / density / coverage,
memorisation).
Latent baselines share the AE-OT model's autoencoder, so differences come from the latent
generator alone: OT with the singular-aware extension vs a Gaussian fit vs latent diffusion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ..datasets.images import ImageData
from ..generators.base import Generator
from ..validation import BrenierError, check_positive_int
from .classifier import load_or_train_classifier
from .image_metrics import evaluate_samples

BASELINES = ("AE + Gaussian", "latent DDPM", "pixel DDPM", "VAE")
OT_VARIANTS = {"brenier": "pl", "brenier (naive)": "naive", "brenier (plain map)": "none"}


def training_data(model: Any) -> ImageData:
    """The model's training images as an ImageData (labels needed by the classifier)."""
    if model.labels_ is None:
        raise BrenierError(
            "model: the training data had no labels; the evaluation classifier needs "
            "labelled images (e.g. class sub-folders)"
        )
    return ImageData(
        model.unit_images_.astype(np.float32),
        np.asarray(model.labels_, np.int64),
        model.data_name_,
        (0.0, 1.0),
        None,
    )


def baseline_generators(model: Any, seed: int, budget: float = 1.0) -> dict[str, Generator]:
    """The baselines, configured for the model's data with a CPU budget scaled by `budget`."""
    from ..generators.image_baselines import VAE, AEGaussian, LatentDDPM, PixelDDPM

    d = model.codes_.shape[1]
    steps = max(200, int(8000 * budget))
    return {
        "AE + Gaussian": AEGaussian(autoencoder=model.autoencoder_, latent_dim=d, seed=seed),
        "latent DDPM": LatentDDPM(autoencoder=model.autoencoder_, latent_dim=d, steps=steps, seed=seed),
        "pixel DDPM": PixelDDPM(steps=steps, seed=seed),
        "VAE": VAE(latent_dim=d, epochs=max(20, int(300 * budget)), seed=seed),
    }


def generate_all(
    model: Any,
    n: int,
    *,
    seed: int = 0,
    baselines: bool = False,
    budget: float = 1.0,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Images (n, C, H, W) in [0, 1] from every method, and each method's wall time (fit + sample)."""
    n = check_positive_int(n, "n")
    log = log or (lambda _msg: None)
    samples, seconds = {}, {}
    fit_ot = float(model.fit_info_.get("autoencoder_seconds", 0) + model.fit_info_.get("ot_seconds", 0))
    for name, ext in OT_VARIANTS.items():
        t = time.perf_counter()
        z = model.sample_codes(n, seed=seed + 1, extension=ext)
        samples[name] = np.clip(np.asarray(model.autoencoder_.decode(z.astype(np.float32))), 0, 1)
        seconds[name] = fit_ot + time.perf_counter() - t
        log(f"{name}: {seconds[name]:.1f} s")
    if baselines:
        x = model.unit_images_
        for name, gen in baseline_generators(model, seed, budget).items():
            t = time.perf_counter()
            gen.fit(x)
            samples[name] = np.clip(np.asarray(gen.sample(n, seed=seed + 1)), 0, 1)
            shared = fit_ot if name in ("AE + Gaussian", "latent DDPM") else 0.0
            seconds[name] = shared + time.perf_counter() - t
            log(f"{name}: {seconds[name]:.1f} s")
    return samples, seconds


def evaluate_model(
    model: Any,
    n: int = 2000,
    *,
    seed: int = 0,
    baselines: bool = False,
    budget: float = 1.0,
    cache_dir: Any = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """({method: metrics (+ "seconds")}, {method: samples}) for the model and optionally the
    baselines; the real data's own scores (held-out reference) are reported as "data"."""
    data = training_data(model)
    clf = load_or_train_classifier(data, cache_dir=cache_dir, seed=0)
    samples, seconds = generate_all(model, n, seed=seed, baselines=baselines, budget=budget, log=log)
    results = {}
    for name, x in samples.items():
        results[name] = evaluate_samples(x, data, classifier=clf, seed=seed) | {"seconds": seconds[name]}
    rng = np.random.default_rng(seed)
    real = data.images[rng.choice(len(data.images), min(n, len(data.images)), replace=False)]
    results["data (training images)"] = evaluate_samples(real, data, classifier=clf, seed=seed) | {
        "seconds": 0.0
    }
    samples["data (training images)"] = real
    return results, samples


SAMPLES_FORMAT = "brenier.AEOT.samples"


def write_evaluation(model_dir: Any, results: dict, samples: dict, *, n: int, seed: int,
                     keep: int = 64) -> None:
    """Write `evaluation.json` and the first `keep` samples of each method
    (`evaluation_samples.safetensors`) into a model directory; the report reads both."""
    model_dir = Path(model_dir)
    io.write_json(model_dir / "evaluation.json", {"n": n, "seed": seed, "results": results})
    arrays = {k: np.ascontiguousarray(v[:keep], np.float32) for k, v in samples.items()}
    io.save_tensors(model_dir / "evaluation_samples.safetensors", arrays, SAMPLES_FORMAT, 1, {})

