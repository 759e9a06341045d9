"""Image data sets as float32 arrays (n, C, H, W): built-in digits and shapes, folders and array files.

Every loader returns an `ImageData`; `value_range` = (lo, hi) is the interval the pixels live in, so a
model can map x ↦ (x − lo)/(hi − lo) into [0, 1] and its samples back. Files are never unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..io import read_errors
from ..validation import BrenierError, check_positive_int
from .idx import fashion_mnist, is_idx_folder, load_idx_images, read_idx
from .image_data import ImageData, check_image_array, check_image_labels

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BUILTIN = ("digits", "shapes", "fashion-mnist")

# shapes(): dSprites-like factor grids. A shape of scale s fits in a disc of radius s·RADIUS·size.
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ROTATIONS = np.arange(40) * (2 * np.pi / 40)
RADIUS = 0.25
POSITIONS = np.linspace(RADIUS, 1 - RADIUS, 32)
SUPERSAMPLE = 4


# --------------------------------------------------------------------------- built-in sets


def digits() -> ImageData:
    """scikit-learn's 8×8 handwritten digits: 1797 images (1797, 1, 8, 8) = data/16 ∈ [0, 1], labels 0..9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.data.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    return ImageData(images, bunch.target.astype(np.int64), "digits", (0.0, 1.0), None)


