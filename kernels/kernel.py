"""Numba kernels that train many D-H-1 networks at once, one compiled kernel per activation and output factors.

Networks live in lanes: parameters are shaped (..., lanes) with the lane axis
innermost and contiguous, so the loops over lanes compile to SIMD code (with
the vectorisable exp and tanh of `kernels.fastmath`). Each lane may have its
own learning rates (hidden and output layer), loss, BCE eps, momentum,
criterion, margin, tol and early-stop flag. The model (`kernels.batch.Variant`)
is the same for every lane of a call. Its activation, and whether the
output's sum and delta carry factors (an output scale s2 != 1 or the mean
reduction), are compiled in: `train_range_for` builds one kernel per pair
as a closure over them, so their branches fold away (Numba caches each on
disk; the closure's values are part of its cache key; a first compile takes
seconds per kernel and dtype). The rest of the model costs the default
sigmoid network nothing and is passed in: the input scale s1 of the ntk and
mean-field parameterisations is applied to X once, before the kernel (s1 X W1
is X s1 W1, and the gradient of W1 is (s1 X)^T dZ1), the factors s2 and r
are values, a network without biases has zero biases that are never updated
(adding 0 changes no value), and the output unit (sigmoid or identity) is a
choice per sample, outside the loops over hidden units.

The math is that of `kernels.reference` (see its docstring for the
definitions of every statistic); the tests compare the two lane by lane. The
losses (`kernels.losses`), activations (`kernels.activations`) and the scalar
rules -- criterion, divergence, stop (`kernels.rules`) -- are shared with the
GPU kernel (`kernels.cuda_kernel`), which calls the same functions.

Lanes are trained in tiles: a tile's parameters are copied into small local
buffers that stay in cache, and when lanes of a tile stop (early stop or
divergence) the tile is compacted so the remaining lanes run on a shorter
vector loop: a batch whose lanes stop early gets faster.

Every lane's arithmetic is independent of the other lanes and of where the
lane sits in a tile, so a lane's results are bit-identical whatever the batch
it is trained in, the tile size or the number of threads.
"""
import threading

import numpy as np
from numba import njit

from kernels.activations import activate, pre_activation, saturates, slope
from kernels.losses import bce_delta, bce_term, mse_delta, mse_delta_linear
from kernels.rules import criterion_holds, is_finite, stops
from kernels.trainability import add_states, beyond_cap, capped, loss_ratio, scores, tail_start
from kernels.vocab import (BCE, BY_LOSS, F_ACCURACY, F_DEAD_HIDDEN_END, F_DEAD_HIDDEN_START, F_FINAL_LOSS, F_FINAL_MSE,
                           F_GRAD_NORM, F_LOSS_RATIO_SUM, F_LOSS_RATIO_TAIL, F_MIN_LOSS, F_SAT_HIDDEN_END, F_SAT_HIDDEN_START, F_SAT_OUTPUT_END,
                           F_SAT_OUTPUT_START, F_TRAINABILITY, I_CONVERGED, I_DIVERGED, I_EPOCH_CONVERGED,
                           I_EPOCH_DIVERGED, I_EPOCHS_RUN, KERNEL_JIT, SIGMOID)


@njit(**KERNEL_JIT)
def _saturation(X, w1, b1, w2, b2, j, s2, act, out):
    """Shares of saturated hidden and output pre-activations and of dead hidden units (z <= 0 on every
    sample), slot j.

    X is the scaled input of the kernel. Computes z in the same order as the training loop, so the values
    are bitwise those of the training pass.
    """
    n_samples, n_inputs = X.shape
    hidden = w1.shape[1]
    zero = b2[j] - b2[j]
    one = zero + 1
    sat_h = 0
    sat_o = 0
    alive = np.zeros(hidden, np.bool_)
    for n in range(n_samples):
        u2 = zero
        for h in range(hidden):
            u = zero
            for d in range(n_inputs):
                xd = X[n, d]
                if xd != 0:
                    u += xd * w1[d, h, j]
            z = u + b1[h, j]
            if saturates(z, act):
                sat_h += 1
            if not (z <= 0):
                alive[h] = True
            u2 += activate(z, act, one) * w2[h, j]
        z2 = u2 * s2 + b2[j]
        if saturates(z2, out):
            sat_o += 1
    dead = 0
    for h in range(hidden):
        dead += not alive[h]
    return sat_h / (n_samples * hidden), sat_o / n_samples, dead / hidden


