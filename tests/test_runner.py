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
    manifest, _ = store.read_manifest(out)
    assert manifest["runs"] == 64 and len(manifest["chunks"]) == 4
    assert {"grid", "grid_hash", "versions", "created"} <= set(manifest)
    df = pd.read_parquet(out)
    assert len(df) == 64 and df["run_id"].is_unique
    import duckdb
    import polars as pl

    assert duckdb.sql(f"select count(*) from read_parquet('{out}/*.parquet')").fetchall() == [(64,)]
    assert pl.read_parquet(out).height == 64
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
    # Parameters and few-valued statistics are dictionary-encoded on disk; run ids and losses are not tried.
    meta = pq.ParquetFile(next(out.glob("part-*.parquet"))).metadata
    encodings = {meta.schema.column(i).name: meta.row_group(0).column(i).encodings for i in range(meta.num_columns)}
    for name in ("loss", "lr", "seed", "dataset", "outcome", "epochs_run"):
        assert "RLE_DICTIONARY" in encodings[name] or "PLAIN_DICTIONARY" in encodings[name], (name, encodings[name])
    for name in ("run_id", "final_loss", "grad_norm"):
        assert not {"RLE_DICTIONARY", "PLAIN_DICTIONARY"} & set(encodings[name]), (name, encodings[name])


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


