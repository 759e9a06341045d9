"""Exact semi-discrete OT (damped Newton on power diagrams) in 2-D and 3-D."""

import numpy as np
import pytest

from brenier import SemiDiscreteOT
from brenier.measures import Gaussian, GridDensity, UniformBall, UniformCube, UniformPolytope
from brenier.ot.cells.exact import exact_cell_masses, exact_centroids, exact_mass_error, source_domain
from brenier.ot.cells.statistics import exact_statistics
from brenier.ot.power import PowerOptions
from brenier.ot.solvers.exact import ExactOptions, solve_exact
from brenier.validation import BrenierError


def check_solution(src, y, w, h, tol=1e-9):
    m = exact_cell_masses(src, y, h)
    assert m.sum() == pytest.approx(1.0, abs=1e-12)
    rel = np.abs(m - w) / w
    assert rel.max() <= tol


@pytest.mark.parametrize("d,n", [(2, 300), (3, 150)])
def test_uniform_cube_converges_to_machine_precision(d, n):
    rng = np.random.default_rng(0)
    y = rng.random((n, d))
    src = UniformCube(d, 0, 1)
    res = solve_exact(src, y, tol=1e-9)
    h, n_iter, converged, hist = res.heights, res.n_iter, res.converged, res.history
    assert converged and n_iter <= 15
    check_solution(src, y, np.full(n, 1 / n), h)
    assert hist[-1]["max_rel"] <= 1e-9 and all(r["detail"]["min_mass"] > 0 for r in hist)
    assert abs(h.mean()) < 1e-12


@pytest.mark.parametrize("d,n", [(2, 3000), (3, 3000)])
def test_linear_solvers_and_flips_give_the_same_heights(d, n):
    """AMG-preconditioned CG (2-D) or Jacobi CG (3-D, above DIRECT_LIMIT_3D) with flipped
    triangulations reach the heights the sparse LU with fresh qhull hulls reaches."""
    rng = np.random.default_rng(5)
    y = rng.random((n, d))
    w = rng.random(n) + 0.5
    w /= w.sum()
    src = UniformCube(d, 0, 1)
    many_cells = ExactOptions(amg_min=1000, direct_limit_3d=1000)  # AMG-CG in 2-D, Jacobi CG in 3-D
    res = solve_exact(src, y, w, tol=1e-9, options=many_cells)
    h1, ok1, hist = res.heights, res.converged, res.history
    assert ok1 and any(r["detail"]["triangulation"] == "flipped" for r in hist)
    check_solution(src, y, w, h1)
    direct = ExactOptions(amg_min=10**9, direct_limit_3d=10**9, flips_only=2.0,
                          power=PowerOptions(flips=False))  # LU, no flips-only trials
    res = solve_exact(src, y, w, tol=1e-9, options=direct)
    h2, ok2 = res.heights, res.converged
    assert ok2
    assert np.abs(h1 - h2).max() < 1e-9 * np.ptp(h1) + 1e-12


def test_one_dimensional_product_reference():
    """Product targets with product weights on the uniform square: the optimal cells are the
    products of 1-D quantile intervals, i.e. cut x_1 at the cumulative weights of the first factor."""
    rng = np.random.default_rng(2)
    ya, yb = np.array([-1.0, 0.0, 2.0]), np.array([-0.5, 0.5, 1.0, 3.0])
    wa, wb = rng.random(3) + 0.5, rng.random(4) + 0.5
    wa, wb = wa / wa.sum(), wb / wb.sum()
    y = np.array([[a, b] for a in ya for b in yb])
    w = np.outer(wa, wb).ravel()
    src = UniformCube(2)  # [−½, ½]²
    res = solve_exact(src, y, w, tol=1e-10)
    h, converged = res.heights, res.converged
    assert converged
    check_solution(src, y, w, h, tol=1e-10)
    # the 1-D reference heights: φ_{i+1} = φ_i − c_i (a_{i+1} − a_i) at the quantile cuts c_i
    ca, cb = np.cumsum(wa)[:-1] - 0.5, np.cumsum(wb)[:-1] - 0.5
    phi = np.r_[0, np.cumsum(-ca * np.diff(ya))]
    psi = np.r_[0, np.cumsum(-cb * np.diff(yb))]
    ref = np.add.outer(phi, psi).ravel()
    assert np.allclose(h - h.mean(), ref - ref.mean(), atol=1e-9)


def test_three_dimensional_product_reference():
    axes = [np.array([0.1, 0.5, 0.7]), np.array([0.2, 0.9]), np.array([0.3, 0.4, 0.8])]
    y = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    src = UniformCube(3, 0, 1)
    res = solve_exact(src, y, tol=1e-10)
    h, converged = res.heights, res.converged
    assert converged
    check_solution(src, y, np.full(len(y), 1 / len(y)), h, tol=1e-10)
    c = exact_centroids(src, y, h)  # cells are boxes [k/3, (k+1)/3] × [j/2, …] × …
    for k, a in enumerate(axes):
        edges = np.linspace(0, 1, len(a) + 1)
        mids = (edges[1:] + edges[:-1]) / 2
        idx = np.searchsorted(a, y[:, k])
        assert np.allclose(c[:, k], mids[idx], atol=1e-10)


