"""The results directory on disk: the manifest, stamped parts with checksums, verification, quarantine."""
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweep import store
from sweep.errors import SweepError
from sweep.plan import chunk_id

GRID_HASH = "0123456789abcdef"


def table(n, offset=0):
    ids = [f"{i:016x}" for i in range(offset, offset + n)]
    rng = np.random.default_rng(n + offset)
    return pa.table({"run_id": ids, "x": rng.standard_normal(n), "k": np.arange(n, dtype=np.int64),
                     "curve": pa.array([list(rng.standard_normal(5)) for _ in range(n)])})


def part(layout, n=64, offset=0):
    """A written part of n runs; returns (path, chunk id, table)."""
    t = table(n, offset)
    cid = chunk_id(t.column("run_id").to_pylist())
    return store.write_part(layout, cid, t, GRID_HASH, layout.tmp), cid, t


@pytest.fixture
def layout(tmp_path):
    layout = store.Layout(tmp_path / "res" / "s")
    layout.data.mkdir(parents=True)
    layout.tmp.mkdir(parents=True)
    return layout


def check(path, cid, n=64, full=True, grid_hash=GRID_HASH):
    return store.check_part(path, chunk_id=cid, n_runs=n, grid_hash=grid_hash, schema=table(1).schema, full=full)


def test_layout_keeps_everything_but_parquet_beside_the_results(tmp_path):
    layout = store.Layout(tmp_path / "s")
    assert layout.admin == tmp_path / "_s"
    assert store.Layout(f"{tmp_path}/s/").admin == tmp_path / "_s"
    for path in (layout.quarantine, layout.slurm, layout.figure, layout.tmp):
        assert path.parent == layout.admin
    assert layout.manifest == tmp_path / "s" / "_sweep.parquet"


def test_part_is_stamped_checksummed_and_passes_its_checks(layout):
    path, cid, t = part(layout)
    assert path == layout.part(cid) and store.list_parts(layout) == {cid: path}
    assert list(layout.tmp.iterdir()) == []  # no temporary left
    assert check(path, cid) is None and check(path, cid, full=False) is None
    assert store.read_part(path).equals(t.replace_schema_metadata(store.read_part(path).schema.metadata))
    meta = pq.read_metadata(path).metadata
    assert b'"grid_hash": "0123456789abcdef"' in meta[store.PART_KEY] and cid.encode() in meta[store.PART_KEY]


def test_checks_name_what_is_wrong(layout):
    path, cid, _ = part(layout)
    assert check(path, cid, n=65) == "has 64 rows, expected 65"
    assert check(path, "feedfeedfeedfeed") == f"holds chunk {cid}, not feedfeedfeedfeed"
    assert check(path, cid, grid_hash="ffffffffffffffff").startswith("belongs to another grid")
    other = store.check_part(path, chunk_id=cid, n_runs=64, grid_hash=GRID_HASH,
                             schema=pa.schema([("run_id", pa.string()), ("y", pa.float64())]), full=False)
    assert other.startswith("has another schema than the sweep's (columns")
    # a valid Parquet file that sweep did not write
    pq.write_table(pa.table({"x": [1.0] * 64}), path)
    assert check(path, cid) == "not written by sweep (no grid hash and chunk id in its metadata)"


def test_truncated_part_is_unreadable_and_quarantined(layout):
    path, cid, _ = part(layout, 5)
    path.write_bytes(path.read_bytes()[:200])
    assert check(path, cid, n=5).startswith("unreadable")
    moved = store.quarantine(layout, path)
    assert moved == layout.quarantine / path.name and not path.exists() and store.list_parts(layout) == {}
    # a second part of that name is kept too
    path2, _, _ = part(layout, 5)
    assert store.quarantine(layout, path2).name == path.name + ".1"


