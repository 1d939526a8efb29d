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


# --------------------------------------------------------------------------- load: content, part by part

VARIED = """
name = "v"
epochs = 60
checkpoints = 3
chunk_size = 8
save_weights = true
early_stop = true
[grid]
dataset = ["xor", "and"]
lr_hidden = [0.5, 2.0]
lr_output = [0.5, 80.0]
seed = { range = [0, 2] }
[[extra]]
bias = false
dataset = "or"
"""


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    """24 runs in 3 parts: names, NaN learning rates, nulls (epoch_converged, the bias weights of the runs
    without biases), list columns; most parameters fixed for the whole sweep."""
    tmp = tmp_path_factory.mktemp("varied")
    (tmp / "v.toml").write_text(VARIED)
    assert main(["run", str(tmp / "v.toml"), "--out", str(tmp), "--quiet"]) == 0
    return tmp / "v"


def expected_rows(path):
    """What sweep.load must give, read independently: each part of the manifest (in its order) read by
    pyarrow.parquet.read_table, the strings as dictionaries, concatenated, sorted by run_id by Arrow,
    converted by Arrow's to_pandas at once, then the types of load's docstring."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from sweep.results import CATEGORICAL, LIST_PARAMETERS

    manifest, schema = store.read_manifest(path)
    strings = [f.name for f in schema if f.name != "run_id" and f.type in (pa.string(), pa.large_string())]
    tables = [pq.read_table(store.Layout(path).part(cid), read_dictionary=strings) for cid in manifest["chunks"]
              if store.Layout(path).part(cid).exists()]
    table = pa.concat_tables(tables)
    table = table.take(pc.sort_indices(table, [("run_id", "ascending")])).replace_schema_metadata(None)
    df = table.to_pandas()
    for name, cats in CATEGORICAL.items():
        if name in df:
            values = df[name].astype(object)
            df[name] = pd.Categorical(values.where(values.isin(cats)), categories=cats)  # not listed: NaN
    if "epoch_converged" in df:
        df["epoch_converged"] = df["epoch_converged"].astype("Int64")
    for name in LIST_PARAMETERS:
        if name in df and df[name].dtype == object:
            df[name] = [v if v is None else tuple(int(e) for e in v) for v in df[name]]
    return df


def assert_same_frame(got, want):
    """Equal columns, dtypes (categories and their order included) and values, bit for bit for numbers;
    list cells as NumPy arrays of the same dtype."""
    assert list(got.columns) == list(want.columns)
    assert got.dtypes.to_dict() == want.dtypes.to_dict()
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_categorical=True)
    for name in got.columns:
        if got[name].dtype.kind in "fiub":
            a, b = np.ascontiguousarray(got[name]), np.ascontiguousarray(want[name])
            assert a.tobytes() == b.tobytes(), name  # -0.0 and the NaNs too
        elif got[name].dtype == object:
            for a, b in zip(got[name], want[name]):
                assert type(a) is type(b), name
                if isinstance(a, np.ndarray):
                    assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name


def test_load_gives_the_rows_of_an_independent_read_of_the_parts(varied):
    df = sweep.load(varied)
    want = expected_rows(varied)
    assert len(df) == 24 and df["run_id"].is_monotonic_increasing
    assert_same_frame(df, want)
    assert list(df["dataset"].cat.categories) == list(want["dataset"].cat.categories)  # the order met
    assert df["lr"].isna().any() and df["w1_init"].map(lambda v: isinstance(v, np.ndarray)).all()
    assert df["b1_init"].isna().any()  # the runs without biases
    assert df.attrs["path"] == str(varied)


def test_a_column_selection_keeps_the_order_and_types_it_had(varied):
    """With run_id the rows are sorted and run_id comes first; without it they come as the parts do."""
    import pyarrow.parquet as pq

    want = expected_rows(varied)
    got = sweep.load(varied, columns=["lr", "run_id", "dataset", "lr"])
    assert list(got.columns) == ["run_id", "lr", "dataset"]
    assert_same_frame(got, want[["run_id", "lr", "dataset"]].reset_index(drop=True))
    manifest, _ = store.read_manifest(varied)
    parts = [pq.read_table(store.Layout(varied).part(cid), columns=["seed", "final_loss"]).to_pandas()
             for cid in manifest["chunks"]]
    got = sweep.load(varied, columns=["seed", "final_loss"])
    pd.testing.assert_frame_equal(got, pd.concat(parts, ignore_index=True), check_exact=True)


def test_a_part_left_out_leaves_the_other_rows_where_they_belong(varied, tmp_path):
    out = tmp_path / "v"
    shutil.copytree(varied, out)
    parts = sorted(store.list_parts(out).values())
    parts[1].write_bytes(parts[0].read_bytes())  # the footer says another chunk: left out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = sweep.load(out)
    assert [w.category for w in caught] == [SweepWarning] and parts[1].name in str(caught[0].message)
    parts[1].unlink()
    assert len(df) == 16
    assert_same_frame(df, expected_rows(out))


def test_read_table_is_the_parts_one_after_the_other(varied):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sweep.results import read_table

    def ipc(table):  # its bytes: equal tables, NaNs included
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    manifest, _ = store.read_manifest(varied)
    paths = [store.Layout(varied).part(cid) for cid in manifest["chunks"]]
    assert ipc(read_table(varied)) == ipc(pa.concat_tables([pq.read_table(p) for p in paths]))
    got = read_table(varied, columns=["lr", "dataset"], dictionary=True)
    assert got.column_names == ["lr", "dataset"] and pa.types.is_dictionary(got.schema.field("dataset").type)
    want = pa.concat_tables([pq.read_table(p, columns=["lr", "dataset"], read_dictionary=["dataset"]) for p in paths])
    assert ipc(got) == ipc(want)


def test_fixed_parameters_are_one_value_each_and_user_code_can_still_write_into_them(varied):
    df = sweep.load(varied)
    want = expected_rows(varied)
    for name in ["hidden", "epochs", "init_scale", "momentum", "early_stop", "save_weights", "loss", "init"]:
        values = df[name].array.codes if df[name].dtype == "category" else df[name].to_numpy()
        assert values.strides == (0,) and not values.flags.writeable, name
    assert df["seed"].to_numpy().strides == (8,)  # a column that varies is a plain array
    mask = (df["seed"] == 1).to_numpy()
    df.loc[mask, "hidden"] = 3
    df["epochs"] *= 2
    df.iloc[0, df.columns.get_loc("init_scale")] = 7.5
    df.loc[mask, "early_stop"] = False
    df.loc[mask, "loss"] = "bce"
    df.at[1, "momentum"] = 0.5
    df.fillna({"lr": -1.0}, inplace=True)
    assert df["hidden"].tolist() == np.where(mask, 3, 4).tolist() and df["hidden"].dtype == np.int64
    assert (df["epochs"] == 120).all() and df["init_scale"].tolist() == [7.5] + [1.0] * 23
    assert df["early_stop"].tolist() == (~mask).tolist()
    assert df["loss"].tolist() == np.where(mask, "bce", "mse").tolist()
    assert df["momentum"].tolist() == [0.0, 0.5] + [0.0] * 22 and not df["lr"].isna().any()
    for name in ["hidden", "epochs", "init_scale", "early_stop", "loss", "momentum"]:
        assert df[name].dtype == want[name].dtype, name
    # a view of a loaded frame, and a frame loaded again, are as loaded
    df = sweep.load(varied)
    view = df.copy(deep=False)
    df.loc[mask, "hidden"] = 3
    df.iloc[0, df.columns.get_loc("init_scale")] = 7.5
    assert_same_frame(view, want)
    assert_same_frame(sweep.load(varied), want)


def test_the_frame_holds_a_fixed_parameter_as_one_value_not_one_per_row(tmp_path):
    """A trainability map's sweep: every parameter but the seed fixed. The number columns of the frame
    hold the seed and the statistic, and one value for each of the others; while loading, what load
    allocates itself (traced: NumPy and Python) stays within a few copies of the columns that vary (the
    manifest writes the seed axis as its range: its parse takes next to nothing)."""
    import tracemalloc

    n = 20000
    grid = tmp_path / "m.toml"
    grid.write_text(f'name = "m"\nrecord = ["trainability"]\nepochs = 5\n[grid]\nseed = {{ range = [0, {n}] }}\n')
    assert main(["run", str(grid), "--out", str(tmp_path), "--quiet"]) == 0
    path = tmp_path / "m"
    sweep.load(path)  # imports
    tracemalloc.start()
    store.read_manifest(path)
    manifest_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    df = sweep.load(path)
    load_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert_same_frame(df, expected_rows(path))
    byte_bounds = getattr(np, "byte_bounds", None) or np.lib.array_utils.byte_bounds  # NumPy 1, 2
    held = 0
    for name in df.columns:
        if df[name].dtype.kind in "iufb":
            lo, hi = byte_bounds(df[name].to_numpy())
            held += hi - lo
    assert 2 * 8 * n <= held < 2 * 8 * n + 8 * len(df.columns)  # seed and trainability, one value of the others
    varying = 16 + 8 + 8  # bytes per row of run_id, seed and trainability
    # ~4.3 copies of them here; the dozen fixed number columns materialised would add 96 bytes a row (3 copies)
    assert load_peak < manifest_peak + 6 * varying * n


def test_load_converts_what_sweep_run_never_writes_as_arrow_does(tmp_path):
    """Parts written by hand: nulls in some parts only (ints become floats, bools objects), -0.0 beside 0.0,
    a list<int> column with a null element (every list of it becomes floats), names that differ from part
    to part (categories in the order met), a listed name that is not a category (NaN)."""
    import pyarrow as pa

    from sweep.plan import chunk_id

    rng = np.random.default_rng(0)
    layout = store.Layout(tmp_path / "h")
    store.make_dir(layout.data)
    store.make_dir(layout.tmp)
    parts = [
        {"epoch_converged": [1, None, 3, 4], "epochs_run": [5, 5, 5, 5], "flag": [True, None, False, True],
         "zero": [0.0] * 4, "nan": [None] * 4, "name": ["b", "a", "b", "b"], "loss": ["mse"] * 4,
         "steps": [[0, 1], [2], None, []], "curve": [[0.5], None, [1.5, 2.5], []], "checkpoints": [[0, 10]] * 4},
        {"epoch_converged": [2, 2, 2, 2], "epochs_run": [5, 5, 5, 5], "flag": [True] * 4,
         "zero": [0.0] * 4, "nan": [float("nan")] * 4, "name": ["c"] * 4, "loss": ["weird", "bce", "mse", "mse"],
         "steps": [[1, None], [2], [3], [4]], "curve": [[1.0]] * 4, "checkpoints": [[0, 10]] * 4},
        {"epoch_converged": [None] * 4, "epochs_run": [None, 6, 6, 6], "flag": [False] * 4,
         "zero": [-0.0] * 4, "nan": [float("nan")] * 4, "name": ["a"] * 4, "loss": ["mse"] * 4,
         "steps": [[5]] * 4, "curve": [[2.0]] * 4, "checkpoints": [[0, 10]] * 4},
    ]
    types = {"epoch_converged": pa.int64(), "epochs_run": pa.int64(), "flag": pa.bool_(), "zero": pa.float64(),
             "nan": pa.float64(), "name": pa.large_string(), "loss": pa.large_string(),
             "steps": pa.list_(pa.int64()), "curve": pa.list_(pa.float64()), "checkpoints": pa.list_(pa.int64())}
    chunks = {}
    for columns in parts:
        ids = [f"{v:016x}" for v in rng.integers(0, 2 ** 63, 4)]
        table = pa.table({"run_id": pa.array(ids, pa.large_string()),
                          **{k: pa.array(v, types[k]) for k, v in columns.items()}})
        cid = chunk_id(np.array(ids, dtype="S16"))
        store.write_part(layout, cid, table, "0" * 16, layout.tmp)
        chunks[cid] = 4
    store.write_manifest(layout, {"grid_hash": "0" * 16, "chunks": chunks}, table.schema, layout.tmp)
    df = sweep.load(layout.data)
    assert_same_frame(df, expected_rows(layout.data))
    assert df["epochs_run"].dtype == np.float64 and df["flag"].dtype == object and df["flag"].isna().sum() == 1
    assert df["steps"].dropna().map(lambda a: a.dtype == np.float64).all()
    order = list(store.read_manifest(layout)[0]["chunks"])
    met = [name for cid in order for name in parts[list(chunks).index(cid)]["name"]]
    assert df["loss"].isna().sum() == 1 and list(df["name"].cat.categories) == list(dict.fromkeys(met))
    assert np.signbit(df["zero"]).sum() == 4 and df["checkpoints"].iloc[0] == (0, 10)
    assert df["nan"].to_numpy().strides == (0,) and df["nan"].isna().all()
