"""The CUDA kernel (`kernels.cuda.train_cuda`) against the NumPy reference, the CPU kernels,
the seed notebooks and itself.

These run in numba's CUDA simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1 unless
it is already set): the kernel's own code, run in Python threads on the CPU, one per GPU
thread, calling the same `@njit` losses and rules as on a GPU. The simulator is slow, so
batches are small (a few lanes, at most a few hundred epochs, but the notebooks').
On a GPU machine, `NUMBA_ENABLE_CUDASIM=0 python -m pytest tests/test_cuda.py` runs the
same tests on the device; there exp is libdevice's and multiply-adds are fused, and the
tolerances below allow for that (they scale with each lane's own sensitivity to a
one-ulp change, as in tests/test_kernel.py).
"""
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from kernels import train
from kernels.cuda import cuda_available, simulated, train_cuda
from tests import notebooks as nb
from tests.test_kernel import (EXACT, STATS, check_early_stop, check_notebook_000, check_notebook_001, check_notebook_002, compare,
                               compare_float32, lane, lanes, problems, run_batch)

REPO = Path(__file__).resolve().parent.parent
AVAILABLE, WHY = cuda_available()
needs_cuda = pytest.mark.skipif(not AVAILABLE, reason=f"no CUDA: {WHY}")
ON_SIMULATOR = AVAILABLE and simulated()
# In the simulator the kernel's float arithmetic is NumPy scalars' in threads that np.errstate does not reach.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:kernels.cuda_kernel")


run_gpu = functools.partial(run_batch, train_fn=train_cuda)
run_cpu = run_batch


