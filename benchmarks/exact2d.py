"""Exact semi-discrete OT in 2-D and 3-D: N Diracs uniform in the unit square / cube, uniform
source, time until the max relative cell-mass error is ≤ 1e-6.

brenier (`brenier.ot.solvers.exact.solve_exact`) beside the peers measured in the same run:
  * sdot 2026.10.22.1 (PyPI; imports only on Python 3.12: run in its own venv under /tmp),
  * pysdot 0.2.16 (needs numpy < 2 and scipy < 1.14: its own Python 3.11 venv),
  * geogram 0.0.7 (power diagrams only, no OT solver: the time of one restricted diagram is
    compared with one brenier diagram at the same heights).
A peer that cannot be installed or run gets its reason in the table. Times are medians over
--reps runs after one warm-up solve (numba / kernel compilation excluded, as for the peers).

    python benchmarks/exact2d.py            # N ∈ {1e3, 1e4, 1e5}, d ∈ {2, 3}, 3 runs each
    python benchmarks/exact2d.py --quick    # N ∈ {1e3, 1e4}, 1 run
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from brenier.measures import UniformCube  # noqa: E402
from brenier.ot.cells.exact import exact_cell_masses, source_domain  # noqa: E402
from brenier.ot.power import power_diagram  # noqa: E402
from brenier.ot.solvers.exact import solve_exact  # noqa: E402

TOL = 1e-6
VENV_ROOT = Path(tempfile.gettempdir()) / "brenier-bench-peers"

SDOT = r"""
import json, sys, time, numpy as np, sdot
a = json.loads(sys.argv[1]); y = np.load(a["points"]); n, d = y.shape
def run():
    t = time.perf_counter()
    p = sdot.ot_solve(sdot.SumOfDiracs(y), sdot.Box([0.0] * d, [1.0] * d), tol=a["tol"] / n)
    return time.perf_counter() - t, p
run_small = sdot.ot_solve(sdot.SumOfDiracs(y[:1000]), sdot.Box([0.0] * d, [1.0] * d), tol=1e-3)
times, p = [], None
for _ in range(a["reps"]):
    dt, p = run(); times.append(dt)
m = np.asarray(p.cell_masses, dtype=float); m = m / m.sum()
print(json.dumps({"times": times, "steps": len(p.history), "max_rel": float(np.max(np.abs(m * n - 1)))}))
"""

PYSDOT = r"""
import json, sys, time, numpy as np
from pysdot import OptimalTransport
from pysdot.domain_types import ConvexPolyhedraAssembly
a = json.loads(sys.argv[1]); y = np.load(a["points"]); n, d = y.shape
dom = ConvexPolyhedraAssembly(); dom.add_box([0.0] * d, [1.0] * d)
times = []
for _ in range(a["reps"]):
    t = time.perf_counter()
    ot = OptimalTransport(positions=y, domain=dom, masses=np.full(n, 1.0 / n), linear_solver="Scipy")
    ot.set_stopping_criterion(a["tol"] / n, "max delta masses")
    ot.adjust_weights()
    times.append(time.perf_counter() - t)
m = ot.pd.integrals()
print(json.dumps({"times": times, "steps": len(ot.delta_m) or None,
                  "max_rel": float(np.max(np.abs(m * n - 1)))}))
"""

GEOGRAM = r"""
import json, sys, time, numpy as np, geogram as g
a = json.loads(sys.argv[1]); y = np.load(a["points"]); w = np.load(a["weights"]); n, d = y.shape
V, T = g.shape.quad() if d == 2 else g.mesh.tetrahedralize(*g.shape.cube())
times = []
for _ in range(a["reps"]):
    t = time.perf_counter(); vor = g.Voronoi(y, w, V, T); q, s, ts = vor.q, vor.t, vor.tseed
    times.append(time.perf_counter() - t)
q, s, ts = np.asarray(q), np.asarray(s, dtype=np.int64), np.asarray(ts, dtype=np.int64)
e = q[s[:, 1:]] - q[s[:, :1]]
vol = np.abs(np.linalg.det(e)) / (2 if d == 2 else 6)
m = np.bincount(ts, vol, minlength=n)
print(json.dumps({"times": times, "steps": None, "max_rel": float(np.max(np.abs(m * n - 1))),
                  "total": float(m.sum())}))
"""

PEERS = {
    "sdot": {"python": "3.12", "packages": ["sdot==2026.10.22.1", "jax", "numpy"], "script": SDOT},
    "pysdot": {"python": "3.11", "packages": ["pysdot==0.2.16", "numpy<2", "scipy<1.14"],
               "script": PYSDOT},
    "geogram": {"python": "3.11", "packages": ["geogram==0.0.7", "numpy"], "script": GEOGRAM},
}


def find_python(version: str) -> str | None:
    """An interpreter of that version that actually runs (pyenv shims may not)."""
    for cand in [*sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python"))),
                 shutil.which(f"python{version}")]:
        if not cand or not os.path.exists(cand):
            continue
        ok = subprocess.run([cand, "-c", "import venv"], capture_output=True, timeout=60)
        if ok.returncode == 0:
            return cand
    return None


def peer_python(name: str) -> tuple[str | None, str]:
    """The peer's venv interpreter (created on first use) or None and the reason."""
    spec = PEERS[name]
    venv = VENV_ROOT / f"{name}-py{spec['python']}"
    py = venv / "bin" / "python"
    marker = venv / ".ready"
    if marker.exists():
        return str(py), ""
    base = find_python(spec["python"])
    if base is None:
        return None, f"no Python {spec['python']} on this machine"
    print(f"[setup] creating {venv} for {name} …", file=sys.stderr)
    try:
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", *spec["packages"]],
                           capture_output=True, text=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"venv setup failed ({exc})"
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["?"]
        return None, f"pip install failed: {tail[0][:80]}"
    marker.write_text("ok\n")
    return str(py), ""


