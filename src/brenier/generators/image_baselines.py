"""Baseline generators on images, to compare with AE-OT at a comparable CPU budget.

All share ``fit(images) -> self`` (images float (n, C, H, W) in [0, 1], or (n, H, W)) and
``sample(n, seed=None) -> (n, C, H, W)`` clipped to [0, 1]; ``seed=None`` draws fresh entropy.

* `VAE` (Kingma & Welling 2014): the convolutional encoder/decoder of `Autoencoder` (`.autoencoder`),
  the encoder giving (μ, log σ²) of q(z|x) = N(μ, σ²); loss −ELBO = E_q[−log p(x|z)] + KL(q ‖ N(0, I))
  with a Bernoulli (binary cross-entropy) or Gaussian (MSE / 2s²) likelihood; samples g(z), z ~ N(0, I).
* `AEGaussian`: an Autoencoder, a full-covariance Gaussian N(m, Σ) fitted to the codes f(x), samples g(z).
* `LatentDDPM`: the vector `DDPM` of `brenier.generators.baselines` on the codes f(x), then g — latent
  diffusion in miniature (the Stable Diffusion / Sora recipe without the U-Net or transformer).
* `PixelDDPM`: the same vector DDPM on the flattened pixels. Its ε-network is an MLP on the
  H·W·C-vector (no convolutions), which is adequate for 8 × 8 digits but not for large images.

The latent methods take ``autoencoder=``: a fitted `Autoencoder` is reused as is (so AE-OT and every
latent baseline share one embedding), an unfitted one is fitted in place, None trains a new one.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..validation import (
    BrenierError,
    check_choice,
    check_fitted,
    check_points,
    check_positive_float,
    check_positive_int,
)
from .autoencoder import (
    Autoencoder,
    build_conv_decoder,
    build_conv_encoder,
    check_device,
    check_images,
    resolve_seed,
    seeded_build,
    split_indices,
    train_network,
)
from .baselines import DDPM


def _check_n(n: Any) -> int:
    return check_positive_int(n, "n")


def _latent_dim(value: Any) -> int | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise BrenierError(f"latent_dim: expected a positive int or 'auto', got {value!r}")
    return int(value)


def _resolve_autoencoder(model: Any, images: np.ndarray) -> tuple[Autoencoder, bool]:
    """The model's autoencoder for `images`: reused if fitted, else trained. Returns (ae, trained?)."""
    ae = model.autoencoder
    if ae is None:
        ae = Autoencoder(_latent_dim(model.latent_dim), kind="conv", epochs=model.ae_epochs, seed=model.seed,
                         device=model.device, progress=model.progress)
    elif not isinstance(ae, Autoencoder):
        raise BrenierError(f"autoencoder: expected a brenier.manifold.Autoencoder or None, "
                           f"got {type(ae).__name__}")
    if hasattr(ae, "net_"):
        if ae.kind_ != "conv" or tuple(ae.input_shape_) != tuple(images.shape[1:]):
            raise BrenierError(f"autoencoder: fitted on {ae.kind_} input of shape {tuple(ae.input_shape_)}, "
                               f"but the images have shape {tuple(images.shape[1:])}")
        return ae, False
    return ae.fit(images), True


class _LatentGenerator:
    """Shared plumbing of the generators that work on autoencoder codes."""

    def _fit_codes(self, images: Any) -> np.ndarray:
        x = check_images(images, "images", min_rows=2)
        self.input_shape_ = tuple(x.shape[1:])
        self.autoencoder_, self.autoencoder_trained_ = _resolve_autoencoder(self, x)
        return self.autoencoder_.encode(x)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        return np.clip(self.autoencoder_.decode(z), 0.0, 1.0)


