"""The benchmark peers (benchmarks/peers.py) compute the notebooks' math:
notebook 002's golden losses, batched == one network at a time, and over the
model family batched == kernels.reference.train_reference; the optimizer peer
(Adam, momentum, RMSprop, minibatches) == the reference; the JAX peer == the
reference (skipped without jax)."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.peers import batched_mse, record_epochs, train_batched, train_batched_optimizer, train_loop

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0], dtype=float)

# Notebook 002: np.random.seed(42); W1 = randn(2, 4); W2 = randn(4, 1); zero
# biases; lr 0.1; 10000 epochs; "Epoch e, Loss: ..." printed every 1000.
NB002_LOSSES = [0.2832, 0.2452, 0.2124, 0.1503, 0.0572, 0.0209, 0.0107, 0.0067, 0.0047, 0.0035]
NB002_W1 = [[5.22722431, 0.98707488, 0.68186502, 6.01151874],
            [-3.16613113, -3.99951104, 2.91152228, 5.80878724]]
NB002_W2 = [-6.57254498, 4.63984181, -3.9456002, 8.04506769]
NB002_B1 = [1.24785544, 0.50324162, -2.14896976, -2.053226]
NB002_B2 = -1.53894177


def nb002_init():
    np.random.seed(42)
    W1 = np.random.randn(2, 4)
    W2 = np.random.randn(4, 1)
    return W1, np.zeros((1, 4)), W2, np.zeros((1, 1))


def to_lanes(nets):
    """Notebook-layout networks [(W1 (D,H), b1 (1,H), W2 (H,1), b2 (1,1))] -> kernel layout."""
    return (np.stack([n[0] for n in nets], axis=-1),
            np.stack([n[1].reshape(-1) for n in nets], axis=-1),
            np.stack([n[2].reshape(-1) for n in nets], axis=-1),
            np.array([float(n[3].reshape(-1)[0]) for n in nets]))


def random_nets(rng, n, n_inputs=2, hidden=4, scales=(0.5, 1.0, 3.0)):
    nets = []
    for i in range(n):
        s = scales[i % len(scales)]
        nets.append((rng.standard_normal((n_inputs, hidden)) * s, rng.standard_normal((1, hidden)) * s * 0.5,
                     rng.standard_normal((hidden, 1)) * s, rng.standard_normal((1, 1)) * s * 0.5))
    return nets


def test_loop_reproduces_notebook_002():
    W1, b1, W2, b2 = nb002_init()
    W1o, b1o, W2o, b2o, losses = train_loop(XOR_X, XOR_Y.reshape(-1, 1), W1, b1, W2, b2, 0.1, 10000,
                                            record_every=1000)
    assert np.round(losses, 4).tolist() == NB002_LOSSES
    assert W1o is W1 and b1o is b1 and W2o is W2 and b2o is b2      # updated in place
    np.testing.assert_allclose(W1, NB002_W1, atol=1e-7)
    np.testing.assert_allclose(W2[:, 0], NB002_W2, atol=1e-7)
    np.testing.assert_allclose(b1[0], NB002_B1, atol=1e-7)
    np.testing.assert_allclose(b2[0, 0], NB002_B2, atol=1e-7)


def test_batched_reproduces_notebook_002():
    W1, b1, W2, b2 = to_lanes([nb002_init()])
    *_, losses = train_batched(XOR_X, XOR_Y, W1, b1, W2, b2, 0.1, 10000, record_every=1000)
    assert losses.shape == (10, 1)
    assert np.round(losses[:, 0], 4).tolist() == NB002_LOSSES
    np.testing.assert_allclose(W1[:, :, 0], NB002_W1, atol=1e-7)
    np.testing.assert_allclose(W2[:, 0], NB002_W2, atol=1e-7)
    np.testing.assert_allclose(b1[:, 0], NB002_B1, atol=1e-7)
    np.testing.assert_allclose(b2[0], NB002_B2, atol=1e-7)


def assert_batched_equals_loop(X, Y, nets, lr, epochs, record_every, block=None, rtol=1e-12):
    lanes = [p.copy() for p in to_lanes(nets)]
    kw = {} if block is None else {"block": block}
    *_, losses_b = train_batched(X, Y, *lanes, lr, epochs, record_every=record_every, **kw)
    for i, net in enumerate(nets):
        W1, b1, W2, b2 = (p.copy() for p in net)
        *_, losses = train_loop(X, Y, W1, b1, W2, b2, lr, epochs, record_every=record_every)
        # relative to each parameter array's size (biases start near 0)
        for got, want in ((lanes[0][:, :, i], W1), (lanes[1][:, i], b1[0]), (lanes[2][:, i], W2[:, 0]),
                          (lanes[3][i], b2[0, 0])):
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.max(np.abs(want))))
        np.testing.assert_allclose(losses_b[:, i], losses, rtol=rtol, atol=1e-15)


def test_batched_equals_loop_one_at_a_time():
    rng = np.random.default_rng(1)
    nets = random_nets(rng, 12)
    assert_batched_equals_loop(XOR_X, XOR_Y, nets, 0.5, 400, record_every=50)


def test_blocks_and_threads_do_not_change_the_result():
    rng = np.random.default_rng(2)
    lanes = to_lanes(random_nets(rng, 10))
    a = [p.copy() for p in lanes]
    b = [p.copy() for p in lanes]
    *_, la = train_batched(XOR_X, XOR_Y, *a, 0.5, 200, record_every=20)
    *_, lb = train_batched(XOR_X, XOR_Y, *b, 0.5, 200, record_every=20, block=3)
    c = [p.copy() for p in lanes]
    *_, lc = train_batched(XOR_X, XOR_Y, *c, 0.5, 200, record_every=20, threads=3)
    for p, q, r in zip(a + [la], b + [lb], c + [lc]):
        np.testing.assert_allclose(p, q, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(p, r, rtol=1e-13, atol=1e-15)


@settings(max_examples=15)
@given(n_samples=st.integers(1, 5), n_inputs=st.integers(1, 3), hidden=st.integers(1, 5),
       n_nets=st.integers(1, 5), seed=st.integers(0, 2**32 - 1), lr=st.sampled_from([0.05, 0.5, 2.0]))
def test_batched_equals_loop_other_shapes(n_samples, n_inputs, hidden, n_nets, seed, lr):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(n_samples, n_inputs)).astype(float)
    Y = rng.random(n_samples)
    nets = random_nets(rng, n_nets, n_inputs, hidden)
    assert_batched_equals_loop(X, Y, nets, lr, 60, record_every=7)


def test_record_epochs_and_shapes():
    assert record_epochs(10000, 1000).tolist() == list(range(0, 10000, 1000))
    assert record_epochs(10, None).size == 0
    with pytest.raises(ValueError):
        record_epochs(10, 0)
    lanes = [p.copy() for p in to_lanes(random_nets(np.random.default_rng(3), 3))]
    *_, losses = train_batched(XOR_X, XOR_Y, *lanes, 0.5, 5)
    assert losses.shape == (0, 3)
    # the loop accepts the 1-D forms of Y, b1, W2, b2 and updates them in place
    W1, b1, W2, b2 = (p.copy() for p in random_nets(np.random.default_rng(3), 1)[0])
    b1v, W2v, b2v = b1.reshape(-1).copy(), W2.reshape(-1).copy(), b2.reshape(-1).copy()
    train_loop(XOR_X, XOR_Y, W1.copy(), b1v, W2v, b2v, 0.5, 5)
    W1c = W1.copy()
    train_loop(XOR_X, XOR_Y.reshape(-1, 1), W1c, b1, W2, b2, 0.5, 5)
    np.testing.assert_array_equal(b1v, b1[0])
    np.testing.assert_array_equal(W2v, W2[:, 0])
    np.testing.assert_array_equal(b2v, b2[0])


# Variants of the model family: (activation, output, bias, scaling, reduction, lr_hidden, lr_output).
FAMILY_VARIANTS = [
    ("sigmoid", "sigmoid", True, "standard", "sum", 0.5, 0.5),       # the default network
    ("tanh", "identity", True, "standard", "mean", 0.05, 0.05),      # the benchmark's regression workloads
    ("tanh", "identity", True, "ntk", "mean", 0.05, 0.05),
    ("relu", "identity", False, "standard", "sum", 0.02, 0.01),
    ("identity", "sigmoid", True, "mean-field", "mean", 0.3, 0.1),
    ("sigmoid", "identity", False, "ntk", "sum", 0.1, 0.2),
    ("tanh", "sigmoid", True, "mean-field", "sum", 0.2, None),       # lr_output per lane
]


def family_case(variant, dtype=np.float64, seed=7, n_samples=9, n_inputs=3, hidden=5, n_nets=4):
    activation, output, bias, scaling, reduction, lr_hidden, lr_output = variant
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_inputs))
    Y = rng.random(n_samples) if output == "sigmoid" else rng.standard_normal(n_samples)
    if lr_output is None:
        lr_output = np.linspace(0.05, 0.2, n_nets)
    params = (rng.standard_normal((n_inputs, hidden, n_nets)) * 0.8, rng.standard_normal((hidden, n_nets)) * 0.3,
              rng.standard_normal((hidden, n_nets)) * 0.8, rng.standard_normal(n_nets) * 0.3)
    family = dict(activation=activation, output=output, bias=bias, scaling=scaling, reduction=reduction)
    return X, Y, tuple(p.astype(dtype) for p in params), lr_hidden, lr_output, family


@pytest.mark.parametrize("variant", FAMILY_VARIANTS, ids=lambda v: "-".join(map(str, v[:5])))
def test_batched_trains_the_family_like_the_reference(variant):
    """Final losses, recorded losses and final weights of train_batched agree with
    kernels.reference.train_reference (one network at a time) to ~1e-9 relative over 50 epochs."""
    from kernels.reference import train_reference
    X, Y, params, lr_hidden, lr_output, family = family_case(variant)
    epochs, every = 50, 10
    lanes = [p.copy() for p in params]
    if not family["bias"]:
        lanes[1] = lanes[3] = None                   # ignored without biases
    *_, losses = train_batched(X, Y, *lanes, None, epochs, record_every=every, lr_hidden=lr_hidden,
                               lr_output=lr_output, **family)
    final = batched_mse(X, Y, *lanes, **{k: v for k, v in family.items() if k != "reduction"})
    assert np.all(np.isfinite(final)) and np.all(np.isfinite(losses))
    W1, b1, W2, b2 = params
    for i in range(W1.shape[-1]):
        ref = train_reference(X, Y, W1[:, :, i], b1[:, i], W2[:, i], b2[i], epochs, lr_hidden=lr_hidden,
                              lr_output=np.broadcast_to(lr_output, W1.shape[-1:])[i],
                              checkpoints=range(0, epochs, every), **family)
        assert ref["epochs_run"] == epochs and not ref["diverged"]
        np.testing.assert_allclose(final[i], ref["final_loss"], rtol=1e-9)
        np.testing.assert_allclose(losses[:, i], ref["checkpoint_loss"], rtol=1e-9)
        np.testing.assert_allclose(lanes[0][:, :, i], ref["W1"], rtol=1e-9, atol=1e-9 * np.max(np.abs(ref["W1"])))
        np.testing.assert_allclose(lanes[2][:, i], ref["W2"], rtol=1e-9, atol=1e-9 * np.max(np.abs(ref["W2"])))
        if family["bias"]:
            np.testing.assert_allclose(lanes[1][:, i], ref["b1"], rtol=1e-9, atol=1e-9 * np.max(np.abs(ref["b1"])))
            np.testing.assert_allclose(lanes[3][i], ref["b2"], rtol=1e-9, atol=1e-9)
        # the loss train_batched records is the MSE of the network before that epoch's update
        assert ref["final_loss"] == pytest.approx(ref["final_mse"])


@pytest.mark.parametrize("variant", FAMILY_VARIANTS[1:4], ids=lambda v: "-".join(map(str, v[:5])))
def test_batched_family_in_float32(variant):
    """float32 trains in float32 and stays close to the float64 reference."""
    from kernels.reference import train_reference
    X, Y, params, lr_hidden, lr_output, family = family_case(variant, dtype=np.float32)
    lanes = [p.copy() for p in params]
    train_batched(X, Y, *lanes, None, 50, lr_hidden=lr_hidden, lr_output=lr_output, **family)
    assert all(p.dtype == np.float32 for p in lanes)
    final = batched_mse(X, Y, *lanes, **{k: v for k, v in family.items() if k != "reduction"})
    W1, b1, W2, b2 = (p.astype(np.float64) for p in params)
    for i in range(W1.shape[-1]):
        ref = train_reference(X, Y, W1[:, :, i], b1[:, i], W2[:, i], b2[i], 50, lr_hidden=lr_hidden,
                              lr_output=lr_output, **family)
        np.testing.assert_allclose(final[i], ref["final_loss"], rtol=1e-4)


def test_batched_family_blocks_threads_and_per_lane_rates():
    """Blocks and threads change nothing (but roundings); a per-lane rate equals that lane trained with the scalar;
    without biases b1 and b2 are not touched; the default family is the old call."""
    X, Y, params, _, _, family = family_case(FAMILY_VARIANTS[2], n_nets=6)
    rates = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    a = [p.copy() for p in params]
    *_, la = train_batched(X, Y, *a, rates, 40, record_every=5, **family)
    b = [p.copy() for p in params]
    *_, lb = train_batched(X, Y, *b, rates, 40, record_every=5, block=4, threads=2, **family)
    for p, q in zip(a + [la], b + [lb]):
        np.testing.assert_allclose(p, q, rtol=1e-13, atol=1e-15)
    c = [p[..., 2:3].copy() for p in params]
    *_, lc = train_batched(X, Y, *c, 0.03, 40, record_every=5, **family)
    np.testing.assert_allclose(lc[:, 0], la[:, 2], rtol=1e-13)          # sums over other lane counts round
    np.testing.assert_allclose(c[0][..., 0], a[0][..., 2], rtol=1e-13)  # differently, by an ulp or so
    nb = dict(family, bias=False)
    d = [p.copy() for p in params]
    train_batched(X, Y, *d, 0.03, 10, **nb)
    np.testing.assert_array_equal(d[1], params[1])
    np.testing.assert_array_equal(d[3], params[3])
    # the default family spelled out is today's call, to the bit
    lanes = to_lanes(random_nets(np.random.default_rng(4), 5))
    e, f = [p.copy() for p in lanes], [p.copy() for p in lanes]
    *_, le = train_batched(XOR_X, XOR_Y, *e, 0.5, 100, record_every=10)
    *_, lf = train_batched(XOR_X, XOR_Y, *f, None, 100, record_every=10, lr_hidden=0.5, lr_output=0.5,
                           activation="sigmoid", output="sigmoid", bias=True, scaling="standard", reduction="sum")
    for p, q in zip(e + [le], f + [lf]):
        np.testing.assert_array_equal(p, q)


def test_batched_family_rejects_bad_arguments():
    lanes = [p.copy() for p in to_lanes(random_nets(np.random.default_rng(3), 2))]
    for bad in (dict(activation="softplus"), dict(output="tanh"), dict(scaling="xavier"), dict(reduction="max"),
                dict(bias=1)):
        with pytest.raises(ValueError):
            train_batched(XOR_X, XOR_Y, *lanes, 0.5, 1, **bad)
    with pytest.raises(TypeError):
        train_batched(XOR_X, XOR_Y, *lanes, None, 1, lr_hidden=0.5)
    with pytest.raises(ValueError):
        train_batched(XOR_X, XOR_Y, *lanes, [0.1, 0.2, 0.3], 1)


# --------------------------------------------------------------------------
# The optimizer peer (issue 17): Adam, momentum, RMSprop, minibatches, against the reference.
# --------------------------------------------------------------------------

def assert_lanes_match_reference(X, Y, params, trained, epochs, family, rtol=1e-10, **run):
    """Each lane of `trained` (kernel layout) equals train_reference from `params` to rtol of each array's size."""
    from kernels.reference import train_reference
    W1, b1, W2, b2 = params
    moved = 0.0
    for i in range(W1.shape[-1]):
        ref = train_reference(X, Y, W1[:, :, i], b1[:, i], W2[:, i], b2[i], epochs, **family, **run)
        assert not ref["diverged"]
        pairs = [(trained[0][:, :, i], ref["W1"]), (trained[2][:, i], ref["W2"])]
        if family["bias"]:
            pairs += [(trained[1][:, i], ref["b1"]), (trained[3][i], ref["b2"])]
        for got, want in pairs:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.max(np.abs(want)))
        moved = max(moved, float(np.max(np.abs(ref["W1"] - W1[:, :, i]))))
    assert moved > 1e-3                                               # the networks did train


