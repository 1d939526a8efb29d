"""Start-up cost of a process that calls the kernels: first start (Numba cache
cleared) and second start (cache filled by the first).

    python benchmarks/startup.py [--keep-cache]

Each start is a fresh `python -c` process that imports `kernels` and trains
a tiny float64 batch (8 XOR networks, 10 epochs); its wall time is measured
from outside, and the process reports its own split (import / first train
call, the latter being compilation or cache loading). Before the first start
the kernel package's Numba cache files (`kernels/__pycache__/*.nbi`,
`*.nbc`) are deleted, so that start compiles; the second finds the cache the
first wrote. A baseline start that only imports numpy and numba shows what
no cache can remove, and the floors what no change to `sweep` can: a process
that calls one cached Numba function (Numba installs its CPU target's
registries on the first call, whatever the function), and one that also
imports pandas and pyarrow.parquet, as `sweep run` does. The last line
printed is a JSON object.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import time
t0 = time.perf_counter()
import json
import numpy as np
from kernels import train
t1 = time.perf_counter()
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
Y = np.array([0, 1, 1, 0], dtype=np.float64)
rng = np.random.default_rng(0)
L = 8
W1 = rng.standard_normal((2, 4, L)); b1 = np.zeros((4, L))
W2 = rng.standard_normal((4, L)); b2 = np.zeros(L)
train(X, Y, W1, b1, W2, b2, 10, lr=0.5, loss="mse", checkpoints=0, threads=1)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "train_s": t2 - t1}))
"""

BASELINE = "import numpy, numba"

# The least a process that runs a cached Numba function can take: Numba installs its CPU target's registries
# (and imports scipy.linalg) on the first call, whatever the function; `sweep run` also needs pandas and pyarrow.
# Each ends as `sweep` ends (sweep/shutdown.py): with os._exit, without the interpreter's teardown of those
# modules (0.1-0.15 s), which would otherwise be counted here and not there.
FLOOR_MODULE = """from numba import njit


@njit(cache=True)
def one(x):
    return x + 1
"""
_ENDS_AS_SWEEP = "; import os; os._exit(0)"
FLOORS = (
    ("python -c pass", "pass"),
    ("+ one cached Numba function", "import floor_module; floor_module.one(1)" + _ENDS_AS_SWEEP),
    ("+ pandas and pyarrow.parquet",
     "import pandas, pyarrow.parquet, floor_module; floor_module.one(1)" + _ENDS_AS_SWEEP),
)


def kernel_cache_dir():
    """`kernels/__pycache__` of the kernels package that a child would import."""
    spec = importlib.util.find_spec("kernels")
    if spec is None or spec.origin is None:
        raise RuntimeError("the `kernels` package is not importable")
    return Path(spec.origin).resolve().parent / "__pycache__"


def cache_files(cache_dir):
    if not cache_dir.is_dir():
        return []
    return sorted(p for p in cache_dir.iterdir() if p.suffix in (".nbi", ".nbc"))


def clear_kernel_cache(cache_dir):
    """Delete the kernel package's Numba cache files (only those); return how many."""
    files = cache_files(cache_dir)
    for p in files:
        p.unlink()
    return len(files)


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("NUMBA_CACHE_DIR", None)   # the cache under kernels/__pycache__ is the one measured
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def timed_start(code, python=sys.executable):
    """Run `python -c code` in a fresh process; (wall seconds, its JSON line or None)."""
    t0 = time.perf_counter()
    proc = subprocess.run([python, "-c", code], cwd=REPO_ROOT, env=_child_env(),
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child process failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    lines = proc.stdout.strip().splitlines()
    return wall, (json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None)


def measure_startup(clear_cache=True, python=sys.executable):
    """First and second start of a process that imports kernels and trains a tiny batch."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    cache_dir = kernel_cache_dir()
    removed = clear_kernel_cache(cache_dir) if clear_cache else 0
    baseline, _ = timed_start(BASELINE, python)
    first, first_split = timed_start(CHILD, python)
    written = len(cache_files(cache_dir))
    second, second_split = timed_start(CHILD, python)
    return {
        "startup_first_s": first,
        "startup_second_s": second,
        "startup_baseline_s": baseline,
        "startup_first_train_s": first_split["train_s"],
        "startup_second_train_s": second_split["train_s"],
        "startup_import_s": second_split["import_s"],
        "cache_cleared": bool(clear_cache),
        "cache_files_removed": removed,
        "cache_files_written": written,
        "cache_dir": str(cache_dir),
    }


def measure_floors(repeats=5, python=sys.executable):
    """{label: median wall seconds} of the FLOORS processes, each run `repeats` times after one that fills
    the Numba cache of the one-function module (in a temporary directory)."""
    import statistics
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "floor_module.py").write_text(FLOOR_MODULE)
        env = dict(os.environ, PYTHONPATH=tmp)
        env.pop("NUMBA_DISABLE_JIT", None)
        subprocess.run([python, "-c", FLOORS[1][1]], cwd=tmp, env=env, check=True)

        def wall(code):
            t0 = time.perf_counter()
            subprocess.run([python, "-c", code], cwd=tmp, env=env, check=True)
            return time.perf_counter() - t0

        return {label: statistics.median(wall(code) for _ in range(repeats)) for label, code in FLOORS}


def format_startup(r):
    how = (f"Numba cache cleared, {r['cache_files_removed']} files removed" if r["cache_cleared"]
           else "Numba cache kept")
    rows = [
        (f"first start  ({how})", r["startup_first_s"], r["startup_first_train_s"]),
        (f"second start (cache: {r['cache_files_written']} files after the first)", r["startup_second_s"],
         r["startup_second_train_s"]),
        ("baseline     (python -c 'import numpy, numba')", r["startup_baseline_s"], None),
    ]
    width = max(len(label) for label, _, _ in rows)
    lines = ["start-up (fresh `python -c`: import kernels, train 8 networks x 10 epochs, float64)"]
    for label, total, train in rows:
        extra = "" if train is None else f"   (first train call {train:.2f} s)"
        lines.append(f"  {label:<{width}} {total:6.2f} s{extra}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep-cache", action="store_true",
                    help="do not clear the kernel cache before the first start")
    args = ap.parse_args(argv)
    r = measure_startup(clear_cache=not args.keep_cache)
    print(format_startup(r))
    floors = measure_floors()
    print("floors (fresh processes, medians of 5):")
    for label, seconds in floors.items():
        print(f"  {label:32s} {seconds:6.2f} s")
    r["floors"] = floors
    print(json.dumps(r))


if __name__ == "__main__":
    main()
