"""`sweep slurm`: a SLURM array job whose task i trains shard i+1 of N.

Everything lives in the sweep's companion directory OUT/_NAME (see
`sweep.store`), under ``slurm/``, out of the way of Parquet readers::

    slurm/sweep.sbatch       the array script: task i runs `sweep run GRID --shard i+1/N`
    slurm/tasks.json         N, the chunk -> shard assignment, and the jobs submitted
    slurm/logs/task-<i>.out  one log per task (appended to when a task is re-submitted)

Tasks write only their own shard's parts, through the atomic renames of a
local run, so they share the directory safely (`sweep.lock` lets shards of
one grid write together and nothing else); a task that fails or is
preempted leaves its finished parts, and re-submitting it (``--missing``,
or ``sbatch --array=i`` on the script) trains only what is left.
"""
import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from sweep import store
from sweep.errors import SweepError

SCRIPT = "sweep.sbatch"
TASKS = "tasks.json"
_TIME_RE = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$|^(infinite|UNLIMITED)$", re.IGNORECASE)
_MEM_RE = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.,@+-]+$")


def check_options(tasks, partition=None, time=None, cpus_per_task=1, mem=None, *, grid=None, out=None):
    """Validate the sbatch options here, with our messages, before SLURM sees them.

    `grid` and `out` (the GRID and --out paths, optional) are checked too when given, so that a caller can
    refuse a path that cannot go into the script before anything is written."""
    if tasks < 1:
        raise SweepError(f"--tasks must be >= 1, got {tasks}")
    for label, value in (("GRID", grid), ("--out", out), ("--partition", partition), ("--time", time),
                         ("--mem", mem)):
        if value is not None:
            _check_one_line(label, value)
    if partition is not None and not _NAME_RE.fullmatch(partition):
        raise SweepError(f"--partition {partition!r} is not a partition name (letters, digits, _ . - ,)")
    if time is not None and not _TIME_RE.fullmatch(time):
        raise SweepError(f"--time {time!r} is not a SLURM time limit; expected minutes, MM:SS, HH:MM:SS, "
                         f"D-HH[:MM[:SS]] or UNLIMITED")
    if cpus_per_task < 1:
        raise SweepError(f"--cpus-per-task must be >= 1, got {cpus_per_task}")
    if mem is not None and not _MEM_RE.fullmatch(mem):
        raise SweepError(f"--mem {mem!r} is not a SLURM memory size; expected a number with an optional "
                         f"K, M, G or T suffix (e.g. 4G)")


# Characters that must never reach the script: C0 controls (line breaks, tabs, escapes...), DEL, the C1
# controls (U+0085 NEXT LINE among them) and the Unicode line and paragraph separators.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL byte",
                  "\x1b": "an escape", "\x7f": "a DEL", "\x85": "a Unicode line break (U+0085)",
                  "\u2028": "a Unicode line separator (U+2028)",
                  "\u2029": "a Unicode paragraph separator (U+2029)"}