@pytest.mark.parametrize("variant", FAMILY_VARIANTS[:2], ids=lambda v: "-".join(map(str, v[:5])))
@pytest.mark.parametrize("batch_size", [0, 1, 3])
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_optimizer_peer_agrees_with_the_reference(optimizer, batch_size, variant):
    """gd and Adam, full batch, online and batches of 3 of 9 samples (the last one full, or smaller: 9 = 3 x 3 and
    9 = 2 x 4 + 1): final weights of train_batched_optimizer == train_reference to 1e-10 over 40 epochs."""
    X, Y, params, lr, _, family = family_case(variant)
    lr = 0.05 if optimizer == "adam" else lr
    trained = [p.copy() for p in params]
    out = train_batched_optimizer(X, Y, *trained, lr, 40, optimizer=optimizer, batch_size=batch_size, **family)
    assert all(o is p for o, p in zip(out, trained))                # updated in place
    assert_lanes_match_reference(X, Y, params, trained, 40, family, lr=lr, optimizer=optimizer, batch_size=batch_size)


@pytest.mark.parametrize("variant", FAMILY_VARIANTS[2:6], ids=lambda v: "-".join(map(str, v[:5])))
@pytest.mark.parametrize("optimizer, momentum, batch_size", [("gd", 0.9, 4), ("nesterov", 0.8, 0), ("adam", 0.0, 2),
                                                             ("rmsprop", 0.0, 5)])
