"""Side-by-side evaluation of an AE-OT model and the image baselines on the same training data.

Every generator draws `n` images; `evaluate_samples` (`brenier.evaluation.image_metrics`) scores
them (Fréchet distance in the classifier's features, class-histogram KL, mixture rate,
precision / recall / density / coverage, memorisation). By default the real set is the training
images and the classifier is trained on them. With `reference=` (a labelled held-out set, e.g. the
test split) the classifier is trained on the reference and every metric but memorisation compares
with the reference images; memorisation still counts near-copies of the training images. Two rows
are then added: "autoencoder reconstructions" (the model's autoencoder applied to reference images
it never saw — the ceiling of any latent generator on this autoencoder) and "data (training
images)" scored against the reference (the floor).
Latent baselines share the AE-OT model's autoencoder, so differences come from the latent
generator alone: OT with the singular-aware extension vs a Gaussian fit vs latent diffusion.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ..datasets.images import ImageData
from ..generators.base import Generator
from ..validation import BrenierError, check_positive_int
from .classifier import load_or_train_classifier
from .image_metrics import SampleScorer, _check_classifier, check_reference

BASELINES = ("AE + Gaussian", "latent DDPM", "pixel DDPM", "VAE")
OT_VARIANTS = {"brenier": "pl", "brenier (naive)": "naive", "brenier (plain map)": "none"}
LATENT_BASELINES = ("AE + Gaussian", "latent DDPM")  # fitted on the AE-OT model's autoencoder
RECONSTRUCTIONS = "autoencoder reconstructions"
DATA_ROW = "data (training images)"


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


def reference_data(model: Any, reference: Any) -> ImageData:
    """A labelled held-out set (ImageData, e.g. the test split) checked against the model's image
    shape and scaled to [0, 1] like the model's training images (from its own `value_range`)."""
    shape = tuple(model.image_shape_)
    images, labels = check_reference(reference, shape)
    lo, hi = (float(v) for v in (getattr(reference, "value_range", None) or (0.0, 1.0)))
    if not hi > lo:
        raise BrenierError(f"reference: value_range must be increasing, got {(lo, hi)}")
    unit = (images - np.float32(lo)) / np.float32(hi - lo)
    if unit.min() < -1e-4 or unit.max() > 1 + 1e-4:
        raise BrenierError(f"reference: pixel values [{images.min():g}, {images.max():g}] lie outside "
                           f"its value_range {(lo, hi)}")
    name = str(getattr(reference, "name", "reference"))
    return ImageData(np.clip(unit, 0.0, 1.0).astype(np.float32), labels, name, (0.0, 1.0), None)


def baseline_names(baselines: bool | str | Iterable[str] | None) -> tuple[str, ...]:
    """The baselines asked for: True → all of BASELINES, False / None → none, else those names."""
    if baselines is None or baselines is False:
        return ()
    if baselines is True:
        return BASELINES
    names = (baselines,) if isinstance(baselines, str) else tuple(baselines)
    unknown = [b for b in names if b not in BASELINES]
    if unknown:
        raise BrenierError(f"baselines: unknown method(s) {unknown}; choose from {list(BASELINES)}")
    return tuple(dict.fromkeys(names))


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


def _fit_seconds(model: Any) -> float:
    return float(model.fit_info_.get("autoencoder_seconds", 0) + model.fit_info_.get("ot_seconds", 0))


def _generate(model, n, seed, baselines, budget, log):
    """({name: samples}, {name: own wall seconds (fit + sample, without the shared AE-OT fit)},
    {name: shared seconds})."""
    samples, own, shared = {}, {}, {}
    fit_ot = _fit_seconds(model)
    for name, ext in OT_VARIANTS.items():
        t = time.perf_counter()
        z = model.sample_codes(n, seed=seed + 1, extension=ext)
        samples[name] = np.clip(np.asarray(model.autoencoder_.decode(z.astype(np.float32))), 0, 1)
        own[name], shared[name] = time.perf_counter() - t, fit_ot
        log(f"{name}: {own[name] + shared[name]:.1f} s")
    names = baseline_names(baselines)
    if names:
        x = model.unit_images_
        gens = baseline_generators(model, seed, budget)
        for name in names:
            gen = gens[name]
            t = time.perf_counter()
            gen.fit(x)
            samples[name] = np.clip(np.asarray(gen.sample(n, seed=seed + 1)), 0, 1)
            own[name], shared[name] = time.perf_counter() - t, (fit_ot if name in LATENT_BASELINES else 0.0)
            log(f"{name}: {own[name] + shared[name]:.1f} s")
    return samples, own, shared


