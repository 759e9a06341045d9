"""AE-OT: the manifold generator for images (An, Guo, Lei, Luo, Yau & Gu 2020).

    images x ∈ Σ ⊂ R^{C×H×W}  --encoder f-->  codes z_i = f(x_i) ∈ Z = R^d
    μ = uniform on the cube [−½, ½]^d  --T = ∇u_h-->  ν = (1/n) Σ δ_{z̄_i}      (semi-discrete OT)
    new image = g(T̃(ξ)),  ξ ~ μ,  g the decoder,

with z̄ = (z − m)/s the codes centred and scaled by one number s (so the cube and the codes have the
same RMS radius; a scalar keeps the latent geometry), u_h the Brenier potential of the OT problem,
and T̃ the piecewise-linear extension of T that never interpolates across the singular set of u_h
(`brenier.ot.extension`): new codes fill each branch of the latent support, never the gaps between
branches — the gaps decode to blends of two classes (mode mixture). The plain map
(`extension="none"`) returns copies of training codes; `extension="naive"` interpolates across
the gaps, as a continuous generator must.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ..datasets.images import as_images
from ..measures import UniformCube
from ..ot import SemiDiscreteOT
from ..ot.extension import EXTENSIONS
from ..ot.singular import SingularSet
from ..validation import (
    BrenierError,
    check_choice,
    check_fitted,
    check_points,
    check_positive_float,
    check_positive_int,
    is_tensor,
    to_numpy,
)
from .autoencoder import Autoencoder

FORMAT = "brenier.AEOT"
FORMAT_VERSION = 1
AE_FORMAT = "brenier.Autoencoder"
DATA_FORMAT = "brenier.AEOT.data"
MANIFEST = "aeot.json"
AUTO_TOL_MIN, AUTO_TOL_MAX = 2.5e-3, 0.05  # tol="auto": 2.5e-3·max(1, N/1000), capped
FIT_HINT = "call fit(images) or AEOT.load(dir) first"


class AEOT:
    """Autoencoder + semi-discrete optimal transport generator.

    Args:
        latent_dim: size d of the codes, or "auto" (the intrinsic-dimension estimate of the data).
        seed: seed of the autoencoder training, the OT solve and (by default) sampling.
        epochs, batch_size, lr, patience: autoencoder training (see `brenier.manifold.Autoencoder`).
        latent_noise: σ of the code noise the decoder is trained on (0: none); trades fidelity
            for fewer near-copies of training images (see `brenier.manifold.Autoencoder`).
        tol, max_iter: OT solver stopping rule (χ² mass error) and step budget. tol="auto":
            2.5e-3·max(1, N/1000) for N targets, at most AUTO_TOL_MAX = 0.05 — on 10,000
            Fashion-MNIST codes the generated images' Fréchet distance, class KL and coverage
            do not change below χ² ≈ 0.15 (`benchmarks/tolerance.py`), while the solver's cost
            grows like N²/tol.
        ot_start: starting heights of the OT solve (`SemiDiscreteOT(start=...)`); 'auto' solves
            k-means clusters of the codes first from 256 codes on (class-structured codes stall
            from the Voronoi start: 2,000 `shapes` codes in 8-D, χ² 1.47 after 40 steps).
        threshold: singular-set threshold ("auto", "topology", "spectral" or θ* in radians, see
            `brenier.ot.singular`).
        extension: "pl" (singular-aware, default), "naive" or "none" (copies of training codes).
        max_targets: use at most this many training codes as OT targets (a seeded subset).
        device: torch device for the autoencoder and the assignment kernels.
        progress: show progress bars.
        checkpoint: a directory for resumable training: the trained autoencoder and the OT
            checkpoint are kept there; a new fit with the same data and settings resumes.

    Attributes (after `fit`): autoencoder_, ot_, unit_images_ (n, C, H, W) training images scaled
    to [0, 1], codes_ (n, d) training codes z, target_index_ (the training codes used as OT
    targets: all distinct ones, a repeated code once with its share as its weight, or a
    `max_targets` subset), latent_mean_ m, latent_scale_ s, image_shape_ (C, H, W), value_range_,
    data_name_, labels_ (or None), fit_info_ (timings, reconstruction error, OT convergence).
    """

    def __init__(
        self,
        latent_dim: int | str = "auto",
        seed: int | None = 0,
        *,
        epochs: int = 300,
        batch_size: int = 128,
        lr: float = 1e-3,
        patience: int = 30,
        latent_noise: float = 0.0,
        tol: float | str = "auto",
        max_iter: int = 100,
        threshold: float | str = "auto",
        extension: str = "pl",
        max_targets: int | None = None,
        device: str = "cpu",
        progress: bool = False,
        checkpoint: str | os.PathLike | None = None,
        ot_start: str = "auto",
    ):
        self.latent_dim = latent_dim
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.latent_noise = latent_noise
        self.tol = tol
        self.max_iter = max_iter
        self.threshold = threshold
        self.extension = extension
        self.max_targets = max_targets
        self.device = device
        self.progress = progress
        self.checkpoint = checkpoint
        self.ot_start = ot_start

    # ------------------------------------------------------------------ fitting
    def fit(self, images: Any, *, ot_callback: Callable[[dict], None] | None = None) -> AEOT:
        """Train the autoencoder on `images` (array (n, H, W) / (n, C, H, W), a data set name or a
        path), encode, and solve the semi-discrete OT problem from the cube to the codes."""
        check_choice(self.extension, "extension", EXTENSIONS)
        self._ot_tol(1)  # a bad tol fails before the autoencoder trains
        self._squeeze = _has_no_channel_axis(images)
        data = as_images(images, "images")
        if len(data.images) < 10:
            raise BrenierError(f"images: need at least 10 images to train, got {len(data.images)}")
        self.image_shape_ = tuple(int(s) for s in data.images.shape[1:])
        self.value_range_ = (float(data.value_range[0]), float(data.value_range[1]))
        self.data_name_ = data.name
        self.labels_ = data.labels
        x = self._to_unit(data.images)
        self.unit_images_ = x
        ckpt = self._checkpoint_dir(x)
        t0 = time.perf_counter()
        ae = self._load_checkpointed_autoencoder(ckpt)
        if ae is None:
            ae = Autoencoder(
                self.latent_dim,
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                patience=self.patience,
                latent_noise=self.latent_noise,
                seed=self.seed,
                device=self.device,
                progress=self.progress,
            ).fit(x)
            if ckpt is not None:
                tensors, config = ae.state()
                io.save_tensors(ckpt / "autoencoder.safetensors", tensors, AE_FORMAT, FORMAT_VERSION, config)
        t_ae = time.perf_counter() - t0
        self.autoencoder_ = ae
        self.codes_ = np.asarray(ae.encode(x), np.float64)
        d = self.codes_.shape[1]
        self.latent_mean_ = self.codes_.mean(axis=0)
        spread = float(np.sqrt(np.mean(np.sum((self.codes_ - self.latent_mean_) ** 2, axis=1))))
        if not spread > 0:
            raise BrenierError("images: every image has the same code; nothing to transport")
        self.latent_scale_ = spread / np.sqrt(d / 12.0)  # RMS radius of the cube [−½, ½]^d
        self.target_index_, weights = self._distinct_targets(self._choose_targets(len(self.codes_)))
        targets = self._normalise(self.codes_[self.target_index_])
        t1 = time.perf_counter()
        ot_ckpt = None if ckpt is None else ckpt / "ot.checkpoint.safetensors"
        self.ot_ = SemiDiscreteOT(
            UniformCube(d),
            tol=self._ot_tol(len(targets)),
            max_iter=self.max_iter,
            seed=self.seed,
            device=self.device,
            checkpoint=ot_ckpt,
            start=self.ot_start,
        ).fit(targets, weights, callback=ot_callback)
        self.fit_info_ = {
            "n_images": int(len(x)),
            "latent_dim": int(d),
            "n_targets": int(len(targets)),
            "autoencoder_seconds": t_ae,
            "ot_seconds": time.perf_counter() - t1,
            "reconstruction_mse": float(getattr(ae, "reconstruction_error_", float("nan"))),
            "ot_steps": int(self.ot_.n_iter_),
            "ot_converged": bool(self.ot_.converged_),
            "ot_chi2": float(self.ot_.history_[-1]["chi2"]) if self.ot_.history_ else 0.0,
            "ot_tol": self._ot_tol(len(targets)),
        }
        return self

    def _ot_tol(self, n_targets: int) -> float:
        """The χ² tolerance of the OT solve: `tol`, or for "auto" 2.5e-3·max(1, N/1000) ≤ 0.05."""
        if isinstance(self.tol, str) and self.tol == "auto":
            return float(min(AUTO_TOL_MIN * max(1.0, n_targets / 1000), AUTO_TOL_MAX))
        return check_positive_float(self.tol, "tol")

    def _choose_targets(self, n: int) -> np.ndarray:
        m = check_positive_int(self.max_targets, "max_targets", allow_none=True)
        if m is None or m >= n:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.seed).choice(n, m, replace=False))

    def _distinct_targets(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(target_index, ν): one target per distinct code among codes_[index] (repeated images
        have equal codes), weighted by how often it occurs; ν = None when all are distinct."""
        _, first, counts = np.unique(self.codes_[index], axis=0, return_index=True, return_counts=True)
        if len(first) == len(index):
            return index, None
        order = np.argsort(first)
        return index[first[order]], counts[order] / counts.sum()

    def _checkpoint_dir(self, x: np.ndarray) -> Path | None:
        if self.checkpoint is None:
            return None
        key = hashlib.sha1(np.ascontiguousarray(x).tobytes())
        key.update(json.dumps(self._params(), sort_keys=True).encode())
        root = Path(self.checkpoint)
        if root.exists() and not root.is_dir():
            raise BrenierError(f"checkpoint: expected a directory, got a file: {root}")
        path = root / key.hexdigest()[:16]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _load_checkpointed_autoencoder(self, ckpt: Path | None) -> Autoencoder | None:
        if ckpt is None or not (ckpt / "autoencoder.safetensors").exists():
            return None
        tensors, config, _ = io.load_tensors(
            ckpt / "autoencoder.safetensors", AE_FORMAT, FORMAT_VERSION, "checkpoint"
        )
        return Autoencoder.from_state(tensors, config)

    # ------------------------------------------------------------------ value ranges and codes
    def _to_unit(self, images: np.ndarray) -> np.ndarray:
        lo, hi = self.value_range_
        return ((np.asarray(images, np.float32) - lo) / (hi - lo)).astype(np.float32)

    def _from_unit(self, x: np.ndarray) -> np.ndarray:
        lo, hi = self.value_range_
        out = np.clip(x, 0.0, 1.0) * (hi - lo) + lo
        return out[:, 0] if self._squeeze else out

    def _normalise(self, z: np.ndarray) -> np.ndarray:
        return (z - self.latent_mean_) / self.latent_scale_

    def _denormalise(self, zbar: np.ndarray) -> np.ndarray:
        return zbar * self.latent_scale_ + self.latent_mean_

    def encode(self, images: Any) -> np.ndarray:
        """Latent codes z = f(x), shape (n, d), of images in the training value range (also accepted
        flattened, (n, C·H·W))."""
        check_fitted(self, "ot_", FIT_HINT)
        flat = to_numpy(images, "images") if isinstance(images, np.ndarray) or is_tensor(images) else None
        if flat is not None and flat.ndim == 2 and flat.shape[1] == int(np.prod(self.image_shape_)):
            images = flat.reshape(len(flat), *self.image_shape_)  # flattened images (n, C·H·W)
        data = as_images(images, "images")
        if tuple(data.images.shape[1:]) != self.image_shape_:
            raise BrenierError(
                f"images: expected images of shape {self.image_shape_}, got {tuple(data.images.shape[1:])}"
            )
        return np.asarray(self.autoencoder_.encode(self._to_unit(data.images)), np.float64)

    def decode(self, z: Any) -> np.ndarray:
        """Images g(z) in the training shape and value range, for codes z (n, d)."""
        check_fitted(self, "ot_", FIT_HINT)
        z = check_points(z, "z", dim=self.codes_.shape[1])
        return self._from_unit(np.asarray(self.autoencoder_.decode(z.astype(np.float32))))

    # ------------------------------------------------------------------ generation
    def sample_codes(
        self,
        n: int,
        seed: int | None = None,
        extension: str | None = None,
        threshold: float | str | None = None,
        qmc: bool | str = "auto",
    ) -> np.ndarray:
        """n new latent codes z = s T̃(ξ) + m, ξ ~ μ (see the module docstring); `qmc`: ξ scrambled
        Sobol points (True, and "auto" for the cube μ) or i.i.d. (False), see `brenier.ot.extension`."""
        check_fitted(self, "ot_", FIT_HINT)
        n = check_positive_int(n, "n")
        ext = check_choice(self.extension if extension is None else extension, "extension", EXTENSIONS)
        thr = self.threshold if threshold is None else threshold
        zbar = self.ot_.generate(n, seed=seed, threshold=thr, extension=ext, qmc=qmc)
        return self._denormalise(np.asarray(zbar, np.float64))

    def sample(
        self,
        n: int,
        seed: int | None = None,
        extension: str | None = None,
        threshold: float | str | None = None,
        qmc: bool | str = "auto",
    ) -> np.ndarray:
        """n new images g(T̃(ξ)) with the training images' shape and value range (`qmc` as in
        `sample_codes`)."""
        return self.decode(self.sample_codes(n, seed=seed, extension=extension, threshold=threshold,
                                             qmc=qmc))

    def singular_set(
        self, threshold: float | str | None = None, n_samples: int | None = None, seed: int | None = 0
    ) -> SingularSet:
        """The singular set of u_h in latent space (pairs index the OT targets: training codes
        `target_index_`)."""
        check_fitted(self, "ot_", FIT_HINT)
        thr = self.threshold if threshold is None else threshold
        return self.ot_.singular_set(threshold=thr, n_samples=n_samples, seed=seed)

    def singular_codes(
        self, n: int, seed: int | None = 0, threshold: float | str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gu's experiment: (across, inside) — n codes at midpoints (z_i + z_j)/2 of singular pairs
        (the blends a continuous generator produces) and n midpoints of regular (non-singular)
        pairs, largest facets first. Either may hold fewer than n codes if there are fewer pairs."""
        sing = self.singular_set(threshold=threshold, seed=seed)
        z = self.codes_[self.target_index_]
        out = []
        for mask in (sing.singular, ~sing.singular):
            pairs = sing.pairs[mask]
            order = np.argsort(-sing.facet_measure[mask], kind="stable")[:n]
            out.append(0.5 * (z[pairs[order, 0]] + z[pairs[order, 1]]))
        return out[0], out[1]

    @property
    def train_images_(self) -> np.ndarray:
        """Training images (n, C, H, W) in the training value range."""
        check_fitted(self, "ot_", FIT_HINT)
        lo, hi = self.value_range_
        return self.unit_images_ * (hi - lo) + lo

    # ------------------------------------------------------------------ files
    def _params(self) -> dict:
        return {
            "latent_dim": self.latent_dim,
            "seed": self.seed,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "patience": self.patience,
            "latent_noise": self.latent_noise,
            "tol": self.tol,
            "max_iter": self.max_iter,
            "threshold": self.threshold,
            "extension": self.extension,
            "max_targets": self.max_targets,
            "ot_start": self.ot_start,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to a directory: aeot.json (manifest), autoencoder.safetensors,
        potential.safetensors, data.safetensors (training images scaled to [0, 1], labels, codes).
        The directory is written beside the target and renamed into place (atomic)."""
        check_fitted(self, "ot_", FIT_HINT)
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise BrenierError(f"path: {path} exists and is not a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            tensors, config = self.autoencoder_.state()
            io.save_tensors(tmp / "autoencoder.safetensors", tensors, AE_FORMAT, FORMAT_VERSION, config)
            self.ot_.save(tmp / "potential.safetensors")
            data = {
                "images": np.ascontiguousarray(self.unit_images_, np.float32),
                "codes": self.codes_,
                "target_index": self.target_index_.astype(np.int64),
            }
            if self.labels_ is not None:
                data["labels"] = np.asarray(self.labels_, np.int64)
            io.save_tensors(tmp / "data.safetensors", data, DATA_FORMAT, FORMAT_VERSION, {})
            manifest = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "params": self._params(),
                "image_shape": list(self.image_shape_),
                "squeeze": bool(self._squeeze),
                "value_range": list(self.value_range_),
                "data_name": self.data_name_,
                "latent_mean": self.latent_mean_.tolist(),
                "latent_scale": float(self.latent_scale_),
                "fit_info": self.fit_info_,
            }
            io.write_json(tmp / MANIFEST, manifest)
            os.chmod(tmp, 0o755)
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
                os.replace(path, old / "model")
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu") -> AEOT:
        """Read a model directory written by `save`; foreign, corrupt or newer ones are refused."""
        path = Path(path)
        if not path.is_dir():
            raise BrenierError(
                f"path: {path} is not a model directory" + ("" if path.exists() else " (not found)")
            )
        manifest_path = path / MANIFEST
        if not manifest_path.exists():
            raise BrenierError(f"path: {path} is not a brenier AEOT model (no {MANIFEST})")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise BrenierError(f"path: {manifest_path} is not readable JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise BrenierError(
                f"path: {path} is not a brenier AEOT model (format "
                f"{manifest.get('format') if isinstance(manifest, dict) else None!r})"
            )
        version = manifest.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BrenierError(
                f"path: {path} was written by another brenier version (format version "
                f"{version!r}; this version reads up to {FORMAT_VERSION})"
            )
        try:
            obj = cls(**manifest["params"], device=device)
            tensors, config, _ = io.load_tensors(
                path / "autoencoder.safetensors", AE_FORMAT, FORMAT_VERSION, "path"
            )
            obj.autoencoder_ = Autoencoder.from_state(tensors, config)
            obj.ot_ = SemiDiscreteOT.load(path / "potential.safetensors", device=device)
            data, _, _ = io.load_tensors(path / "data.safetensors", DATA_FORMAT, FORMAT_VERSION, "path")
            obj.unit_images_ = np.asarray(data["images"], np.float32)
            obj.codes_ = np.asarray(data["codes"], np.float64)
            obj.target_index_ = np.asarray(data["target_index"], np.int64)
            obj.labels_ = data.get("labels")
            obj.image_shape_ = tuple(int(s) for s in manifest["image_shape"])
            obj._squeeze = bool(manifest["squeeze"])
            obj.value_range_ = tuple(float(v) for v in manifest["value_range"])
            obj.data_name_ = str(manifest["data_name"])
            obj.latent_mean_ = np.asarray(manifest["latent_mean"], np.float64)
            obj.latent_scale_ = float(manifest["latent_scale"])
            obj.fit_info_ = dict(manifest["fit_info"])
        except (KeyError, TypeError) as exc:
            raise BrenierError(f"path: {path} is missing a field ({exc})") from None
        if obj.codes_.shape[1] != len(obj.latent_mean_) or obj.ot_.targets_.shape[1] != len(obj.latent_mean_):
            raise BrenierError(f"path: {path} has inconsistent latent sizes")
        return obj

    def __repr__(self) -> str:
        if not hasattr(self, "ot_"):
            return f"AEOT(latent_dim={self.latent_dim!r}, not fitted)"
        return (
            f"AEOT(data={self.data_name_!r}, images={self.image_shape_}, "
            f"latent_dim={self.codes_.shape[1]}, targets={len(self.target_index_)})"
        )


def _has_no_channel_axis(images: Any) -> bool:
    """True for a raw (n, H, W) array: samples are then returned without the channel axis."""
    if isinstance(images, np.ndarray) or is_tensor(images):
        return to_numpy(images, "images").ndim == 3
    return False
