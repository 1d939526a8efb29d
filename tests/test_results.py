"""`sweep.load` and the results directory as every Parquet reader sees it."""
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

import sweep
from sweep import store
from sweep.cli import main
from sweep.errors import SweepError, SweepWarning
from tests.test_runner import write_grid


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("results")
    grid = write_grid(tmp, chunk=16, seeds=4)
    grid.write_text(grid.read_text().replace("checkpoints = 4", "checkpoints = [0, 10, 100]"))
    assert main(["run", str(grid), "--out", str(tmp), "--quiet"]) == 0
    return tmp / "t"


def test_every_reader_reads_the_directory_as_it_is_with_everything_a_sweep_keeps_beside_it(results, tmp_path):
    """After a figure, a SLURM script and a quarantined part, pandas, pyarrow, Polars and DuckDB still read
    the results directory itself (no glob, no filter) and agree with sweep.load."""
    import duckdb
    import polars as pl
    import pyarrow.dataset as ds

    out = tmp_path / "t"
    shutil.copytree(results, out)
    grid = write_grid(tmp_path, chunk=16, seeds=4)
    grid.write_text(grid.read_text().replace("checkpoints = 4", "checkpoints = [0, 10, 100]"))
    assert main(["plot", str(out)]) == 0
    assert main(["slurm", str(grid), "--out", str(tmp_path), "--tasks", "2"]) == 0
    store.quarantine(out, next(iter(store.list_parts(out).values())))
    assert main(["run", str(grid), "--out", str(tmp_path), "--quiet"]) == 0  # trains the part again
    assert sorted(p.name for p in (tmp_path / "_t").iterdir()) == ["figure.png", "lock", "quarantine", "slurm",
                                                                   "tmp", "writers"]
    want = sweep.load(out)
    assert len(want) == 32
    readers = {
        "pandas": pd.read_parquet(out),
        "pyarrow": ds.dataset(out, format="parquet").to_table().to_pandas(),
        "polars": pl.read_parquet(out).to_pandas(),
        "duckdb": duckdb.sql(f"select * from read_parquet('{out}/*.parquet')").df(),
    }
    for name, df in readers.items():
        assert len(df) == 32 and sorted(df["run_id"]) == sorted(want["run_id"]), name
        got = df.sort_values("run_id")["final_loss"].to_numpy()
        np.testing.assert_array_equal(got, want["final_loss"].to_numpy(), err_msg=name)


def test_load_of_columns_and_list_parameters(results):
    df = sweep.load(results, columns=["lr", "final_loss"])
    assert list(df.columns) == ["lr", "final_loss"] and len(df) == 32
    full = sweep.load(results)
    assert full["checkpoints"].map(type).eq(tuple).all() and full["checkpoints"].iloc[0] == (0, 10, 100)
    assert full["checkpoints"].nunique() == 1  # hashable: group-bys and summaries work
    with pytest.raises(SweepError, match="no column 'nope'"):
        sweep.load(results, columns=["nope"])


def test_summary_and_plot_work_with_explicit_checkpoints(results, tmp_path, capsys):
    assert main(["summary", str(results)]) == 0
    assert "runs" in capsys.readouterr().out
    assert main(["plot", str(results), "-o", str(tmp_path / "f.png")]) == 0


def test_an_incomplete_sweep_loads_what_is_written_and_says_so(results, tmp_path):
    out = tmp_path / "t"
    shutil.copytree(results, out)
    next(iter(store.list_parts(out).values())).unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = sweep.load(out)
    assert len(df) == 16
    assert [str(w.message) for w in caught if w.category is SweepWarning] == [
        f"{out}: the sweep is incomplete: 16 of 32 runs are written"]


def test_a_foreign_part_is_left_out_and_reported(results, tmp_path):
    out = tmp_path / "t"
    shutil.copytree(results, out)
    part = next(iter(store.list_parts(out).values()))
    shutil.copy(part, out / "part-00000000deadbeef.parquet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = sweep.load(out)
    assert len(df) == 32 and df["run_id"].is_unique
    assert any("1 part file of another grid" in str(w.message) for w in caught)
