"""Time to solution: statistics of right-censored event times, NumPy arrays in and out.

A run is *solved* at the first epoch T at which its criterion held. A run
that was never solved is *censored* at its horizon c, the last epoch at
which it was seen unsolved: all that is known is T > c. Every function here
takes that pair of arrays, one element per run:

- ``time``: T where the run was solved, c where it was not (finite, >= 0);
- ``solved``: whether the run was solved (a bool array);

and `fraction_solved` also each run's ``horizon``, the last epoch it was
followed to (solved or not), to draw the curve to the end.

`sweep.summary.time_to_solution` makes them from a results DataFrame
(diverged runs count as unsolved through their planned horizon); the
formulas, and why they are these, are in docs/statistics.md.

- `fraction_solved`: F(t) = P(T <= t), the fraction solved by epoch t, as a
  step curve, and `fraction_solved_interval` its pointwise 95% band;
- `median_epochs`: the median of T over all runs with a 95% interval;
- `restart_curve`, `restart_epochs`, `restart_interval`: the expected
  epochs to a solution when unsolved runs are restarted after t epochs, its
  minimum over t, and a bootstrap interval for that minimum.

F is the Kaplan-Meier estimate of `scipy.stats.ecdf` on
`scipy.stats.CensoredData` (right-censored); when no run is censored before
the largest time it is the plain empirical distribution, and the median's
interval is then the distribution-free (binomial) order-statistic interval.
"""
import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 1000  # bootstrap resamples
SEED = 0  # the bootstrap's seed: the same data give the same interval
TOL = 1e-9  # F(t) >= 1/2 - TOL counts as having reached 1/2 (F is a float product)
CI_METHOD = "log-log"  # scipy's "exponential Greenwood" band: stays inside [0, 1]


def _check(time, solved):
    time = np.asarray(time, dtype=float)
    solved = np.asarray(solved)
    if time.ndim != 1 or solved.shape != time.shape:
        raise ValueError(f"time and solved must be 1-d arrays of one length, got shapes {time.shape} and "
                         f"{solved.shape}")
    if solved.dtype != bool:
        raise ValueError(f"solved must be a bool array, got {solved.dtype}")
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise ValueError("times must be finite and >= 0 (a censored run's time is its horizon)")
    return time, solved


def _km(time, solved):
    """scipy's estimate (an ECDFResult): Kaplan-Meier on right-censored data."""
    return stats.ecdf(stats.CensoredData(uncensored=time[solved], right=time[~solved]))


def one_horizon(time, solved):
    """True when no run is censored before the largest time (every unsolved run was followed to the
    end): then F is the plain empirical distribution, the fraction of all runs solved by t."""
    time, solved = _check(time, solved)
    return time.size == 0 or bool(np.all(time[~solved] == time.max()))


# --------------------------------------------------------------------------- fraction solved

def _extend(t, values, horizon):
    """Append the point (horizon, last value) when the horizon is later than the last time."""
    if horizon is None or t.size == 0:
        return t, values
    last = float(np.max(horizon))
    if last <= t[-1]:
        return t, values
    return np.append(t, last), tuple(np.append(v, v[-1]) for v in values)


def fraction_solved(time, solved, horizon=None):
    """The fraction of runs solved by epoch t: (t, F), F[i] = P(T <= t[i]).

    t: the distinct times of the data (solves and horizons), increasing, and
    the largest `horizon` (a number or an array of each run's horizon: the
    last epoch it was followed to, solved or not) when that is later; F: the
    Kaplan-Meier estimate there (scipy.stats.ecdf). F is a right-continuous
    step function: 0 before t[0], F[i] on [t[i], t[i+1]), F[-1] from t[-1],
    the largest horizon, beyond which it is unknown; F[-1] is the fraction
    solved at the horizon. Without censoring before the largest time,
    F[i] = #{runs with T <= t[i]} / #runs. No runs: two empty arrays.
    """
    time, solved = _check(time, solved)
    if time.size == 0:
        return np.empty(0), np.empty(0)
    cdf = _km(time, solved).cdf
    t, (F,) = _extend(np.asarray(cdf.quantiles, dtype=float), (np.asarray(cdf.probabilities, dtype=float),),
                      horizon)
    return t, F


