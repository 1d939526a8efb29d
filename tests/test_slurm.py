"""`sweep slurm`: the array script, its options, per-shard status, and real jobs on a SLURM cluster.

The integration tests need a reachable SLURM (`scripts/local-slurm.sh start` gives this machine one;
`.ci/run` starts it). Without one they skip, except in CI (CI=true), where they fail.
"""
import json
import os
import shutil
import subprocess
import time

import pytest

from sweep.cli import main
from sweep.slurm import script_text
from tests.test_runner import assert_same_rows, rows, write_grid


def test_script_runs_shard_i_plus_1_of_n_with_the_options(tmp_path):
    text = script_text(name="t", grid_path=tmp_path / "g.toml", out_root=tmp_path / "res", tasks=4,
                       logs=tmp_path / "logs", partition="debug", time="1:00:00", cpus_per_task=2, mem="2G",
                       python="/opt/py/bin/python", workdir=tmp_path)
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for option in ["--job-name=sweep-t", "--array=0-3", f"--output={tmp_path}/logs/task-%a.out",
                   "--open-mode=append", "--cpus-per-task=2", "--partition=debug", "--time=1:00:00", "--mem=2G"]:
        assert f"#SBATCH {option}" in lines
    assert lines[-1] == (f"exec /opt/py/bin/python -m sweep run {tmp_path}/g.toml --out {tmp_path}/res "
                         f'--shard $((SLURM_ARRAY_TASK_ID + 1))/4 --jobs "${{SLURM_CPUS_PER_TASK:-1}}"')
    # bash agrees it is a script
    script = tmp_path / "s.sh"
    script.write_text(text)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_slurm_writes_the_script_and_status_shows_the_shards(tmp_path, capsys):
    grid = write_grid(tmp_path, chunk=8)
    assert main(["slurm", str(grid), "--out", str(tmp_path), "--tasks", "3", "--time", "10"]) == 0
    out = capsys.readouterr().out
    script = tmp_path / "t" / "_slurm" / "sweep.sbatch"
    assert f"wrote {script} (3 tasks, 8 chunks, 64 runs)" in out and f"sbatch {script}" in out
    assert os.access(script, os.X_OK) and (tmp_path / "t" / "_slurm" / "logs").is_dir()
    record = json.loads((tmp_path / "t" / "_slurm" / "tasks.json").read_text())
    assert record["tasks"] == 3 and sorted(set(record["shards"].values())) == [1, 2, 3] and record["jobs"] == []
    # run shard 2 by hand, as its task would
    assert main(["run", str(grid), "--out", str(tmp_path), "--shard", "2/3", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["status", str(tmp_path / "t")]) == 1
    lines = capsys.readouterr().out.splitlines()
    n2 = sum(1 for i in record["shards"].values() if i == 2)
    assert lines[1] == "  SLURM array of 3 tasks, not submitted"
    assert lines[3] == f"  shard 2/3 (task 1): {n2}/{n2} parts, complete"
    assert lines[2].startswith("  shard 1/3 (task 0): 0/") and lines[2].endswith("parts, incomplete")
    # Parquet readers skip _slurm/
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "t")) == sum(1 for _ in range(n2)) * 8


