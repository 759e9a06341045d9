"""Autoencoder: embed the data manifold Σ ⊂ ℝ^D in a latent space ℝ^m, f_θ: ℝ^D → ℝ^m, g_ξ: ℝ^m → ℝ^D.

AE-OT computes its transport map in the latent space, so the encoder f_θ must be a deterministic
function (no dropout, no batch statistics) and the decoder g_ξ must map latent codes back onto Σ.
Both are trained to minimise the reconstruction error E |g_ξ(f_θ(x)) − x|².

* ``kind="conv"`` for images (n, C, H, W) of any H × W: a stride-1 convolution, then stride-2
  convolutions until the feature map is at most 4 pixels on a side, then a linear layer to ℝ^m.
  The decoder mirrors it (linear → transposed convolutions, cropped to the exact size → a 3 × 3
  convolution) and ends in a sigmoid, so the images must lie in [0, 1].
* ``kind="mlp"`` for vectors (n, d): hidden widths 256-128, linear output; the vectors are
  standardised (x − mean)/s with one scalar spread s, undone on decoding.

``latent_dim="auto"`` takes m = ⌈TwoNN intrinsic dimension⌉ of the flattened data, clipped to
[2, 32]. Training is Adam on the MSE with a validation split and early stopping on the validation
loss (the best weights are restored), for `epochs` epochs or a budget of `max_steps` updates,
whichever ends first (by default a budget that only large data sets reach, where the cheaper
channels are taken too: see `AUTO_SAMPLES`); it is seeded by a private `torch.Generator` and leaves
the global torch random state untouched. Checkpoints are float arrays plus a JSON config (`state`).

The network builders (`conv_nets`, re-exported here) and `train_network` are shared with the image
baselines (`image_baselines.VAE`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import validation
from ..analysis.dimension import intrinsic_dimension
from ..validation import (
    BrenierError,
    check_choice,
    check_fitted,
    check_fraction,
    check_points,
    check_positive_float,
    check_positive_int,
    to_numpy,
)
from .conv_nets import (  # noqa: F401  (re-exported: the builders used to live here)
    MAX_SIDE,
    build_conv_decoder,
    build_conv_encoder,
    build_mlp,
    conv_sizes,
    seeded_build,
)

STATE_FORMAT = "brenier.autoencoder"
STATE_VERSION = 2  # 2: max_steps, steps (version 1 is read as trained without a step budget)
LATENT_RANGE = (2, 32)  # clip of the automatic latent size
ESTIMATE_ROWS = 4000  # rows used by the intrinsic-dimension estimate
KINDS = ("auto", "conv", "mlp")
# max_steps="auto": at most ⌈AUTO_SAMPLES / batch_size⌉ updates (4,688 at batch 128: 11 epochs of
# Fashion-MNIST's 54,000 training images; the 1,617 of the 8 × 8 digits stop after 300 epochs,
# 3,900 updates, first). channels="auto": the first widths, or the second (3× cheaper per update,
# so they see more data in the same time) when that budget cuts training short.
AUTO_SAMPLES = 600_000
AUTO_CHANNELS = ((32, 64, 128), (16, 32, 64))
_EVAL_BATCH = 1024
FIT_HINT = "call fit(x) or from_state(...)"


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------

def check_images(x: Any, name: str, shape: tuple[int, ...] | None = None, min_rows: int = 1) -> np.ndarray:
    """Images (n, C, H, W) with values in [0, 1] (the conv decoder ends in a sigmoid)."""
    return validation.check_images(x, name, shape=shape, min_rows=min_rows, unit_range=True)


def check_seed(seed: Any, name: str = "seed") -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BrenierError(f"{name}: expected a non-negative integer or None, got {seed!r}")
    return int(seed)


def resolve_seed(seed: Any, name: str = "seed") -> int:
    """A concrete seed: the given one, or fresh entropy for None."""
    seed = check_seed(seed, name)
    return int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else seed


def check_device(device: Any) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BrenierError(f"device: not a torch device: {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BrenierError(f"device: {device!r} requested but CUDA is not available here; use 'cpu'")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise BrenierError(f"device: {device!r} requested but MPS is not available here; use 'cpu'")
    return dev


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == "auto"


def _check_widths(value: Any, name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise BrenierError(f"{name}: expected a non-empty sequence of positive ints, got {value!r}")
    return tuple(check_positive_int(v, name) for v in value)


# --------------------------------------------------------------------------------------------
# training loop (shared with the VAE)
# --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def progress_bar(enabled: bool, label: str, total: int) -> Iterator[Callable[..., None]]:
    """A rich progress bar with one task of `total` units while the block runs, if `enabled`.
    Yields `tick(advance=1, info="")`: advance the bar and set its trailing text (a no-op when
    not enabled)."""
    if not enabled:
        yield lambda advance=1, info=None: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
    task = bar.add_task(label, total=total, info="")

    def tick(advance: int = 1, info: str | None = None) -> None:
        if info is None:
            bar.advance(task, advance)
        else:
            bar.update(task, advance=advance, info=info)

    bar.start()
    try:
        yield tick
    finally:
        bar.stop()


def train_network(
    module: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    train: torch.Tensor,
    val: torch.Tensor | None,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    patience: int | None,
    generator: torch.Generator,
    device: torch.device,
    progress: bool = False,
    label: str = "training",
    val_seed: int = 0,
    max_steps: int | None = None,
) -> tuple[dict[str, list[float]], int, bool]:
    """Adam on `loss_fn(batch, generator)` (mean loss of the batch) with minibatches shuffled by
    `generator`; early stopping when the validation loss has not improved for `patience` epochs
    (None: never), then the best weights are restored.

    `max_steps` (None: no limit) ends training after that many minibatch updates even inside an
    epoch; that last, partial epoch is evaluated and recorded like a full one (its training loss
    the mean over the batches it ran).

    The validation loss uses a fresh generator seeded with `val_seed` each epoch, so a stochastic
    loss (the VAE's) is compared on the same noise. Without `val` the training loss is monitored.

    Returns (history {"train": [...], "val": [...]}, best epoch (0-based), stopped early?).
    """
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    n = len(train)
    per_epoch = -(-n // batch_size)
    total_steps = epochs * per_epoch if max_steps is None else min(epochs * per_epoch, max_steps)
    history: dict[str, list[float]] = {"train": [], "val": []}
    best, best_epoch, best_state, waited, stopped = math.inf, -1, None, 0, False
    steps = 0
    with progress_bar(progress, label, total_steps) as tick:
        for epoch in range(epochs):
            module.train()
            total, seen = 0.0, 0
            perm = torch.randperm(n, generator=generator)
            for s in range(0, n, batch_size):
                if steps == total_steps:
                    break
                batch = train[perm[s:s + batch_size]].to(device)
                loss = loss_fn(batch, generator)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
                total += float(loss.detach()) * len(batch)
                seen += len(batch)
                tick()
            train_loss = total / seen
            if not math.isfinite(train_loss):
                raise BrenierError(f"lr: training diverged (loss {train_loss}) at epoch {epoch + 1}; "
                                   f"lower lr (got {lr})")
            val_loss = train_loss if val is None else evaluate_loss(module, loss_fn, val, device, val_seed)
            history["train"].append(train_loss)
            history["val"].append(val_loss)
            if val_loss < best:
                best, best_epoch, waited = val_loss, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                waited += 1
            tick(0, info=f"epoch {epoch + 1}  train {train_loss:.4g}  val {val_loss:.4g}")
            if patience is not None and waited >= patience:
                stopped = True
                break
            if steps == total_steps:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history, best_epoch, stopped


def evaluate_loss(module: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
                  data: torch.Tensor, device: torch.device, seed: int) -> float:
    """Mean of `loss_fn` over `data` in eval mode, batched, with noise from a generator seeded `seed`."""
    module.eval()
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    total = 0.0
    with torch.no_grad():
        for s in range(0, len(data), _EVAL_BATCH):
            batch = data[s:s + _EVAL_BATCH].to(device)
            total += float(loss_fn(batch, gen)) * len(batch)
    return total / len(data)


def split_indices(n: int, val_fraction: float, generator: torch.Generator,
                  name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random (train, val) index split; val is None when val_fraction = 0."""
    if val_fraction == 0:
        return torch.arange(n), None
    n_val = max(1, int(round(val_fraction * n)))
    if n - n_val < 1:
        raise BrenierError(f"{name}: {n} sample(s) are too few for val_fraction={val_fraction} "
                           f"(need at least one training and one validation sample)")
    perm = torch.randperm(n, generator=generator)
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def latent_size_auto(x_flat: np.ndarray, seed: int) -> tuple[int, float]:
    """m = ⌈TwoNN dimension⌉ of the rows (at most ESTIMATE_ROWS of them), clipped to [2, 32];
    falls back to the number of principal axes holding 99 % of the variance if TwoNN fails."""
    if len(x_flat) > ESTIMATE_ROWS:
        rng = np.random.default_rng(seed)
        x_flat = x_flat[np.sort(rng.choice(len(x_flat), ESTIMATE_ROWS, replace=False))]
    try:
        est = intrinsic_dimension(x_flat, cross_check=("twonn",))
    except BrenierError as exc:
        raise BrenierError(f"latent_dim: 'auto' could not estimate the intrinsic dimension ({exc}); "
                           "pass an int") from None
    value = est.dimension if math.isfinite(est.dimension) else float(est.linear_dimension)
    m = int(np.clip(math.ceil(value), *LATENT_RANGE))
    return m, float(value)


# --------------------------------------------------------------------------------------------
# the autoencoder
# --------------------------------------------------------------------------------------------

class _Net(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder


class Autoencoder:
    """Autoencoder x ↦ z = f_θ(x) ∈ ℝ^m ↦ g_ξ(z), convolutional for images, MLP for vectors.

    Args:
        latent_dim: m, a positive int or "auto" (⌈TwoNN intrinsic dimension⌉ clipped to [2, 32]).
        kind: "conv" (images (n, C, H, W), values in [0, 1], sigmoid output), "mlp" (vectors
            (n, d), linear output) or "auto" (by the rank of the training data).
        epochs, batch_size, lr: Adam on the mean squared error.
        max_steps: a budget of Adam updates: training stops after `epochs` epochs or `max_steps`
            updates, whichever comes first (the last epoch may be partial). "auto":
            ⌈AUTO_SAMPLES / batch_size⌉ updates (4,688 at batch 128, 11 epochs of 54,000
            Fashion-MNIST training images), more than `epochs` take on small data sets (the 8 × 8
            digits: 300 epochs of 1,617 images are 3,900 updates); None: no budget.
        val_fraction: share of the samples held out for validation / early stopping (0: none,
            then the training loss is monitored).
        patience: epochs without improvement of the validation loss before stopping (None: never);
            the best weights are restored either way.
        seed: seeds the initialisation, split and shuffling (None: fresh entropy, kept in `seed_`).
        device: torch device ("cpu", "cuda", …); progress: show a rich progress bar.
        channels: conv channels per resolution, or "auto": AUTO_CHANNELS[0] = (32, 64, 128), or
            AUTO_CHANNELS[1] = (16, 32, 64) (3× cheaper per update) when the step budget ends
            training before `epochs` epochs. hidden: MLP hidden widths.
        latent_noise: σ ≥ 0; in training the decoder sees z + σ·sd(z)·ε, ε ~ N(0, I), sd(z) the
            batch's per-coordinate spread (0: plain autoencoder). A decoder that must be right
            on a σ-neighbourhood of each code is smoother: it copies training images less
            exactly from nearby codes (fewer near-copies from the generator) at the price of
            blurrier reconstructions. Validation loss is measured without noise.

    Attributes after `fit`: latent_dim_, input_shape_, kind_, history_ ({"train", "val"} per-epoch
    MSE per pixel/coordinate), reconstruction_error_ (validation MSE per pixel), best_epoch_,
    stopped_early_ (by `patience`), latent_estimate_ (TwoNN estimate when latent_dim="auto", else
    None), channels_ and max_steps_ (resolved), steps_ (updates made), fit_seconds_, seed_.
    """

    def __init__(self, latent_dim: int | str = "auto", *, kind: str = "auto", epochs: int = 300,
                 batch_size: int = 128, lr: float = 1e-3, val_fraction: float = 0.1,
                 patience: int | None = 30, seed: int | None = 0, device: str = "cpu",
                 progress: bool = False, channels: Sequence[int] | str = "auto",
                 hidden: Sequence[int] = (256, 128), latent_noise: float = 0.0,
                 max_steps: int | str | None = "auto"):
        self.latent_dim = latent_dim
        self.kind = kind
        self.epochs = epochs
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.val_fraction = val_fraction
        self.patience = patience
        self.seed = seed
        self.device = device
        self.progress = progress
        self.channels = channels
        self.hidden = hidden
        self.latent_noise = latent_noise

    # ---- fitting ----------------------------------------------------------------------------

    def check_params(self) -> None:
        """Validate the settings (raises BrenierError naming the argument); `fit` calls it first."""
        if self.latent_dim != "auto" and (isinstance(self.latent_dim, bool)
                                          or not isinstance(self.latent_dim, (int, np.integer))
                                          or self.latent_dim <= 0):
            raise BrenierError(f"latent_dim: expected a positive int or 'auto', got {self.latent_dim!r}")
        check_choice(self.kind, "kind", KINDS)
        check_positive_int(self.epochs, "epochs")
        if self.max_steps is not None and not _is_auto(self.max_steps):
            if (isinstance(self.max_steps, bool) or not isinstance(self.max_steps, (int, np.integer))
                    or self.max_steps <= 0):
                raise BrenierError(f"max_steps: expected a positive int, 'auto' or None, "
                                   f"got {self.max_steps!r}")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_float(self.lr, "lr")
        check_fraction(self.val_fraction, "val_fraction", one=False)
        check_positive_int(self.patience, "patience", allow_none=True)
        check_seed(self.seed)
        if not _is_auto(self.channels):
            _check_widths(self.channels, "channels")
        _check_widths(self.hidden, "hidden")
        if not (isinstance(self.latent_noise, (int, float)) and 0 <= self.latent_noise < math.inf):
            raise BrenierError(f"latent_noise: expected a finite number >= 0, got {self.latent_noise!r}")

    def fit(self, x: Any) -> Autoencoder:
        """Train on images (n, C, H, W) in [0, 1] (or (n, H, W)) or vectors (n, d)."""
        start = time.perf_counter()
        self.check_params()
        self._device = check_device(self.device)
        arr = to_numpy(x, "x")
        kind = self.kind
        if kind == "auto":
            if arr.ndim in (3, 4):
                kind = "conv"
            elif arr.ndim == 2:
                kind = "mlp"
            else:
                raise BrenierError("x: expected images (n, C, H, W) or vectors (n, d), "
                                   f"got shape {arr.shape}")
        min_rows = 2 if float(self.val_fraction) > 0 else 1
        if kind == "conv":
            data = check_images(arr, "x", min_rows=min_rows)
            self.mean_, self.scale_ = None, 1.0
            work = data
        else:
            data = check_points(arr, "x", min_rows=min_rows)
            self.mean_ = data.mean(axis=0)
            spread = float(np.sqrt(np.mean((data - self.mean_) ** 2)))
            self.scale_ = spread if spread > 0 else 1.0
            work = ((data - self.mean_) / self.scale_).astype(np.float32)
        self.kind_ = kind
        self.input_shape_ = tuple(int(s) for s in data.shape[1:])
        self.seed_ = resolve_seed(self.seed)
        flat = data.reshape(len(data), -1)
        if self.latent_dim == "auto":
            self.latent_dim_, self.latent_estimate_ = latent_size_auto(flat, self.seed_)
        else:
            self.latent_dim_, self.latent_estimate_ = int(self.latent_dim), None
        self.hidden_ = tuple(int(h) for h in self.hidden)

        gen = torch.Generator(device="cpu")
        gen.manual_seed(self.seed_)
        tensor = torch.from_numpy(np.ascontiguousarray(work, dtype=np.float32))
        train_idx, val_idx = split_indices(len(tensor), float(self.val_fraction), gen, "x")
        train = tensor[train_idx]
        val = None if val_idx is None else tensor[val_idx]
        self.max_steps_, self.channels_ = self.training_plan(len(train))
        self.net_ = seeded_build(self.seed_, self._build).to(self._device)

        noise = float(self.latent_noise)

        def loss_fn(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            z = self.net_.encoder(batch)
            if noise > 0 and self.net_.training:  # the decoder sees z + σ·sd(z)·ε
                eps = torch.randn(z.shape, generator=gen).to(z.device)
                z = z + noise * z.detach().std(dim=0, keepdim=True) * eps
            return ((self._decode_tensor(z) - batch) ** 2).mean()

        history, self.best_epoch_, self.stopped_early_ = train_network(
            self.net_, loss_fn, train, val, epochs=int(self.epochs), batch_size=int(self.batch_size),
            lr=float(self.lr), patience=self.patience, generator=gen, device=self._device,
            progress=bool(self.progress), label=f"autoencoder ({kind}, m={self.latent_dim_})",
            max_steps=self.max_steps_)
        per_epoch = -(-len(train) // int(self.batch_size))
        self.steps_ = len(history["train"]) * per_epoch
        if self.max_steps_ is not None:
            self.steps_ = min(self.steps_, self.max_steps_)
        s2 = self.scale_ ** 2  # report errors in the units of the data
        self.history_ = {k: [v * s2 for v in vals] for k, vals in history.items()}
        self.reconstruction_error_ = self.history_["val"][self.best_epoch_]
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def training_plan(self, n_train: int) -> tuple[int | None, tuple[int, ...]]:
        """(max_steps, channels) for `n_train` training rows, resolving the "auto" settings:
        max_steps ⌈AUTO_SAMPLES / batch_size⌉ updates; channels AUTO_CHANNELS[0] unless that budget
        ends training before `epochs` epochs (a large data set), then the cheaper AUTO_CHANNELS[1]."""
        budget = self.max_steps
        if _is_auto(budget):
            budget = -(-AUTO_SAMPLES // int(self.batch_size))
        budget = None if budget is None else int(budget)
        if not _is_auto(self.channels):
            return budget, tuple(int(c) for c in self.channels)
        planned = int(self.epochs) * -(-n_train // int(self.batch_size))
        return budget, AUTO_CHANNELS[1] if budget is not None and budget < planned else AUTO_CHANNELS[0]

    def _build(self) -> _Net:
        m = self.latent_dim_
        if self.kind_ == "conv":
            return _Net(build_conv_encoder(self.input_shape_, m, self.channels_),
                        build_conv_decoder(m, self.input_shape_, self.channels_))
        d = self.input_shape_[0]
        return _Net(build_mlp(d, m, self.hidden_), build_mlp(m, d, tuple(reversed(self.hidden_))))

    def _decode_tensor(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net_.decoder(z)
        return torch.sigmoid(out) if self.kind_ == "conv" else out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._decode_tensor(self.net_.encoder(x))

    # ---- encode / decode --------------------------------------------------------------------

    def _prepare(self, x: Any, name: str) -> np.ndarray:
        if self.kind_ == "conv":
            return check_images(x, name, shape=self.input_shape_)
        arr = check_points(x, name, dim=self.input_shape_[0])
        return ((arr - self.mean_) / self.scale_).astype(np.float32)

    def _batched(self, fn, arr: np.ndarray) -> np.ndarray:
        self.net_.eval()
        outs = []
        with torch.no_grad():
            for s in range(0, len(arr), _EVAL_BATCH):
                chunk = torch.from_numpy(np.ascontiguousarray(arr[s:s + _EVAL_BATCH], dtype=np.float32))
                outs.append(fn(chunk.to(self._device)).cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0,), np.float32)

    def encode(self, x: Any) -> np.ndarray:
        """Latent codes z = f_θ(x), float64 (n, latent_dim_)."""
        check_fitted(self, "net_", FIT_HINT)
        arr = self._prepare(x, "x")
        return self._batched(self.net_.encoder, arr).astype(np.float64).reshape(len(arr), self.latent_dim_)

    def decode(self, z: Any) -> np.ndarray:
        """Reconstructions g_ξ(z): images float32 (n, C, H, W) in [0, 1] or vectors float64 (n, d)."""
        check_fitted(self, "net_", FIT_HINT)
        codes = check_points(z, "z", dim=self.latent_dim_)
        out = self._batched(self._decode_tensor, codes.astype(np.float32))
        out = out.reshape((len(codes), *self.input_shape_))
        if self.kind_ == "conv":
            return out.astype(np.float32)
        return out.astype(np.float64) * self.scale_ + self.mean_

    def reconstruct(self, x: Any) -> np.ndarray:
        """g_ξ(f_θ(x))."""
        return self.decode(self.encode(x))

    # ---- checkpoints ------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """(tensors, config): float arrays of the weights and a JSON-serialisable config."""
        check_fitted(self, "net_", FIT_HINT)
        tensors = {f"net.{k}": v.detach().cpu().numpy().copy() for k, v in self.net_.state_dict().items()}
        if self.mean_ is not None:
            tensors["mean"] = np.asarray(self.mean_, dtype=np.float64)
        config = {
            "format": STATE_FORMAT, "version": STATE_VERSION,
            "kind": self.kind_, "latent_dim": self.latent_dim_, "input_shape": list(self.input_shape_),
            "channels": list(self.channels_), "hidden": list(self.hidden_), "scale": self.scale_,
            "params": {"latent_dim": self.latent_dim, "kind": self.kind, "epochs": self.epochs,
                       "max_steps": self.max_steps, "batch_size": self.batch_size, "lr": self.lr,
                       "val_fraction": self.val_fraction, "patience": self.patience, "seed": self.seed,
                       "latent_noise": self.latent_noise},
            "max_steps": self.max_steps_, "steps": self.steps_,
            "seed": self.seed_, "latent_estimate": self.latent_estimate_,
            "history": self.history_, "reconstruction_error": self.reconstruction_error_,
            "best_epoch": self.best_epoch_, "stopped_early": self.stopped_early_,
            "fit_seconds": self.fit_seconds_,
        }
        return tensors, config

    @classmethod
    def from_state(cls, tensors: dict[str, np.ndarray], config: dict, device: str = "cpu") -> Autoencoder:
        """Rebuild a fitted Autoencoder from `state()`; encode/decode are identical."""
        if not isinstance(config, dict) or config.get("format") != STATE_FORMAT:
            found = config.get("format") if isinstance(config, dict) else type(config).__name__
            raise BrenierError(f"config: not a {STATE_FORMAT} config (found {found!r})")
        version = config.get("version")
        if not isinstance(version, int) or version > STATE_VERSION:
            raise BrenierError(f"config: autoencoder state version {version!r}; this brenier reads up to "
                               f"{STATE_VERSION}")
        try:
            params = dict(config["params"])
            params["patience"] = params.get("patience")
            params.setdefault("max_steps", None)  # version 1: no step budget
            ae = cls(**params, device=device, channels=tuple(config["channels"]),
                     hidden=tuple(config["hidden"]))
            ae.kind_ = check_choice(config["kind"], "config.kind", ("conv", "mlp"))
            ae.latent_dim_ = int(config["latent_dim"])
            ae.input_shape_ = tuple(int(s) for s in config["input_shape"])
            ae.channels_, ae.hidden_ = tuple(ae.channels), tuple(ae.hidden)
            ae.scale_ = float(config["scale"])
            ae.seed_ = config["seed"]
            ae.latent_estimate_ = config["latent_estimate"]
            ae.history_ = {k: list(v) for k, v in config["history"].items()}
            ae.reconstruction_error_ = config["reconstruction_error"]
            ae.best_epoch_ = config["best_epoch"]
            ae.stopped_early_ = config["stopped_early"]
            ae.fit_seconds_ = config["fit_seconds"]
            ae.max_steps_ = config.get("max_steps")
            ae.steps_ = config.get("steps")
        except (KeyError, TypeError, ValueError) as exc:
            raise BrenierError(f"config: corrupt autoencoder config ({exc!r})") from None
        ae._device = check_device(device)
        ae.mean_ = None
        if ae.kind_ == "mlp":
            if "mean" not in tensors:
                raise BrenierError("tensors: missing 'mean' of the MLP autoencoder")
            ae.mean_ = np.asarray(tensors["mean"], dtype=np.float64)
        net = ae._build()
        weights = {k[4:]: torch.from_numpy(np.array(v)) for k, v in tensors.items() if k.startswith("net.")}
        try:
            net.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise BrenierError(f"tensors: do not match the autoencoder config ({exc})") from None
        ae.net_ = net.to(ae._device).eval()
        return ae

    def save(self, path: str | Path) -> None:
        """Write the autoencoder to one safetensors file (config in its header)."""
        from ..io import save_tensors

        tensors, config = self.state()
        save_tensors(path, tensors, fmt=STATE_FORMAT, version=STATE_VERSION, meta=config)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Autoencoder:
        """Read a file written by `save`."""
        from ..io import load_tensors

        tensors, config, _ = load_tensors(path, STATE_FORMAT, STATE_VERSION, name="path")
        return cls.from_state(tensors, config, device=device)
