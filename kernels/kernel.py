"""Numba kernels that train many D-H-1 sigmoid networks at once.

Networks live in lanes: parameters are shaped (..., lanes) with the lane axis
innermost and contiguous, so the loops over lanes compile to SIMD code (with
the vectorisable exp of `kernels.fastmath`). Each lane may have its own
learning rate, loss, BCE eps, momentum, criterion, margin, tol and early-stop
flag. The math is that of `kernels.reference` (see its docstring for the
definitions of every statistic); the tests compare the two lane by lane. The
losses (`kernels.losses`) and the scalar rules -- criterion, divergence, stop,
saturation (`kernels.rules`) -- are shared with the GPU kernel
(`kernels.cuda_kernel`), which calls the same functions.

Lanes are trained in tiles: a tile's parameters are copied into small local
buffers that stay in cache, and when lanes of a tile stop (early stop or
divergence) the tile is compacted so the remaining lanes run on a shorter
vector loop: a batch whose lanes stop early gets faster.

Every lane's arithmetic is independent of the other lanes and of where the
lane sits in a tile, so a lane's results are bit-identical whatever the batch
it is trained in, the tile size or the number of threads.
"""
import numpy as np
from numba import njit

from kernels.fastmath import sigmoid
from kernels.losses import BCE, bce_delta, bce_term, mse_delta
from kernels.rules import criterion_holds, is_finite, saturated, stops

# Rows of the float statistics array.
F_FINAL_LOSS, F_MIN_LOSS, F_FINAL_MSE, F_ACCURACY = 0, 1, 2, 3
F_SAT_HIDDEN_START, F_SAT_OUTPUT_START, F_SAT_HIDDEN_END, F_SAT_OUTPUT_END = 4, 5, 6, 7
F_GRAD_NORM = 8
N_FLOAT_STATS = 9
# Rows of the integer statistics array.
I_EPOCH_CONVERGED, I_CONVERGED, I_EPOCHS_RUN, I_DIVERGED = 0, 1, 2, 3
N_INT_STATS = 4

_KERNEL_OPTIONS = dict(nogil=True, cache=True, error_model="numpy")


@njit(**_KERNEL_OPTIONS)
def _saturation(X, w1, b1, w2, b2, j):
    """Fractions of hidden and output pre-activations with |z| > 4, slot j.

    Computes z in the same order as the training loop, so the values are
    bitwise those of the training pass.
    """
    n_samples, n_inputs = X.shape
    hidden = w1.shape[1]
    zero = b2[j] - b2[j]
    sat_h = 0
    sat_o = 0
    for n in range(n_samples):
        z2 = zero
        for h in range(hidden):
            z = zero
            for d in range(n_inputs):
                xd = X[n, d]
                if xd != 0:
                    z += xd * w1[d, h, j]
            z = z + b1[h, j]
            if saturated(z):
                sat_h += 1
            z2 += sigmoid(z) * w2[h, j]
        z2 = z2 + b2[j]
        if saturated(z2):
            sat_o += 1
    return sat_h / (n_samples * hidden), sat_o / n_samples


