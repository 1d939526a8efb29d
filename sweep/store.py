"""The results directory: a Parquet dataset of part files plus a manifest.

Layout of ``results/<name>/``::

    _sweep.json                 manifest (Parquet readers skip names starting with _ or .)
    part-<chunk_id>.parquet     one file per chunk, all rows of its runs
    .part-<chunk_id>.<pid>.tmp  a part being written; renamed into place when complete
    _corrupt/                   parts found unreadable on resume, kept for inspection

A part is written to a temporary name in the same directory, flushed to disk
and renamed over its final name, so a reader (or a resumed sweep) sees a
chunk's rows completely or not at all, whenever the writer is killed.
"""
import json
import os
import re
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sweep.errors import SweepError

MANIFEST = "_sweep.json"
CORRUPT_DIR = "_corrupt"
_PART_RE = re.compile(r"^part-([0-9a-f]+)\.parquet$")
_TMP_RE = re.compile(r"^\.part-([0-9a-f]+)\..*\.tmp$")


def part_name(chunk_id):
    return f"part-{chunk_id}.parquet"


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def ensure_writable_dir(path):
    """Create `path` (and parents) or fail with one clear line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise SweepError(f"cannot write to output directory {path}: {exc.strerror or exc}") from None
    return path


def _write_atomic(final, tmp, write):
    """Write through `write(fh)` into `tmp`, flush it to disk, rename it over `final`."""
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SweepError(f"cannot write {final}: {exc.strerror or exc}") from None
    _fsync_dir(final.parent)
    return final


def write_atomic_bytes(path, data):
    """Write bytes to `path` through a temporary file and a rename."""
    path = Path(path)
    return _write_atomic(path, path.with_name(f".{path.name}.{os.getpid()}.tmp"), lambda fh: fh.write(data))


def write_part(directory, chunk_id, table: pa.Table):
    """Write one chunk's rows as part-<chunk_id>.parquet, atomically."""
    directory = Path(directory)
    tmp = directory / f".part-{chunk_id}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    return _write_atomic(directory / part_name(chunk_id), tmp,
                         lambda fh: pq.write_table(table, fh, compression="zstd"))


def read_json(path, what, remedy):
    """The JSON object in `path`, None if there is no such file; unreadable is a SweepError
    naming `what` it should be and the `remedy`."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SweepError(f"{path} is not a readable {what} ({exc}); {remedy}") from None


def write_json(path, obj):
    """Write `obj` as indented JSON, atomically."""
    write_atomic_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_manifest(directory):
    return read_json(Path(directory) / MANIFEST, "sweep manifest", "move it away or use --overwrite")


def write_manifest(directory, manifest):
    write_json(Path(directory) / MANIFEST, manifest)


def list_parts(directory):
    """{chunk_id: path} of the complete part files present."""
    out = {}
    directory = Path(directory)
    if not directory.is_dir():
        return out
    for entry in os.scandir(directory):
        m = _PART_RE.match(entry.name)
        if m:
            out[m.group(1)] = Path(entry.path)
    return out


def check_part(path, expected_rows):
    """None if the part is a readable Parquet file with the expected row count, else the reason."""
    try:
        meta = pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        return f"unreadable ({str(exc).splitlines()[0]})"
    if meta.num_rows != expected_rows:
        return f"has {meta.num_rows} rows, expected {expected_rows}"
    return None


def quarantine(directory, path):
    """Move a corrupt part into _corrupt/ so it is neither read nor lost."""
    target_dir = Path(directory) / CORRUPT_DIR
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    os.replace(path, target)
    return target


def clean_temporaries(directory, chunk_ids=None):
    """Remove leftover temporaries of the given chunks (all chunks if None).

    Shards running at once own disjoint chunks, so each removes only its own.
    """
    removed = 0
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    for entry in os.scandir(directory):
        m = _TMP_RE.match(entry.name)
        if m and (chunk_ids is None or m.group(1) in chunk_ids):
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def remove_results(directory):
    """Delete what a sweep wrote (parts, temporaries, manifest, _corrupt/), nothing else."""
    directory = Path(directory)
    for entry in os.scandir(directory):
        if _PART_RE.match(entry.name) or _TMP_RE.match(entry.name) or entry.name == MANIFEST:
            os.unlink(entry.path)
    corrupt = directory / CORRUPT_DIR
    if corrupt.is_dir():
        for entry in os.scandir(corrupt):
            os.unlink(entry.path)
        corrupt.rmdir()
