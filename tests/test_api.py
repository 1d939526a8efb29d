"""The Python API: sweep.run (grid files and dicts, overrides, resume, progress), sweep.plot, sweep.status."""
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

import sweep
from sweep import store
from sweep.cli import main
from sweep.errors import GridError, SweepError

ROOT = Path(__file__).resolve().parents[1]

TEXT = """
name = "api"
epochs = 120
checkpoints = 4
chunk_size = 8
[grid]
loss = ["mse", "bce"]
lr = [0.5, 2.0]
seed = { range = [0, 4] }
"""
DOC = {"name": "api", "epochs": 120, "checkpoints": 4, "chunk_size": 8,
       "grid": {"loss": ["mse", "bce"], "lr": [0.5, 2.0], "seed": {"range": [0, 4]}}}
TIMING = ["chunk_seconds"]


@pytest.fixture
def grid_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(TEXT)
    return path


def rows(df):
    return df.drop(columns=TIMING)


def part_times(path):
    return {p.name: p.stat().st_mtime_ns for p in Path(path).glob("part-*.parquet")}


def test_run_returns_the_rows_with_their_path_and_resumes(grid_file, tmp_path, capfd):
    df = sweep.run(grid_file, out=tmp_path / "res", progress=False)
    assert isinstance(df, pd.DataFrame) and len(df) == 16 and df["run_id"].is_unique
    assert df.attrs["path"] == str(tmp_path / "res" / "api")
    pd.testing.assert_frame_equal(rows(df), rows(sweep.load(df.attrs["path"])), check_exact=True)
    assert capfd.readouterr().err == ""  # progress=False: nothing at all on stderr
    before = part_times(df.attrs["path"])
    again = sweep.run(grid_file, out=tmp_path / "res")  # with progress: says that nothing was trained
    err = capfd.readouterr().err
    assert "nothing to train: all 16 runs were already written" in err
    assert part_times(df.attrs["path"]) == before
    pd.testing.assert_frame_equal(rows(df), rows(again), check_exact=True)


def test_run_trains_only_what_is_missing(grid_file, tmp_path, capfd):
    df = sweep.run(grid_file, out=tmp_path, progress=False)
    parts = sorted(Path(df.attrs["path"]).glob("part-*.parquet"))
    parts[0].unlink()
    again = sweep.run(grid_file, out=tmp_path)
    err = capfd.readouterr().err
    assert "16 runs (8 trained now in 1 chunk)" in err
    pd.testing.assert_frame_equal(rows(df), rows(again), check_exact=True)


def test_a_dict_grid_gives_the_rows_of_the_same_grid_file(grid_file, tmp_path):
    from_file = sweep.run(grid_file, out=tmp_path / "a", progress=False)
    from_dict = sweep.run(DOC, out=tmp_path / "b", progress=False)
    assert list(from_file["run_id"]) == list(from_dict["run_id"])
    pd.testing.assert_frame_equal(rows(from_file), rows(from_dict), check_exact=True)
    manifest, _ = store.read_manifest(Path(from_dict.attrs["path"]))
    assert manifest["grid_file"] == "<dict>"
    assert manifest["grid_hash"] == store.read_manifest(Path(from_file.attrs["path"]))[0]["grid_hash"]


def test_overrides_are_part_of_the_grid_its_manifest_and_hash(grid_file, tmp_path):
    plain = sweep.run(grid_file, out=tmp_path, progress=False)
    quick = sweep.run(grid_file, out=tmp_path, progress=False, name="quick", epochs=60, lr=[1.0], seed=range(2),
                      momentum=[0.0, 0.9])
    assert quick.attrs["path"] == str(tmp_path / "quick")
    assert len(quick) == 2 * 1 * 2 * 2 and set(quick["epochs"]) == {60} and set(quick["momentum"]) == {0.0, 0.9}
    manifest, _ = store.read_manifest(tmp_path / "quick")
    assert manifest["grid"]["overrides"] == {"name": "quick", "epochs": 60, "lr": [1.0], "seed": [0, 1],
                                             "momentum": [0.0, 0.9]}
    plain_manifest, _ = store.read_manifest(Path(plain.attrs["path"]))
    assert manifest["grid_hash"] != plain_manifest["grid_hash"] and "overrides" not in plain_manifest["grid"]
    # the same overrides find the same sweep: nothing to train
    before = part_times(tmp_path / "quick")
    sweep.run(grid_file, out=tmp_path, progress=False, name="quick", epochs=60, lr=[1.0], seed=range(2),
              momentum=[0.0, 0.9])
    assert part_times(tmp_path / "quick") == before


