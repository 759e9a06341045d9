"""IDX files and Fashion-MNIST from them (the suite writes its own small files; it never needs the
Debian package)."""

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brenier.datasets import as_images, fashion_mnist, load_idx_images, read_idx, write_idx
from brenier.datasets import idx as idx_module
from brenier.validation import BrenierError


def small_mnist(folder: Path, n: int = 40, split: str = "train", gz: bool = True, seed: int = 0):
    """A tiny MNIST-style pair: n images 28×28 uint8 (two blobs, class = which one) and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.uint8)
    yy, xx = np.mgrid[:28, :28]
    images = np.zeros((n, 28, 28), np.uint8)
    for k, c in enumerate(labels):
        cx, cy = (8, 8) if c == 0 else (19, 19)
        cx, cy = cx + rng.integers(-2, 3), cy + rng.integers(-2, 3)
        images[k] = (255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 18.0)).astype(np.uint8)
    prefix = "train" if split == "train" else "t10k"
    end = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{end}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{end}", labels)
    return images, labels


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, suffix, dtype):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    if dtype == np.uint8:
        a = np.abs(a).astype(np.uint8)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, a)
    b = read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")


def test_header_is_the_published_format(tmp_path):
    write_idx(tmp_path / "x", np.zeros((3, 2), np.uint8))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 2]) and raw[4:12] == bytes([0, 0, 0, 3, 0, 0, 0, 2])
    assert len(raw) == 12 + 6


def test_truncated_foreign_and_damaged_files_are_clear_errors(tmp_path):
    write_idx(tmp_path / "ok", np.zeros((4, 5, 5), np.uint8))
    raw = (tmp_path / "ok").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-7])
    with pytest.raises(BrenierError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "long").write_bytes(raw + b"\0")
    with pytest.raises(BrenierError, match="longer than its header"):
        read_idx(tmp_path / "long")
    (tmp_path / "head").write_bytes(raw[:9])
    with pytest.raises(BrenierError, match="header"):
        read_idx(tmp_path / "head")
    (tmp_path / "short.gz").write_bytes(gzip.compress(raw[:-7]))
    with pytest.raises(BrenierError, match="truncated"):
        read_idx(tmp_path / "short.gz")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(BrenierError, match="gzip"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(BrenierError, match="not an IDX file"):
        read_idx(tmp_path / "png")
    (tmp_path / "code").write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(BrenierError, match="type code"):
        read_idx(tmp_path / "code")
    with pytest.raises(BrenierError, match="no such file"):
        read_idx(tmp_path / "missing")
    with pytest.raises(BrenierError, match="array"):
        write_idx(tmp_path / "bad", np.zeros(3, np.complex64))


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_style_folder(tmp_path, gz):
    images, labels = small_mnist(tmp_path, gz=gz)
    data = load_idx_images(tmp_path)
    assert data.images.shape == (40, 1, 28, 28) and data.images.dtype == np.float32
    assert np.allclose(data.images[:, 0] * 255, images) and np.array_equal(data.labels, labels)
    assert data.value_range == (0.0, 1.0)
    again = as_images(str(tmp_path))  # a folder of IDX files is read as its training split
    assert np.array_equal(again.images, data.images)
    single = as_images(str(next(tmp_path.glob("train-images*"))))
    assert np.array_equal(single.images, data.images) and single.labels is None
    with pytest.raises(BrenierError, match="t10k-images"):
        load_idx_images(tmp_path, "test")


def test_labels_that_do_not_match_are_refused(tmp_path):
    small_mnist(tmp_path, n=40)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(39, np.uint8))
    with pytest.raises(BrenierError, match="39"):
        load_idx_images(tmp_path)


def test_fashion_mnist_search_order_and_missing_error(tmp_path, monkeypatch):
    monkeypatch.setattr(idx_module, "SYSTEM_DIR", tmp_path / "no-system-copy")
    monkeypatch.delenv("BRENIER_DATA", raising=False)
    with pytest.raises(BrenierError) as err:
        fashion_mnist("test", data_dir=tmp_path / "nowhere")
    msg = str(err.value)
    assert "dataset-fashion-mnist" in msg and "nowhere" in msg and "no-system-copy" in msg
    home = tmp_path / "data"
    small_mnist(home / "fashion-mnist", n=12, split="test")
    monkeypatch.setenv("BRENIER_DATA", str(home))
    data = fashion_mnist("test")
    assert data.images.shape == (12, 1, 28, 28) and data.name == "fashion-mnist-test"
    explicit = tmp_path / "mine"
    small_mnist(explicit, n=7, split="test", seed=1)
    assert len(fashion_mnist("test", data_dir=explicit).images) == 7  # data_dir comes first
    with pytest.raises(BrenierError, match="split"):
        fashion_mnist("valid")


def test_cli_fits_fashion_mnist_and_an_idx_folder(tmp_path):
    home = tmp_path / "data"
    small_mnist(home / "fashion-mnist", n=48)
    env = {"BRENIER_DATA": str(home), "PATH": str(Path(sys.executable).parent)}
    brenier = str(Path(sys.executable).parent / "brenier")
    for data, out in (("fashion-mnist", "m1"), (str(home / "fashion-mnist"), "m2")):
        run = subprocess.run([brenier, "fit", data, "--out", str(tmp_path / out), "--epochs", "2",
                              "--latent-dim", "2", "--max-targets", "40"],
                             capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        assert (tmp_path / out / "aeot.json").exists()
    run = subprocess.run([brenier, "fit", str(tmp_path / "data"), "--out", str(tmp_path / "m3")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode != 0 and len(run.stderr.strip().splitlines()) == 1


def test_cli_evaluates_against_the_test_split_of_an_idx_folder(tmp_path, monkeypatch):
    """`brenier evaluate --reference FOLDER:test`: scored against held-out images, named in the
    evaluation file and the report; a reference that is not one is one clear error."""
    import json

    from typer.testing import CliRunner

    from brenier.cli import app

    runner = CliRunner()
    monkeypatch.setenv("BRENIER_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "mnist"
    small_mnist(folder, n=60)
    small_mnist(folder, n=30, split="test", seed=3)
    out = tmp_path / "model"
    res = runner.invoke(app, ["fit", str(folder), "--out", str(out), "--epochs", "3", "--latent-dim", "2"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["evaluate", str(out), "-n", "40", "--reference", f"{folder}:test"])
    assert res.exit_code == 0, res.output
    stored = json.loads((out / "evaluation.json").read_text())
    assert stored["reference"] == "mnist-test"
    assert stored["methods"][0] == "brenier"
    assert {"autoencoder reconstructions", "data (training images)"} <= set(stored["results"])
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert "held-out reference images (mnist-test)" in (out / "report.html").read_text()
    res = runner.invoke(app, ["evaluate", str(out), "--reference", f"{tmp_path}:test"])
    assert res.exit_code != 0 and "--reference" in str(res.exception)
