"""Baseline generators: GAN, WGAN-GP and DDPM share fit/generate, are seeded and learn simple data."""

import numpy as np
import pytest
import torch

from brenier.metrics import mode_metrics, sliced_wasserstein
from brenier.models import DDPM, GAN, WGANGP
from brenier.validation import BrenierError


def gaussian(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)) * [0.5, 0.2] + [3.0, -2.0]


def test_ddpm_learns_a_gaussian_with_both_samplers():
    x = gaussian()
    model = DDPM(steps=600, width=64, depth=2, timesteps=200, ddim_steps=20, seed=0).fit(x)
    assert len(model.history_) == 600 and np.mean(model.history_[-50:]) < np.mean(model.history_[:50])
    for sampler in ("ddim", "ddpm"):
        g = model.sample(2000, seed=1, sampler=sampler)
        assert g.shape == (2000, 2)
        np.testing.assert_allclose(g.mean(0), [3.0, -2.0], atol=0.15)
        np.testing.assert_allclose(g.std(0), [0.5, 0.2], rtol=0.35)


def test_wgan_gp_gets_closer_to_the_data():
    x = gaussian()
    kw = {"n_critic": 3, "width": 64, "depth": 2, "lr": 1e-3, "seed": 0}
    untrained = WGANGP(steps=1, **kw).fit(x).sample(2000, seed=1)
    model = WGANGP(steps=400, **kw).fit(x)
    g = model.sample(2000, seed=1)
    assert g.shape == (2000, 2) and len(model.history_) == 400
    assert sliced_wasserstein(g, x) < 0.75 * sliced_wasserstein(untrained, x)


def two_modes(n=4000, seed=0, sigma=0.05):
    rng = np.random.default_rng(seed)
    centers = np.array([[-2.0, 1.0], [2.0, 1.0]])
    return centers[rng.integers(0, 2, n)] + sigma * rng.normal(size=(n, 2)), centers, sigma


def test_gan_learns_two_sharp_modes():
    x, centers, sigma = two_modes()
    kw = {"width": 64, "disc_width": 64, "seed": 0}
    untrained = mode_metrics(GAN(steps=1, **kw).fit(x).sample(2000, seed=1), centers, sigma)
    model = GAN(steps=3000, **kw).fit(x)
    g = model.sample(2000, seed=1)
    m = mode_metrics(g, centers, sigma)
    assert g.shape == (2000, 2) and len(model.history_) == 3000
    assert untrained["hq"] < 5
    assert m["modes"] == 2 and m["hq"] > 60 and m["reverse_kl"] < 0.1, m
    # batch norm samples with its running statistics, so even a single sample is well defined
    assert model.sample(1, seed=2).shape == (1, 2)


def test_gan_lr_is_constant_then_decays_linearly_to_zero():
    model = GAN(steps=10, lr_decay=0.5)
    model._steps = 10
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched, lrs = model._lr_schedule(opt, 0.5), []
    for _ in range(11):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lrs, [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0], atol=1e-12)
    sched0 = model._lr_schedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), 0.0)
    assert sched0.lr_lambdas[0](10) == 1.0  # lr_decay=0: constant, also past the last step


def test_gan_lr_decay_and_minimax_loss_change_training():
    x, centers, sigma = two_modes(500)
    kw = {"steps": 30, "width": 16, "depth": 1, "disc_width": 16, "disc_depth": 1, "seed": 0}
    a = GAN(lr_decay=0.5, **kw).fit(x)
    b = GAN(lr_decay=0.0, **kw).fit(x)
    assert not np.allclose(a.sample(20, seed=1), b.sample(20, seed=1))
    c = GAN(loss="minimax", **kw).fit(x)
    assert len(c.history_) == 30 and np.isfinite(c.history_).all()
    assert not np.allclose(c.sample(20, seed=1), GAN(**kw).fit(x).sample(20, seed=1))


def test_gan_arguments_are_checked():
    x = gaussian(50)
    for kw, match in [({"loss": "hinge"}, "loss"), ({"lr_decay": 1.5}, "lr_decay"),
                      ({"betas": (0.5,)}, "betas"), ({"betas": (0.5, 1.0)}, "betas"),
                      ({"spread": 0}, "spread"), ({"disc_width": 0}, "disc_width"),
                      ({"latent_dim": 0}, "latent_dim"), ({"batch_size": 1}, "batch_size")]:
        with pytest.raises(BrenierError, match=match):
            GAN(steps=1, **kw).fit(x)


def test_spread_only_rescales_internally():
    x = gaussian(500)
    model = GAN(steps=1, width=8, depth=1, disc_width=8, disc_depth=1, spread=4.0).fit(x)
    rms = np.sqrt(np.mean(np.sum((x - x.mean(0)) ** 2, axis=1)) / 2)
    assert model.scale_ == pytest.approx(rms / 4.0)
    assert model.sample(10).shape == (10, 2)


@pytest.mark.parametrize("cls", [GAN, WGANGP, DDPM])
def test_seeded_and_reproducible(cls):
    x = gaussian(500)
    kw = {"steps": 20, "width": 16, "depth": 1}
    a = cls(seed=3, **kw).fit(x).sample(50, seed=4)
    b = cls(seed=3, **kw).fit(x).sample(50, seed=4)
    np.testing.assert_array_equal(a, b)
    c = cls(seed=3, **kw).fit(x).sample(50, seed=5)
    assert not np.allclose(a, c)
    state = torch.random.get_rng_state()
    cls(seed=9, **kw).fit(x)
    assert torch.equal(state, torch.random.get_rng_state())  # global torch RNG untouched


@pytest.mark.parametrize("cls", [GAN, WGANGP, DDPM])
def test_user_errors(cls):
    with pytest.raises(BrenierError, match="not fitted"):
        cls().sample(5)
    with pytest.raises(BrenierError, match="data"):
        cls(steps=1).fit(np.ones((10, 2)))
    with pytest.raises(BrenierError, match="steps"):
        cls(steps=0).fit(gaussian(50))
    with pytest.raises(BrenierError, match="data"):
        cls(steps=1).fit(np.zeros(5))


def test_ddpm_sampler_choice_is_checked():
    model = DDPM(steps=2, width=8, depth=1, timesteps=10).fit(gaussian(50))
    with pytest.raises(BrenierError, match="sampler"):
        model.sample(5, sampler="euler")
    with pytest.raises(BrenierError, match="beta_end"):
        DDPM(steps=1, beta_end=2.0).fit(gaussian(50))