@njit(**KERNEL_JIT)
def _nonzero_inputs(X):
    """Per sample, the count and the indices of its non-zero inputs (at least 2 slots: the fused loops read 2)."""
    n_samples, n_inputs = X.shape
    count = np.zeros(n_samples, np.int64)
    index = np.zeros((n_samples, max(2, n_inputs)), np.int64)
    for n in range(n_samples):
        for d in range(n_inputs):
            if X[n, d] != 0:
                index[n, count[n]] = d
                count[n] += 1
    return count, index


@njit(**KERNEL_JIT)
def _load_lane(j, g, zero, W1, B1, W2, B2, w1, b1, w2, b2, vw1, vb1, vw2, vb2):
    """Copy lane g's weights into tile slot j, its velocities set to `zero` (0 of the working dtype)."""
    n_inputs, hidden = W1.shape[0], W1.shape[1]
    for d in range(n_inputs):
        for h in range(hidden):
            w1[d, h, j] = W1[d, h, g]
            vw1[d, h, j] = zero
    for h in range(hidden):
        b1[h, j] = B1[h, g]
        w2[h, j] = W2[h, g]
        vb1[h, j] = zero
        vw2[h, j] = zero
    b2[j] = B2[g]
    vb2[j] = zero


@njit(**KERNEL_JIT)
def _retire_lane(j, g, e, epochs, X, Y, n_dt, w1, b1, w2, b2, gw1, gb1, gw2, gb2, a2, loss, sse, first, holds,
                 min_loss, score, ediv, W1, B1, W2, B2, out_f, out_i, out_outputs, s2, act, out, bias):
    """Lane g (tile slot j) stops at state e: write its statistics, outputs and final weights."""
    n_samples, n_inputs = X.shape
    hidden = w1.shape[1]
    # The states not reached hold the last state's ratio (kernels/trainability.py).
    ratio_sum, tail_sum, reciprocal_sum = add_states(score[1, j], score[2, j], score[3, j],
                                                     capped(loss_ratio(loss[j], score[0, j])), e + 1, epochs,
                                                     tail_start(epochs))
    tail, trainability = scores(ratio_sum, tail_sum, reciprocal_sum, epochs)
    out_f[F_LOSS_RATIO_SUM, g] = ratio_sum
    out_f[F_LOSS_RATIO_TAIL, g] = tail
    out_f[F_TRAINABILITY, g] = trainability
    out_i[I_EPOCH_DIVERGED, g] = ediv[j]
    out_i[I_EPOCH_CONVERGED, g] = first[j]
    out_i[I_CONVERGED, g] = holds[j]
    out_i[I_EPOCHS_RUN, g] = e
    out_i[I_DIVERGED, g] = not is_finite(loss[j])
    out_f[F_FINAL_LOSS, g] = loss[j]
    out_f[F_MIN_LOSS, g] = min_loss[j]
    out_f[F_FINAL_MSE, g] = sse[j] / n_dt
    correct = 0
    for n in range(n_samples):
        out_outputs[n, g] = a2[n, j]
        correct += (a2[n, j] > 0.5) == (Y[n] > 0.5)
    out_f[F_ACCURACY, g] = correct / n_samples
    sh, so, dead = _saturation(X, w1, b1, w2, b2, j, s2, act, out)
    out_f[F_SAT_HIDDEN_END, g] = sh
    out_f[F_SAT_OUTPUT_END, g] = so
    out_f[F_DEAD_HIDDEN_END, g] = dead
    # In float64 whatever the working dtype (Numba's float() of a float32 is a float32).
    gn = np.float64(gb2[j]) ** 2 if bias else 0.0
    for h in range(hidden):
        if bias:
            gn += np.float64(gb1[h, j]) ** 2 + np.float64(gw2[h, j]) ** 2
        else:
            gn += np.float64(gw2[h, j]) ** 2
        for d in range(n_inputs):
            gn += np.float64(gw1[d, h, j]) ** 2
    out_f[F_GRAD_NORM, g] = np.sqrt(gn)
    for h in range(hidden):
        for d in range(n_inputs):
            W1[d, h, g] = w1[d, h, j]
        B1[h, g] = b1[h, j]
        W2[h, g] = w2[h, j]
    B2[g] = b2[j]


