"""IDX files (the format of MNIST, Fashion-MNIST, KMNIST, EMNIST), raw or gzip-compressed, and the
Fashion-MNIST data set read from them.

An IDX file is a magic number — two zero bytes, a type code, the number of dimensions k — then k
big-endian uint32 sizes, then the values, big-endian, in C order.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..io import atomic_path
from ..validation import BrenierError, check_choice
from .image_data import ImageData, check_image_array, check_image_labels

TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
         0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MAX_DIMS = 8
SPLITS = {"train": "train", "test": "t10k"}
FASHION_FOLDER = "fashion-mnist"
SYSTEM_DIR = Path("/usr/share/datasets") / FASHION_FOLDER
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot")


def _raw_bytes(path: Path, name: str) -> bytes:
    if not path.is_file():
        raise BrenierError(f"{name}: no such file: {path}")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise BrenierError(f"{name}: {path} is a damaged or truncated gzip file ({exc})") from None
    return data


def read_idx(path: str | os.PathLike, name: str = "path") -> np.ndarray:
    """The array stored in an IDX file (raw or .gz), in native byte order."""
    path = Path(path)
    data = _raw_bytes(path, name)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise BrenierError(f"{name}: {path} is not an IDX file (it does not start with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in TYPES:
        raise BrenierError(f"{name}: {path} has an unknown IDX type code 0x{code:02x}")
    if not 1 <= ndim <= MAX_DIMS:
        raise BrenierError(f"{name}: {path} declares {ndim} dimensions (expected 1 to {MAX_DIMS})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise BrenierError(f"{name}: {path} is truncated inside its header")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, 4))
    dtype = TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise BrenierError(f"{name}: {path} is {what}: shape {shape} of {dtype.name} needs {expected} bytes "
                           f"of data, found {found}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip-compressed when the name ends in .gz), atomically."""
    arr = np.asarray(array)
    codes = {t.newbyteorder("="): c for c, t in TYPES.items()}
    native = arr.dtype.newbyteorder("=")
    if native not in codes:
        raise BrenierError(f"array: IDX stores uint8, int8, int16, int32, float32 or float64, "
                           f"got {arr.dtype}")
    if not 1 <= arr.ndim <= MAX_DIMS:
        raise BrenierError(f"array: IDX stores 1 to {MAX_DIMS} dimensions, got {arr.ndim}")
    code = codes[native]
    blob = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    blob += np.ascontiguousarray(arr, TYPES[code]).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        blob = gzip.compress(blob, mtime=0)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(blob)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def is_idx_folder(folder: Path) -> bool:
    """Whether `folder` holds an MNIST-style pair of IDX image files."""
    return any(_find(folder, f"{p}-images-idx3-ubyte") is not None for p in SPLITS.values())


def load_idx_images(folder: str | os.PathLike, split: str = "train", name: str = "path") -> ImageData:
    """Images (n, 1, H, W) in [0, 1] and labels from an MNIST-style folder:
    `{train,t10k}-images-idx3-ubyte[.gz]` and `{train,t10k}-labels-idx1-ubyte[.gz]`."""
    check_choice(split, "split", tuple(SPLITS))
    folder = Path(folder)
    prefix = SPLITS[split]
    img_path = _find(folder, f"{prefix}-images-idx3-ubyte")
    if img_path is None:
        raise BrenierError(f"{name}: {folder} has no {prefix}-images-idx3-ubyte[.gz]")
    raw = read_idx(img_path, name)
    if raw.ndim != 3 or raw.dtype != np.uint8:
        raise BrenierError(f"{name}: {img_path} holds {raw.dtype} of shape {raw.shape}; expected uint8 "
                           f"images (n, H, W)")
    images, value_range = check_image_array(raw, f"{name} ({img_path.name})")
    lab_path = _find(folder, f"{prefix}-labels-idx1-ubyte")
    labels = None if lab_path is None else check_image_labels(read_idx(lab_path, name), len(images),
                                                                 f"{name} ({lab_path.name})")
    return ImageData(images, labels, f"{folder.name}-{split}", value_range, None)


def fashion_mnist(split: str = "train", data_dir: str | os.PathLike | None = None) -> ImageData:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 training or 10,000 test images, 28×28 grey, 10 classes.

    Looked for in `data_dir`, then `$BRENIER_DATA/fashion-mnist`, then /usr/share/datasets/fashion-mnist
    (Debian's package `dataset-fashion-mnist`). Nothing is downloaded.
    """
    check_choice(split, "split", tuple(SPLITS))
    tried = []
    if data_dir is not None:
        tried.append(Path(data_dir))
    if os.environ.get("BRENIER_DATA"):
        tried.append(Path(os.environ["BRENIER_DATA"]) / FASHION_FOLDER)
    tried.append(SYSTEM_DIR)
    for folder in tried:
        if _find(folder, f"{SPLITS[split]}-images-idx3-ubyte") is not None:
            data = load_idx_images(folder, split, "data_dir")
            return data._replace(name=f"fashion-mnist-{split}")
    raise BrenierError(
        f"data_dir: Fashion-MNIST ({SPLITS[split]}-images-idx3-ubyte[.gz]) not found in "
        f"{', '.join(str(p) for p in tried)}; install Debian's package dataset-fashion-mnist "
        f"(apt-get install dataset-fashion-mnist) or pass data_dir / set BRENIER_DATA")
