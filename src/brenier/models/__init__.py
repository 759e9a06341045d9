"""Generators with a common `fit(data)` / `generate(n, seed)` interface."""

from .baselines import DDPM, WGANGP

__all__ = ["DDPM", "WGANGP"]
