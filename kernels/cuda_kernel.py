"""The CUDA kernel: one GPU thread trains one network (lane), all epochs in one launch.

Imported only by `kernels.cuda` once numba-cuda is known to be importable
(this module imports `numba.cuda` at the top, and the CUDA simulator swaps
that module-level name for its fake one while a simulated kernel runs).

Layout. The parameters stay in the CPU kernels' layout, lanes last:
W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,), per-lane hyperparameters (L,),
statistics (rows, L). Thread g reads and writes column g, so the 32 threads of
a warp touch 32 neighbouring addresses of each row: every global load and
store is coalesced, and the user's arrays are copied to the device as they
are (no transposition). Global memory is touched only at the start and the
end of a lane; in between, the network lives in the thread's registers.

Specialisation. A kernel is compiled for one shape (N, D, H), dtype and data
set: X and Y are constants of the kernel (constant memory; a sweep has a
handful of data sets) and N, D, H are compile-time constants, so the loops
over samples, inputs and hidden units have constant trip counts and unroll;
then the `cuda.local.array`s of weights, gradients, velocities and
activations are indexed by constants and live in registers, inputs equal to
0 drop out of the code (the CPU kernel skips them at run time: same sums in
the same order) and inputs equal to 1 cost no multiply. Two more
compile-time switches drop the momentum velocities and the BCE code when no
lane of the batch uses them. Kernels are cached per key in this process
(compiling one takes a second or two). Register use and
spills as ptxas reported them are in docs/gpu.md.

Shared math. The kernel calls the same `@njit` functions as the CPU kernel
(`kernels.losses`: mse_delta, bce_delta, bce_term; `kernels.rules`:
criterion_holds, is_finite, stops, saturated); numba-cuda compiles an `@njit`
function called from a kernel as a CUDA device function (numba.cuda.target:
CUDATypingContext.resolve_value_type), and the CUDA simulator calls the CPU
build. What is not shared is the sigmoid: here it is 1 / (1 + exp(-z)) with
CUDA's own exp (libdevice: __nv_exp within 1 ulp, __nv_expf within 2 ulp),
where the CPU kernel uses the vectorisable exp of `kernels.fastmath` (within
1 ulp of its own). Also NVVM contracts a*b + c into fused multiply-adds
(CUDA's default), which the CPU kernel does not. So GPU and CPU results agree
to the last bits of each operation, not bitwise; over many epochs these
differences grow as rounding differences do (see tests/test_cuda.py).

A lane's arithmetic does not depend on the other lanes, so a lane's results
are the same whatever the batch it is trained in (same compiled variant).
"""
import math
import threading
import time
import warnings

import numpy as np
from numba import cuda, from_dtype, njit

from kernels.losses import bce_delta, bce_term, mse_delta
from kernels.rules import criterion_holds, is_finite, saturated, stops
from kernels.vocab import (BCE, BY_LOSS, F_ACCURACY, F_FINAL_LOSS, F_FINAL_MSE, F_GRAD_NORM, F_MIN_LOSS,
                           F_SAT_HIDDEN_END, F_SAT_HIDDEN_START, F_SAT_OUTPUT_END, F_SAT_OUTPUT_START, I_CONVERGED,
                           I_DIVERGED, I_EPOCH_CONVERGED, I_EPOCHS_RUN, JIT, N_FLOAT_STATS, N_INT_STATS)


@njit(**JIT)
def sigmoid(z, one):
    """1 / (1 + exp(-z)) in the precision of z, with the target's exp (libdevice on a GPU)."""
    return one / (one + math.exp(-z))


def _warm_up_helpers(dtype):
    """In the simulator: compile (or load from Numba's cache) the @njit functions the kernel
    calls, for the types it calls them with, here in one thread rather than in the first
    simulated threads that need them, all at once (several times slower)."""
    r = np.dtype(dtype).type(0.5)
    sigmoid(r, r), mse_delta(r, r, r), bce_delta(r, r, r, r), bce_term(r, r, r, r), saturated(r)
    criterion_holds(r, r, np.bool_(True), r, r), stops(is_finite(r), False, np.bool_(False), 0, 1)


