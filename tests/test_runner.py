"""`sweep run` and `sweep status`: results directory, resume, determinism, errors."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import sweep
from sweep import store
from sweep.cli import main
from sweep.results import load

GRID = """
name = "t"
epochs = {epochs}
checkpoints = 4
chunk_size = {chunk}
save_weights = {weights}
[grid]
init_scale = [0.3, 3.0]
loss = ["mse", "bce"]
lr = [0.5, 2.0]
seed = {{ range = [0, {seeds}] }}
"""
TIMING = ["chunk_seconds"]


def write_grid(tmp_path, epochs=300, chunk=16, seeds=8, weights="false", name="grid.toml"):
    path = tmp_path / name
    path.write_text(GRID.format(epochs=epochs, chunk=chunk, seeds=seeds, weights=weights))
    return path


def rows(path):
    """Every column but timing, sorted by run_id."""
    return load(path).drop(columns=TIMING)


def assert_same_rows(a, b):
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def run_cli(*args):
    return main(["run", *map(str, args), "--quiet"])


def test_run_writes_a_parquet_dataset_readable_by_pandas_duckdb_polars(tmp_path):
    grid = write_grid(tmp_path)
    assert run_cli(grid, "--out", tmp_path / "res") == 0
    out = tmp_path / "res" / "t"
    manifest = store.read_manifest(out)
    assert manifest["runs"] == 64 and len(manifest["chunks"]) == 4
    assert {"grid", "grid_hash", "versions", "created"} <= set(manifest)
    df = pd.read_parquet(out)
    assert len(df) == 64 and df["run_id"].is_unique
    import duckdb
    import polars as pl

    assert duckdb.sql(f"select count(*) from read_parquet('{out}/*.parquet')").fetchall() == [(64,)]
    assert pl.read_parquet(f"{out}/*.parquet").height == 64
    tidy = sweep.load(out)
    assert isinstance(tidy["loss"].dtype, pd.CategoricalDtype)
    assert isinstance(tidy["outcome"].dtype, pd.CategoricalDtype)
    assert tidy["epoch_converged"].dtype == "Int64"
    assert tidy["epoch_converged"].isna().sum() == (~tidy["converged"] & tidy["epoch_converged"].isna()).sum()
    assert isinstance(tidy["checkpoint_loss"].iloc[0], np.ndarray) and len(tidy["checkpoint_loss"].iloc[0]) == 4
    for col in ["run_id", "converged", "epoch_converged", "epochs_run", "final_loss", "min_loss", "final_mse",
                "accuracy", "outcome", "lr", "loss", "init_scale", "seed"]:
        assert col in tidy
    # Rows are what the kernel gives for those runs.
    assert (tidy["min_loss"] <= tidy["final_loss"] + 1e-15).all()
    assert set(tidy["outcome"].astype(str)) <= {"converged", "improving", "saturated", "flat", "diverged"}


def test_save_weights_adds_list_columns_of_the_right_shapes(tmp_path):
    grid = write_grid(tmp_path, weights="true", seeds=2)
    assert run_cli(grid, "--out", tmp_path) == 0
    df = sweep.load(tmp_path / "t")
    row = df.iloc[0]
    assert len(row["w1_init"]) == 2 * 4 and len(row["b1_init"]) == 4 and len(row["w2_init"]) == 4
    assert len(row["b2_final"]) == 1
    # The initial weights are the seed's direction times init_scale: paired across the grid.
    same_seed = df[(df["seed"] == row["seed"]) & (df["init_scale"] == 3.0)].iloc[0]
    other = df[(df["seed"] == row["seed"]) & (df["init_scale"] == 0.3)].iloc[0]
    np.testing.assert_allclose(same_seed["w1_init"] / 3.0, other["w1_init"] / 0.3, rtol=1e-15)


def test_rows_identical_across_jobs_backends_and_chunking_of_work(tmp_path):
    grid = write_grid(tmp_path)
    assert run_cli(grid, "--out", tmp_path / "a", "--jobs", "1") == 0
    assert run_cli(grid, "--out", tmp_path / "b", "--jobs", "2") == 0
    assert run_cli(grid, "--out", tmp_path / "c", "--jobs", "2", "--backend", "processes") == 0
    a = rows(tmp_path / "a" / "t")
    assert_same_rows(a, rows(tmp_path / "b" / "t"))
    assert_same_rows(a, rows(tmp_path / "c" / "t"))


def test_rerun_skips_finished_parts_and_rebuilds_missing_and_corrupt_ones(tmp_path, capsys):
    grid = write_grid(tmp_path)
    assert run_cli(grid, "--out", tmp_path) == 0
    out = tmp_path / "t"
    before = rows(out)
    parts = sorted(store.list_parts(out).values())
    mtimes = {p: p.stat().st_mtime_ns for p in parts}
    parts[0].unlink()
    data = parts[1].read_bytes()
    parts[1].write_bytes(data[:100])
    (out / f".part-{parts[2].stem[5:]}.999.abcd.tmp").write_bytes(b"partial")
    assert main(["run", str(grid), "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "is corrupt" in err and "re-running it" in err and "resuming: 2 of 4" in err
    assert (out / "_corrupt" / parts[1].name).exists()
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    assert parts[3].stat().st_mtime_ns == mtimes[parts[3]]  # untouched
    assert_same_rows(before, rows(out))


def test_changed_grid_is_refused_and_nothing_is_touched(tmp_path, capsys):
    grid = write_grid(tmp_path)
    assert run_cli(grid, "--out", tmp_path) == 0
    out = tmp_path / "t"
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    changed = write_grid(tmp_path, seeds=9, name="changed.toml")
    assert run_cli(changed, "--out", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "different grid" in err and "seed" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot
    assert run_cli(changed, "--out", tmp_path, "--overwrite") == 0
    assert store.read_manifest(out)["runs"] == 72 and len(load(out)) == 72


def test_status_of_grid_and_directory(tmp_path, capsys):
    grid = write_grid(tmp_path)
    assert main(["status", str(grid), "--out", str(tmp_path)]) == 1
    assert "0/4 parts, 0/64 runs" in capsys.readouterr().out
    assert run_cli(grid, "--out", tmp_path) == 0
    next(iter(store.list_parts(tmp_path / "t").values())).unlink()
    assert main(["status", str(tmp_path / "t")]) == 1
    assert "3/4 parts, 48/64 runs" in capsys.readouterr().out
    assert main(["status", str(tmp_path / "nothing")]) == 2


def test_unwritable_output_and_full_disk_are_clear_errors(tmp_path, capsys, monkeypatch):
    grid = write_grid(tmp_path)
    (tmp_path / "file").write_text("")
    assert run_cli(grid, "--out", tmp_path / "file") == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: cannot write to output directory") and err.count("\n") == 1

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    assert run_cli(grid, "--out", tmp_path / "disk") == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and err.count("\n") == 1
    assert store.list_parts(tmp_path / "disk" / "t") == {}
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "disk" / "t").iterdir())


def _start(grid, out, *extra):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "sweep", "run", str(grid), "--out", str(out), "--jobs", "1",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _wait_for_parts(out, n, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(store.list_parts(out)) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before {n} parts: {proc.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("timed out waiting for parts")


@pytest.mark.slow
def test_kill_9_mid_sweep_then_resume_gives_the_rows_of_an_uninterrupted_run(tmp_path):
    grid = write_grid(tmp_path, epochs=4000, chunk=8, seeds=16)
    assert run_cli(grid, "--out", tmp_path / "whole", "--jobs", "2") == 0
    whole = rows(tmp_path / "whole" / "t")
    out = tmp_path / "killed" / "t"
    for n in (2, 5):
        proc = _start(grid, tmp_path / "killed")
        _wait_for_parts(out, n, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = len(store.list_parts(out))
        assert done < 16
        # Readers see only complete parts: every row readable, no duplicates.
        partial = pd.read_parquet(out)
        assert partial["run_id"].is_unique and len(partial) == 8 * done
    proc = _start(grid, tmp_path / "killed")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resuming" in err
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    assert_same_rows(whole, rows(out))


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    grid = write_grid(tmp_path, epochs=4000, chunk=8, seeds=16)
    out = tmp_path / "t"
    proc = _start(grid, tmp_path)
    _wait_for_parts(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "interrupted" in err and "python -m sweep run" in err
    assert main(["run", str(grid), "--out", str(tmp_path), "--quiet"]) == 0
    assert len(load(out)) == 128


def test_no_checkpoints_gives_empty_lists(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('name = "none"\nepochs = 50\ncheckpoints = 0\n[grid]\nseed = [0, 1, 2]\n')
    assert run_cli(path, "--out", tmp_path) == 0
    df = load(tmp_path / "none")
    assert [len(v) for v in df["checkpoint_loss"]] == [0, 0, 0]
    assert df["epochs_run"].tolist() == [50, 50, 50]


def test_a_slow_kernel_load_says_it_is_compiling(monkeypatch):
    import kernels
    from sweep.runner import _warm_up

    said = []
    monkeypatch.setattr(kernels, "warm_up", lambda dtypes: time.sleep(0.3))
    _warm_up(["float64"], said.append, patience=0.05)
    assert said == ["sweep: compiling the kernels (first start only: later starts load them from Numba's cache)"]
    said.clear()
    monkeypatch.setattr(kernels, "warm_up", lambda dtypes: None)
    _warm_up(["float64"], said.append, patience=0.5)
    time.sleep(0.6)
    assert said == []
