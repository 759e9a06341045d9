"""Public facade: the baseline generators (`brenier.generators.baselines`, `image_baselines`), all
with `fit(data)` and `sample(n, seed=None)`. Nothing inside brenier imports this module."""

from ..generators.baselines import DDPM, GAN, WGANGP
from ..generators.image_baselines import VAE, AEGaussian, LatentDDPM, PixelDDPM

__all__ = ["AEGaussian", "DDPM", "GAN", "LatentDDPM", "PixelDDPM", "VAE", "WGANGP"]
