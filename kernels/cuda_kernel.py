"""The CUDA kernel: one GPU thread trains one network (lane), all epochs in one launch.

Imported only by `kernels.cuda` once numba-cuda is known to be importable
(this module imports `numba.cuda` at the top, and the CUDA simulator swaps
that module-level name for its fake one while a simulated kernel runs).

Layout. The parameters stay in the CPU kernels' layout, lanes last:
W1 (D, H, L), b1 (H, L), W2 (H, L), b2 (L,), per-lane hyperparameters (L,)
(the optimizer's: the (5, L) rows of kernels.vocab.OPT_ARGS, and (L,) shuffle
seeds), statistics (rows, L). Thread g reads and writes column g, so the 32
threads of a warp touch 32 neighbouring addresses of each row: every global
load and store is coalesced, and the user's arrays are copied to the device
as they are (no transposition). Global memory is touched only at the start
and the end of a lane; in between, the network lives in the thread's
registers (or, for large networks, its local memory: see below).

Specialisation. A kernel is compiled for one shape (N, D, H), dtype, model
variant (`kernels.batch.Variant`: activation, output, bias, scaling,
reduction, as in the CPU kernel, and the update scheme: optimizer,
batch_size, shuffle) and, for small data sets, the data set itself. N, D, H
are compile-time constants, so the loops over samples, inputs and hidden
units have constant trip counts and unroll where small; then the
`cuda.local.array`s of weights, gradients, velocities and activations are
indexed by constants and live in registers. The variant's branches and the
scales of its parameterisation fold away: the default sigmoid network runs the
code it always has. Three more compile-time switches drop the momentum
velocities, the BCE code and weight decay when no lane of the batch uses
them. Kernels are cached per key in this process (compiling one takes a
second or two; see `get_kernel`). Register use and spills as ptxas reported
them are in docs/gpu.md.

Update schemes. The default one (gd, full batch, no weight decay: not
`Batch.general`) compiles to the notebooks' update, the very code this kernel
had before there were others. Any other compiles in its optimizer (a code of
kernels.vocab.OPTIMIZERS), batch size and shuffle; per lane, from the
arguments, come beta1, beta2, opt_eps, weight_decay, decay_biases and the
seed. Each parameter is then updated by `kernels.optimizers.update` (weights
decay where weight_decay != 0, biases also with decay_biases), with
per-thread second moments (Adam, AdamW, RMSprop; the velocities hold
momentum or Adam's first moment) and Adam's running products beta1^t,
beta2^t, advanced once per update (t counts minibatch updates too). With
batch_size k the full-data pass of state e (loss, statistics, the gradient
of grad_norm) is followed, unless the lane stops there, by one pass over the
samples in minibatches of k consecutive positions of the epoch's order (the
dataset's, or `shuffle_into` of the lane's seed and e, in a local array of
N indices): each the full pass's forward and backward over its samples (the
mean divides by the batch's size), then one update. The order of operations
is kernels.reference's, as in the CPU kernel.

Where X and Y live. A data set whose X and Y take at most `CONSTANT_BYTES`
(48 KiB of the 64 KiB of constant memory; XOR, or 272 x 16 float64) is
compiled into the kernel: constant memory, read by all threads of a warp at
once (a broadcast), and the compiler sees the values, so inputs equal to 0
drop out of the code (the CPU kernel skips them at run time: same sums in the
same order) and inputs equal to 1 cost no multiply; that is what makes XOR
fast, and each data set gets its own kernel. A larger one (up to 1024 x 64:
512 KiB in float64) cannot be: X and Y are then ordinary read-only global
device arrays passed to the kernel (every thread reads the same address at
the same time, so the loads are cached broadcasts too), zeros are skipped at
run time as on the CPU, and one kernel serves every data set of that shape.
The choice is `in_constant_memory`; results do not depend on it.

Large networks. The per-thread arrays hold D*H weights, gradients, (with
momentum or Adam) velocities and (with Adam or RMSprop) second moments: with
D*H up to 64*256 that is about 400 KiB a thread in float64 (500 with second
moments), far beyond registers, so it spills to local memory (cached in
L1/L2, backed by device memory). One thread per network is the right mapping
for the tiny networks this project sweeps; large ones run, correctly but at
local memory's speed (docs/gpu.md).

Shared math. The kernel calls the same `@njit` functions as the CPU kernel
(`kernels.losses`: mse_delta, mse_delta_linear, bce_delta, bce_term;
`kernels.activations`: slope, saturates, pre_activation; `kernels.rules`:
criterion_holds, is_finite, stops; `kernels.optimizers`: update,
adam_factors, decay_factor, shuffle_into); numba-cuda compiles an `@njit`
function called from a kernel as a CUDA device function (numba.cuda.target:
CUDATypingContext.resolve_value_type), and the CUDA simulator calls the CPU
build. What is not shared is `activate`: here sigmoid is 1 / (1 + exp(-z))
and tanh is tanh, with CUDA's own exp and tanh (libdevice: __nv_exp within 1
ulp, __nv_expf within 2 ulp, tanh within a few ulp), where the CPU kernel
uses the vectorisable exp and tanh of `kernels.fastmath` (within 1 ulp of
their own). Also NVVM contracts a*b + c into fused multiply-adds (CUDA's
default), which the CPU kernel does not. So GPU and CPU results agree to the
last bits of each operation, not bitwise; over many epochs these differences
grow as rounding differences do (see tests/test_cuda.py).

A lane's arithmetic does not depend on the other lanes, so a lane's results
are the same whatever the batch it is trained in (same compiled variant).
"""
import math
import threading
import time
import warnings

