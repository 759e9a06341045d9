"""Power-diagram geometry: exact cell integrals against Monte-Carlo, closed forms and finite
differences (brenier.ot.power)."""

import numpy as np
import pytest

from brenier.measures import UniformCube
from brenier.ot.power import Domain, Polytope, PowerOptions, power_diagram, regular_triangulation

BOX2 = Domain(Polytope.box([0, 0], [1, 1]))
BOX3 = Domain(Polytope.box([0, 0, 0], [1, 1, 1]))


def mc_cells(dom, y, h, n, seed):
    """Monte-Carlo masses and moments of W_i(h) ∩ D under the domain's density."""
    rng = np.random.default_rng(seed)
    lo, hi = dom.low, dom.high
    x = lo + rng.random((n, dom.dim)) * (hi - lo)
    w = dom.density_at(x) * np.prod(hi - lo) / n
    idx = np.argmax(x @ y.T + h, axis=1)
    m = np.bincount(idx, w, minlength=len(y))
    mom = np.stack([np.bincount(idx, w * x[:, k], minlength=len(y)) for k in range(dom.dim)], 1)
    return m, mom


@pytest.mark.parametrize("dom", [
    BOX2,
    Domain(Polytope.from_vertices([[0, 0], [1, 0.2], [0.3, 1.0], [0.05, 0.7]])),
    Domain(Polytope.box([-1, 0], [1, 0.5]),
           grid=np.random.default_rng(5).random((7, 4)) * [[1, 0, 1, 1]] / 0.31),
    BOX3,
    Domain(Polytope.from_vertices(np.random.default_rng(6).random((12, 3)))),
    Domain(Polytope.box([0, -1, 0], [1, 1, 0.5]),
           grid=np.random.default_rng(9).random((5, 4, 6)) * [[[1, 1, 0, 1, 1, 1]]]),
], ids=["square", "polygon", "pixels", "cube", "polyhedron", "voxels"])
def test_masses_and_moments_match_monte_carlo(dom):
    if dom.grid is not None:  # normalise the pixel density to a probability
        dom = Domain(dom.poly, grid=dom.grid / (dom.grid.sum() * np.prod(dom.cell)))
    rng = np.random.default_rng(0)
    n = 40
    y = rng.random((n, dom.dim)) * 1.4 - 0.2
    h = -np.sum(y**2, axis=1) / 2 + 0.02 * rng.standard_normal(n)
    D = power_diagram(y, h, dom)
    assert D.masses.sum() == pytest.approx(1.0, abs=1e-12)
    assert (D.masses >= -1e-15).all()
    m, mom = mc_cells(dom, y, h, 1_500_000, seed=1)
    sd = np.sqrt(np.maximum(m, 1e-4) / 1_500_000)  # binomial standard deviation (upper bound)
    assert np.all(np.abs(D.masses - m) < 6 * sd + 1e-4)
    assert np.all(np.abs(D.moments - mom) < 6 * sd[:, None] + 1e-4)
    assert np.allclose(D.moments.sum(axis=0), mc_cells(dom, y[:1], h[:1], 400_000, 2)[1][0], atol=3e-3)


def test_regular_grid_cells_are_exact_squares_and_cubes():
    for dom, k in ((BOX2, 7), (BOX3, 4)):
        d = dom.dim
        axes = [(np.arange(k) + 0.5) / k] * d
        y = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
        D = power_diagram(y, -np.sum(y**2, axis=1) / 2, dom)
        assert np.allclose(D.masses, 1 / k**d, atol=1e-13)
        assert np.allclose(D.centroids(), y, atol=1e-12)


def test_product_density_gives_product_cells():
    """Separable pixel density ρ = f(x1) g(x2) and heights φ_a + ψ_b: cells are rectangles whose
    masses are products of 1-D interval masses."""
    rng = np.random.default_rng(3)
    f, g = rng.random(5) + 0.1, rng.random(6) + 0.1
    rho = np.outer(f, g)
    dom = Domain(Polytope.box([0, 0], [1, 1]), grid=rho / (rho.sum() / 30))
    ya, yb = np.array([0.1, 0.5, 0.6, 0.9]), np.array([0.2, 0.7, 0.8])
    cuts_a, cuts_b = np.array([0.27, 0.55, 0.81]), np.array([0.33, 0.72])

    def heights(yk, cuts):  # ⟨c, y_i⟩ + φ_i = ⟨c, y_{i+1}⟩ + φ_{i+1} at each cut c
        return np.r_[0.0, np.cumsum(-cuts * np.diff(yk))]

    def interval_mass(w, cuts):  # 1-D piecewise-constant density w on [0, 1]
        cdf = lambda t: np.interp(t, np.linspace(0, 1, len(w) + 1), np.r_[0, np.cumsum(w)] / w.sum())  # noqa: E731
        return np.diff(cdf(np.r_[0.0, cuts, 1.0]))

    y = np.array([[a, b] for a in ya for b in yb])
    h = np.add.outer(heights(ya, cuts_a), heights(yb, cuts_b)).ravel()
    D = power_diagram(y, h, dom)
    expected = np.outer(interval_mass(f, cuts_a), interval_mass(g, cuts_b)).ravel()
    assert np.allclose(D.masses, expected, atol=1e-13)


