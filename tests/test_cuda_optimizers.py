"""The CUDA kernel's optimizers, weight decay and minibatches against the CPU kernel (`kernels.batch.train`).

Same arguments on both, float64, the GPU-vs-CPU tolerances of tests/test_cuda.py. These run in numba's
CUDA simulator (tests/conftest.py), so the problems are tiny: three lanes, N = 5 or 7, H = 4, tens of
epochs. Each update scheme is a kernel of its own on the GPU; on the CPU every optimizer shares the general
kernel of an activation and its factors, so the cases below need two (sigmoid units, with and without
factors; compiled once, tens of seconds each, then loaded from Numba's cache).
"""
import functools

import numpy as np
import pytest

from kernels.batch import Variant
from kernels.cuda import cuda_available, train_cuda
from tests.test_cuda import assert_gpu_matches_cpu, family_problem, xor_mixed
from tests.test_kernel import EXACT, lanes, run_batch

AVAILABLE, WHY = cuda_available()
pytestmark = [pytest.mark.skipif(not AVAILABLE, reason=f"no CUDA: {WHY}"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning:kernels.cuda_kernel")]

run_gpu = functools.partial(run_batch, train_fn=train_cuda)
run_cpu = run_batch

RTOL = 1e-9  # float64, as tests/test_cuda.py's GPU-vs-CPU tests


def optimizer_lanes(hyper, optimizer):
    """The three lanes of `family_problem` with the optimizer's hyperparameters varying across lanes:
    weight decay on lanes 1 (biases too) and 2, none on lane 0; momentum only where the optimizer takes it."""
    momentum = optimizer in ("gd", "nesterov")
    return [dict(h, momentum=h["momentum"] if momentum else 0.0, beta1=b1, beta2=b2, opt_eps=eps, weight_decay=wd,
                 decay_biases=db, shuffle_seed=seed)
            for h, b1, b2, eps, wd, db, seed in zip(hyper, (0.9, 0.8, 0.95), (0.999, 0.9, 0.99), (1e-8, 1e-3, 1e-6),
                                                    (0.0, 0.05, 0.2), (False, True, False), (0, 7, 2**32 - 1))]


def compare(X, Y, nets, hyper, epochs, ck, **kw):
    with np.errstate(all="ignore"):
        g, wg = run_gpu(X, Y, nets, hyper, epochs, ck, np.float64, **kw)
        c, wc = run_cpu(X, Y, nets, hyper, epochs, ck, np.float64, **kw)
    assert_gpu_matches_cpu(g, wg, c, wc, RTOL)
    assert np.isfinite(g.final_loss).all() and (g.epochs_run == epochs).all()
    return g, wg


@pytest.mark.parametrize("optimizer", ["gd", "nesterov", "adam", "adamw", "rmsprop"])
def test_each_optimizer_at_full_batch_with_weight_decay(optimizer):
    """Every optimizer, one update per epoch, lanes with and without weight decay (one decaying its biases):
    the GPU's rows and weights are the CPU kernel's to rounding, and not those of plain gradient descent."""
    X, Y, nets, hyper = family_problem("sigmoid", seed=2, n_samples=5, hidden=4)
    hyper = optimizer_lanes(hyper, optimizer)
    g, wg = compare(X, Y, nets, hyper, 30, [0, 4, 30], optimizer=optimizer)
    with np.errstate(all="ignore"):
        plain, _ = run_gpu(X, Y, nets, [dict(h, weight_decay=0.0) for h in hyper], 30, [0, 4, 30], np.float64)
    assert np.all(g.final_loss[1:] != plain.final_loss[1:])  # weight decay
    if optimizer in ("gd", "nesterov"):  # lane 0: no momentum, no weight decay: gradient descent
        np.testing.assert_allclose(g.final_loss[0], plain.final_loss[0], rtol=1e-12)
    else:
        assert g.final_loss[0] != plain.final_loss[0]


def test_batch_size_1_in_dataset_order():
    """Online updates (a minibatch per sample, in dataset order), through the ntk parameterisation, Nesterov
    momentum on two lanes and weight decay on two."""
    X, Y, nets, hyper = family_problem("sigmoid", seed=3, n_samples=5, hidden=4)
    hyper = optimizer_lanes(hyper, "nesterov")
    compare(X, Y, nets, hyper, 20, [0, 3, 20], optimizer="nesterov", batch_size=1, scaling="ntk")


@pytest.mark.parametrize("case", [
    dict(optimizer="adam", reduction="mean"),
    dict(optimizer="rmsprop", output="identity", bias=False, scaling="mean-field"),
], ids=["adam-mean", "rmsprop-identity-mean-field-nobias"])
def test_batch_size_3_shuffled(case):
    """Minibatches of 3 of 7 samples (the last one of 1) in each lane's shuffled order of each epoch (its
    own seed): with the mean, each batch's delta is divided by that batch's size."""
    output = case.get("output", "sigmoid")
    X, Y, nets, hyper = family_problem(output, seed=4, n_samples=7, hidden=4)
    hyper = optimizer_lanes(hyper, case["optimizer"])
    g, wg = compare(X, Y, nets, hyper, 20, [0, 2, 20], batch_size=3, shuffle=True, **case)
    with np.errstate(all="ignore"):  # the order matters: without the shuffle the weights differ
        ordered, wo = run_gpu(X, Y, nets, hyper, 20, [0, 2, 20], np.float64, batch_size=3, **case)
    for j in range(len(nets)):
        assert not np.array_equal(wg[0][..., j], wo[0][..., j])


def test_defaults_are_the_notebooks_kernel():
    """The optimizer's arguments at their neutral values (gd, no weight decay, full batch; the other
    hyperparameters are then unused) run the very kernel of a call without them: the same rows, bit
    for bit, and no new kernel."""
    from kernels import cuda_kernel
    X, Y, nets, hyper = xor_mixed(6, seed=3)
    with np.errstate(all="ignore"):
        a, wa = run_gpu(X, Y, nets, hyper, 40, [0, 5, 40], np.float64)
        n_kernels = len(cuda_kernel._KERNELS)
        b, wb = run_gpu(X, Y, nets, [dict(h, beta1=0.5, beta2=0.7, opt_eps=0.1, weight_decay=0.0, decay_biases=True,
                                          shuffle_seed=9) for h in hyper], 40, [0, 5, 40], np.float64,
                        optimizer="gd", batch_size=0, shuffle=False)
    assert len(cuda_kernel._KERNELS) == n_kernels
    for k in EXACT + ["final_loss", "min_loss", "grad_norm", "outputs", "checkpoint_loss", "trainability"]:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    for p, q in zip(wa, wb):
        np.testing.assert_array_equal(p, q)


def test_kernel_cache_key_has_the_update_scheme():
    """Optimizer, batch size, shuffle and the weight-decay switch each make another kernel; a batch size
    of N or more is one batch of every sample: the same kernel."""
    from kernels.cuda_kernel import get_kernel
    X, Y = np.random.default_rng(6).uniform(0, 1, (5, 2)), np.zeros(5)
    key = functools.partial(get_kernel, X, Y, 3, np.float64, False, False)
    k = key(Variant())
    assert key(Variant(optimizer=0, batch_size=0, shuffle=False), with_decay=False) is k
    others = [key(Variant(optimizer=2)), key(Variant(optimizer=3)), key(Variant(batch_size=1)),
              key(Variant(batch_size=2)), key(Variant(batch_size=2, shuffle=True)), key(Variant(), with_decay=True)]
    assert len({id(o) for o in others + [k]}) == len(others) + 1
    assert key(Variant(batch_size=5)) is key(Variant(batch_size=64))


def test_arguments_are_validated_as_for_train():
    W1, b1, W2, b2 = lanes((np.ones((2, 3)), np.zeros(3), np.ones(3), 0.0))
    X, Y = np.zeros((4, 2)), np.zeros(4)
    for kw in (dict(optimizer="sgd"), dict(optimizer="adam", momentum=0.9), dict(shuffle=True),
               dict(batch_size=-1), dict(beta1=1.0), dict(weight_decay=-0.1), dict(shuffle_seed=-1)):
        with pytest.raises(ValueError) as gpu:
            train_cuda(X, Y, W1, b1, W2, b2, 3, lr=0.1, **kw)
        from kernels import train
        with pytest.raises(ValueError) as cpu:
            train(X, Y, W1, b1, W2, b2, 3, lr=0.1, **kw)
        assert str(gpu.value) == str(cpu.value)


@pytest.mark.parametrize("optimizer, batch_size", [("adamw", 2), ("nesterov", 0)])
def test_float32_optimizers_match_the_cpu_kernel(optimizer, batch_size):
    """float32 (the GPU's own float32 exp and fused multiply-adds against the CPU's): AdamW with weight decay
    on shuffled minibatches, and Nesterov at full batch, agree with the CPU kernel to the float32 tolerance of
    tests/test_cuda.py (2e-3) over 20 epochs (the standard parameterisation and the sum: the float32 CPU
    kernel that tests/test_kernel_optimizers.py compiles too)."""
    X, Y, nets, hyper = family_problem("sigmoid", seed=6, n_samples=5, hidden=4)
    hyper = optimizer_lanes(hyper, optimizer)
    kw = dict(optimizer=optimizer, batch_size=batch_size, shuffle=batch_size > 0)
    with np.errstate(all="ignore"):
        g, wg = run_gpu(X, Y, nets, hyper, 20, [0, 5, 20], np.float32, **kw)
        c, wc = run_cpu(X, Y, nets, hyper, 20, [0, 5, 20], np.float32, **kw)
    assert_gpu_matches_cpu(g, wg, c, wc, 2e-3)
    assert np.isfinite(g.final_loss).all()
