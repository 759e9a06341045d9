"""Baseline generators on vectors, for comparison with the OT generator: a GAN and a diffusion model.

Both are small torch MLPs on the CPU (or any torch device) with the generator interface of
`brenier.generators.base` (`generate` is kept as another name of `sample`),

    model = WGANGP(seed=0).fit(x)          # x: (n, d) training vectors
    samples = model.sample(n, seed=1)      # (n, d) numpy array

so benchmarks treat every generator alike. Data are standardised (x − m)/s with one scalar scale s,
which keeps the geometry of the data: s makes the RMS spread per coordinate equal to `spread`
(1 for DDPM; 4 for `GAN` and 16 for `WGANGP`, tuned on ring-8 / grid-25, where σ = 0.01 is only
0.014 RMS units: at spread 1 the discriminators resolved such narrow modes far more slowly).

* `GAN` (Goodfellow et al. 2014), the non-saturating GAN that PacGAN (Lin et al. 2018) uses as its
  plain-GAN baseline on ring-8 / grid-25: discriminator D trained on the logistic loss
  −E log σ(D(x)) − E log(1 − σ(D(G(z)))), generator on −E log σ(D(G(z))) (``loss="ns"``) or the
  original saturating E log(1 − σ(D(G(z)))) (``loss="minimax"``). Generator: ReLU + batch-norm MLP
  from a 2-D latent, as in PacGAN; discriminator: LeakyReLU MLP; one D step per G step,
  Adam(lr, β = (0.8, 0.999)), learning rate constant then decaying linearly to 0 over the last
  `lr_decay` fraction of steps (the decay sharpens the modes).
* `WGANGP` (Gulrajani et al. 2017): generator G(z), z ~ N(0, I); critic f trained to maximise
  E f(x) − E f(G(z)) − λ E (|∇f(x̂)| − 1)², x̂ on random segments between real and fake points;
  `n_critic` critic steps per generator step, Adam(lr, β = (0.5, 0.9)). On ring-8 / grid-25 it
  covers modes but leaves most samples between them (low %HQ); `GAN` is the sharper baseline there.
* `DDPM` (Ho et al. 2020): forward process x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε with a linear β schedule
  over T steps; an MLP ε_θ(x_t, t) trained on |ε − ε_θ|²; sampled either with the full ancestral
  chain (``sampler="ddpm"``, T steps) or deterministic DDIM (η = 0) on a sub-sequence of
  ``ddim_steps`` time steps. Works on any vector data (e.g. autoencoder latent codes).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from ..validation import (
    BrenierError,
    check_choice,
    check_fitted,
    check_fraction,
    check_points,
    check_positive_float,
    check_positive_int,
)


def _mlp(d_in: int, d_out: int, width: int, depth: int, act: Any,
         batch_norm: bool = False) -> nn.Sequential:
    """MLP with `depth` hidden layers of `width`; `act()` builds each activation."""
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), *([nn.BatchNorm1d(width)] if batch_norm else []), act()]
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def _leaky_relu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _check_betas(value: Any) -> tuple[float, float]:
    try:
        b = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        b = ()
    if len(b) != 2 or not all(0 <= v < 1 for v in b):
        raise BrenierError(f"betas: expected two numbers in [0, 1), got {value!r}")
    return b  # type: ignore[return-value]


class _VectorGenerator:
    """Shared plumbing: standardisation, seeding, device, timing."""

    spread: float = 1.0  # RMS spread per coordinate of the standardised data

    def __init__(self, *, steps: int, batch_size: int, width: int, depth: int, lr: float,
                 seed: int | None, device: str):
        self.steps = steps
        self.batch_size = batch_size
        self.width = width
        self.depth = depth
        self.lr = lr
        self.seed = seed
        self.device = device

    def _setup(self, data: Any) -> torch.Tensor:
        x = check_points(data, "data", min_rows=2)
        self._steps = check_positive_int(self.steps, "steps")
        self._batch = check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.width, "width")
        check_positive_int(self.depth, "depth")
        check_positive_float(self.lr, "lr")
        spread = check_positive_float(self.spread, "spread")
        if self.seed is not None and not isinstance(self.seed, (int, np.integer)):
            raise BrenierError(f"seed: expected an integer or None, got {self.seed!r}")
        self.dim_ = x.shape[1]
        self.mean_ = x.mean(axis=0)
        rms = float(np.sqrt(np.mean(np.sum((x - self.mean_) ** 2, axis=1)) / x.shape[1]))
        if not rms > 0:
            raise BrenierError("data: all points are identical; nothing to learn")
        self.scale_ = rms / spread
        self._device = torch.device(self.device)
        self._gen = torch.Generator(device="cpu")
        self._gen.manual_seed(0 if self.seed is None else int(self.seed))
        return torch.from_numpy(((x - self.mean_) / self.scale_).astype(np.float32))

    def _seeded(self, build):
        """Run `build()` (weight initialisation) under the model's seed, leaving torch's global
        random state as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if self.seed is None else int(self.seed))
            return build()

    def _batch_of(self, data: torch.Tensor) -> torch.Tensor:
        idx = torch.randint(0, len(data), (self._batch,), generator=self._gen)
        return data[idx].to(self._device)

    def _lr_schedule(self, opt: torch.optim.Optimizer, decay: float) -> torch.optim.lr_scheduler.LambdaLR:
        """Constant learning rate, then linear decay to 0 over the last `decay` fraction of steps."""
        n = self._steps
        span = n * decay
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 1.0 if span == 0 or s < n - span else max(0.0, (n - s) / span))

    def _unstandardise(self, z: torch.Tensor) -> np.ndarray:
        return z.detach().cpu().double().numpy() * self.scale_ + self.mean_