def generate_all(
    model: Any,
    n: int,
    *,
    seed: int = 0,
    baselines: bool | Iterable[str] = False,
    budget: float = 1.0,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Images (n, C, H, W) in [0, 1] from every method, and each method's wall time (fit + sample;
    the AE-OT fit is counted for the OT variants and the latent baselines that share its
    autoencoder). `baselines`: True (all of BASELINES), False, or a list of their names."""
    n = check_positive_int(n, "n")
    samples, own, shared = _generate(model, n, seed, baselines, budget, log or (lambda _msg: None))
    return samples, {name: shared[name] + own[name] for name in samples}


def evaluate_model(
    model: Any,
    n: int = 2000,
    *,
    seed: int = 0,
    baselines: bool | Iterable[str] = False,
    budget: float = 1.0,
    cache_dir: Any = None,
    log: Callable[[str], None] | None = None,
    reference: Any = None,
    classifier: Any = None,
    timings: dict | None = None,
) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """({method: metrics (+ "seconds")}, {method: samples}) for the model and optionally the
    baselines (True, or a list of names from BASELINES).

    Without `reference`: every method is scored against the training images with the classifier
    trained on them; the training images' own scores are the row "data (training images)".
    With `reference` (a labelled ImageData of held-out images of the model's shape, e.g. the test
    split; scaled to [0, 1] by its value_range): the classifier is trained (cached) on the reference
    and Fréchet / class KL / PRDC compare with the reference images, memorisation with the training
    images; the rows "autoencoder reconstructions" (the model's autoencoder applied to min(n, all)
    reference images; "seconds" includes the autoencoder's training) and "data (training images)"
    (n training images, memorisation 1 by construction) are added.

    `classifier`: a fitted classifier to use instead of `load_or_train_classifier(...)`.
    `timings`: a dict to fill with wall seconds: "classifier" (load or train), "generation"
    {method: own fit + sample, without the shared AE-OT fit}, "real_side" (features, radii and τ of
    the real set, once), "evaluation" {method: scoring}.
    """
    n = check_positive_int(n, "n")
    log = log or (lambda _msg: None)
    if reference is None:
        data = training_data(model)
        real = data
    else:
        real = reference_data(model, reference)
        labels = None if model.labels_ is None else np.asarray(model.labels_, np.int64)
        data = ImageData(model.unit_images_.astype(np.float32), labels, model.data_name_, (0.0, 1.0), None)
    t = time.perf_counter()
    if classifier is None:
        clf = load_or_train_classifier(real, cache_dir=cache_dir, seed=0)
    else:
        clf = _check_classifier(classifier, real.images.shape[1:],
                                "the data" if reference is None else "the reference images")
    t_clf = time.perf_counter() - t
    samples, own, shared = _generate(model, n, seed, baselines, budget, log)
    if reference is not None:
        rng = np.random.default_rng([seed, 1])
        pick = np.sort(rng.choice(len(real.images), min(n, len(real.images)), replace=False))
        t = time.perf_counter()
        recon = model.autoencoder_.reconstruct(real.images[pick])
        samples[RECONSTRUCTIONS] = np.clip(np.asarray(recon, np.float32), 0, 1)
        own[RECONSTRUCTIONS] = time.perf_counter() - t
        shared[RECONSTRUCTIONS] = float(model.fit_info_.get("autoencoder_seconds", 0))
        log(f"{RECONSTRUCTIONS}: {own[RECONSTRUCTIONS]:.1f} s")
    rng = np.random.default_rng(seed)
    samples[DATA_ROW] = data.images[rng.choice(len(data.images), min(n, len(data.images)), replace=False)]
    own[DATA_ROW] = shared[DATA_ROW] = 0.0

    t = time.perf_counter()
    scorer = SampleScorer(real.images, clf, data.images, k=5, seed=seed)
    t_real = time.perf_counter() - t
    results, t_eval = {}, {}
    for name, x in samples.items():
        t = time.perf_counter()
        results[name] = scorer(x) | {"seconds": shared[name] + own[name]}
        t_eval[name] = time.perf_counter() - t
    log(f"scored {len(samples)} sample sets in {t_real + sum(t_eval.values()):.1f} s")
    if timings is not None:
        timings.update({"classifier": t_clf, "generation": own, "real_side": t_real, "evaluation": t_eval})
    return results, samples


SAMPLES_FORMAT = "brenier.AEOT.samples"


def write_evaluation(model_dir: Any, results: dict, samples: dict, *, n: int, seed: int,
                     keep: int = 64, reference: str | None = None) -> None:
    """Write `evaluation.json` and the first `keep` samples of each method
    (`evaluation_samples.safetensors`) into a model directory; the report reads both.
    evaluation.json holds "n", "seed", "results" {method: metrics}, "methods" (the methods in their
    order: the JSON keys are sorted) and, with `reference` given, "reference": the name of the
    held-out set the metrics were measured against (absent when the training images were the real
    set)."""
    model_dir = Path(model_dir)
    doc = {"n": n, "seed": seed, "results": results, "methods": list(results)}
    if reference is not None:
        doc["reference"] = str(reference)
    io.write_json(model_dir / "evaluation.json", doc)
    arrays = {k: np.ascontiguousarray(v[:keep], np.float32) for k, v in samples.items()}
    io.save_tensors(model_dir / "evaluation_samples.safetensors", arrays, SAMPLES_FORMAT, 1, {})
