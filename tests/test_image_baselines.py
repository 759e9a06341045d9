"""Image baselines (VAE, AE + Gaussian, latent DDPM, pixel DDPM): shapes, range, seeding, AE reuse."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from brenier.manifold import Autoencoder
from brenier.models import VAE, AEGaussian, LatentDDPM, PixelDDPM
from brenier.validation import BrenierError

SMALL_DDPM = {"steps": 40, "timesteps": 30, "width": 32, "depth": 2, "batch_size": 64}


@pytest.fixture(scope="module")
def digits():
    return (load_digits().data[:240] / 16).reshape(-1, 1, 8, 8).astype(np.float32)


@pytest.fixture(scope="module")
def shared_ae(digits):
    return Autoencoder(6, epochs=15, lr=3e-3, seed=0).fit(digits)


def make(name, ae=None):
    if name == "vae":
        return VAE(latent_dim=4, epochs=3, seed=1)
    if name == "ae_gaussian":
        return AEGaussian(ae, latent_dim=4, ae_epochs=2, seed=1)
    if name == "latent_ddpm":
        return LatentDDPM(ae, latent_dim=4, ae_epochs=2, seed=1, **SMALL_DDPM)
    return PixelDDPM(seed=1, **SMALL_DDPM)


NAMES = ["vae", "ae_gaussian", "latent_ddpm", "pixel_ddpm"]


@pytest.mark.parametrize("name", NAMES)
def test_shape_range_and_seeding(name, digits):
    x = digits[:120]
    state = torch.random.get_rng_state()
    model = make(name).fit(x)
    assert torch.equal(state, torch.random.get_rng_state())  # global torch RNG untouched
    assert model.fit_seconds_ > 0
    a = model.sample(17, seed=3)
    assert a.shape == (17, 1, 8, 8) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1 and a.std() > 0
    np.testing.assert_array_equal(a, model.sample(17, seed=3))
    assert not np.allclose(a, model.sample(17, seed=4))
    np.testing.assert_array_equal(a, make(name).fit(x).sample(17, seed=3))  # fit is seeded too
    if name != "pixel_ddpm" and name != "vae":
        assert model.autoencoder_trained_ and model.autoencoder_.latent_dim_ == 4


@pytest.mark.parametrize("name", ["ae_gaussian", "latent_ddpm"])
def test_a_fitted_autoencoder_is_reused_without_refitting(name, digits, shared_ae):
    before, _ = shared_ae.state()
    seconds = shared_ae.fit_seconds_
    model = make(name, shared_ae).fit(digits)
    assert model.autoencoder_ is shared_ae and not model.autoencoder_trained_
    assert shared_ae.fit_seconds_ == seconds
    after, _ = shared_ae.state()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    s = model.sample(50, seed=0)
    assert s.shape == (50, 1, 8, 8)
    # the samples are decoded codes: re-encoding and decoding them changes little
    assert np.mean((shared_ae.reconstruct(s) - s) ** 2) < 0.5 * np.mean((s - s.mean(0)) ** 2)


def test_an_unfitted_autoencoder_is_fitted_in_place(digits):
    ae = Autoencoder(3, epochs=2)
    model = AEGaussian(ae).fit(digits)
    assert model.autoencoder_ is ae and model.autoencoder_trained_ and ae.latent_dim_ == 3


def test_ae_gaussian_matches_the_moments_of_the_codes(digits, shared_ae):
    model = AEGaussian(shared_ae).fit(digits)
    z = shared_ae.encode(digits)
    np.testing.assert_allclose(model.mean_, z.mean(0), atol=1e-10)
    np.testing.assert_allclose(model.cov_, np.cov(z, rowvar=False), rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(model.factor_ @ model.factor_.T, model.cov_, rtol=1e-6, atol=1e-10)


def test_vae_trains(digits):
    vae = VAE(latent_dim=4, epochs=12, lr=3e-3, seed=0).fit(digits)
    assert vae.history_["val"][-1] < 0.8 * vae.history_["val"][0]
    assert vae.decode(np.zeros((2, 4))).shape == (2, 1, 8, 8)
    mse = VAE(latent_dim=4, epochs=2, reconstruction="mse", seed=0).fit(digits)
    assert mse.sample(3, seed=0).shape == (3, 1, 8, 8)


def test_pixel_ddpm_handles_colour_and_odd_sizes():
    x = np.random.default_rng(0).random((30, 3, 5, 7)).astype(np.float32)
    s = PixelDDPM(seed=0, **SMALL_DDPM).fit(x).sample(4, seed=0)
    assert s.shape == (4, 3, 5, 7) and 0 <= s.min() and s.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs(name, digits):
    with pytest.raises(BrenierError, match="not fitted"):
        make(name).sample(3)
    bad = digits[:20].copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(BrenierError, match="images: contains NaN"):
        make(name).fit(bad)
    with pytest.raises(BrenierError, match="images: expected images"):
        make(name).fit(digits[:20].reshape(20, -1)[:, :, None, None, None])
    with pytest.raises(BrenierError, match=r"images: pixel values must lie in \[0, 1\]"):
        make(name).fit(digits[:20] * 255)
    with pytest.raises(BrenierError, match="images: expected at least 2"):
        make(name).fit(digits[:1])


def test_bad_arguments(digits, shared_ae):
    with pytest.raises(BrenierError, match="n: expected a positive integer"):
        AEGaussian(shared_ae).fit(digits).sample(0)
    with pytest.raises(BrenierError, match="autoencoder: expected"):
        AEGaussian(autoencoder="ae").fit(digits)
    other = Autoencoder(2, epochs=1).fit(np.random.default_rng(0).random((10, 1, 6, 6)))
    with pytest.raises(BrenierError, match=r"autoencoder: fitted on conv input of shape \(1, 6, 6\)"):
        LatentDDPM(other, **SMALL_DDPM).fit(digits)
    with pytest.raises(BrenierError, match="latent_dim"):
        AEGaussian(latent_dim=0).fit(digits)
    with pytest.raises(BrenierError, match="latent_dim"):
        VAE(latent_dim=-2).fit(digits)
    with pytest.raises(BrenierError, match="reconstruction"):
        VAE(reconstruction="laplace").fit(digits)
    with pytest.raises(BrenierError, match="steps"):
        PixelDDPM(steps=0).fit(digits)
    with pytest.raises(BrenierError, match="seed"):
        PixelDDPM(seed=-1, **SMALL_DDPM).fit(digits)
    with pytest.raises(BrenierError, match="seed"):
        PixelDDPM(seed=1, **SMALL_DDPM).fit(digits).sample(2, seed="x")