def test_another_part_of_the_same_size_copied_over_is_caught_by_its_run_ids(layout):
    a, cid_a, _ = part(layout, 64, 0)
    b, cid_b, t = part(layout, 64, 1000)
    # forge b's stamp into a copy of a: stamp, rows and schema agree; only the run ids can tell
    forged = store.read_part(a)
    pq.write_table(forged.replace_schema_metadata({store.PART_KEY: f'{{"grid_hash": "{GRID_HASH}", '
                                                  f'"chunk_id": "{cid_b}"}}'.encode()}), b)
    assert check(b, cid_b, full=False) is None
    assert check(b, cid_b) == "its run_ids are not those of its chunk (duplicated or missing runs)"


def test_every_single_byte_change_is_caught_or_harmless(layout):
    """Random damage anywhere in a part: the full check fails, or the data read back are unchanged
    (a changed byte of unused footer metadata, say). Page checksums catch what the footer cannot."""
    path, cid, _ = part(layout, 200)
    good = path.read_bytes()
    want = store.read_part(path)
    rng = np.random.default_rng(0)
    caught = 0
    offsets = rng.choice(len(good), size=min(len(good), 400), replace=False)
    for offset in offsets:
        damaged = bytearray(good)
        damaged[offset] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(damaged))
        problem = check(path, cid, n=200)
        if problem is not None:
            caught += 1
            continue
        assert store.read_part(path).equals(want), f"byte {offset}: damage read back as good"
    assert caught > 0.9 * len(offsets)


def test_manifest_round_trip_is_a_parquet_file_of_the_parts_schema(layout):
    assert store.read_manifest(layout) is None
    schema = table(1).schema
    store.write_manifest(layout, {"name": "s", "runs": 3}, schema, layout.tmp)
    manifest, got = store.read_manifest(layout)
    assert manifest == {"name": "s", "runs": 3} and got.equals(schema)
    assert pq.read_table(layout.manifest).num_rows == 0
    part(layout)
    import polars as pl

    assert pl.read_parquet(layout.data).height == 64  # the manifest reads as zero rows of the same columns


@pytest.mark.parametrize("content", [b"{not parquet", b""])
def test_unreadable_manifest_is_one_line(layout, content):
    layout.manifest.write_bytes(content)
    with pytest.raises(SweepError, match="is not a readable sweep manifest") as info:
        store.read_manifest(layout)
    assert "\n" not in str(info.value) and "--overwrite" in str(info.value)


def test_a_manifest_of_an_older_sweep_is_named(layout):
    (layout.data / store.LEGACY_MANIFEST).write_text("{}")
    with pytest.raises(SweepError, match="older version of sweep"):
        store.read_manifest(layout)


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


def test_quarantine_that_cannot_be_created_or_moved_into_is_one_line(layout, monkeypatch):
    path, _, _ = part(layout)
    layout.quarantine.parent.mkdir(exist_ok=True)
    layout.quarantine.write_text("a file in the way")
    with pytest.raises(SweepError, match="a file of that name is in the way"):
        store.quarantine(layout, path)
    layout.quarantine.unlink()

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(SweepError, match="cannot move .* aside .*Permission denied") as info:
        store.quarantine(layout, path)
    assert "\n" not in str(info.value) and path.exists()


def test_full_disk_leaves_no_partial_part(layout, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(SweepError, match="No space left on device"):
        store.write_part(layout, "ee", table(2), GRID_HASH, layout.tmp)
    assert list(layout.data.iterdir()) == [] and list(layout.tmp.iterdir()) == []


def test_remove_results_removes_only_sweep_files(layout):
    part(layout)
    store.write_manifest(layout, {}, table(1).schema, layout.tmp)
    (layout.data / "notes.txt").write_text("mine")
    layout.quarantine.mkdir()
    (layout.quarantine / "part-aa.parquet").write_text("x")
    store.remove_results(layout)
    assert [p.name for p in layout.data.iterdir()] == ["notes.txt"] and not layout.quarantine.exists()
    assert store.stray_files(layout) == [layout.data / "notes.txt"]