def run_peer(name: str, args: dict, timeout: float) -> dict:
    py, why = peer_python(name)
    if py is None:
        return {"error": why}
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    try:
        r = subprocess.run([py, "-c", PEERS[name]["script"], json.dumps(args)], capture_output=True,
                           text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if r.returncode != 0:
        lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
        return {"error": (lines[-1] if lines else f"exit {r.returncode}")[:90]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_ours(y: np.ndarray, reps: int) -> dict:
    d = y.shape[1]
    src = UniformCube(d, 0.0, 1.0)
    solve_exact(src, np.random.default_rng(99).random((1000, d)), tol=1e-3)  # warm-up (numba)
    times, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = solve_exact(src, y, tol=TOL)
        times.append(time.perf_counter() - t)
    h, steps, converged = out.heights, out.n_iter, out.converged
    m = exact_cell_masses(src, y, h)
    dom = source_domain(src)
    t = time.perf_counter()
    power_diagram(y, h, dom)
    one = time.perf_counter() - t
    return {"times": times, "steps": steps, "max_rel": float(np.max(np.abs(m * len(y) - 1))),
            "converged": converged, "h": h, "diagram": one}


def fmt(res: dict, key: str = "times") -> str:
    if "error" in res:
        return f"— ({res['error']})"
    return f"{statistics.median(res[key]):.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N ∈ {1e3, 1e4}, one run")
    ap.add_argument("--reps", type=int, default=None, help="runs per case (median reported)")
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--peers", nargs="+", default=["sdot", "pysdot"], choices=["sdot", "pysdot"],
                    help="OT-solver peers to run (geogram's diagram timing always runs)")
    ap.add_argument("--peer-timeout", type=float, default=900.0)
    args = ap.parse_args()
    sizes = args.sizes or ([1000, 10000] if args.quick else [1000, 10000, 100000])
    reps = args.reps or (1 if args.quick else 3)
    peers = [] if args.no_peers else args.peers
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for d in args.dims:
            for n in sizes:
                y = np.random.default_rng(0).random((n, d))
                pts = os.path.join(tmp, f"y{d}_{n}.npy")
                np.save(pts, y)
                ours = run_ours(y, reps)
                print(f"[brenier] d={d} N={n}: {statistics.median(ours['times']):.3g} s, "
                      f"{ours['steps']} steps, max_rel {ours['max_rel']:.2e}", file=sys.stderr)
                res = {}
                for p in peers:
                    res[p] = run_peer(p, {"points": pts, "reps": reps, "tol": TOL}, args.peer_timeout)
                    print(f"[{p}] d={d} N={n}: {res[p]}", file=sys.stderr)
                if not args.no_peers:
                    w = np.sum(y**2, axis=1) + 2 * ours["h"]  # geogram: |x − y|² − w, same cells
                    wp = os.path.join(tmp, f"w{d}_{n}.npy")
                    np.save(wp, w - w.min())
                    res["geogram"] = run_peer("geogram", {"points": pts, "weights": wp, "reps": reps},
                                              args.peer_timeout)
                rows.append((d, n, ours, res))
    print()
    print(f"Exact semi-discrete OT, uniform source on [0,1]^d, N uniform random Diracs, stop at "
          f"max relative mass error ≤ {TOL:g}; median of {reps} (seconds, one process, "
          f"OMP_NUM_THREADS=1).")
    print()
    head = "| d | N | brenier (s) | steps | max rel err |"
    sep = "|---|---|---|---|---|"
    for p in peers:
        head += f" {p} (s) | {p} steps | {p} max rel |"
        sep += "---|---|---|"
    head += " best peer / brenier | brenier 1 diagram (s) | geogram 1 diagram (s) |"
    sep += "---|---|---|"
    print(head)
    print(sep)
    for d, n, ours, res in rows:
        t = statistics.median(ours["times"])
        line = f"| {d} | {n} | {t:.3g} | {ours['steps']} | {ours['max_rel']:.1e} |"
        best = None
        for p in peers:
            r = res[p]
            if "error" in r:
                line += f" — ({r['error']}) | | |"
                continue
            tp = statistics.median(r["times"])
            ok = r["max_rel"] <= 10 * TOL
            best = tp if (ok and (best is None or tp < best)) else best
            line += f" {tp:.3g} | {r['steps'] if r['steps'] is not None else '?'} | {r['max_rel']:.1e} |"
        ratio = f"{best / t:.2f}" if best is not None else "n/a"
        g = res.get("geogram", {"error": "not run"})
        gtxt = fmt(g)
        if "error" not in g and abs(g.get("total", 1.0) - 1.0) > 1e-6:
            gtxt += f" (cell volumes sum to {g['total']:.4f})"
        line += f" {ratio} | {ours['diagram']:.3g} | {gtxt} |"
        print(line)
    print()
    print("best peer / brenier > 1: brenier is faster. Peers run in their own virtualenvs under "
          f"{VENV_ROOT} (created on first use).")


if __name__ == "__main__":
    main()
