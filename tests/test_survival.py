"""`sweep.survival`: each statistic against a direct computation on synthetic event data.

The direct computations here are written from the textbook formulas, in exact fractions, independently
of the module: Kaplan-Meier's product-limit, the order-statistic median and its binomial ranks, the
exponential Greenwood band, and E(t) = sum_{s<t} P(T > s) / P(T <= t) summed over every integer s.
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sweep import survival
from sweep.survival import (binomial_ranks, fraction_solved, fraction_solved_interval, median_epochs, one_horizon,
                            restart_curve, restart_epochs, restart_interval)


# --------------------------------------------------------------------------- direct computations

def km(time, solved):
    """Kaplan-Meier from its textbook formula, exactly: {t_j: F(t_j)} at the distinct solve times.
    n_j: runs with time >= t_j (a run censored at t_j is still at risk there); d_j: runs solved at t_j."""
    out, survive = {}, Fraction(1)
    for t in sorted(set(float(x) for x, s in zip(time, solved) if s)):
        n = sum(1 for x in time if x >= t)
        d = sum(1 for x, s in zip(time, solved) if s and x == t)
        survive *= Fraction(n - d, n)
        out[t] = 1 - survive
    return out


def F_at(curve, t):
    """The right-continuous step function of km() at t."""
    return max((f for s, f in curve.items() if s <= t), default=Fraction(0))


def expected_direct(curve, t):
    """E(t) = sum_{s=0}^{t-1} P(T > s) / P(T <= t), every integer s, exactly; None for infinity."""
    solved_by = F_at(curve, t)
    if solved_by == 0:
        return None
    return sum((1 - F_at(curve, s) for s in range(int(t))), Fraction(0)) / solved_by


def ranks_direct(n, confidence=0.95):
    """The largest l with P(B <= l - 1) <= (1 - confidence)/2, B ~ Binomial(n, 1/2), by summing C(n, k)."""
    l, tail = 0, Fraction(0)
    while l < n:
        tail += Fraction(math.comb(n, l), 2 ** n)  # P(B <= l)
        if tail > Fraction(1 - confidence) / 2 * (1 + Fraction(1, 10 ** 12)):
            break
        l += 1
    return l


def loglog_band(time, solved, z=1.959963984540054):
    """The exponential Greenwood band of S at each solve time: (t, S_low, S_high), from its formula
    S^exp(+-z sqrt(V)), V = sum d/(n(n - d)) / log(S)^2."""
    out, survive, greenwood = [], 1.0, 0.0
    for t in sorted(set(float(x) for x, s in zip(time, solved) if s)):
        n = sum(1 for x in time if x >= t)
        d = sum(1 for x, s in zip(time, solved) if s and x == t)
        survive *= (n - d) / n
        greenwood += d / (n * (n - d)) if n > d else math.inf
        if 0 < survive < 1 and math.isfinite(greenwood):
            v = math.sqrt(greenwood) / abs(math.log(survive))
            out.append((t, survive ** math.exp(z * v), survive ** math.exp(-z * v)))
    return out


# --------------------------------------------------------------------------- a hand example with differing horizons

# Ten runs followed to different horizons (zipped epochs, say). Solved at 2, 3, 5, 8, 8, 10; censored at 3
# (tied with a solve), 6, 9, 12.
HAND_T = np.array([2, 3, 3, 5, 6, 8, 8, 9, 10, 12], dtype=float)
HAND_S = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 0], dtype=bool)
# By hand: at 2, 10 at risk, 1 solved: S = 9/10. At 3, 9 at risk (the run censored at 3 included), 1 solved:
# S = 9/10 * 8/9 = 4/5. At 5, 7 at risk: S = 4/5 * 6/7 = 24/35. At 8, 5 at risk, 2 solved: S = 24/35 * 3/5 =
# 72/175. At 10, 2 at risk: S = 36/175.
HAND_F = {2: Fraction(1, 10), 3: Fraction(1, 5), 5: Fraction(11, 35), 8: Fraction(103, 175), 10: Fraction(139, 175)}


def test_the_hand_example_by_hand_by_the_formula_and_by_scipy():
    assert km(HAND_T, HAND_S) == HAND_F
    assert not one_horizon(HAND_T, HAND_S)
    t, F = fraction_solved(HAND_T, HAND_S)
    np.testing.assert_array_equal(t, [2, 3, 5, 6, 8, 9, 10, 12])  # every distinct time, solves and horizons
    np.testing.assert_allclose(F, [float(F_at(HAND_F, x)) for x in t], rtol=0, atol=1e-15)
    direct = stats.ecdf(stats.CensoredData(uncensored=HAND_T[HAND_S], right=HAND_T[~HAND_S])).cdf
    np.testing.assert_array_equal(F, direct.probabilities)
    t, F = fraction_solved(HAND_T, HAND_S, horizon=20)
    assert t[-1] == 20 and F[-1] == F[-2]  # drawn flat to the horizon


def test_the_hand_example_median_and_its_interval():
    m = median_epochs(HAND_T, HAND_S)
    assert m.method == "kaplan-meier" and not m.later
    assert m.value == 8  # F(5) = 11/35 < 1/2 <= F(8) = 103/175
    band = loglog_band(HAND_T, HAND_S)  # S_low, S_high: F_high = 1 - S_low, F_low = 1 - S_high
    low = next(t for t, s_low, _ in band if 1 - s_low >= 0.5)
    high = next((t for t, _, s_high in band if 1 - s_high >= 0.5), math.inf)
    assert (m.low, m.high) == (low, high)
    t, lo, hi = fraction_solved_interval(HAND_T, HAND_S)
    for tb, s_low, s_high in band:
        i = list(t).index(tb)
        assert lo[i] == pytest.approx(1 - s_high, abs=1e-12) and hi[i] == pytest.approx(1 - s_low, abs=1e-12)


def test_the_hand_example_restarts():
    # E(t) = sum_{s<t} S(s) / F(t): E(2) = 2 / (1/10) = 20; E(3) = (2 + 9/10) / (1/5) = 29/2;
    # E(5) = (29/10 + 2 * 4/5) / (11/35) = 315/22; E(8) = (9/2 + 3 * 24/35) / (103/175) = 2295/206;
    # E(10) = (459/70 + 2 * 72/175) / (139/175) = 2583/278: the least, at t* = 10.
    hand = {2: Fraction(20), 3: Fraction(29, 2), 5: Fraction(315, 22), 8: Fraction(2295, 206), 10: Fraction(2583, 278)}
    t, E = restart_curve(HAND_T, HAND_S)
    np.testing.assert_array_equal(t, list(hand))
    np.testing.assert_allclose(E, [float(v) for v in hand.values()], rtol=1e-14)
    for x, v in hand.items():
        assert expected_direct(HAND_F, x) == v
    assert restart_epochs(HAND_T, HAND_S) == (pytest.approx(2583 / 278, rel=1e-14), 10.0)


# --------------------------------------------------------------------------- one horizon: the empirical distribution

def test_one_horizon_is_the_plain_fraction_and_the_median_an_order_statistic():
    rng = np.random.default_rng(3)
    time = rng.integers(0, 500, 101).astype(float)
    solved = rng.random(101) < 0.8
    time[~solved] = 500
    assert one_horizon(time, solved)
    t, F = fraction_solved(time, solved)
    np.testing.assert_allclose(F, [np.mean(solved & (time <= x)) for x in t], rtol=0, atol=1e-14)
    m = median_epochs(time, solved)
    ordered = np.sort(np.where(solved, time, np.inf))
    l, u = binomial_ranks(101)
    assert m.method == "binomial" and (l, u) == (ranks_direct(101), 102 - ranks_direct(101))
    assert (m.value, m.low, m.high) == (ordered[50], ordered[l - 1], ordered[u - 1])
    assert m.low <= m.value <= m.high


@pytest.mark.parametrize("n, l", [(6, 1), (10, 2), (20, 6), (100, 40)])  # the textbook table
def test_binomial_ranks_are_the_textbook_ones_and_cover_95_percent(n, l):
    assert binomial_ranks(n) == (l, n + 1 - l) and ranks_direct(n) == l
    cover = sum(math.comb(n, k) for k in range(l, n + 1 - l)) / 2 ** n  # P(l <= B <= n - l)
    assert cover >= 0.95
    wider = sum(math.comb(n, k) for k in range(l + 1, n - l)) / 2 ** n  # one rank narrower on each side
    assert wider < 0.95


def test_ties_between_solves_and_a_horizon():
    # Four runs solved at 5 (ties), two at 7, four unsolved at the horizon 7: a solve and a horizon tie.
    time = np.array([5, 5, 5, 5, 7, 7, 7, 7, 7, 7], dtype=float)
    solved = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    assert one_horizon(time, solved)
    t, F = fraction_solved(time, solved)
    np.testing.assert_allclose(F, [0.4, 0.6])
    m = median_epochs(time, solved)
    assert m.value == 7 and (m.low, m.high) == (5.0, math.inf)  # ranks 2 and 9: T_(9) is unsolved
    # E(5) = 5 / 0.4 = 12.5; E(7) = (5 + 2 * 0.6) / 0.6 = 10.33...
    t, E = restart_curve(time, solved)
    np.testing.assert_allclose(E, [12.5, 6.2 / 0.6])
    assert restart_epochs(time, solved) == (pytest.approx(6.2 / 0.6), 7.0)


def test_none_censored():
    time = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=float)
    solved = np.ones(8, dtype=bool)
    t, F = fraction_solved(time, solved)
    np.testing.assert_allclose(F, [2 / 8, 3 / 8, 4 / 8, 5 / 8, 6 / 8, 7 / 8, 1])
    m = median_epochs(time, solved)
    assert m.value == 3 and not m.later  # T_(4) of 1 1 2 3 4 5 6 9: the lower middle value
    best, cutoff = restart_epochs(time, solved)
    t, E = restart_curve(time, solved)
    assert E[-1] == pytest.approx(time.mean())  # cutoff at the last solve: no restarts, E = mean T
    assert best <= time.mean() and cutoff in t


def test_all_censored():
    time = np.full(7, 100.0)
    solved = np.zeros(7, dtype=bool)
    t, F = fraction_solved(time, solved)
    np.testing.assert_array_equal(F, [0.0])
    m = median_epochs(time, solved)
    assert math.isnan(m.value) and m.later and m.low == m.high == math.inf
    assert restart_curve(time, solved)[0].size == 0
    best, cutoff = restart_epochs(time, solved)
    assert best == math.inf and math.isnan(cutoff)
    assert restart_interval(time, solved) == (math.inf, math.inf)
    # and with differing horizons, through scipy's Kaplan-Meier
    m = median_epochs(np.array([50.0, 100, 100]), np.zeros(3, dtype=bool))
    assert m.method == "kaplan-meier" and m.later and m.low == m.high == math.inf


def test_fewer_than_half_solved_by_the_horizon():
    time = np.array([10, 20, 30, 40, 40, 40, 40], dtype=float)
    solved = np.array([1, 1, 1, 0, 0, 0, 0], dtype=bool)
    m = median_epochs(time, solved)
    assert math.isnan(m.value) and m.later and m.high == math.inf


def test_everything_solved_at_epoch_0():
    time, solved = np.zeros(10), np.ones(10, dtype=bool)
    assert restart_epochs(time, solved) == (0.0, 0.0)
    assert restart_interval(time, solved) == (0.0, 0.0)
    assert median_epochs(time, solved).value == 0
    # some at 0: a cutoff of 0 (keep only networks that start solved) costs nothing
    time = np.array([0, 0, 5, 9], dtype=float)
    assert restart_epochs(time, np.array([1, 1, 1, 0], dtype=bool)) == (0.0, 0.0)


def test_the_restart_formula_on_a_tiny_example_by_hand():
    # Three runs: solved at 1 and 3, unsolved at 10. F(1) = 1/3, F(3) = 2/3.
    # E(1) = 1 / (1/3) = 3: each attempt costs 1 epoch and succeeds one time in three.
    # E(3) = (1 + 2 * 2/3) / (2/3) = 3.5.
    time, solved = np.array([1.0, 3.0, 10.0]), np.array([True, True, False])
    t, E = restart_curve(time, solved)
    np.testing.assert_array_equal(t, [1, 3])
    np.testing.assert_allclose(E, [3.0, 3.5])
    assert restart_epochs(time, solved) == (pytest.approx(3.0, rel=1e-14), 1.0)
    # E(2) = (1 + 2/3) / (1/3) = 5; from 3 on, E(t) = (7/3 + (t - 3)/3) / (2/3) = (t + 4) / 2.
    curve = km(time, solved)
    assert [expected_direct(curve, x) for x in range(11)] == [None, 3, 5, *(Fraction(x + 4, 2) for x in range(3, 11))]
    # a simulation of the strategy agrees: draw T from the three runs, restart after t epochs until solved
    rng = np.random.default_rng(0)
    draws = rng.choice([1.0, 3.0, math.inf], size=(100_000, 60))
    for cutoff, expected in ((1, 3.0), (3, 3.5)):
        ok = draws <= cutoff
        first = np.argmax(ok, axis=1)  # the attempt that succeeds (one always does, but for (2/3)**60)
        cost = np.minimum(draws, cutoff)
        spent = np.where(np.arange(60) <= first[:, None], cost, 0).sum(axis=1)
        assert spent.mean() == pytest.approx(expected, rel=0.01)


def test_a_diverging_group_is_not_called_solved():
    """Why diverged runs count as unsolved through their planned horizon (sweep.summary.time_to_solution):
    half the runs diverge at epoch 5, half are solved at 100, of 200 planned epochs."""
    solved = np.array([False] * 5 + [True] * 5)
    planned = np.where(solved, 100.0, 200.0)  # diverged: unsolved through epoch 200
    t, F = fraction_solved(planned, solved)
    assert F[-1] == 0.5
    at_divergence = np.where(solved, 100.0, 5.0)  # censoring them where they diverged instead ...
    assert fraction_solved(at_divergence, solved)[1][-1] == 1.0  # ... would call every run solved


# --------------------------------------------------------------------------- the bootstrap

def sample(seed, n=100, horizons=(1000,)):
    rng = np.random.default_rng(seed)
    T = np.floor(rng.lognormal(5, 1, n))
    horizon = rng.choice(horizons, n).astype(float)
    solved = T <= horizon
    return np.where(solved, T, horizon), solved


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("horizons", [(1000,), (300, 1000)], ids=["one horizon", "two horizons"])
def test_the_bootstrap_interval_contains_the_estimate_and_is_reproducible(seed, horizons):
    time, solved = sample(seed, horizons=horizons)
    resamples = 1000 if len(horizons) == 1 else 200
    low, high = restart_interval(time, solved, resamples=resamples)
    best, _ = restart_epochs(time, solved)
    assert low <= best <= high and low < high
    assert restart_interval(time, solved, resamples=resamples) == (low, high)
    assert restart_interval(time, solved, resamples=resamples, seed=1) != (low, high)


@pytest.mark.parametrize("horizons", [(1000,), (300, 1000)], ids=["one horizon", "two horizons"])
def test_the_bootstrap_is_restart_epochs_of_each_resample(horizons):
    """The vectorised resampling gives what restart_epochs gives on each resample, drawn the same way."""
    time, solved = sample(7, n=40, horizons=horizons)
    resamples = 200
    draw = np.random.default_rng(survival.SEED).integers(0, 40, size=(resamples, 40))
    best = [restart_epochs(time[d], solved[d])[0] for d in draw]
    expected = np.quantile(best, [0.025, 0.975], method="inverted_cdf")
    np.testing.assert_allclose(restart_interval(time, solved, resamples=resamples), expected, rtol=1e-12)


def test_the_bootstrap_with_few_solved_reaches_infinity():
    time = np.full(50, 100.0)
    solved = np.zeros(50, dtype=bool)
    solved[0], time[0] = True, 10.0  # one run in 50: a resample misses it 36% of the time
    low, high = restart_interval(time, solved)
    assert math.isfinite(low) and high == math.inf


def test_the_bootstrap_is_fast_for_one_horizon():
    import time as clock

    time, solved = sample(0)
    start = clock.perf_counter()
    for _ in range(42):
        restart_interval(time, solved)
    assert clock.perf_counter() - start < 2.0  # about 2 ms each


# --------------------------------------------------------------------------- properties, any data

events = st.integers(1, 30).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 20), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
    st.lists(st.integers(0, 20), min_size=n, max_size=n)))


def unpack(data, one=False):
    """(time, solved): solves at their epoch; unsolved runs censored at their own horizon (or, with one,
    all at the largest time); a solve is never after its run's horizon."""
    T, solved, horizon = (np.array(x) for x in data)
    solved = solved.astype(bool)
    horizon = np.maximum(horizon, T)
    if one:
        horizon[:] = max(horizon.max(), 1)
    return np.where(solved, T, horizon).astype(float), solved


