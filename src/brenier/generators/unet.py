"""A small convolutional U-Net ε_θ(x_t, t) for pixel-space diffusion (`image_baselines.PixelDDPM`).

    x (n, C, H, W) → 3×3 conv → [residual blocks, stride-2 conv]  per resolution, going down
                   → residual block at the coarsest resolution
                   → [nearest upsampling, concatenate the skip, residual blocks]  going up
                   → GroupNorm → SiLU → 3×3 conv → ε̂ (n, C, H, W)

Every residual block is GroupNorm → SiLU → 3×3 conv → GroupNorm, scaled and shifted per channel
by the time embedding → SiLU → 3×3 conv, added to its input (through a 1×1 conv when the channel
count changes). The time s = t/T ∈ [0, 1) enters as sinusoidal features at geometrically spaced
frequencies 1 … 1000, mapped by a small MLP to the embedding every block reads. No attention: at
28 × 28 on a CPU the convolutions already take the whole budget.

Resolutions halve (⌈h/2⌉) while the coarser map stays at least `MIN_SIDE` pixels on each side, so
any H × W works (28 → 14 → 7; 8 → 4; 5 × 7 stays at one resolution); the up path resizes to the
skip's exact size. The last convolution starts at zero, so an untrained net predicts ε̂ = 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

MIN_SIDE = 4  # no resolution coarser than this many pixels on a side
N_FREQ = 32  # sinusoidal frequencies of the time features


def _groups(channels: int) -> int:
    """Largest of 8, 4, 2, 1 dividing `channels` (GroupNorm groups)."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def unet_sizes(h: int, w: int, levels: int) -> list[tuple[int, int]]:
    """Feature-map sizes per resolution: (h, w), then halved (⌈·/2⌉) up to `levels` times while the
    smaller side of the halved map stays ≥ MIN_SIDE."""
    sizes = [(h, w)]
    while len(sizes) < levels:
        a, b = sizes[-1]
        nxt = ((a + 1) // 2, (b + 1) // 2)
        if min(nxt) < MIN_SIDE:
            break
        sizes.append(nxt)
    return sizes


class TimeEmbedding(nn.Module):
    """s ∈ [0, 1] (n,) → (n, dim): [sin(f s), cos(f s)] at frequencies f = 1 … 1000, then an MLP."""

    def __init__(self, dim: int, n_freq: int = N_FREQ):
        super().__init__()
        self.register_buffer("freq", torch.exp(torch.linspace(0.0, math.log(1000.0), n_freq)))
        self.mlp = nn.Sequential(nn.Linear(2 * n_freq, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        a = s.float()[:, None] * self.freq[None, :]
        return self.mlp(torch.cat([torch.sin(a), torch.cos(a)], dim=1))


class ResBlock(nn.Module):
    """GN → SiLU → conv → GN·(1 + a) + b → SiLU → conv, plus the (1×1-projected) input, with the
    per-channel scale a and shift b projected from the time embedding. (The time enters after the
    second GroupNorm: a shift added before it would be removed by the normalisation, entirely so
    for groups of one channel.)"""

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.time(F.silu(temb))[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return h + self.skip(x)


class UNet(nn.Module):
    """ε_θ(x_t, s) for images (n, C, H, W) and times s = t/T (n,).

    Args:
        in_channels: C; image_size: (H, W) (sets how many resolutions fit, see `unet_sizes`).
        channels: channels per resolution, finest first, e.g. (32, 64, 64): its length is the
            maximum number of resolutions (fewer for small images).
        blocks: residual blocks per resolution on each path.
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int], channels: Sequence[int] = (32, 64, 64),
                 blocks: int = 1):
        super().__init__()
        sizes = unet_sizes(int(image_size[0]), int(image_size[1]), len(channels))
        chans = [int(c) for c in channels[:len(sizes)]]
        self.sizes = sizes
        t_dim = 4 * chans[0]
        self.time = TimeEmbedding(t_dim)
        self.inp = nn.Conv2d(in_channels, chans[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = chans[0]
        for i, ch in enumerate(chans):
            self.down.append(nn.ModuleList(ResBlock(c if b == 0 else ch, ch, t_dim) for b in range(blocks)))
            c = ch
            if i + 1 < len(chans):
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid = ResBlock(c, c, t_dim)
        self.up = nn.ModuleList()
        for ch in reversed(chans):  # input: the coarser map concatenated with this level's skip
            self.up.append(nn.ModuleList(ResBlock(c + ch if b == 0 else ch, ch, t_dim)
                                         for b in range(blocks)))
            c = ch
        self.out_norm = nn.GroupNorm(_groups(c), c)
        self.out = nn.Conv2d(c, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        temb = self.time(s)
        h = self.inp(x)
        skips = []
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, temb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, temb)
        for level in self.up:
            skip = skips.pop()
            if h.shape[-2:] != skip.shape[-2:]:
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = torch.cat([h, skip], dim=1)
            for block in level:
                h = block(h, temb)
        return self.out(F.silu(self.out_norm(h)))


class FlatImageNet(nn.Module):
    """Wraps an image network net(x (n, C, H, W), s) so it takes and returns flattened vectors
    (n, C·H·W): the vector `DDPM`'s samplers run it unchanged. `on_call`, if set, is called after
    every evaluation (progress bars)."""

    def __init__(self, net: nn.Module, shape: Sequence[int]):
        super().__init__()
        self.net = net
        self.shape = tuple(int(s) for s in shape)
        self.on_call = None

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self.net(x.reshape(len(x), *self.shape), s).reshape(len(x), -1)
        if self.on_call is not None:
            self.on_call()
        return out


__all__ = ["FlatImageNet", "ResBlock", "TimeEmbedding", "UNet", "unet_sizes"]