def fraction_solved_interval(time, solved, horizon=None, confidence=CONFIDENCE):
    """A pointwise `confidence` band around `fraction_solved`: (t, low, high), at the same t.

    scipy's "log-log" (exponential Greenwood) interval of the Kaplan-Meier
    estimate. Where that formula is undefined (F = 0, where no run has been
    solved yet, or F = 1) the band is taken as F itself at F = 0, and as
    [low at the previous time, 1] at F = 1.
    """
    time, solved = _check(time, solved)
    if time.size == 0:
        return np.empty(0), np.empty(0), np.empty(0)
    cdf = _km(time, solved).cdf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "undefined at some observations": handled below
        ci = cdf.confidence_interval(confidence, method=CI_METHOD)
    F = np.asarray(cdf.probabilities, dtype=float)
    low = np.asarray(ci.low.probabilities, dtype=float).copy()
    high = np.asarray(ci.high.probabilities, dtype=float).copy()
    none = F <= 0
    low[none], high[none] = 0.0, 0.0
    high[np.isnan(high)] = 1.0
    gaps = np.isnan(low)
    if gaps.any():  # the previous lower bound carries on (0 if none)
        last = np.maximum.accumulate(np.where(gaps, -1, np.arange(low.size)))
        low = np.where(last >= 0, low[np.maximum(last, 0)], 0.0)
    t, (low, high) = _extend(np.asarray(cdf.quantiles, dtype=float), (low, high), horizon)
    return t, low, high


# --------------------------------------------------------------------------- median

class Median(NamedTuple):
    """The median epochs to a solution over all runs, and its interval.

    value: the median, NaN when it is later than the largest horizon
    (`later`); low, high: the interval's bounds, inf for a bound later than
    the largest horizon; method: "binomial" or "kaplan-meier" (how the
    interval was computed); all NaN and method "none" for no runs.
    """
    value: float
    low: float
    high: float
    later: bool
    method: str


def binomial_ranks(n, confidence=CONFIDENCE):
    """(l, u), 1-based ranks: [T_(l), T_(u)] covers the median of any distribution with probability
    >= confidence when the n times are all observed. l is the largest rank with
    P(B <= l - 1) <= (1 - confidence) / 2, B ~ Binomial(n, 1/2), and u = n + 1 - l; l = 0 (the bound
    is 0, T >= 0) and u = n + 1 (no upper bound) when n is too small for any rank to qualify."""
    if n <= 0:
        return 0, 1
    cdf = stats.binom.cdf(np.arange(n + 1), n, 0.5)
    l = int(np.count_nonzero(cdf <= (1.0 - confidence) / 2.0 * (1 + 1e-12)))
    return l, n + 1 - l


def _first(t, reached):
    """The first t where `reached` holds; inf where it never does."""
    hit = np.flatnonzero(reached)
    return float(t[hit[0]]) if hit.size else math.inf