@pytest.mark.parametrize("dom", [
    BOX2, BOX3,
    Domain(Polytope.box([0, 0], [1, 1]), grid=np.random.default_rng(7).random((6, 5)) * 1.0),
    Domain(Polytope.box([0, 0, 0], [1, 1, 1]), grid=np.random.default_rng(7).random((4, 3, 5))),
], ids=["square", "cube", "pixels", "voxels"])
def test_hessian_matches_finite_differences(dom):
    rng = np.random.default_rng(4)
    n = 30
    y = rng.random((n, dom.dim))
    h = -np.sum(y**2, axis=1) / 2 + 0.01 * rng.standard_normal(n)
    D = power_diagram(y, h, dom)
    L = D.hessian(y).toarray()
    assert np.allclose(L.sum(axis=1), 0, atol=1e-10)
    eps = 1e-6
    for i in np.argsort(D.masses)[-3:]:
        hp, hm = h.copy(), h.copy()
        hp[i] += eps
        hm[i] -= eps
        fd = (power_diagram(y, hp, dom).masses - power_diagram(y, hm, dom).masses) / (2 * eps)
        assert np.allclose(fd, L[:, i], atol=1e-6 * np.abs(L[:, i]).max() + 1e-9)


def test_reused_triangulation_gives_the_same_cells():
    rng = np.random.default_rng(8)
    y = rng.random((500, 2))
    h = -np.sum(y**2, axis=1) / 2
    D0 = power_diagram(y, h, BOX2)
    h2 = h + 2e-4 * rng.standard_normal(len(y))  # enough to need flips
    D1 = power_diagram(y, h2, BOX2, reuse=D0.triangulation)
    D2 = power_diagram(y, h2, BOX2)
    assert D1.triangulation.how in ("flipped", "kept", "qhull")
    assert np.allclose(D1.masses, D2.masses, atol=1e-14)
    assert np.allclose(D1.moments, D2.moments, atol=1e-14)


@pytest.mark.parametrize("dom", [
    BOX3, Domain(Polytope.from_vertices(np.random.default_rng(6).random((12, 3))))],
    ids=["cube", "polyhedron"])
def test_three_dimensional_flips_match_a_fresh_hull(dom):
    """2-3 / 3-2 flips from the previous regular triangulation give the cells qhull gives."""
    rng = np.random.default_rng(9)
    y = rng.random((2000, 3))
    h = -np.sum(y**2, axis=1) / 2
    D0 = power_diagram(y, h, dom)
    for step in (1e-6, 3e-5):
        h2 = h + step * rng.standard_normal(len(y))
        D1 = power_diagram(y, h2, dom, reuse=D0.triangulation, flips_only=True)
        D2 = power_diagram(y, h2, dom)
        assert D1.triangulation.how == "flipped"
        assert np.allclose(D1.masses, D2.masses, atol=1e-14)
        assert np.allclose(D1.moments, D2.moments, atol=1e-14)
        assert len(D1.pairs) == len(D2.pairs)


def test_flips_only_declines_when_a_cell_must_empty():
    rng = np.random.default_rng(10)
    for dom in (BOX2, BOX3):
        y = rng.random((300, dom.dim))
        h = -np.sum(y**2, axis=1) / 2
        D0 = power_diagram(y, h, dom)
        h2 = h.copy()
        h2[np.argmin(D0.masses)] -= 1.0  # buried: its cell empties
        assert power_diagram(y, h2, dom, reuse=D0.triangulation, flips_only=True) is None
        D = power_diagram(y, h2, dom, reuse=D0.triangulation)  # qhull takes over
        assert D.triangulation.how == "qhull" and D.masses.min() == 0


