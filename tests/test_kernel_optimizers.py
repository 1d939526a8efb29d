"""The kernels' optimizers, weight decay and minibatches (issue 17) against the NumPy reference, and themselves.

The reference (kernels/reference.py) is checked by hand and against torch.optim in
tests/test_reference_optimizers.py; here the general kernel (kernels/kernel.py) is held to it lane by lane with
the machinery of tests/test_kernel.py, in float64 and float32, and to itself: a lane's results do not depend
on its batch, and lanes of full-batch gradient descent without weight decay are bit for bit those of the
notebooks' kernel."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels import train
from kernels.optimizers import shuffle_into
from kernels.reference import shuffled_order
from kernels.vocab import OPTIMIZERS
from tests import notebooks as nb
from tests.test_kernel import (assert_lanes_are_those_trained_alone, compare, compare_float32, lane, lanes, problems,
                               run_batch)

ADAPTIVE = ("adam", "adamw", "rmsprop")


@st.composite
def optimizer_problems(draw, max_lanes=6, float32=False):
    """A problem of tests/test_kernel.py (sigmoid hidden units: each activation is one more kernel to compile,
    and the activations are tested there) with an optimizer and update scheme for the call and the
    optimizer's hyperparameters per lane."""
    X, Y, nets, hyper, epochs, ck = draw(problems(max_lanes=max_lanes))
    optimizer = draw(st.sampled_from(OPTIMIZERS))
    batch_size = draw(st.sampled_from([0, 0, 1, 2, 3]))
    call = dict(optimizer=optimizer, batch_size=batch_size, shuffle=batch_size > 0 and draw(st.booleans()),
                activation="sigmoid")
    if float32:  # one float32 kernel: the standard parameterisation, summed gradients
        call.update(scaling="standard", reduction="sum")
    epochs = min(epochs, 60)
    ck = ck[ck <= epochs]
    out = []
    for h in hyper:
        h = dict(h, **call, weight_decay=draw(st.sampled_from([0.0, 0.0, 0.01, 0.3])),
                 decay_biases=draw(st.booleans()), shuffle_seed=draw(st.integers(0, 2**32 - 1)))
        if optimizer in ADAPTIVE:  # steps of about lr each: rates of the size of the weights
            h = {k: v * 0.05 if k in ("lr", "lr_hidden", "lr_output") else v for k, v in h.items()}
            h.update(momentum=0.0, beta1=draw(st.sampled_from([0.9, 0.5])),
                     beta2=draw(st.sampled_from([0.999, 0.9])), opt_eps=draw(st.sampled_from([1e-8, 1e-3])))
        out.append(h)
    return X, Y, nets, out, epochs, ck


@settings(max_examples=60)
@given(optimizer_problems())
def test_float64_kernel_matches_reference(problem):
    """As tests/test_kernel.py's test of the same name: rtol 1e-8, or 4x the reference's own sensitivity
    to one-ulp changes (chaotic lanes left out)."""
    with np.errstate(all="ignore"):
        r, w = run_batch(*problem, np.float64)
        compare(r, w, *problem, rtol=1e-8, atol=1e-12)


@settings(max_examples=30)
@given(optimizer_problems(float32=True))
def test_float32_kernel_is_as_accurate_as_float32_numpy(problem):
    """As tests/test_kernel.py's test of the same name."""
    X, Y, nets, hyper, epochs, ck = problem
    hyper = [dict(h, early_stop=False, criterion="loss", tol=1e-12) for h in hyper]
    with np.errstate(all="ignore"):
        r, w = run_batch(X, Y, nets, hyper, epochs, ck, np.float32)
        compare_float32(r, w, X, Y, nets, hyper, epochs, ck)


@settings(max_examples=25)
@given(optimizer_problems(max_lanes=9), st.sampled_from([1, 3, 8]), st.sampled_from([1, 2]))
def test_lane_results_are_bitwise_independent_of_batch_tile_and_threads(problem, tile, threads):
    """Each lane of a call equals, bit for bit, the same lane trained alone: its optimizer state, its shuffle
    and its minibatches are its own, whatever the tile it shares and its place in it."""
    assert_lanes_are_those_trained_alone(problem, tile, threads)


