"""Generators with a common `fit(data)` / `generate(n, seed)` interface."""

from .baselines import DDPM, WGANGP
from .image_baselines import VAE, AEGaussian, LatentDDPM, PixelDDPM

__all__ = ["AEGaussian", "DDPM", "LatentDDPM", "PixelDDPM", "VAE", "WGANGP"]
