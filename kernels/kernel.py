"""Numba kernels that train many D-H-1 networks at once, compiled per activation, output factors and update code.

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

Updates. The notebooks' kernel (full-batch gradient descent, heavy-ball
momentum) updates inline, as it always has. A call with another optimizer,
weight decay or minibatches takes the general kernel of its activation and
factors (`train_range_for(..., general=True)`): the optimizer is a value per
call, applied by `_update` (compiled once per dtype, one inlined copy of the
loops per optimizer, so each vectorises), its hyperparameters values per
lane (kernels/optimizers.py has the updates); with minibatches each lane's
samples (its own shuffle) are gathered into a small buffer for the forward
and backward pass of the batch. A lane of full-batch gradient descent without
weight decay gets the same bits from both kernels.

Diagnostics. With `diagnostics`, a value of the call, every state's curvature
(the sharpness, the steps above the edge of stability, at the start the NTK's
largest eigenvalue; kernels/curvature.py defines them) is computed by
`_diagnose`, once per state outside the loops over lanes, with
kernels/hessian.py; what is trained does not change.

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
from kernels.fastmath import opaque
from kernels.hessian import edge_threshold, forward as curvature_forward, ntk_top, top_eigenvalue
from kernels.losses import bce_delta, bce_term, mse_delta, mse_delta_linear
from kernels.optimizers import adam_factors, decay_factor, shuffle_into, update, uses_first_moment
from kernels.rules import criterion_holds, is_finite, stops
from kernels.trainability import add_state, add_states, beyond_cap, capped, loss_ratio, scores, tail_start
from kernels.jit import KERNEL_JIT
from kernels.vocab import (A_BETA1, A_BETA2, A_DECAY_BIASES, A_EPS, A_WD, BCE, BY_LOSS, D_EPOCH_SHARPNESS_MAX,
                           D_LOSS_INIT, D_LOSS_MAX, D_LOSS_ROSE, D_LR_LAMBDA0, D_NTK_LAMBDA0, D_SHARPNESS_FINAL,
                           D_SHARPNESS_INIT, D_SHARPNESS_MAX, D_STEPS_ABOVE_EDGE, F_ACCURACY, F_DEAD_HIDDEN_END,
                           F_DEAD_HIDDEN_START, F_FINAL_LOSS, F_FINAL_MSE, F_GRAD_NORM, F_LOSS_RATIO_SUM,
                           F_LOSS_RATIO_TAIL, F_MIN_LOSS, F_SAT_HIDDEN_END, F_SAT_HIDDEN_START, F_SAT_OUTPUT_END,
                           F_SAT_OUTPUT_START, F_TRAINABILITY, I_CONVERGED, I_DIVERGED, I_EPOCH_CONVERGED,
                           I_EPOCH_DIVERGED, I_EPOCHS_RUN, ADAM, ADAMW, GD, NESTEROV, RMSPROP, SIGMOID)

# Rows of a tile's per-lane optimizer state: hyperparameters, the running products beta1^t and beta2^t,
# Adam's factors of the current update (per layer rate: _H hidden, _O output) and AdamW's shrink factors.
(H_BETA1, H_OMB1, H_BETA2, H_OMB2, H_EPS, H_WD, H_DECB, H_B1T, H_B2T, H_KH, H_KO, H_C2, H_SHH,
 H_SHO) = range(14)
N_H = 14


@njit(**KERNEL_JIT)
def _saturation(X, w1, b1, w2, b2, j, s2, act, out, one):
    """Shares of saturated hidden and output pre-activations and of dead hidden units (z <= 0 on every
    sample), slot j.

    X is the scaled input of the kernel. Computes z in the same order as the training loop, so the values
    are bitwise those of the training pass.
    """
    n_samples, n_inputs = X.shape
    hidden = w1.shape[1]
    zero = one - one
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
def _saturation_tile(X, w1, b1, w2, b2, active, s2, act, out, one, sat):
    """`_saturation` of tile slots 0..active-1 at once, the loops over lanes innermost (so they vectorise,
    where `_saturation` walks one lane's strided weights): sat[0, j], sat[1, j], sat[2, j] get slot j's
    shares of saturated hidden and output pre-activations and of dead hidden units. The same operations
    in the same order as `_saturation`, lane by lane, so the same values."""
    n_samples, n_inputs = X.shape
    hidden = w1.shape[1]
    zero = one - one
    n_h = np.zeros(active, np.int64)
    n_o = np.zeros(active, np.int64)
    alive = np.zeros((hidden, active), np.bool_)
    u = np.empty(active, w1.dtype)
    u2 = np.empty(active, w1.dtype)
    for n in range(n_samples):
        for j in range(active):
            u2[j] = zero
        for h in range(hidden):
            for j in range(active):
                u[j] = zero
            for d in range(n_inputs):
                xd = X[n, d]
                if xd != 0:
                    for j in range(active):
                        u[j] += xd * w1[d, h, j]
            for j in range(active):
                z = u[j] + b1[h, j]
                n_h[j] += saturates(z, act)
                alive[h, j] |= not (z <= 0)
                u2[j] += activate(z, act, one) * w2[h, j]
        for j in range(active):
            n_o[j] += saturates(u2[j] * s2 + b2[j], out)
    for j in range(active):
        dead = 0
        for h in range(hidden):
            dead += not alive[h, j]
        sat[0, j] = n_h[j] / (n_samples * hidden)
        sat[1, j] = n_o[j] / n_samples
        sat[2, j] = dead / hidden


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
                 min_loss, score, ediv, W1, B1, W2, B2, out_f, out_i, out_outputs, s2, act, out, bias, sat, have_sat,
                 one):
    """Lane g (tile slot j) stops at state e: write its statistics, outputs and final weights. With
    `have_sat`, sat[:, j] holds its `_saturation` (computed for the tile at once)."""
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
    keep = out_outputs.shape[0] == n_samples  # the caller may keep no outputs: (0, L)
    for n in range(n_samples):
        if keep:
            out_outputs[n, g] = a2[n, j]
        correct += (a2[n, j] > 0.5) == (Y[n] > 0.5)
    out_f[F_ACCURACY, g] = correct / n_samples
    if have_sat:
        sh, so, dead = sat[0, j], sat[1, j], sat[2, j]
    else:
        sh, so, dead = _saturation(X, w1, b1, w2, b2, j, s2, act, out, one)
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
def _zero_params(active, zero, w1, b1, w2, b2):
    """Slots 0..active-1 of a group of parameters (or their gradients) set to `zero`."""
    for j in range(active):
        b2[j] = zero
    for h in range(w1.shape[1]):
        for j in range(active):
            b1[h, j] = zero
            w2[h, j] = zero
        for d in range(w1.shape[0]):
            for j in range(active):
                w1[d, h, j] = zero


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


@njit(**KERNEL_JIT)
def _diagnose(e, active, stop, lane, X, Y, w1, b1, w2, b2, lossv, t_lrh, t_lro, t_mom, t_bce, t_eps, oh, general,
              optimizer, batch_size, s2, rg, act, out, bias, out_d):
    """The curvature and loss diagnostics of state e of the tile's lanes, into out_d (the rows of
    kernels.vocab.DIAG_ROWS, lanes last): the sharpness of the objective the run follows, its maximum and
    the state of it, the states that make an update with lr times the sharpness (or the rate-weighted
    Hessian's largest eigenvalue) above the optimizer's edge threshold, at state 0 the NTK's largest
    eigenvalue, and the losses that give loss_peak_ratio and catapult. kernels/hessian.py computes them
    in float64 from the lane's parameters; stop[j]: state e is lane j's last (it makes no update)."""
    n_samples, n_inputs = X.shape
    hidden = w1.shape[1]
    n1 = n_inputs * hidden
    o_w2 = n1 + hidden if bias else n1
    p = o_w2 + hidden + (1 if bias else 0)
    theta = np.empty(p)
    ones = np.ones(p)
    rates = np.empty(p)
    root = np.empty(p)
    a1 = np.empty((n_samples, hidden))
    d1 = np.empty((n_samples, hidden))
    dd1 = np.empty((n_samples, hidden))
    delta = np.empty(n_samples)
    ddelta = np.empty(n_samples)
    g = np.empty(n_samples)
    s2f, r = np.float64(s2), np.float64(rg)
    for j in range(active):
        gl = lane[j]
        for d in range(n_inputs):
            for h in range(hidden):
                theta[d * hidden + h] = w1[d, h, j]
        for h in range(hidden):
            if bias:
                theta[n1 + h] = b1[h, j]
            theta[o_w2 + h] = w2[h, j]
        if bias:
            theta[o_w2 + hidden] = b2[j]
        lrh, lro = np.float64(t_lrh[j]), np.float64(t_lro[j])
        for i in range(p):
            rates[i] = lrh if i < o_w2 else lro
            root[i] = np.sqrt(rates[i])
        l2 = 0.0
        decay_biases = False
        if general and optimizer != ADAMW:  # AdamW's decay is not in the gradient
            l2 = np.float64(oh[H_WD, j])
            decay_biases = oh[H_DECB, j] != 0
        ok = curvature_forward(X, Y, theta, hidden, bias, act, out, t_bce[j], np.float64(t_eps[j]), s2f, r, a1, d1,
                               dd1, delta, ddelta, g)
        sharp = np.nan
        if ok:
            sharp = top_eigenvalue(X, theta, ones, hidden, bias, s2f, l2, decay_biases, a1, d1, dd1, delta, ddelta)
        threshold = edge_threshold(optimizer, np.float64(t_mom[j])) if batch_size == 0 else np.nan
        loss = np.float64(lossv[j])
        if e == 0:
            out_d[D_SHARPNESS_INIT, gl] = sharp
            out_d[D_SHARPNESS_MAX, gl] = np.nan
            out_d[D_EPOCH_SHARPNESS_MAX, gl] = -1.0
            out_d[D_STEPS_ABOVE_EDGE, gl] = 0.0 if np.isfinite(threshold) else np.nan
            out_d[D_NTK_LAMBDA0, gl] = ntk_top(X, theta, ones, hidden, bias, s2f, r, a1, d1, g) if ok else np.nan
            out_d[D_LR_LAMBDA0, gl] = ntk_top(X, theta, rates, hidden, bias, s2f, r, a1, d1, g) if ok else np.nan
            out_d[D_LOSS_INIT, gl] = loss
            out_d[D_LOSS_MAX, gl] = loss if np.isfinite(loss) else np.inf
            out_d[D_LOSS_ROSE, gl] = 0.0
        out_d[D_SHARPNESS_FINAL, gl] = sharp
        if np.isfinite(sharp) and not (sharp <= out_d[D_SHARPNESS_MAX, gl]):  # the first state of the max
            out_d[D_SHARPNESS_MAX, gl] = sharp
            out_d[D_EPOCH_SHARPNESS_MAX, gl] = e
        if not stop[j] and np.isfinite(threshold):
            edge = lrh * sharp
            if lrh != lro:
                edge = np.nan
                if ok:
                    edge = top_eigenvalue(X, theta, root, hidden, bias, s2f, l2, decay_biases, a1, d1, dd1, delta,
                                          ddelta)
            if edge > threshold:
                out_d[D_STEPS_ABOVE_EDGE, gl] += 1.0
        if not np.isfinite(loss):
            out_d[D_LOSS_MAX, gl] = np.inf
        elif loss > out_d[D_LOSS_MAX, gl]:
            out_d[D_LOSS_MAX, gl] = loss
        if e > 0 and loss > out_d[D_LOSS_INIT, gl]:
            out_d[D_LOSS_ROSE, gl] = 1.0


_KERNELS = {}
_BUILD = threading.Lock()


@njit(**KERNEL_JIT)
def _times(x, factor, factors):
    """x times the factor of the scaling or the reduction, or x itself without `factors`."""
    return x * factor if factors else x


@njit(**KERNEL_JIT)
def _load_optimizer(j, g, one, opt_args, t_lrh, t_lro, oh, sw1, sb1, sw2, sb2):
    """Tile slot j (lane g): its optimizer's hyperparameters and derived factors, beta^t = 1, s = 0."""
    zero = one - one
    beta1, beta2, wd = opt_args[A_BETA1, g], opt_args[A_BETA2, g], opt_args[A_WD, g]
    oh[H_BETA1, j] = beta1
    oh[H_OMB1, j] = one - beta1
    oh[H_BETA2, j] = beta2
    oh[H_OMB2, j] = one - beta2
    oh[H_EPS, j] = opt_args[A_EPS, g]
    oh[H_WD, j] = wd
    oh[H_DECB, j] = opt_args[A_DECAY_BIASES, g]
    oh[H_B1T, j] = one
    oh[H_B2T, j] = one
    oh[H_SHH, j] = decay_factor(t_lrh[j], wd, one)
    oh[H_SHO, j] = decay_factor(t_lro[j], wd, one)
    for h in range(sw1.shape[1]):
        for d in range(sw1.shape[0]):
            sw1[d, h, j] = zero
        sb1[h, j] = zero
        sw2[h, j] = zero
    sb2[j] = zero


@njit(**KERNEL_JIT)
def _update(opt, active, bias, one, w1, b1, w2, b2, gw1, gb1, gw2, gb2, vw1, vb1, vw2, vb2, sw1, sb1, sw2, sb2,
            t_lrh, t_lro, t_mom, oh):
    """One update of every parameter of the tile's lanes by optimizer `opt` (kernels/optimizers.py), each
    layer at its own rate; weights decay where weight_decay != 0, biases also with decay_biases.

    The optimizer is chosen here, once per update, and each branch inlines `_update_with` with its code as
    a constant, so the loops over lanes hold one optimizer's arithmetic (and vectorise). Compiled once per
    dtype, not per kernel: every kernel calls it."""
    if opt == GD:
        _update_with(GD, active, bias, one, w1, b1, w2, b2, gw1, gb1, gw2, gb2, vw1, vb1, vw2, vb2,
                     sw1, sb1, sw2, sb2, t_lrh, t_lro, t_mom, oh)
    elif opt == NESTEROV:
        _update_with(NESTEROV, active, bias, one, w1, b1, w2, b2, gw1, gb1, gw2, gb2, vw1, vb1, vw2, vb2,
                     sw1, sb1, sw2, sb2, t_lrh, t_lro, t_mom, oh)
    elif opt == ADAM:
        _update_with(ADAM, active, bias, one, w1, b1, w2, b2, gw1, gb1, gw2, gb2, vw1, vb1, vw2, vb2,
                     sw1, sb1, sw2, sb2, t_lrh, t_lro, t_mom, oh)
    elif opt == ADAMW:
        _update_with(ADAMW, active, bias, one, w1, b1, w2, b2, gw1, gb1, gw2, gb2, vw1, vb1, vw2, vb2,
                     sw1, sb1, sw2, sb2, t_lrh, t_lro, t_mom, oh)
    else:
        _update_with(RMSPROP, active, bias, one, w1, b1, w2, b2, gw1, gb1, gw2, gb2, vw1, vb1, vw2, vb2,
                     sw1, sb1, sw2, sb2, t_lrh, t_lro, t_mom, oh)


@njit(inline="always", **KERNEL_JIT)
def _update_with(opt, active, bias, one, w1, b1, w2, b2, gw1, gb1, gw2, gb2, vw1, vb1, vw2, vb2, sw1, sb1, sw2, sb2,
                 t_lrh, t_lro, t_mom, oh):
    """`_update` for the optimizer code `opt`, a constant where it is inlined."""
    n_inputs, hidden = w1.shape[0], w1.shape[1]
    if uses_first_moment(opt):
        for j in range(active):
            b1t = oh[H_B1T, j] * oh[H_BETA1, j]
            b2t = oh[H_B2T, j] * oh[H_BETA2, j]
            oh[H_B1T, j] = b1t
            oh[H_B2T, j] = b2t
            kh, c2 = adam_factors(t_lrh[j], b1t, b2t, one)
            ko, c2 = adam_factors(t_lro[j], b1t, b2t, one)
            oh[H_KH, j] = kh
            oh[H_KO, j] = ko
            oh[H_C2, j] = c2
    for h in range(hidden):
        for d in range(n_inputs):
            for j in range(active):
                w1[d, h, j], vw1[d, h, j], sw1[d, h, j] = update(
                    w1[d, h, j], gw1[d, h, j], vw1[d, h, j], sw1[d, h, j], opt, oh[H_WD, j] != 0, t_lrh[j], t_mom[j],
                    oh[H_BETA1, j], oh[H_OMB1, j], oh[H_BETA2, j], oh[H_OMB2, j], oh[H_EPS, j], oh[H_WD, j],
                    oh[H_SHH, j], oh[H_KH, j], oh[H_C2, j])
        for j in range(active):
            w2[h, j], vw2[h, j], sw2[h, j] = update(
                w2[h, j], gw2[h, j], vw2[h, j], sw2[h, j], opt, oh[H_WD, j] != 0, t_lro[j], t_mom[j],
                oh[H_BETA1, j], oh[H_OMB1, j], oh[H_BETA2, j], oh[H_OMB2, j], oh[H_EPS, j], oh[H_WD, j],
                oh[H_SHO, j], oh[H_KO, j], oh[H_C2, j])
        if bias:
            for j in range(active):
                b1[h, j], vb1[h, j], sb1[h, j] = update(
                    b1[h, j], gb1[h, j], vb1[h, j], sb1[h, j], opt, oh[H_WD, j] != 0 and oh[H_DECB, j] != 0,
                    t_lrh[j], t_mom[j], oh[H_BETA1, j], oh[H_OMB1, j], oh[H_BETA2, j], oh[H_OMB2, j], oh[H_EPS, j],
                    oh[H_WD, j], oh[H_SHH, j], oh[H_KH, j], oh[H_C2, j])
    if bias:
        for j in range(active):
            b2[j], vb2[j], sb2[j] = update(
                b2[j], gb2[j], vb2[j], sb2[j], opt, oh[H_WD, j] != 0 and oh[H_DECB, j] != 0, t_lro[j], t_mom[j],
                oh[H_BETA1, j], oh[H_OMB1, j], oh[H_BETA2, j], oh[H_OMB2, j], oh[H_EPS, j], oh[H_WD, j],
                oh[H_SHO, j], oh[H_KO, j], oh[H_C2, j])


@njit(**KERNEL_JIT)
def _move_optimizer(src, dst, oh, t_seed):
    """Compaction: the optimizer state and the shuffle seed of tile slot src move to slot dst."""
    for i in range(oh.shape[0]):
        oh[i, dst] = oh[i, src]
    t_seed[dst] = t_seed[src]


def train_range_for(activation, factors, general=False):
    """The kernel of an activation code (kernels.vocab.ACTIVATIONS), of whether the output's sum and
    delta have factors (s2 != 1 or the mean reduction), and of whether it is general: the optimizers of
    kernels/optimizers.py, weight decay, minibatches. Without, it is the notebooks' full-batch gradient
    descent with heavy-ball momentum, nothing else compiled in. Built once per process; Numba compiles
    it per dtype at its first call, or loads it from its cache."""
    key = (int(activation), bool(factors), bool(general))
    kernel = _KERNELS.get(key)
    if kernel is None:
        with _BUILD:
            kernel = _KERNELS.get(key)
            if kernel is None:
                kernel = _KERNELS[key] = _build(*key)
    return kernel


def _build(act, factors, general):
    ACT = act
    FACTORS = factors
    GENERAL = general

    @njit(**KERNEL_JIT)
    def train_range(X, Y, W1, B1, W2, B2, lr_hidden, lr_output, loss_code, bce_eps, momentum,
                    crit_code, margin, tol, early_stop, opt_args, seeds, epochs, checkpoints, model, out, bias,
                    optimizer, batch_size, shuffle, diagnostics, lo, hi, tile, out_f, out_i, out_outputs, out_ck, out_d,
                    out_ck_sharp):
        """Train lanes lo..hi-1 in place; write their statistics.

        X (N, D) (the inputs times s1), Y (N,), W1 (D, H, L), B1 (H, L), W2 (H, L), B2 (L,) share one
        float dtype. Per-lane arrays (L,): lr_hidden, lr_output, bce_eps, momentum, margin, tol in
        that dtype; loss_code and crit_code int8 (indices into kernels.vocab.LOSSES, CRITERIA);
        early_stop bool. opt_args (5, L) in the dtype: the rows of kernels.vocab.OPT_ARGS; seeds (L,)
        uint64: the runs' seeds, which draw the shuffles. checkpoints: sorted int64 states. model: (s2, r)
        in the dtype, the output scale and the reduction's factor on the gradient (1 or 1/N); out: the output's activation
        code; bias: whether the biases are trained (without, they are zero and stay so). optimizer: a code
        of kernels.vocab.OPTIMIZERS; batch_size: samples per update (0: the whole data set); shuffle: each
        epoch's samples in the run's shuffled order (kernels/optimizers.py's shuffle_into); diagnostics:
        compute the curvature diagnostics of every state (`_diagnose`: a call per state, outside the loops
        over lanes, so a value and not a compiled variant; every kernel has it).
        Outputs (float64 and int64, lanes last): out_f (len(FLOAT_STATS), L), out_i (len(INT_STATS), L),
        out_outputs (N, L) or (0, L) to keep none, out_ck (K, L) (pre-filled with NaN by the caller); with diagnostics out_d
        (len(DIAG_ROWS), L) and out_ck_sharp (K, L), the sharpness at the checkpoints (NaN-filled), else
        arrays the kernel does not touch.
        """
        tail_from = tail_start(epochs)
        n_samples, n_inputs = X.shape
        hidden = W1.shape[1]
        n_ck = checkpoints.shape[0]
        dt = W1.dtype
        one = opaque(np.ones(1, dt)[0])  # 1, unseen by LLVM: see kernels/fastmath.py
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
        sat = np.empty((3, tile), np.float64)  # shares of saturated and dead units (_saturation_tile)
        # The optimizers' state (second moments, per-lane hyperparameters) and the minibatches' buffers.
        gt = tile if GENERAL else 0
        sw1 = np.zeros((n_inputs, hidden, gt), dt)
        sb1 = np.zeros((hidden, gt), dt)
        sw2 = np.zeros((hidden, gt), dt)
        sb2 = np.zeros(gt, dt)
        oh = np.zeros((N_H, gt), dt)
        t_seed = np.zeros(gt, np.uint64)
        per_batch = batch_size if batch_size > 0 else n_samples
        n_batches = -(-n_samples // per_batch)
        perm = np.zeros((gt if shuffle else 0, n_samples), np.int64)
        xb = np.empty((n_inputs, gt), dt)
        yb = np.empty(gt, dt)
        batch_factor = np.empty(n_batches, dt)  # the mean's 1 / (samples in batch i); 1 with the sum
        for i in range(n_batches):
            batch_factor[i] = one / min(per_batch, n_samples - i * per_batch) if rg != one else rg

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
                if GENERAL:
                    t_seed[j] = seeds[g]
                    _load_optimizer(j, g, one, opt_args, t_lrh, t_lro, oh, sw1, sb1, sw2, sb2)
            _saturation_tile(X, w1, b1, w2, b2, active, s2, ACT, out, one, sat)
            for j in range(active):
                out_f[F_SAT_HIDDEN_START, lane[j]] = sat[0, j]
                out_f[F_SAT_OUTPUT_START, lane[j]] = sat[1, j]
                out_f[F_DEAD_HIDDEN_START, lane[j]] = sat[2, j]

            next_ck = 0
            e = 0
            while True:
                # Forward and backward pass of state e, summed over samples.
                for j in range(active):
                    sse[j] = zero
                    maxerr[j] = zero
                _zero_params(active, zero, gw1, gb1, gw2, gb2)
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
                if e == 0:
                    for j in range(active):
                        score[0, j] = lossv[j]
                in_tail = e >= tail_from
                # Branch-free (selects, every store unconditional), so that the loop over lanes vectorises.
                n_stop = 0
                for j in range(active):
                    L = lossv[j]
                    finite = is_finite(L)
                    ok = criterion_holds(L, maxerr[j], t_crit_loss[j], t_tol[j], t_margin[j])
                    holds[j] = ok
                    m = min_loss[j]
                    min_loss[j] = L if L < m else m
                    f = first[j]
                    first[j] = e if ok & (f < 0) else f
                    ratio = loss_ratio(L, score[0, j])
                    d = ediv[j]
                    ediv[j] = e if beyond_cap(ratio) & (d < 0) else d
                    score[1, j], score[2, j], score[3, j] = add_state(score[1, j], score[2, j], score[3, j],
                                                                      capped(ratio), in_tail)
                    s = stops(finite, ok, t_early[j], e, epochs)
                    stop[j] = s
                    n_stop += s
                if diagnostics:
                    _diagnose(e, active, stop, lane, X, Y, w1, b1, w2, b2, lossv, t_lrh, t_lro, t_mom, t_bce, t_eps,
                              oh, GENERAL, optimizer, batch_size, s2, rg, ACT, out, bias, out_d)
                while next_ck < n_ck and checkpoints[next_ck] == e:
                    for j in range(active):
                        out_ck[next_ck, lane[j]] = lossv[j]
                        if diagnostics:
                            out_ck_sharp[next_ck, lane[j]] = out_d[D_SHARPNESS_FINAL, lane[j]]
                    next_ck += 1

                if n_stop > 0:  # retire the lanes that stop; move the others down to the front of the tile
                    # Their saturation at the end: for the whole tile at once when a quarter of it stops
                    # (the vector loops cost about what a few lanes' scalar ones do), else lane by lane.
                    tile_sat = 4 * n_stop >= active
                    if tile_sat:
                        _saturation_tile(X, w1, b1, w2, b2, active, s2, ACT, out, one, sat)
                    kept = 0
                    for j in range(active):
                        if stop[j]:
                            _retire_lane(j, lane[j], e, epochs, X, Y, n_dt, w1, b1, w2, b2, gw1, gb1, gw2, gb2, a2,
                                         lossv, sse, first, holds, min_loss, score, ediv, W1, B1, W2, B2, out_f,
                                         out_i, out_outputs, s2, ACT, out, bias, sat, tile_sat, one)
                            continue
                        if kept != j:
                            _move_params(j, kept, w1, b1, w2, b2)
                            _move_params(j, kept, vw1, vb1, vw2, vb2)
                            _move_params(j, kept, gw1, gb1, gw2, gb2)
                            _move_hyper(j, kept, t_lrh, t_lro, t_eps, t_mom, t_margin, t_tol, t_bce, t_crit_loss,
                                        t_early, lane, first, min_loss, score, ediv)
                            if GENERAL:
                                _move_params(j, kept, sw1, sb1, sw2, sb2)
                                _move_optimizer(j, kept, oh, t_seed)
                        kept += 1
                    active = kept
                    if active == 0:
                        break

                if GENERAL:  # the optimizers of kernels/optimizers.py: an update per minibatch, or per epoch
                    # With minibatches, batch i is samples start.. of the epoch's order (dataset order, or each
                    # lane's shuffle), per lane gathered into xb, yb: forward, backward, one update. The full batch
                    # is one batch whose gradient is that of the pass above.
                    if shuffle:
                        for j in range(active):
                            shuffle_into(perm[j], t_seed[j], e)
                    for i in range(n_batches):
                        if batch_size > 0:
                            start = i * per_batch
                            rb = batch_factor[i]
                            s2rb = s2 * rb
                            _zero_params(active, zero, gw1, gb1, gw2, gb2)
                            for pos in range(start, min(start + per_batch, n_samples)):
                                for j in range(active):
                                    n = perm[j, pos] if shuffle else pos
                                    yb[j] = Y[n]
                                    for d in range(n_inputs):
                                        xb[d, j] = X[n, d]
                                for j in range(active):
                                    z2[j] = zero
                                for h in range(hidden):
                                    for j in range(active):
                                        a1[h, j] = zero
                                    for d in range(n_inputs):
                                        for j in range(active):
                                            a1[h, j] += xb[d, j] * w1[d, h, j]
                                    for j in range(active):
                                        a = activate(a1[h, j] + b1[h, j], ACT, one)
                                        a1[h, j] = a
                                        z2[j] += a * w2[h, j]
                                for j in range(active):
                                    a = pre_activation(z2[j], b2[j], s2, FACTORS, True)
                                    if out_sigmoid:
                                        a = activate(a, SIGMOID, one)
                                        dz = (bce_delta(a, yb[j], t_eps[j], one) if t_bce[j]
                                              else mse_delta(a, yb[j], one))
                                    else:
                                        dz = mse_delta_linear(a, yb[j])
                                    gb2[j] += _times(dz, rb, FACTORS)
                                    d2[j] = _times(dz, s2rb, FACTORS)
                                for h in range(hidden):
                                    for j in range(active):
                                        a = a1[h, j]
                                        dz = d2[j]
                                        gw2[h, j] += a * dz
                                        dz1 = (dz * w2[h, j]) * slope(a, ACT, one)
                                        gb1[h, j] += dz1
                                        a1[h, j] = dz1
                                    for d in range(n_inputs):
                                        for j in range(active):
                                            gw1[d, h, j] += xb[d, j] * a1[h, j]
                        _update(optimizer, active, bias, one, w1, b1, w2, b2, gw1, gb1, gw2, gb2, vw1, vb1, vw2, vb2,
                                sw1, sb1, sw2, sb2, t_lrh, t_lro, t_mom, oh)
                # Else the notebooks' update: plain gradient descent, or heavy-ball momentum; each layer at its
                # own rate.
                elif has_mom:
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