_KERNELS = {}
_LOCK = threading.Lock()  # one caller at a time builds kernels and uses the GPU (the simulator requires it)


def get_kernel(X, Y, hidden, dtype, with_momentum, with_bce):
    """The kernel for this data set, hidden width, dtype and switches (compiled at its first launch)."""
    dtype = np.dtype(dtype)
    X = np.ascontiguousarray(X, dtype)
    Y = np.ascontiguousarray(Y, dtype)
    key = (dtype.str, X.shape, int(hidden), X.tobytes(), Y.tobytes(), bool(with_momentum), bool(with_bce))
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = _build(X, Y, int(hidden), dtype, bool(with_momentum), bool(with_bce))
    return kernel


def _build(X, Y, H, dtype, with_momentum, with_bce):
    N, D = X.shape
    X = X.copy()
    Y = Y.copy()
    X.setflags(write=False)
    Y.setflags(write=False)
    nbt = from_dtype(dtype)
    real = dtype.type  # real(x): x in the working precision. A no-op on a GPU; in the simulator it turns
    #                    the Python float that an @njit function returns for a float32 back into a float32.
    zero, neg0, one, inf = real(0.0), real(-0.0), real(1.0), real(np.inf)
    n_dt = real(N)
    nan64 = np.float64(np.nan)
    # Sums start from -0.0, not 0.0: -0.0 + x is x for every x, so the compiler drops
    # the first addition (0.0 + x is not x for x = -0.0 and must be kept). The sums are
    # the CPU kernel's, up to the sign of a zero sum.

    @cuda.jit(device=True)
    def saturation(w1, b1, w2, b2):
        """Shares of hidden and output pre-activations with |z| > 4 (same sums as training)."""
        sat_h = 0
        sat_o = 0
        for n in range(N):
            z2 = neg0
            for h in range(H):
                z = neg0
                for d in range(D):
                    xd = X[n, d]
                    if xd != 0:
                        z += xd * w1[d, h]
                z = z + b1[h]
                if saturated(z):
                    sat_h += 1
                z2 += real(sigmoid(z, one)) * w2[h]
            z2 = z2 + b2
            if saturated(z2):
                sat_o += 1
        return sat_h / (N * H), sat_o / N

    def train_lanes(W1, B1, W2, B2, lr_, loss_code, bce_eps, momentum, crit_code, margin_, tol_, early_stop,
                    epochs, checkpoints, n_ck, out_f, out_i, out_outputs, out_ck):
        g = cuda.grid(1)
        if g >= B2.shape[0]:
            return
        w1 = cuda.local.array((D, H), nbt)
        b1 = cuda.local.array(H, nbt)
        w2 = cuda.local.array(H, nbt)
        gw1 = cuda.local.array((D, H), nbt)
        gb1 = cuda.local.array(H, nbt)
        gw2 = cuda.local.array(H, nbt)
        vw1 = cuda.local.array((D, H), nbt)  # momentum velocities: optimised away without momentum
        vb1 = cuda.local.array(H, nbt)
        vw2 = cuda.local.array(H, nbt)
        a1 = cuda.local.array(H, nbt)  # hidden activations of the current sample
        a2 = cuda.local.array(N, nbt)  # outputs of the current state
        for h in range(H):
            for d in range(D):
                w1[d, h] = W1[d, h, g]
                vw1[d, h] = zero
            b1[h] = B1[h, g]
            w2[h] = W2[h, g]
            vb1[h] = zero
            vw2[h] = zero
        b2 = B2[g]
        vb2 = zero
        lr = lr_[g]
        eps = bce_eps[g]
        mom = momentum[g] if with_momentum else zero
        use_momentum = with_momentum and mom != 0
        bce = with_bce and loss_code[g] == BCE
        by_loss = crit_code[g] == BY_LOSS
        margin = margin_[g]
        tol = tol_[g]
        early = early_stop[g]

        sh, so = saturation(w1, b1, w2, b2)
        out_f[F_SAT_HIDDEN_START, g] = sh
        out_f[F_SAT_OUTPUT_START, g] = so

        first = -1
        min_loss = inf
        ck_i = 0
        ck_next = checkpoints[0]  # sorted states, then a -1 that no state matches
        e = 0
        while True:
            # Forward and backward pass of state e, summed over samples in order.
            gb2 = neg0
            sse = neg0
            max_err = zero
            bce_sum = neg0
            for h in range(H):
                gb1[h] = neg0
                gw2[h] = neg0
                for d in range(D):
                    gw1[d, h] = neg0
            for n in range(N):
                yn = Y[n]
                z2 = neg0
                for h in range(H):
                    z = neg0
                    for d in range(D):
                        xd = X[n, d]
                        if xd != 0:
                            z += xd * w1[d, h]
                    a = real(sigmoid(z + b1[h], one))
                    a1[h] = a
                    z2 += a * w2[h]
                a = real(sigmoid(z2 + b2, one))
                a2[n] = a
                err = abs(a - yn)
                sse += err * err
                max_err = err if err > max_err else max_err
                if bce:
                    delta = real(bce_delta(a, yn, eps, one))
                    bce_sum += real(bce_term(a, yn, eps, one))
                else:
                    delta = real(mse_delta(a, yn, one))
                gb2 += delta
                for h in range(H):
                    a = a1[h]
                    gw2[h] += a * delta
                    g1 = (delta * w2[h]) * (a * (one - a))
                    gb1[h] += g1
                    for d in range(D):
                        xd = X[n, d]
                        if xd != 0:
                            gw1[d, h] += xd * g1

            # Loss, criterion, checkpoints and stopping of state e.
            loss = -(bce_sum / n_dt) if bce else sse / n_dt
            finite = is_finite(loss)
            holds = criterion_holds(loss, max_err, by_loss, tol, margin)
            if loss < min_loss:
                min_loss = loss
            if holds and first < 0:
                first = e
            while ck_next == e:
                out_ck[ck_i, g] = loss
                ck_i += 1
                ck_next = checkpoints[ck_i]
            if stops(finite, holds, early, e, epochs):
                break

            # Update: plain gradient descent, or heavy-ball momentum.
            if use_momentum:
                for h in range(H):
                    for d in range(D):
                        v = mom * vw1[d, h] + gw1[d, h]
                        vw1[d, h] = v
                        w1[d, h] -= lr * v
                    v = mom * vb1[h] + gb1[h]
                    vb1[h] = v
                    b1[h] -= lr * v
                    v = mom * vw2[h] + gw2[h]
                    vw2[h] = v
                    w2[h] -= lr * v
                v = mom * vb2 + gb2
                vb2 = v
                b2 -= lr * v
            else:
                for h in range(H):
                    for d in range(D):
                        w1[d, h] -= lr * gw1[d, h]
                    b1[h] -= lr * gb1[h]
                    w2[h] -= lr * gw2[h]
                b2 -= lr * gb2
            e += 1

        # Statistics of the last state.
        for i in range(ck_i, n_ck):
            out_ck[i, g] = nan64
        out_i[I_EPOCH_CONVERGED, g] = first
        out_i[I_CONVERGED, g] = holds
        out_i[I_EPOCHS_RUN, g] = e
        out_i[I_DIVERGED, g] = not finite
        out_f[F_FINAL_LOSS, g] = loss
        out_f[F_MIN_LOSS, g] = min_loss
        out_f[F_FINAL_MSE, g] = sse / n_dt
        correct = 0
        for n in range(N):
            out_outputs[n, g] = a2[n]
            correct += (a2[n] > 0.5) == (Y[n] > 0.5)
        out_f[F_ACCURACY, g] = correct / N
        sh, so = saturation(w1, b1, w2, b2)
        out_f[F_SAT_HIDDEN_END, g] = sh
        out_f[F_SAT_OUTPUT_END, g] = so
        v64 = np.float64(gb2)
        gn = v64 * v64
        for h in range(H):
            u64 = np.float64(gb1[h])
            v64 = np.float64(gw2[h])
            gn += u64 * u64 + v64 * v64
            for d in range(D):
                v64 = np.float64(gw1[d, h])
                gn += v64 * v64
        out_f[F_GRAD_NORM, g] = math.sqrt(gn)
        for h in range(H):
            for d in range(D):
                W1[d, h, g] = w1[d, h]
            B1[h, g] = b1[h]
            W2[h, g] = w2[h]
        B2[g] = b2

    return cuda.jit(train_lanes)