import numpy as np
from numba import cuda, from_dtype, njit, types

from kernels.activations import pre_activation, saturates, slope
from kernels.batch import Variant
from kernels.losses import bce_delta, bce_term, mse_delta, mse_delta_linear
from kernels.optimizers import adam_factors, decay_factor, shuffle_into, update, uses_first_moment
from kernels.rules import criterion_holds, is_finite, stops
from kernels.trainability import add_state, add_states, beyond_cap, capped, loss_ratio, scores, tail_start
from kernels.jit import JIT
from kernels.vocab import (A_BETA1, A_BETA2, A_DECAY_BIASES, A_EPS, A_WD, BCE, BY_LOSS, F_ACCURACY, F_DEAD_HIDDEN_END,
                           F_DEAD_HIDDEN_START, F_FINAL_LOSS, F_FINAL_MSE, F_GRAD_NORM, F_LOSS_RATIO_SUM,
                           F_LOSS_RATIO_TAIL, F_MIN_LOSS, F_SAT_HIDDEN_END, F_SAT_HIDDEN_START, F_SAT_OUTPUT_END,
                           F_SAT_OUTPUT_START, F_TRAINABILITY, GD, I_CONVERGED, I_DIVERGED, I_EPOCH_CONVERGED,
                           I_EPOCH_DIVERGED, I_EPOCHS_RUN, MEAN, N_FLOAT_STATS, N_INT_STATS, RELU, SIGMOID, STANDARD,
                           TANH)

# X and Y of at most this many bytes are compiled into the kernel (constant memory: 64 KiB in all,
# which the kernel's other constants share); larger data sets are passed as global device arrays.
CONSTANT_BYTES = 48 * 1024


@njit(**JIT)
def activate(z, act, one):
    """`kernels.activations.activate` with the target's exp and tanh (libdevice on a GPU): sigmoid
    1 / (1 + exp(-z)) and tanh in the precision of z, relu max(z, 0) (NaN passes), identity z."""
    if act == SIGMOID:
        return one / (one + math.exp(-z))
    if act == TANH:
        return math.tanh(z)
    if act == RELU:
        return (one - one) if z <= 0 else z
    return z


def _warm_up_helpers(dtype):
    """In the simulator: compile (or load from Numba's cache) the @njit functions the kernel
    calls, for the types it calls them with, here in one thread rather than in the first
    simulated threads that need them, all at once (several times slower)."""
    r = np.dtype(dtype).type(0.5)
    activate(r, SIGMOID, r), slope(r, SIGMOID, r), saturates(r, SIGMOID), pre_activation(r, r, r, True, True)
    mse_delta(r, r, r), mse_delta_linear(r, r), bce_delta(r, r, r, r), bce_term(r, r, r, r)
    criterion_holds(r, r, np.bool_(True), r, r), stops(is_finite(r), False, np.bool_(False), 0, 1)
    adam_factors(r, r, r, r), decay_factor(r, r, r), shuffle_into(np.zeros(2, np.int64), np.uint64(1), 0)
    update(r, r, r, r, GD, np.bool_(False), r, r, r, r, r, r, r, r, r, r, r)


