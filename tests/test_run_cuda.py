"""`sweep run --backend cuda`: the same rows as the CPU backend, to rounding.

In CI there is no GPU: tests/conftest.py turns on Numba's CUDA simulator, which runs the very same
kernel in Python threads (slowly: the grids here are tiny). With NUMBA_ENABLE_CUDASIM=0 on a GPU
machine the same tests run on the GPU.
"""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sweep.cli import main
from tests.test_runner import TIMING, rows

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install numba-cuda)")

GRID = """
name = "gpu"
epochs = 60
checkpoints = 4
chunk_size = 4
save_weights = true
dtype = "{dtype}"
[grid]
init_scale = [0.5, 2.0]
loss = ["mse", "bce"]
lr = [0.5, 2.0]
seed = {{ range = [0, 2] }}
"""

EXACT = ["run_id", "converged", "epoch_converged", "epochs_run", "outcome", "diverged", "checkpoint_epochs"]


@pytest.mark.slow
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 2e-4)])
def test_cuda_rows_equal_cpu_rows_to_rounding(tmp_path, capsys, dtype, rtol):
    """float64 to 1e-9 relative (CUDA's exp and fused multiply-adds round differently from ours in
    the last bit; 60 epochs amplify it a little), float32 to 2e-4; the integer statistics exactly."""
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.format(dtype=dtype))
    assert main(["run", str(grid), "--out", str(tmp_path / "gpu"), "--backend", "cuda"]) == 0
    err = capsys.readouterr().err
    assert "sweep: training on " in err and "16 runs (16 trained now in 4 chunks)" in err
    assert main(["run", str(grid), "--out", str(tmp_path / "cpu"), "--quiet"]) == 0
    gpu, cpu = rows(tmp_path / "gpu" / "gpu"), rows(tmp_path / "cpu" / "gpu")
    assert list(gpu.columns) == list(cpu.columns) and len(gpu) == 16
    # the same parts: a sweep can be resumed on the other backend
    assert sorted(p.name for p in (tmp_path / "gpu" / "gpu").glob("part-*")) == \
        sorted(p.name for p in (tmp_path / "cpu" / "gpu").glob("part-*"))
    for col in EXACT:
        pd.testing.assert_series_equal(gpu[col].astype(object), cpu[col].astype(object), check_names=False)
    numeric = [c for c in cpu.columns if c not in EXACT and c not in TIMING
               and pd.api.types.is_numeric_dtype(cpu[c]) and not isinstance(cpu[c].dtype, pd.CategoricalDtype)]
    assert {"final_loss", "min_loss", "final_mse", "grad_norm", "sat_hidden_end", "lr"} <= set(numeric)
    for col in numeric:
        np.testing.assert_allclose(gpu[col].to_numpy(float), cpu[col].to_numpy(float), rtol=rtol, atol=1e-12,
                                   err_msg=col)
    for col in ["outputs", "checkpoint_loss", "w1_init", "w1_final", "b1_final", "w2_final", "b2_final"]:
        np.testing.assert_allclose(np.stack(gpu[col]), np.stack(cpu[col]), rtol=rtol, atol=1e-12, err_msg=col)


def test_no_gpu_is_a_one_line_error(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.format(dtype="float64"))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(grid), "--out", str(tmp_path / "res"),
                           "--backend", "cuda"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("sweep: error: --backend cuda: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "res").exists()