def median_epochs(time, solved, confidence=CONFIDENCE):
    """The median epochs to a solution over all runs: inf{t : F(t) >= 1/2}, with a `confidence` interval.

    Unsolved runs count as later than their horizon. When no run is censored
    before the largest time (`one_horizon`), the median is the order
    statistic T_(ceil(n/2)) of all n runs (unsolved ones last) and the
    interval is [T_(l), T_(u)] with `binomial_ranks`: distribution-free.
    Otherwise F is scipy's Kaplan-Meier estimate and the interval inverts its
    pointwise band at 1/2: low = the first t where the band's upper curve
    reaches 1/2, high = the first t where its lower curve does.
    When F stays below 1/2 up to the largest time the median is later than
    it: value NaN, later True. A bound that is never reached is inf.
    """
    time, solved = _check(time, solved)
    n = time.size
    if n == 0:
        return Median(math.nan, math.nan, math.nan, False, "none")
    if one_horizon(time, solved):
        ordered = np.sort(np.where(solved, time, math.inf))
        value = float(ordered[-(-n // 2) - 1])
        l, u = binomial_ranks(n, confidence)
        low = float(ordered[l - 1]) if l >= 1 else 0.0
        high = float(ordered[u - 1]) if u <= n else math.inf
        method = "binomial"
    else:
        t, F = fraction_solved(time, solved)
        _, band_low, band_high = fraction_solved_interval(time, solved, confidence=confidence)
        value = _first(t, F >= 0.5 - TOL)
        low = _first(t, band_high >= 0.5 - TOL)
        high = _first(t, band_low >= 0.5 - TOL)
        method = "kaplan-meier"
    later = math.isinf(value)
    return Median(math.nan if later else value, low, high, later, method)


# --------------------------------------------------------------------------- restarts

def _expected(t, F):
    """E at cutoffs t (increasing, F's jump times) from F there; F has shape (..., len(t)).

    E(t_j) = sum_{s < t_j} S(s) / F(t_j), S = 1 - F, with S = 1 before t[0] and S = 1 - F(t_k) on
    [t_k, t_{k+1}): the numerator is sum_k (t_k - t_{k-1}) S(t_{k-1}), t_0 = 0. inf where F = 0."""
    widths = np.diff(t, prepend=0.0)
    survive = np.concatenate([np.ones(F.shape[:-1] + (1,)), 1.0 - F[..., :-1]], axis=-1)
    spent = np.cumsum(widths * survive, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(F > 0, spent / np.where(F > 0, F, 1.0), math.inf)


def restart_curve(time, solved):
    """E(t), the expected epochs to a solution when every run not solved after t epochs is restarted
    from a fresh seed: (t, E) at each distinct solve time t.

    E(t) = sum_{s=0}^{t-1} P(T > s) / P(T <= t): an attempt costs min(T, t)
    epochs, whose mean is the numerator, and succeeds with probability
    P(T <= t), so the number of attempts is geometric. P is `fraction_solved`.
    Between two solve times the numerator grows and P(T <= t) does not, so
    over every cutoff t in [0, largest horizon] the minimum is at a solve
    time: these are the only cutoffs listed. No run solved: two empty arrays.
    """
    time, solved = _check(time, solved)
    cut = np.unique(time[solved])
    if cut.size == 0:
        return cut.astype(float), np.empty(0)
    F = np.asarray(_km(time, solved).cdf.evaluate(cut), dtype=float)
    return cut.astype(float), _expected(cut, F)


def _best(t, E):
    """(min E, the smallest t attaining it, to rounding)."""
    if E.size == 0 or not np.isfinite(E.min()):
        return math.inf, math.nan
    m = float(E.min())
    j = int(np.flatnonzero(E <= m * (1 + 1e-12) + 1e-12)[0])
    return m, float(t[j])


def restart_epochs(time, solved):
    """(E*, t*): the least expected epochs to a solution with restarts, min over t of E(t)
    (`restart_curve`), and the smallest cutoff t* that attains it.

    No run solved: (inf, NaN). Every run solved at epoch 0: (0, 0). Without
    censoring, when every run is solved and the cutoff is the largest solve
    time (no restarts), E* <= mean T.
    """
    return _best(*restart_curve(time, solved))


def restart_interval(time, solved, confidence=CONFIDENCE, resamples=RESAMPLES, seed=SEED):
    """A bootstrap `confidence` interval for E* (`restart_epochs`): (low, high).

    `resamples` times, draw n runs from the n with replacement (a
    numpy.random.default_rng(seed), so the interval is reproducible),
    estimate F and E* from them, and take the (1 - confidence)/2 and
    (1 + confidence)/2 quantiles of those E* (inverted-CDF: each bound is one
    of the resampled values; inf when resamples with no solved run reach it).
    Without censoring before the largest time F is counted for all
    resamples at once; otherwise each resample gets scipy's Kaplan-Meier.
    No runs: (NaN, NaN).
    """
    time, solved = _check(time, solved)
    n = time.size
    if n == 0:
        return math.nan, math.nan
    cut = np.unique(time[solved])
    if cut.size == 0:
        return math.inf, math.inf
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, n, size=(resamples, n))
    K = cut.size
    if one_horizon(time, solved):
        code = np.where(solved, np.searchsorted(cut, time), K)  # unsolved runs: past every cutoff
        keys = code[draw] + (K + 1) * np.arange(resamples)[:, None]
        counts = np.bincount(keys.ravel(), minlength=resamples * (K + 1)).reshape(resamples, K + 1)
        F = np.cumsum(counts[:, :K], axis=1) / n
    else:
        F = np.zeros((resamples, K))
        for b in range(resamples):
            tb, sb = time[draw[b]], solved[draw[b]]
            if sb.any():
                F[b] = _km(tb, sb).cdf.evaluate(cut)
    E = _expected(cut, F)
    best = np.min(E, axis=1)
    q = np.round([(1 - confidence) / 2, (1 + confidence) / 2], 12)  # 0.025, not 0.025000000000000022
    low, high = np.quantile(best, q, method="inverted_cdf")
    return float(low), float(high)