@njit(**_KERNEL_OPTIONS)
def train_range(X, Y, W1, B1, W2, B2, lr, loss_code, bce_eps, momentum,
                crit_code, margin, tol, early_stop, epochs, checkpoints,
                lo, hi, tile, out_f, out_i, out_outputs, out_ck):
    """Train lanes lo..hi-1 in place; write their statistics.

    X (N, D), Y (N,), W1 (D, H, L), B1 (H, L), W2 (H, L), B2 (L,) share one
    float dtype. Per-lane arrays (L,): lr, bce_eps, momentum, margin, tol in
    that dtype; loss_code (0 mse, 1 bce), crit_code (0 margin, 1 loss) int8;
    early_stop bool. checkpoints: sorted int64 states. Outputs (float64 and
    int64, lanes last): out_f (9, L), out_i (4, L), out_outputs (N, L),
    out_ck (K, L) (pre-filled with NaN by the caller).
    """
    n_samples, n_inputs = X.shape
    hidden = W1.shape[1]
    n_ck = checkpoints.shape[0]
    dt = W1.dtype
    one = np.ones(1, dt)[0]
    zero = one - one
    n_dt = one * n_samples

    nz_count = np.zeros(n_samples, np.int64)
    nz_index = np.zeros((n_samples, max(2, n_inputs)), np.int64)
    for n in range(n_samples):
        for d in range(n_inputs):
            if X[n, d] != 0:
                nz_index[n, nz_count[n]] = d
                nz_count[n] += 1

    w1 = np.empty((n_inputs, hidden, tile), dt)
    b1 = np.empty((hidden, tile), dt)
    w2 = np.empty((hidden, tile), dt)
    b2 = np.empty(tile, dt)
    vw1 = np.zeros((n_inputs, hidden, tile), dt)
    vb1 = np.zeros((hidden, tile), dt)
    vw2 = np.zeros((hidden, tile), dt)
    vb2 = np.zeros(tile, dt)
    gw1 = np.empty((n_inputs, hidden, tile), dt)
    gb1 = np.empty((hidden, tile), dt)
    gw2 = np.empty((hidden, tile), dt)
    gb2 = np.empty(tile, dt)
    a1 = np.empty((hidden, tile), dt)
    z2 = np.empty(tile, dt)
    d2 = np.empty(tile, dt)
    a2 = np.empty((n_samples, tile), dt)
    sse = np.empty(tile, dt)
    maxerr = np.empty(tile, dt)
    lossv = np.empty(tile, dt)
    min_loss = np.empty(tile, dt)
    t_lr = np.empty(tile, dt)
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

    for t0 in range(lo, hi, tile):
        active = min(tile, hi - t0)
        has_bce = False
        has_mom = False
        for j in range(active):
            g = t0 + j
            lane[j] = g
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
            t_lr[j] = lr[g]
            t_eps[j] = bce_eps[g]
            t_mom[j] = momentum[g]
            t_margin[j] = margin[g]
            t_tol[j] = tol[g]
            t_bce[j] = loss_code[g] == BCE
            t_crit_loss[j] = crit_code[g] == 1
            t_early[j] = early_stop[g]
            has_bce |= t_bce[j]
            has_mom |= momentum[g] != 0
            first[j] = -1
            min_loss[j] = np.inf
            sh, so = _saturation(X, w1, b1, w2, b2, j)
            out_f[F_SAT_HIDDEN_START, g] = sh
            out_f[F_SAT_OUTPUT_START, g] = so

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
                # Hidden layer and the output pre-activation, summed over h in order.
                # z = sum of x_d w_d over the non-zero inputs, then + b: samples with
                # up to two non-zero inputs (all of XOR's) take one fused loop.
                for j in range(active):
                    z2[j] = zero
                for h in range(hidden):
                    if k == 0:
                        for j in range(active):
                            a = sigmoid(b1[h, j])
                            a1[h, j] = a
                            z2[j] += a * w2[h, j]
                    elif k == 1:
                        for j in range(active):
                            a = sigmoid(x0 * w1[d0, h, j] + b1[h, j])
                            a1[h, j] = a
                            z2[j] += a * w2[h, j]
                    elif k == 2:
                        for j in range(active):
                            a = sigmoid((x0 * w1[d0, h, j] + x1 * w1[d1, h, j]) + b1[h, j])
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
                            a = sigmoid(a1[h, j] + b1[h, j])
                            a1[h, j] = a
                            z2[j] += a * w2[h, j]
                # Output, loss terms and the output delta.
                if has_bce:
                    for j in range(active):
                        a = sigmoid(z2[j] + b2[j])
                        a2[n, j] = a
                        err = abs(a - yn)
                        sse[j] += err * err
                        maxerr[j] = err if err > maxerr[j] else maxerr[j]
                        g = bce_delta(a, yn, t_eps[j], one) if t_bce[j] else mse_delta(a, yn, one)
                        d2[j] = g
                        gb2[j] += g
                else:
                    for j in range(active):
                        a = sigmoid(z2[j] + b2[j])
                        a2[n, j] = a
                        err = abs(a - yn)
                        sse[j] += err * err
                        maxerr[j] = err if err > maxerr[j] else maxerr[j]
                        g = mse_delta(a, yn, one)
                        d2[j] = g
                        gb2[j] += g
                # Backward through the hidden layer.
                for h in range(hidden):
                    if k == 0:
                        for j in range(active):
                            a = a1[h, j]
                            g = d2[j]
                            gw2[h, j] += a * g
                            gb1[h, j] += (g * w2[h, j]) * (a * (one - a))
                    elif k == 1:
                        for j in range(active):
                            a = a1[h, j]
                            g = d2[j]
                            gw2[h, j] += a * g
                            g1 = (g * w2[h, j]) * (a * (one - a))
                            gb1[h, j] += g1
                            gw1[d0, h, j] += x0 * g1
                    elif k == 2:
                        for j in range(active):
                            a = a1[h, j]
                            g = d2[j]
                            gw2[h, j] += a * g
                            g1 = (g * w2[h, j]) * (a * (one - a))
                            gb1[h, j] += g1
                            gw1[d0, h, j] += x0 * g1
                            gw1[d1, h, j] += x1 * g1
                    else:
                        for j in range(active):
                            a = a1[h, j]
                            g = d2[j]
                            gw2[h, j] += a * g
                            g1 = (g * w2[h, j]) * (a * (one - a))
                            gb1[h, j] += g1
                            a1[h, j] = g1
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
                s = stops(finite, ok, t_early[j], e, epochs)
                stop[j] = s
                n_stop += s
            while next_ck < n_ck and checkpoints[next_ck] == e:
                for j in range(active):
                    out_ck[next_ck, lane[j]] = lossv[j]
                next_ck += 1

            if n_stop > 0:
                kept = 0
                for j in range(active):
                    if stop[j]:
                        g = lane[j]
                        L = lossv[j]
                        diverged = not is_finite(L)
                        out_i[I_EPOCH_CONVERGED, g] = first[j]
                        out_i[I_CONVERGED, g] = holds[j]
                        out_i[I_EPOCHS_RUN, g] = e
                        out_i[I_DIVERGED, g] = diverged
                        out_f[F_FINAL_LOSS, g] = L
                        out_f[F_MIN_LOSS, g] = min_loss[j]
                        out_f[F_FINAL_MSE, g] = sse[j] / n_dt
                        correct = 0
                        for n in range(n_samples):
                            out_outputs[n, g] = a2[n, j]
                            correct += (a2[n, j] > 0.5) == (Y[n] > 0.5)
                        out_f[F_ACCURACY, g] = correct / n_samples
                        sh, so = _saturation(X, w1, b1, w2, b2, j)
                        out_f[F_SAT_HIDDEN_END, g] = sh
                        out_f[F_SAT_OUTPUT_END, g] = so
                        gn = float(gb2[j]) ** 2
                        for h in range(hidden):
                            gn += float(gb1[h, j]) ** 2 + float(gw2[h, j]) ** 2
                            for d in range(n_inputs):
                                gn += float(gw1[d, h, j]) ** 2
                        out_f[F_GRAD_NORM, g] = np.sqrt(gn)
                        for h in range(hidden):
                            for d in range(n_inputs):
                                W1[d, h, g] = w1[d, h, j]
                            B1[h, g] = b1[h, j]
                            W2[h, g] = w2[h, j]
                        B2[g] = b2[j]
                    else:
                        if kept != j:
                            for h in range(hidden):
                                for d in range(n_inputs):
                                    w1[d, h, kept] = w1[d, h, j]
                                    vw1[d, h, kept] = vw1[d, h, j]
                                    gw1[d, h, kept] = gw1[d, h, j]
                                b1[h, kept] = b1[h, j]
                                w2[h, kept] = w2[h, j]
                                vb1[h, kept] = vb1[h, j]
                                vw2[h, kept] = vw2[h, j]
                                gb1[h, kept] = gb1[h, j]
                                gw2[h, kept] = gw2[h, j]
                            b2[kept] = b2[j]
                            vb2[kept] = vb2[j]
                            gb2[kept] = gb2[j]
                            t_lr[kept] = t_lr[j]
                            t_eps[kept] = t_eps[j]
                            t_mom[kept] = t_mom[j]
                            t_margin[kept] = t_margin[j]
                            t_tol[kept] = t_tol[j]
                            t_bce[kept] = t_bce[j]
                            t_crit_loss[kept] = t_crit_loss[j]
                            t_early[kept] = t_early[j]
                            lane[kept] = lane[j]
                            first[kept] = first[j]
                            min_loss[kept] = min_loss[j]
                        kept += 1
                active = kept
                if active == 0:
                    break

            # Update: plain gradient descent, or heavy-ball momentum.
            if has_mom:
                for h in range(hidden):
                    for d in range(n_inputs):
                        for j in range(active):
                            v = t_mom[j] * vw1[d, h, j] + gw1[d, h, j]
                            vw1[d, h, j] = v
                            w1[d, h, j] -= t_lr[j] * v
                    for j in range(active):
                        v = t_mom[j] * vb1[h, j] + gb1[h, j]
                        vb1[h, j] = v
                        b1[h, j] -= t_lr[j] * v
                        v = t_mom[j] * vw2[h, j] + gw2[h, j]
                        vw2[h, j] = v
                        w2[h, j] -= t_lr[j] * v
                for j in range(active):
                    v = t_mom[j] * vb2[j] + gb2[j]
                    vb2[j] = v
                    b2[j] -= t_lr[j] * v
            else:
                for h in range(hidden):
                    for d in range(n_inputs):
                        for j in range(active):
                            w1[d, h, j] -= t_lr[j] * gw1[d, h, j]
                    for j in range(active):
                        b1[h, j] -= t_lr[j] * gb1[h, j]
                        w2[h, j] -= t_lr[j] * gw2[h, j]
                for j in range(active):
                    b2[j] -= t_lr[j] * gb2[j]
            e += 1