@settings(max_examples=200, deadline=None)
@given(events, st.booleans())
def test_fraction_solved_is_kaplan_meier(data, one):
    time, solved = unpack(data, one)
    curve = km(time, solved)
    t, F = fraction_solved(time, solved)
    np.testing.assert_allclose(F, [float(F_at(curve, x)) for x in t], rtol=0, atol=1e-12)
    assert np.all(np.diff(F) >= -1e-15) and t[-1] == time.max()
    if one_horizon(time, solved):
        np.testing.assert_allclose(F, [np.mean(solved & (time <= x)) for x in t], rtol=0, atol=1e-12)
    t2, lo, hi = fraction_solved_interval(time, solved)
    np.testing.assert_array_equal(t2, t)
    assert np.all((0 <= lo) & (lo <= F + 1e-12) & (F - 1e-12 <= hi) & (hi <= 1))


@settings(max_examples=200, deadline=None)
@given(events, st.booleans())
def test_the_median_is_where_kaplan_meier_reaches_one_half(data, one):
    time, solved = unpack(data, one)
    curve = km(time, solved)
    reached = [t for t, f in sorted(curve.items()) if f >= Fraction(1, 2)]
    m = median_epochs(time, solved)
    if reached:
        assert m.value == reached[0] and not m.later
        assert m.low <= m.value <= m.high
    else:
        assert math.isnan(m.value) and m.later and m.high == math.inf
    if one_horizon(time, solved):
        n = time.size
        ordered = np.sort(np.where(solved, time, np.inf))
        l = ranks_direct(n)
        assert m.method == "binomial" and m.low == (ordered[l - 1] if l else 0.0)
        assert m.high == (ordered[n - l] if l else math.inf)
        if reached:
            assert m.value == ordered[(n + 1) // 2 - 1]


@settings(max_examples=200, deadline=None)
@given(events, st.booleans())
def test_restart_epochs_is_the_least_E_over_every_integer_cutoff(data, one):
    time, solved = unpack(data, one)
    curve = km(time, solved)
    direct = {t: expected_direct(curve, t) for t in range(int(time.max()) + 1)}
    finite = {t: e for t, e in direct.items() if e is not None}
    best, cutoff = restart_epochs(time, solved)
    if not finite:
        assert best == math.inf and math.isnan(cutoff)
        return
    least = min(finite.values())
    assert best == pytest.approx(float(least), rel=1e-12, abs=1e-12)
    assert cutoff == min(t for t, e in finite.items() if e == least)
    t, E = restart_curve(time, solved)
    np.testing.assert_allclose(E, [float(direct[int(x)]) for x in t], rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(events, st.booleans(), st.integers(0, 2 ** 32 - 1))
def test_the_bootstrap_interval_is_ordered_and_reproducible(data, one, seed):
    time, solved = unpack(data, one)
    low, high = restart_interval(time, solved, resamples=100, seed=seed)
    assert low <= high
    assert (low, high) == restart_interval(time, solved, resamples=100, seed=seed)
    if not solved.any():
        assert low == high == math.inf


# --------------------------------------------------------------------------- arguments

def test_no_runs():
    empty = np.empty(0)
    assert [a.size for a in fraction_solved(empty, empty.astype(bool))] == [0, 0]
    m = median_epochs(empty, empty.astype(bool))
    assert math.isnan(m.value) and math.isnan(m.low) and m.method == "none"
    assert all(math.isnan(x) for x in restart_interval(empty, empty.astype(bool)))


@pytest.mark.parametrize("time, solved, match", [
    ([1.0, -1.0], [True, False], ">= 0"),
    ([1.0, math.nan], [True, False], "finite"),
    ([1.0, 2.0], [1, 0], "bool"),
    ([1.0, 2.0], [True], "one length"),
])
def test_bad_arguments(time, solved, match):
    with pytest.raises(ValueError, match=match):
        fraction_solved(np.array(time), np.array(solved))
