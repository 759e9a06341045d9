"""Metrics for generated images, computed with brenier's own classifier (no downloaded weights).

With φ the classifier's feature map and p(k | x) its class probabilities:

* `frechet_distance`: |μ_a − μ_b|² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}) between Gaussians fitted to
  two feature sets (FID, with φ in place of Inception);
* `class_histogram`, `class_kl`: share of samples per predicted class and KL(data ‖ generated);
* `mixture_rate`: share of samples whose top-1 probability is below a threshold — blends of two
  classes (Gu's mode mixture) are ambiguous to the classifier;
* `prdc`: precision / recall / density / coverage (Naeem et al. 2020) with k-NN balls in φ-space;
* `image_memorisation`: share of samples nearer, in pixels, to a training image than the training
  set's own small nearest-neighbour spacings;
* `evaluate_samples`: all of them at once, as a JSON-ready dict.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..analysis.neighbours import nearest_distances
from ..validation import (
    BrenierError,
    check_images,
    check_points,
    check_positive_float,
    check_positive_int,
    to_numpy,
)
from .classifier import Classifier, load_or_train_classifier
from .point_metrics import memorisation

# =============================================================================================
# Fréchet distance
# =============================================================================================


def frechet_distance(feat_a: Any, feat_b: Any, *, eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance² between N(μ_a, Σ_a) and N(μ_b, Σ_b) fitted to two feature sets.

    d² = |μ_a − μ_b|² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}). When the matrix square root is not
    finite (singular covariances, e.g. fewer samples than dimensions or dead units), eps·I is added
    to both covariances; the tiny imaginary part left by round-off is dropped. Needs ≥ 2 rows each.
    """
    from scipy.linalg import sqrtm

    a = check_points(feat_a, "feat_a", min_rows=2)
    b = check_points(feat_b, "feat_b", dim=a.shape[1], min_rows=2)
    e = check_positive_float(eps, "eps")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns about singular matrices; we check the result
        root = sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            offset = e * np.eye(len(cov_a))
            root = sqrtm((cov_a + offset) @ (cov_b + offset))
    if not np.isfinite(root).all():
        raise BrenierError("feat_a, feat_b: covariance square root is not finite; features are degenerate")
    root = np.real(root)
    d2 = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))
    return max(d2, 0.0)


# =============================================================================================
# Class statistics
# =============================================================================================


def _check_probs(probs: Any, name: str) -> np.ndarray:
    p = check_points(probs, name)
    if (p < -1e-9).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise BrenierError(f"{name}: expected class probabilities (n, K), rows ≥ 0 summing to 1")
    return np.clip(p, 0.0, None)


def class_histogram(probs: Any) -> np.ndarray:
    """Share of samples whose most probable class is k: h_k = #{x : argmax p(· | x) = k} / n, shape (K,)."""
    p = _check_probs(probs, "probs")
    return np.bincount(np.argmax(p, axis=1), minlength=p.shape[1]) / len(p)


def _as_histogram(h: Any, name: str) -> np.ndarray:
    arr = to_numpy(h, name)
    if arr.ndim == 2:
        return class_histogram(arr)
    if arr.ndim != 1 or arr.size == 0:
        raise BrenierError(f"{name}: expected a class histogram (K,) or probabilities (n, K), "
                           f"got shape {arr.shape}")
    arr = check_points(arr[None, :], name)[0]
    if (arr < 0).any() or not arr.sum() > 0:
        raise BrenierError(f"{name}: a histogram needs non-negative entries with a positive sum")
    return arr / arr.sum()


def class_kl(p_gen: Any, p_data: Any, *, smoothing: float = 1e-3) -> float:
    """KL(data ‖ generated) = Σ_k d_k log(d_k / g̃_k) between class histograms (K,) (or (n, K)
    probability matrices, turned into histograms by `class_histogram`).

    The direction punishes classes of the data that the generator misses (mode collapse). To keep
    it finite, g̃ = (g + s) / (1 + K s) with s = `smoothing`: a missing class of share d_k costs
    about d_k log(d_k / s) (≈ 0.46 nats for d_k = 0.1 and s = 10⁻³).
    """
    g = _as_histogram(p_gen, "p_gen")
    d = _as_histogram(p_data, "p_data")
    if g.shape != d.shape:
        raise BrenierError(f"p_gen, p_data: different numbers of classes ({g.size} vs {d.size})")
    s = check_positive_float(smoothing, "smoothing")
    g = (g + s) / (1.0 + g.size * s)
    nz = d > 0
    return max(float(np.sum(d[nz] * np.log(d[nz] / g[nz]))), 0.0)


def mixture_rate(probs: Any, threshold: float = 0.5) -> float:
    """Share of samples with top-1 probability max_k p(k | x) < threshold (ambiguous: mode mixture)."""
    p = _check_probs(probs, "probs")
    t = check_positive_float(threshold, "threshold")
    if t > 1:
        raise BrenierError(f"threshold: expected a probability in (0, 1], got {threshold!r}")
    return float(np.mean(p.max(axis=1) < t))


# =============================================================================================
# Precision, recall, density, coverage
# =============================================================================================