class AEGaussian(_LatentGenerator):
    """Autoencoder + Gaussian: z ~ N(m, Σ) with the mean and full covariance of the codes, x = g(z).

    Args:
        autoencoder: a fitted Autoencoder to reuse, an unfitted one to fit, or None (train one with
            `latent_dim`, `ae_epochs`, `seed`, `device`, `progress`).
        ridge: added to the diagonal of Σ, relative to its mean variance.
    """

    def __init__(self, autoencoder: Autoencoder | None = None, latent_dim: int | str = 10, *,
                 ae_epochs: int = 300, ridge: float = 1e-6, seed: int | None = 0, device: str = "cpu",
                 progress: bool = False):
        self.autoencoder = autoencoder
        self.latent_dim = latent_dim
        self.ae_epochs = ae_epochs
        self.ridge = ridge
        self.seed = seed
        self.device = device
        self.progress = progress

    def fit(self, images: Any) -> AEGaussian:
        start = time.perf_counter()
        check_positive_float(self.ridge, "ridge")
        z = self._fit_codes(images)
        self.mean_ = z.mean(axis=0)
        cov = np.atleast_2d(np.cov(z, rowvar=False))
        cov += self.ridge * max(float(np.trace(cov)) / len(cov), 1e-12) * np.eye(len(cov))
        self.cov_ = cov
        vals, vecs = np.linalg.eigh(cov)
        self.factor_ = vecs * np.sqrt(np.clip(vals, 0.0, None))  # Σ = F Fᵀ
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n images g(m + F ε), ε ~ N(0, I) drawn from `seed`."""
        check_fitted(self, "factor_", "call fit(images)")
        n = _check_n(n)
        rng = np.random.default_rng(resolve_seed(seed))
        z = self.mean_ + rng.standard_normal((n, len(self.mean_))) @ self.factor_.T
        return self._decode(z)


class LatentDDPM(_LatentGenerator):
    """Latent diffusion in miniature: the vector `DDPM` trained on the autoencoder codes, decoded.

    Args:
        autoencoder: see `AEGaussian`. steps, timesteps, width, depth, batch_size, lr, sampler,
        ddim_steps: passed to the vector `DDPM` (ε-net an MLP; `sampler="ddpm"` is the full
        ancestral chain of `timesteps` steps).
    """

    def __init__(self, autoencoder: Autoencoder | None = None, latent_dim: int | str = 10, *,
                 steps: int = 10_000, timesteps: int = 1000, width: int = 128, depth: int = 4,
                 batch_size: int = 512, lr: float = 2e-3, sampler: str = "ddpm", ddim_steps: int = 100,
                 ae_epochs: int = 300, seed: int | None = 0, device: str = "cpu", progress: bool = False):
        self.autoencoder = autoencoder
        self.latent_dim = latent_dim
        self.steps = steps
        self.timesteps = timesteps
        self.width = width
        self.depth = depth
        self.batch_size = batch_size
        self.lr = lr
        self.sampler = sampler
        self.ddim_steps = ddim_steps
        self.ae_epochs = ae_epochs
        self.seed = seed
        self.device = device
        self.progress = progress

    def fit(self, images: Any) -> LatentDDPM:
        start = time.perf_counter()
        z = self._fit_codes(images)
        self.ddpm_ = _ddpm(self).fit(z, verbose=bool(self.progress))
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n images g(z), z from the reverse diffusion seeded by `seed`."""
        check_fitted(self, "ddpm_", "call fit(images)")
        return self._decode(self.ddpm_.sample(_check_n(n), seed=resolve_seed(seed)))


