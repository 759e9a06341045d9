"""Generators with one interface (`base.Generator`: `fit(data)`, `sample(n, seed=None)`): AE-OT
(`aeot`) on its autoencoder (`autoencoder`), and the baselines on vectors (`baselines`: GAN,
WGAN-GP, DDPM) and on images (`image_baselines`: VAE, AE + Gaussian, latent and pixel DDPM)."""
