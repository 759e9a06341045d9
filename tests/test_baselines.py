"""Baseline generators: WGAN-GP and DDPM share fit/generate, are seeded and learn simple data."""

import numpy as np
import pytest
import torch

from brenier.metrics import sliced_wasserstein
from brenier.models import DDPM, WGANGP
from brenier.validation import BrenierError


def gaussian(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)) * [0.5, 0.2] + [3.0, -2.0]


def test_ddpm_learns_a_gaussian_with_both_samplers():
    x = gaussian()
    model = DDPM(steps=600, width=64, depth=2, timesteps=200, ddim_steps=20, seed=0).fit(x)
    assert len(model.history_) == 600 and np.mean(model.history_[-50:]) < np.mean(model.history_[:50])
    for sampler in ("ddim", "ddpm"):
        g = model.generate(2000, seed=1, sampler=sampler)
        assert g.shape == (2000, 2)
        np.testing.assert_allclose(g.mean(0), [3.0, -2.0], atol=0.15)
        np.testing.assert_allclose(g.std(0), [0.5, 0.2], rtol=0.35)


def test_wgan_gp_gets_closer_to_the_data():
    x = gaussian()
    kw = {"n_critic": 3, "width": 64, "depth": 2, "lr": 1e-3, "seed": 0}
    untrained = WGANGP(steps=1, **kw).fit(x).generate(2000, seed=1)
    model = WGANGP(steps=400, **kw).fit(x)
    g = model.generate(2000, seed=1)
    assert g.shape == (2000, 2) and len(model.history_) == 400
    assert sliced_wasserstein(g, x) < 0.75 * sliced_wasserstein(untrained, x)


@pytest.mark.parametrize("cls", [WGANGP, DDPM])
def test_seeded_and_reproducible(cls):
    x = gaussian(500)
    kw = {"steps": 20, "width": 16, "depth": 1}
    a = cls(seed=3, **kw).fit(x).generate(50, seed=4)
    b = cls(seed=3, **kw).fit(x).generate(50, seed=4)
    np.testing.assert_array_equal(a, b)
    c = cls(seed=3, **kw).fit(x).generate(50, seed=5)
    assert not np.allclose(a, c)
    state = torch.random.get_rng_state()
    cls(seed=9, **kw).fit(x)
    assert torch.equal(state, torch.random.get_rng_state())  # global torch RNG untouched


@pytest.mark.parametrize("cls", [WGANGP, DDPM])
def test_user_errors(cls):
    with pytest.raises(BrenierError, match="not fitted"):
        cls().generate(5)
    with pytest.raises(BrenierError, match="data"):
        cls(steps=1).fit(np.ones((10, 2)))
    with pytest.raises(BrenierError, match="steps"):
        cls(steps=0).fit(gaussian(50))
    with pytest.raises(BrenierError, match="data"):
        cls(steps=1).fit(np.zeros(5))


def test_ddpm_sampler_choice_is_checked():
    model = DDPM(steps=2, width=8, depth=1, timesteps=10).fit(gaussian(50))
    with pytest.raises(BrenierError, match="sampler"):
        model.generate(5, sampler="euler")
    with pytest.raises(BrenierError, match="beta_end"):
        DDPM(steps=1, beta_end=2.0).fit(gaussian(50))