class PixelDDPM:
    """The vector `DDPM` on flattened pixels (an MLP ε-net on H·W·C-vectors; fine for 8 × 8 digits).

    Args: as `LatentDDPM` without the autoencoder.
    """

    def __init__(self, *, steps: int = 8000, timesteps: int = 1000, width: int = 256, depth: int = 4,
                 batch_size: int = 512, lr: float = 2e-3, sampler: str = "ddpm", ddim_steps: int = 100,
                 seed: int | None = 0, device: str = "cpu", progress: bool = False):
        self.steps = steps
        self.timesteps = timesteps
        self.width = width
        self.depth = depth
        self.batch_size = batch_size
        self.lr = lr
        self.sampler = sampler
        self.ddim_steps = ddim_steps
        self.seed = seed
        self.device = device
        self.progress = progress

    def fit(self, images: Any) -> PixelDDPM:
        start = time.perf_counter()
        x = check_images(images, "images", min_rows=2)
        self.input_shape_ = tuple(x.shape[1:])
        self.ddpm_ = _ddpm(self).fit(x.reshape(len(x), -1).astype(np.float64), verbose=bool(self.progress))
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n images from the reverse diffusion seeded by `seed`, clipped to [0, 1]."""
        check_fitted(self, "ddpm_", "call fit(images)")
        x = self.ddpm_.sample(_check_n(n), seed=resolve_seed(seed))
        return np.clip(x.reshape((len(x), *self.input_shape_)), 0.0, 1.0).astype(np.float32)


def _ddpm(model: Any) -> DDPM:
    model.seed_ = resolve_seed(model.seed)
    return DDPM(timesteps=model.timesteps, steps=model.steps, batch_size=model.batch_size, width=model.width,
                depth=model.depth, lr=model.lr, sampler=model.sampler, ddim_steps=model.ddim_steps,
                seed=model.seed_, device=model.device)


class _VAENet(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder


class VAE:
    """Convolutional variational autoencoder (same encoder/decoder family as `Autoencoder`).

    Args:
        latent_dim: m; epochs, batch_size, lr, val_fraction, patience: training as in `Autoencoder`
            (early stopping on the validation −ELBO, best weights restored).
        reconstruction: "bernoulli" (−log p(x|z) = binary cross-entropy with the decoder's logits)
            or "mse" (Gaussian with standard deviation `noise_std`: |x − g(z)|² / 2s²).
        beta: weight of the KL term (1 is the ELBO).
        channels: conv channels per resolution.

    Attributes after `fit`: latent_dim_, input_shape_, history_ ({"train", "val"}: −ELBO per image,
    nats), best_epoch_, stopped_early_, fit_seconds_, seed_.
    """

    def __init__(self, latent_dim: int = 10, *, epochs: int = 300, batch_size: int = 128, lr: float = 1e-3,
                 val_fraction: float = 0.1, patience: int | None = 30, reconstruction: str = "bernoulli",
                 noise_std: float = 0.1, beta: float = 1.0, channels: tuple[int, ...] = (32, 64, 128),
                 seed: int | None = 0, device: str = "cpu", progress: bool = False):
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.val_fraction = val_fraction
        self.patience = patience
        self.reconstruction = reconstruction
        self.noise_std = noise_std
        self.beta = beta
        self.channels = channels
        self.seed = seed
        self.device = device
        self.progress = progress

    def fit(self, images: Any) -> VAE:
        start = time.perf_counter()
        m = check_positive_int(self.latent_dim, "latent_dim")
        # the Autoencoder's checks cover the shared training arguments
        Autoencoder(m, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                    val_fraction=self.val_fraction, patience=self.patience, seed=self.seed,
                    channels=self.channels).check_params()
        check_choice(self.reconstruction, "reconstruction", ("bernoulli", "mse"))
        s2 = check_positive_float(self.noise_std, "noise_std") ** 2
        beta = check_positive_float(self.beta, "beta")
        device = check_device(self.device)
        x = check_images(images, "images", min_rows=2 if float(self.val_fraction) > 0 else 1)
        self.input_shape_ = tuple(x.shape[1:])
        self.latent_dim_ = m
        self.seed_ = resolve_seed(self.seed)
        channels = tuple(int(c) for c in self.channels)
        self.net_ = seeded_build(self.seed_, lambda: _VAENet(
            build_conv_encoder(self.input_shape_, 2 * m, channels),
            build_conv_decoder(m, self.input_shape_, channels))).to(device)
        self._device = device
        gen = torch.Generator(device="cpu")
        gen.manual_seed(self.seed_)
        data = torch.from_numpy(np.ascontiguousarray(x))
        train_idx, val_idx = split_indices(len(data), float(self.val_fraction), gen, "images")
        bernoulli = self.reconstruction == "bernoulli"

        def neg_elbo(batch: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            mu, logvar = self.net_.encoder(batch).chunk(2, dim=1)
            logvar = logvar.clamp(-12.0, 8.0)
            eps = torch.randn(mu.shape, generator=g).to(device)
            logits = self.net_.decoder(mu + (0.5 * logvar).exp() * eps)
            if bernoulli:
                rec = F.binary_cross_entropy_with_logits(logits, batch, reduction="none")
            else:
                rec = (torch.sigmoid(logits) - batch) ** 2 / (2 * s2)
            kl = 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
            return (rec.flatten(1).sum(dim=1) + beta * kl).mean()

        self.history_, self.best_epoch_, self.stopped_early_ = train_network(
            self.net_, neg_elbo, data[train_idx], None if val_idx is None else data[val_idx],
            epochs=int(self.epochs), batch_size=int(self.batch_size), lr=float(self.lr),
            patience=self.patience, generator=gen, device=device, progress=bool(self.progress),
            label=f"VAE (m={m})", val_seed=self.seed_)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def decode(self, z: Any) -> np.ndarray:
        """Mean images sigmoid(g(z)) for codes z (n, latent_dim_)."""
        check_fitted(self, "net_", "call fit(images)")
        codes = torch.from_numpy(check_points(z, "z", dim=self.latent_dim_).astype(np.float32))
        self.net_.eval()
        with torch.no_grad():
            out = torch.cat([torch.sigmoid(self.net_.decoder(c.to(self._device))).cpu()
                             for c in codes.split(1024)]) if len(codes) else torch.zeros(0)
        return np.clip(out.numpy().reshape((len(codes), *self.input_shape_)), 0.0, 1.0)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n images: the decoder's mean image at z ~ N(0, I) drawn from `seed`."""
        check_fitted(self, "net_", "call fit(images)")
        n = _check_n(n)
        gen = torch.Generator(device="cpu")
        gen.manual_seed(resolve_seed(seed))
        return self.decode(torch.randn(n, self.latent_dim_, generator=gen).numpy())


__all__ = ["AEGaussian", "LatentDDPM", "PixelDDPM", "VAE"]
