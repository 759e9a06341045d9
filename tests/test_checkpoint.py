"""A run killed mid-way resumes from its checkpoint and ends with the same heights."""

import numpy as np
import pytest

from brenier import BrenierError, SemiDiscreteOT


class Killed(Exception):
    pass


def _kill_at(step):
    def callback(record):
        if record["step"] == step:
            raise Killed

    return callback


@pytest.mark.parametrize("backend", ["faiss", "kdtree"])
def test_killed_run_resumes_to_the_same_heights(tmp_path, backend):
    d = 6 if backend == "faiss" else 2
    y = np.random.default_rng(0).standard_normal((60, d))
    kwargs = dict(seed=3, tol=1e-4, max_iter=12, backend=backend, method="monte-carlo")
    reference = SemiDiscreteOT("uniform", **kwargs).fit(y)
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        SemiDiscreteOT("uniform", checkpoint=ckpt, **kwargs).fit(y, callback=_kill_at(4))
    assert ckpt.exists()
    resumed = SemiDiscreteOT("uniform", checkpoint=ckpt, **kwargs).fit(y)
    np.testing.assert_array_equal(resumed.heights_, reference.heights_)
    assert resumed.n_iter_ == reference.n_iter_
    assert [r["chi2"] for r in resumed.history_] == [r["chi2"] for r in reference.history_]


def test_checkpoint_of_another_problem_is_refused(tmp_path):
    y = np.random.default_rng(1).standard_normal((20, 3))
    ckpt = tmp_path / "run.ckpt"
    SemiDiscreteOT("uniform", checkpoint=ckpt, max_iter=2, method="monte-carlo").fit(y)
    with pytest.raises(BrenierError, match="checkpoint: .* different problem"):
        SemiDiscreteOT("uniform", checkpoint=ckpt, max_iter=2, method="monte-carlo").fit(y + 1e-3)
