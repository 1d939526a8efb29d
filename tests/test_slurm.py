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
    script = tmp_path / "_t" / "slurm" / "sweep.sbatch"
    assert f"wrote {script} (3 tasks, 8 chunks, 64 runs)" in out and f"sbatch {script}" in out
    assert os.access(script, os.X_OK) and (tmp_path / "_t" / "slurm" / "logs").is_dir()
    record = json.loads((tmp_path / "_t" / "slurm" / "tasks.json").read_text())
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
    # the SLURM files live beside the results directory, which stays a Parquet dataset
    import pandas as pd
    import polars as pl

    assert len(pd.read_parquet(tmp_path / "t")) == pl.read_parquet(tmp_path / "t").height == n2 * 8


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
    assert not (tmp_path / "res" / "_t" / "slurm").exists()


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
    logs = sorted(p.name for p in (results.parent / f"_{results.name}" / "slurm" / "logs").iterdir())
    assert logs == [f"task-{i}.out" for i in range(4)]
    for i in range(4):
        log = (results.parent / f"_{results.name}" / "slurm" / "logs" / f"task-{i}.out").read_text()
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
    shards = json.loads((results.parent / f"_{results.name}" / "slurm" / "tasks.json").read_text())["shards"]
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
    log = (results.parent / f"_{results.name}" / "slurm" / "logs" / "task-0.out").read_text()
    assert f"resuming: {done} of {len(first)} parts already written" in log
    assert main(["status", str(results)]) == 0
    assert main(["run", str(grid), "--out", str(tmp_path / "local"), "--quiet"]) == 0
    assert_same_rows(rows(results), rows(tmp_path / "local" / "slurmkill"))


# --------------------------------------------------------------------------- values written into the script

import shlex  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from sweep.slurm import _sbatch_value  # noqa: E402
from sweep.errors import SweepError  # noqa: E402

# Spaces, both quotes, a comment sign, shell syntax, % patterns (doubled for SLURM) and UTF-8, in one name.
_ODD = "a b \"c\" 'd' #e $f `g` %a %% ;h é"
_REPO = Path(__file__).resolve().parents[1]
_LOCAL_SLURM = _REPO / "scripts" / "local-slurm.sh"


def _sbatch_arguments(text):
    """The arguments sbatch reads from a script's #SBATCH lines: a port of next_line/get_argument and
    _opt_batch_script in src/sbatch/opt.c (Slurm 22.05): whitespace separates, "..." or '...' group, a
    backslash makes the next character literal (inside quotes too), an unquoted # ends the line, and the
    first line that is not a comment ends the directives."""
    args = []
    for line in text.encode().split(b"\n"):
        if line.startswith(b"#SBATCH"):
            rest = line[len(b"#SBATCH"):]
        elif line.strip()[:1] in (b"", b"#"):
            continue
        else:
            break
        i = 0
        while True:
            while i < len(rest) and rest[i:i + 1].isspace():
                i += 1
            arg, quote, escape = bytearray(), None, False
            while i < len(rest) and (quote or not rest[i:i + 1].isspace()):
                c = rest[i:i + 1]
                i += 1
                if escape:
                    escape = False
                elif c == b"\\":
                    escape = True
                    continue
                elif quote:
                    if c == quote:
                        quote = None
                        continue
                elif c in (b'"', b"'"):
                    quote = c
                    continue
                elif c == b"#":
                    i = len(rest) + 1  # the rest of the line is a comment
                    break
                arg += c
            assert quote is None, f"sbatch: unmatched {quote!r} in {line!r}"
            if not arg:
                break
            args.append(arg.decode())
            if i > len(rest):
                break
    return args


