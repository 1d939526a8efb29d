"""sweep.shutdown.exit_now: the exit status, the exit handlers and the streams of a normal exit, without the
interpreter's teardown; a normal exit where a thread or a profiler still needs one."""
import subprocess
import sys

import pytest


def python(code, *args, cwd=None):
    return subprocess.run([sys.executable, *args, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_exit_status_handlers_and_unflushed_output_survive():
    done = python("import atexit, sys\n"
                  "from sweep.shutdown import exit_now\n"
                  "atexit.register(lambda: print('handler ran'))\n"
                  "sys.stdout.write('unflushed, ')\n"
                  "sys.stderr.write('to stderr')\n"
                  "exit_now(3)\n")
    assert done.returncode == 3
    assert done.stdout == "unflushed, handler ran\n"
    assert done.stderr == "to stderr"


def test_a_running_thread_is_waited_for():
    done = python("import threading, time\n"
                  "from sweep.shutdown import exit_now\n"
                  "def late():\n"
                  "    time.sleep(0.3)\n"
                  "    print('thread finished', flush=True)\n"
                  "threading.Thread(target=late).start()\n"
                  "exit_now(4)\n")
    assert done.returncode == 4
    assert done.stdout == "thread finished\n"


def test_a_profiler_still_writes_its_results(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(tmp_path / "prof.out"), "-m", "sweep",
                           "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "prof.out").stat().st_size > 0


@pytest.mark.parametrize("args, status", [(["--version"], 0), (["run", "no-such-grid.toml"], 2), ([], 2)])
def test_the_command_line_exits_with_its_status_and_says_everything(tmp_path, args, status):
    done = subprocess.run([sys.executable, "-m", "sweep", *args], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == status
    if status == 0:
        assert done.stdout.startswith("sweep ")
    else:
        assert done.stderr.strip(), "an error or the usage is printed"
        assert "Traceback" not in done.stderr
