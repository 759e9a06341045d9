"""Image data: built-in digits and shapes, folders of PNG/JPEG, .npy/.npz files, and their error messages."""

import pickle

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import brenier.datasets as datasets
from brenier.datasets import ImageData, as_images, digits, load_images, shapes
from brenier.datasets import images as images_module
from brenier.validation import BrenierError

# ----------------------------------------------------------------------------- built-in sets


def test_digits_shape_range_labels():
    d = digits()
    assert d.images.shape == (1797, 1, 8, 8) and d.images.dtype == np.float32
    assert d.images.min() == 0.0 and d.images.max() == 1.0
    assert d.labels.dtype == np.int64 and d.labels.shape == (1797,)
    assert set(np.unique(d.labels)) == set(range(10))
    assert d.name == "digits" and d.value_range == (0.0, 1.0) and d.factors is None
    # images are the sklearn pixels / 16: the pixel values are multiples of 1/16
    np.testing.assert_allclose(d.images * 16, np.round(d.images * 16), atol=1e-5)


def test_reexport_is_the_image_generator():
    assert datasets.shapes is images_module.shapes
    assert datasets.disc(10, seed=0).shape == (10, 2)  # the planar shapes module is still reachable


def test_shapes_deterministic_by_seed():
    a, b, c = shapes(300, 32, seed=3), shapes(300, 32, seed=3), shapes(300, 32, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    for key in ("shape", "scale", "rotation", "x", "y"):
        np.testing.assert_array_equal(a.factors[key], b.factors[key])
        assert a.factors[key].shape == (300,)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (300, 1, 32, 32) and a.images.dtype == np.float32
    assert a.images.min() >= 0.0 and a.images.max() <= 1.0 and a.value_range == (0.0, 1.0)
    np.testing.assert_array_equal(a.labels, a.factors["shape"])
    assert set(np.unique(a.labels)) == {0, 1, 2} and a.name == "shapes"
    # anti-aliased: edge pixels take intermediate values
    assert ((a.images > 0.05) & (a.images < 0.95)).mean() > 0.01
    big = shapes(20, 64, seed=0)
    assert big.images.shape == (20, 1, 64, 64)


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_ink_follows_scale_and_shape(size):
    d = shapes(600, size, seed=1)
    ink = d.images.sum(axis=(1, 2, 3))
    radius = d.factors["scale"] * images_module.RADIUS * size
    area = ink / radius**2  # ink = (area of the unit shape) · R², whatever the rotation and position
    expected = {0: 4 * 0.7**2, 1: np.pi * 0.5, 2: 3.6597 / 1.27**2}
    for kind, value in expected.items():
        sel = d.factors["shape"] == kind
        assert abs(np.median(area[sel]) / value - 1) < 0.03, kind
        assert area[sel].std() / area[sel].mean() < 0.04, kind
    # a bigger scale has more ink, shape by shape
    for kind in range(3):
        sel = d.factors["shape"] == kind
        small = ink[sel & (d.factors["scale"] == d.factors["scale"].min())]
        large = ink[sel & (d.factors["scale"] == d.factors["scale"].max())]
        assert small.max() < large.min()
    # nothing is cut off by the border: shapes at the outermost positions keep their full ink
    edge = np.isin(d.factors["x"], images_module.POSITIONS[[0, -1]]) & (d.factors["scale"] == 1.0)
    assert edge.sum() >= 5
    for i in np.flatnonzero(edge):
        assert abs(area[i] / expected[int(d.factors["shape"][i])] - 1) < 0.05


def test_shapes_position_and_rotation_match_factors():
    size = 32
    d = shapes(600, size, seed=2)
    img = d.images[:, 0].astype(np.float64)
    cols = np.arange(size) + 0.5
    mass = img.sum(axis=(1, 2))
    cx = (img.sum(axis=1) * cols).sum(axis=1) / mass
    cy = (img.sum(axis=2) * cols).sum(axis=1) / mass
    symmetric = d.factors["shape"] != 2  # square and ellipse: centroid = centre
    np.testing.assert_allclose(cx[symmetric], d.factors["x"][symmetric] * size, atol=0.15)
    np.testing.assert_allclose(cy[symmetric], d.factors["y"][symmetric] * size, atol=0.15)
    # ellipse orientation from second moments (y up), compared modulo π
    ell = np.flatnonzero(d.factors["shape"] == 1)
    u = cols[None, None, :] - cx[ell, None, None]
    v = -(cols[None, :, None] - cy[ell, None, None])
    w = img[ell]
    mu20, mu02, mu11 = (w * u * u).sum((1, 2)), (w * v * v).sum((1, 2)), (w * u * v).sum((1, 2))
    angle = 0.5 * np.arctan2(2 * mu11, mu20 - mu02)
    diff = np.angle(np.exp(2j * (angle - d.factors["rotation"][ell]))) / 2
    assert np.degrees(np.abs(diff)).max() < 3.0


def test_shapes_bad_arguments():
    cases = [({"n": 0}, "n"), ({"size": 4}, "size"), ({"size": 32.0}, "size"), ({"seed": "a"}, "seed")]
    for kwargs, word in cases:
        with pytest.raises(BrenierError, match=word):
            shapes(**{"n": 5, **kwargs})


# ----------------------------------------------------------------------------- folders


def _write_pngs(folder, arrays, names=None, suffix=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"img_{i:03d}{suffix}" for i in range(len(arrays))]
    for name, arr in zip(names, arrays, strict=True):
        iio.imwrite(folder / name, arr)
    return names


def test_png_round_trip_grey(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(7, 12, 10), dtype=np.uint8)
    names = [f"{c}.png" for c in "gfedcba"]  # written in reverse name order; read back sorted by name
    _write_pngs(tmp_path / "greys", pixels, names)
    d = load_images(tmp_path / "greys")
    assert d.images.shape == (7, 1, 12, 10) and d.images.dtype == np.float32
    np.testing.assert_allclose(d.images[:, 0], pixels[::-1] / 255.0, atol=1e-6)
    assert d.labels is None and d.value_range == (0.0, 1.0) and d.name == "greys"


def test_rgb_folder_and_opaque_alpha(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(4, 6, 5, 3), dtype=np.uint8)
    _write_pngs(tmp_path / "rgb", rgb)
    d = load_images(str(tmp_path / "rgb"))
    assert d.images.shape == (4, 3, 6, 5)
    np.testing.assert_allclose(d.images, rgb.transpose(0, 3, 1, 2) / 255.0, atol=1e-6)
    rgba = np.concatenate([rgb, np.full((4, 6, 5, 1), 255, np.uint8)], axis=3)
    _write_pngs(tmp_path / "rgba", rgba)
    np.testing.assert_array_equal(load_images(tmp_path / "rgba").images, d.images)


def test_sixteen_bit_png_and_jpeg(tmp_path):
    deep = (np.arange(2 * 8 * 8).reshape(2, 8, 8) * 1000).astype(np.uint16)
    _write_pngs(tmp_path / "deep", deep)
    np.testing.assert_allclose(load_images(tmp_path / "deep").images[:, 0], deep / 65535.0, atol=1e-6)
    flat = np.full((3, 8, 8, 3), 120, np.uint8)
    _write_pngs(tmp_path / "jpg", flat, suffix=".jpg")
    d = load_images(tmp_path / "jpg")
    assert d.images.shape == (3, 3, 8, 8)
    assert np.abs(d.images - 120 / 255).max() < 3 / 255  # lossy, but a flat colour survives


def test_subfolder_labels(tmp_path):
    rng = np.random.default_rng(2)
    _write_pngs(tmp_path / "set" / "zebra", rng.integers(0, 256, (2, 8, 8), dtype=np.uint8))
    _write_pngs(tmp_path / "set" / "ant", np.zeros((3, 8, 8), np.uint8))
    (tmp_path / "set" / ".hidden").mkdir()
    d = load_images(tmp_path / "set")
    np.testing.assert_array_equal(d.labels, [0, 0, 0, 1, 1])  # "ant" < "zebra"
    assert d.labels.dtype == np.int64
    assert d.images[:3].max() == 0.0 and d.images[3:].max() > 0.5


# ----------------------------------------------------------------------------- array files


def test_npy_and_npz(tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, (5, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "a.npy", raw)
    d = load_images(tmp_path / "a.npy")
    assert d.images.shape == (5, 1, 6, 6) and d.value_range == (0.0, 1.0) and d.name == "a"
    np.testing.assert_allclose(d.images[:, 0], raw / 255.0, atol=1e-6)

    unit = rng.random((4, 3, 5, 5))
    np.save(tmp_path / "unit.npy", unit)
    d = load_images(tmp_path / "unit.npy")
    assert d.value_range == (0.0, 1.0) and d.images.shape == (4, 3, 5, 5)
    np.testing.assert_allclose(d.images, unit, atol=1e-6)

    wide = rng.normal(size=(4, 5, 5)) * 10
    labels = np.array([3, 1, 0, 1])
    np.savez(tmp_path / "wide.npz", images=wide, labels=labels)
    d = load_images(tmp_path / "wide.npz")
    np.testing.assert_allclose(d.images[:, 0], wide, rtol=1e-6)  # floats keep their own range
    assert d.value_range == pytest.approx((wide.min(), wide.max()), rel=1e-6)
    np.testing.assert_array_equal(d.labels, labels)
    np.savez(tmp_path / "nolabels.npz", images=raw)
    assert load_images(tmp_path / "nolabels.npz").labels is None


# ----------------------------------------------------------------------------- as_images


def test_as_images_arrays_tensors_names_paths(tmp_path):
    x = np.random.default_rng(4).random((6, 9, 7))
    d = as_images(x)
    assert isinstance(d, ImageData) and d.images.shape == (6, 1, 9, 7) and d.images.dtype == np.float32
    assert d.name == "images" and d.labels is None
    t = torch.from_numpy(x).float()[:, None]
    np.testing.assert_allclose(as_images(t).images, d.images, atol=1e-7)
    assert as_images(t.half()).images.dtype == np.float32
    as_uint8 = as_images(torch.full((2, 3, 4, 4), 255, dtype=torch.uint8))
    assert as_uint8.images.max() == 1.0 and as_uint8.value_range == (0.0, 1.0)
    assert as_images("digits").name == "digits"
    again = as_images(d)
    np.testing.assert_array_equal(again.images, d.images)
    np.save(tmp_path / "x.npy", x)
    assert as_images(tmp_path / "x.npy").images.shape == (6, 1, 9, 7)
    assert as_images(str(tmp_path / "x.npy")).name == "x"


# ----------------------------------------------------------------------------- bad input


def _raises(match, fn, *args):
    with pytest.raises(BrenierError, match=match) as info:
        fn(*args)
    return str(info.value)


def test_bad_folders(tmp_path):
    _raises(r"path: no such file or folder", load_images, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    _raises(r"path: folder .*empty.* is empty", load_images, tmp_path / "empty")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    _raises(r"path: .*no image files.*readme.txt", load_images, tmp_path / "notes")

    _write_pngs(tmp_path / "corrupt", np.zeros((2, 8, 8), np.uint8))
    (tmp_path / "corrupt" / "img_001.png").write_bytes(b"not a png at all")
    _raises(r"path: could not read image file img_001.png: not a readable PNG/JPEG", load_images,
            tmp_path / "corrupt")

    _write_pngs(tmp_path / "sizes", [np.zeros((8, 8), np.uint8), np.zeros((9, 8), np.uint8)])
    msg = _raises(r"path: images have different sizes", load_images, tmp_path / "sizes")
    assert "img_000.png is 8×8" in msg and "img_001.png is 9×8" in msg

    _write_pngs(tmp_path / "channels", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8)])
    _raises(r"path: images have different channel counts: img_000.png is grey but img_001.png is RGB",
            load_images, tmp_path / "channels")

    alpha = np.zeros((1, 8, 8, 4), np.uint8)
    _write_pngs(tmp_path / "alpha", alpha)
    _raises(r"path: image file img_000.png has transparent pixels", load_images, tmp_path / "alpha")

    _write_pngs(tmp_path / "mixed", np.zeros((1, 8, 8), np.uint8))
    _write_pngs(tmp_path / "mixed" / "cls", np.zeros((1, 8, 8), np.uint8))
    _raises(r"path: .*mixes image files", load_images, tmp_path / "mixed")

    (tmp_path / "data.csv").write_text("1,2\n")
    _raises(r"path: unsupported file type '.csv'", load_images, tmp_path / "data.csv")


def test_bad_array_files(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    _raises(r"path: .*obj.npy holds pickled objects", load_images, tmp_path / "obj.npy")
    np.savez(tmp_path / "obj.npz", images=np.array([None, 1], dtype=object))
    _raises(r"path: .*obj.npz holds pickled objects", load_images, tmp_path / "obj.npz")
    (tmp_path / "raw.npy").write_bytes(pickle.dumps({"images": [1, 2, 3]}))
    _raises(r"path: .*raw.npy holds pickled objects", load_images, tmp_path / "raw.npy")
    torch.save({"images": torch.zeros(2, 4, 4)}, tmp_path / "model.npy")
    _raises(r"path: .*model.npy is a pickle archive", load_images, tmp_path / "model.npy")
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    _raises(r"path: .*broken.npy could not be read", load_images, tmp_path / "broken.npy")
    np.savez(tmp_path / "keys.npz", pictures=np.zeros((2, 4, 4)))
    _raises(r"path: .*keys.npz has no array 'images'.*pictures", load_images, tmp_path / "keys.npz")
    np.savez(tmp_path / "labels.npz", images=np.zeros((3, 4, 4)), labels=np.arange(2))
    _raises(r"labels: expected one label per image \(3\), got 2", load_images, tmp_path / "labels.npz")
    np.savez(tmp_path / "frac.npz", images=np.zeros((2, 4, 4)), labels=np.array([0.5, 1.0]))
    _raises(r"labels: expected integer class ids", load_images, tmp_path / "frac.npz")
    np.save(tmp_path / "flat.npy", np.zeros((3, 16)))
    _raises(r"path \(flat.npy\): expected an array of shape .*got shape \(3, 16\)", load_images,
            tmp_path / "flat.npy")


def test_bad_arrays():
    good = np.zeros((3, 4, 4), np.float32)
    _raises(r"images: expected an array of shape \(n, H, W\).*\(3, 16\).*flattened", as_images,
            np.zeros((3, 16)))
    _raises(r"images: expected an array of shape", as_images, np.zeros((1, 1, 1, 4, 4)))
    nan = good.copy()
    nan[2, 1, 1] = np.nan
    _raises(r"images: contains NaN \(first in image 2\)", as_images, nan)
    inf = good.copy()
    inf[1, 0, 0] = np.inf
    _raises(r"images: contains inf .*\(first in image 1\)", as_images, inf)
    _raises(r"images: contains no images \(n = 0\)", as_images, np.zeros((0, 4, 4)))
    _raises(r"images: expected 1 \(grey\) or 3 \(RGB\) channels.*\(3, 2, 4, 4\)", as_images,
            np.zeros((3, 2, 4, 4)))
    _raises(r"channels-last", as_images, np.zeros((3, 8, 8, 3)))
    _raises(r"images: expected real pixel values", as_images, np.array([[["a"]]]))
    _raises(r"data: expected an array", as_images, None, "data")
    _raises(r"data: 'nowhere' is neither a built-in data set", as_images, "nowhere", "data")
    _raises(r"images: contains NaN", as_images, torch.full((2, 1, 3, 3), float("nan")))
    _raises(r"every pixel equals 5.0", as_images, np.full((2, 3, 3), 5.0))
    bad_labels = ImageData(good[:, None], np.arange(2))
    _raises(r"images.labels: expected one label per image \(3\), got 2", as_images, bad_labels)
