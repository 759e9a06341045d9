"""Network builders shared by the autoencoder (`autoencoder.Autoencoder`) and the image baselines
(`image_baselines.VAE`): a convolutional encoder/decoder pair for images of any H × W, an MLP, and
seeded construction.

* `build_conv_encoder`: a stride-1 3×3 convolution, then stride-2 3×3 convolutions until the
  feature map is at most `MAX_SIDE` pixels on a side (`conv_sizes`), then a linear layer.
* `build_conv_decoder`: the mirror image — linear, 4×4 transposed convolutions of stride 2
  (cropped to the exact sizes), a 3×3 convolution to logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

MAX_SIDE = 4  # stride-2 convolutions until the feature map is at most this many pixels on a side


class _Crop(nn.Module):
    """Keep the top-left h × w pixels (undoes the rounding up of stride-2 convolutions)."""

    def __init__(self, h: int, w: int):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : self.h, : self.w]


def conv_sizes(h: int, w: int) -> list[tuple[int, int]]:
    """Feature-map sizes: the input, then after each stride-2 convolution (⌈h/2⌉) until ≤ 4 a side."""
    sizes = [(h, w)]
    while max(sizes[-1]) > MAX_SIDE:
        a, b = sizes[-1]
        sizes.append(((a + 1) // 2, (b + 1) // 2))
    return sizes


def _channel(channels: tuple[int, ...], i: int) -> int:
    return channels[min(i, len(channels) - 1)]


def build_conv_encoder(input_shape: tuple[int, int, int], out_features: int,
                       channels: tuple[int, ...] = (32, 64, 128)) -> nn.Sequential:
    """(n, C, H, W) → (n, out_features): conv 3×3 → [stride-2 conv 3×3]·k → linear."""
    c, h, w = input_shape
    sizes = conv_sizes(h, w)
    layers: list[nn.Module] = [nn.Conv2d(c, channels[0], 3, padding=1), nn.SiLU()]
    for i in range(1, len(sizes)):
        layers += [nn.Conv2d(_channel(channels, i - 1), _channel(channels, i), 3, stride=2, padding=1),
                   nn.SiLU()]
    hk, wk = sizes[-1]
    layers += [nn.Flatten(), nn.Linear(_channel(channels, len(sizes) - 1) * hk * wk, out_features)]
    return nn.Sequential(*layers)


def build_conv_decoder(latent_dim: int, input_shape: tuple[int, int, int],
                       channels: tuple[int, ...] = (32, 64, 128)) -> nn.Sequential:
    """(n, m) → logits (n, C, H, W): linear → [transposed conv 4×4 stride 2, cropped]·k → conv 3×3.
    Apply a sigmoid to get pixel values."""
    c, h, w = input_shape
    sizes = conv_sizes(h, w)
    k = len(sizes) - 1
    hk, wk = sizes[-1]
    c_last = _channel(channels, k)
    layers: list[nn.Module] = [nn.Linear(latent_dim, c_last * hk * wk), nn.SiLU(),
                               nn.Unflatten(1, (c_last, hk, wk))]
    for i in range(k, 0, -1):
        layers.append(nn.ConvTranspose2d(_channel(channels, i), _channel(channels, i - 1), 4, stride=2,
                                         padding=1))
        th, tw = sizes[i - 1]
        a, b = sizes[i]
        if (2 * a, 2 * b) != (th, tw):
            layers.append(_Crop(th, tw))
        layers.append(nn.SiLU())
    layers.append(nn.Conv2d(channels[0], c, 3, padding=1))
    return nn.Sequential(*layers)


def build_mlp(d_in: int, d_out: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """Linear → SiLU → … → linear through the hidden widths."""
    layers: list[nn.Module] = []
    d = d_in
    for width in hidden:
        layers += [nn.Linear(d, width), nn.SiLU()]
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def seeded_build(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """Run `build()` (weight initialisation) under `seed`, leaving torch's global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


__all__ = ["MAX_SIDE", "build_conv_decoder", "build_conv_encoder", "build_mlp", "conv_sizes", "seeded_build"]