def _log_path(output, task):
    """A batch task's log, from its --output pattern: SLURM's %% and %a (src/slurmd/common/fname.c)."""
    assert "\\" not in output  # a backslash would turn the patterns off
    out, i = [], 0
    while i < len(output):
        if output.startswith("%%", i):
            out.append("%")
            i += 2
        elif output.startswith("%a", i):
            out.append(str(task))
            i += 2
        else:
            assert output[i] != "%", f"unexpected pattern in {output!r}"
            out.append(output[i])
            i += 1
    return Path("".join(out))


def _output_of(text):
    [output] = [a.split("=", 1)[1] for a in _sbatch_arguments(text) if a.startswith("--output=")]
    return output


def test_odd_paths_round_trip_through_sbatch_directives_and_bash(tmp_path):
    odd = tmp_path / _ODD
    odd.mkdir()
    python = odd / "python"  # records where it runs and its arguments, NUL-separated
    python.write_text('#!/bin/sh\nprintf "%s\\0" "$PWD" "$@" > "$ARGS_FILE"\n')
    python.chmod(0o755)
    (odd / "work").mkdir()
    text = script_text(name="odd.name-1", grid_path=odd / "g.toml", out_root=odd / "res", tasks=3,
                       logs=odd / "logs", partition="debug", time="10", mem="1G", python=str(python),
                       workdir=odd / "work")
    args = _sbatch_arguments(text)
    assert args == ["--job-name=sweep-odd.name-1", "--array=0-2", f"--output={_output_of(text)}",
                    "--open-mode=append", "--cpus-per-task=1", "--partition=debug", "--time=10", "--mem=1G"]
    assert _log_path(_output_of(text), 2) == odd / "logs" / "task-2.out"
    assert '#SBATCH --output="' in text  # quoted, the space would end the value
    script = tmp_path / "s.sh"
    script.write_text(text)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_JOB_ID="7", SLURM_CPUS_PER_TASK="2",
               ARGS_FILE=str(tmp_path / "args"))
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    recorded = (tmp_path / "args").read_bytes().decode().split("\0")[:-1]
    assert recorded == [str(odd / "work"), "-m", "sweep", "run", str(odd / "g.toml"), "--out", str(odd / "res"),
                        "--shard", "2/3", "--jobs", "2"]


def test_sbatch_values_are_quoted_and_unquoted_exactly():
    # What sbatch reads back, for values that need its quoting and escapes (checked against the port).
    for value in ["plain/path_1.2", "a b", 'a"b', "a'b", "a#b", "a\\b", 'a\\"b', "", "é"]:
        line = f"#SBATCH --comment={_sbatch_value(value)}"
        assert _sbatch_arguments(line) == [f"--comment={value}"] or value == "", line


