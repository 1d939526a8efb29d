"""Progress: plain periodic lines off a terminal, nothing when quiet."""
import io

from sweep.progress import Progress


def test_plain_lines_when_not_a_terminal_with_rates_and_eta():
    out = io.StringIO()
    p = Progress(1000, 2_000_000, stream=out, interval=0.0)
    p.update(250, 500_000)
    p.update(750, 1_500_000)
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("sweep: 250/1,000 runs (25%)")
    assert "runs/s" in lines[0] and "net-epochs/s" in lines[0] and "ETA" in lines[0]
    assert lines[1].startswith("sweep: 1,000/1,000 runs (100%)") and lines[1].endswith("ETA 0:00")


def test_lines_are_spaced_by_the_interval_and_the_last_is_always_shown():
    out = io.StringIO()
    p = Progress(10, 10, stream=out, interval=3600)
    for _ in range(10):
        p.update(1, 1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweep: 10/10 runs (100%)")


def test_quiet_prints_nothing():
    out = io.StringIO()
    p = Progress(10, 10, stream=out, quiet=True)
    p.update(10, 10)
    p.close()
    assert out.getvalue() == "" and p.runs == 10


def test_resumed_sweep_counts_done_runs_but_rates_only_new_work():
    out = io.StringIO()
    p = Progress(100, 40, done_runs=60, stream=out, interval=0.0)
    assert p.runs == 60
    p.update(40, 40)
    line = out.getvalue().splitlines()[-1]
    assert line.startswith("sweep: 100/100 runs (100%)")
    runs_rate = float(line.split(", ")[1].split()[0])
    epochs_rate = float(line.split(", ")[2].split()[0])
    assert abs(runs_rate - epochs_rate) <= 1e-9 * epochs_rate  # 40 runs, 40 net-epochs: same rate, not 100/40
