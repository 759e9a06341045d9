"""Euler characteristic and the discrete Gauss–Bonnet theorem on triangle meshes."""

import math

import numpy as np
import pytest
import trimesh
from hypothesis import given, settings
from hypothesis import strategies as st

from brenier import BrenierError
from brenier.manifold import angle_defects, mesh_topology


def strip(n: int, twist: bool):
    """A band of n quads around a circle; with `twist` the ends are glued reversed (Möbius)."""
    t = 2 * np.pi * np.arange(n) / n
    half = t / 2 if twist else np.zeros(n)
    inner = np.c_[np.cos(t) * (1 - 0.3 * np.cos(half)), np.sin(t) * (1 - 0.3 * np.cos(half)),
                  -0.3 * np.sin(half)]
    outer = np.c_[np.cos(t) * (1 + 0.3 * np.cos(half)), np.sin(t) * (1 + 0.3 * np.cos(half)),
                  0.3 * np.sin(half)]
    v = np.r_[inner, outer]
    faces = []
    for i in range(n):
        a, b = i, n + i  # inner, outer of this rung
        j = (i + 1) % n
        c, d = (j, n + j) if not (twist and j == 0) else (n + j, j)  # the twist swaps the sides
        faces += [[a, b, d], [a, d, c]]
    return v, np.array(faces)


def planar_grid(k: int, hole: bool):
    """A triangulated square [-1, 1]^2 (k x k cells), optionally without its middle cells."""
    g = np.linspace(-1, 1, k + 1)
    v = np.array([[x, y] for y in g for x in g])
    faces = []
    for i in range(k):
        for j in range(k):
            if hole and k // 3 <= i < k - k // 3 and k // 3 <= j < k - k // 3:
                continue
            a = i * (k + 1) + j
            faces += [[a, a + 1, a + k + 2], [a, a + k + 2, a + k + 1]]
    return v, np.array(faces)


def test_sphere_chi_2_and_gauss_bonnet():
    m = mesh_topology(trimesh.creation.icosphere(subdivisions=3))
    assert m.euler_characteristic == 2
    assert m.total_angle_defect == pytest.approx(4 * math.pi, abs=1e-9)
    assert m.gauss_bonnet_holds()
    assert m.is_closed and m.is_manifold and m.orientable and m.genus == 0
    assert m.n_vertices - m.n_edges + m.n_faces == 2


def test_torus_chi_0_genus_1():
    m = mesh_topology(trimesh.creation.torus(major_radius=2.0, minor_radius=0.6))
    assert m.euler_characteristic == 0
    assert abs(m.total_angle_defect) < 1e-9
    assert m.gauss_bonnet_holds()
    assert m.genus == 1 and m.orientable
    # curvature is positive outside, negative inside: it cancels only in total
    assert m.angle_defects.max() > 1e-3 and m.angle_defects.min() < -1e-3


def test_arrays_input_and_two_components():
    a = trimesh.creation.icosphere(subdivisions=1)
    b = trimesh.creation.box()
    v = np.r_[a.vertices, b.vertices + 5]
    f = np.r_[a.faces, b.faces + len(a.vertices)]
    m = mesh_topology(v, f)
    assert m.n_components == 2
    assert m.euler_characteristic == 4
    assert m.total_angle_defect == pytest.approx(8 * math.pi)
    assert m.genus == 0


def test_planar_disc_and_annulus_with_boundary():
    v, f = planar_grid(6, hole=False)
    disc = mesh_topology(v, f)
    assert disc.euler_characteristic == 1 and not disc.is_closed
    assert disc.total_angle_defect == pytest.approx(2 * math.pi)  # boundary turning only
    assert disc.gauss_bonnet_holds() and disc.genus is None
    v, f = planar_grid(6, hole=True)
    ring = mesh_topology(v, f)
    assert ring.euler_characteristic == 0
    assert abs(ring.total_angle_defect) < 1e-9
    assert ring.n_boundary_edges == 4 * 6 + 4 * 2


def test_moebius_band_is_not_orientable():
    v, f = strip(24, twist=True)
    m = mesh_topology(v, f)
    assert m.euler_characteristic == 0
    assert m.orientable is False
    assert m.gauss_bonnet_holds()
    v, f = strip(24, twist=False)
    assert mesh_topology(v, f).orientable is True


def test_inconsistent_winding_is_still_orientable():
    sphere = trimesh.creation.icosphere(subdivisions=2)
    f = sphere.faces.copy()
    f[::3] = f[::3, ::-1]
    assert mesh_topology(sphere.vertices, f).orientable is True


def test_non_manifold_edge():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]], float)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]])
    m = mesh_topology(v, f)
    assert not m.is_manifold and m.orientable is None and m.genus is None
    assert m.euler_characteristic == 5 - 7 + 3


def test_angle_defects_function_and_unused_vertices():
    ico = trimesh.creation.icosphere(subdivisions=0)
    v = np.r_[ico.vertices, [[9.0, 9.0, 9.0]]]  # an unused vertex
    d = angle_defects(v, ico.faces)
    assert d[-1] == 0.0
    assert np.allclose(d[:-1], 4 * math.pi / 12)  # icosahedron: equal defects π/3


def test_bad_meshes():
    v = np.eye(3)
    with pytest.raises(BrenierError, match="faces"):
        mesh_topology(v, np.array([[0, 1, 3]]))
    with pytest.raises(BrenierError, match="faces"):
        mesh_topology(v, np.array([[0, 1, 1]]))
    with pytest.raises(BrenierError, match="faces"):
        mesh_topology(v, np.array([0, 1, 2]))
    with pytest.raises(BrenierError, match="mesh"):
        mesh_topology("sphere.obj")
    with pytest.raises(BrenierError, match="vertices"):
        mesh_topology(np.ones((3, 4)), np.array([[0, 1, 2]]))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 10))
def test_chi_and_total_defect_invariant_under_similarity(seed, scale):
    m = trimesh.creation.torus(major_radius=1.5, minor_radius=0.5)
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))[0]
    moved = mesh_topology(scale * m.vertices @ q.T + 1.0, m.faces)
    assert moved.euler_characteristic == 0
    assert np.allclose(moved.angle_defects, mesh_topology(m).angle_defects, atol=1e-9)
