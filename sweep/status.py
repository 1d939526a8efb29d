"""`sweep status`: how much of a sweep is written, and whether what is written is sound. Reads only."""
from pathlib import Path

from sweep import store
from sweep.errors import SweepError


def _target(target, out_root):
    """(layout, manifest, schema) of a results directory, or of a grid file's results."""
    target = Path(target)
    if not (target.is_file() or (not target.exists() and target.suffix == ".toml")):
        layout = store.require_results_dir(target)
        manifest, schema = store.read_manifest(layout)
        return layout, manifest, schema
    from sweep.runner import existing_manifest, prepare

    prepared = prepare(target, out_root)
    if prepared.outdir.is_dir() and existing_manifest(prepared) is not None:
        manifest, schema = store.read_manifest(prepared.layout)
        return prepared.layout, manifest, schema
    return prepared.layout, prepared.manifest, prepared.schema


def status(target, out_root="results", *, verify=False):
    """(lines describing the sweep, complete?). target: a results directory or a grid file.

    Every part is checked as a resumed sweep checks it: its stamp (grid hash, chunk id), row count and
    schema; with `verify`, also every page against its checksum and its run ids against its chunk.
    """
    layout, manifest, schema = _target(target, out_root)
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
            bad.append(f"  {path.name}: {problem} (the next sweep run moves it aside and trains it again)")
    total = sum(chunks.values())
    runs_done = sum(done.values())
    complete = runs_done == total
    lines = [f"{layout.data}: {len(done)}/{len(chunks)} parts, {runs_done:,}/{total:,} runs done"
             + (" (complete)" if complete else "") + (", every page verified" if verify and parts else "")]
    lines.extend(bad)
    foreign = sorted(set(parts) - set(chunks))
    if foreign:
        lines.append(f"  {len(foreign)} part file{'s' * (len(foreign) != 1)} of another grid, not counted "
                     f"(the next sweep run moves {'them' if len(foreign) != 1 else 'it'} aside)")
    lines.extend(_slurm_lines(layout, manifest))
    return lines, complete


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
