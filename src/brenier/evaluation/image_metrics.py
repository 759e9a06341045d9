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
* `evaluate_samples`: all of them at once, as a JSON-ready dict — against the training images, or,
  with `reference=` a labelled held-out set (e.g. the test split), against that set with a
  classifier trained on it (memorisation is still measured against the training images).

Sizes: every distance computation is chunked (memory O(chunk · N), never N × N); pixel-space
nearest neighbours (`image_memorisation`) run a float32 matrix product on candidates and re-rank
them exactly in float64, with a certified fallback, so 10,000 samples of 28 × 28 against 60,000
training images take seconds.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from ..analysis.neighbours import nearest_distances
from ..validation import (
    BrenierError,
    check_images,
    check_points,
    check_positive_float,
    check_positive_int,
    to_numpy,
)
from .classifier import Classifier, _check_labels, load_or_train_classifier

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
    return _prdc(x, y, k, step)


_BLOCK = 1 << 23  # entries of one (chunk × N) distance block (64 MB in float64)


def _prdc(x: np.ndarray, y: np.ndarray, k: int, step: int, r_real: np.ndarray | None = None) -> dict:
    """`prdc` on checked feature arrays; `r_real` (the reals' k-NN radii) may be given precomputed.
    The fake rows go in blocks of ≤ `step` rows and ≤ _BLOCK distances (a block is (rows, N))."""
    step = max(1, min(step, _BLOCK // len(x)))
    if r_real is None:
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


MAX_REFERENCE = 20_000  # training images used to estimate τ (as `brenier.metrics.memorisation`)
_U32 = 2.0**-24  # unit round-off of float32


def image_memorisation(samples: Any, train: Any, *, quantile: float = 0.01, seed: int | None = 0) -> float:
    """Share of samples whose pixel-L2 distance to the nearest training image is below τ, the
    `quantile`-quantile of the training images' own nearest-neighbour spacing.

    This is `brenier.metrics.memorisation(...)["near"]` on flattened images (τ from at most 20,000
    training images drawn with `seed`), computed exactly but faster (see `nearest_image_distances`);
    τ is cached per training set. Fresh images from the data distribution score ≈ `quantile`;
    copies of training images score 1.
    """
    t = check_images(train, "train", min_rows=2)
    s = check_images(samples, "samples", shape=t.shape[1:])
    q = _check_quantile(quantile)
    tau = memorisation_threshold(t, quantile=q, seed=seed)
    return float(np.mean(nearest_image_distances(s, t) < tau))


def _check_quantile(quantile: Any) -> float:
    q = check_positive_float(quantile, "quantile")
    if q >= 1:
        raise BrenierError(f"quantile: expected a number in (0, 1), got {quantile!r}")
    return q


_TAU_CACHE: OrderedDict = OrderedDict()  # (sha1 of the training images, quantile, seed) → τ


def memorisation_threshold(train: Any, *, quantile: float = 0.01, seed: int | None = 0) -> float:
    """τ of `image_memorisation`: the `quantile`-quantile of the distance from each of (at most
    20,000, drawn with `seed`) training images to its nearest other training image. Cached in
    memory per training set (content hash), quantile and seed; `seed=None` is never cached."""
    t = check_images(train, "train", min_rows=2)
    q = _check_quantile(quantile)
    key = None
    if seed is not None:
        h = hashlib.sha1(repr(t.shape).encode())
        h.update(np.ascontiguousarray(t).data)
        key = (h.hexdigest(), q, int(seed), MAX_REFERENCE)
        if key in _TAU_CACHE:
            _TAU_CACHE.move_to_end(key)
            return _TAU_CACHE[key]
    rng = np.random.default_rng(seed)
    sub = t if len(t) <= MAX_REFERENCE else t[rng.choice(len(t), MAX_REFERENCE, replace=False)]
    tau = float(np.quantile(nearest_image_distances(sub, t, k=1, exclude_self=True), q))
    if key is not None:
        _TAU_CACHE[key] = tau
        while len(_TAU_CACHE) > 4:
            _TAU_CACHE.popitem(last=False)
    return tau


def _row_norms2(x: np.ndarray, chunk: int = 8192) -> np.ndarray:
    out = np.empty(len(x))
    for a in range(0, len(x), chunk):
        b = x[a:a + chunk].astype(np.float64)
        out[a:a + chunk] = np.einsum("ij,ij->i", b, b)
    return out


def nearest_image_distances(queries: Any, images: Any, *, k: int = 1, exclude_self: bool = False,
                            block: int = 1 << 25, extra: int = 15) -> np.ndarray:
    """Exact pixel-L2 distance from each query image to its k-th nearest image of `images`, shape
    (M,) (float64; with `exclude_self` the queries are rows of `images` and the (k+1)-th is returned,
    as `brenier.analysis.neighbours.nearest_distances` does).

    For large sets (10⁴ × 6·10⁴ images of 784 pixels) this is several times faster than a k-d tree or
    scikit-learn's brute force, and bounded in memory: per block of query rows (≤ `block` scores),
    s_j = |y_j|² − 2⟨x, y_j⟩ (float32 matrix product, torch's threads) ranks the images y_j; the
    k + `extra` best are re-ranked with exact float64 distances. The float32 error of s is bounded
    (|δs| ≤ ε), so a row whose non-candidates might still beat its k-th exact distance (|x|² + s_(c)
    − ε < d_k²; never seen on images) is redone exactly on every y_j with s_j ≤ d_k² − |x|² + ε.
    """
    r = check_images(images, "images", min_rows=1)
    q = check_images(queries, "queries", shape=r.shape[1:])
    kk = check_positive_int(k, "k") + (1 if exclude_self else 0)
    if len(r) < kk:
        raise BrenierError(f"images: need at least {kk} images, got {len(r)}")
    q = np.ascontiguousarray(q.reshape(len(q), -1))
    r = np.ascontiguousarray(r.reshape(len(r), -1))
    m, n, dim = len(q), len(r), r.shape[1]
    c = min(n, kk + int(extra))
    rn2, qn2 = _row_norms2(r), _row_norms2(q)
    r_max = float(np.sqrt(rn2.max()))
    gamma = dim * _U32 / max(1.0 - dim * _U32, 1e-3)  # γ_D of a float32 dot product of length D
    rt = torch.from_numpy(r).T
    rn2_t = torch.from_numpy(rn2.astype(np.float32))
    step = max(1, min(m, block // n, (1 << 22) // (c * dim)))
    out = np.empty(m)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # the error bound assumes true float32 products
    try:
        for a in range(0, m, step):
            qb = q[a:a + step]
            s = torch.addmm(rn2_t, torch.from_numpy(qb), rt, beta=1.0, alpha=-2.0)
            if c < n:
                vals, cand = torch.topk(s, c, dim=1, largest=False, sorted=True)
                cand = cand.numpy()
            else:
                cand = np.broadcast_to(np.arange(n), (len(qb), n))
            diff = qb[:, None, :].astype(np.float64) - r[cand]
            dk2 = np.partition(np.einsum("bcd,bcd->bc", diff, diff), kk - 1, axis=1)[:, kk - 1]
            if c < n:
                qn2b = qn2[a:a + step]
                err = 2.0 * (2.0 * _U32 * r_max**2 + (2.0 * gamma + 2.0 * _U32) * np.sqrt(qn2b) * r_max)
                unsure = qn2b + vals[:, -1].double().numpy() - err < dk2
                for i in np.nonzero(unsure)[0]:
                    idx = torch.nonzero(s[i] <= dk2[i] - qn2b[i] + err[i]).flatten().numpy()
                    d2 = np.concatenate([_exact_d2(qb[i], r[idx[b:b + 4096]])
                                         for b in range(0, len(idx), 4096)])
                    dk2[i] = np.partition(d2, kk - 1)[kk - 1]
            out[a:a + step] = np.sqrt(dk2)
    finally:
        torch.set_float32_matmul_precision(precision)
    return out


def _exact_d2(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    d = x.astype(np.float64)[None, :] - rows
    return np.einsum("cd,cd->c", d, d)


# =============================================================================================
# Everything at once
# =============================================================================================


def check_reference(reference: Any, shape: tuple[int, ...], k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 (n, C, H, W), int64 labels) of a held-out reference set: an ImageData (or any
    object with .images and .labels) with labels, images of `shape` (C, H, W), more than k images."""
    images = getattr(reference, "images", None)
    if images is None:
        raise BrenierError(f"reference: expected an ImageData with .images and .labels (e.g. the test "
                           f"split), got {type(reference).__name__}")
    if getattr(reference, "labels", None) is None:
        raise BrenierError(f"reference: {getattr(reference, 'name', 'the reference set')!r} has no labels; "
                           "the held-out classifier is trained on labelled reference images")
    x = check_images(images, "reference.images", min_rows=2)
    if tuple(x.shape[1:]) != tuple(shape):
        raise BrenierError(f"reference: expected images of shape (n, {', '.join(map(str, shape))}) like the "
                           f"training images, got {x.shape}")
    if len(x) <= k:
        raise BrenierError(f"reference: need more than k={k} images, got {len(x)}")
    return x, _check_labels(reference.labels, len(x), "reference.labels")


def _check_classifier(classifier: Any, shape: tuple[int, ...], what: str) -> Any:
    if not all(hasattr(classifier, m) for m in ("features", "predict_proba")):
        raise BrenierError(f"classifier: expected a fitted Classifier, got {type(classifier).__name__}")
    if tuple(getattr(classifier, "input_shape_", shape)) != tuple(shape):
        raise BrenierError(f"classifier: trained on images of shape {classifier.input_shape_}, "
                           f"{what} have {tuple(shape)}")
    return classifier


def _features_and_proba(classifier: Any, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(classifier, "features_and_proba"):
        return classifier.features_and_proba(images)  # one pass, the same numbers
    return classifier.features(images), classifier.predict_proba(images)


class SampleScorer:
    """`evaluate_samples` with the real side computed once: scoring several sample sets against the
    same real images, classifier and training images (as `evaluate_model` does) then costs only the
    samples' own features, k-NN radii and nearest training images.

    Args:
        real: images (n, C, H, W) of the real set (Fréchet, class KL, PRDC);
        classifier: a fitted Classifier (features and calibrated probabilities);
        train: training images for memorisation (the same as `real` when no reference is used);
        k: neighbours of PRDC; seed: the seed of `image_memorisation`'s τ.
    """

    def __init__(self, real: Any, classifier: Any, train: Any, *, k: int = 5, seed: int = 0):
        self.real = check_images(real, "real", min_rows=2)
        self.train = check_images(train, "train", min_rows=2, shape=self.real.shape[1:])
        self.k = check_positive_int(k, "k")
        if len(self.real) <= self.k:
            raise BrenierError(f"real: need more than k={self.k} images, got {len(self.real)}")
        self.classifier = _check_classifier(classifier, self.real.shape[1:], "the data")
        self.seed = seed
        self.real_feats, p_real = _features_and_proba(self.classifier, self.real)
        self.real_hist = class_histogram(p_real)
        self.r_real = nearest_distances(self.real_feats, self.real_feats, k=self.k, exclude_self=True)
        self.tau = memorisation_threshold(self.train, seed=seed)

    def __call__(self, samples: Any) -> dict:
        fake = check_images(samples, "samples", shape=self.real.shape[1:])
        if len(fake) <= self.k:
            raise BrenierError(f"samples: need more than k={self.k} images, got {len(fake)}")
        f_fake, p_fake = _features_and_proba(self.classifier, fake)
        hist = class_histogram(p_fake)
        out = {
            "frechet": frechet_distance(self.real_feats, f_fake),
            "class_kl": class_kl(hist, self.real_hist),
            "class_histogram": [float(v) for v in hist],
            "mixture_rate_50": mixture_rate(p_fake, 0.5),
            "mixture_rate_90": mixture_rate(p_fake, 0.9),
        }
        out.update(_prdc(self.real_feats, check_points(f_fake, "fake_feats", dim=self.real_feats.shape[1]),
                         self.k, 1024, r_real=self.r_real))
        out["memorisation"] = float(np.mean(nearest_image_distances(fake, self.train) < self.tau))
        out["n_samples"] = int(len(fake))
        return out


def evaluate_samples(samples: Any, data: Any, classifier: Classifier | None = None, k: int = 5,
                     seed: int = 0, *, reference: Any = None, cache_dir: Any = None) -> dict:
    """All image metrics of generated `samples` (n, C, H, W) against `data` (an ImageData, the
    training images).

    Without `reference`, the real set is `data` itself and `classifier` defaults to
    `load_or_train_classifier(data, seed=seed)` (needs data.labels). With `reference` — a labelled
    ImageData of held-out images of the same shape, e.g. the test split — the classifier defaults to
    `load_or_train_classifier(reference, seed=seed)` and Fréchet distance, class KL and PRDC are
    measured against the reference images, so no metric uses a network that saw the training
    images; memorisation is still measured against `data` (near-copies of *training* images), whose
    labels are then not needed. A `classifier` passed in is used as is (for held-out scores it must
    not have been trained on `data`). `cache_dir`: the classifier cache (default
    `classifier.default_cache_dir()`).

    Returns plain floats: "frechet" (in classifier features), "class_kl" (KL(real ‖ samples) of the
    predicted-class histograms), "class_histogram" (list, the samples' histogram), "mixture_rate_50"
    and "mixture_rate_90" (top-1 probability < 0.5, < 0.9), "precision", "recall", "density",
    "coverage" (k-NN in features, all real images as the real set), "memorisation" (pixel space
    against the training images, see `image_memorisation`) and "n_samples".
    """
    images = getattr(data, "images", None)
    if images is None:
        raise BrenierError(f"data: expected an ImageData (with .images), got {type(data).__name__}")
    train = check_images(images, "data.images", min_rows=2)
    k = check_positive_int(k, "k")
    real = train if reference is None else check_reference(reference, train.shape[1:], k)[0]
    fake = check_images(samples, "samples", shape=real.shape[1:])
    if len(fake) <= k:
        raise BrenierError(f"samples: need more than k={k} images, got {len(fake)}")
    if classifier is None:
        classifier = load_or_train_classifier(data if reference is None else reference,
                                              cache_dir=cache_dir, seed=seed)
    _check_classifier(classifier, real.shape[1:], "the data" if reference is None else "the reference images")
    return SampleScorer(real, classifier, train, k=k, seed=seed)(fake)