def prdc(real_feats: Any, fake_feats: Any, k: int = 5, *, chunk: int = 1024) -> dict:
    """Precision, recall, density and coverage of Naeem et al. (2020) with k-NN balls.

    With real X_1..X_N, fake Y_1..Y_M, B(x, r) the closed ball and NND_k(x) the distance from x to
    its k-th nearest neighbour in its own set (itself excluded):

    * precision = (1/M) Σ_j 1[∃ i : Y_j ∈ B(X_i, NND_k(X_i))]  (fakes inside the real manifold);
    * recall    = (1/N) Σ_i 1[∃ j : X_i ∈ B(Y_j, NND_k(Y_j))]  (reals inside the fake manifold);
    * density   = (1/(k M)) Σ_j Σ_i 1[Y_j ∈ B(X_i, NND_k(X_i))]  (≈ 1 for matching distributions);
    * coverage  = (1/N) Σ_i 1[min_j |X_i − Y_j| ≤ NND_k(X_i)].
    """
    x = check_points(real_feats, "real_feats")
    y = check_points(fake_feats, "fake_feats", dim=x.shape[1])
    k = check_positive_int(k, "k")
    for name, arr in (("real_feats", x), ("fake_feats", y)):
        if len(arr) <= k:
            raise BrenierError(f"{name}: need more than k={k} points for k-NN radii, got {len(arr)}")
    step = check_positive_int(chunk, "chunk")
    r_real = nearest_distances(x, x, k=k, exclude_self=True)
    r_fake = nearest_distances(y, y, k=k, exclude_self=True)
    xx = np.sum(x**2, axis=1)
    inside_real = np.zeros(len(y), bool)
    count = np.zeros(len(y))
    real_covered = np.zeros(len(x), bool)  # X_i within some fake ball (recall)
    nearest_fake = np.full(len(x), np.inf)
    for a in range(0, len(y), step):
        yb = y[a:a + step]
        d = np.sqrt(np.maximum(np.sum(yb**2, axis=1)[:, None] - 2.0 * yb @ x.T + xx[None, :], 0.0))
        in_ball = d <= r_real[None, :]
        inside_real[a:a + step] = in_ball.any(axis=1)
        count[a:a + step] = in_ball.sum(axis=1)
        real_covered |= (d <= r_fake[a:a + step, None]).any(axis=0)
        nearest_fake = np.minimum(nearest_fake, d.min(axis=0))
    return {"precision": float(inside_real.mean()), "recall": float(real_covered.mean()),
            "density": float(count.sum() / (k * len(y))),
            "coverage": float(np.mean(nearest_fake <= r_real))}


# =============================================================================================
# Memorisation
# =============================================================================================


def image_memorisation(samples: Any, train: Any, *, quantile: float = 0.01, seed: int | None = 0) -> float:
    """Share of samples whose pixel-L2 distance to the nearest training image is below τ, the
    `quantile`-quantile of the training images' own nearest-neighbour spacing.

    This is `brenier.metrics.memorisation(...)["near"]` on flattened images: fresh images from the
    data distribution score ≈ `quantile`; copies of training images score 1.
    """
    t = check_images(train, "train", min_rows=2)
    s = check_images(samples, "samples", shape=t.shape[1:])
    return memorisation(s.reshape(len(s), -1), t.reshape(len(t), -1), quantile=quantile, seed=seed)["near"]


# =============================================================================================
# Everything at once
# =============================================================================================


def evaluate_samples(samples: Any, data: Any, classifier: Classifier | None = None, k: int = 5,
                     seed: int = 0) -> dict:
    """All image metrics of generated `samples` (n, C, H, W) against `data` (an ImageData).

    `classifier` defaults to `load_or_train_classifier(data, seed=seed)` (needs data.labels).
    Returns plain floats: "frechet" (in classifier features), "class_kl" (KL(data ‖ samples) of the
    predicted-class histograms), "class_histogram" (list, the samples' histogram), "mixture_rate_50"
    and "mixture_rate_90" (top-1 probability < 0.5, < 0.9), "precision", "recall", "density",
    "coverage" (k-NN in features, all data images as the real set), "memorisation" (pixel space,
    see `image_memorisation`) and "n_samples".
    """
    images = getattr(data, "images", None)
    if images is None:
        raise BrenierError(f"data: expected an ImageData (with .images), got {type(data).__name__}")
    real = check_images(images, "data.images", min_rows=2)
    fake = check_images(samples, "samples", shape=real.shape[1:])
    k = check_positive_int(k, "k")
    if len(fake) <= k:
        raise BrenierError(f"samples: need more than k={k} images, got {len(fake)}")
    if classifier is None:
        classifier = load_or_train_classifier(data, seed=seed)
    elif not all(hasattr(classifier, m) for m in ("features", "predict_proba")):
        raise BrenierError(f"classifier: expected a fitted Classifier, got {type(classifier).__name__}")
    if tuple(getattr(classifier, "input_shape_", real.shape[1:])) != tuple(real.shape[1:]):
        raise BrenierError(f"classifier: trained on images of shape {classifier.input_shape_}, "
                           f"the data have {tuple(real.shape[1:])}")

    f_real, f_fake = classifier.features(real), classifier.features(fake)
    p_real, p_fake = classifier.predict_proba(real), classifier.predict_proba(fake)
    hist = class_histogram(p_fake)
    out = {
        "frechet": frechet_distance(f_real, f_fake),
        "class_kl": class_kl(hist, class_histogram(p_real)),
        "class_histogram": [float(v) for v in hist],
        "mixture_rate_50": mixture_rate(p_fake, 0.5),
        "mixture_rate_90": mixture_rate(p_fake, 0.9),
    }
    out.update(prdc(f_real, f_fake, k=k))
    out["memorisation"] = image_memorisation(fake, real, seed=seed)
    out["n_samples"] = int(len(fake))
    return out
