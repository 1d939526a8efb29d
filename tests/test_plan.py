"""Chunks, the wall-time estimate and the plan report."""
import hashlib
import math
import textwrap

import numpy as np
import pytest

from sweep.grid import expand, loads_grid
from sweep.params import DEFAULTS
from sweep.plan import Chunk, calibrate, format_duration, plan_chunks, report

GRID = """
    name = "p"
    [grid]
    hidden = [2, 4]
    epochs = [100, 30]
    lr = [0.1, 0.3, 1.0]
    loss = ["mse", "bce"]
    seed = { range = [0, 50] }
"""


def grid_and_runs(text=GRID):
    grid = loads_grid(textwrap.dedent(text), "p.toml")
    return grid, expand(grid)


def test_chunks_cover_every_run_once_and_share_a_shape():
    grid, runs = grid_and_runs()
    chunks = plan_chunks(runs, 64)
    rows = np.concatenate([c.rows for c in chunks])
    assert sorted(rows.tolist()) == list(range(len(runs)))
    for c in chunks:
        assert isinstance(c, Chunk)
        part = runs.iloc[c.rows]
        assert part["run_id"].tolist() == list(c.run_ids)
        assert (part["hidden"] == c.hidden).all() and (part["epochs"] == c.epochs).all()
        assert (part["dataset"] == c.dataset).all() and (part["dtype"] == c.dtype).all()
        assert (part["checkpoints"] == c.checkpoints).all()
        assert c.network_epochs == c.n_runs * c.epochs == len(part) * c.epochs
    # hyperparameters other than the shape share chunks
    assert any(runs.iloc[c.rows]["lr"].nunique() > 1 and runs.iloc[c.rows]["loss"].nunique() > 1 for c in chunks)
    assert len({c.shape for c in chunks}) == 4


def test_chunk_sizes_are_balanced_and_at_most_chunk_size():
    _, runs = grid_and_runs()
    per_shape = len(runs) // 4  # 300
    for size in (1, 7, 64, 299, 300, 301, 5000):
        chunks = plan_chunks(runs, size)
        assert all(c.n_runs <= size for c in chunks)
        assert len(chunks) == 4 * math.ceil(per_shape / size)
        by_shape = {}
        for c in chunks:
            by_shape.setdefault(c.shape, []).append(c.n_runs)
        for sizes in by_shape.values():
            assert sum(sizes) == per_shape and max(sizes) - min(sizes) <= 1


def test_lanes_are_sorted_by_init_seed_run_id_and_chunk_id_hashes_them():
    _, runs = grid_and_runs()
    for c in plan_chunks(runs, 100):
        lanes = runs.iloc[c.rows]
        keys = list(zip(lanes["init"], lanes["seed"], lanes["run_id"]))
        assert keys == sorted(keys)
        assert c.chunk_id == hashlib.sha256("\n".join(sorted(c.run_ids)).encode()).hexdigest()[:16]


def test_chunks_do_not_depend_on_the_order_of_the_runs_table():
    _, runs = grid_and_runs()
    shuffled = runs.sample(frac=1.0, random_state=1).reset_index(drop=True)
    a, b = plan_chunks(runs, 128), plan_chunks(shuffled, 128)
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert [c.run_ids for c in a] == [c.run_ids for c in b]
    for ca, cb in zip(a, b):
        assert runs.iloc[ca.rows]["run_id"].tolist() == shuffled.iloc[cb.rows]["run_id"].tolist()


def test_shapes_come_in_a_fixed_order():
    _, runs = grid_and_runs()
    shapes = [c.shape for c in plan_chunks(runs, 1000)]
    ck = DEFAULTS["checkpoints"]
    model = ("sigmoid", "sigmoid", True, "standard", "sum", "gd", 0, False, False)  # sweep.params.CALL
    assert shapes == [("xor", 2, 30, "float64", ck, model), ("xor", 2, 100, "float64", ck, model),
                      ("xor", 4, 30, "float64", ck, model), ("xor", 4, 100, "float64", ck, model)]


def test_model_variants_split_chunks():
    _, runs = grid_and_runs("""
        name = "v"
        epochs = 10
        [grid]
        activation = ["tanh", "sigmoid"]
        bias = [true, false]
        seed = [0, 1, 2]
    """)
    chunks = plan_chunks(runs, 2048)
    assert [c.variant[:3] for c in chunks] == [("sigmoid", "sigmoid", False), ("sigmoid", "sigmoid", True),
                                               ("tanh", "sigmoid", False), ("tanh", "sigmoid", True)]
    for c in chunks:
        assert set(map(tuple, runs.iloc[c.rows][["activation", "output", "bias"]].to_numpy().tolist())) == {c.variant[:3]}


def test_explicit_checkpoint_lists_split_shapes():
    _, runs = grid_and_runs("""
        name = "c"
        epochs = 100
        [grid]
        checkpoints = [[0, 100], [0, 10, 100]]
        seed = [0, 1, 2]
    """)
    chunks = plan_chunks(runs, 2048)
    assert [c.checkpoints for c in chunks] == [(0, 10, 100), (0, 100)]
    assert [c.n_runs for c in chunks] == [3, 3]


