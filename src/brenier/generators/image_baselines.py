"""Baseline generators on images, to compare with AE-OT at a comparable CPU budget.

All share ``fit(images) -> self`` (images float (n, C, H, W) in [0, 1], or (n, H, W)) and
``sample(n, seed=None) -> (n, C, H, W)`` clipped to [0, 1]; ``seed=None`` draws fresh entropy.

* `VAE` (Kingma & Welling 2014): the convolutional encoder/decoder of `Autoencoder` (`.autoencoder`),
  the encoder giving (μ, log σ²) of q(z|x) = N(μ, σ²); loss −ELBO = E_q[−log p(x|z)] + KL(q ‖ N(0, I))
  with a Bernoulli (binary cross-entropy) or Gaussian (MSE / 2s²) likelihood; samples g(z), z ~ N(0, I).
* `AEGaussian`: an Autoencoder, a full-covariance Gaussian N(m, Σ) fitted to the codes f(x), samples g(z).
* `LatentDDPM`: the vector `DDPM` of `brenier.generators.baselines` on the codes f(x), then g — latent
  diffusion in miniature (the Stable Diffusion / Sora recipe without the U-Net or transformer).
* `PixelDDPM`: diffusion on the pixels with the vector DDPM's schedule and samplers; its ε-network
  is a small convolutional U-Net (`brenier.generators.unet`) for images of 16 × 16 and larger, an
  MLP on the flattened H·W·C-vector below that (adequate for 8 × 8 digits, not for large images).

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
    progress_bar,
    resolve_seed,
    seeded_build,
    split_indices,
    train_network,
)
from .baselines import DDPM
from .unet import FlatImageNet, UNet


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


ARCHS = ("auto", "mlp", "unet")
UNET_MIN_SIDE = 16  # arch="auto" takes the U-Net when both image sides are at least this
# The settings PixelDDPM leaves at None take these values for its architecture. The U-Net ones
# are sized for Fashion-MNIST (60,000 images, 28 × 28) on 2 CPU cores: about 10 minutes of
# training, 10,000 DDIM samples in about 5 minutes (measurements in the report of issue 15).
PIXEL_DEFAULTS = {
    "mlp": {"steps": 8000, "width": 256, "depth": 4, "batch_size": 512, "lr": 2e-3, "sampler": "ddpm",
            "ddim_steps": 100},
    "unet": {"steps": 3000, "width": 32, "depth": 1, "batch_size": 128, "lr": 1e-3, "sampler": "ddim",
             "ddim_steps": 50},
}


class PixelDDPM:
    """Diffusion on the pixels: the vector `DDPM`'s β schedule and samplers with an ε-net that is
    either a convolutional U-Net (`brenier.generators.unet.UNet`) or an MLP on the flattened
    H·W·C-vector (adequate for 8 × 8 digits, not for larger images).

    Args:
        arch: "unet", "mlp" or "auto" (the U-Net when both image sides are ≥ 16, else the MLP).
        steps, batch_size, lr: Adam updates on the ε-prediction MSE, lr decaying linearly to 0.
        timesteps: T of the linear β schedule (1e-4 … 0.02).
        width, depth: MLP hidden width and layers; for the U-Net the channels of the finest
            resolution (then 2·width and 4·width) and the residual blocks per resolution.
        sampler: "ddim" (deterministic, `ddim_steps` steps) or "ddpm" (ancestral, T steps).
        sample_batch: the U-Net samples this many images at a time (the MLP all at once).
        Settings left at None take the architecture's default (`PIXEL_DEFAULTS`): MLP 8000 steps,
        width 256, depth 4, batch 512, lr 2e-3, ancestral sampling; U-Net 3000 steps, width 32,
        depth 1, batch 128, lr 1e-3, DDIM with 50 steps.

    Attributes after `fit`: arch_, settings_ (the resolved settings), ddpm_, input_shape_,
    fit_seconds_, seed_.
    """

    def __init__(self, *, arch: str = "auto", steps: int | None = None, timesteps: int = 1000,
                 width: int | None = None, depth: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, sampler: str | None = None, ddim_steps: int | None = None,
                 sample_batch: int = 500, seed: int | None = 0, device: str = "cpu", progress: bool = False):
        self.arch = arch
        self.steps = steps
        self.timesteps = timesteps
        self.width = width
        self.depth = depth
        self.batch_size = batch_size
        self.lr = lr
        self.sampler = sampler
        self.ddim_steps = ddim_steps
        self.sample_batch = sample_batch
        self.seed = seed
        self.device = device
        self.progress = progress

    def resolve_arch(self, shape: tuple[int, ...]) -> str:
        """The architecture for images of shape (C, H, W)."""
        arch = check_choice(self.arch, "arch", ARCHS)
        if arch == "auto":
            arch = "unet" if min(shape[1:]) >= UNET_MIN_SIDE else "mlp"
        return arch

    def fit(self, images: Any) -> PixelDDPM:
        start = time.perf_counter()
        check_choice(self.arch, "arch", ARCHS)
        x = check_images(images, "images", min_rows=2)
        self.input_shape_ = tuple(x.shape[1:])
        self.arch_ = self.resolve_arch(self.input_shape_)
        self.settings_ = {k: (v if getattr(self, k) is None else getattr(self, k))
                          for k, v in PIXEL_DEFAULTS[self.arch_].items()}
        flat = x.reshape(len(x), -1).astype(np.float64)
        if self.arch_ == "mlp":
            self.ddpm_ = _ddpm(self, self.settings_).fit(flat, verbose=bool(self.progress))
        else:
            check_positive_int(self.sample_batch, "sample_batch")
            model = _ddpm(self, self.settings_, cls=_UNetDDPM)
            model.shape = self.input_shape_
            self.ddpm_ = model.fit(flat, progress=bool(self.progress))
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n images from the reverse diffusion seeded by `seed`, clipped to [0, 1]."""
        check_fitted(self, "ddpm_", "call fit(images)")
        n = _check_n(n)
        if self.arch_ == "mlp":
            x = self.ddpm_.sample(n, seed=resolve_seed(seed))
        else:
            batch = check_positive_int(self.sample_batch, "sample_batch")
            x = self.ddpm_.sample_batched(n, resolve_seed(seed), batch, progress=bool(self.progress))
        return np.clip(x.reshape((len(x), *self.input_shape_)), 0.0, 1.0).astype(np.float32)