def xor_mixed(n=16, seed=0):
    """XOR nets with every hyperparameter varying across lanes; the last lane diverges."""
    rng = np.random.default_rng(seed)
    nets, hyper = [], []
    for j in range(n):
        scale = (0.5, 1.0, 2.0, 4.0)[j % 4]
        nets.append((rng.standard_normal((2, 4)) * scale, rng.standard_normal(4) * 0.1,
                     rng.standard_normal(4) * scale, 0.1 * rng.standard_normal()))
        hyper.append(dict(lr=(0.5, 1.0, 2.0)[j % 3], loss=("mse", "bce")[j % 2], bce_eps=1e-8,
                          momentum=(0.0, 0.0, 0.5, 0.9)[(j // 2) % 4],
                          criterion=("margin", "loss")[(j // 4) % 2], margin=0.4, tol=0.05,
                          early_stop=bool((j // 8) % 2)))
    nets[-1] = tuple(p * 1000.0 for p in nets[-1][:3]) + (0.0,)
    hyper[-1] = dict(hyper[-1], loss="bce", bce_eps=0.0)  # log(0) at once: diverged at state 0
    return nb.XOR_X, nb.XOR_Y, nets, hyper


# --- against the NumPy reference ------------------------------------------------------------

@needs_cuda
@settings(max_examples=15)
@given(problems(max_lanes=4))
def test_float64_matches_reference(problem):
    """Lane by lane against the float64 reference, as for the CPU kernel (`compare`): rtol 1e-8,
    or 4x the change that one-ulp probes (every exp, the initial weights, the order of the
    sums over samples) make in the reference, which measures how far each case's dynamics
    amplify rounding differences (exp here is libm's in the simulator, libdevice's on a GPU;
    the reference uses NumPy's); chaotic lanes only by their integer statistics."""
    with np.errstate(all="ignore"):
        r, w = run_gpu(*problem, np.float64)
        compare(r, w, *problem, rtol=1e-8, atol=1e-12)


@needs_cuda
@settings(max_examples=10)
@given(problems(max_lanes=4))
def test_float32_is_as_accurate_as_float32_numpy(problem):
    """float32 against the float64 reference within 10x the error of float32 NumPy (see
    `tests.test_kernel.test_float32_kernel_is_as_accurate_as_float32_numpy`)."""
    X, Y, nets, hyper, epochs, ck = problem
    hyper = [dict(h, early_stop=False, criterion="loss", tol=1e-12) for h in hyper]
    with np.errstate(all="ignore"):
        r, w = run_gpu(X, Y, nets, hyper, epochs, ck, np.float32)
        compare_float32(r, w, X, Y, nets, hyper, epochs, ck)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_other_shape_against_reference(dtype):
    """D=3, H=7, N=5 with real-valued inputs (no zeros to skip), every loss, criterion and momentum."""
    rng = np.random.default_rng(7)
    X = rng.uniform(-2, 2, (5, 3))
    Y = rng.uniform(0, 1, 5)
    nets = [(rng.standard_normal((3, 7)), rng.standard_normal(7), rng.standard_normal(7), 0.3) for _ in range(4)]
    hyper = [dict(lr=0.2, loss=loss, bce_eps=1e-8, momentum=mom, criterion=crit, margin=0.3, tol=0.02,
                  early_stop=False)
             for loss, mom, crit in (("mse", 0.0, "margin"), ("bce", 0.0, "loss"), ("mse", 0.9, "loss"),
                                     ("bce", 0.5, "margin"))]
    ck = [0, 3, 40, 80]
    if dtype == np.float64:
        r, w = run_gpu(X, Y, nets, hyper, 80, ck, dtype)
        compare(r, w, X, Y, nets, hyper, 80, ck, rtol=1e-8, atol=1e-12)
    else:
        hyper = [dict(h, criterion="loss", tol=1e-12) for h in hyper]
        r, w = run_gpu(X, Y, nets, hyper, 80, ck, dtype)
        compare_float32(r, w, X, Y, nets, hyper, 80, ck)
    assert r.outputs.shape == (5, 4) and r.checkpoint_loss.shape == (4, 4)


# --- against the CPU kernels ------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 2e-3)])
def test_matches_cpu_kernel_lane_by_lane(dtype, rtol):
    """A mixed batch (both losses and criteria, momentum, early stop, a diverging lane) on the
    GPU and on the CPU. Integer statistics and NaN positions agree exactly; continuous ones to
    rtol (weights relative to the largest of their array): the two differ only in their exp
    (and, on a GPU, fused multiply-adds), within an ulp or two per operation, which 300
    epochs amplify on these networks to ~1e-14 in float64 and ~2e-5 in float32 (measured in
    the simulator; the bounds leave a margin of 100 or more for the GPU's own roundings)."""
    X, Y, nets, hyper = xor_mixed()
    with np.errstate(all="ignore"):
        g, wg = run_gpu(X, Y, nets, hyper, 300, 6, dtype)
        c, wc = run_cpu(X, Y, nets, hyper, 300, 6, dtype)
    for k in EXACT:
        np.testing.assert_array_equal(getattr(g, k), getattr(c, k), err_msg=k)
    assert g.diverged[-1] and g.epochs_run[-1] == 0 and not g.diverged[:-1].any()
    assert g.converged.any() and not g.converged.all()
    np.testing.assert_array_equal(g.checkpoint_epochs, c.checkpoint_epochs)
    for k in STATS + ["outputs", "checkpoint_loss"]:
        np.testing.assert_allclose(getattr(g, k), getattr(c, k), rtol=rtol, atol=rtol * 1e-3, err_msg=k)
    for p, q in zip(wg, wc):
        assert p.dtype == dtype
        np.testing.assert_allclose(p[..., :-1], q[..., :-1], rtol=0, atol=rtol * np.abs(q[..., :-1]).max())


@needs_cuda
def test_lane_of_a_mixed_batch_equals_the_lane_alone():
    """Each lane's result depends on that lane only: bitwise in the simulator. On a GPU a lane
    alone may run a variant compiled without momentum or BCE code, whose fused multiply-adds
    could in principle be contracted differently: there 1e-12 relative."""
    X, Y, nets, hyper = xor_mixed(8, seed=1)
    with np.errstate(all="ignore"):
        batch, wb = run_gpu(X, Y, nets, hyper, 60, [0, 7, 60], np.float64)
        for j in range(len(nets)):
            alone, wa = run_gpu(X, Y, nets[j:j + 1], hyper[j:j + 1], 60, [0, 7, 60], np.float64)
            a, b = lane(batch, j), lane(alone, 0)
            for k in a:
                if ON_SIMULATOR or k in EXACT:
                    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
                else:
                    np.testing.assert_allclose(a[k], b[k], rtol=1e-12, err_msg=k)
            for p, q in zip(wb, wa):
                np.testing.assert_allclose(p[..., j], q[..., 0], rtol=0 if ON_SIMULATOR else 1e-12)


@needs_cuda
def test_threads_per_block_changes_nothing():
    X, Y, nets, hyper = xor_mixed(6, seed=2)
    results = []
    for tpb in (None, 1, 4):
        with np.errstate(all="ignore"):
            r, w = run_gpu(X, Y, nets, hyper, 40, 4, np.float64, threads_per_block=tpb)
        results.append((r, w))
    for r, w in results[1:]:
        for j in range(len(nets)):
            a, b = lane(results[0][0], j), lane(r, j)
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        for p, q in zip(results[0][1], w):
            np.testing.assert_array_equal(p, q)


# --- the notebooks' golden values ---------------------------------------------------------------

@needs_cuda
def test_notebook_002_on_gpu():
    check_notebook_002(train_cuda)


@needs_cuda
def test_notebook_001_on_gpu():
    check_notebook_001(train_cuda)


@needs_cuda
def test_notebook_000_both_runs_in_one_batch_on_gpu():
    check_notebook_000(train_cuda)


# --- behaviour ------------------------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_diverged_lane_stops_and_does_not_poison_others(dtype):
    """Divergence stops only that lane: BCE with eps 0 on saturated outputs (log 0) at state 0,
    and a learning rate so large that the weights overflow to inf a few states in (sigmoid
    nets saturate rather than diverge: it takes lr*gradient past the largest float)."""
    nets = [nb.legacy_normal(1, 1000.0), nb.legacy_normal(42), nb.legacy_normal(3), nb.legacy_normal(4)]
    W1, b1, W2, b2 = lanes(*nets, dtype=dtype)
    huge = 3e38 if dtype == np.float32 else 1e308
    kw = dict(lr=[0.1, 0.1, huge, 0.5], loss=["bce", "bce", "bce", "mse"],
              bce_eps=[0.0, 1e-8, 1e-8, 1e-8], momentum=[0.0, 0.0, 0.9, 0.0], checkpoints=[0, 1, 5, 200])
    with np.errstate(all="ignore"):
        r = train_cuda(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 200, **kw)
        c = train(nb.XOR_X, nb.XOR_Y, *lanes(*nets, dtype=dtype), 200, **kw)
    assert r.diverged.tolist() == [True, False, True, False]
    assert r.epochs_run[0] == 0 and 0 < r.epochs_run[2] < 200 and r.epochs_run[[1, 3]].tolist() == [200, 200]
    for k in EXACT:
        np.testing.assert_array_equal(getattr(r, k), getattr(c, k), err_msg=k)
    assert not np.isfinite(r.final_loss[[0, 2]]).any() and not r.converged[[0, 2]].any()
    assert np.isnan(r.checkpoint_loss[1:, 0]).all() and np.isnan(r.checkpoint_loss[-1, 2])
    assert np.all(np.isfinite(W1[..., [1, 3]])) and np.isfinite(r.final_loss[[1, 3]]).all()
    np.testing.assert_allclose(r.final_loss[[1, 3]], c.final_loss[[1, 3]], rtol=1e-3 if dtype == np.float32 else 1e-9)


@needs_cuda
def test_early_stop_reports_epochs_run_and_keeps_the_converged_state():
    early = check_early_stop(train_cuda, 8, 2.0, 600)
    cpu = check_early_stop(train, 8, 2.0, 600)
    np.testing.assert_array_equal(early.epochs_run, cpu.epochs_run)


@needs_cuda
def test_checkpoints_explicit_unsorted_repeated_and_not_reached():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(42), nb.legacy_normal(42))
    ck = [50, 0, 20, 20, 3]
    r = train_cuda(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 50, lr=0.1, checkpoints=ck, early_stop=[False, True],
                   criterion="loss", tol=0.26)
    c = train(nb.XOR_X, nb.XOR_Y, *lanes(nb.legacy_normal(42), nb.legacy_normal(42)), 50, lr=0.1,
              checkpoints=ck, early_stop=[False, True], criterion="loss", tol=0.26)
    np.testing.assert_array_equal(r.checkpoint_epochs, ck)
    assert r.checkpoint_loss[0, 0] == r.final_loss[0] and r.checkpoint_loss[2, 0] == r.checkpoint_loss[3, 0]
    assert 3 < r.epochs_run[1] < 20 and np.isnan(r.checkpoint_loss[[0, 2, 3], 1]).all()
    np.testing.assert_array_equal(np.isnan(r.checkpoint_loss), np.isnan(c.checkpoint_loss))
    np.testing.assert_allclose(r.checkpoint_loss, c.checkpoint_loss, rtol=1e-12)
    no_ck = train_cuda(nb.XOR_X, nb.XOR_Y, *lanes(nb.legacy_normal(42)), 0, lr=0.1, checkpoints=0)
    assert no_ck.checkpoint_loss.shape == (0, 1) and no_ck.epochs_run[0] == 0


@needs_cuda
def test_empty_batch():
    r = train_cuda(nb.XOR_X, nb.XOR_Y, np.zeros((2, 4, 0)), np.zeros((4, 0)), np.zeros((4, 0)), np.zeros(0), 10,
                   lr=0.1, checkpoints=3)
    assert r.final_loss.shape == (0,) and r.outputs.shape == (4, 0) and r.checkpoint_loss.shape == (3, 0)


# --- validation: identical to the CPU entry point, with or without a GPU ------------------------

def _bad_calls():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(0), nb.legacy_normal(1))
    ok = (nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10)
    readonly = W1.copy()
    readonly.flags.writeable = False
    return {
        "loss name": (ok, dict(lr=0.1, loss="hinge")),
        "loss code": (ok, dict(lr=0.1, loss=[0, 2])),
        "criterion": (ok, dict(lr=0.1, criterion="best")),
        "lr per lane": (ok, dict(lr=[0.1, 0.2, 0.3])),
        "checkpoints": (ok, dict(lr=0.1, checkpoints=[0, 99])),
        "epochs": ((*ok[:-1], -1), dict(lr=0.1)),
        "float16": ((nb.XOR_X, nb.XOR_Y, W1.astype(np.float16), b1, W2, b2, 10), dict(lr=0.1)),
        "fortran": ((nb.XOR_X, nb.XOR_Y, np.asfortranarray(W1), b1, W2, b2, 10), dict(lr=0.1)),
        "read-only": ((nb.XOR_X, nb.XOR_Y, readonly, b1, W2, b2, 10), dict(lr=0.1)),
        "mixed dtypes": ((nb.XOR_X, nb.XOR_Y, W1, b1.astype(np.float32), W2, b2, 10), dict(lr=0.1)),
        "b1 shape": ((nb.XOR_X, nb.XOR_Y, W1, b1[:3].copy(), W2, b2, 10), dict(lr=0.1)),
        "W1 ndim": ((nb.XOR_X, nb.XOR_Y, W1[..., 0].copy(), b1, W2, b2, 10), dict(lr=0.1)),
        "X shape": ((nb.XOR_X[:, :1], nb.XOR_Y, W1, b1, W2, b2, 10), dict(lr=0.1)),
        "targets": ((nb.XOR_X, nb.XOR_Y * 2, W1, b1, W2, b2, 10), dict(lr=0.1)),
        "inputs": ((np.where(nb.XOR_X == 1, np.nan, 0), nb.XOR_Y, W1, b1, W2, b2, 10), dict(lr=0.1)),
        "samples": ((np.zeros((65, 2)), np.zeros(65), W1, b1, W2, b2, 10), dict(lr=0.1)),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_validation_errors_are_those_of_train(case):
    """Arguments are checked by the same code (kernels.batch.prepare) before any GPU is looked
    for: same exception class and message on every machine."""
    args, kw = _bad_calls()[case]
    with pytest.raises((TypeError, ValueError)) as cpu:
        train(*args, **kw)
    with pytest.raises((TypeError, ValueError)) as gpu:
        train_cuda(*args, **kw)
    assert type(gpu.value) is type(cpu.value)
    assert str(gpu.value) == str(cpu.value)


def test_threads_per_block_is_checked():
    W1, b1, W2, b2 = lanes(nb.legacy_normal(0))
    with pytest.raises(ValueError, match="threads_per_block"):
        train_cuda(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10, lr=0.1, threads_per_block=2048)


# --- no GPU: a clear error ----------------------------------------------------------------------

_CALL = """
import sys
import numpy as np
from kernels.cuda import CudaUnavailableError, cuda_available, train_cuda
ok, why = cuda_available()
print("AVAILABLE" if ok else "UNAVAILABLE", why)
if ok:
    sys.exit(0)
W1, b1, W2, b2 = np.ones((2, 4, 3)), np.zeros((4, 3)), np.ones((4, 3)), np.zeros(3)
try:
    train_cuda(np.zeros((4, 2)), np.zeros(4), W1, b1, W2, b2, 10, lr=0.1)
except CudaUnavailableError as exc:
    print("RAISED", type(exc).__name__, isinstance(exc, RuntimeError), repr(str(exc)))
"""


def _python(code, env_changes):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(env_changes)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_no_gpu_raises_a_one_line_error():
    """Without the simulator (NUMBA_ENABLE_CUDASIM unset), on a machine without an NVIDIA driver
    or GPU, cuda_available() says why and train_cuda raises CudaUnavailableError saying the
    same in one line, instead of an error from deep inside numba at the first launch."""
    p = _python(_CALL, {})
    assert p.returncode == 0, p.stderr
    if p.stdout.startswith("AVAILABLE"):
        pytest.skip(f"a CUDA GPU is present: {p.stdout.strip()}")
    lines = p.stdout.splitlines()
    assert lines[0].startswith("UNAVAILABLE no usable CUDA GPU: "), p.stdout
    assert lines[1].startswith("RAISED CudaUnavailableError True 'cannot train on the GPU: no usable CUDA GPU: ")
    assert "\\n" not in lines[1] and len(lines) == 2
    assert "Traceback" not in p.stderr


def test_without_numba_cuda_the_error_says_how_to_install_it():
    p = _python("import sys; sys.modules['numba_cuda'] = None\n" + _CALL, {})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "UNAVAILABLE numba-cuda is not installed (pip install numba-cuda)", p.stdout
    assert lines[1] == ("RAISED CudaUnavailableError True 'cannot train on the GPU: numba-cuda is not installed "
                        "(pip install numba-cuda)'")


def test_simulator_is_reported():
    p = _python("from kernels.cuda import cuda_available; print(cuda_available())", {"NUMBA_ENABLE_CUDASIM": "1"})
    assert p.returncode == 0, p.stderr
    assert "(True, 'CUDA simulator" in p.stdout


# --- benchmarks/bench_gpu.py ----------------------------------------------------------------------

def test_bench_gpu_without_gpu_says_so_in_one_line():
    p = _python("import runpy, sys; sys.argv = ['bench_gpu.py', '--small']; "
                "sys.exit(runpy.run_path('benchmarks/bench_gpu.py', run_name='__main__'))", {})
    if p.returncode == 0:
        pytest.skip("a CUDA GPU is present")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("bench_gpu: no GPU to benchmark: ") and p.stderr.count("\n") == 1, p.stderr


@pytest.mark.slow
def test_bench_gpu_small_runs_on_the_simulator():
    """--small is the one run the simulator allows: a smoke test of the script, not a measurement."""
    p = _python("import runpy, sys; sys.argv = ['bench_gpu.py', '--small', '--repeats', '1']; "
                "sys.exit(runpy.run_path('benchmarks/bench_gpu.py', run_name='__main__'))",
                {"NUMBA_ENABLE_CUDASIM": "1"})
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.splitlines()[-1])
    assert {"gpu_f32", "gpu_f64", "cpu_f64", "cpu_f32", "gpu_f32_vs_cpu_f32", "gpu_f64_vs_cpu_f64"} <= set(out)
    assert out["simulator"] and out["max_final_mse_diff"]["f64_gpu_vs_cpu"] < 1e-12
    assert "host<->device copies included" in p.stdout
