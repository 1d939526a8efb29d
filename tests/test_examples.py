"""The example grids reproduce the seed notebooks exactly, through the CLI and the Parquet rows."""
from pathlib import Path

import numpy as np
import pytest

from sweep.cli import main
from sweep.results import load
from tests import notebooks as nb

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, tmp_path):
    assert main(["run", str(EXAMPLES / name), "--out", str(tmp_path), "--quiet"]) == 0
    return load(next(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("_")))


@pytest.mark.slow
def test_example_notebook_002(tmp_path):
    (row,) = run_example("notebook_002_xor.toml", tmp_path).itertuples()
    np.testing.assert_array_equal(row.checkpoint_epochs, nb.NB002_STATES)
    np.testing.assert_array_equal(np.round(row.checkpoint_loss, 4), nb.NB002_LOSSES)
    np.testing.assert_allclose(np.reshape(row.w1_final, (2, 4)), nb.NB002_W1, atol=5e-9)
    np.testing.assert_allclose(row.w2_final, nb.NB002_W2, atol=5e-9)
    np.testing.assert_allclose(row.b1_final, nb.NB002_B1, atol=5e-9)
    np.testing.assert_allclose(row.b2_final, [nb.NB002_B2], atol=5e-9)
    np.testing.assert_allclose(row.outputs, nb.NB002_PREDICTIONS, atol=5e-9)
    np.testing.assert_array_equal(np.asarray(row.outputs) > 0.5, [0, 1, 1, 0])
    assert row.converged and row.accuracy == 1.0


@pytest.mark.slow
def test_example_notebook_001(tmp_path):
    df = run_example("notebook_001_one_sample.toml", tmp_path).set_index("epochs")
    one = df.loc[1]
    np.testing.assert_allclose(np.reshape(one.w1_final, (2, 2)).T, nb.NB001_W1_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(one.b1_final, nb.NB001_B1_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(one.w2_final, nb.NB001_W2_AFTER_ONE, atol=5e-9)
    np.testing.assert_allclose(one.b2_final, [nb.NB001_B2_AFTER_ONE], atol=5e-9)
    long = df.loc[10001]
    np.testing.assert_array_equal(long.checkpoint_epochs, nb.NB001_STATES)
    np.testing.assert_allclose(long.checkpoint_loss, nb.NB001_LOSSES, rtol=1e-9)


@pytest.mark.slow
def test_example_notebook_000(tmp_path):
    df = run_example("notebook_000_saturation.toml", tmp_path).set_index("loss", drop=False)
    sat, fixed = df.loc["mse"], df.loc["bce"]
    np.testing.assert_array_equal(np.round(sat.checkpoint_loss, 6), nb.NB000_SATURATED_LOSSES)
    assert sat.outcome == "saturated" and not sat.converged
    np.testing.assert_array_equal(np.round(fixed.checkpoint_loss, 6), nb.NB000_FIXED_LOSSES)
    np.testing.assert_array_equal(np.round(fixed.outputs), nb.NB000_FIXED_PREDICTIONS)
    assert fixed.outcome == "converged"