class _UNetDDPM(DDPM):
    """The vector `DDPM` (standardisation, β schedule, DDPM/DDIM samplers) with a U-Net ε-net
    that sees the flattened vectors as images of `shape` (set before `fit`). `width` is the
    U-Net's finest channel count, `depth` its residual blocks per resolution.

    Sampling clips each step's estimate x̂₀ = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t to the pixel range [0, 1]
    and passes the samplers the ε that this clipped x̂₀ implies (as DDPM/DDIM implementations for
    images do). Without it a small, briefly trained net does not recover from the first step: at
    t = T, √ᾱ_T = 0.0064 turns an ε error of 0.07 RMS (a width-8 net after 600 updates on
    Fashion-MNIST) into an x̂₀ error of 11 RMS, and 90 % of the final pixels fall outside [0, 1].
    """

    shape: tuple[int, ...] = ()

    def fit(self, data: Any, progress: bool = False) -> _UNetDDPM:
        """Train ε_θ on flattened images (n, C·H·W); `history_` keeps the loss per step."""
        x = self._setup(data)
        self._schedule()
        check_choice(self.sampler, "sampler", ("ddim", "ddpm"))
        c, h, w = self.shape
        channels = (self.width, 2 * self.width, 4 * self.width)
        self.net_ = self._seeded(lambda: FlatImageNet(UNet(c, (h, w), channels, self.depth), self.shape)
                                 ).to(self._device)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / self._steps)
        n_t = len(self.betas_)
        ab = self.alpha_bar_.float().to(self._device)
        self.history_ = []
        start = time.perf_counter()
        with progress_bar(progress, f"pixel DDPM (U-Net, width {self.width})", self._steps) as tick:
            for step in range(self._steps):
                x0 = self._batch_of(x)
                t = torch.randint(0, n_t, (len(x0),), generator=self._gen).to(self._device)
                eps = torch.randn(x0.shape, generator=self._gen).to(self._device)
                a = ab[t][:, None]
                loss = ((self.net_(a.sqrt() * x0 + (1 - a).sqrt() * eps, t.float() / n_t) - eps) ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                self.history_.append(loss.item())
                if not np.isfinite(self.history_[-1]):
                    raise BrenierError(f"lr: training diverged (loss {self.history_[-1]}) at step "
                                       f"{step + 1}; lower lr (got {self.lr})")
                tick(info=f"loss {np.mean(self.history_[-50:]):.4f}")
        self.net_.eval()
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _eps(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """ε̂ with x̂₀ clipped to the pixel range (float64, as `DDPM._eps`)."""
        eps = super()._eps(x, t)
        a = self.alpha_bar_[t]
        lo, hi = self._bounds
        x0 = torch.minimum(torch.maximum((x - (1 - a).sqrt() * eps) / a.sqrt(), lo), hi)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()

    @property
    def _bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The pixel range [0, 1] in standardised units, per pixel."""
        return (torch.from_numpy((0.0 - self.mean_) / self.scale_),
                torch.from_numpy((1.0 - self.mean_) / self.scale_))

    def sample_batched(self, n: int, seed: int, batch: int, progress: bool = False) -> np.ndarray:
        """`sample` in batches of `batch` images, batch i seeded by (seed, i): the same seed gives
        the same images for the same batch size. Returns flattened images (n, C·H·W)."""
        sampler = check_choice(self.sampler, "sampler", ("ddim", "ddpm"))
        n_t = len(self.betas_)
        if sampler == "ddpm":
            per_batch = n_t
        else:
            k = check_positive_int(self.ddim_steps, "ddim_steps")
            per_batch = len(np.unique(np.linspace(0, n_t - 1, min(k, n_t)).round().astype(int)))
        n_batches = -(-n // batch)
        out = []
        with progress_bar(progress, f"pixel DDPM sampling ({sampler})", n_batches * per_batch) as tick:
            self.net_.on_call = tick
            try:
                for i in range(n_batches):
                    sub = int(np.random.SeedSequence(seed, spawn_key=(i,)).generate_state(1)[0])
                    out.append(self.sample(min(batch, n - i * batch), seed=sub))
            finally:
                self.net_.on_call = None
        return np.concatenate(out)


def _ddpm(model: Any, settings: dict | None = None, cls: type[DDPM] = DDPM) -> DDPM:
    """The vector DDPM (or `cls`) with the model's settings (`settings` overriding its attributes)."""
    keys = ("steps", "width", "depth", "batch_size", "lr", "sampler", "ddim_steps")
    s = {k: getattr(model, k) for k in keys}
    s.update(settings or {})
    model.seed_ = resolve_seed(model.seed)
    return cls(timesteps=model.timesteps, seed=model.seed_, device=model.device, **s)


class _VAENet(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder


class VAE:
    """Convolutional variational autoencoder (same encoder/decoder family as `Autoencoder`).

    Args:
        latent_dim: m; epochs, max_steps, batch_size, lr, val_fraction, patience: training as in
            `Autoencoder` (early stopping on the validation −ELBO, best weights restored; by
            default a budget of updates that only large data sets reach).
        reconstruction: "bernoulli" (−log p(x|z) = binary cross-entropy with the decoder's logits)
            or "mse" (Gaussian with standard deviation `noise_std`: |x − g(z)|² / 2s²).
        beta: weight of the KL term (1 is the ELBO).
        channels: conv channels per resolution, or "auto" as in `Autoencoder`.

    Attributes after `fit`: latent_dim_, input_shape_, history_ ({"train", "val"}: −ELBO per image,
    nats), best_epoch_, stopped_early_, channels_, max_steps_, fit_seconds_, seed_.
    """

    def __init__(self, latent_dim: int = 10, *, epochs: int = 300, batch_size: int = 128, lr: float = 1e-3,
                 val_fraction: float = 0.1, patience: int | None = 30, reconstruction: str = "bernoulli",
                 noise_std: float = 0.1, beta: float = 1.0, channels: tuple[int, ...] | str = "auto",
                 max_steps: int | str | None = "auto", seed: int | None = 0, device: str = "cpu",
                 progress: bool = False):
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.max_steps = max_steps
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
        plan = Autoencoder(m, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           val_fraction=self.val_fraction, patience=self.patience, seed=self.seed,
                           channels=self.channels, max_steps=self.max_steps)
        plan.check_params()
        check_choice(self.reconstruction, "reconstruction", ("bernoulli", "mse"))
        s2 = check_positive_float(self.noise_std, "noise_std") ** 2
        beta = check_positive_float(self.beta, "beta")
        device = check_device(self.device)
        x = check_images(images, "images", min_rows=2 if float(self.val_fraction) > 0 else 1)
        self.input_shape_ = tuple(x.shape[1:])
        self.latent_dim_ = m
        self.seed_ = resolve_seed(self.seed)
        gen = torch.Generator(device="cpu")
        gen.manual_seed(self.seed_)
        data = torch.from_numpy(np.ascontiguousarray(x))
        train_idx, val_idx = split_indices(len(data), float(self.val_fraction), gen, "images")
        self.max_steps_, self.channels_ = plan.training_plan(len(train_idx))
        channels = self.channels_
        self.net_ = seeded_build(self.seed_, lambda: _VAENet(
            build_conv_encoder(self.input_shape_, 2 * m, channels),
            build_conv_decoder(m, self.input_shape_, channels))).to(device)
        self._device = device
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
            label=f"VAE (m={m})", val_seed=self.seed_, max_steps=self.max_steps_)
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