@njit(**KERNEL_JIT)
def _move_params(src, dst, w1, b1, w2, b2):
    """Compaction: the parameters (or velocities, or gradients) of tile slot src move to slot dst."""
    for h in range(w1.shape[1]):
        for d in range(w1.shape[0]):
            w1[d, h, dst] = w1[d, h, src]
        b1[h, dst] = b1[h, src]
        w2[h, dst] = w2[h, src]
    b2[dst] = b2[src]


@njit(**KERNEL_JIT)
def _move_hyper(src, dst, t_lrh, t_lro, t_eps, t_mom, t_margin, t_tol, t_bce, t_crit_loss, t_early, lane, first,
                min_loss, score, ediv):
    """Compaction: the hyperparameters and the running state of tile slot src move to slot dst."""
    for i in range(score.shape[0]):
        score[i, dst] = score[i, src]
    ediv[dst] = ediv[src]
    t_lrh[dst] = t_lrh[src]
    t_lro[dst] = t_lro[src]
    t_eps[dst] = t_eps[src]
    t_mom[dst] = t_mom[src]
    t_margin[dst] = t_margin[src]
    t_tol[dst] = t_tol[src]
    t_bce[dst] = t_bce[src]
    t_crit_loss[dst] = t_crit_loss[src]
    t_early[dst] = t_early[src]
    lane[dst] = lane[src]
    first[dst] = first[src]
    min_loss[dst] = min_loss[src]


_KERNELS = {}
_BUILD = threading.Lock()


@njit(**KERNEL_JIT)
def _times(x, factor, factors):
    """x times the factor of the scaling or the reduction, or x itself without `factors`."""
    return x * factor if factors else x


def train_range_for(activation, factors):
    """The kernel of an activation code (kernels.vocab.ACTIVATIONS), and of whether the output's sum and
    delta have factors (s2 != 1 or the mean reduction), built once per process; Numba compiles it per
    dtype at its first call, or loads it from its cache."""
    key = (int(activation), bool(factors))
    kernel = _KERNELS.get(key)
    if kernel is None:
        with _BUILD:
            kernel = _KERNELS.get(key)
            if kernel is None:
                kernel = _KERNELS[key] = _build(*key)
    return kernel