# The grid's name goes into --job-name; sweep.params allows these (checked again here).
_JOB_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# A value made only of these is written as is in an #SBATCH line; any other is double-quoted.
_SBATCH_PLAIN_RE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def _check_one_line(label, value):
    """Refuse a value for the script that holds a control character or is not text (SweepError)."""
    text = str(value)
    bad = _CONTROL_RE.search(text)
    if bad:
        char = bad.group()
        what = _CONTROL_NAMES.get(char, f"U+{ord(char):04X}")
        raise SweepError(f"{label} {text!r} contains a control character ({what}); paths and values written "
                         f"into the SLURM script must be on one line, without control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of a file name (surrogate escapes)
        raise SweepError(f"{label} {text!r} is not valid UTF-8 text; paths written into the SLURM script "
                         f"must be UTF-8") from None
    return text


def _sbatch_value(value):
    """`value` as one argument of an #SBATCH line.

    sbatch splits directive lines itself (get_argument in src/sbatch/opt.c): whitespace separates
    arguments, an unquoted # starts a comment, "..." or '...' group, and a backslash makes the next
    character literal, inside quotes too. So: double quotes, with \\ and \" inside."""
    if _SBATCH_PLAIN_RE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _output_pattern(logs, label):
    """The --output value for one log per array task in `logs`: SLURM expands %a (the task id) and reads
    %% as %, so a % of the path is doubled; a backslash in it would turn every % pattern off (all the
    tasks would write one file named task-%a.out), so it is refused."""
    text = _check_one_line(label, logs)
    if "\\" in text:
        raise SweepError(f"{label} {text!r} contains a backslash, which SLURM's --output reads as \"no %a "
                         f"pattern\" (every task would write the same log); use an --out without backslashes")
    return text.replace("%", "%%").rstrip("/") + "/task-%a.out"


def script_text(*, name, grid_path, out_root, tasks, logs, partition=None, time=None, cpus_per_task=1,
                mem=None, python=None, workdir=None):
    """The sbatch array script (a string).

    Every value is checked to be one line of text (SweepError names the one that is not) and quoted:
    for sbatch in the #SBATCH lines (`_sbatch_value`), for bash in the shell lines (shlex.quote)."""
    python = python or sys.executable
    workdir = str(workdir or Path.cwd())
    check_options(tasks, partition, time, cpus_per_task, mem)
    name = _check_one_line("the grid's name", name)
    if not _JOB_NAME_RE.fullmatch(name):
        raise SweepError(f"the grid's name {name!r} cannot be a SLURM job name; expected letters, digits, "
                         f"_ . - (starting with a letter or digit)")
    grid_path = _check_one_line("GRID", grid_path)
    out_root = _check_one_line("--out", out_root)
    output = _output_pattern(logs, "the logs directory")
    python = _check_one_line("the Python executable", python)
    workdir = _check_one_line("the working directory", workdir)
    s = _sbatch_value
    header = [f"#SBATCH --job-name={s('sweep-' + name)}",
              f"#SBATCH --array=0-{int(tasks) - 1}",
              f"#SBATCH --output={s(output)}",
              "#SBATCH --open-mode=append",
              f"#SBATCH --cpus-per-task={int(cpus_per_task)}"]
    if partition:
        header.append(f"#SBATCH --partition={s(partition)}")
    if time:
        header.append(f"#SBATCH --time={s(time)}")
    if mem:
        header.append(f"#SBATCH --mem={s(mem)}")
    q = shlex.quote
    return "\n".join([
        "#!/bin/bash",
        f"# Written by `sweep slurm` on {datetime.now(timezone.utc).isoformat(timespec='seconds')}: "
        f"array task i trains shard i+1 of {int(tasks)} of the sweep {name!r}.",
        "# Re-submit one task alone (it resumes): sbatch --array=<i> this-script",
        *header,
        "set -euo pipefail",
        f"cd {q(workdir)}",
        'echo "sweep: task ${SLURM_ARRAY_TASK_ID} (job ${SLURM_ARRAY_JOB_ID}) on $(hostname) at $(date -Is)"',
        f"exec {q(python)} -m sweep run {q(grid_path)} --out {q(out_root)} "
        f"--shard $((SLURM_ARRAY_TASK_ID + 1))/{int(tasks)} --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\"",
        "",
    ])


def check_tasks(tasks, n_chunks):
    """Every task must have a chunk to train."""
    if tasks > n_chunks:
        raise SweepError(f"--tasks {tasks} but the sweep has {n_chunks} chunk{'s' * (n_chunks != 1)}, so at most "
                         f"{n_chunks} tasks would have work; use fewer tasks or a smaller chunk_size in the grid")


def write_job(prepared, grid_path, out_root, tasks, *, partition=None, time=None, cpus_per_task=1, mem=None):
    """Write slurm/sweep.sbatch, slurm/logs/ and slurm/tasks.json; return the script's path."""
    from sweep.plan import chunk_cost
    from sweep.shard import assign

    check_options(tasks, partition, time, cpus_per_task, mem)
    check_tasks(tasks, len(prepared.chunks))
    layout = prepared.layout
    logs = store.make_dir(layout.slurm / "logs", "SLURM logs directory")
    script = layout.slurm / SCRIPT
    text = script_text(name=prepared.grid.name, grid_path=Path(grid_path).resolve(),
                       out_root=Path(out_root).resolve(), tasks=tasks, logs=logs.resolve(), partition=partition,
                       time=time, cpus_per_task=cpus_per_task, mem=mem)
    store.write_atomic(script, layout.slurm, lambda fh: fh.write(text.encode()))
    script.chmod(0o755)
    owner = assign(prepared.chunks, tasks, cost=chunk_cost(prepared.grid.datasets))
    try:
        old = read_tasks(layout) or {}
    except SweepError:
        old = {}
    record = {"tasks": tasks, "grid_hash": prepared.grid_hash, "script": str(script),
              "shards": owner, "jobs": old.get("jobs", []) if old.get("tasks") == tasks else []}
    _write_tasks(layout, record)
    return script


def read_tasks(layout):
    return store.read_json(layout.slurm / TASKS, "SLURM job record", "run sweep slurm again to rewrite it")


def _write_tasks(layout, record):
    store.write_json(layout.slurm / TASKS, record, layout.slurm)


def shard_progress(layout, record):
    """[(shard, parts done, parts)] from the parts present and the recorded assignment."""
    manifest, schema = store.read_manifest(layout) or ({}, None)
    chunk_runs = manifest.get("chunks", {})
    parts = store.list_parts(layout)
    out = []
    for index in range(1, record["tasks"] + 1):
        mine = [cid for cid, i in record["shards"].items() if i == index]
        done = sum(1 for cid in mine if cid in parts and store.check_part(
            parts[cid], chunk_id=cid, n_runs=chunk_runs.get(cid, -1), grid_hash=manifest.get("grid_hash"),
            schema=schema, full=False) is None)
        out.append((index, done, len(mine)))
    return out


def incomplete_tasks(layout, record):
    """Array task ids (0-based) whose shard has parts missing."""
    return [index - 1 for index, done, total in shard_progress(layout, record) if done < total]


def submit(layout, script, array=None, wait=False):
    """sbatch the script (all tasks, or the task ids in `array`); return the job id."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise SweepError(f"sbatch not found: is this a SLURM login node? The script is written; submit it "
                         f"where SLURM runs: sbatch {script}")
    cmd = [sbatch, "--parsable"]
    if array is not None:
        cmd.append("--array=" + ",".join(str(i) for i in array))
    if wait:
        cmd.append("--wait")
    cmd.append(str(script))
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        raise SweepError(f"cannot run sbatch: {exc}") from None
    # With --wait, sbatch prints the job id at once and exits when the job ends.
    job_id = (proc.stdout.readline() or "").strip().split(";")[0]
    if job_id:
        record = read_tasks(layout)
        record["jobs"].append({"job_id": job_id, "array": list(array) if array is not None else None,
                               "submitted": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        _write_tasks(layout, record)
    out, err = proc.communicate()
    if not job_id:
        message = (err or out or "").strip().splitlines()
        raise SweepError(f"sbatch refused the job: {message[-1] if message else f'exit status {proc.returncode}'}")
    return job_id, proc.returncode


def queue_states(name, timeout=10):
    """{array task id: state} of this sweep's tasks in the SLURM queue (jobs named sweep-<name>);
    {} when squeue is unavailable or says nothing."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return {}
    try:
        proc = subprocess.run([squeue, "-h", "-r", "-n", f"sweep-{name}", "-o", "%K %T"], capture_output=True,
                              text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states = {}
    for line in proc.stdout.splitlines():
        task, _, state = line.strip().partition(" ")
        if task.isdigit():
            states[int(task)] = state
    return states