def test_empty_runs_and_bad_chunk_size():
    _, runs = grid_and_runs()
    assert plan_chunks(runs.iloc[:0], 10) == []
    with pytest.raises(ValueError):
        plan_chunks(runs, 0)


@pytest.mark.parametrize("seconds, text", [
    (0.123, "0.12 s"), (5.0, "5.0 s"), (42.4, "42 s"), (150, "2.5 min"), (3000, "50 min"),
    (7200, "2.0 h"), (86400 * 3, "3.0 days"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_report_without_estimate():
    grid, runs = grid_and_runs(GRID + '\n[[extra]]\nlr = 3.0\nhidden = 2\nepochs = 30\n'
                               '[[exclude]]\nloss = "mse"\nlr = 1.0\n')
    chunks = plan_chunks(runs, grid.chunk_size, grid.datasets)
    text = report(grid, runs, chunks, None, "skipped (--no-estimate)", n_rows=3)
    lines = text.splitlines()
    assert lines[0] == "sweep plan: p  (p.toml)"
    assert "  hidden (2): 2, 4" in lines
    assert "  seed (50): 0, 1, 2, ..., 49" in lines
    assert "  = 2 x 2 x 3 x 2 x 50 = 1,200 runs" in lines
    assert "  + extra[0]: 100 runs" in lines
    excluded = 2 * 2 * 50  # mse at lr 1.0 (hidden x epochs x seeds); none in the extra (lr 3.0)
    assert f"  - 1 exclude: {excluded:,} runs" in lines
    assert f"runs:           {len(runs):,}" in lines
    assert f"network-epochs: {sum(c.network_epochs for c in chunks):,}" in lines
    assert "estimate:       skipped (--no-estimate)" in lines
    assert "first 3 of 1,100 runs:" in lines
    header = lines[lines.index("first 3 of 1,100 runs:") + 1].split()
    assert header == ["run_id", "hidden", "epochs", "lr", "loss", "seed"]
    assert lines[-1].split()[0] == runs["run_id"].iloc[2]


def test_calibration_measures_a_positive_rate_and_scales_with_workers():
    pytest.importorskip("kernels", reason="the kernels are not importable yet")
    grid, runs = grid_and_runs("""
        name = "cal"
        [grid]
        hidden = [1, 2, 3, 4]
        epochs = [50, 40, 30, 20]
        seed = { range = [0, 40] }
    """)
    chunks = plan_chunks(runs, grid.chunk_size, grid.datasets)
    one = calibrate(grid, runs, chunks, lanes=32, epochs=20, workers=1, min_seconds=0.001)
    assert one.workers == one.busy_workers == 1
    # the three heaviest of four shapes are timed (work grows with hidden: same runs and epochs)
    assert [c.hidden for c in one.calibrations] == [4, 3, 2]
    for c in one.calibrations:  # more lanes (up to a chunk's 40) only when the epochs could not grow
        assert (c.lanes == 32 or c.epochs == 20 and c.lanes <= 40) and c.epochs >= 20 and c.seconds > 0
        assert c.rate > 0
    assert one.seconds > 0 and math.isfinite(one.seconds)
    text = report(grid, runs, chunks, one, n_rows=0)
    assert "estimate:       about " in text and "network-epochs/s per worker on xor, hidden 4, float64" in text
    # more workers, shorter estimate; never more workers than 64-lane tiles to keep busy
    many = calibrate(grid, runs, chunks, lanes=32, epochs=20, workers=4, min_seconds=0.001)
    assert many.busy_workers == 4 and many.seconds < one.seconds
    lots = calibrate(grid, runs, chunks, lanes=32, epochs=20, workers=1000, min_seconds=0.001)
    assert lots.busy_workers == sum(-(-c.n_runs // 64) for c in chunks) < 1000  # float64 tiles of 64 lanes


def test_the_work_outside_the_kernel_is_the_chunk_less_its_own_kernel_call(monkeypatch):
    """The host's share is timed inside one train_chunk call (no second kernel call to subtract), split into
    weights and rows, and the part's write: each is the time of what it names."""
    import time

    import sweep.execute as execute
    import sweep.store as store
    from sweep.plan import _host_seconds_per_run

    grid, runs = grid_and_runs("""
        name = "host"
        epochs = 3
        [grid]
        seed = { range = [0, 400] }
    """)
    rows = np.arange(400)
    train, write = execute._trainer, store.write_rows

    def slow_kernel(device):
        def call(*args, **kwargs):
            time.sleep(0.2)  # a kernel this slow would swamp the host's share if it were not taken out exactly
            return train(device)(*args, **kwargs)
        return call

    def slow_write(*args, **kwargs):
        time.sleep(0.04)
        return write(*args, **kwargs)

    monkeypatch.setattr(execute, "_trainer", slow_kernel)
    monkeypatch.setattr(store, "write_rows", slow_write)
    cost = _host_seconds_per_run(grid, runs, rows)
    assert 0 < cost.rows < 0.05 / 400  # the weights and rows of 400 XOR runs take milliseconds, not 0.2 s
    assert 0.04 / 400 <= cost.write < 0.2 / 400
    assert cost.total == cost.rows + cost.write


def test_short_runs_are_timed_many_at_once_and_the_work_outside_the_kernel_is_counted():
    """Runs of 3 epochs: a call on 32 lanes would measure the call, not the runs; the estimate times more
    lanes (up to a chunk), and adds the measured work outside the kernel, which here is most of it."""
    grid, runs = grid_and_runs("""
        name = "short"
        epochs = 3
        chunk_size = 3000
        [grid]
        seed = { range = [0, 6000] }
    """)
    chunks = plan_chunks(runs, grid.chunk_size, grid.datasets)
    estimate = calibrate(grid, runs, chunks, lanes=32, workers=1, min_seconds=0.02)
    (c,) = estimate.calibrations
    assert c.epochs == 3 and 32 < c.lanes <= 3000
    assert 0 < estimate.host_seconds < estimate.seconds
    assert estimate.seconds == pytest.approx(sum(ch.network_epochs for ch in chunks) / c.rate + estimate.host_seconds)
    assert "of it outside the kernel (weights, rows, parts)" in report(grid, runs, chunks, estimate, n_rows=0)
    # planning a grid takes seconds at millions of runs, and `sweep run` plans it too: said from 1 s
    assert "plus about 2.0 s to plan the runs before training" in report(grid, runs, chunks, estimate, n_rows=0,
                                                                          planning=2.0)
    assert "to plan the runs" not in report(grid, runs, chunks, estimate, n_rows=0, planning=0.5)
    assert "to plan the runs" not in report(grid, runs, chunks, None, "skipped (--no-estimate)", n_rows=0,
                                            planning=2.0)


def test_calibration_of_a_tiny_grid_uses_its_real_lane_count():
    pytest.importorskip("kernels", reason="the kernels are not importable yet")
    grid, runs = grid_and_runs('name = "t"\nepochs = 5\n[grid]\nseed = [0, 1, 2]\n')
    est = calibrate(grid, runs, plan_chunks(runs, 2048), workers=2, min_seconds=0.001)
    assert est.calibrations[0].lanes == 3 and est.calibrations[0].epochs == 5  # never beyond the runs' epochs
    assert est.busy_workers == 1


def test_values_printed_by_the_plan_can_be_pasted_into_an_exclude():
    text = 'name = "x"\n[grid]\ninit_scale = { logspace = [-1.5, 1.5, 7] }\nlr = { linspace = [0.1, 0.7, 4] }\n'
    grid, runs = grid_and_runs(text)
    printed = report(grid, runs, plan_chunks(runs, 2048), None, "skipped", n_rows=0)
    axis_lines = {line.split()[0]: line.split(": ", 1)[1].split(", ") for line in printed.splitlines()
                  if line.startswith("  init_scale (") or line.startswith("  lr (")}
    scale, lr = axis_lines["init_scale"][0], axis_lines["lr"][1]
    assert scale != repr(runs["init_scale"].min())  # shortened for the eye...
    _, kept = grid_and_runs(text + f"[[exclude]]\ninit_scale = {scale}\nlr = {lr}\n")
    assert len(kept) == len(runs) - 1  # ...yet it still names the one run


def test_automatic_chunk_size_grows_only_for_cheap_runs():
    from sweep.plan import AUTO_LANES, AUTO_MAX_LANES, auto_chunk_size

    assert auto_chunk_size(3000, 4, 2, 4) == AUTO_LANES == 2048  # XOR 2-4-1, long runs: as before
    assert auto_chunk_size(2048, 4, 2, 4) == 2048
    assert auto_chunk_size(1024, 4, 2, 4) == 4096  # half the epochs, twice the lanes
    assert auto_chunk_size(50, 4, 2, 4) == AUTO_MAX_LANES == 65536
    assert auto_chunk_size(0, 4, 2, 4) == AUTO_MAX_LANES
    assert auto_chunk_size(1000, 272, 16, 16) == 2048  # wide data: never fewer than 2,048


@pytest.mark.parametrize("axes", ['seed = [1, 2, 3]', 'hidden = [2, 3]\nactivation = ["tanh", "relu"]\nseed = [1, 2]',
                                  'checkpoints = [[0, 1], [2]]\nseed = [1, 2]', 'bias = [true, false]\nseed = [1, 2]',
                                  'epochs = [5, 6]\ndtype = ["float32", "float64"]'])
def test_shape_groups_are_pandas_group_by_of_the_shape_columns(axes):
    """Columns with one value for every run are left out of the group-by (a map varies two rates only);
    the groups, their keys and the keys' Python types are those of a group-by of every shape column."""
    from sweep.grid import loads_grid
    from sweep.plan import SHAPE_KEY, _shape_groups

    runs = expand(loads_grid(f'name = "x"\n[grid]\n{axes}\n'))
    got = _shape_groups(runs)
    want = runs.groupby(list(SHAPE_KEY), sort=False, dropna=False, observed=True).indices
    assert list(got) == list(want)
    assert [[type(v) for v in key] for key in got] == [[type(v) for v in key] for key in want]
    for key in want:
        assert got[key].tolist() == want[key].tolist()