def test_an_override_that_changes_the_runs_is_another_sweep_refused_under_the_same_name(grid_file, tmp_path):
    sweep.run(grid_file, out=tmp_path, progress=False)
    with pytest.raises(SweepError) as info:
        sweep.run(grid_file, out=tmp_path, progress=False, epochs=50)
    message = str(info.value)
    assert "holds results of a different grid (changed: epochs, overrides;" in message
    assert message.endswith("(also an override: --set name=NEW, or name=NEW in sweep.run)") and "\n" not in message


def test_cli_set_records_the_overrides_and_status_finds_the_same_results(grid_file, tmp_path, capsys):
    argv = [str(grid_file), "--out", str(tmp_path), "--set", "epochs=60", "--set", "lr=[0.5, 1.0, 2.0]",
            "--set", "name=cli"]
    assert main(["run", *argv, "--quiet"]) == 0
    manifest, _ = store.read_manifest(tmp_path / "cli")
    assert manifest["grid"]["overrides"] == {"epochs": 60, "lr": [0.5, 1.0, 2.0], "name": "cli"}
    assert manifest["runs"] == 2 * 3 * 4
    df = sweep.load(tmp_path / "cli")
    assert set(df["lr"]) == {0.5, 1.0, 2.0} and set(df["epochs"]) == {60}
    capsys.readouterr()
    assert main(["status", *argv]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'cli'}: 3/3 parts, 24/24 runs done (complete)")
    # with an override that changes the runs, it is another grid than the one written there
    assert main(["status", *argv, "--set", "seed=[0, 1, 2, 3, 4]"]) == 2
    assert "holds results of a different grid (changed: overrides, seed;" in capsys.readouterr().err