def in_constant_memory(X, Y):
    """Whether a data set is compiled into the kernel (constant memory) rather than passed as
    global device arrays: X and Y together take at most `CONSTANT_BYTES`."""
    return X.nbytes + Y.nbytes <= CONSTANT_BYTES


_KERNELS = {}
_LOCK = threading.Lock()  # one caller at a time builds kernels and uses the GPU (the simulator requires it)


def get_kernel(X, Y, hidden, dtype, with_momentum, with_bce, variant=Variant(), with_decay=False):
    """The kernel for this shape, dtype, switches, model variant (update scheme included) and -- if it
    goes to constant memory -- data set (compiled at its first launch). Its cache key:
    (dtype, (N, D), H, in constant memory, the bytes of X and Y or None, with_momentum, with_bce,
    (activation, output, bias, scaling, reduction, optimizer, batch_size, shuffle) codes, with_decay);
    a batch_size above N is N (one batch of every sample: the same updates)."""
    dtype = np.dtype(dtype)
    X = np.ascontiguousarray(X, dtype)
    Y = np.ascontiguousarray(Y, dtype)
    constant = in_constant_memory(X, Y)
    data = (X.tobytes(), Y.tobytes()) if constant else None
    codes = (int(variant.activation), int(variant.output), bool(variant.bias), int(variant.scaling),
             int(variant.reduction), int(variant.optimizer), min(int(variant.batch_size), X.shape[0]),
             bool(variant.shuffle))
    key = (dtype.str, X.shape, int(hidden), constant, data, bool(with_momentum), bool(with_bce), codes,
           bool(with_decay))
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = _build(X, Y, int(hidden), dtype, bool(with_momentum), bool(with_bce), codes,
                                        constant, bool(with_decay))
    return kernel