def _build(act, factors):
    ACT = act
    FACTORS = factors

    @njit(**KERNEL_JIT)
    def train_range(X, Y, W1, B1, W2, B2, lr_hidden, lr_output, loss_code, bce_eps, momentum,
                    crit_code, margin, tol, early_stop, epochs, checkpoints, model, out, bias,
                    lo, hi, tile, out_f, out_i, out_outputs, out_ck):
        """Train lanes lo..hi-1 in place; write their statistics.

        X (N, D) (the inputs times s1), Y (N,), W1 (D, H, L), B1 (H, L), W2 (H, L), B2 (L,) share one
        float dtype. Per-lane arrays (L,): lr_hidden, lr_output, bce_eps, momentum, margin, tol in
        that dtype; loss_code and crit_code int8 (indices into kernels.vocab.LOSSES, CRITERIA);
        early_stop bool. checkpoints: sorted int64 states. model: (s2, r) in the dtype, the output
        scale and the reduction's factor on the gradient (1 or 1/N); out: the output's activation
        code; bias: whether the biases are trained (without, they are zero and stay so).
        Outputs (float64 and int64, lanes last): out_f (len(FLOAT_STATS), L), out_i (len(INT_STATS), L),
        out_outputs (N, L), out_ck (K, L) (pre-filled with NaN by the caller).
        """
        tail_from = tail_start(epochs)
        n_samples, n_inputs = X.shape
        hidden = W1.shape[1]
        n_ck = checkpoints.shape[0]
        dt = W1.dtype
        one = np.ones(1, dt)[0]
        zero = one - one
        n_dt = one * n_samples
        s2 = model[0]
        rg = model[1]
        s2r = s2 * rg
        out_sigmoid = out == SIGMOID

        nz_count, nz_index = _nonzero_inputs(X)

        w1 = np.empty((n_inputs, hidden, tile), dt)
        b1 = np.empty((hidden, tile), dt)
        w2 = np.empty((hidden, tile), dt)
        b2 = np.empty(tile, dt)
        vw1 = np.zeros((n_inputs, hidden, tile), dt)
        vb1 = np.zeros((hidden, tile), dt)
        vw2 = np.zeros((hidden, tile), dt)
        vb2 = np.zeros(tile, dt)
        gw1 = np.zeros((n_inputs, hidden, tile), dt)
        gb1 = np.zeros((hidden, tile), dt)
        gw2 = np.empty((hidden, tile), dt)
        gb2 = np.zeros(tile, dt)
        a1 = np.empty((hidden, tile), dt)
        z2 = np.empty(tile, dt)
        d2 = np.empty(tile, dt)
        a2 = np.empty((n_samples, tile), dt)
        sse = np.empty(tile, dt)
        maxerr = np.empty(tile, dt)
        lossv = np.empty(tile, dt)
        min_loss = np.empty(tile, dt)
        t_lrh = np.empty(tile, dt)
        t_lro = np.empty(tile, dt)
        t_eps = np.empty(tile, dt)
        t_mom = np.empty(tile, dt)
        t_margin = np.empty(tile, dt)
        t_tol = np.empty(tile, dt)
        t_bce = np.empty(tile, np.bool_)
        t_crit_loss = np.empty(tile, np.bool_)
        t_early = np.empty(tile, np.bool_)
        lane = np.empty(tile, np.int64)
        first = np.empty(tile, np.int64)
        holds = np.empty(tile, np.bool_)
        stop = np.empty(tile, np.bool_)
        score = np.empty((4, tile), np.float64)  # L_0, then the sums of kernels/trainability.py
        ediv = np.empty(tile, np.int64)

        for t0 in range(lo, hi, tile):
            active = min(tile, hi - t0)
            has_bce = False
            has_mom = False
            for j in range(active):
                g = t0 + j
                lane[j] = g
                _load_lane(j, g, zero, W1, B1, W2, B2, w1, b1, w2, b2, vw1, vb1, vw2, vb2)
                t_lrh[j] = lr_hidden[g]
                t_lro[j] = lr_output[g]
                t_eps[j] = bce_eps[g]
                t_mom[j] = momentum[g]
                t_margin[j] = margin[g]
                t_tol[j] = tol[g]
                t_bce[j] = loss_code[g] == BCE
                t_crit_loss[j] = crit_code[g] == BY_LOSS
                t_early[j] = early_stop[g]
                has_bce |= t_bce[j]
                has_mom |= momentum[g] != 0
                first[j] = -1
                min_loss[j] = np.inf
                for i in range(1, 4):
                    score[i, j] = 0.0
                ediv[j] = -1
                sh, so, dead = _saturation(X, w1, b1, w2, b2, j, s2, ACT, out)
                out_f[F_SAT_HIDDEN_START, g] = sh
                out_f[F_SAT_OUTPUT_START, g] = so
                out_f[F_DEAD_HIDDEN_START, g] = dead

            next_ck = 0
            e = 0
            while True:
                # Forward and backward pass of state e, summed over samples.
                for j in range(active):
                    gb2[j] = zero
                    sse[j] = zero
                    maxerr[j] = zero
                for h in range(hidden):
                    for j in range(active):
                        gb1[h, j] = zero
                        gw2[h, j] = zero
                    for d in range(n_inputs):
                        for j in range(active):
                            gw1[d, h, j] = zero
                for n in range(n_samples):
                    yn = Y[n]
                    k = nz_count[n]
                    d0 = nz_index[n, 0]
                    d1 = nz_index[n, 1]
                    x0 = X[n, d0]
                    x1 = X[n, d1]
                    # Hidden layer and the output's weighted sum, summed over h in order.
                    # u = sum of x_d w_d over the non-zero inputs, then z = s u + b: samples with
                    # up to two non-zero inputs (all of XOR's) take one fused loop.
                    for j in range(active):
                        z2[j] = zero
                    for h in range(hidden):
                        if k == 0:
                            for j in range(active):
                                a = activate(b1[h, j], ACT, one)
                                a1[h, j] = a
                                z2[j] += a * w2[h, j]
                        elif k == 1:
                            for j in range(active):
                                a = activate(x0 * w1[d0, h, j] + b1[h, j], ACT, one)
                                a1[h, j] = a
                                z2[j] += a * w2[h, j]
                        elif k == 2:
                            for j in range(active):
                                a = activate((x0 * w1[d0, h, j] + x1 * w1[d1, h, j]) + b1[h, j], ACT, one)
                                a1[h, j] = a
                                z2[j] += a * w2[h, j]
                        else:
                            for j in range(active):
                                a1[h, j] = zero
                            for d in range(n_inputs):
                                xd = X[n, d]
                                if xd != 0:
                                    for j in range(active):
                                        a1[h, j] += xd * w1[d, h, j]
                            for j in range(active):
                                a = activate(a1[h, j] + b1[h, j], ACT, one)
                                a1[h, j] = a
                                z2[j] += a * w2[h, j]
                    # Output, loss terms and the output delta: z2 = s2 u2 + b2; the delta times the reduction's
                    # factor is b2's gradient, and d2 = delta s2 r carries the output layer's factor backwards.
                    if has_bce:  # BCE takes a sigmoid output only
                        for j in range(active):
                            a = activate(pre_activation(z2[j], b2[j], s2, FACTORS, True), SIGMOID, one)
                            a2[n, j] = a
                            err = abs(a - yn)
                            sse[j] += err * err
                            maxerr[j] = err if err > maxerr[j] else maxerr[j]
                            dz = bce_delta(a, yn, t_eps[j], one) if t_bce[j] else mse_delta(a, yn, one)
                            gb2[j] += _times(dz, rg, FACTORS)
                            d2[j] = _times(dz, s2r, FACTORS)
                    elif out_sigmoid:
                        for j in range(active):
                            a = activate(pre_activation(z2[j], b2[j], s2, FACTORS, True), SIGMOID, one)
                            a2[n, j] = a
                            err = abs(a - yn)
                            sse[j] += err * err
                            maxerr[j] = err if err > maxerr[j] else maxerr[j]
                            dz = mse_delta(a, yn, one)
                            gb2[j] += _times(dz, rg, FACTORS)
                            d2[j] = _times(dz, s2r, FACTORS)
                    else:
                        for j in range(active):
                            a = pre_activation(z2[j], b2[j], s2, FACTORS, True)
                            a2[n, j] = a
                            err = abs(a - yn)
                            sse[j] += err * err
                            maxerr[j] = err if err > maxerr[j] else maxerr[j]
                            dz = mse_delta_linear(a, yn)
                            gb2[j] += _times(dz, rg, FACTORS)
                            d2[j] = _times(dz, s2r, FACTORS)
                    # Backward through the hidden layer.
                    for h in range(hidden):
                        if k == 0:
                            for j in range(active):
                                a = a1[h, j]
                                dz = d2[j]
                                gw2[h, j] += a * dz
                                gb1[h, j] += (dz * w2[h, j]) * slope(a, ACT, one)
                        elif k == 1:
                            for j in range(active):
                                a = a1[h, j]
                                dz = d2[j]
                                gw2[h, j] += a * dz
                                dz1 = (dz * w2[h, j]) * slope(a, ACT, one)
                                gb1[h, j] += dz1
                                gw1[d0, h, j] += x0 * dz1
                        elif k == 2:
                            for j in range(active):
                                a = a1[h, j]
                                dz = d2[j]
                                gw2[h, j] += a * dz
                                dz1 = (dz * w2[h, j]) * slope(a, ACT, one)
                                gb1[h, j] += dz1
                                gw1[d0, h, j] += x0 * dz1
                                gw1[d1, h, j] += x1 * dz1
                        else:
                            for j in range(active):
                                a = a1[h, j]
                                dz = d2[j]
                                gw2[h, j] += a * dz
                                dz1 = (dz * w2[h, j]) * slope(a, ACT, one)
                                gb1[h, j] += dz1
                                a1[h, j] = dz1
                            for d in range(n_inputs):
                                xd = X[n, d]
                                if xd != 0:
                                    for j in range(active):
                                        gw1[d, h, j] += xd * a1[h, j]

                # Loss, criterion and stopping of state e.
                for j in range(active):
                    lossv[j] = sse[j] / n_dt
                if has_bce:
                    for j in range(active):
                        if t_bce[j]:
                            s = zero
                            ep = t_eps[j]
                            for n in range(n_samples):
                                s += bce_term(a2[n, j], Y[n], ep, one)
                            lossv[j] = -(s / n_dt)
                n_stop = 0
                for j in range(active):
                    L = lossv[j]
                    finite = is_finite(L)
                    ok = criterion_holds(L, maxerr[j], t_crit_loss[j], t_tol[j], t_margin[j])
                    holds[j] = ok
                    if L < min_loss[j]:
                        min_loss[j] = L
                    if ok and first[j] < 0:
                        first[j] = e
                    if e == 0:
                        score[0, j] = L
                    ratio = loss_ratio(L, score[0, j])
                    if beyond_cap(ratio) and ediv[j] < 0:
                        ediv[j] = e
                    score[1, j], score[2, j], score[3, j] = add_states(score[1, j], score[2, j], score[3, j],
                                                                       capped(ratio), e, e, tail_from)
                    s = stops(finite, ok, t_early[j], e, epochs)
                    stop[j] = s
                    n_stop += s
                while next_ck < n_ck and checkpoints[next_ck] == e:
                    for j in range(active):
                        out_ck[next_ck, lane[j]] = lossv[j]
                    next_ck += 1

                if n_stop > 0:  # retire the lanes that stop; move the others down to the front of the tile
                    kept = 0
                    for j in range(active):
                        if stop[j]:
                            _retire_lane(j, lane[j], e, epochs, X, Y, n_dt, w1, b1, w2, b2, gw1, gb1, gw2, gb2, a2,
                                         lossv, sse, first, holds, min_loss, score, ediv, W1, B1, W2, B2, out_f,
                                         out_i, out_outputs, s2, ACT, out, bias)
                            continue
                        if kept != j:
                            _move_params(j, kept, w1, b1, w2, b2)
                            _move_params(j, kept, vw1, vb1, vw2, vb2)
                            _move_params(j, kept, gw1, gb1, gw2, gb2)
                            _move_hyper(j, kept, t_lrh, t_lro, t_eps, t_mom, t_margin, t_tol, t_bce, t_crit_loss,
                                        t_early, lane, first, min_loss, score, ediv)
                        kept += 1
                    active = kept
                    if active == 0:
                        break

                # Update: plain gradient descent, or heavy-ball momentum; each layer at its own rate.
                if has_mom:
                    for h in range(hidden):
                        for d in range(n_inputs):
                            for j in range(active):
                                v = t_mom[j] * vw1[d, h, j] + gw1[d, h, j]
                                vw1[d, h, j] = v
                                w1[d, h, j] -= t_lrh[j] * v
                        for j in range(active):
                            v = t_mom[j] * vw2[h, j] + gw2[h, j]
                            vw2[h, j] = v
                            w2[h, j] -= t_lro[j] * v
                        if bias:
                            for j in range(active):
                                v = t_mom[j] * vb1[h, j] + gb1[h, j]
                                vb1[h, j] = v
                                b1[h, j] -= t_lrh[j] * v
                    if bias:
                        for j in range(active):
                            v = t_mom[j] * vb2[j] + gb2[j]
                            vb2[j] = v
                            b2[j] -= t_lro[j] * v
                else:
                    for h in range(hidden):
                        for d in range(n_inputs):
                            for j in range(active):
                                w1[d, h, j] -= t_lrh[j] * gw1[d, h, j]
                        if bias:
                            for j in range(active):
                                b1[h, j] -= t_lrh[j] * gb1[h, j]
                                w2[h, j] -= t_lro[j] * gw2[h, j]
                        else:
                            for j in range(active):
                                w2[h, j] -= t_lro[j] * gw2[h, j]
                    if bias:
                        for j in range(active):
                            b2[j] -= t_lro[j] * gb2[j]
                e += 1

    return train_range
