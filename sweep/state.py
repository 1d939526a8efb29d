"""`sweep status` and `sweep.status` (module `state`, so that `sweep.status` is always the function): how much of a sweep is written, and whether what is written is sound.

Reads only. `check` gives a `Status` (counts, and the parts that fail their checks); `status` the lines
`sweep status` prints. Imports nothing heavy until called (the package imports this module).
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sweep.errors import SweepError


@dataclass
class Status:
    """How much of a sweep is written: `sweep.status(path)`."""

    path: Path  # the results directory
    parts_done: int
    parts_total: int
    runs_done: int
    runs_total: int
    failing: list = field(default_factory=list)  # (part file name, what is wrong) of the parts that fail checks
    foreign: int = 0  # part files of another grid (not counted)
    verified: bool = False  # every page and run id of the parts there was read (verify=True)
    name: str = ""

    @property
    def complete(self):
        return self.runs_done == self.runs_total

    @property
    def runs_missing(self):
        return self.runs_total - self.runs_done

    def text(self):
        """The first line of `sweep status`."""
        return (f"{self.path}: {self.parts_done}/{self.parts_total} parts, {self.runs_done:,}/{self.runs_total:,} "
                f"runs done" + (" (complete)" if self.complete else "")
                + (", every page verified" if self.verified else ""))

    def __repr__(self):
        extra = []
        if self.failing:
            extra.append(f"{len(self.failing)} failing checks")
        if self.foreign:
            extra.append(f"{self.foreign} of another grid")
        return (f"Status({self.name or self.path.name!r}: {self.parts_done}/{self.parts_total} parts, "
                f"{self.runs_done:,}/{self.runs_total:,} runs, {'complete' if self.complete else 'incomplete'}"
                + "".join(f", {e}" for e in extra) + ")")

    def _repr_pretty_(self, printer, cycle):  # IPython
        printer.text(repr(self))


def _target(target, out_root, overrides=None):
    """(layout, manifest, schema) of a results directory, or of a grid file's (or dict's) results."""
    from sweep import store

    is_grid = isinstance(target, Mapping)
    if not is_grid:
        target = Path(target)
        is_grid = target.is_file() or (not target.exists() and target.suffix == ".toml")
    if not is_grid:
        if overrides:
            raise SweepError(f"overrides (--set) go with a grid file, not with a results directory ({target})")
        layout = store.require_results_dir(target)
        manifest, schema = store.read_manifest(layout)
        return layout, manifest, schema
    from sweep.runner import existing_manifest, prepare

    prepared = prepare(target, out_root, overrides)
    if prepared.outdir.is_dir() and existing_manifest(prepared) is not None:
        manifest, schema = store.read_manifest(prepared.layout)
        return prepared.layout, manifest, schema
    return prepared.layout, prepared.manifest, prepared.schema


def check(target, out_root="results", *, verify=False, overrides=None):
    """The `Status` of a sweep. target: a results directory, or a grid file (or dict) with its results under
    `out_root` (with `overrides` applied, as `sweep run` applies them).

    Every part is checked as a resumed sweep checks it: its stamp (grid hash, chunk id), row count and
    schema; with `verify`, also every page against its checksum and its run ids against its chunk.
    """
    return _check(target, out_root, verify, overrides)[0]


def _check(target, out_root, verify, overrides):
    from sweep import store

    layout, manifest, schema = _target(target, out_root, overrides)
    chunks = manifest.get("chunks") or {}
    parts = store.list_parts(layout)
    done, bad = {}, []
    for cid, n in chunks.items():
        path = parts.get(cid)
        if path is None:
            continue
        problem = store.check_part(path, chunk_id=cid, n_runs=n, grid_hash=manifest.get("grid_hash"),
                                   schema=schema, full=verify)
        if problem is None:
            done[cid] = n
        else:
            bad.append((path.name, problem))
    verified = verify and bool(parts)
    result = Status(path=layout.data, parts_done=len(done), parts_total=len(chunks), runs_done=sum(done.values()),
                    runs_total=sum(chunks.values()), failing=bad, foreign=len(set(parts) - set(chunks)),
                    verified=verified, name=manifest.get("name") or "")
    return result, layout, manifest


def status(target, out_root="results", *, verify=False, overrides=None):
    """(lines describing the sweep, complete?): what `sweep status` prints. See `check`."""
    result, layout, manifest = _check(target, out_root, verify, overrides)
    lines = [result.text()]
    lines.extend(f"  {name}: {problem} (the next sweep run moves it aside and trains it again)"
                 for name, problem in result.failing)
    if result.foreign:
        n = result.foreign
        lines.append(f"  {n} part file{'s' * (n != 1)} of another grid, not counted "
                     f"(the next sweep run moves {'them' if n != 1 else 'it'} aside)")
    lines.extend(_slurm_lines(layout, manifest))
    return lines, result.complete


def _slurm_lines(layout, manifest):
    """One line per shard of the SLURM job written for this directory, if any."""
    from sweep import slurm

    try:
        record = slurm.read_tasks(layout)
    except SweepError as exc:
        return [f"  ({exc})"]
    if not record:
        return []
    if record.get("grid_hash") != manifest.get("grid_hash"):
        return [f"  ({layout.slurm}/ was written for another grid: run sweep slurm again)"]
    queued = slurm.queue_states(manifest.get("name", ""))
    jobs = record.get("jobs") or []
    lines = [f"  SLURM array of {record['tasks']} tasks" + (f", last job {jobs[-1]['job_id']}" if jobs else
                                                          ", not submitted")]
    for index, done, parts in slurm.shard_progress(layout, record):
        state = queued.get(index - 1)
        note = "complete" if done == parts else (state.lower() if state else "incomplete" + (
            ", not in the queue" if jobs else ""))
        lines.append(f"  shard {index}/{record['tasks']} (task {index - 1}): {done}/{parts} parts, {note}")
    return lines