def _build(X, Y, H, dtype, with_momentum, with_bce, codes, constant, with_decay):
    N, D = X.shape
    ACT, OUT, BIAS, scaling, reduction, OPT, BATCH, SHUFFLE = codes
    # The update scheme: the notebooks' (full-batch gradient descent, heavy-ball momentum: the code outside
    # the `if GENERAL` branches), or kernels/optimizers.py's optimizer OPT with weight decay (with_decay: some
    # lane has weight_decay != 0) and, with BATCH >= 1, minibatches of BATCH samples (the last one smaller).
    GENERAL = OPT != GD or BATCH > 0 or with_decay
    FIRST_MOMENT = GENERAL and bool(uses_first_moment(OPT))  # Adam, AdamW: the products beta1^t, beta2^t
    N_UPDATES = -(-N // BATCH) if BATCH > 0 else 1  # updates per epoch
    S_SHAPE = (D, H) if GENERAL else (1, 1)  # the second moments (Adam, AdamW, RMSprop)
    S_LEN = H if GENERAL else 1
    ORDER_LEN = N if SHUFFLE else 1  # the epoch's order of the samples
    SCALED = scaling != STANDARD
    MEAN_GRAD = reduction == MEAN
    OUT_SIGMOID = OUT == SIGMOID
    RELU_UNITS = ACT == RELU
    CONSTANT = constant
    if constant:  # the data set, compiled in (constant memory)
        XC, YC = X.copy(), Y.copy()
    else:  # stand-ins of the right type, never read: the kernel reads its X and Y arguments
        XC, YC = np.zeros((1, 1), dtype), np.zeros(1, dtype)
    XC.setflags(write=False)
    YC.setflags(write=False)
    nbt = from_dtype(dtype)
    real = dtype.type  # real(x): x in the working precision. A no-op on a GPU; in the simulator it turns
    #                    the Python float that an @njit function returns for a float32 back into a float32.
    zero, neg0, one, inf = real(0.0), real(-0.0), real(1.0), real(np.inf)
    n_dt = real(N)
    s1, s2 = (real(s) for s in Variant(*codes).scales(D, H))  # the CPU kernel's `scales`, as constants
    nan64 = np.float64(np.nan)
    # Sums start from -0.0, not 0.0: -0.0 + x is x for every x, so the compiler drops
    # the first addition (0.0 + x is not x for x = -0.0 and must be kept). The sums are
    # the CPU kernel's, up to the sign of a zero sum.

    @cuda.jit(device=True)
    def saturation(X, w1, b1, w2, b2):
        """Shares of saturated hidden and output pre-activations (`kernels.activations.saturates`) and, for
        ReLU units (NaN otherwise), of dead hidden units (z <= 0 on every sample; a NaN z counts as alive),
        from the same sums as training, in one pass over the samples."""
        sat_h = 0
        sat_o = 0
        alive = cuda.local.array(H, types.boolean)
        for h in range(H):
            alive[h] = False
        for n in range(N):
            z2 = neg0
            for h in range(H):
                u = neg0
                for d in range(D):
                    xd = X[n, d]
                    if xd != 0:
                        u += xd * w1[d, h]
                z = real(pre_activation(u, b1[h], s1, SCALED, BIAS))
                if saturates(z, ACT):
                    sat_h += 1
                if RELU_UNITS and not (z <= 0):
                    alive[h] = True
                z2 += real(activate(z, ACT, one)) * w2[h]
            z2 = real(pre_activation(z2, b2, s2, SCALED, BIAS))
            if saturates(z2, OUT):
                sat_o += 1
        dead = 0
        if RELU_UNITS:
            for h in range(H):
                if not alive[h]:
                    dead += 1
        return sat_h / (N * H), sat_o / N, (dead / H if RELU_UNITS else nan64)

    @cuda.jit(device=True)
    def batch_gradient(X, Y, order, start, stop, w1, b1, w2, b2, a1, gw1, gb1, gw2, bce, eps):
        """The gradient of the minibatch at positions start..stop-1 of the epoch's order (order[pos] with
        shuffle, else pos) into gw1, gb1, gw2; returns b2's. The forward and backward pass of the full
        pass in the kernel, sample by sample in the batch's order; with the mean, the output delta divided
        by the batch's size."""
        size = real(stop - start)
        gb2 = neg0
        for h in range(H):
            gb1[h] = neg0
            gw2[h] = neg0
            for d in range(D):
                gw1[d, h] = neg0
        for pos in range(start, stop):
            n = order[pos] if SHUFFLE else pos
            yn = Y[n]
            z2 = neg0
            for h in range(H):
                u = neg0
                for d in range(D):
                    xd = X[n, d]
                    if xd != 0:
                        u += xd * w1[d, h]
                a = real(activate(real(pre_activation(u, b1[h], s1, SCALED, BIAS)), ACT, one))
                a1[h] = a
                z2 += a * w2[h]
            a = real(activate(real(pre_activation(z2, b2, s2, SCALED, BIAS)), OUT, one))
            if bce:
                delta = real(bce_delta(a, yn, eps, one))
            elif OUT_SIGMOID:
                delta = real(mse_delta(a, yn, one))
            else:
                delta = real(mse_delta_linear(a, yn))
            if MEAN_GRAD:
                delta = delta / size
            if BIAS:
                gb2 += delta
            if SCALED:
                delta = delta * s2
            for h in range(H):
                a = a1[h]
                gw2[h] += a * delta
                g1 = (delta * w2[h]) * real(slope(a, ACT, one))
                if BIAS:
                    gb1[h] += g1
                for d in range(D):
                    xd = X[n, d]
                    if xd != 0:
                        gw1[d, h] += xd * g1
        if SCALED:
            for h in range(H):
                for d in range(D):
                    gw1[d, h] *= s1
        return gb2

    def train_lanes(X_, Y_, W1, B1, W2, B2, lr_hidden, lr_output, loss_code, bce_eps, momentum, crit_code, margin_,
                    tol_, early_stop, opt_args, seeds, epochs, checkpoints, n_ck, out_f, out_i, out_outputs, out_ck):
        X = XC if CONSTANT else X_  # a compile-time choice: the constant data set, or the arguments
        Y = YC if CONSTANT else Y_
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
        sw1 = cuda.local.array(S_SHAPE, nbt)  # second moments: only in a general kernel
        sb1 = cuda.local.array(S_LEN, nbt)
        sw2 = cuda.local.array(S_LEN, nbt)
        order = cuda.local.array(ORDER_LEN, types.int64)  # the epoch's shuffled order: only with shuffle
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
        lrh = lr_hidden[g]
        lro = lr_output[g]
        eps = bce_eps[g]
        mom = momentum[g] if with_momentum else zero
        use_momentum = with_momentum and mom != 0
        bce = with_bce and loss_code[g] == BCE
        by_loss = crit_code[g] == BY_LOSS
        margin = margin_[g]
        tol = tol_[g]
        early = early_stop[g]
        if GENERAL:
            for h in range(H):
                for d in range(D):
                    sw1[d, h] = zero
                sb1[h] = zero
                sw2[h] = zero
        sb2 = zero
        # The optimizer's hyperparameters (kernels/optimizers.py), Adam's running products beta1^t, beta2^t and
        # factors, AdamW's shrink factors: all unread (and optimised away) outside a general kernel.
        beta1 = opt_args[A_BETA1, g] if GENERAL else zero
        beta2 = opt_args[A_BETA2, g] if GENERAL else zero
        omb1 = one - beta1
        omb2 = one - beta2
        opt_eps = opt_args[A_EPS, g] if GENERAL else zero
        wd = opt_args[A_WD, g] if with_decay else zero
        decays_w = wd != 0
        decays_b = decays_w and opt_args[A_DECAY_BIASES, g] != 0
        shrink_h = real(decay_factor(lrh, wd, one)) if GENERAL else one
        shrink_o = real(decay_factor(lro, wd, one)) if GENERAL else one
        beta1_t = one
        beta2_t = one
        k_h = one
        k_o = one
        c2 = one

        sh, so, dead = saturation(X, w1, b1, w2, b2)
        out_f[F_SAT_HIDDEN_START, g] = sh
        out_f[F_SAT_OUTPUT_START, g] = so
        out_f[F_DEAD_HIDDEN_START, g] = dead

        first = -1
        min_loss = inf
        initial = 0.0  # L_0 and the sums of the trainability score (kernels/trainability.py)
        ratio_sum = 0.0
        tail_sum = 0.0
        reciprocal_sum = 0.0
        ediv = -1
        tail_from = tail_start(epochs)
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
                    u = neg0
                    for d in range(D):
                        xd = X[n, d]
                        if xd != 0:
                            u += xd * w1[d, h]
                    a = real(activate(real(pre_activation(u, b1[h], s1, SCALED, BIAS)), ACT, one))
                    a1[h] = a
                    z2 += a * w2[h]
                a = real(activate(real(pre_activation(z2, b2, s2, SCALED, BIAS)), OUT, one))
                a2[n] = a
                err = abs(a - yn)
                sse += err * err
                max_err = err if err > max_err else max_err
                # The output delta dL/dz2 (1/N with the mean), then through the output layer's factor s2.
                if bce:
                    delta = real(bce_delta(a, yn, eps, one))
                    bce_sum += real(bce_term(a, yn, eps, one))
                elif OUT_SIGMOID:
                    delta = real(mse_delta(a, yn, one))
                else:
                    delta = real(mse_delta_linear(a, yn))
                if MEAN_GRAD:
                    delta = delta / n_dt
                if BIAS:
                    gb2 += delta
                if SCALED:
                    delta = delta * s2
                for h in range(H):
                    a = a1[h]
                    gw2[h] += a * delta
                    g1 = (delta * w2[h]) * real(slope(a, ACT, one))
                    if BIAS:
                        gb1[h] += g1
                    for d in range(D):
                        xd = X[n, d]
                        if xd != 0:
                            gw1[d, h] += xd * g1
            if SCALED:  # dW1 = s1 X^T dZ1
                for h in range(H):
                    for d in range(D):
                        gw1[d, h] *= s1

            # Loss, criterion, checkpoints and stopping of state e.
            loss = -(bce_sum / n_dt) if bce else sse / n_dt
            finite = is_finite(loss)
            holds = criterion_holds(loss, max_err, by_loss, tol, margin)
            if loss < min_loss:
                min_loss = loss
            if holds and first < 0:
                first = e
            if e == 0:
                initial = np.float64(loss)
            ratio = loss_ratio(loss, initial)
            if beyond_cap(ratio) and ediv < 0:
                ediv = e
            ratio_sum, tail_sum, reciprocal_sum = add_state(ratio_sum, tail_sum, reciprocal_sum, capped(ratio),
                                                            e >= tail_from)
            while ck_next == e:
                out_ck[ck_i, g] = loss
                ck_i += 1
                ck_next = checkpoints[ck_i]
            if stops(finite, holds, early, e, epochs):
                break

            if GENERAL:
                # The optimizer's updates of this epoch: one from the full gradient above, or one per
                # minibatch of the epoch's order (the dataset's, or the lane's shuffle of epoch e).
                if SHUFFLE:
                    shuffle_into(order, seeds[g], e)
                for i in range(N_UPDATES):
                    if BATCH > 0:
                        gb2 = batch_gradient(X, Y, order, i * BATCH, min(i * BATCH + BATCH, N), w1, b1, w2, b2, a1,
                                             gw1, gb1, gw2, bce, eps)
                    if FIRST_MOMENT:
                        beta1_t = beta1_t * beta1
                        beta2_t = beta2_t * beta2
                        k_h, c2 = adam_factors(lrh, beta1_t, beta2_t, one)
                        k_o, c2 = adam_factors(lro, beta1_t, beta2_t, one)
                        k_h, k_o, c2 = real(k_h), real(k_o), real(c2)
                    for h in range(H):
                        for d in range(D):
                            p, v, s = update(w1[d, h], gw1[d, h], vw1[d, h], sw1[d, h], OPT, decays_w, lrh, mom,
                                             beta1, omb1, beta2, omb2, opt_eps, wd, shrink_h, k_h, c2)
                            w1[d, h], vw1[d, h], sw1[d, h] = real(p), real(v), real(s)
                        if BIAS:
                            p, v, s = update(b1[h], gb1[h], vb1[h], sb1[h], OPT, decays_b, lrh, mom, beta1, omb1,
                                             beta2, omb2, opt_eps, wd, shrink_h, k_h, c2)
                            b1[h], vb1[h], sb1[h] = real(p), real(v), real(s)
                        p, v, s = update(w2[h], gw2[h], vw2[h], sw2[h], OPT, decays_w, lro, mom, beta1, omb1, beta2,
                                         omb2, opt_eps, wd, shrink_o, k_o, c2)
                        w2[h], vw2[h], sw2[h] = real(p), real(v), real(s)
                    if BIAS:
                        p, v, s = update(b2, gb2, vb2, sb2, OPT, decays_b, lro, mom, beta1, omb1, beta2, omb2,
                                         opt_eps, wd, shrink_o, k_o, c2)
                        b2, vb2, sb2 = real(p), real(v), real(s)
            # Else the notebooks' update: plain gradient descent, or heavy-ball momentum; each layer at its own
            # rate.
            elif use_momentum:
                for h in range(H):
                    for d in range(D):
                        v = mom * vw1[d, h] + gw1[d, h]
                        vw1[d, h] = v
                        w1[d, h] -= lrh * v
                    if BIAS:
                        v = mom * vb1[h] + gb1[h]
                        vb1[h] = v
                        b1[h] -= lrh * v
                    v = mom * vw2[h] + gw2[h]
                    vw2[h] = v
                    w2[h] -= lro * v
                if BIAS:
                    v = mom * vb2 + gb2
                    vb2 = v
                    b2 -= lro * v
            else:
                for h in range(H):
                    for d in range(D):
                        w1[d, h] -= lrh * gw1[d, h]
                    if BIAS:
                        b1[h] -= lrh * gb1[h]
                    w2[h] -= lro * gw2[h]
                if BIAS:
                    b2 -= lro * gb2
            e += 1

        # Statistics of the last state; the states not reached hold its ratio.
        ratio_sum, tail_sum, reciprocal_sum = add_states(ratio_sum, tail_sum, reciprocal_sum,
                                                         capped(loss_ratio(loss, initial)), e + 1, epochs, tail_from)
        tail, trainability = scores(ratio_sum, tail_sum, reciprocal_sum, epochs)
        out_f[F_LOSS_RATIO_SUM, g] = ratio_sum
        out_f[F_LOSS_RATIO_TAIL, g] = tail
        out_f[F_TRAINABILITY, g] = trainability
        out_i[I_EPOCH_DIVERGED, g] = ediv
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
        keep = out_outputs.shape[0] == N  # the caller may keep no outputs
        for n in range(N):
            if keep:
                out_outputs[n, g] = a2[n]
            correct += (a2[n] > 0.5) == (Y[n] > 0.5)
        out_f[F_ACCURACY, g] = correct / N
        sh, so, dead = saturation(X, w1, b1, w2, b2)
        out_f[F_SAT_HIDDEN_END, g] = sh
        out_f[F_SAT_OUTPUT_END, g] = so
        out_f[F_DEAD_HIDDEN_END, g] = dead
        # The norm of the gradient as applied (biases only with biases), in float64.
        gn = 0.0
        if BIAS:
            v64 = np.float64(gb2)
            gn = v64 * v64
        for h in range(H):
            if BIAS:
                u64 = np.float64(gb1[h])
                v64 = np.float64(gw2[h])
                gn += u64 * u64 + v64 * v64
            else:
                v64 = np.float64(gw2[h])
                gn += v64 * v64
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


def run(batch, W1, b1, W2, b2, threads_per_block, timings=None, simulator=False, outputs=True):
    """Train a validated `kernels.batch.Batch` on the GPU; W1..b2 are updated in place (b1 and b2:
    the batch's, zeros standing in for them without biases).

    Copies the inputs to the device once, trains every epoch of every lane in one
    launch, copies the results back once. `timings`, if a dict, receives the
    seconds spent copying in ('h2d'), in the kernel ('kernel', compilation included on a
    kernel's first launch) and copying out ('d2h'). `simulator`: numba's CUDA simulator runs it.
    outputs=False: no outputs per sample are kept, copied or returned (an (0, L) array).
    """
    with _LOCK:
        return _run(batch, W1, b1, W2, b2, threads_per_block, timings, simulator, outputs)


def _run(batch, W1, b1, W2, b2, threads_per_block, timings, simulator, outputs):
    L, N, K = batch.n_lanes, batch.n_samples, batch.checkpoints_sorted.size
    out_f = np.empty((N_FLOAT_STATS, L))
    out_i = np.empty((N_INT_STATS, L), np.int64)
    out_outputs = np.empty((N if outputs else 0, L))
    if L == 0:
        return batch.result(out_f, out_i, out_outputs, np.empty((K, 0)))
    kernel = get_kernel(batch.X, batch.Y, batch.hidden, batch.dtype, with_momentum=batch.has_momentum,
                        with_bce=batch.has_bce, variant=batch.variant, with_decay=batch.has_weight_decay)
    if in_constant_memory(batch.X, batch.Y):  # compiled in: the X and Y arguments are unread stand-ins
        data = (np.zeros((1, 1), batch.dtype), np.zeros(1, batch.dtype))
    else:
        data = (batch.X, batch.Y)
    tpb = int(threads_per_block)
    blocks = -(-L // tpb)
    if simulator:
        _warm_up_helpers(batch.dtype)

    t0 = time.perf_counter()
    d_data = [cuda.to_device(a) for a in data]
    d_params = [cuda.to_device(p) for p in (W1, b1, W2, b2)]
    d_lane = [cuda.to_device(a) for a in batch.lane_args]
    d_opt = [cuda.to_device(a) for a in (batch.opt_args, batch.seeds)]
    d_ck = cuda.to_device(np.append(batch.checkpoints_sorted, np.int64(-1)))
    d_out_f = cuda.device_array(out_f.shape, np.float64)
    d_out_i = cuda.device_array(out_i.shape, np.int64)
    # One row stands for none (no zero-size device array): the kernel writes it only if N is 1, unread here.
    d_outputs = cuda.device_array((N if outputs else 1, L), np.float64)
    d_out_ck = cuda.device_array((max(K, 1), L), np.float64)
    cuda.synchronize()
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        # numba-cuda warns of "GPU under-utilization" below 128 blocks: a small batch is no mistake here.
        warnings.filterwarnings("ignore", message="Grid size .* under-utilization")
        kernel[blocks, tpb](*d_data, *d_params, *d_lane, *d_opt, batch.epochs, d_ck, K, d_out_f, d_out_i,
                            d_outputs, d_out_ck)
    cuda.synchronize()
    t2 = time.perf_counter()
    for d, h in zip(d_params, (W1, b1, W2, b2)):
        d.copy_to_host(h)
    d_out_f.copy_to_host(out_f)
    d_out_i.copy_to_host(out_i)
    if outputs:
        d_outputs.copy_to_host(out_outputs)
    out_ck = d_out_ck.copy_to_host()[:K]
    t3 = time.perf_counter()
    if timings is not None:
        timings.update(h2d=t1 - t0, kernel=t2 - t1, d2h=t3 - t2)
    return batch.result(out_f, out_i, out_outputs, out_ck)
