"""The results directory: atomic parts, manifest, corrupt parts, temporaries."""
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweep import store
from sweep.errors import SweepError


def table(n):
    return pa.table({"run_id": [f"{i:016x}" for i in range(n)], "x": list(range(n))})


def test_part_is_written_atomically_and_listed(tmp_path):
    path = store.write_part(tmp_path, "ab12", table(3))
    assert path.name == "part-ab12.parquet"
    assert store.list_parts(tmp_path) == {"ab12": path}
    assert store.check_part(path, 3) is None
    assert "expected 4" in store.check_part(path, 4)
    assert [p.name for p in tmp_path.iterdir()] == ["part-ab12.parquet"]  # no temporary left
    assert pq.read_table(tmp_path).num_rows == 3


def test_truncated_part_is_reported_and_quarantined(tmp_path):
    path = store.write_part(tmp_path, "cd34", table(5))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert store.check_part(path, 5).startswith("unreadable")
    moved = store.quarantine(tmp_path, path)
    assert moved.parent.name == "_corrupt" and not path.exists()
    assert store.list_parts(tmp_path) == {}


def test_temporaries_are_invisible_to_readers_and_cleaned_per_chunk(tmp_path):
    store.write_part(tmp_path, "aa", table(2))
    (tmp_path / ".part-bb.123.dead.tmp").write_bytes(b"half a parquet file")
    (tmp_path / ".part-cc.456.beef.tmp").write_bytes(b"another shard's")
    assert pq.read_table(tmp_path).num_rows == 2  # readers skip dot-files
    assert store.clean_temporaries(tmp_path, {"bb"}) == 1
    assert (tmp_path / ".part-cc.456.beef.tmp").exists()
    assert store.clean_temporaries(tmp_path) == 1


def test_manifest_round_trip_and_unreadable_manifest(tmp_path):
    assert store.read_manifest(tmp_path) is None
    store.write_manifest(tmp_path, {"name": "x", "runs": 3})
    assert store.read_manifest(tmp_path) == {"name": "x", "runs": 3}
    store.write_part(tmp_path, "aa", table(2))
    assert pq.read_table(tmp_path).num_rows == 2  # the manifest is skipped by Parquet readers
    (tmp_path / store.MANIFEST).write_text("{not json")
    with pytest.raises(SweepError, match="not a readable sweep manifest"):
        store.read_manifest(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory_is_a_clear_error(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(SweepError, match="cannot write to output directory"):
            store.ensure_writable_dir(tmp_path / "sub")
    finally:
        tmp_path.chmod(0o700)


def test_output_path_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(SweepError, match="cannot write to output directory"):
        store.ensure_writable_dir(tmp_path / "f" / "sweep")


def test_full_disk_leaves_no_partial_part(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(SweepError, match="No space left on device"):
        store.write_part(tmp_path, "ee", table(2))
    assert list(tmp_path.iterdir()) == []


def test_remove_results_removes_only_sweep_files(tmp_path):
    store.write_part(tmp_path, "aa", table(2))
    store.write_manifest(tmp_path, {})
    (tmp_path / "notes.txt").write_text("mine")
    store.remove_results(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