def shapes(n: int = 10_000, size: int = 32, seed: int = 0) -> ImageData:
    """dSprites-like images: shape × scale × rotation × position, anti-aliased, values in [0, 1].

    Factors are drawn uniformly from grids: shape ∈ {0 square, 1 ellipse, 2 heart} (= labels),
    scale ∈ SCALES (0.5..1, 6 steps; the shape fits in a disc of radius scale·RADIUS·size pixels),
    rotation ∈ ROTATIONS (40 angles in [0, 2π), counter-clockwise on screen), and centre x, y ∈ POSITIONS
    (32 steps, as fractions of the width/height; x left → right, y top → bottom). Each pixel's value is
    the fraction of its SUPERSAMPLE² sub-pixel samples inside the shape. Deterministic for a seed.
    """
    n = check_positive_int(n, "n")
    size = check_positive_int(size, "size")
    if size < 8:
        raise BrenierError(f"size: expected at least 8 pixels, got {size}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise BrenierError(f"seed: expected an integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    factors = {
        "shape": rng.integers(0, len(SHAPE_NAMES), n).astype(np.int64),
        "scale": SCALES[rng.integers(0, len(SCALES), n)],
        "rotation": ROTATIONS[rng.integers(0, len(ROTATIONS), n)],
        "x": POSITIONS[rng.integers(0, len(POSITIONS), n)],
        "y": POSITIONS[rng.integers(0, len(POSITIONS), n)],
    }
    images = _render_shapes(factors, size)
    return ImageData(images[:, None], factors["shape"].copy(), "shapes", (0.0, 1.0), factors)


def _inside(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of local points (u, v) (unit = shape radius, v pointing up) in a canonical shape."""
    if kind == 0:  # square, half-side 0.7 (corners at radius 0.99)
        return np.maximum(np.abs(u), np.abs(v)) <= 0.7
    if kind == 1:  # ellipse with semi-axes 1 and 0.5
        return u * u + 4.0 * v * v <= 1.0
    # heart (x² + y² − 1)³ ≤ x² y³, scaled and shifted so that it fits in the unit disc
    x = 1.27 * u
    y = 1.27 * v + 0.25
    r = x * x + y * y - 1.0
    return r * r * r <= x * x * y * y * y


def _render_shapes(factors: dict[str, np.ndarray], size: int, chunk: int = 512) -> np.ndarray:
    """Supersampled rasterisation, vectorised per chunk of images over a patch around each centre."""
    n = len(factors["shape"])
    out = np.zeros((n, size, size), dtype=np.float32)
    radius_max = RADIUS * size * SCALES.max()
    half = int(np.ceil(radius_max)) + 1
    patch = 2 * half  # pixels; covers [centre − R, centre + R] for every scale
    ss = SUPERSAMPLE
    sub = ((np.arange(patch * ss) + 0.5) / ss).astype(np.float32)  # sub-pixel centres inside a patch
    pix = np.arange(patch)
    for kind in range(len(SHAPE_NAMES)):
        members = np.flatnonzero(factors["shape"] == kind)
        for start in range(0, len(members), chunk):
            idx = members[start:start + chunk]
            cx = factors["x"][idx] * size
            cy = factors["y"][idx] * size
            # patch origin, kept inside the image (the shape's disc lies inside the image anyway)
            ox = np.clip(np.floor(cx).astype(int) - half, 0, size - patch)
            oy = np.clip(np.floor(cy).astype(int) - half, 0, size - patch)
            dx = (ox - cx)[:, None].astype(np.float32) + sub  # (m, patch·ss) offsets from the centre
            dy = (cy - oy)[:, None].astype(np.float32) - sub  # upward offsets (rows grow downwards)
            radius = factors["scale"][idx] * RADIUS * size
            cos = (np.cos(factors["rotation"][idx]) / radius).astype(np.float32)[:, None, None]
            sin = (np.sin(factors["rotation"][idx]) / radius).astype(np.float32)[:, None, None]
            # rotate the sample by −θ into the shape's frame: (u, v) = R(−θ)(dx, dy) / radius
            u = cos * dx[:, None, :] + sin * dy[:, :, None]
            v = cos * dy[:, :, None] - sin * dx[:, None, :]
            hit = _inside(kind, u, v).view(np.uint8).reshape(len(idx), patch, ss, patch, ss)
            count = hit.sum(axis=4, dtype=np.uint8).sum(axis=2, dtype=np.uint8)  # ≤ ss² = 16
            cover = count.astype(np.float32) / (ss * ss)
            rows = (oy[:, None] + pix)[:, :, None]
            cols = (ox[:, None] + pix)[:, None, :]
            out[idx[:, None, None], rows, cols] = cover
    return out


# --------------------------------------------------------------------------- validation


def as_images(data: Any, name: str = "images") -> ImageData:
    """Coerce `data` to a validated ImageData.

    `data` may be an ImageData, an array (n, H, W) or (n, C, H, W) with C ∈ {1, 3} (numpy or torch),
    a built-in name ("digits", "shapes", "fashion-mnist": the training split) or a path (folder of
    PNG/JPEG, MNIST-style folder of IDX files, an IDX file, .npy, .npz). `name` is the
    argument name used in error messages and the data set's name for a raw array.
    """
    if isinstance(data, ImageData):
        images, value_range = check_image_array(data.images, f"{name}.images", data.value_range)
        labels = check_image_labels(data.labels, len(images), f"{name}.labels")
        return ImageData(images, labels, data.name, value_range, data.factors)
    if isinstance(data, str) and data in BUILTIN:
        return {"digits": digits, "shapes": shapes, "fashion-mnist": fashion_mnist}[data]()
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise BrenierError(
                f"{name}: {str(data)!r} is neither a built-in data set ({', '.join(BUILTIN)}) "
                f"nor an existing file or folder"
            )
        return _load(path, name)
    images, value_range = check_image_array(data, name)
    return ImageData(images, None, name, value_range, None)


# --------------------------------------------------------------------------- files


def load_images(path: str | os.PathLike) -> ImageData:
    """Read images from a folder of PNG/JPEG files, an MNIST-style folder of IDX files (its
    training split), an IDX file (raw or .gz), or a .npy / .npz array file.

    Folder: files sorted by name; grey stays 1 channel, RGB is 3 channels, an opaque alpha channel is
    dropped (transparent images are refused); 8-bit → /255, 16-bit → /65535, value_range (0, 1). If the
    folder holds only subfolders of images (folder/class_x/*.png), labels are the subfolders' indices in
    sorted order. Arrays: .npy (n, H, W) or (n, C, H, W); .npz with "images" and optional "labels".
    """
    return _load(Path(path), "path")


def _load(path: Path, name: str) -> ImageData:
    if not path.exists():
        raise BrenierError(f"{name}: no such file or folder: {path}")
    if path.is_dir():
        return load_idx_images(path, "train", name) if is_idx_folder(path) else _load_folder(path, name)
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        return _load_array_file(path, name)
    if "idx" in path.name.lower():
        return _load_idx_file(path, name)
    raise BrenierError(
        f"{name}: unsupported file type {suffix or path.name!r} for {path}; give a folder of PNG/JPEG "
        f"images or a .npy/.npz array file"
    )


def _load_idx_file(path: Path, name: str) -> ImageData:
    images, value_range = check_image_array(read_idx(path, name), f"{name} ({path.name})")
    return ImageData(images, None, path.name, value_range, None)


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES


def _load_folder(folder: Path, name: str) -> ImageData:
    entries = _visible(folder)
    if not entries:
        raise BrenierError(f"{name}: folder {folder} is empty")
    files = [p for p in entries if _is_image(p)]
    classes = [d for d in entries if d.is_dir() and any(_is_image(p) for p in _visible(d))]
    if files and classes:
        raise BrenierError(
            f"{name}: folder {folder} mixes image files (e.g. {files[0].name}) with class subfolders "
            f"(e.g. {classes[0].name}/); use one layout"
        )
    labels = None
    if classes:
        groups = [[p for p in _visible(d) if _is_image(p)] for d in classes]
        files = [p for group in groups for p in group]
        labels = np.repeat(np.arange(len(classes), dtype=np.int64), [len(g) for g in groups])
    if not files:
        example = entries[0].name + ("/" if entries[0].is_dir() else "")
        raise BrenierError(
            f"{name}: folder {folder} has no image files ({', '.join(IMAGE_SUFFIXES)}); found e.g. {example}"
        )
    images = [_read_image(p, folder, name) for p in files]
    _check_same_layout(images, files, folder, name)
    stacked = np.stack(images).transpose(0, 3, 1, 2)
    out, value_range = check_image_array(stacked, name, (0.0, 1.0))
    return ImageData(out, labels, folder.name or "images", value_range, None)


def _read_image(path: Path, root: Path, name: str) -> np.ndarray:
    """One image file → float32 (H, W, C) in [0, 1], C ∈ {1, 3}."""
    import imageio.v3 as iio

    rel = path.relative_to(root)
    try:
        img = np.asarray(iio.imread(path, index=0, plugin="pillow"))  # first frame if animated
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BrenierError(
            f"{name}: could not read image file {rel}: not a readable PNG/JPEG ({reason})"
        ) from None
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise BrenierError(f"{name}: image file {rel} has an unsupported pixel layout {img.shape}")
    if img.dtype == np.bool_:
        img = img.astype(np.uint8) * 255
    if img.dtype == np.uint8:
        full = 255.0
    elif img.dtype == np.uint16:
        full = 65535.0
    else:
        raise BrenierError(f"{name}: image file {rel} has unsupported pixel type {img.dtype} (use 8/16 bit)")
    if img.shape[2] in (2, 4):  # grey + alpha or RGBA: drop the alpha channel only if it is opaque
        if (img[:, :, -1] != full).any():
            raise BrenierError(
                f"{name}: image file {rel} has transparent pixels (alpha channel); "
                f"flatten it onto a background first"
            )
        img = img[:, :, :-1]
    return img.astype(np.float32) / np.float32(full)


def _check_same_layout(images: list[np.ndarray], files: list[Path], root: Path, name: str) -> None:
    h0, w0, c0 = images[0].shape
    first = files[0].relative_to(root)
    for img, p in zip(images, files, strict=True):
        h, w, c = img.shape
        if (h, w) != (h0, w0):
            raise BrenierError(
                f"{name}: images have different sizes: {first} is {h0}×{w0} but {p.relative_to(root)} is "
                f"{h}×{w} (H×W); resize them to one size"
            )
        if c != c0:
            kinds = {1: "grey", 3: "RGB"}
            raise BrenierError(
                f"{name}: images have different channel counts: {first} is {kinds[c0]} but "
                f"{p.relative_to(root)} is {kinds[c]}; convert them to one colour mode"
            )


def _load_array_file(path: Path, name: str) -> ImageData:
    """.npy → images; .npz → "images" (+ "labels"). np.load never unpickles (allow_pickle=False)."""
    labels = None
    with read_errors(path, name):
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                if any(k.endswith(".pkl") for k in loaded.files):
                    raise BrenierError(
                        f"{name}: {path} is a pickle archive (e.g. torch.save), not a .npy/.npz array file; "
                        f"brenier never unpickles"
                    )
                if "images" not in loaded.files:
                    raise BrenierError(
                        f"{name}: {path} has no array 'images' (it has {loaded.files or 'no arrays'})"
                    )
                images = loaded["images"]
                labels = loaded["labels"] if "labels" in loaded.files else None
        else:
            images = loaded
    out, value_range = check_image_array(images, f"{name} ({path.name})")
    labels = check_image_labels(labels, len(out), f"{name} ({path.name}) labels")
    return ImageData(out, labels, path.stem, value_range, None)
