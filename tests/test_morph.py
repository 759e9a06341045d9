"""Monge–Ampère transport between images (brenier.transport_images) and `brenier morph`."""

import sys

import numpy as np
import pytest

from brenier.morph import transport_images
from brenier.validation import BrenierError

N = 24
YY, XX = np.mgrid[0:N, 0:N]
DISC = ((XX - 11.5) ** 2 + (YY - 11.5) ** 2 < 8**2).astype(float)
RING = DISC * ((XX - 11.5) ** 2 + (YY - 11.5) ** 2 > 4**2)  # non-convex, empty centre
BLOBS = (((XX - 5) ** 2 + (YY - 6) ** 2 < 4**2) | ((XX - 17) ** 2 + (YY - 16) ** 2 < 5**2)) * 2.0


@pytest.mark.parametrize("a,b", [(DISC, BLOBS), (BLOBS, RING)], ids=["disc-blobs", "blobs-ring"])
def test_images_with_empty_regions(a, b):
    r = transport_images(a, b, frames=5, tol=1e-9)
    assert r.converged
    assert r.frames.shape == (5, N, N)
    assert np.allclose(r.frames.sum(axis=(1, 2)), 1.0)
    # t = 1: every cell has landed on its pixel centre of B
    assert np.allclose(r.frames[-1], b / b.sum(), atol=1e-12)
    # t = 0: image A (sub-pixel splats blur by at most one pixel)
    a_n = a / a.sum()
    assert np.abs(r.frames[0] - a_n).sum() < 0.6
    assert r.frames[0][a == 0].sum() < 0.25
    # cells have the target masses: each target receives ν_i of A's mass
    from brenier.ot.cells.exact import exact_cell_masses

    m = exact_cell_masses(r.source, r.targets, r.heights)
    assert np.max(np.abs(m - r.weights) / r.weights) <= 1e-9


def test_map_and_point_cloud_targets():
    rng = np.random.default_rng(0)
    pts = rng.random((50, 2)) * 0.8 + 0.1
    r = transport_images(DISC, targets=pts, frames=3)
    assert r.converged
    x = np.array([[0.5, 0.5], [0.3, 0.6]])
    t = r.transport(x)
    assert t.shape == (2, 2) and all(any(np.allclose(p, q) for q in pts) for p in t)
    assert np.array_equal(r.targets[r.assign(x)], t)
    with pytest.raises(BrenierError, match="outside the domain"):
        r.transport(np.array([[1.5, 0.5]]))
    with pytest.raises(BrenierError, match="targets: points outside the domain"):
        transport_images(DISC, targets=pts + 1.0)


def test_bad_images_name_the_argument():
    with pytest.raises(BrenierError, match="img_a.*>= 0"):
        transport_images(DISC - 0.5, RING)
    with pytest.raises(BrenierError, match="img_b.*all pixel values are zero"):
        transport_images(DISC, np.zeros_like(DISC))
    with pytest.raises(BrenierError, match="img_a"):
        transport_images(np.ones((3, 4, 5)), RING)
    with pytest.raises(BrenierError, match="exactly one"):
        transport_images(DISC)
    with pytest.raises(BrenierError, match="frames"):
        transport_images(DISC, RING, frames=1)


def test_cli_writes_a_gif(tmp_path, monkeypatch):
    import imageio.v3 as iio
    from typer.testing import CliRunner

    from brenier.cli import app, main

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    iio.imwrite(a, (DISC * 255).astype(np.uint8))
    iio.imwrite(b, (BLOBS * 120).astype(np.uint8))
    out = tmp_path / "morph.gif"
    res = CliRunner().invoke(app, ["morph", str(a), str(b), "--frames", "4", "--out", str(out),
                                   "--size", "16"])
    assert res.exit_code == 0, res.output
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 4 + 2 and frames.shape[1:3] == (16, 16)  # forward and back
    monkeypatch.setattr(sys, "argv", ["brenier", "morph", str(a), str(tmp_path / "nope.png"),
                                      "--out", str(out)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
