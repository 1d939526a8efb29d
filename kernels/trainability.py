"""The trainability score of a run, accumulated state by state (Sohl-Dickstein 2024).

Over the losses L_t of the states t = 0..E of a run (E = epochs), each
normalised by the initial loss, r_t = L_t / L_0 in float64, and a value that
is not finite (NaN included) or above RATIO_CAP replaced by RATIO_CAP:

    loss_ratio_sum  = sum_t r_t
    loss_ratio_tail = mean of r_t over the last TAIL_STATES states (all of them when E + 1 < TAIL_STATES)
    trainability    = -loss_ratio_sum       if loss_ratio_tail < 1   (trained: negative)
                      sum_t 1 / r_t         otherwise                (diverged or stuck: positive)
    epoch_diverged  = the first t whose loss is not finite or above RATIO_CAP times L_0 (-1: none)

A run that stops before E (diverged: its loss is no longer finite; or early
stop) holds its last ratio for the states it did not reach: RATIO_CAP after
a divergence. The sums run over t in order, in float64 whatever the working
dtype, so the CPU and GPU kernels and the plain NumPy computation in
`kernels.reference.trainability_scores` add the same numbers in the same
order. These functions are shared by both kernels (numba-cuda compiles an
`@njit` function called from a kernel as a device function).
"""
import numpy as np
from numba import njit

from kernels.jit import JIT
from kernels.vocab import RATIO_CAP, TAIL_STATES


@njit(**JIT)
def loss_ratio(loss, initial):
    """L_t / L_0 in float64, before the cap."""
    return np.float64(loss) / np.float64(initial)


@njit(**JIT)
def beyond_cap(ratio):
    """The ratio is replaced by the cap: not finite, or above it (NaN compares false)."""
    return not (ratio <= RATIO_CAP)


@njit(**JIT)
def capped(ratio):
    """The ratio as the score counts it: RATIO_CAP when `beyond_cap`."""
    return RATIO_CAP if beyond_cap(ratio) else ratio


@njit(**JIT)
def tail_start(epochs):
    """The first state of the tail window."""
    return max(0, epochs + 1 - TAIL_STATES)


@njit(**JIT)
def add_state(ratio_sum, tail_sum, reciprocal_sum, ratio, in_tail):
    """The three sums after adding `ratio` for one state, `in_tail` if it is in the tail window. Selects,
    no branches: the CPU kernel's loop over lanes that calls it once per epoch vectorises."""
    return ratio_sum + ratio, (tail_sum + ratio) if in_tail else tail_sum, reciprocal_sum + 1.0 / ratio


@njit(**JIT)
def add_states(ratio_sum, tail_sum, reciprocal_sum, ratio, first, last, tail_from):
    """The three sums after adding `ratio` for each state first..last (none if last < first)."""
    for t in range(first, last + 1):
        ratio_sum, tail_sum, reciprocal_sum = add_state(ratio_sum, tail_sum, reciprocal_sum, ratio, t >= tail_from)
    return ratio_sum, tail_sum, reciprocal_sum


@njit(**JIT)
def scores(ratio_sum, tail_sum, reciprocal_sum, epochs):
    """(loss_ratio_tail, trainability) of a run's sums over its states 0..epochs."""
    tail = tail_sum / min(TAIL_STATES, epochs + 1)
    return tail, (-ratio_sum if tail < 1 else reciprocal_sum)