def run(batch, W1, b1, W2, b2, threads_per_block, timings=None, simulator=False):
    """Train a validated `kernels.batch.Batch` on the GPU; W1..b2 are updated in place.

    Copies the inputs to the device once, trains every epoch of every lane in one
    launch, copies the results back once. `timings`, if a dict, receives the
    seconds spent copying in ('h2d'), in the kernel ('kernel', compilation included on a
    kernel's first launch) and copying out ('d2h'). `simulator`: numba's CUDA simulator runs it.
    """
    with _LOCK:
        return _run(batch, W1, b1, W2, b2, threads_per_block, timings, simulator)


def _run(batch, W1, b1, W2, b2, threads_per_block, timings, simulator):
    L, N, K = batch.n_lanes, batch.n_samples, batch.checkpoints_sorted.size
    out_f = np.empty((N_FLOAT_STATS, L))
    out_i = np.empty((N_INT_STATS, L), np.int64)
    out_outputs = np.empty((N, L))
    if L == 0:
        return batch.result(out_f, out_i, out_outputs, np.empty((K, 0)))
    lr, loss_code, bce_eps, momentum, crit_code, margin, tol, early_stop = batch.lane_args
    kernel = get_kernel(batch.X, batch.Y, batch.hidden, batch.dtype,
                        with_momentum=bool(np.any(momentum != 0)), with_bce=bool(np.any(loss_code == BCE)))
    tpb = int(threads_per_block)
    blocks = -(-L // tpb)
    if simulator:
        _warm_up_helpers(batch.dtype)

    t0 = time.perf_counter()
    d_params = [cuda.to_device(p) for p in (W1, b1, W2, b2)]
    d_lane = [cuda.to_device(a) for a in batch.lane_args]
    d_ck = cuda.to_device(np.append(batch.checkpoints_sorted, np.int64(-1)))
    d_out_f = cuda.device_array(out_f.shape, np.float64)
    d_out_i = cuda.device_array(out_i.shape, np.int64)
    d_outputs = cuda.device_array(out_outputs.shape, np.float64)
    d_out_ck = cuda.device_array((max(K, 1), L), np.float64)
    cuda.synchronize()
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        # numba-cuda warns of "GPU under-utilization" below 128 blocks: a small batch is no mistake here.
        warnings.filterwarnings("ignore", message="Grid size .* under-utilization")
        kernel[blocks, tpb](*d_params, *d_lane, batch.epochs, d_ck, K, d_out_f, d_out_i, d_outputs, d_out_ck)
    cuda.synchronize()
    t2 = time.perf_counter()
    for d, h in zip(d_params, (W1, b1, W2, b2)):
        d.copy_to_host(h)
    d_out_f.copy_to_host(out_f)
    d_out_i.copy_to_host(out_i)
    d_outputs.copy_to_host(out_outputs)
    out_ck = d_out_ck.copy_to_host()[:K]
    t3 = time.perf_counter()
    if timings is not None:
        timings.update(h2d=t1 - t0, kernel=t2 - t1, d2h=t3 - t2)
    return batch.result(out_f, out_i, out_outputs, out_ck)
