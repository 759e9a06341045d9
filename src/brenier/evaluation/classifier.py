"""A small CNN classifier trained on the data itself: the feature extractor of the image metrics.

Evaluation of generated images needs a network that knows the data (an Inception net for
ImageNet-like photos); brenier downloads no weights, so it trains its own on the labelled data:

    x ─ [conv3×3 → ReLU → conv3×3 → ReLU → maxpool 2] ─ [same, 2× channels] ─ avgpool to 4×4
      ─ flatten ─ Linear → ReLU  (the feature layer φ(x), `feature_dim` units) ─ Linear → logits

Works for any H×W and C ∈ {1, 3} (the pools are skipped on images too small for them). Inputs
are standardised by the training pixels' mean and spread. Training is cross-entropy with Adam
(cosine learning-rate decay), seeded and deterministic, on a random (1 − val_fraction) share of the
images; the rest gives the held-out accuracy `accuracy_` and calibrates the confidence by
temperature scaling, p(k | x) = softmax(logits / T) — the mixture rate reads these confidences,
and an uncalibrated, over-confident network would call almost every blend certain.

`load_or_train_classifier(data)` caches the trained network on disk, keyed by the data and seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io import load_tensors, save_tensors
from ..validation import (
    BrenierError,
    check_fitted,
    check_images,
    check_positive_float,
    check_positive_int,
    to_numpy,
)

FORMAT = "brenier.classifier"
FORMAT_VERSION = 1
ARCH_VERSION = 1  # bump when the network or its training changes: old cache entries are then ignored
FIT_HINT = "call fit(images, labels) or load(path)"


# =============================================================================================
# Input checks
# =============================================================================================


def _check_labels(labels: Any, n: int, name: str = "labels") -> np.ndarray:
    if labels is None:
        raise BrenierError(f"{name}: the classifier needs class labels, got None")
    arr = to_numpy(labels, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise BrenierError(f"{name}: expected shape ({n},) to match the images, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        numeric = np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)
        if not numeric or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise BrenierError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    return arr.astype(np.int64)


# =============================================================================================
# The network
# =============================================================================================


class _Net(nn.Module):
    def __init__(self, in_channels: int, height: int, width: int, channels: int, feature_dim: int,
                 n_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, h, w = in_channels, height, width
        for c_out in (channels, 2 * channels):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU()]
            if min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c_in = c_out
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.feature = nn.Sequential(nn.Linear(c_in * 16, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): T = argmin_T −Σ log softmax(logits / T)[target],
    searched for log T in [−3, 3]. Keeps the predictions, calibrates their confidence."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(targets))

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(-np.mean(z[rows, targets] - np.log(np.exp(z).sum(axis=1))))

    return float(np.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


# =============================================================================================
# Classifier
# =============================================================================================


class Classifier:
    """Small CNN image classifier; `features` gives the penultimate activations φ(x) ∈ R^feature_dim.

    Args:
        channels: convolution channels of the first block (the second has twice as many);
        feature_dim: size of the feature layer used for Fréchet distance and PRDC;
        threads: torch threads while training and predicting (restored afterwards); None keeps
            torch's setting. The network is small, so one thread is the fastest on a busy machine
            (digits, 8 epochs: 2.7 s on 1 thread vs 15 s on 2 threads of a loaded 2-core box).

    Fitted attributes: `classes_` (sorted labels, the columns of `predict_proba`), `input_shape_`
    (C, H, W), `accuracy_` (held-out accuracy; NaN with no held-out split), `history_` (training
    loss per epoch), `temperature_` (T of the calibrated softmax; 1 with no held-out split).
    """

    def __init__(self, channels: int = 32, feature_dim: int = 128, threads: int | None = 1):
        self.channels = channels
        self.feature_dim = feature_dim
        self.threads = threads

    @contextlib.contextmanager
    def _threads(self):
        n = check_positive_int(self.threads, "threads", allow_none=True)
        before = torch.get_num_threads()
        if n is not None and n != before:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)

    # ----------------------------------------------------------------------------- training

    def fit(self, images: Any, labels: Any, *, epochs: int = 20, batch_size: int = 64, lr: float = 2e-3,
            val_fraction: float = 0.2, seed: int = 0) -> Classifier:
        """Train with cross-entropy (Adam) on a random (1 − val_fraction) share; the held-out rest
        gives `accuracy_` and the temperature T.

        Deterministic for a given seed: the split and batches come from `seed`, the weights are
        initialised under it, and torch's global random state is left as it was.
        """
        x = check_images(images, "images", min_rows=2)
        y = _check_labels(labels, len(x))
        channels = check_positive_int(self.channels, "channels")
        feature_dim = check_positive_int(self.feature_dim, "feature_dim")
        epochs = check_positive_int(epochs, "epochs")
        batch_size = check_positive_int(batch_size, "batch_size")
        lr = check_positive_float(lr, "lr")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise BrenierError(f"seed: expected an integer, got {seed!r}")
        try:
            vf = float(val_fraction)
        except (TypeError, ValueError):
            vf = -1.0
        if not 0 <= vf < 1:
            raise BrenierError(f"val_fraction: expected a number in [0, 1), got {val_fraction!r}")
        classes = np.unique(y)
        if len(classes) < 2:
            raise BrenierError(f"labels: need at least 2 classes to train a classifier, "
                               f"got {classes.tolist()}")

        rng = np.random.default_rng(int(seed))
        order = rng.permutation(len(x))
        n_val = int(round(vf * len(x)))
        val, train = order[:n_val], order[n_val:]
        if len(train) < 2:
            raise BrenierError(f"val_fraction: leaves {len(train)} training image(s); use a smaller value")

        self.classes_ = classes
        self.input_shape_ = tuple(int(s) for s in x.shape[1:])
        self.mean_ = float(x[train].mean())
        self.std_ = float(x[train].std()) or 1.0
        targets = torch.from_numpy(np.searchsorted(classes, y))
        inputs = self._standardise(x)

        with torch.random.fork_rng(devices=[]), self._threads():
            torch.manual_seed(int(seed))
            self.net_ = _Net(self.input_shape_[0], self.input_shape_[1], self.input_shape_[2], channels,
                             feature_dim, len(classes))
            gen = torch.Generator(device="cpu").manual_seed(int(seed))
            opt = torch.optim.Adam(self.net_.parameters(), lr=lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
            loss_fn = nn.CrossEntropyLoss()
            train_t = torch.from_numpy(train)
            self.history_ = {"train": []}
            self.net_.train()
            for _ in range(epochs):
                perm = train_t[torch.randperm(len(train_t), generator=gen)]
                total = 0.0
                for a in range(0, len(perm), batch_size):
                    idx = perm[a:a + batch_size]
                    loss = loss_fn(self.net_(inputs[idx]), targets[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                sched.step()
                self.history_["train"].append(total / len(perm))
        self.net_.eval()
        self.temperature_ = 1.0
        if n_val:
            self.temperature_ = _fit_temperature(self._logits(x[val]), np.searchsorted(classes, y[val]))
        self.accuracy_ = self.accuracy(x[val], y[val]) if n_val else float("nan")
        return self

    # ----------------------------------------------------------------------------- inference

    def _standardise(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((x - np.float32(self.mean_)) / np.float32(self.std_))

    @torch.no_grad()
    def _run(self, images: Any, fn, batch_size: int = 512) -> np.ndarray:
        check_fitted(self, "net_", FIT_HINT)
        x = check_images(images, "images", shape=self.input_shape_)
        with self._threads():
            out = [fn(self._standardise(x[a:a + batch_size])) for a in range(0, len(x), batch_size)]
        return torch.cat(out).double().numpy()

    def _logits(self, images: Any) -> np.ndarray:
        return self._run(images, lambda t: self.net_(t))

    def predict_proba(self, images: Any) -> np.ndarray:
        """Calibrated class probabilities p(k | x) = softmax(logits / T), shape (n, K), columns in the
        order of `classes_`."""
        return _softmax(self._logits(images) / self.temperature_)

    def predict(self, images: Any) -> np.ndarray:
        """Most probable label for each image, shape (n,)."""
        return self.classes_[np.argmax(self.predict_proba(images), axis=1)]

    def features(self, images: Any) -> np.ndarray:
        """Penultimate activations φ(x), shape (n, feature_dim): the space of Fréchet distance and PRDC."""
        return self._run(images, lambda t: self.net_.features(t))

    @torch.no_grad()
    def features_and_proba(self, images: Any, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """(`features(images)`, `predict_proba(images)`) from one pass through the network — the same
        numbers as the two calls, at half the cost."""
        check_fitted(self, "net_", FIT_HINT)
        x = check_images(images, "images", shape=self.input_shape_)
        feats, logits = [], []
        with self._threads():
            for a in range(0, len(x), batch_size):
                f = self.net_.features(self._standardise(x[a:a + batch_size]))
                feats.append(f)
                logits.append(self.net_.head(f))
        return (torch.cat(feats).double().numpy(),
                _softmax(torch.cat(logits).double().numpy() / self.temperature_))

    def accuracy(self, images: Any, labels: Any) -> float:
        """Share of images whose predicted label equals the given one."""
        check_fitted(self, "net_", FIT_HINT)
        x = check_images(images, "images", shape=self.input_shape_)
        y = _check_labels(labels, len(x))
        return float(np.mean(self.predict(x) == y))

    # ----------------------------------------------------------------------------- persistence

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """(tensors, JSON config) reproducing this classifier exactly via `from_state`."""
        check_fitted(self, "net_", FIT_HINT)
        tensors = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        tensors["classes"] = np.asarray(self.classes_, dtype=np.int64)
        config = {"channels": int(self.channels), "feature_dim": int(self.feature_dim),
                  "input_shape": list(self.input_shape_), "mean": self.mean_, "std": self.std_,
                  "temperature": self.temperature_,
                  "accuracy": None if np.isnan(self.accuracy_) else self.accuracy_,
                  "history": self.history_, "arch_version": ARCH_VERSION}
        return tensors, config

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], config: dict) -> Classifier:
        try:
            model = cls(channels=int(config["channels"]), feature_dim=int(config["feature_dim"]))
            model.classes_ = np.asarray(tensors["classes"], dtype=np.int64)
            model.input_shape_ = tuple(int(s) for s in config["input_shape"])
            model.mean_, model.std_ = float(config["mean"]), float(config["std"])
            model.temperature_ = float(config["temperature"])
            acc = config.get("accuracy")
            model.accuracy_ = float("nan") if acc is None else float(acc)
            model.history_ = config.get("history", {"train": []})
            c, h, w = model.input_shape_
            model.net_ = _Net(c, h, w, model.channels, model.feature_dim, len(model.classes_))
            weights = {k[4:]: torch.from_numpy(np.array(v))
                       for k, v in tensors.items() if k.startswith("net.")}
            model.net_.load_state_dict(weights, strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise BrenierError(f"classifier state is incomplete or inconsistent ({exc})") from None
        model.net_.eval()
        return model

    def save(self, path: str | os.PathLike) -> None:
        """Write a safetensors file (format "brenier.classifier"); atomic."""
        tensors, config = self.state()
        save_tensors(path, tensors, fmt=FORMAT, version=FORMAT_VERSION, meta=config)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Classifier:
        tensors, config, _ = load_tensors(path, FORMAT, FORMAT_VERSION, name="path")
        return cls.from_state(tensors, config)


# =============================================================================================
# Cache
# =============================================================================================


def default_cache_dir() -> Path:
    """`$BRENIER_CACHE/classifiers` when BRENIER_CACHE is set, else ~/.cache/brenier/classifiers."""
    root = os.environ.get("BRENIER_CACHE")
    return Path(root) / "classifiers" if root else Path.home() / ".cache" / "brenier" / "classifiers"


def cache_key(images: np.ndarray, labels: np.ndarray, seed: int) -> str:
    """sha1 of the images' and labels' bytes and shapes, the seed and the architecture version."""
    h = hashlib.sha1()
    for arr in (np.ascontiguousarray(images, dtype=np.float32), np.ascontiguousarray(labels, dtype=np.int64)):
        h.update(repr(arr.shape).encode())
        h.update(arr.tobytes())
    h.update(f"seed={int(seed)};arch={ARCH_VERSION}".encode())
    return h.hexdigest()


def load_or_train_classifier(data: Any, cache_dir: str | os.PathLike | None = None,
                             seed: int = 0) -> Classifier:
    """The classifier for `data` (an ImageData with labels): from the cache, else trained and cached.

    The cache file is `<cache_dir>/<name>-<sha1>.safetensors` (see `cache_key`); a corrupt or
    unreadable entry is retrained and overwritten, with a warning.
    """
    images = getattr(data, "images", None)
    if images is None:
        raise BrenierError(f"data: expected an ImageData (with .images and .labels), "
                           f"got {type(data).__name__}")
    labels = getattr(data, "labels", None)
    if labels is None:
        raise BrenierError(f"data: {getattr(data, 'name', 'the data set')!r} has no labels; "
                           "the evaluation classifier needs labelled images")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise BrenierError(f"seed: expected an integer, got {seed!r}")
    x = check_images(images, "data.images", min_rows=2)
    y = _check_labels(labels, len(x), "data.labels")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(getattr(data, "name", "images")))[:40] or "images"
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{name}-{cache_key(x, y, seed)}.safetensors"
    if path.exists():
        try:
            model = Classifier.load(path)
            if model.input_shape_ != tuple(x.shape[1:]) or not np.array_equal(model.classes_, np.unique(y)):
                raise BrenierError("cached classifier does not match the data")
            return model
        except BrenierError as exc:
            warnings.warn(f"ignoring unreadable classifier cache {path} ({exc}); retraining", stacklevel=2)
    model = Classifier().fit(x, y, seed=int(seed))
    try:
        model.save(path)
    except OSError as exc:
        warnings.warn(f"could not write classifier cache {path} ({exc})", stacklevel=2)
    return model