@pytest.mark.parametrize("args, needle", [
    (["--tasks", "9"], "--tasks 9 but the sweep has 8 chunks"),
    (["--tasks", "2", "--time", "soon"], "--time 'soon' is not a SLURM time limit"),
    (["--tasks", "2", "--mem", "lots"], "--mem 'lots' is not a SLURM memory size"),
    (["--tasks", "2", "--partition", "a b"], "--partition 'a b' is not a partition name"),
    (["--tasks", "2", "--missing"], "--missing, --only and --wait go with --submit"),
    (["--tasks", "2", "--submit", "--only", "2"], "--only '2': task ids go from 0 to 1"),
    (["--tasks", "2", "--submit", "--only", "x"], "--only 'x' is not a comma-separated list"),
])
def test_slurm_errors_are_one_line(tmp_path, capsys, args, needle):
    grid = write_grid(tmp_path, chunk=8)
    assert main(["slurm", str(grid), "--out", str(tmp_path / "res"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "res" / "t" / "_slurm").exists()


def test_submit_without_sbatch_says_where_the_script_is(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    grid = write_grid(tmp_path, chunk=8)
    assert main(["slurm", str(grid), "--out", str(tmp_path), "--tasks", "2", "--submit"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: sbatch not found") and "sweep.sbatch" in err


# --------------------------------------------------------------------------- a real SLURM

def _slurm_ready():
    """None when sbatch works and a node is up, else why not."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "sbatch/sinfo not found"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo failed: {exc}"
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states):
        return f"no SLURM node is up (sinfo: {proc.stdout.strip() or proc.stderr.strip()})"
    return None


@pytest.fixture(scope="module")
def slurm():
    reason = _slurm_ready()
    if reason:
        message = f"no SLURM cluster reachable ({reason}); start one with: scripts/local-slurm.sh start"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def _wait_for_queue(name, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-n", f"sweep-{name}"], capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(0.5)
    raise AssertionError(f"jobs sweep-{name} still queued after {timeout} s")


@pytest.mark.slow
def test_a_4_task_array_gives_the_rows_of_a_local_run(slurm, tmp_path, capsys):
    grid = write_grid(tmp_path, chunk=8, name="g.toml")
    grid.write_text(grid.read_text().replace('name = "t"', 'name = "slurm4"'))
    assert main(["slurm", str(grid), "--out", str(tmp_path / "res"), "--tasks", "4", "--submit", "--wait"]) == 0
    out = capsys.readouterr().out
    assert "submitted job " in out and "(4 tasks)" in out and "ended" in out
    results = tmp_path / "res" / "slurm4"
    logs = sorted(p.name for p in (results / "_slurm" / "logs").iterdir())
    assert logs == [f"task-{i}.out" for i in range(4)]
    for i in range(4):
        log = (results / "_slurm" / "logs" / f"task-{i}.out").read_text()
        assert f"shard {i + 1}/4:" in log and "results in" in log, log
    assert main(["status", str(results)]) == 0
    status = capsys.readouterr().out.splitlines()
    assert status[0].endswith("8/8 parts, 64/64 runs done (complete)")
    assert all(line.endswith("parts, complete") for line in status[2:]) and len(status) == 6
    assert main(["run", str(grid), "--out", str(tmp_path / "local"), "--quiet"]) == 0
    assert_same_rows(rows(results), rows(tmp_path / "local" / "slurm4"))


@pytest.mark.slow
def test_a_killed_task_resubmitted_alone_resumes(slurm, tmp_path, capsys):
    # 48 chunks of 8 runs x 100,000 epochs: each shard takes seconds, so task 0 can be cancelled mid-way.
    grid = tmp_path / "g.toml"
    grid.write_text(write_grid(tmp_path, epochs=100_000, chunk=8, seeds=48).read_text()
                    .replace('name = "t"', 'name = "slurmkill"'))
    results = tmp_path / "res" / "slurmkill"
    assert main(["slurm", str(grid), "--out", str(tmp_path / "res"), "--tasks", "4", "--submit"]) == 0
    job_id = capsys.readouterr().out.split("submitted job ")[1].split()[0]
    shards = json.loads((results / "_slurm" / "tasks.json").read_text())["shards"]
    first = {cid for cid, i in shards.items() if i == 1}
    assert main(["status", str(results)]) == 1  # while the job is queued: its tasks' SLURM states
    status = capsys.readouterr().out.splitlines()
    assert status[1] == f"  SLURM array of 4 tasks, last job {job_id}"
    assert any(line.endswith((", running", ", pending", ", complete")) for line in status[2:]), status
    deadline = time.monotonic() + 240
    while not any((results / f"part-{cid}.parquet").exists() for cid in first):
        assert time.monotonic() < deadline, "task 0 wrote no part"
        time.sleep(0.05)
    subprocess.run(["scancel", f"{job_id}_0"], check=True)
    _wait_for_queue("slurmkill")
    done = sum((results / f"part-{cid}.parquet").exists() for cid in first)
    assert 1 <= done < len(first), "task 0 finished before it was cancelled: make its shard longer"
    assert main(["status", str(results)]) == 1
    status = capsys.readouterr().out.splitlines()
    assert status[2] == f"  shard 1/4 (task 0): {done}/{len(first)} parts, incomplete, not in the queue"
    assert main(["slurm", str(grid), "--out", str(tmp_path / "res"), "--tasks", "4", "--submit", "--missing",
                 "--wait"]) == 0
    assert "(tasks 0)" in capsys.readouterr().out
    log = (results / "_slurm" / "logs" / "task-0.out").read_text()
    assert f"resuming: {done} of {len(first)} parts already written" in log
    assert main(["status", str(results)]) == 0
    assert main(["run", str(grid), "--out", str(tmp_path / "local"), "--quiet"]) == 0
    assert_same_rows(rows(results), rows(tmp_path / "local" / "slurmkill"))