@pytest.mark.parametrize("d,k", [(2, 40), (3, 12)])
def test_grid_targets_with_product_weights_converge(d, k):
    """Targets on a regular grid (co-circular / co-spherical sites, zero-measure facets between
    diagonal neighbours) with product weights: Newton reaches 1e-9 in a handful of steps and the
    product solution (1-D quantile cells, heights Σ_k φ_k) is matched. Before, it stalled at
    ~3e-9 (2-D: out of steps; 3-D: stopped at the rounding floor)."""
    rng = np.random.default_rng(0)
    ax = (np.arange(k) + 0.5) / k
    y = np.stack(np.meshgrid(*[ax] * d, indexing="ij"), -1).reshape(-1, d)
    ws = [rng.random(k) + 0.5 for _ in range(d)]
    ws = [wk / wk.sum() for wk in ws]
    w, ref, cen = np.ones(1), np.zeros(1), []
    for wk in ws:
        w = np.multiply.outer(w, wk)
        ref = np.add.outer(ref, np.r_[0.0, np.cumsum(-np.cumsum(wk)[:-1] * np.diff(ax))])
        cen.append(np.cumsum(wk) - wk / 2)  # the 1-D cells are the quantile intervals
    w, ref = w.ravel(), ref.ravel()
    src = UniformCube(d, 0, 1)
    res = solve_exact(src, y, w, tol=1e-9)
    h, n_iter, converged, hist = res.heights, res.n_iter, res.converged, res.history
    assert converged and n_iter <= 10, hist[-3:]
    check_solution(src, y, w, h)
    assert np.allclose(h - h.mean(), ref - ref.mean(), atol=1e-10)
    c = np.stack(np.meshgrid(*cen, indexing="ij"), -1).reshape(-1, d)
    assert np.allclose(exact_centroids(src, y, h), c, atol=1e-10)


@pytest.mark.parametrize("case", ["clustered", "near_degenerate", "unequal", "collinear"])
def test_hard_configurations_converge(case):
    rng = np.random.default_rng(3)
    src = UniformCube(2, 0, 1)
    w = None
    if case == "clustered":
        y = np.r_[0.01 * rng.standard_normal((60, 2)) + [0.2, 0.3],
                  0.002 * rng.standard_normal((60, 2)) + [0.9, 0.9]]
    elif case == "near_degenerate":  # a lattice (co-circular quadruples) with a 1e-9 wobble
        g = (np.arange(10) + 0.5) / 10
        y = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2) + 1e-9 * rng.standard_normal((100, 2))
    elif case == "unequal":
        y = rng.random((150, 2))
        w = np.exp(rng.uniform(np.log(1e-4), 0, 150))  # weights spanning four decades
    else:
        y = np.c_[np.linspace(0, 1, 40), np.full(40, 0.5)]
    n = len(y)
    w = np.full(n, 1 / n) if w is None else w / w.sum()
    res = solve_exact(src, y, w, tol=1e-9)
    h, converged, hist = res.heights, res.converged, res.history
    assert converged, hist[-3:]
    check_solution(src, y, w, h)
    assert all(r["detail"]["min_mass"] > 0 for r in hist)  # no cell ever emptied


def test_polygon_ball_and_zero_weights():
    rng = np.random.default_rng(4)
    src = UniformPolytope([[0, 0], [2, 0], [2.5, 1.5], [0.5, 2]])
    y = rng.standard_normal((80, 2))
    w = rng.random(80)
    w[:5] = 0  # these targets get empty cells
    res = solve_exact(src, y, w, tol=1e-9)
    h, converged = res.heights, res.converged
    assert converged
    m = exact_cell_masses(src, y, h)
    assert np.all(m[:5] == 0)
    assert exact_mass_error(src, y, h, w)["max_rel"] <= 1e-9
    disc = UniformBall(2, radius=1.0)
    res = solve_exact(disc, y[5:], tol=1e-9)
    h, converged = res.heights, res.converged
    assert converged


def test_warm_start_and_callback():
    rng = np.random.default_rng(5)
    y = rng.random((200, 2))
    src = UniformCube(2, 0, 1)
    h = solve_exact(src, y, tol=1e-6).heights
    seen = []
    res = solve_exact(src, y, h0=h, tol=1e-11, callback=seen.append)
    n_iter, converged = res.n_iter, res.converged
    assert converged and n_iter <= 2 and len(seen) == n_iter


