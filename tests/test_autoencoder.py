"""Autoencoder: conv for any image size, MLP for vectors; learns digits, seeded, early stopping,
state round trip and clear errors."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from brenier.manifold import Autoencoder
from brenier.validation import BrenierError


@pytest.fixture(scope="module")
def digits():
    return (load_digits().data[:600] / 16).reshape(-1, 1, 8, 8).astype(np.float32)


@pytest.fixture(scope="module")
def digits_ae(digits):
    return Autoencoder(10, epochs=40, patience=None, lr=2e-3, seed=0).fit(digits)


def test_reconstruction_beats_the_mean_image(digits, digits_ae):
    ae = digits_ae
    mean_image_error = float(((digits - digits.mean(axis=0)) ** 2).mean())
    assert ae.kind_ == "conv" and ae.latent_dim_ == 10 and ae.input_shape_ == (1, 8, 8)
    assert ae.reconstruction_error_ < mean_image_error / 3
    recon = ae.reconstruct(digits)
    assert recon.shape == digits.shape and recon.min() >= 0 and recon.max() <= 1
    assert float(((recon - digits) ** 2).mean()) < mean_image_error / 3
    assert len(ae.history_["train"]) == len(ae.history_["val"]) == 40
    assert ae.history_["val"][-1] < ae.history_["val"][0]
    assert ae.reconstruction_error_ == min(ae.history_["val"])


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 10, 12), (3, 7, 5), (1, 1, 1)])
def test_conv_shapes_for_any_image_size(shape):
    x = np.random.default_rng(0).random((12, *shape)).astype(np.float32)
    ae = Autoencoder(3, epochs=2, seed=0).fit(x)
    z = ae.encode(x)
    assert z.shape == (12, 3) and z.dtype == np.float64
    y = ae.decode(z)
    assert y.shape == (12, *shape) and y.dtype == np.float32
    assert 0 <= y.min() and y.max() <= 1


def test_three_dimensional_input_is_read_as_one_channel():
    x = np.random.default_rng(0).random((10, 6, 6))
    ae = Autoencoder(2, epochs=1).fit(x)
    assert ae.input_shape_ == (1, 6, 6) and ae.decode(ae.encode(x)).shape == (10, 1, 6, 6)


def test_mlp_on_vectors_learns_a_plane():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2)) @ rng.normal(size=(2, 6)) * 5 + 3  # a plane in R^6, off the origin
    ae = Autoencoder(2, epochs=150, seed=0).fit(x)
    assert ae.kind_ == "mlp" and ae.input_shape_ == (6,)
    z = ae.encode(x)
    assert z.shape == (400, 2)
    out = ae.decode(z)
    assert out.shape == (400, 6) and out.dtype == np.float64
    # error in data units, far below the variance of the data
    assert ae.reconstruction_error_ < 0.05 * x.var(axis=0).mean()
    assert np.mean((out - x) ** 2) < 0.05 * x.var(axis=0).mean()


def test_auto_latent_dim_uses_the_intrinsic_dimension():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(500, 3))
    x = np.tanh(t @ rng.normal(size=(3, 20)))  # a 3-manifold in R^20
    ae = Autoencoder("auto", epochs=1).fit(x)
    assert isinstance(ae.latent_dim_, int) and 2 <= ae.latent_dim_ <= 32
    assert 2 <= ae.latent_estimate_ <= 4 and ae.latent_dim_ == int(np.ceil(ae.latent_estimate_))
    assert Autoencoder(4, epochs=1).fit(x).latent_estimate_ is None


def test_auto_latent_dim_is_clipped():
    x = np.random.default_rng(0).normal(size=(300, 1)) * [[1.0, 2.0]]  # a line: dimension 1 -> 2
    assert Autoencoder("auto", epochs=1).fit(x).latent_dim_ == 2


def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 4, 4)).astype(np.float32)  # noise: the validation loss soon stops improving
    ae = Autoencoder(8, epochs=400, patience=5, lr=3e-3, seed=0).fit(x)
    n_epochs = len(ae.history_["val"])
    assert ae.stopped_early_ and n_epochs < 400
    assert ae.best_epoch_ == n_epochs - 1 - 5
    assert ae.reconstruction_error_ == pytest.approx(min(ae.history_["val"]))
    # the restored weights are the best ones: their validation error is the minimum, not the last
    assert ae.reconstruction_error_ < ae.history_["val"][-1]


def test_seeded_determinism_and_untouched_global_rng(digits):
    x = digits[:120]
    state = torch.random.get_rng_state()
    a = Autoencoder(4, epochs=3, seed=5).fit(x)
    assert torch.equal(state, torch.random.get_rng_state())
    b = Autoencoder(4, epochs=3, seed=5).fit(x)
    c = Autoencoder(4, epochs=3, seed=6).fit(x)
    np.testing.assert_array_equal(a.encode(x), b.encode(x))
    assert a.history_ == b.history_
    assert not np.allclose(a.encode(x), c.encode(x))
    np.testing.assert_array_equal(a.encode(x), a.encode(x))  # the encoder is deterministic


def test_state_round_trip_is_identical(digits, digits_ae, tmp_path):
    import json

    tensors, config = digits_ae.state()
    assert all(isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in tensors.values())
    config = json.loads(json.dumps(config))  # JSON-serialisable
    back = Autoencoder.from_state(tensors, config)
    z = digits_ae.encode(digits)
    np.testing.assert_array_equal(back.encode(digits), z)
    np.testing.assert_array_equal(back.decode(z), digits_ae.decode(z))
    assert back.latent_dim_ == 10 and back.input_shape_ == (1, 8, 8)
    assert back.reconstruction_error_ == digits_ae.reconstruction_error_
    digits_ae.save(tmp_path / "ae.safetensors")
    loaded = Autoencoder.load(tmp_path / "ae.safetensors")
    np.testing.assert_array_equal(loaded.decode(z), digits_ae.decode(z))


def test_mlp_state_round_trip_keeps_the_standardisation():
    x = np.random.default_rng(0).normal(size=(60, 5)) * 10 + 4
    ae = Autoencoder(2, epochs=2).fit(x)
    back = Autoencoder.from_state(*ae.state())
    np.testing.assert_array_equal(back.decode(back.encode(x)), ae.decode(ae.encode(x)))


def test_bad_state_is_refused(digits_ae):
    tensors, config = digits_ae.state()
    with pytest.raises(BrenierError, match="config"):
        Autoencoder.from_state(tensors, {**config, "format": "something.else"})
    with pytest.raises(BrenierError, match="version"):
        Autoencoder.from_state(tensors, {**config, "version": 99})
    with pytest.raises(BrenierError, match="tensors"):
        Autoencoder.from_state({k: v for k, v in list(tensors.items())[1:]}, config)
    with pytest.raises(BrenierError, match="tensors"):
        Autoencoder.from_state(tensors, {**config, "latent_dim": 11})


def test_latent_noise_trains_the_decoder_on_perturbed_codes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2)) @ rng.normal(size=(2, 6)) * 5 + 3
    plain = Autoencoder(2, epochs=60, seed=0).fit(x)
    noisy = Autoencoder(2, epochs=60, seed=0, latent_noise=0.1).fit(x)
    best = noisy.best_epoch_
    # training loss sees the noise, the validation loss (and the reported error) does not
    assert noisy.history_["train"][best] > 3 * noisy.history_["val"][best]
    assert plain.history_["train"][plain.best_epoch_] < 3 * plain.history_["val"][plain.best_epoch_]
    assert noisy.reconstruction_error_ > plain.reconstruction_error_
    tensors, config = noisy.state()
    assert config["params"]["latent_noise"] == 0.1
    again = Autoencoder.from_state(tensors, config)
    np.testing.assert_array_equal(again.decode(noisy.encode(x)), noisy.decode(noisy.encode(x)))


def test_bad_inputs():
    good = np.random.default_rng(0).random((20, 1, 6, 6)).astype(np.float32)
    nan = good.copy()
    nan[3, 0, 2, 2] = np.nan
    cases = [
        (Autoencoder(2), nan, "x: contains NaN"),
        (Autoencoder(2), np.zeros((0, 1, 6, 6)), "x: expected at least"),
        (Autoencoder(2), np.zeros(5), "x: expected images"),
        (Autoencoder(2), np.zeros((2, 1, 1, 4, 4)), "x: expected images"),
        (Autoencoder(2, val_fraction=0.1), good[:1], "x: expected at least 2"),
        (Autoencoder(2), good * 3, r"\[0, 1\]"),
        (Autoencoder(2), np.zeros((4, 8, 8, 3)), "channels-last"),
        (Autoencoder(2, kind="mlp"), good, r"x: expected a 2-D array of shape \(n, d\)"),
        (Autoencoder(2, kind="conv"), np.zeros((10, 3)), "x: expected images"),
        (Autoencoder(-1), good, "latent_dim: expected a positive int or 'auto', got -1"),
        (Autoencoder("big"), good, "latent_dim"),
        (Autoencoder(2, kind="rnn"), good, "kind"),
        (Autoencoder(2, epochs=0), good, "epochs"),
        (Autoencoder(2, lr=-1), good, "lr"),
        (Autoencoder(2, val_fraction=1.0), good, "val_fraction"),
        (Autoencoder(2, patience=0), good, "patience"),
        (Autoencoder(2, seed=-3), good, "seed"),
        (Autoencoder(2, device="nonsense"), good, "device"),
        (Autoencoder(2, channels=()), good, "channels"),
        (Autoencoder(2, latent_noise=-0.1), good, "latent_noise: expected a finite number >= 0"),
        (Autoencoder(2, latent_noise=float("nan")), good, "latent_noise"),
    ]
    for ae, x, msg in cases:
        with pytest.raises(BrenierError, match=msg):
            ae.fit(x)
    with pytest.raises(BrenierError, match="not fitted"):
        Autoencoder(2).encode(good)
    ae = Autoencoder(2, epochs=1).fit(good)
    with pytest.raises(BrenierError, match="z: expected dimension d=2"):
        ae.decode(np.zeros((3, 5)))
    with pytest.raises(BrenierError, match="z: contains NaN"):
        ae.decode(np.full((3, 2), np.nan))
    with pytest.raises(BrenierError, match=r"x: expected images of shape \(n, 1, 6, 6\)"):
        ae.encode(np.zeros((3, 1, 8, 8)))
    with pytest.raises(BrenierError, match=r"x: expected a 2-D array of shape \(n, d\)"):
        Autoencoder(2, epochs=1).fit(np.zeros((10, 3)) + np.arange(3)).encode(good)


def test_no_validation_split_monitors_the_training_loss():
    x = np.random.default_rng(0).random((8, 1, 4, 4)).astype(np.float32)
    ae = Autoencoder(2, epochs=3, val_fraction=0.0).fit(x)
    assert ae.history_["val"] == ae.history_["train"]


def test_progress_bar_runs(capsys):
    x = np.random.default_rng(0).random((16, 1, 4, 4)).astype(np.float32)
    quiet = Autoencoder(2, epochs=3, seed=0).fit(x)
    loud = Autoencoder(2, epochs=3, seed=0, progress=True).fit(x)
    assert "autoencoder" in capsys.readouterr().out
    np.testing.assert_array_equal(quiet.encode(x), loud.encode(x))  # the bar changes nothing else


def test_step_budget_ends_training_inside_an_epoch():
    x = np.random.default_rng(0).random((100, 1, 6, 6)).astype(np.float32)  # 90 train: 6 batches of 16
    ae = Autoencoder(2, epochs=10, batch_size=16, max_steps=8, channels=(8, 16), seed=0).fit(x)
    assert ae.max_steps_ == 8 and ae.steps_ == 8
    assert len(ae.history_["train"]) == 2  # one full epoch and a partial one of 2 batches
    assert not ae.stopped_early_
    full = Autoencoder(2, epochs=3, batch_size=16, max_steps=None, channels=(8, 16), seed=0).fit(x)
    assert full.max_steps_ is None and full.steps_ == 18 and len(full.history_["train"]) == 3
    # the first epoch is the same either way
    assert full.history_["train"][0] == ae.history_["train"][0]
    tensors, config = ae.state()
    back = Autoencoder.from_state(tensors, config)
    assert back.max_steps == 8 and back.max_steps_ == 8 and back.steps_ == 8


def test_auto_budget_and_channels_leave_small_data_as_before(digits):
    x = digits[:200]
    auto = Autoencoder(3, epochs=4, seed=1).fit(x)
    old = Autoencoder(3, epochs=4, seed=1, max_steps=None, channels=(32, 64, 128)).fit(x)
    assert auto.channels_ == (32, 64, 128) and auto.max_steps_ == 4688  # ⌈600,000 / 128⌉, not reached
    np.testing.assert_array_equal(auto.encode(x), old.encode(x))
    assert auto.history_ == old.history_
    # the budget and the cheaper channels apply when the budget cuts `epochs` short
    assert Autoencoder().training_plan(1617) == (4688, (32, 64, 128))  # the digits: 300 epochs first
    assert Autoencoder().training_plan(54_000) == (4688, (16, 32, 64))  # Fashion-MNIST
    assert Autoencoder(epochs=5).training_plan(54_000) == (4688, (32, 64, 128))
    assert Autoencoder(max_steps=None).training_plan(54_000) == (None, (32, 64, 128))
    assert Autoencoder(batch_size=256).training_plan(54_000) == (2344, (16, 32, 64))
    assert Autoencoder(channels=(8, 8)).training_plan(54_000) == (4688, (8, 8))


def test_bad_step_budget():
    good = np.random.default_rng(0).random((20, 1, 6, 6)).astype(np.float32)
    for bad in (0, -3, 2.5, "many", True):
        with pytest.raises(BrenierError, match="max_steps: expected a positive int, 'auto' or None"):
            Autoencoder(2, max_steps=bad).fit(good)
    with pytest.raises(BrenierError, match="channels"):
        Autoencoder(2, channels="wide").fit(good)


def test_version_1_state_reads_as_trained_without_a_budget(digits_ae):
    tensors, config = digits_ae.state()
    params = {k: v for k, v in config["params"].items() if k != "max_steps"}
    old = {k: v for k, v in config.items() if k not in ("max_steps", "steps")}
    back = Autoencoder.from_state(tensors, {**old, "version": 1, "params": params})
    assert back.max_steps is None and back.max_steps_ is None
    blank = np.zeros((1, 1, 8, 8))
    np.testing.assert_array_equal(back.encode(blank), digits_ae.encode(blank))
