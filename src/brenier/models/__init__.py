"""Generators with a common `fit(data)` / `generate(n, seed)` interface."""

from .baselines import DDPM, GAN, WGANGP
from .image_baselines import VAE, AEGaussian, LatentDDPM, PixelDDPM

__all__ = ["AEGaussian", "DDPM", "GAN", "LatentDDPM", "PixelDDPM", "VAE", "WGANGP"]