def test_a_sweep_with_one_worker_does_not_import_joblib(tmp_path):
    """One worker trains in the calling thread: joblib (with loky and psutil, about 60 ms) stays out of the
    start-up of a small sweep, which issue 15 counts; the rows are those of two workers (test above)."""
    grid = write_grid(tmp_path, epochs=5, seeds=4)
    code = ("import sys; from sweep.cli import main; "
            f"code = main(['run', {str(grid)!r}, '--out', {str(tmp_path / 'out')!r}, '--jobs', '1', '--quiet']); "
            "print(code, 'joblib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["0", "False"], done.stderr


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
    dead_writer = tmp_path / "_t" / "tmp" / "host-999-abcdef"  # a killed writer's temporaries
    dead_writer.mkdir(parents=True)
    (dead_writer / f"{parts[2].name}.999.abcd.tmp").write_bytes(b"partial")
    assert main(["run", str(grid), "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert f"part {parts[1].name} unreadable" in err and "training its runs again" in err
    assert "resuming: 2 of 4" in err
    assert (tmp_path / "_t" / "quarantine" / parts[1].name).exists()
    assert not dead_writer.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([store.MANIFEST] + [p.name for p in parts])
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
    assert store.read_manifest(out)[0]["runs"] == 72 and len(load(out)) == 72


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
    assert list((tmp_path / "disk" / "t").iterdir()) == []  # even the manifest could not be written
    assert not any((tmp_path / "disk" / "_t" / "tmp").iterdir())


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
    assert all(p.name == store.MANIFEST or p.name.startswith("part-") for p in out.iterdir())
    assert not any((tmp_path / "killed" / "_t" / "tmp").iterdir())
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
    calls = []
    monkeypatch.setattr(kernels, "warm_up", lambda dtypes, **variant: (calls.append((dtypes, variant)),
                                                                       time.sleep(0.3)))
    _warm_up([("float64", ("tanh", "identity", False, "ntk", "mean"))], said.append, patience=0.05)
    assert calls == [(("float64",), dict(activation="tanh", output="identity", bias=False, scaling="ntk",
                                         reduction="mean"))]
    assert said == ["sweep: compiling the kernels (first start only: later starts load them from Numba's cache)"]
    said.clear()
    monkeypatch.setattr(kernels, "warm_up", lambda dtypes, **variant: None)
    _warm_up([("float64", ("sigmoid", "sigmoid", True, "standard", "sum"))], said.append, patience=0.5)
    time.sleep(0.6)
    assert said == []


# --------------------------------------------------------------------------- damaged parts

def _random_bytes_in_the_middle(path, other):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def _one_bit_flipped(path, other):
    # a bit in the middle of the largest column chunk, in its page data (a page's header is at its start;
    # bytes outside the pages, such as the page index, are never read back): the footer still reads, the
    # rows would not
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunk = max((meta.column(c) for c in range(meta.num_columns)), key=lambda c: c.total_compressed_size)
    start = min(o for o in (chunk.dictionary_page_offset, chunk.data_page_offset) if o is not None)
    data = bytearray(path.read_bytes())
    data[start + chunk.total_compressed_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _another_part_copied_over(path, other):
    path.write_bytes(other.read_bytes())


def _a_parquet_file_with_one_column(path, other):
    import pyarrow as pa

    pq.write_table(pa.table({"x": np.arange(16.0)}), path)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("written")
    grid = write_grid(tmp, chunk=16)
    assert run_cli(grid, "--out", tmp / "res") == 0
    return grid, tmp / "res"


@pytest.mark.parametrize("damage", [_random_bytes_in_the_middle, _one_bit_flipped, _another_part_copied_over,
                                    _a_parquet_file_with_one_column])
def test_a_damaged_part_is_found_by_status_left_out_by_load_and_trained_again_on_resume(written, tmp_path, capsys,
                                                                                         damage):
    import shutil
    import warnings

    from sweep.errors import SweepWarning

    grid, original = written
    shutil.copytree(original, tmp_path / "res")
    out = tmp_path / "res" / "t"
    before = rows(original / "t")
    parts = sorted(store.list_parts(out).values())
    damage(parts[1], parts[2])
    # status --verify finds it, reading only
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["status", str(out), "--verify"]) == 1
    report = capsys.readouterr().out
    assert "3/4 parts, 48/64 runs done" in report and f"  {parts[1].name}: " in report
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot
    # sweep.load leaves it out and says so
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load(out)
    assert len(df) == 48 and df["run_id"].is_unique and set(df["run_id"]) <= set(before["run_id"])
    assert any(parts[1].name in str(w.message) and w.category is SweepWarning for w in caught)
    assert (df["outputs"].map(lambda a: np.all((a >= 0) & (a <= 1)))).all()
    # resume moves it aside and trains it again: the rows of the undamaged sweep
    assert main(["run", str(grid), "--out", str(tmp_path / "res")]) == 0
    err = capsys.readouterr().err
    assert f"part {parts[1].name} " in err and "training its runs again" in err and "resuming: 3 of 4" in err
    assert (tmp_path / "res" / "_t" / "quarantine" / parts[1].name).exists()
    assert main(["status", str(out), "--verify"]) == 0
    assert_same_rows(before, rows(out))


def test_status_without_verify_reads_footers_only_and_still_catches_a_foreign_copy(written, tmp_path, capsys):
    import shutil

    grid, original = written
    shutil.copytree(original, tmp_path / "res")
    out = tmp_path / "res" / "t"
    parts = sorted(store.list_parts(out).values())
    _another_part_copied_over(parts[0], parts[3])
    assert main(["status", str(out)]) == 1
    report = capsys.readouterr().out
    assert f"  {parts[0].name}: holds chunk {parts[3].name[5:-8]}" in report


@pytest.mark.parametrize("content", [b"{not parquet", b""])
def test_an_unreadable_manifest_says_overwrite_and_overwrite_replaces_it(tmp_path, capsys, content):
    grid = write_grid(tmp_path, seeds=2)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / store.MANIFEST).write_bytes(content)
    assert run_cli(grid, "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert "is not a readable sweep manifest" in err and "--overwrite" in err and err.count("\n") == 1
    assert run_cli(grid, "--out", tmp_path, "--overwrite") == 0
    assert len(load(tmp_path / "t")) == 16


def test_a_float32_grid_with_data_beyond_float32_writes_nothing(tmp_path, capsys):
    path = tmp_path / "g.toml"
    path.write_text('name = "big"\ndataset = "big"\ndtype = "float32"\n'
                    '[datasets.big]\ninputs = [[0, 1e39], [1, 0]]\ntargets = [0, 1]\n')
    assert run_cli(path, "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert "datasets.big.inputs[0][1]: 1e+39 does not fit in float32" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.toml"]


def test_counts_are_singular_when_one(tmp_path, capsys):
    path = tmp_path / "g.toml"
    path.write_text('name = "one"\nepochs = 20\n')
    assert main(["run", str(path), "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "sweep: 1 run (1 trained now in 1 chunk), " in err
    assert main(["run", str(path), "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "resuming: 1 of 1 part already written" in err
    assert "nothing to train: all 1 run were already written" not in err  # the plural of the sentence, not the count
    assert "network-epochs/s" not in err and "sweep: nothing to train: the 1 run was already written" in err


def test_a_part_whose_pandas_metadata_differs_is_caught(written, tmp_path, capsys):
    """A flipped bit in a footer's pandas metadata renamed a column silently (review): now it fails the check."""
    import shutil

    grid, original = written
    shutil.copytree(original, tmp_path / "res")
    out = tmp_path / "res" / "t"
    part = sorted(store.list_parts(out).values())[0]
    table = pq.read_table(part)
    meta = dict(table.schema.metadata)
    meta[b"pandas"] = meta[b"pandas"].replace(b'"lr"', b'"kr"')
    pq.write_table(table.replace_schema_metadata(meta), part)
    assert main(["status", str(out)]) == 1
    assert "other pandas metadata" in capsys.readouterr().out
    assert main(["run", str(grid), "--out", str(tmp_path / "res"), "--quiet"]) == 0
    assert "lr" in load(out).columns and len(load(out)) == 64


def test_a_manifest_whose_chunks_are_not_its_grids_is_refused_and_moving_it_away_keeps_the_parts(written, tmp_path,
                                                                                                  capsys):
    import shutil

    grid, original = written
    shutil.copytree(original, tmp_path / "res")
    out = tmp_path / "res" / "t"
    manifest, schema = store.read_manifest(out)
    cid = next(iter(manifest["chunks"]))
    manifest["chunks"] = {("f" + c[1:] if c == cid else c): n for c, n in manifest["chunks"].items()}
    store.write_manifest(out, manifest, schema, tmp_path)
    assert run_cli(grid, "--out", tmp_path / "res") == 2
    err = capsys.readouterr().err
    assert "has this grid's hash but not its chunks" in err and "move it away" in err
    parts = {p.name: p.read_bytes() for p in out.iterdir() if p.name.startswith("part-")}
    (out / store.MANIFEST).unlink()
    assert run_cli(grid, "--out", tmp_path / "res") == 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name.startswith("part-")} == parts


def test_out_inside_a_results_directory_is_refused(written, tmp_path, capsys):
    grid, original = written
    assert run_cli(grid, "--out", original / "t") == 2
    err = capsys.readouterr().err
    assert "is inside the results directory" in err and err.count("\n") == 1
    assert not (original / "t" / "t").exists() and not (original / "t" / "_t").exists()


def test_a_fifo_named_like_a_part_does_not_hang(written, tmp_path):
    import shutil

    grid, original = written
    shutil.copytree(original, tmp_path / "res")
    out = tmp_path / "res" / "t"
    part = sorted(store.list_parts(out).values())[0]
    part.unlink()
    os.mkfifo(part)
    assert main(["status", str(out)]) == 1
    assert run_cli(grid, "--out", tmp_path / "res") == 0
    assert len(load(out)) == 64 and part.is_file()


def test_record_stores_only_the_chosen_statistics_and_a_changed_choice_is_refused(tmp_path, capsys):
    grid = write_grid(tmp_path, epochs=40, seeds=2)
    text = grid.read_text().replace("[grid]", 'record = ["trainability", "epoch_diverged", "final_loss"]\n[grid]')
    grid.write_text(text)
    out = tmp_path / "res"
    assert main(["run", str(grid), "--out", str(out)]) == 0
    assert "convergence not recorded" in capsys.readouterr().err
    df = load(out / "t")
    stats = [c for c in df.columns if c not in sweep.params.PARAM and c != "run_id"]
    assert stats == ["final_loss", "trainability", "epoch_diverged"]  # in the schema's order
    manifest, schema = store.read_manifest(out / "t")
    assert manifest["grid"]["record"] == stats and schema.names == list(df.columns)
    # The same statistics as a sweep that records everything.
    full = tmp_path / "full.toml"
    full.write_text(text.replace('record = ["trainability", "epoch_diverged", "final_loss"]\n', ""))
    assert run_cli(full, "--out", tmp_path / "all") == 0
    everything = load(tmp_path / "all" / "t").set_index("run_id").loc[df["run_id"]]
    pd.testing.assert_frame_equal(df.set_index("run_id")[stats], everything[stats])
    # Another choice of columns is another format: refused unless --overwrite.
    assert main(["run", str(grid), "--out", str(out), "--set", 'record=["trainability"]', "--quiet"]) == 2
    assert "with other columns (record = ['final_loss', 'trainability', 'epoch_diverged'] there, " \
           "record = ['trainability'] in this grid)" in capsys.readouterr().err
    assert main(["run", str(grid), "--out", str(out), "--set", 'record=["trainability"]', "--quiet",
                 "--overwrite"]) == 0
    assert [c for c in load(out / "t").columns if c not in sweep.params.PARAM] == ["run_id", "trainability"]


def test_parts_are_written_in_threads_and_counted_once_on_disk():
    """`_write_as_they_come`: every result written once and counted once it is; at most 2 x writers
    tables wait; a write's error comes out in the caller; an interrupt lets the writes under way finish."""
    import threading

    from sweep.runner import _write_as_they_come

    lock, active, most, on_disk = threading.Lock(), [0], [0], []

    def write(chunk, table):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.01)
        if chunk == "bad":
            raise OSError("disk full")
        with lock:
            active[0] -= 1
            on_disk.append(chunk)
        return table

    counted = []
    made = []

    def results(names):
        for name in names:
            made.append(name)
            yield name, len(made)

    _write_as_they_come(results([f"c{i}" for i in range(20)]), write, lambda c, r: counted.append((c, r)), writers=3)
    assert sorted(on_disk) == sorted(f"c{i}" for i in range(20)) and 1 < most[0] <= 3
    assert sorted(counted) == sorted((f"c{i}", i + 1) for i in range(20))  # each once, with what write returned

    on_disk.clear()
    with pytest.raises(OSError, match="disk full"):
        _write_as_they_come(results(["a", "bad"] + [f"d{i}" for i in range(50)]), write, lambda c, r: None,
                            writers=2)
    assert len(on_disk) < 10  # stopped soon after, not every remaining part written

    def interrupted():
        yield from [("x", 1), ("y", 2)]
        raise KeyboardInterrupt

    on_disk.clear()
    with pytest.raises(KeyboardInterrupt):
        _write_as_they_come(interrupted(), write, lambda c, r: None, writers=2)
    assert sorted(on_disk) == ["x", "y"]  # the writes under way were finished


def test_rows_of_an_optimizer_grid_are_the_reference_trained_from_their_stored_initial_weights(tmp_path):
    """From outside: every row of a grid crossing optimizers, weight decay, batch sizes and shuffles, retrained by
    the NumPy reference from the row's own stored initial weights and parameters (its seed drawing the shuffles,
    nulls at the defaults), gives the row's final weights and loss."""
    from kernels.reference import train_reference
    from sweep.datasets import BUILTIN

    (tmp_path / "o.toml").write_text("""
        name = "o"
        epochs = 40
        lr = 0.05
        beta1 = 0.8
        momentum = 0.5
        weight_decay = 0.01
        save_weights = true
        [grid]
        optimizer = ["gd", "nesterov", "adam", "adamw", "rmsprop"]
        batch_size = [0, 1, 3]
        shuffle = [false, true]
        decay_biases = [false, true]
        seed = [0, 1]
        [[exclude]]
        batch_size = 0
        shuffle = true
    """.replace("\n        ", "\n"))
    assert run_cli(tmp_path / "o.toml", "--out", tmp_path) == 0
    df = sweep.load(tmp_path / "o")
    assert len(df) == 5 * 5 * 2 * 2 and df["run_id"].is_unique
    assert df.loc[df.optimizer.isin(["adam", "adamw", "rmsprop"]), "momentum"].eq(0).all()
    assert df.loc[df.optimizer.isin(["gd", "nesterov", "rmsprop"]), "beta1"].isna().all()
    data = BUILTIN["xor"]
    for row in df.to_dict("records"):
        H = len(row["b1_init"])
        optional = {k: (0.9 if k == "beta1" else 0.999 if k == "beta2" else 1e-8) if row[k] != row[k] else row[k]
                    for k in ("beta1", "beta2", "opt_eps")}
        ref = train_reference(data.X, data.Y, np.reshape(row["w1_init"], (2, H)), row["b1_init"], row["w2_init"],
                              row["b2_init"][0], 40, lr=row["lr"], momentum=row["momentum"], optimizer=row["optimizer"],
                              weight_decay=row["weight_decay"], decay_biases=row["decay_biases"],
                              batch_size=row["batch_size"], shuffle=row["shuffle"], shuffle_seed=row["seed"],
                              **optional)
        np.testing.assert_allclose(np.reshape(row["w1_final"], (2, H)), ref["W1"], rtol=1e-9, err_msg=row["run_id"])
        np.testing.assert_allclose(row["b2_final"][0], ref["b2"], rtol=1e-9)
        np.testing.assert_allclose(row["final_loss"], ref["final_loss"], rtol=1e-9)
