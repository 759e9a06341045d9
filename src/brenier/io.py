"""Files: atomic writes, safetensors + JSON checkpoints (never pickle), array readers."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .validation import BrenierError

FORMAT_KEY = "brenier_format"
VERSION_KEY = "brenier_version"
META_KEY = "brenier_meta"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, np.ndarray], fmt: str, version: int, meta: dict
) -> None:
    """Write numpy arrays to a safetensors file; `meta` is stored as JSON in its header."""
    from safetensors.numpy import save_file

    header = {FORMAT_KEY: fmt, VERSION_KEY: str(version), META_KEY: json.dumps(meta, default=_json_default)}
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(arrays, str(tmp), metadata=header)


def _sniff(path: Path, name: str) -> bytes:
    if not path.exists():
        raise BrenierError(f"{name}: file not found: {path}")
    if path.is_dir():
        raise BrenierError(f"{name}: expected a file, got a directory: {path}")
    with open(path, "rb") as f:
        return f.read(16)


def _looks_like_pickle(head: bytes) -> bool:
    return head[:1] == b"\x80" and len(head) > 1 and head[1] in range(2, 6)


def load_tensors(
    path: str | os.PathLike, fmt: str, max_version: int, name: str = "path"
) -> tuple[dict[str, np.ndarray], dict, int]:
    """Read a file written by `save_tensors`; foreign, corrupt or pickled files get a clear error."""
    from safetensors import safe_open

    path = Path(path)
    head = _sniff(path, name)
    if _looks_like_pickle(head) or head[:2] == b"PK":
        raise BrenierError(
            f"{name}: {path} is a pickle/zip file (e.g. torch.save); brenier only reads safetensors"
        )
    try:
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise BrenierError(f"{name}: {path} is not a readable safetensors file ({exc})") from None
    if header.get(FORMAT_KEY) != fmt:
        found = header.get(FORMAT_KEY, "no brenier format tag")
        raise BrenierError(f"{name}: {path} is not a {fmt} file (found: {found})")
    try:
        version = int(header[VERSION_KEY])
        meta = json.loads(header[META_KEY])
    except (KeyError, ValueError) as exc:
        raise BrenierError(f"{name}: {path} has a corrupt brenier header ({exc})") from None
    if version > max_version:
        raise BrenierError(
            f"{name}: {path} was written by a newer brenier (format version {version}; "
            f"this version reads up to {max_version})"
        )
    return tensors, meta, version


@contextlib.contextmanager
def read_errors(path: Path, name: str):
    """Turn any failure while reading `path` into one BrenierError naming the argument and file
    (pickled content gets its own message: brenier never unpickles)."""
    try:
        yield
    except BrenierError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise BrenierError(f"{name}: {path} holds pickled objects; brenier never unpickles") from None
        raise BrenierError(f"{name}: {path} could not be read ({exc})") from None
    except Exception as exc:
        raise BrenierError(f"{name}: {path} could not be read ({type(exc).__name__}: {exc})") from None


def load_array(path: str | os.PathLike, name: str = "path", key: str | None = None) -> np.ndarray:
    """Read a numeric array from .npy, .npz (first or `key` entry), .csv/.txt; never unpickles."""
    path = Path(path)
    head = _sniff(path, name)
    suffix = path.suffix.lower()
    with read_errors(path, name):
        if suffix == ".npy" or head.startswith(b"\x93NUMPY"):
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if not z.files:
                    raise BrenierError(f"{name}: {path} holds no arrays")
                k = key if key is not None else z.files[0]
                if k not in z.files:
                    raise BrenierError(f"{name}: {path} has no array {k!r} (has {z.files})")
                return z[k]
        if suffix in {".csv", ".txt", ".tsv"}:
            delim = "," if suffix == ".csv" else None
            return np.loadtxt(path, delimiter=delim, ndmin=2)
    if _looks_like_pickle(head):
        raise BrenierError(f"{name}: {path} is a pickle file; brenier never unpickles")
    raise BrenierError(f"{name}: unsupported file type {suffix!r} for {path} (use .npy, .npz or .csv)")
