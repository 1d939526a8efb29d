"""`sweep slurm`: a SLURM array job whose task i trains shard i+1 of N.

Everything lives in the results directory, under ``_slurm/`` (Parquet
readers skip names starting with ``_``)::

    _slurm/sweep.sbatch      the array script: task i runs `sweep run GRID --shard i+1/N`
    _slurm/tasks.json        N, the chunk -> shard assignment, and the jobs submitted
    _slurm/logs/task-<i>.out one log per task (appended to when a task is re-submitted)

Tasks write only their own shard's parts, through the atomic renames of a
local run, so they share the directory safely; a task that fails or is
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

SLURM_DIR = "_slurm"
SCRIPT = "sweep.sbatch"
TASKS = "tasks.json"
_TIME_RE = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$|^(infinite|UNLIMITED)$", re.IGNORECASE)
_MEM_RE = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.,@+-]+$")


def check_options(tasks, partition=None, time=None, cpus_per_task=1, mem=None):
    """Validate the sbatch options here, with our messages, before SLURM sees them."""
    if tasks < 1:
        raise SweepError(f"--tasks must be >= 1, got {tasks}")
    if partition is not None and not _NAME_RE.match(partition):
        raise SweepError(f"--partition {partition!r} is not a partition name (letters, digits, _ . - ,)")
    if time is not None and not _TIME_RE.match(time):
        raise SweepError(f"--time {time!r} is not a SLURM time limit; expected minutes, MM:SS, HH:MM:SS, "
                         f"D-HH[:MM[:SS]] or UNLIMITED")
    if cpus_per_task < 1:
        raise SweepError(f"--cpus-per-task must be >= 1, got {cpus_per_task}")
    if mem is not None and not _MEM_RE.match(mem):
        raise SweepError(f"--mem {mem!r} is not a SLURM memory size; expected a number with an optional "
                         f"K, M, G or T suffix (e.g. 4G)")


def script_text(*, name, grid_path, out_root, tasks, logs, partition=None, time=None, cpus_per_task=1,
                mem=None, python=None, workdir=None):
    """The sbatch array script (a string)."""
    python = python or sys.executable
    header = [f"#SBATCH --job-name=sweep-{name}",
              f"#SBATCH --array=0-{tasks - 1}",
              f"#SBATCH --output={logs}/task-%a.out",
              "#SBATCH --open-mode=append",
              f"#SBATCH --cpus-per-task={cpus_per_task}"]
    if partition:
        header.append(f"#SBATCH --partition={partition}")
    if time:
        header.append(f"#SBATCH --time={time}")
    if mem:
        header.append(f"#SBATCH --mem={mem}")
    q = shlex.quote
    return "\n".join([
        "#!/bin/bash",
        f"# Written by `sweep slurm` on {datetime.now(timezone.utc).isoformat(timespec='seconds')}: "
        f"array task i trains shard i+1 of {tasks} of the sweep {name!r}.",
        "# Re-submit one task alone (it resumes): sbatch --array=<i> this-script",
        *header,
        "set -euo pipefail",
        f"cd {q(str(workdir or Path.cwd()))}",
        'echo "sweep: task ${SLURM_ARRAY_TASK_ID} (job ${SLURM_ARRAY_JOB_ID}) on $(hostname) at $(date -Is)"',
        f"exec {q(python)} -m sweep run {q(str(grid_path))} --out {q(str(out_root))} "
        f"--shard $((SLURM_ARRAY_TASK_ID + 1))/{tasks} --jobs \"${{SLURM_CPUS_PER_TASK:-1}}\"",
        "",
    ])


def write_job(prepared, grid_path, out_root, tasks, *, partition=None, time=None, cpus_per_task=1, mem=None):
    """Write _slurm/sweep.sbatch, _slurm/logs/ and _slurm/tasks.json; return the script's path."""
    from sweep.plan import chunk_cost
    from sweep.shard import assign

    check_options(tasks, partition, time, cpus_per_task, mem)
    n_chunks = len(prepared.chunks)
    if tasks > n_chunks:
        raise SweepError(f"--tasks {tasks} but the sweep has {n_chunks} chunk{'s' * (n_chunks != 1)}, so at most "
                         f"{n_chunks} tasks would have work; use fewer tasks or a smaller chunk_size in the grid")
    slurm_dir = prepared.outdir / SLURM_DIR
    logs = slurm_dir / "logs"
    try:
        logs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot create {logs}: {exc.strerror or exc}") from None
    script = slurm_dir / SCRIPT
    text = script_text(name=prepared.grid.name, grid_path=Path(grid_path).resolve(),
                       out_root=Path(out_root).resolve(), tasks=tasks, logs=logs.resolve(), partition=partition,
                       time=time, cpus_per_task=cpus_per_task, mem=mem)
    store.write_atomic_bytes(script, text.encode())
    script.chmod(0o755)
    owner = assign(prepared.chunks, tasks, cost=chunk_cost(prepared.grid.datasets))
    old = read_tasks(prepared.outdir) or {}
    record = {"tasks": tasks, "grid_hash": prepared.manifest["grid_hash"], "script": str(script),
              "shards": owner, "jobs": old.get("jobs", []) if old.get("tasks") == tasks else []}
    _write_tasks(prepared.outdir, record)
    return script


def read_tasks(outdir):
    return store.read_json(Path(outdir) / SLURM_DIR / TASKS, "SLURM job record", "run sweep slurm again to rewrite it")


def _write_tasks(outdir, record):
    store.write_json(Path(outdir) / SLURM_DIR / TASKS, record)


def shard_progress(outdir, record):
    """[(shard, parts done, parts)] from the parts present and the recorded assignment."""
    manifest = store.read_manifest(outdir) or {}
    chunk_runs = manifest.get("chunks", {})
    parts = store.list_parts(outdir)
    out = []
    for index in range(1, record["tasks"] + 1):
        mine = [cid for cid, i in record["shards"].items() if i == index]
        done = sum(1 for cid in mine if cid in parts and store.check_part(parts[cid], chunk_runs.get(cid, -1)) is None)
        out.append((index, done, len(mine)))
    return out


def incomplete_tasks(outdir, record):
    """Array task ids (0-based) whose shard has parts missing."""
    return [index - 1 for index, done, total in shard_progress(outdir, record) if done < total]


def submit(outdir, script, array=None, wait=False):
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
        record = read_tasks(outdir)
        record["jobs"].append({"job_id": job_id, "array": list(array) if array is not None else None,
                               "submitted": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        _write_tasks(outdir, record)
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