def test_optimizer_peer_family_and_the_other_optimizers(variant, optimizer, momentum, batch_size):
    """The rest of the model family (ReLU, identity units, no biases, ntk and mean-field scalings) with heavy ball,
    Nesterov, Adam and RMSprop (other betas and eps too): == the reference to 1e-10; b1, b2 untouched without biases."""
    X, Y, params, lr, _, family = family_case(variant, seed=11)
    hyper = dict(beta1=0.8, beta2=0.99, opt_eps=1e-6) if optimizer in ("adam", "rmsprop") else dict(momentum=momentum)
    lr = 0.02 if optimizer in ("adam", "rmsprop") else lr * 0.5
    trained = [p.copy() for p in params]
    train_batched_optimizer(X, Y, *trained, lr, 30, optimizer=optimizer, batch_size=batch_size, **hyper, **family)
    assert_lanes_match_reference(X, Y, params, trained, 30, family, lr=lr, optimizer=optimizer,
                                 batch_size=batch_size, **hyper)
    if not family["bias"]:
        np.testing.assert_array_equal(trained[1], params[1])
        np.testing.assert_array_equal(trained[3], params[3])


def test_optimizer_peer_float32_blocks_and_train_batched():
    """Full-batch gd is train_batched's training (final MSE to 1e-12); blocks change nothing but roundings;
    float32 trains in float32 and stays near the float64 run."""
    X, Y, params, lr, _, family = family_case(FAMILY_VARIANTS[1], n_nets=6)
    a, b = [p.copy() for p in params], [p.copy() for p in params]
    train_batched_optimizer(X, Y, *a, lr, 50, **family)
    train_batched(X, Y, *b, lr, 50, **family)
    fam = {k: v for k, v in family.items() if k != "reduction"}
    np.testing.assert_allclose(batched_mse(X, Y, *a, **fam), batched_mse(X, Y, *b, **fam), rtol=1e-12)
    c, d = [p.copy() for p in params], [p.copy() for p in params]
    train_batched_optimizer(X, Y, *c, 0.05, 30, optimizer="adam", batch_size=4, **family)
    train_batched_optimizer(X, Y, *d, 0.05, 30, optimizer="adam", batch_size=4, block=4, **family)
    for p, q in zip(c, d):
        np.testing.assert_allclose(p, q, rtol=1e-13, atol=1e-15)
    e = [p.astype(np.float32) for p in params]
    train_batched_optimizer(X, Y, *e, 0.05, 30, optimizer="adam", batch_size=4, **family)
    assert all(p.dtype == np.float32 for p in e)
    np.testing.assert_allclose(batched_mse(X, Y, *e, **fam), batched_mse(X, Y, *c, **fam), rtol=1e-4)