def test_compiled_facets_match_the_vectorised_path():
    """3-D uniform cells: facets from the rings of tetrahedra (compiled) = clipped triangle fans."""
    rng = np.random.default_rng(11)
    y = rng.random((400, 3)) * 1.3 - 0.15
    h = -np.sum(y**2, axis=1) / 2 + 1e-3 * rng.standard_normal(len(y))
    for dom in (BOX3, Domain(Polytope.from_vertices(rng.random((15, 3))))):
        D1 = power_diagram(y, h, dom)
        D2 = power_diagram(y, h, dom, options=PowerOptions(compiled=False))
        assert np.allclose(D1.masses, D2.masses, atol=1e-15)
        assert np.allclose(D1.moments, D2.moments, atol=1e-15)
        o1, o2 = np.lexsort(D1.pairs.T[::-1]), np.lexsort(D2.pairs.T[::-1])
        assert np.array_equal(D1.pairs[o1], D2.pairs[o2])
        assert np.allclose(D1.facet_mass[o1], D2.facet_mass[o2], atol=1e-15)


@pytest.mark.parametrize("grid", [False, True], ids=["random", "grid"])
def test_compiled_2d_facets_match_the_vectorised_path(grid):
    """2-D uniform cells: facets, signs, clipping and Simpson sums in one compiled pass = the
    vectorised path (square and a polygon; sites outside D; a degenerate grid)."""
    rng = np.random.default_rng(12)
    if grid:
        y, _, h = _product_grid(2, 15, 3, BOX2)
        h = h + 1e-14 * rng.standard_normal(len(y))
    else:
        y = rng.random((500, 2)) * 1.3 - 0.15
        h = -np.sum(y**2, axis=1) / 2 + 1e-3 * rng.standard_normal(len(y))
    for dom in (BOX2, Domain(Polytope.from_vertices(rng.random((9, 2))))):
        D1 = power_diagram(y, h, dom, segments=True)
        D2 = power_diagram(y, h, dom, segments=True, options=PowerOptions(compiled=False))
        assert np.allclose(D1.masses, D2.masses, atol=1e-15)
        assert np.allclose(D1.moments, D2.moments, atol=1e-15)
        assert np.array_equal(D1.pairs, D2.pairs)
        assert np.allclose(D1.facet_mass, D2.facet_mass, atol=1e-14)
        assert np.allclose(D1.segments, D2.segments, atol=1e-14)


def test_hidden_sites_get_empty_cells_and_far_sites_are_fine():
    y = np.array([[0.2, 0.2], [0.8, 0.3], [0.5, 0.5], [0.4, 0.9], [50.0, -40.0]])
    h = -np.sum(y**2, axis=1) / 2
    h[2] -= 1.0  # buried: its lifted point is above the lower hull
    h[4] -= 1e4
    D = power_diagram(y, h, BOX2)
    assert D.masses[2] == 0 and D.masses[4] == 0
    assert D.masses.sum() == pytest.approx(1.0, abs=1e-14)
    tri = regular_triangulation(y, h, BOX2.poly.vertices)
    assert not tri.complete


def test_collinear_and_two_sites():
    y = np.array([[0.1, 0.5], [0.5, 0.5], [0.9, 0.5]])
    D = power_diagram(y, -np.sum(y**2, axis=1) / 2, BOX2)
    assert np.allclose(D.masses, [0.3, 0.4, 0.3], atol=1e-14)
    D = power_diagram(y[:2], np.zeros(2), BOX2)  # cut at ⟨x, y_0 − y_1⟩ = 0 → x1 = 0
    assert np.allclose(D.masses, [0.0, 1.0], atol=1e-14)


def _product_grid(d, k, seed, dom):
    """Grid sites, product weights and the product (1-D quantile) heights that balance them."""
    rng = np.random.default_rng(seed)
    ax = (np.arange(k) + 0.5) / k
    y = np.stack(np.meshgrid(*[ax] * d, indexing="ij"), -1).reshape(-1, d)
    ws = [rng.random(k) + 0.5 for _ in range(d)]
    ws = [w / w.sum() for w in ws]
    w, h = ws[0], np.r_[0.0, np.cumsum(-np.cumsum(ws[0])[:-1] * np.diff(ax))]
    for wk in ws[1:]:
        w = np.multiply.outer(w, wk)
        h = np.add.outer(h, np.r_[0.0, np.cumsum(-np.cumsum(wk)[:-1] * np.diff(ax))])
    return y, w.ravel(), h.ravel()


