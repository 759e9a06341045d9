"""`run_demo(quick=True)`: every picture and the summary are written, and the numbers tell the story."""

import json

import pytest

from brenier.report.demo import run_demo


def _no_nan(text):
    raise ValueError(f"summary.json: non-standard JSON constant {text}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    lines = []
    summary = run_demo(out, seed=0, quick=True, log=lines.append)
    return out, summary, lines


def test_quick_demo_writes_pictures_and_summary(demo):
    out, summary, lines = demo
    for name in ("square_to_grid25.png", "disc_to_crescent.png", "gu_two_moons.png",
                 "grid25_comparison.png", "square_to_grid25.safetensors", "summary.json",
                 "digits/report.html", "digits/samples.png"):
        assert (out / name).stat().st_size > 1000, name
        assert name.split("/")[0] in summary["files"]
    on_disk = json.loads((out / "summary.json").read_text(), parse_constant=_no_nan)
    assert on_disk["files"] == summary["files"] and on_disk["quick"] is True
    assert any("WGAN-GP" in line for line in lines) and lines[-1].endswith(f"to {out}/")


def test_quick_demo_numbers(demo):
    _, summary, _ = demo
    gens = summary["grid25"]["generators"]
    pl, naive = gens["brenier (singular-aware)"], gens["brenier (naive)"]
    plain = gens["brenier (plain map T)"]
    assert pl["modes"] == 25 and pl["hq"] > naive["hq"] + 10  # the naive extension mixes modes
    assert pl["copies_percent"] == 0 and plain["copies_percent"] == 100  # T only copies targets
    assert sum("small budget" in name for name in gens) == 2
    digits = summary["digits"]["evaluation"]
    assert {"brenier", "latent DDPM", "pixel DDPM", "VAE", "AE + Gaussian"} <= set(digits)
    gu = summary["gu_figure"]["two_moons"]
    assert gu["n_singular"] > 0
    assert gu["outside_percent_singular_aware"] < gu["outside_percent_naive"]
    assert all(p["converged"] for p in summary["problems"].values())