@pytest.mark.parametrize("payload, what", [
    ("r\ntouch x\n#", "a line break"),
    ("r\rtouch x", "a carriage return"),
    ("r\ttab", "a tab"),
    ("r\x7fdel", "a DEL"),
    ("r\x1b[2Jx", "an escape"),
    ("r\x85touch x", "U+0085"),
    ("r\u2028touch x", "U+2028"),
    ("r\u2029touch x", "U+2029"),
])
def test_a_control_character_in_out_is_refused_and_writes_no_script(tmp_path, capsys, monkeypatch, payload, what):
    monkeypatch.chdir(tmp_path)
    grid = write_grid(tmp_path, chunk=8)
    assert main(["slurm", str(grid), "--out", payload, "--tasks", "1"]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("sweep: error: --out "), err
    assert "contains a control character (" in err and what in err and "must be on one line" in err, err
    assert "sbatch" not in captured.out
    assert not list(tmp_path.rglob("*.sbatch")) and not list(tmp_path.rglob("x")) and not (_REPO / "x").exists()


@pytest.mark.parametrize("option, value", [
    ("--partition", "debug\n"), ("--partition", "debug\ntouch x"), ("--time", "10\n"), ("--mem", "4G\n"),
    ("--time", "10\u2028"),
])
def test_a_control_character_in_an_option_is_refused_before_anything_is_written(tmp_path, capsys, option, value):
    grid = write_grid(tmp_path, chunk=8)
    assert main(["slurm", str(grid), "--out", str(tmp_path / "res"), "--tasks", "2", option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"sweep: error: {option} ") and "control character" in err, err
    assert not (tmp_path / "res").exists()


def test_a_control_character_in_the_grid_path_is_refused(tmp_path, capsys):
    grid = write_grid(tmp_path, chunk=8, name="g\ntouch x\n.toml")
    assert main(["slurm", str(grid), "--out", str(tmp_path / "res"), "--tasks", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sweep: error: GRID ") and "(a line break)" in err, err
    assert not list(tmp_path.rglob("*.sbatch"))


def test_a_backslash_in_the_logs_path_is_refused(tmp_path, capsys):
    grid = write_grid(tmp_path, chunk=8)
    assert main(["slurm", str(grid), "--out", str(tmp_path / "a\\b"), "--tasks", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "contains a backslash" in err and "--output" in err, err
    assert not list(tmp_path.rglob("*.sbatch"))


@pytest.mark.parametrize("field, value, needle", [
    ("python", "/opt/py\nthon", "the Python executable"),
    ("workdir", "/w\u2028x", "the working directory"),
    ("name", "a\nb", "the grid's name"),
    ("name", "a b", "cannot be a SLURM job name"),
    ("name", 'a"b', "cannot be a SLURM job name"),
    ("out_root", "/tmp/\udcff", "is not valid UTF-8"),
    ("logs", "/tmp/l\x00", "the logs directory"),
])
def test_script_text_names_the_value_it_refuses(tmp_path, field, value, needle):
    kwargs = dict(name="t", grid_path=tmp_path / "g.toml", out_root=tmp_path / "res", tasks=2,
                  logs=tmp_path / "logs", python="/usr/bin/python3", workdir=tmp_path)
    kwargs[field] = value
    with pytest.raises(SweepError) as info:
        script_text(**kwargs)
    message = str(info.value)
    assert needle in message and "\n" not in message, message


def test_slurm_with_odd_out_writes_a_script_sbatch_and_bash_read_right(tmp_path, capsys):
    grid = write_grid(tmp_path, chunk=8)
    out = tmp_path / _ODD
    assert main(["slurm", str(grid), "--out", str(out), "--tasks", "2"]) == 0
    stdout = capsys.readouterr().out
    script = Path(stdout.split(": wrote ", 1)[1].split(" (2 tasks", 1)[0])
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    log = _log_path(_output_of(text), 1)
    assert log.parent.is_dir() and str(out) in str(log) and log.name == "task-1.out"
    assert text.splitlines()[-1].startswith(f"exec {shlex.quote(sys.executable)} -m sweep run {shlex.quote(str(grid))} "
                                            f"--out {shlex.quote(str(out))} --shard ")


@pytest.mark.slow
def test_a_real_array_with_odd_out_logs_where_its_output_says(slurm, tmp_path, capsys):
    grid = write_grid(tmp_path, chunk=8, name="g.toml")
    grid.write_text(grid.read_text().replace('name = "t"', 'name = "slurmodd"'))
    out = tmp_path / _ODD
    assert main(["slurm", str(grid), "--out", str(out), "--tasks", "2", "--submit", "--wait"]) == 0
    stdout = capsys.readouterr().out
    assert "submitted job " in stdout and "ended" in stdout and "exit status" not in stdout, stdout
    script = Path(stdout.split(": wrote ", 1)[1].split(" (2 tasks", 1)[0])
    output = _output_of(script.read_text())
    assert " " in output and '"' in output and "%%" in output
    for task in range(2):
        log = _log_path(output, task)
        assert log.is_file(), sorted(str(p) for p in tmp_path.rglob("*.out"))
        assert str(out) in str(log) and f"shard {task + 1}/2:" in log.read_text(), log.read_text()
    assert not list(tmp_path.rglob("task-%a.out")) and not list(tmp_path.rglob("task-*a.out"))
    assert main(["status", str(out / "slurmodd")]) == 0


# --------------------------------------------------------------------------- local-slurm.sh and a cluster it did not set up

def _fake_slurm_commands(tmp_path, ping, sinfo):
    """A PATH whose scontrol and sinfo print these (`scontrol ping` and `sinfo -h -o '%P %a %t %D'`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("scontrol", ping), ("sinfo", sinfo)):
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{text}\nEOF\n")
        path.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def _local_slurm(command, conf, timeout=1, path=None):
    env = dict(os.environ, LOCAL_SLURM_CONF=str(conf), LOCAL_SLURM_TIMEOUT=str(timeout))
    if path is not None:
        env["PATH"] = path
    return subprocess.run(["bash", str(_LOCAL_SLURM), command], env=env, capture_output=True, text=True, timeout=120)


def _foreign_conf(tmp_path, text="ClusterName=elsewhere\nSlurmctldHost=elsewhere\n"):
    conf = tmp_path / "slurm.conf"
    conf.write_text(text)
    return conf


@pytest.mark.parametrize("ping, sinfo, needle", [
    ("Slurmctld(primary) at elsewhere is UP", "debug* up drain 2\nlong up alloc 4\nshort down idle 1",
     "no usable node after 1s (scontrol ping: Slurmctld(primary) at elsewhere is UP; "
     "sinfo: debug* up drain 2;long up alloc 4;short down idle 1)"),
    ("Slurmctld(primary) at elsewhere is DOWN\n*****\n** RESTORE SLURMCTLD DAEMON TO SERVICE **\n*****",
     "debug* up idle 1", "scontrol ping: Slurmctld(primary) at elsewhere is DOWN;"),
])
def test_start_with_a_foreign_conf_fails_in_one_line_when_its_cluster_is_unusable(tmp_path, ping, sinfo, needle):
    conf = _foreign_conf(tmp_path)
    proc = _local_slurm("start", conf, path=_fake_slurm_commands(tmp_path, ping, sinfo))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"local-slurm: error: {conf} exists and was "
                                                                   f"not written by this script"), proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert conf.read_text() == "ClusterName=elsewhere\nSlurmctldHost=elsewhere\n"


def test_start_with_a_foreign_conf_uses_a_working_cluster_and_stop_leaves_it(tmp_path):
    conf = _foreign_conf(tmp_path)
    path = _fake_slurm_commands(tmp_path, "Slurmctld(primary) at elsewhere is UP", "busy up alloc 3\ndebug* up mix 1")
    proc = _local_slurm("start", conf, path=path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not written by this script: using its cluster as it is" in proc.stdout
    assert "usable partitions (name:state:nodes): debug*:mix:1)" in proc.stdout
    for command, rc, needle in (("status", 0, "is UP"), ("stop", 0, "leaving its cluster's daemons running")):
        proc = _local_slurm(command, conf, path=path)
        assert proc.returncode == rc and needle in proc.stdout, proc.stdout + proc.stderr
    assert conf.read_text() == "ClusterName=elsewhere\nSlurmctldHost=elsewhere\n"


def test_start_with_a_foreign_copy_of_the_real_conf_uses_the_real_cluster(slurm, tmp_path):
    real = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if not real.is_file():
        pytest.skip(f"no {real} to copy")
    before = real.read_bytes()
    conf = _foreign_conf(tmp_path, "".join(line for line in real.read_text().splitlines(keepends=True)
                                           if not line.startswith("# Written by scripts/local-slurm.sh")))
    proc = _local_slurm("start", conf, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"local-slurm: {conf} exists and was not written by this script: using its cluster" in proc.stdout
    assert "PARTITION" in proc.stdout  # sinfo
    proc = _local_slurm("stop", conf)
    assert proc.returncode == 0 and "leaving its cluster's daemons running" in proc.stdout
    assert real.read_bytes() == before and _slurm_ready() is None
