"""Shards: parsing, SLURM environment, a balanced deterministic partition, and shards that add up to a local run."""
from dataclasses import dataclass

import pytest

from sweep.cli import main
from sweep.errors import SweepError
from sweep.shard import assign, chunks_of, parse_shard, shard_from_env
from tests.test_runner import assert_same_rows, rows, write_grid


@pytest.mark.parametrize("text, expected", [("1/1", (1, 1)), ("3/8", (3, 8)), (" 8 / 8 ", (8, 8))])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text, needle", [
    ("0/4", "expected 1 <= I <= N, got I=0, N=4"),
    ("5/4", "expected 1 <= I <= N, got I=5, N=4"),
    ("1/0", "expected 1 <= I <= N"),
    ("2", "is not of the form I/N"),
    ("a/b", "is not of the form I/N"),
    ("-1/4", "is not of the form I/N"),
])
def test_parse_shard_refuses(text, needle):
    with pytest.raises(SweepError, match=needle.replace("(", r"\(")):
        parse_shard(text)


def test_shard_from_slurm_array_environment():
    assert shard_from_env({}) is None
    env = {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"}
    assert shard_from_env(env) == (1, 4)
    assert shard_from_env({**env, "SLURM_ARRAY_TASK_ID": "3"}) == (4, 4)
    # --array=1-4: 1-based ids
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4",
                           "SLURM_ARRAY_TASK_MIN": "1"}) == (4, 4)
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"}) == (3, 3)
    with pytest.raises(SweepError, match="not a contiguous"):  # --array=0,5,9: ids beyond min + count
        shard_from_env({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0"})
    with pytest.raises(SweepError, match="pass --shard"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"})


@dataclass(frozen=True)
class FakeChunk:
    chunk_id: str
    network_epochs: int


CHUNKS = [FakeChunk(f"{i:016x}", ne) for i, ne in enumerate([50, 10, 10, 40, 30, 30, 20, 5, 5, 1])]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 10, 12])
def test_assign_is_a_balanced_partition(count):
    owner = assign(CHUNKS, count)
    assert set(owner) == {c.chunk_id for c in CHUNKS}
    assert set(owner.values()) <= set(range(1, count + 1))
    loads = [sum(c.network_epochs for c in CHUNKS if owner[c.chunk_id] == i) for i in range(1, count + 1)]
    assert sum(loads) == 201
    # Largest-first greedy: no shard exceeds the lightest by more than the largest chunk,
    # and with 2 shards this set splits 101 / 100.
    assert max(loads) - min(loads) <= 50
    if count == 2:
        assert sorted(loads) == [100, 101]
    if count >= len(CHUNKS):
        assert sorted(loads, reverse=True)[:len(CHUNKS)] == sorted((c.network_epochs for c in CHUNKS), reverse=True)


def test_assign_is_deterministic_whatever_the_order_of_the_chunks():
    assert assign(CHUNKS, 3) == assign(list(reversed(CHUNKS)), 3)
    together = [c for i in (1, 2, 3) for c in chunks_of(CHUNKS, i, 3)]
    assert sorted(c.chunk_id for c in together) == sorted(c.chunk_id for c in CHUNKS)


def test_assign_weights_by_cost():
    owner = assign(CHUNKS[:3], 2, cost=lambda c: 1.0)  # equal costs: alternate, by chunk_id
    assert sorted(owner.values()) == [1, 1, 2]


# --------------------------------------------------------------------------- the command

def test_shards_add_up_to_a_local_run_bit_for_bit(tmp_path, capsys):
    grid = write_grid(tmp_path, chunk=8)  # 64 runs, 8 chunks
    assert main(["run", str(grid), "--out", str(tmp_path / "local"), "--quiet"]) == 0
    for i in (2, 3, 1):
        assert main(["run", str(grid), "--out", str(tmp_path / "sharded"), "--shard", f"{i}/3", "--quiet"]) == 0
        if i != 1:
            assert main(["status", str(tmp_path / "sharded" / "t")]) == 1  # not complete yet
    assert main(["status", str(tmp_path / "sharded" / "t")]) == 0
    assert_same_rows(rows(tmp_path / "sharded" / "t"), rows(tmp_path / "local" / "t"))


def test_a_shard_writes_only_its_own_parts_and_says_so(tmp_path, capsys):
    grid = write_grid(tmp_path, chunk=8)
    assert main(["run", str(grid), "--out", str(tmp_path), "--shard", "2/4"]) == 0
    err = capsys.readouterr().err
    assert "shard 2/4: 2 of 8 parts, 16 runs" in err
    parts = sorted(p.name for p in (tmp_path / "t").glob("part-*.parquet"))
    assert len(parts) == 2
    # the same shard again has nothing to do
    assert main(["run", str(grid), "--out", str(tmp_path), "--shard", "2/4"]) == 0
    assert "resuming: 2 of 2 parts already written" in capsys.readouterr().err


def test_shard_from_the_slurm_environment_when_no_option(tmp_path, monkeypatch, capsys):
    grid = write_grid(tmp_path, chunk=8)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "4")
    assert main(["run", str(grid), "--out", str(tmp_path)]) == 0
    assert "shard 2/4:" in capsys.readouterr().err
    # --shard wins over the environment
    assert main(["run", str(grid), "--out", str(tmp_path), "--shard", "1/1", "--quiet"]) == 0
    assert len(list((tmp_path / "t").glob("part-*.parquet"))) == 8


@pytest.mark.parametrize("args, needle", [
    (["--shard", "5/4"], "--shard '5/4': expected 1 <= I <= N"),
    (["--shard", "1/2", "--overwrite"], "--overwrite cannot be combined with --shard"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler is for --backend dask"),
])
def test_shard_errors_are_one_line_and_write_nothing(tmp_path, capsys, args, needle):
    grid = write_grid(tmp_path)
    assert main(["run", str(grid), "--out", str(tmp_path / "res"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: ") and err.count("\n") == 1 and needle in err
    assert not (tmp_path / "res").exists()


@pytest.mark.slow
def test_concurrent_shards_in_a_fresh_directory_share_it_safely(tmp_path):
    import subprocess
    import sys

    from sweep import store

    grid = write_grid(tmp_path, chunk=8, epochs=2000)
    procs = [subprocess.Popen([sys.executable, "-m", "sweep", "run", str(grid), "--out", str(tmp_path / "res"),
                               "--shard", f"{i}/3", "--quiet"], stderr=subprocess.PIPE, text=True)
             for i in (1, 2, 3)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    out = tmp_path / "res" / "t"
    assert store.read_manifest(out)[0]["runs"] == 64
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("part-")) == [store.MANIFEST]
    assert main(["run", str(grid), "--out", str(tmp_path / "local"), "--quiet"]) == 0
    assert_same_rows(rows(out), rows(tmp_path / "local" / "t"))