@settings(max_examples=20)
@given(problems(max_lanes=6), st.sampled_from([np.float64, np.float32]))
def test_gradient_descent_lanes_of_the_general_kernel_are_those_of_the_notebooks_kernel(problem, dtype):
    """Weight decay on one more lane sends a call to the general kernel (kernels/optimizers.py's updates);
    the lanes without it get bit for bit what the notebooks' kernel gives them alone."""
    X, Y, nets, hyper, epochs, ck = problem
    hyper = [dict(h, activation="sigmoid", scaling="standard", reduction="sum", weight_decay=0.0) for h in hyper]
    decayed = dict(hyper[0], weight_decay=0.1)
    with np.errstate(all="ignore"):
        general, wg = run_batch(X, Y, nets + nets[:1], hyper + [decayed], epochs, ck, dtype)
        plain, wp = run_batch(X, Y, nets, hyper, epochs, ck, dtype)
    for j in range(len(nets)):
        a, b = lane(general, j), lane(plain, j)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        for p, q in zip(wg, wp):
            np.testing.assert_array_equal(p[..., j], q[..., j])
    if np.isfinite(general.final_loss[-1]) and general.epochs_run[-1] > 0 and np.any(wp[0][..., 0] != 0):
        assert not np.array_equal(wg[0][..., -1], wp[0][..., 0])  # the decayed lane did decay


@settings(max_examples=200)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**31), st.integers(1, 40))
def test_compiled_shuffle_is_the_reference_rule(seed, epoch, n):
    order = np.empty(n, np.int64)
    shuffle_into(order, np.uint64(seed), epoch)
    np.testing.assert_array_equal(order, shuffled_order(seed, epoch, n))


def test_online_updates_differ_from_full_batch_and_adam_solves_xor():
    """A sanity check of scale: on notebook 002's XOR net, online updates follow another path than the full
    batch, and Adam at lr 0.05 solves XOR in 1,000 epochs, as it is known to."""
    runs = {}
    for name, kw in (("full", {}), ("online", dict(batch_size=1)), ("adam", dict(optimizer="adam", lr=0.05))):
        W1, b1, W2, b2 = lanes(nb.legacy_normal(42))
        runs[name] = train(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 1000, **dict(dict(lr=0.5), **kw), checkpoints=0)
    assert runs["full"].final_loss[0] != runs["online"].final_loss[0]
    assert runs["adam"].converged[0] and runs["adam"].final_loss[0] < 0.01


@pytest.mark.parametrize("bad, message", [
    (dict(optimizer="sgd"), "optimizer must be one of gd, nesterov, adam, adamw, rmsprop; got 'sgd'"),
    (dict(optimizer="adam", momentum=0.9), "momentum is an argument of the optimizers 'gd' and 'nesterov'"),
    (dict(beta1=1.0), r"beta1 must be in \[0, 1\); got 1.0"),
    (dict(beta2=-0.1), r"beta2 must be in \[0, 1\)"),
    (dict(opt_eps=-1e-8), "opt_eps must be >= 0"),
    (dict(weight_decay=[0.1, -0.1]), "weight_decay must be >= 0; got -0.1"),
    (dict(weight_decay=np.inf), "weight_decay must be finite"),
    (dict(batch_size=-1), "batch_size must be 0"),
    (dict(batch_size=1.5), "batch_size must be 0"),
    (dict(shuffle=True), "shuffle=True needs batch_size >= 1"),
    (dict(batch_size=2, shuffle=True, shuffle_seed=-1), r"shuffle_seed must be integers in \[0, 2\*\*32\)"),
])
def test_bad_optimizer_arguments_raise_clear_errors(bad, message):
    W1, b1, W2, b2 = lanes(nb.legacy_normal(0), nb.legacy_normal(1))
    with pytest.raises(ValueError, match=message):
        train(nb.XOR_X, nb.XOR_Y, W1, b1, W2, b2, 10, **dict(dict(lr=0.1), **bad))