@pytest.mark.parametrize("dom,k,tol", [
    (BOX2, 20, 1e-11), (BOX3, 8, 2e-10),
    (Domain(Polytope.box([0, 0], [1, 1]), grid=np.full((3, 4), 1.0)), 20, 1e-11),
    (Domain(Polytope.box([0, 0, 0], [1, 1, 1]), grid=np.full((2, 3, 2), 1.0)), 8, 2e-10),
], ids=["square", "cube", "pixels", "voxels"])
def test_degenerate_grid_masses_follow_their_linearisation(dom, k, tol):
    """Grid sites (co-circular / co-spherical, zero-measure facets between diagonal neighbours)
    at heights 1e-14 off the product solution: the triangulation is regular only up to rounding,
    some power edges run backwards, and the masses must still follow m(h) + L(h) δ. (Integrating
    backwards edges with a positive length gave errors ~1e-9 relative: Newton stalled there.)"""
    y, w, h = _product_grid(dom.dim, k, 1, dom)
    D = power_diagram(y, h, dom)
    assert np.max(np.abs(D.masses - w) / w) < 1e-11
    L = D.hessian(y)
    rng = np.random.default_rng(2)
    for _ in range(3):
        delta = 1e-14 * rng.standard_normal(len(y))
        m = power_diagram(y, h + delta, dom).masses
        assert np.max(np.abs(m - D.masses - L @ delta) / w) < tol


def _same_cells(D1, D2, atol=1e-14):
    assert np.allclose(D1.masses, D2.masses, atol=atol)
    assert np.allclose(D1.moments, D2.moments, atol=atol)
    p1, p2 = np.sort(D1.pairs, axis=1), np.sort(D2.pairs, axis=1)  # unordered pairs
    o1, o2 = np.lexsort(p1.T[::-1]), np.lexsort(p2.T[::-1])
    assert np.array_equal(p1[o1], p2[o2])
    assert np.allclose(D1.facet_mass[o1], D2.facet_mass[o2], atol=atol)


@pytest.mark.parametrize("d", [2, 3])
def test_insertion_builds_the_triangulation_qhull_builds(d):
    """A fresh triangulation by incremental insertion and flips has qhull's cells and facets
    (sites partly outside D; the optimal heights, far from the paraboloid, every cell in D)."""
    from brenier.ot.solvers.exact import solve_exact

    rng = np.random.default_rng(13)
    dom = BOX2 if d == 2 else BOX3
    y = rng.random((3000, d)) * 1.2 - 0.1
    h = solve_exact(UniformCube(d, 0.0, 1.0), y, tol=1e-3).heights
    D1 = power_diagram(y, h, dom, options=PowerOptions(insert_min=1))
    D2 = power_diagram(y, h, dom, options=PowerOptions(insert_min=10**9))
    assert D1.triangulation.how == "inserted" and D2.triangulation.how == "qhull"
    assert D2.triangulation.complete
    _same_cells(D1, D2)
    def real(tri):  # simplices with a real facet (the dummy corners' own are degenerate)
        s = np.sort(tri.simplices, axis=1)
        s = s[(s < tri.n_real).sum(axis=1) >= 2]
        return s[np.lexsort(s.T[::-1])]
    assert np.array_equal(real(D1.triangulation), real(D2.triangulation))


@pytest.mark.parametrize("d", [2, 3])
def test_insertion_declines_hidden_and_degenerate_sites(d):
    """Hidden sites (empty cells) and co-circular grids are left to qhull, with the same cells."""
    rng = np.random.default_rng(14)
    dom = BOX2 if d == 2 else BOX3
    insert = PowerOptions(insert_min=1)
    y = rng.random((2000, d))
    h = -np.sum(y**2, axis=1) / 2 + 0.05 * rng.standard_normal(len(y))  # buries many sites
    D = power_diagram(y, h, dom, options=insert)
    assert D.triangulation.how == "qhull" and not D.triangulation.complete
    assert (D.masses == 0).any()
    g, _, hg = _product_grid(d, 30 if d == 2 else 10, 3, dom)
    D1 = power_diagram(g, hg, dom, options=insert)
    _same_cells(D1, power_diagram(g, hg, dom, options=PowerOptions(insert_min=10**9)), atol=1e-13)


@pytest.mark.parametrize("d,n", [(2, 5000), (3, 5000)])
def test_newton_from_an_inserted_triangulation(d, n):
    """The exact solve gives the same heights whichever way its first triangulation is built."""
    from brenier.ot.solvers.exact import ExactOptions, solve_exact

    rng = np.random.default_rng(15)
    y = rng.random((n, d))
    src = UniformCube(d, 0.0, 1.0)
    r1 = solve_exact(src, y, tol=1e-9)
    r2 = solve_exact(src, y, tol=1e-9, options=ExactOptions(power=PowerOptions(insert_min=10**9)))
    assert r1.converged and r2.converged
    assert r1.history[0]["detail"]["triangulation"] != "qhull" or d == 0  # the run above used insertion
    assert np.allclose(r1.heights, r2.heights, atol=1e-10)
