"""`--backend dask` against a real distributed.LocalCluster: 2 worker processes over TCP on loopback."""
import os
import signal
import subprocess
import sys
import time

import pytest

from sweep.cli import main
from tests.test_runner import assert_same_rows, rows, write_grid

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install 'dask[distributed]')")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=":0") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        yield client


def test_dask_rows_equal_a_local_run(tmp_path, cluster, capsys):
    grid = write_grid(tmp_path, chunk=8)
    assert main(["run", str(grid), "--out", str(tmp_path / "dask"), "--backend", "dask",
                 "--scheduler", cluster.scheduler_address]) == 0
    err = capsys.readouterr().err
    assert f"Dask scheduler {cluster.scheduler_address}: 2 workers, 2 threads" in err
    assert "64 runs (64 trained now in 8 chunks)" in err
    assert main(["run", str(grid), "--out", str(tmp_path / "local"), "--quiet"]) == 0
    assert_same_rows(rows(tmp_path / "dask" / "t"), rows(tmp_path / "local" / "t"))
    # a re-run finds everything written
    assert main(["run", str(grid), "--out", str(tmp_path / "dask"), "--backend", "dask",
                 "--scheduler", cluster.scheduler_address]) == 0
    assert "resuming: 8 of 8 parts already written" in capsys.readouterr().err


def test_dask_shard_and_address_from_the_environment(tmp_path, cluster, monkeypatch):
    grid = write_grid(tmp_path, chunk=8)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
    import dask

    with dask.config.set({"scheduler-address": cluster.scheduler_address}):
        assert main(["run", str(grid), "--out", str(tmp_path), "--backend", "dask", "--shard", "1/2",
                     "--quiet"]) == 0
    assert len(list((tmp_path / "t").glob("part-*.parquet"))) == 4


def test_worker_killed_mid_sweep_the_sweep_still_completes_without_duplicates(tmp_path, cluster, client):
    # 48 chunks of 4 runs x 60,000 epochs: long enough to kill a worker while chunks are in flight.
    grid = write_grid(tmp_path, epochs=60_000, chunk=4, seeds=24)
    local = tmp_path / "local"
    assert main(["run", str(grid), "--out", str(local), "--quiet"]) == 0
    out = tmp_path / "dask"
    proc = subprocess.Popen([sys.executable, "-m", "sweep", "run", str(grid), "--out", str(out), "--backend",
                             "dask", "--scheduler", cluster.scheduler_address],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while len(list((out / "t").glob("part-*.parquet"))) < 2:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "no parts written"
        time.sleep(0.05)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    assert len(list((out / "t").glob("part-*.parquet"))) < 48  # killed mid-sweep
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert len(list((out / "t").glob("part-*.parquet"))) == 48 < len(output)
    assert "192 runs (192 trained now in 48 chunks)" in output
    assert_same_rows(rows(out / "t"), rows(local / "t"))
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_worker_deaths_beyond_allowed_failures_stop_with_an_error_and_a_rerun_completes(tmp_path):
    import dask

    grid = write_grid(tmp_path, epochs=60_000, chunk=4, seeds=24)
    out = tmp_path / "dask"
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address=":0") as cluster, \
            distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        cmd = [sys.executable, "-m", "sweep", "run", str(grid), "--out", str(out), "--backend", "dask",
               "--scheduler", cluster.scheduler_address]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while len(list((out / "t").glob("part-*.parquet"))) < 2:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no parts written"
            time.sleep(0.05)
        (victim,) = client.run(os.getpid).values()
        os.kill(victim, signal.SIGKILL)
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 2, output
        last = output.strip().splitlines()[-1]
        assert last.startswith("sweep: error: Dask workers died while training chunk ") and "to resume" in last
        written = len(list((out / "t").glob("part-*.parquet")))
        assert 2 <= written < 48
        client.wait_for_workers(1, timeout=60)
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert f"resuming: {written} of 48 parts already written" in rerun.stderr
    assert main(["run", str(grid), "--out", str(tmp_path / "local"), "--quiet"]) == 0
    assert_same_rows(rows(out / "t"), rows(tmp_path / "local" / "t"))


def test_unreachable_scheduler_is_one_line(tmp_path, capsys):
    import dask

    grid = write_grid(tmp_path)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert main(["run", str(grid), "--out", str(tmp_path), "--backend", "dask", "--scheduler",
                     "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9") and err.count("\n") == 1
    assert not (tmp_path / "t").exists()  # nothing written


def test_dask_without_an_address_says_how_to_give_one(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    grid = write_grid(tmp_path)
    assert main(["run", str(grid), "--out", str(tmp_path), "--backend", "dask"]) == 2
    assert "--backend dask needs the scheduler's address: --scheduler tcp://HOST:PORT" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_workers_with_other_versions_are_refused():
    from sweep.backends.dask import _check_workers, _worker_versions
    from sweep.errors import SweepError

    class FakeClient:
        def __init__(self, versions):
            self.versions = versions

        def run(self, func):
            return self.versions

    ours = _worker_versions()
    _check_workers(FakeClient({"tcp://a": ours, "tcp://b": ours}))
    with pytest.raises(SweepError, match=r"Dask worker tcp://b runs numba 0\.1 \(here "):
        _check_workers(FakeClient({"tcp://a": ours, "tcp://b": {**ours, "numba": "0.1"}}))
