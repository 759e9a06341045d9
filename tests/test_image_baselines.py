"""Image baselines (VAE, AE + Gaussian, latent DDPM, pixel DDPM): shapes, range, seeding, AE reuse."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from brenier.generators.image_baselines import PIXEL_DEFAULTS
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


# ---- the U-Net path of PixelDDPM ----------------------------------------------------------------

TINY_UNET = {"arch": "unet", "steps": 6, "timesteps": 20, "width": 8, "batch_size": 16, "ddim_steps": 5}


@pytest.fixture(scope="module")
def stripes():
    """64 synthetic 16 × 16 images: a bright horizontal or vertical bar at a random place."""
    rng = np.random.default_rng(0)
    x = np.zeros((64, 1, 16, 16), np.float32)
    for i in range(64):
        k = rng.integers(2, 14)
        if i % 2:
            x[i, 0, k - 1:k + 2, :] = 1.0
        else:
            x[i, 0, :, k - 1:k + 2] = 1.0
    return x


def test_unet_shapes_and_time_conditioning():
    from brenier.generators.unet import UNet

    for shape, n_res in [((1, 28, 28), 3), ((3, 16, 12), 2), ((1, 8, 8), 2), ((3, 5, 7), 1)]:
        torch.manual_seed(0)
        net = UNet(shape[0], shape[1:], (8, 16, 16))
        assert len(net.sizes) == n_res
        x = torch.randn(4, *shape)
        s = torch.full((4,), 0.3)
        assert torch.equal(net(x, s), torch.zeros_like(x))  # the output convolution starts at zero
        torch.nn.init.normal_(net.out.weight, std=0.1)
        out = net(x, s)
        assert out.shape == x.shape and torch.isfinite(out).all()
        assert not torch.allclose(out, net(x, torch.full((4,), 0.8)), atol=1e-5)  # t is used
        # per-sample: each image only depends on its own time
        mixed = net(x, torch.tensor([0.3, 0.8, 0.3, 0.8]))
        torch.testing.assert_close(mixed[0], out[0])
        torch.testing.assert_close(mixed[1], net(x, torch.full((4,), 0.8))[1])


def test_pixel_ddpm_picks_the_architecture_by_image_size(digits, stripes):
    assert PixelDDPM().resolve_arch((1, 8, 8)) == "mlp"
    assert PixelDDPM().resolve_arch((1, 16, 16)) == "unet"
    assert PixelDDPM().resolve_arch((3, 15, 32)) == "mlp"
    assert PixelDDPM(arch="mlp").resolve_arch((1, 28, 28)) == "mlp"
    assert PixelDDPM(arch="unet").resolve_arch((1, 8, 8)) == "unet"
    small = PixelDDPM(seed=0, **SMALL_DDPM).fit(digits[:40])
    assert small.arch_ == "mlp" and small.settings_["sampler"] == "ddpm"
    big = PixelDDPM(steps=3, width=8, timesteps=20, batch_size=8, seed=0).fit(stripes[:20])
    assert big.arch_ == "unet"
    assert big.settings_ == {**PIXEL_DEFAULTS["unet"], "steps": 3, "width": 8, "batch_size": 8}
    assert big.sample(3, seed=0).shape == (3, 1, 16, 16)


def test_unet_sampling_is_seeded(stripes):
    state = torch.random.get_rng_state()
    model = PixelDDPM(seed=2, sample_batch=4, **TINY_UNET).fit(stripes)
    assert torch.equal(state, torch.random.get_rng_state())
    a = model.sample(10, seed=3)  # three batches of at most 4
    assert a.shape == (10, 1, 16, 16) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, model.sample(10, seed=3))
    np.testing.assert_array_equal(a[:4], model.sample(4, seed=3))  # batch i is seeded by (seed, i)
    assert not np.allclose(a, model.sample(10, seed=4))
    again = PixelDDPM(seed=2, sample_batch=4, **TINY_UNET).fit(stripes)
    np.testing.assert_array_equal(a, again.sample(10, seed=3))  # fit is seeded too
    ancestral = PixelDDPM(seed=2, sampler="ddpm", **TINY_UNET).fit(stripes)
    b = ancestral.sample(3, seed=1)
    assert b.shape == (3, 1, 16, 16)
    np.testing.assert_array_equal(b, ancestral.sample(3, seed=1))


def test_short_unet_training_reduces_the_loss(stripes):
    model = PixelDDPM(arch="unet", steps=60, timesteps=100, width=8, batch_size=16, lr=3e-3, seed=0)
    model.fit(stripes)
    loss = np.array(model.ddpm_.history_)
    assert len(loss) == 60 and np.isfinite(loss).all()
    assert loss[-15:].mean() < 0.5 * loss[:10].mean()  # seeds 0-2: 0.87 -> 0.21-0.27


def test_unet_progress_bars_run(stripes, capsys):
    model = PixelDDPM(seed=0, progress=True, **TINY_UNET).fit(stripes[:20])
    model.sample(3, seed=0)
    out = capsys.readouterr().out
    assert "U-Net" in out and "sampling" in out


def test_bad_pixel_ddpm_arguments(stripes):
    with pytest.raises(BrenierError, match="arch: expected one of"):
        PixelDDPM(arch="bogus").fit(stripes)
    with pytest.raises(BrenierError, match="arch"):
        PixelDDPM(arch="bogus").resolve_arch((1, 16, 16))
    with pytest.raises(BrenierError, match="sample_batch"):
        PixelDDPM(sample_batch=0, **TINY_UNET).fit(stripes)
    with pytest.raises(BrenierError, match="width"):
        PixelDDPM(**{**TINY_UNET, "width": 0}).fit(stripes)
    with pytest.raises(BrenierError, match="sampler"):
        PixelDDPM(**{**TINY_UNET, "sampler": "euler"}).fit(stripes)
    with pytest.raises(BrenierError, match="not fitted"):
        PixelDDPM(**TINY_UNET).sample(2)


def test_vae_step_budget(digits):
    vae = VAE(latent_dim=3, epochs=5, batch_size=32, max_steps=4, seed=0).fit(digits[:100])  # 90: 3 batches
    assert vae.max_steps_ == 4 and len(vae.history_["train"]) == 2 and vae.channels_ == (16, 32, 64)
    small = VAE(latent_dim=3, epochs=2, seed=0).fit(digits[:100])
    assert small.max_steps_ == 4688 and small.channels_ == (32, 64, 128)
    with pytest.raises(BrenierError, match="max_steps"):
        VAE(max_steps=0).fit(digits)