def test_errors_raise_and_never_exit(grid_file, tmp_path):
    with pytest.raises(GridError) as info:
        sweep.run(grid_file, out=tmp_path, progress=False, lrr=1.0)
    assert str(info.value) == f"{grid_file}: override: unknown key 'lrr' (did you mean 'lr'?)"
    with pytest.raises(GridError, match=r"override lr\[1\]: expected a number > 0, got -1"):
        sweep.run(grid_file, out=tmp_path, progress=False, lr=[0.1, -1])
    with pytest.raises(GridError, match=r"^<dict>: grid.lr\[0\]: expected a number > 0, got 0"):
        sweep.run({"name": "x", "grid": {"lr": [0]}}, out=tmp_path, progress=False)
    with pytest.raises(GridError, match="no such file"):
        sweep.run(tmp_path / "missing.toml", out=tmp_path, progress=False)
    with pytest.raises(SweepError, match=r"jobs: expected an integer >= 1 \(or None: the CPU count\), got 0"):
        sweep.run(grid_file, out=tmp_path, jobs=0, progress=False)
    with pytest.raises(SweepError, match="--backend must be one of"):
        sweep.run(grid_file, out=tmp_path, backend="gpu", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml"]


class FakeNotebookBar:
    made = []

    def __init__(self, **options):
        self.options, self.n, self.closed = options, options.get("initial", 0), False
        FakeNotebookBar.made.append(self)

    def update(self, n):
        self.n += n

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def close(self):
        self.closed = True


def test_in_a_notebook_progress_is_a_notebook_bar_and_progress_false_shows_none(grid_file, tmp_path, monkeypatch,
                                                                               capfd):
    import sweep.progress

    monkeypatch.setattr(sweep.progress, "in_notebook", lambda: True)
    monkeypatch.setitem(sys.modules, "tqdm.notebook", types.SimpleNamespace(tqdm=FakeNotebookBar))
    FakeNotebookBar.made = []
    sweep.run(grid_file, out=tmp_path, progress=False)
    assert FakeNotebookBar.made == [] and capfd.readouterr().err == ""
    Path(tmp_path / "api" / next(iter(part_times(tmp_path / "api")))).unlink()
    sweep.run(grid_file, out=tmp_path)
    [bar] = FakeNotebookBar.made
    assert bar.options["total"] == 16 and bar.options["initial"] == 8 and bar.n == 16 and bar.closed
    assert "net-epochs/s" in bar.postfix


def test_in_a_notebook_without_ipywidgets_the_bar_is_tqdms_plain_one(monkeypatch):
    import io

    import sweep.progress

    class NoWidgets:
        def __init__(self, **options):
            raise ImportError("IProgress not found. Please update jupyter and ipywidgets.")

    monkeypatch.setitem(sys.modules, "tqdm.notebook", types.SimpleNamespace(tqdm=NoWidgets))
    out = io.StringIO()
    p = sweep.progress.Progress(10, 10, stream=out, notebook=True)
    p.update(10, 10)
    p.close()
    assert "10/10" in out.getvalue()


def test_in_notebook_is_false_outside_a_kernel(monkeypatch):
    from sweep.progress import in_notebook

    assert not in_notebook()
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert in_notebook()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    assert not in_notebook()


def test_status_counts_parts_and_runs(grid_file, tmp_path):
    df = sweep.run(grid_file, out=tmp_path, progress=False)
    path = Path(df.attrs["path"])
    done = sweep.status(path)
    assert (done.parts_done, done.parts_total, done.runs_done, done.runs_total) == (2, 2, 16, 16)
    assert done.complete and done.failing == [] and done.runs_missing == 0 and done.path == path
    assert repr(done) == "Status('api': 2/2 parts, 16/16 runs, complete)"
    assert sweep.status(grid_file, out=tmp_path) == done  # the grid file finds the same results
    parts = sorted(path.glob("part-*.parquet"))
    parts[0].unlink()
    data = bytearray(parts[1].read_bytes())
    parts[1].write_bytes(bytes(data[: len(data) // 2]))  # cut in half: fails its checks
    now = sweep.status(str(path))
    assert (now.parts_done, now.runs_done, now.complete, now.runs_missing) == (0, 0, False, 16)
    assert [name for name, _ in now.failing] == [parts[1].name]
    assert repr(now) == "Status('api': 0/2 parts, 0/16 runs, incomplete, 1 failing checks)"
    fresh = sweep.status(grid_file, out=tmp_path / "elsewhere")  # not run there: nothing done
    assert (fresh.parts_done, fresh.runs_total, fresh.complete) == (0, 16, False)
    with pytest.raises(SweepError):
        sweep.status(tmp_path / "nothing")


def test_plot_returns_a_figure_that_shows_itself(grid_file, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    df = sweep.run(grid_file, out=tmp_path, progress=False)
    fig = sweep.plot(df)
    assert isinstance(fig, Figure) and len(fig.axes) >= 6
    assert "api" in fig._suptitle.get_text()  # the manifest's name
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG")
    again = sweep.plot(df.attrs["path"], curves=False, where="loss == 'bce'")
    assert isinstance(again, Figure) and len(again.axes) < len(fig.axes)
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.pdf"))  # wrote nothing
    out = tmp_path / "f.png"
    fig.savefig(out)
    assert out.read_bytes().startswith(b"\x89PNG")


def test_sweep_status_is_the_function_and_importing_sweep_stays_cheap():
    code = ("import sys, sweep; import sweep.state; from sweep.state import check; "
            "print(callable(sweep.status) and sweep.status.__module__ == 'sweep.api', sweep.run.__module__, "
            "sweep.plot.__module__, 'pandas' in sys.modules, 'numba' in sys.modules, 'pyarrow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "sweep.api", "sweep.api", "False", "False", "False"], out.stderr