def test_optimizer_peer_rejects_bad_arguments():
    lanes = [p.copy() for p in to_lanes(random_nets(np.random.default_rng(3), 2))]
    for bad in (dict(optimizer="sgd"), dict(optimizer="adamw"), dict(batch_size=-1), dict(batch_size=1.5),
                dict(optimizer="adam", momentum=0.9), dict(beta1=1.0), dict(beta2=-0.1), dict(opt_eps=-1.0),
                dict(activation="softplus"), dict(reduction="max"), dict(bias=1)):
        with pytest.raises(ValueError):
            train_batched_optimizer(XOR_X, XOR_Y, *lanes, 0.5, 1, **bad)
    with pytest.raises(ValueError):
        train_batched_optimizer(XOR_X, XOR_Y, *lanes, [0.1, 0.2], 1)            # one lr for all lanes
    with pytest.raises(ValueError):
        train_batched_optimizer(XOR_X, XOR_Y, lanes[0], lanes[1][:, :1], *lanes[2:], 0.5, 1)
    with pytest.raises(ValueError):
        train_batched_optimizer(XOR_X[:, :1], XOR_Y, *lanes, 0.5, 1)


@pytest.mark.slow
def test_bench_optimizers_smoke(capsys):
    """benchmarks/bench_optimizers.py on a few epochs: every mode of both workloads has positive rates, kernel and
    peer trained the same networks."""
    pytest.importorskip("kernels")
    from benchmarks.bench_optimizers import MODES, main
    main(["--epochs-scale", "0.01", "--repeats", "1", "--before", "none"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(out["workloads"]) == ["xor", "gaussian"]
    assert out["before"] is None
    for res in out["workloads"].values():
        assert list(res["modes"]) == list(MODES)
        for mode, m in res["modes"].items():
            assert all(m[k] > 0 for k in ("kernel_1t", "peer"))
            assert m["all_finite"]
            assert m["max_rel_final_mse_diff_kernel_vs_peer"] < 1e-10
            assert m[f"kernel_{out['threads']}t_vs_gd_full"] > 0

@pytest.mark.slow
def test_bench_script_smoke(capsys):
    pytest.importorskip("kernels")
    from benchmarks.bench_kernels import main
    main(["--epochs", "20", "--networks", "64", "--loop-networks", "2", "--repeats", "1", "--no-startup",
          "--shape-scale", "0.02", "--tile-sweep"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    out = json.loads(last)
    assert list(out)[:4] == ["loop", "batched", "kernel_f64", "kernel_f32"]
    assert all(out[k] > 0 for k in ("loop", "batched", "kernel_f64", "kernel_f32"))
    assert out["max_final_mse_diff"]["loop_vs_batched"] < 1e-12
    assert out["max_final_mse_diff"]["kernel_f64_vs_batched"] < 1e-12
    # the shapes: the kernel and the generalised peer train the same networks
    assert list(out["shapes"]) == ["xor", "gaussian", "teacher"]
    for shape in out["shapes"].values():
        assert all(shape[k] > 0 for k in ("kernel_f64", "peer_f64", "kernel_f32", "peer_f32"))
        assert shape["all_finite"]
        assert shape["max_rel_final_mse_diff"]["kernel_f64_vs_peer_f64"] < 1e-12
        assert shape["max_rel_final_mse_diff"]["kernel_f32_vs_peer_f64"] < 1e-4
    assert out["shapes"]["gaussian"]["flops_per_network_epoch"] == 4 * 272 * 16 * 16 + 8 * 272 * 16 + 272
    for by_dtype in out["tile_sweep"].values():
        for sweep in by_dtype.values():
            assert sweep["bitwise_same_across_tiles"]
            assert str(sweep["default_tile"]) in sweep["rates"]


def test_flops_per_network_epoch():
    from benchmarks.bench_kernels import flops_per_network_epoch
    assert flops_per_network_epoch(4, 2, 4) == 260
    assert flops_per_network_epoch(64, 8, 64) == 163_904
    assert flops_per_network_epoch(272, 16, 16) == 313_616


# --------------------------------------------------------------------------
# The JAX peer (issue 15): jit(vmap(train)) with lax.scan, against the reference.
# --------------------------------------------------------------------------

JAX_REASON = "jax is not installed (the benchmark peer of the `bench` extra: pip install -e .[bench])"


def jax_case(n_nets=6, seed=5):
    """XOR and a few networks of different scales, kernel layout (biases not zero, so they are tested)."""
    return (XOR_X, XOR_Y) + to_lanes(random_nets(np.random.default_rng(seed), n_nets))


@pytest.mark.parametrize("form", ["sums", "matmul"])
def test_jax_float64_agrees_with_the_reference(form):
    """Final weights to 1e-10 relative (of each array's size) and final loss to 1e-10 after 400 epochs, in both
    forms of the forward pass; a wrong delta (a factor 2, a 1/N) would move them by far more."""
    pytest.importorskip("jax", reason=JAX_REASON)
    from benchmarks.peers import train_jax
    from kernels.reference import train_reference
    X, Y, W1, b1, W2, b2 = jax_case()
    epochs, lr = 400, 0.5
    params = [p.copy() for p in (W1, b1, W2, b2)]
    out = train_jax(X, Y, W1, b1, W2, b2, epochs, lr, np.float64, form)
    for p, q in zip(params, (W1, b1, W2, b2)):
        np.testing.assert_array_equal(p, q)                       # inputs are not changed
    assert all(o.dtype == np.float64 for o in out)
    assert out[0].shape == W1.shape and out[1].shape == b1.shape and out[4].shape == (W1.shape[-1],)
    moved = 0.0
    for i in range(W1.shape[-1]):
        ref = train_reference(X, Y, W1[:, :, i], b1[:, i], W2[:, i], b2[i], epochs, lr=lr)
        for got, want in ((out[0][:, :, i], ref["W1"]), (out[1][:, i], ref["b1"]), (out[2][:, i], ref["W2"]),
                          (out[3][i], ref["b2"])):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * max(1.0, np.max(np.abs(want))))
        np.testing.assert_allclose(out[4][i], ref["final_loss"], rtol=1e-10)
        moved = max(moved, float(np.max(np.abs(ref["W1"] - W1[:, :, i]))))
    assert moved > 0.1                                            # the networks did train


def test_jax_conventions_are_the_notebooks():
    """With a factor 2 in the output delta, train_jax at lr would train as the reference at 2 lr: it must
    equal the reference at lr and differ from it at 2 lr."""
    pytest.importorskip("jax", reason=JAX_REASON)
    from benchmarks.peers import train_jax
    from kernels.reference import train_reference
    X, Y, W1, b1, W2, b2 = jax_case(n_nets=2, seed=6)
    out = train_jax(X, Y, W1, b1, W2, b2, 200, 0.25, np.float64)
    same = train_reference(X, Y, W1[:, :, 0], b1[:, 0], W2[:, 0], b2[0], 200, lr=0.25)
    doubled = train_reference(X, Y, W1[:, :, 0], b1[:, 0], W2[:, 0], b2[0], 200, lr=0.5)
    np.testing.assert_allclose(out[0][:, :, 0], same["W1"], rtol=1e-10, atol=1e-10)
    assert np.max(np.abs(out[0][:, :, 0] - doubled["W1"])) > 1e-3


def test_jax_float32_stays_close_to_the_reference():
    """float32 trains in float32 and stays near the float64 reference over 200 epochs."""
    pytest.importorskip("jax", reason=JAX_REASON)
    from benchmarks.peers import train_jax
    from kernels.reference import train_reference
    X, Y, W1, b1, W2, b2 = jax_case(seed=7)
    out = train_jax(X, Y, W1, b1, W2, b2, 200, 0.5, np.float32)
    assert all(o.dtype == np.float32 for o in out)
    for i in range(W1.shape[-1]):
        ref = train_reference(X, Y, W1[:, :, i], b1[:, i], W2[:, i], b2[i], 200, lr=0.5)
        np.testing.assert_allclose(out[0][:, :, i], ref["W1"], rtol=1e-4, atol=1e-4 * np.max(np.abs(ref["W1"])))
        np.testing.assert_allclose(out[2][:, i], ref["W2"], rtol=1e-4, atol=1e-4 * np.max(np.abs(ref["W2"])))
        np.testing.assert_allclose(out[4][i], ref["final_loss"], rtol=1e-4)


def test_jax_agrees_with_the_batched_peer_and_rejects_bad_arguments():
    """The JAX peer and train_batched train the same networks (final MSE to 1e-12); bad shapes or dtypes are refused."""
    pytest.importorskip("jax", reason=JAX_REASON)
    from benchmarks.peers import train_jax
    X, Y, *lanes = jax_case(n_nets=9, seed=8)
    out = train_jax(X, Y, *lanes, 300, 0.5)
    batched = [p.copy() for p in lanes]
    train_batched(X, Y, *batched, 0.5, 300)
    np.testing.assert_allclose(out[4], batched_mse(X, Y, *batched), rtol=1e-12)
    with pytest.raises(ValueError):
        train_jax(X, Y, *lanes, 10, 0.5, np.float16)
    with pytest.raises(ValueError):
        train_jax(X, Y, lanes[0], lanes[1][:, :3], *lanes[2:], 10, 0.5)
    with pytest.raises(ValueError):
        train_jax(X, Y, *lanes, 10, 0.5, np.float64, "einsum")


def test_jax_other_shapes_agree_with_the_reference():
    """A 3-5-1 network on 7 random samples (targets in (0, 1)), 150 epochs: the peer is D-H-1, not only 2-4-1."""
    pytest.importorskip("jax", reason=JAX_REASON)
    from benchmarks.peers import train_jax
    from kernels.reference import train_reference
    rng = np.random.default_rng(9)
    X, Y = rng.standard_normal((7, 3)), rng.random(7)
    W1, b1, W2, b2 = to_lanes(random_nets(rng, 3, n_inputs=3, hidden=5))
    out = train_jax(X, Y, W1, b1, W2, b2, 150, 0.3)
    for i in range(3):
        ref = train_reference(X, Y, W1[:, :, i], b1[:, i], W2[:, i], b2[i], 150, lr=0.3)
        np.testing.assert_allclose(out[0][:, :, i], ref["W1"], rtol=1e-10, atol=1e-10 * np.max(np.abs(ref["W1"])))
        np.testing.assert_allclose(out[4][i], ref["final_loss"], rtol=1e-10)


def test_peers_import_without_jax():
    """benchmarks.peers does not import jax until the JAX peer is used."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['jax'] = None; import benchmarks.peers as p; "
            "assert p.jax_version() is None; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert out.stdout.strip() == "ok", out.stderr
