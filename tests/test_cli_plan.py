"""`python -m sweep plan`: output, exit codes, one-line errors, nothing written."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sweep
from sweep.cli import main

ROOT = Path(__file__).resolve().parents[1]

SMALL = 'name = "small"\nepochs = 50\n[grid]\nloss = ["mse", "bce"]\nseed = { range = [0, 3] }\n'


def listing(path):
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*"))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_plan_prints_the_plan_and_exits_0(workdir, capsys):
    Path("g.toml").write_text(SMALL)
    assert main(["plan", "g.toml", "--no-estimate", "--rows", "2"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "sweep plan: small  (g.toml)"
    assert "  = 2 x 3 = 6 runs" in lines
    assert "runs:           6" in lines
    assert "network-epochs: 300" in lines
    assert "estimate:       skipped (--no-estimate)" in lines
    assert "first 2 of 6 runs:" in lines
    assert listing(workdir) == ["g.toml"]  # plan writes nothing


def test_plan_with_estimate(workdir, capsys):
    pytest.importorskip("kernels", reason="the kernels are not importable yet")
    Path("g.toml").write_text(SMALL)
    assert main(["plan", "g.toml", "--jobs", "3"]) == 0
    out, _ = capsys.readouterr()
    estimate = [line for line in out.splitlines() if line.startswith("estimate:")]
    assert len(estimate) == 1 and estimate[0].startswith("estimate:       about ")
    assert "with 1 worker (of 3)" in estimate[0]  # 6 runs keep one worker busy
    assert "network-epochs/s per worker on xor, hidden 4, float64 (6 lanes x 50 epochs" in out


def test_plan_estimates_the_gpu_where_there_is_one(workdir, capsys, monkeypatch):
    """With a GPU, `sweep plan` times a launch of the GPU kernel as wide as a real one (here all 6 runs of
    the shape, in numba's CUDA simulator standing in for the GPU) and prints its estimate beside the CPU's;
    a failing launch is a note, never an error; without a GPU there is no such line."""
    from kernels.cuda import cuda_available

    import sweep.plan

    if not cuda_available()[0]:
        pytest.skip(f"no CUDA, not even the simulator: {cuda_available()[1]}")
    Path("g.toml").write_text(SMALL.replace("epochs = 50", "epochs = 3"))
    assert main(["plan", "g.toml"]) == 0
    assert "on the GPU:" not in capsys.readouterr().out  # the simulator is no GPU
    monkeypatch.setattr(sweep.plan, "gpu_present", lambda: True)
    assert main(["plan", "g.toml"]) == 0
    lines = capsys.readouterr().out.splitlines()
    gpu = lines.index(next(line for line in lines if line.startswith("on the GPU:")))
    assert lines[gpu].startswith("on the GPU:     about ") and "with --backend cuda (" in lines[gpu]
    assert "network-epochs/s in one launch on xor, hidden 4, float64 (6 lanes x 3 epochs" in lines[gpu + 1]

    def broken(*args, device="cpu", **kwargs):
        if device == "cuda":
            raise RuntimeError("out of memory")
        return calibrate(*args, **kwargs)

    calibrate = sweep.plan.calibrate
    monkeypatch.setattr(sweep.plan, "calibrate", broken)
    assert main(["plan", "g.toml"]) == 0
    out = capsys.readouterr().out
    assert "on the GPU:     unavailable (the timed GPU launch failed: RuntimeError: out of memory)" in out
    assert "estimate:       about " in out


def test_plan_of_the_example_grid(capsys):
    assert main(["plan", str(ROOT / "grid.toml"), "--no-estimate", "--rows", "0"]) == 0
    out, _ = capsys.readouterr()
    assert "runs:           4,200" in out and "first" not in out


@pytest.mark.parametrize("text, message", [
    ('name = "x"\n[grid]\nlr = [0.1, 0.2, -0.1]\n', "g.toml: grid.lr[2]: expected a number > 0, got -0.1"),
    ('name = "x"\n[grid]\nlearning_rate = [0.1]\n', "g.toml: unknown key 'learning_rate' in [grid] (did you mean 'lr'?)"),
    ('name = "x"\nlr = [\n', "g.toml:3:1: invalid TOML: "),
    ('name = "x"\nlr = 0.1\n[grid]\nlr = [0.2]\n', "g.toml: 'lr' is both fixed and a grid axis; keep one"),
    ('name = "x"\n[grid]\nseed = { range = [0, 30000] }\nlr = { logspace = [-3, 0, 1000] }\n',
     "g.toml: the grid expands to 30,000,000 runs, over the limit of 20,000,000 (max_runs); split it or raise "
     "max_runs"),
])
def test_bad_grid_is_one_line_on_stderr_exit_2_nothing_written(workdir, capsys, text, message):
    Path("g.toml").write_text(text)
    assert main(["plan", "g.toml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("sweep: error: " + message)
    assert listing(workdir) == ["g.toml"]


def test_missing_file(workdir, capsys):
    assert main(["plan", "nope.toml"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", "sweep: error: nope.toml: no such file\n")


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert "usage: sweep" in capsys.readouterr().err
    assert main(["plan"]) == 2
    assert capsys.readouterr().err == ("sweep plan: error: the following arguments are required: GRID "
                                       "(see sweep plan --help)\n")
    assert main(["plna", "g.toml"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'plna'" in err and err.count("\n") == 1
    assert main(["plan", "g.toml", "--rows", "-1"]) == 2
    err = capsys.readouterr().err
    assert "expected an integer >= 0" in err and err.count("\n") == 1


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"sweep {sweep.__version__}\n"
    assert main(["plan", "--help"]) == 0
    assert "--no-estimate" in capsys.readouterr().out


def test_keyboard_interrupt_is_exit_130_with_one_line(monkeypatch, capsys):
    import sweep.grid

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep.grid, "load_grid", interrupted)
    assert main(["plan", "g.toml"]) == 130
    out, err = capsys.readouterr()
    assert (out, err) == ("", "sweep: interrupted\n")


def test_a_failing_estimate_does_not_hide_the_plan(workdir, capsys, monkeypatch):
    import sweep.plan

    def broken(*args, **kwargs):
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(sweep.plan, "calibrate", broken)
    Path("g.toml").write_text(SMALL)
    assert main(["plan", "g.toml"]) == 0
    out, _ = capsys.readouterr()
    assert "estimate:       unavailable (the kernels cannot be imported: No module named 'numba')" in out


def run_module(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "sweep", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_python_dash_m_sweep_plan(tmp_path):
    ok = run_module("plan", str(ROOT / "grid.toml"), "--no-estimate", cwd=tmp_path)
    assert ok.returncode == 0 and "runs:           4,200" in ok.stdout and ok.stderr == ""
    (tmp_path / "bad.toml").write_text('name = "x"\nepochs = 0\n')
    bad = run_module("plan", "bad.toml", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "sweep: error: bad.toml: epochs: expected an integer in [1, 1_000_000_000], got 0\n"
    assert listing(tmp_path) == ["bad.toml"]


def test_importing_sweep_does_not_import_numba_or_pandas():
    code = ("import sys, sweep; print('numba' in sys.modules, 'pandas' in sys.modules, sweep.__version__); "
            "from sweep import expand, load_grid; import sweep.grid; "
            "print(load_grid is sweep.grid.load_grid, expand is sweep.grid.expand, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False", sweep.__version__, "True", "True", "False"]


def test_closed_stdout_pipe_stops_quietly(workdir, monkeypatch, capsys):
    import io

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise io.UnsupportedOperation("fileno")

    Path("g.toml").write_text(SMALL)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["plan", "g.toml", "--no-estimate"]) == 141
    assert capsys.readouterr().err == ""


def test_plan_tasks_shows_the_shards_of_sweep_slurm(workdir, capsys):
    Path("g.toml").write_text(SMALL.replace('epochs = 50', 'epochs = 50\nchunk_size = 1'))  # 6 chunks
    assert main(["plan", "g.toml", "--no-estimate", "--rows", "0", "--tasks", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index("shards (--tasks 4):")
    table = [line.split() for line in lines[at + 2:at + 6]]
    assert [row[0] for row in table] == ["1/4", "2/4", "3/4", "4/4"]
    assert sorted(int(row[1]) for row in table) == [1, 1, 2, 2] and sum(int(row[2]) for row in table) == 6
    assert sum(int(row[3].replace(",", "")) for row in table) == 300
    # the same partition that sweep run --shard uses
    from sweep.grid import expand, load_grid
    from sweep.plan import chunk_cost, plan_chunks
    from sweep.shard import chunks_of

    grid = load_grid("g.toml")
    chunks = plan_chunks(expand(grid), grid.chunk_size, grid.datasets)
    assert [len(chunks_of(chunks, i, 4, chunk_cost(grid.datasets))) for i in (1, 2, 3, 4)] == \
        [int(row[1]) for row in table]


def test_plan_tasks_with_an_estimate_suggests_a_time_limit(workdir, capsys):
    Path("g.toml").write_text(SMALL.replace('epochs = 50', 'epochs = 50\nchunk_size = 2'))  # 3 chunks
    assert main(["plan", "g.toml", "--rows", "0", "--tasks", "4", "--cpus-per-task", "2"]) == 0
    out = capsys.readouterr().out
    assert "shards (--tasks 4, 2 CPUs each):" in out
    assert "  1 shard has no chunk: use fewer tasks or a smaller chunk_size" in out
    assert "slowest shard about " in out and "for SLURM, --time 3 (minutes) leaves room" in out


def test_plan_lists_the_layers_rates_only_where_they_mean_something(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('name = "r"\nepochs = 5\n[grid]\nlr_hidden = [0.1, 1.0]\nlr_output = [0.1, 1.0]\n')
    assert main(["plan", str(grid), "--no-estimate"]) == 0
    out = capsys.readouterr().out
    assert "lr_hidden (2)" in out and "lr_output (2)" in out
    assert "lr=" not in out and "None" not in out
    grid.write_text('name = "r"\nepochs = 5\n')
    assert main(["plan", str(grid), "--no-estimate"]) == 0
    out = capsys.readouterr().out
    assert "lr=0.1" in out and "lr_hidden" not in out and "None" not in out