def test_pixel_density_with_empty_region():
    img = np.ones((20, 20))
    img[:, 8:12] = 0  # a vertical empty band: the support has two components
    img[3:6, 2:5] = 5.0
    src = GridDensity(img)
    rng = np.random.default_rng(6)
    y = rng.random((60, 2))
    res = solve_exact(src, y, tol=1e-9)
    h, converged, hist = res.heights, res.converged, res.history
    assert converged
    check_solution(src, y, np.full(60, 1 / 60), h)
    assert hist[0]["detail"]["smoothing"] > 0 and hist[-1]["detail"]["smoothing"] == 0


def test_voxel_density_with_empty_slab():
    rng = np.random.default_rng(10)
    vox = rng.random((6, 6, 6))
    vox[:, 2:4, :] = 0  # the support has two components
    src = GridDensity(vox, extent=(0, 1, 0, 2, 0, 1))
    y = rng.random((50, 3)) * [1, 2, 1]
    res = solve_exact(src, y, tol=1e-9)
    h, converged = res.heights, res.converged
    assert converged
    check_solution(src, y, np.full(50, 1 / 50), h)
    c = exact_centroids(src, y, h)
    assert np.all((c >= 0) & (c <= [1, 2, 1]))


def test_agrees_with_monte_carlo_engine():
    rng = np.random.default_rng(7)
    y = rng.standard_normal((200, 2)) * 0.3
    model = SemiDiscreteOT("uniform", seed=0, method="monte-carlo", max_batch=1 << 18,
                           max_iter=80).fit(y)
    assert model.converged_
    src = UniformCube(2)  # the engine's 'uniform' = [−½, ½]²
    exact = exact_cell_masses(src, y, model.heights_)
    n = 1 << 21
    mc = model.cell_masses(n_samples=n, seed=11)
    sd = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(mc - exact) <= 5 * sd + 1e-12)  # same heights → same cells
    nu = np.full(200, 1 / 200)
    chi2 = float(np.sum((exact - nu) ** 2 / nu))
    assert chi2 <= 4 * model.tol  # the engine's answer is as good as it claims (± its noise)
    res = solve_exact(src, y, tol=1e-9)
    h, converged = res.heights, res.converged
    assert converged
    # heights agree to within what the engine's mass error allows: δh ≈ L⁺ δm
    dh = (h - h.mean()) - (model.heights_ - model.heights_.mean())
    assert np.sqrt(np.mean(dh**2)) < 0.05 * np.std(h)


def test_bad_inputs_name_the_argument():
    rng = np.random.default_rng(9)
    with pytest.raises(BrenierError, match="source"):
        source_domain(Gaussian(2))
    with pytest.raises(BrenierError, match="source"):
        solve_exact(UniformCube(4), rng.random((10, 4)))
    with pytest.raises(BrenierError, match="targets"):
        solve_exact(UniformCube(2), rng.random((10, 4)))
    with pytest.raises(BrenierError, match="targets"):
        solve_exact(UniformCube(2), rng.random((10, 3)))
    with pytest.raises(BrenierError, match="weights"):
        solve_exact(UniformCube(2), rng.random((10, 2)), -np.ones(10))
    with pytest.raises(BrenierError, match="h0"):
        solve_exact(UniformCube(2), rng.random((10, 2)), h0=np.zeros(3))
    with pytest.raises(BrenierError, match="values"):
        GridDensity(-np.ones((4, 4)))
    with pytest.raises(BrenierError, match="all pixel values are zero"):
        GridDensity(np.zeros((4, 4)))
    with pytest.raises(BrenierError, match="extent"):
        GridDensity(np.ones((4, 4)), extent=(0, 1, 1, 0))
    with pytest.raises(BrenierError, match="targets"):
        exact_statistics(UniformCube(3), rng.random((5, 2)), np.zeros(5))


def test_grid_density_sampling_and_saving(tmp_path):
    from brenier.measures import source_from_dict

    img = np.zeros((6, 4))
    img[1, 2], img[4, 0] = 3.0, 1.0
    src = GridDensity(img, extent=(0, 3, -1, 1))
    x = src.sample(40000, seed=1)
    assert x.shape == (40000, 2) and src.dim == 2
    in_a = (x[:, 0] >= 0.5) & (x[:, 0] < 1.0) & (x[:, 1] >= 0.0) & (x[:, 1] < 0.5)
    assert abs(in_a.mean() - 0.75) < 0.01
    assert np.allclose(src.mean(), [0.75 * 0.75 + 0.25 * 2.25, 0.75 * 0.25 + 0.25 * -0.75])
    again = source_from_dict(src.to_dict(), src.arrays())
    assert isinstance(again, GridDensity) and np.array_equal(again.values, src.values)
    assert np.allclose(again.extent, src.extent)
    poly = UniformPolytope([[0, 0], [1, 0], [0, 1]])
    again = source_from_dict(poly.to_dict(), poly.arrays())
    assert np.allclose(again.mean(), [1 / 3, 1 / 3])
    s = poly.stream(3)
    assert s.draw(10).shape == (10, 2)