class _NoiseGenerator(_VectorGenerator):
    """A generator network G with batch norm, fed z ~ N(0, I_latent_dim): sampling and noise."""

    def _check_batch_norm(self) -> None:
        if self._batch < 2:
            raise BrenierError(f"batch_size: batch norm needs at least 2, got {self._batch}")

    def _noise(self, n: int, gen: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, generator=gen or self._gen)
        return z.to(self._device)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        """n samples G(z), z ~ N(0, I) drawn from `seed`."""
        check_fitted(self, "mean_", "call fit(data)")
        n = check_positive_int(n, "n")
        gen = torch.Generator(device="cpu")
        gen.manual_seed(0 if seed is None else int(seed))
        with torch.no_grad():
            return self._unstandardise(self.generator_(self._noise(n, gen)))

    generate = sample


class WGANGP(_NoiseGenerator):
    """Wasserstein GAN with gradient penalty on vectors.

    Args:
        latent_dim: dimension of the noise z; steps: generator updates; n_critic: critic updates
        per generator update; gp_weight: λ; width/depth: hidden layers of the generator (ReLU +
        batch norm); critic_width/critic_depth: hidden layers of the critic (LeakyReLU 0.2, no
        batch norm: the penalty is per sample); lr_decay: fraction of the steps at the end over
        which lr decays linearly to 0 (0: constant); spread: RMS spread of the standardised data.

    Defaults tuned on ring-8 / grid-25 (~2 min on one CPU thread). The penalty holds |∇f| near 1
    in the units of the standardised data, so the spread sets how much the critic's value can
    differ across one mode's width; in tuning runs on grid-25 spread 16 gave ~10× the %HQ of
    spread 4 (64 was worse again: the generator's output scale then trains slowly).
    """

    def __init__(self, *, latent_dim: int = 8, steps: int = 4000, n_critic: int = 5,
                 batch_size: int = 256, width: int = 128, depth: int = 4, critic_width: int = 128,
                 critic_depth: int = 3, lr: float = 2e-4, lr_decay: float = 0.5,
                 gp_weight: float = 10.0, spread: float = 16.0, seed: int | None = 0,
                 device: str = "cpu"):
        super().__init__(steps=steps, batch_size=batch_size, width=width, depth=depth, lr=lr,
                         seed=seed, device=device)
        self.latent_dim = latent_dim
        self.n_critic = n_critic
        self.critic_width = critic_width
        self.critic_depth = critic_depth
        self.lr_decay = lr_decay
        self.gp_weight = gp_weight
        self.spread = spread

    def fit(self, data: Any, verbose: bool = False) -> WGANGP:
        """Train on data (n, d); `history_` keeps the critic's Wasserstein estimate per step."""
        x = self._setup(data)
        zdim = check_positive_int(self.latent_dim, "latent_dim")
        n_critic = check_positive_int(self.n_critic, "n_critic")
        cw = check_positive_int(self.critic_width, "critic_width")
        cd = check_positive_int(self.critic_depth, "critic_depth")
        decay = check_fraction(self.lr_decay, "lr_decay", one=True)
        lam = check_positive_float(self.gp_weight, "gp_weight")
        self._check_batch_norm()
        d = self.dim_
        self.generator_, self.critic_ = self._seeded(lambda: (
            _mlp(zdim, d, self.width, self.depth, nn.ReLU, batch_norm=True).to(self._device),
            _mlp(d, 1, cw, cd, _leaky_relu).to(self._device)))
        opt_g = torch.optim.Adam(self.generator_.parameters(), lr=self.lr, betas=(0.5, 0.9))
        opt_c = torch.optim.Adam(self.critic_.parameters(), lr=self.lr, betas=(0.5, 0.9))
        sched_g, sched_c = self._lr_schedule(opt_g, decay), self._lr_schedule(opt_c, decay)
        self.generator_.train()
        self.history_ = []
        start = time.perf_counter()
        for step in range(self._steps):
            for _ in range(n_critic):
                real = self._batch_of(x)
                with torch.no_grad():
                    fake = self.generator_(self._noise(len(real)))
                eps = torch.rand(len(real), 1, generator=self._gen).to(self._device)
                mid = (eps * real + (1 - eps) * fake).requires_grad_(True)
                grad = torch.autograd.grad(self.critic_(mid).sum(), mid, create_graph=True)[0]
                penalty = ((grad.norm(dim=1) - 1) ** 2).mean()
                w_est = self.critic_(real).mean() - self.critic_(fake).mean()
                loss_c = -w_est + lam * penalty
                opt_c.zero_grad(set_to_none=True)
                loss_c.backward()
                opt_c.step()
            loss_g = -self.critic_(self.generator_(self._noise(self._batch))).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            sched_g.step()
            sched_c.step()
            self.history_.append(w_est.item())
            if verbose and (step + 1) % max(1, self._steps // 10) == 0:
                print(f"wgan-gp step {step + 1}/{self._steps}  W≈{float(w_est):.4f}  "
                      f"{time.perf_counter() - start:.1f}s")
        self.generator_.eval()  # batch norm: sample with the running statistics
        self.fit_seconds_ = time.perf_counter() - start
        return self


class GAN(_NoiseGenerator):
    """Non-saturating (or minimax) GAN on vectors, PacGAN's plain-GAN baseline on small MLPs.

    Args:
        loss: "ns" (non-saturating generator loss) or "minimax" (the original saturating one);
        latent_dim: dimension of the noise z; steps: generator updates (one discriminator update
        each); width/depth: hidden layers of the generator (ReLU + batch norm);
        disc_width/disc_depth: hidden layers of the discriminator (LeakyReLU 0.2); lr: Adam's
        learning rate for both nets, β = betas; lr_decay: fraction of the steps at the end over
        which lr decays linearly to 0 (0: constant); spread: RMS spread of the standardised data.

    Defaults (tuned on ring-8 / grid-25, ~2 min on one CPU thread for 40,000 steps, batch 100).
    """

    def __init__(self, *, loss: str = "ns", latent_dim: int = 2, steps: int = 40000,
                 batch_size: int = 100, width: int = 128, depth: int = 4, disc_width: int = 128,
                 disc_depth: int = 3, lr: float = 2e-4, betas: tuple[float, float] = (0.8, 0.999),
                 lr_decay: float = 0.5, spread: float = 4.0, seed: int | None = 0,
                 device: str = "cpu"):
        super().__init__(steps=steps, batch_size=batch_size, width=width, depth=depth, lr=lr,
                         seed=seed, device=device)
        self.loss = loss
        self.latent_dim = latent_dim
        self.disc_width = disc_width
        self.disc_depth = disc_depth
        self.betas = betas
        self.lr_decay = lr_decay
        self.spread = spread

    def fit(self, data: Any, verbose: bool = False) -> GAN:
        """Train on data (n, d); `history_` keeps the discriminator's loss per step."""
        x = self._setup(data)
        loss = check_choice(self.loss, "loss", ("ns", "minimax"))
        zdim = check_positive_int(self.latent_dim, "latent_dim")
        dw = check_positive_int(self.disc_width, "disc_width")
        dd = check_positive_int(self.disc_depth, "disc_depth")
        betas = _check_betas(self.betas)
        decay = check_fraction(self.lr_decay, "lr_decay", one=True)
        self._check_batch_norm()
        d = self.dim_
        self.generator_, self.discriminator_ = self._seeded(lambda: (
            _mlp(zdim, d, self.width, self.depth, nn.ReLU, batch_norm=True).to(self._device),
            _mlp(d, 1, dw, dd, _leaky_relu).to(self._device)))
        opt_g = torch.optim.Adam(self.generator_.parameters(), lr=self.lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator_.parameters(), lr=self.lr, betas=betas)
        sched_g, sched_d = self._lr_schedule(opt_g, decay), self._lr_schedule(opt_d, decay)
        softplus = nn.functional.softplus  # −log σ(a) = softplus(−a), −log(1 − σ(a)) = softplus(a)
        self.generator_.train()
        self.history_ = []
        start = time.perf_counter()
        for step in range(self._steps):
            real = self._batch_of(x)
            with torch.no_grad():
                fake = self.generator_(self._noise(len(real)))
            loss_d = softplus(-self.discriminator_(real)).mean() + softplus(self.discriminator_(fake)).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            logits = self.discriminator_(self.generator_(self._noise(self._batch)))
            loss_g = softplus(-logits).mean() if loss == "ns" else -softplus(logits).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            sched_g.step()
            sched_d.step()
            self.history_.append(loss_d.item())
            if verbose and (step + 1) % max(1, self._steps // 10) == 0:
                print(f"gan step {step + 1}/{self._steps}  D loss {float(loss_d):.4f}  "
                      f"{time.perf_counter() - start:.1f}s")
        self.generator_.eval()  # batch norm: sample with the running statistics
        self.fit_seconds_ = time.perf_counter() - start
        return self


class _EpsNet(nn.Module):
    """ε_θ(x_t, t): an MLP on x_t concatenated with a sinusoidal embedding of t/T."""

    def __init__(self, dim: int, width: int, depth: int, n_freq: int = 16):
        super().__init__()
        self.register_buffer("freq", torch.exp(torch.linspace(0.0, math.log(1000.0), n_freq)))
        self.net = _mlp(dim + 2 * n_freq, dim, width, depth, nn.SiLU)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = t[:, None] * self.freq[None, :]
        return self.net(torch.cat([x, torch.sin(a), torch.cos(a)], dim=1))


class DDPM(_VectorGenerator):
    """Denoising diffusion probabilistic model on vectors.

    Args:
        timesteps: T; beta_start/beta_end: the linear β schedule; steps: training updates;
        sampler: "ddpm" (full ancestral chain, T steps) or "ddim" (deterministic, `ddim_steps`);
        width/depth: hidden layers of ε_θ; lr decays linearly to 0 over training.
    """

    def __init__(self, *, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 steps: int = 30000, batch_size: int = 512, width: int = 128, depth: int = 4,
                 lr: float = 2e-3, sampler: str = "ddpm", ddim_steps: int = 100,
                 seed: int | None = 0, device: str = "cpu"):
        super().__init__(steps=steps, batch_size=batch_size, width=width, depth=depth, lr=lr,
                         seed=seed, device=device)
        self.timesteps = timesteps
        self.beta_start = beta_start
        self.beta_end = beta_end
        self.sampler = sampler
        self.ddim_steps = ddim_steps

    def _schedule(self) -> None:
        t = check_positive_int(self.timesteps, "timesteps")
        b0 = check_positive_float(self.beta_start, "beta_start")
        b1 = check_positive_float(self.beta_end, "beta_end")
        if not b0 <= b1 < 1:
            raise BrenierError(f"beta_end: expected beta_start ≤ beta_end < 1, got {b0}, {b1}")
        self.betas_ = torch.linspace(b0, b1, t, dtype=torch.float64)
        self.alpha_bar_ = torch.cumprod(1 - self.betas_, dim=0)

    def fit(self, data: Any, verbose: bool = False) -> DDPM:
        """Train ε_θ on data (n, d); `history_` keeps the loss per step."""
        x = self._setup(data)
        self._schedule()
        check_choice(self.sampler, "sampler", ("ddim", "ddpm"))
        n_t = len(self.betas_)
        self.net_ = self._seeded(lambda: _EpsNet(self.dim_, self.width, self.depth).to(self._device))
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / self._steps)
        ab = self.alpha_bar_.float().to(self._device)
        self.history_ = []
        start = time.perf_counter()
        for step in range(self._steps):
            x0 = self._batch_of(x)
            t = torch.randint(0, n_t, (len(x0),), generator=self._gen).to(self._device)
            eps = torch.randn(x0.shape, generator=self._gen).to(self._device)
            a = ab[t][:, None]
            xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
            loss = ((self.net_(xt, t.float() / n_t) - eps) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            self.history_.append(loss.item())
            if verbose and (step + 1) % max(1, self._steps // 10) == 0:
                print(f"ddpm step {step + 1}/{self._steps}  loss {float(loss):.4f}  "
                      f"{time.perf_counter() - start:.1f}s")
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def sample(self, n: int, seed: int | None = None, sampler: str | None = None,
               ddim_steps: int | None = None) -> np.ndarray:
        """n samples by reversing the diffusion from x_T ~ N(0, I) drawn from `seed`."""
        check_fitted(self, "mean_", "call fit(data)")
        n = check_positive_int(n, "n")
        sampler = check_choice(sampler or self.sampler, "sampler", ("ddim", "ddpm"))
        gen = torch.Generator(device="cpu")
        gen.manual_seed(0 if seed is None else int(seed))
        x = torch.randn(n, self.dim_, generator=gen, dtype=torch.float64)
        n_t = len(self.betas_)
        ab = self.alpha_bar_
        with torch.no_grad():
            if sampler == "ddpm":
                for t in range(n_t - 1, -1, -1):
                    eps = self._eps(x, t)
                    beta, a_t = self.betas_[t], ab[t]
                    mean = (x - beta / (1 - a_t).sqrt() * eps) / (1 - beta).sqrt()
                    if t > 0:
                        var = beta * (1 - ab[t - 1]) / (1 - a_t)  # posterior variance β̃_t
                        x = mean + var.sqrt() * torch.randn(x.shape, generator=gen, dtype=x.dtype)
                    else:
                        x = mean
            else:
                k = check_positive_int(ddim_steps or self.ddim_steps, "ddim_steps")
                ts = np.unique(np.linspace(0, n_t - 1, min(k, n_t)).round().astype(int))[::-1]
                for i, t in enumerate(ts):
                    eps = self._eps(x, int(t))
                    a_t = ab[t]
                    x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
                    a_prev = ab[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, dtype=x.dtype)
                    x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        return self._unstandardise(x)

    generate = sample

    def _eps(self, x: torch.Tensor, t: int) -> torch.Tensor:
        tt = torch.full((len(x),), t / len(self.betas_), dtype=torch.float32, device=self._device)
        return self.net_(x.float().to(self._device), tt).double().cpu()
