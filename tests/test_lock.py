"""One writer per results directory: shards of one grid together, nothing else; dead writers do not count."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweep import store
from sweep.cli import main
from sweep.errors import SweepError
from sweep.lock import Writer
from sweep.results import load
from tests.test_runner import write_grid


def writer(tmp_path, grid_hash="aaaa", shard=None):
    return Writer(store.Layout(tmp_path / "s"), grid_hash=grid_hash, shard=shard, command="test")


def test_shards_of_one_grid_write_together_and_nothing_else_joins_them(tmp_path):
    with writer(tmp_path, shard=(1, 3)) as first:
        first.setup_done()
        with writer(tmp_path, shard=(2, 3)) as second:
            second.setup_done()
            for grid_hash, shard, what in [("aaaa", (2, 3), "shard 2/3 of this grid"),
                                           ("aaaa", None, "/3 of this grid"),
                                           ("aaaa", (1, 4), "/3 of this grid"),
                                           ("bbbb", (3, 3), "/3 of another grid (aaaa)")]:
                with pytest.raises(SweepError) as info:
                    with writer(tmp_path, grid_hash, shard):
                        pass
                message = str(info.value)
                assert f"pid {os.getpid()}" in message and what in message and "\n" not in message, message
                assert "is being written by another sweep" in message
    with writer(tmp_path, "bbbb"):  # both gone: a new grid may come
        pass


def test_a_writer_registers_itself_and_leaves_nothing_behind(tmp_path):
    with writer(tmp_path, shard=(2, 5)) as w:
        records = list((tmp_path / "_s" / "writers").iterdir())
        assert len(records) == 1 and w.tmp.is_dir()
        record = json.loads(records[0].read_text())
        assert record["pid"] == os.getpid() and record["shard"] == [2, 5] and record["grid_hash"] == "aaaa"
    assert list((tmp_path / "_s" / "writers").iterdir()) == [] and not w.tmp.exists()


def test_a_dead_writers_record_and_temporaries_are_cleared(tmp_path):
    writers = tmp_path / "_s" / "writers"
    writers.mkdir(parents=True)
    (writers / "host-1-dead.json").write_text(json.dumps({"pid": 1, "grid_hash": "bbbb", "shard": None}))
    (tmp_path / "_s" / "tmp" / "host-1-dead").mkdir(parents=True)
    (tmp_path / "_s" / "tmp" / "host-1-dead" / "part-aa.parquet.1.x.tmp").write_bytes(b"half")
    with writer(tmp_path) as w:  # nobody holds that record's lock: its writer is dead
        assert [p.name for p in writers.iterdir()] == [f"{w.id}.json"]
        assert [p.name for p in (tmp_path / "_s" / "tmp").iterdir()] == [w.id]


def _start(grid, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "sweep", "run", str(grid), "--out", str(out), "--jobs", "1",
                             "--quiet", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_until(condition, proc, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"sweep ended before {what}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _registered(out):
    writers = out.parent / f"_{out.name}" / "writers"
    return lambda: writers.is_dir() and any(p.stat().st_size for p in writers.iterdir())


# The first sweep must still be writing when the second starts: 64 runs of 100,000 epochs in chunks of 8 on
# one thread take several seconds (20,000 epochs once finished first on a loaded CI machine).
EPOCHS_LONG = 100_000


@pytest.mark.slow
@pytest.mark.parametrize("second", ["other grid", "overwrite", "same grid"])
def test_a_second_sweep_into_a_directory_being_written_is_refused(tmp_path, capsys, second):
    """Two grids of one name started together, --overwrite during a run, or the same grid twice: the
    second is refused in one line naming the first, and the directory holds only the first's rows."""
    grid = write_grid(tmp_path, epochs=EPOCHS_LONG, chunk=8, seeds=8)
    other = write_grid(tmp_path, epochs=100, seeds=3, name="other.toml")
    out = tmp_path / "t"
    proc = _start(grid, tmp_path)
    _wait_until(_registered(out), proc, "the first sweep registered")
    args = {"other grid": [other], "overwrite": [other, "--overwrite"], "same grid": [grid]}[second]
    assert main(["run", *map(str, args), "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is being written by another sweep" in err and f"pid {proc.pid}" in err, err
    _, first_err = proc.communicate(timeout=300)
    assert proc.returncode == 0, first_err
    assert main(["status", str(out), "--verify"]) == 0
    df = load(out)
    assert len(df) == 64 and df["run_id"].is_unique and df["epochs"].eq(EPOCHS_LONG).all()


def _children(pid):
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the worker processes")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_worker_processes_die_with_the_sweep(tmp_path, how):
    grid = write_grid(tmp_path, epochs=50_000, chunk=4, seeds=8)
    out = tmp_path / "t"
    proc = subprocess.Popen([sys.executable, "-m", "sweep", "run", str(grid), "--out", str(tmp_path), "--jobs", "2",
                             "--backend", "processes", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_until(lambda: len(store.list_parts(out)) >= 1, proc, "a part")
    workers = [pid for pid in _children(proc.pid) if _alive(pid)]
    assert workers, "no worker process found"
    proc.send_signal(how)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"workers {[p for p in workers if _alive(p)]} outlived the sweep"
        time.sleep(0.05)
    parts = set(store.list_parts(out))
    time.sleep(1.0)
    assert set(store.list_parts(out)) == parts  # nothing lands after the sweep ended
    assert main(["status", str(out), "--verify"]) == 1 and len(parts) < 16


def test_a_deleted_manifest_does_not_mix_two_grids(tmp_path, capsys):
    """The manifest deleted, then another grid run into the directory: the old parts are moved aside,
    never read as results of the new grid."""
    first = write_grid(tmp_path, seeds=2)
    assert main(["run", str(first), "--out", str(tmp_path), "--quiet"]) == 0
    old_parts = set(store.list_parts(tmp_path / "t"))
    (tmp_path / "t" / store.MANIFEST).unlink()
    second = write_grid(tmp_path, seeds=3, epochs=120, name="second.toml")
    assert main(["run", str(second), "--out", str(tmp_path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("is not a part of this grid") == len(old_parts - set(store.list_parts(tmp_path / "t")))
    df = load(tmp_path / "t")
    assert len(df) == 24 and df["epochs"].eq(120).all()
    moved = {p.name for p in (tmp_path / "_t" / "quarantine").iterdir()}
    assert {store.part_name(c) for c in old_parts} == moved
