"""One generator interface (`brenier.generators.base.Generator`): `fit(data)` returns the generator,
`sample(n, seed=None)` draws n samples shaped like the data; `generate` stays a name of `sample`."""

import inspect

import numpy as np
import pytest

from brenier import AEOT
from brenier.generators.base import Generator
from brenier.models import DDPM, GAN, VAE, WGANGP, AEGaussian, LatentDDPM, PixelDDPM

VECTORS = {GAN: {"steps": 2, "batch_size": 8}, WGANGP: {"steps": 2, "batch_size": 8, "n_critic": 1},
           DDPM: {"steps": 2, "timesteps": 10, "batch_size": 8}}
IMAGES = {VAE: {"latent_dim": 2, "epochs": 1}, AEGaussian: {"latent_dim": 2, "ae_epochs": 1},
          LatentDDPM: {"latent_dim": 2, "ae_epochs": 1, "steps": 2, "timesteps": 10},
          PixelDDPM: {"steps": 2, "timesteps": 10},
          AEOT: {"latent_dim": 2, "epochs": 1, "max_iter": 2}}


@pytest.mark.parametrize("cls", [*VECTORS, *IMAGES], ids=lambda c: c.__name__)
def test_every_generator_has_fit_and_sample(cls):
    assert isinstance(cls(), Generator)
    fit = list(inspect.signature(cls.fit).parameters.values())[1:]
    assert fit[0].name in ("data", "images") and all(p.default is not p.empty for p in fit[1:])
    sample = inspect.signature(cls.sample).parameters
    assert list(sample)[1:3] == ["n", "seed"] and sample["seed"].default is None


@pytest.mark.parametrize("cls", VECTORS, ids=lambda c: c.__name__)
def test_vector_generators_fit_and_sample(cls):
    x = np.random.default_rng(0).standard_normal((64, 2))
    model = cls(**VECTORS[cls])
    assert model.fit(x) is model
    assert model.sample(5).shape == (5, 2)
    assert cls.generate is cls.sample  # the verb they had before
    np.testing.assert_array_equal(model.sample(5, seed=1), model.generate(5, seed=1))


@pytest.mark.parametrize("cls", IMAGES, ids=lambda c: c.__name__)
def test_image_generators_fit_and_sample(cls):
    x = np.random.default_rng(0).random((20, 1, 8, 8)).astype(np.float32)
    model = cls(**IMAGES[cls])
    assert model.fit(x) is model
    out = model.sample(3, seed=1)
    assert out.shape == (3, 1, 8, 8) and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out, model.sample(3, seed=1))
