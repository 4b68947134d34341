"""Statistics behind `RunSet` and `Comparison`: intervals and cooking-curve shape.

Numpy only (no scipy, no torch). Every function takes arrays whose first axis
is the sampling unit (a case, or a seed when one case was sampled several
times) and is NaN-aware: a NaN is a missing value (a region absent from a run,
a threshold never reached), left out of the mean and of the count.

Intervals, at confidence `level`:
  - "t": Student t-interval, mean +- t(level, n-1) * sd / sqrt(n). For a
    difference of two unpaired samples, Welch's interval with the
    Welch-Satterthwaite degrees of freedom.
  - "bootstrap": percentile bootstrap of the mean, `n_boot` resamples of the
    units with replacement, from a fixed `seed` so results repeat.
With one unit there is no interval (NaN). Identical units give a zero-width one.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from ..errors import ArgumentError

INTERVALS = ("t", "bootstrap")
"""Valid interval methods."""
CURVE_STATS = ("peak_layer", "peak_mass", "area", "first_above")
"""Statistics of one cooking curve, in the order `curve_stats` returns them."""
_EXACT_T_MAX_DF = 20_000
"""Above this many degrees of freedom the normal quantile is used (error < 1e-4)."""


@dataclass(frozen=True)
class IntervalOptions:
    """How intervals are computed (see the module docstring)."""

    level: float = 0.95
    """Confidence level, in (0, 1)."""
    method: str = "t"
    """"t" or "bootstrap"."""
    n_boot: int = 2000
    """Bootstrap resamples."""
    seed: int = 0
    """Seed of the bootstrap's random generator."""

    def __post_init__(self) -> None:
        if not isinstance(self.level, (int, float)) or not 0 < self.level < 1:
            raise ArgumentError(f"level must be in (0, 1), e.g. 0.95; got {self.level!r}.")
        if self.method not in INTERVALS:
            raise ArgumentError(
                f"Unknown interval method {self.method!r}; use one of {list(INTERVALS)}."
            )
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or self.n_boot < 100:
            raise ArgumentError(f"n_boot must be an int >= 100, got {self.n_boot!r}.")


@dataclass(frozen=True)
class Estimate:
    """A mean and its interval, elementwise over the non-unit axes."""

    mean: NDArray[np.float64]
    """(...) mean over units."""
    low: NDArray[np.float64]
    """(...) lower end of the interval; NaN with fewer than 2 units."""
    high: NDArray[np.float64]
    """(...) upper end of the interval."""
    n: NDArray[np.int64]
    """(...) number of non-missing units."""

    @property
    def excludes_zero(self) -> NDArray[np.bool_]:
        """(...) True where the whole interval lies on one side of 0 (False where none)."""
        return (self.low > 0) | (self.high < 0)


# ---------------------------------------------------------------- Student t


def _t_central_mass(t: float, df: float) -> float:
    """P(|T| <= t) for Student's T with `df` degrees of freedom:
    1 - I_x(df/2, 1/2) with x = df / (df + t^2)."""
    return 1.0 - _regularized_beta(df / 2, 0.5, df / (df + t * t))


def _regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), by the continued fraction (modified Lentz), as in Numerical Recipes."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x)
    log_front += math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300

    def step(value: float) -> float:
        return value if abs(value) > tiny else tiny

    c, d = 1.0, 1.0 / step(1.0 - (a + b) * x / (a + 1))
    result = d
    for m in range(1, 100_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 / step(1.0 + numerator * d)
            c = step(1.0 + numerator / c)
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


@lru_cache(maxsize=1024)
def t_quantile(level: float, df: float) -> float:
    """The two-sided critical value of Student's T: the t with P(|T| <= t) = `level`
    for `df` >= 1 degrees of freedom (real, as Welch's are)."""
    df = float(df)
    if not df >= 1:
        raise ArgumentError(f"A t-interval needs at least 1 degree of freedom, got {df}.")
    if df > _EXACT_T_MAX_DF:
        return NormalDist().inv_cdf(0.5 + level / 2)
    low, high = 0.0, 1.0
    while _t_central_mass(high, df) < level:
        low, high = high, high * 2
    for _ in range(200):
        mid = (low + high) / 2
        if _t_central_mass(mid, df) < level:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * high:
            break
    return (low + high) / 2


# ---------------------------------------------------------------- intervals


def _quiet_nan_stats(fn):
    """Run `fn` with numpy's warnings about all-NaN slices silenced: those
    slices are missing values and give NaN on purpose."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn()


def _count(values: NDArray) -> NDArray[np.int64]:
    return np.sum(~np.isnan(values), axis=0).astype(np.int64)


def _mean_var(values: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Mean, variance of the mean (sd^2 / n) and count over axis 0."""
    n = _count(values)
    mean = _quiet_nan_stats(lambda: np.nanmean(values, axis=0))
    var = _quiet_nan_stats(lambda: np.nanvar(values, axis=0, ddof=1))
    var = np.where(n > 1, var, np.nan)
    return mean, var / np.maximum(n, 1), n


def mean_interval(values: NDArray, options: IntervalOptions = IntervalOptions()) -> Estimate:
    """Mean over axis 0 (the units) of `values` (unit, ...) and its interval."""
    values = np.asarray(values, dtype=np.float64)
    if options.method == "bootstrap":
        return _bootstrap(values, None, options)
    mean, var, n = _mean_var(values)
    half = _t_half_width(var, np.maximum(n - 1, 1), options.level)
    return Estimate(mean, mean - half, mean + half, n)


def difference_interval(
    variant: NDArray,
    baseline: NDArray,
    paired: bool,
    options: IntervalOptions = IntervalOptions(),
) -> Estimate:
    """Mean of `variant` minus mean of `baseline` (units on axis 0) and its interval.

    Paired: both have the same units in the same order; the interval is that of
    the per-unit differences. Unpaired: Welch's t-interval or independent resampling of
    each side (bootstrap). A side with one unit counts as a fixed value: the
    interval then comes from the other side alone.
    """
    variant = np.asarray(variant, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    if paired:
        if variant.shape != baseline.shape:
            raise ArgumentError(
                f"Paired samples need the same units: got {variant.shape[0]} and "
                f"{baseline.shape[0]}. Pass paired=False for independent samples."
            )
        return mean_interval(variant - baseline, options)
    if options.method == "bootstrap":
        return _bootstrap(variant, baseline, options)
    mean_v, var_v, n_v = _mean_var(variant)
    mean_b, var_b, n_b = _mean_var(baseline)
    fixed_v, fixed_b = n_v == 1, n_b == 1
    var_v = np.where(fixed_v & ~fixed_b, 0.0, var_v)
    var_b = np.where(fixed_b & ~fixed_v, 0.0, var_b)
    var = var_v + var_b
    df = _welch_df(var_v, var_b, n_v, n_b)
    half = _t_half_width(var, df, options.level)
    delta = mean_v - mean_b
    return Estimate(delta, delta - half, delta + half, np.minimum(n_v, n_b))


def _welch_df(var_v: NDArray, var_b: NDArray, n_v: NDArray, n_b: NDArray) -> NDArray:
    """Welch-Satterthwaite degrees of freedom; a side with variance 0 adds nothing."""

    def part(var: NDArray, n: NDArray) -> NDArray:
        return np.where(var > 0, var**2 / np.maximum(n - 1, 1), 0.0)

    denominator = part(var_v, n_v) + part(var_b, n_b)
    total = var_v + var_b
    df = _quiet_nan_stats(lambda: total**2 / denominator)
    fallback = np.maximum(np.maximum(n_v, n_b) - 1, 1)
    return np.where(denominator > 0, df, fallback)


def _t_half_width(var: NDArray, df: NDArray, level: float) -> NDArray:
    """t(level, df) * sqrt(var) elementwise; NaN where var is NaN."""
    var = np.asarray(var, dtype=np.float64)
    df = np.broadcast_to(np.asarray(df, dtype=np.float64), var.shape)
    # Welch's df are rounded to 0.01 so that the cache serves repeated values.
    critical = np.vectorize(
        lambda d: t_quantile(level, max(1.0, round(float(d), 2))) if np.isfinite(d) else np.nan,
        otypes=[np.float64],
    )
    return critical(df) * np.sqrt(var)


def _resampled_means(values: NDArray, counts: NDArray) -> NDArray:
    """(boot, ...) means of `values` (unit, ...) weighted by resample `counts` (boot, unit)."""
    flat = values.reshape(values.shape[0], -1)
    present = ~np.isnan(flat)
    totals = counts @ np.where(present, flat, 0.0)
    weights = counts @ present.astype(np.float64)
    means = _quiet_nan_stats(lambda: totals / weights)
    return means.reshape((counts.shape[0], *values.shape[1:]))


def _bootstrap(variant: NDArray, baseline: NDArray | None, options: IntervalOptions) -> Estimate:
    """Percentile bootstrap of mean(variant) [- mean(baseline)], sides resampled independently."""
    rng = np.random.default_rng(options.seed)

    def resample(values: NDArray) -> NDArray:
        n = values.shape[0]
        counts = rng.multinomial(n, np.full(n, 1 / n), size=options.n_boot).astype(np.float64)
        return _resampled_means(values, counts)

    mean, _, n = _mean_var(variant)
    boots = resample(variant)
    if baseline is not None:
        mean_b, _, n_b = _mean_var(baseline)
        mean, boots, n = mean - mean_b, boots - resample(baseline), np.minimum(n, n_b)
    tail = (1 - options.level) / 2
    low, high = _quiet_nan_stats(lambda: np.nanquantile(boots, [tail, 1 - tail], axis=0))
    # No interval where no side varies by resampling (every side has one unit).
    none = _count(variant) < 2
    if baseline is not None:
        none &= _count(baseline) < 2
    return Estimate(mean, np.where(none, np.nan, low), np.where(none, np.nan, high), n)


def pooled_sd(values: NDArray, groups: NDArray[np.int64]) -> tuple[NDArray, int]:
    """Pooled within-group standard deviation over axis 0 of `values` (run, ...).

    `groups` (run,) labels the group (case) of each run; groups of one run add
    nothing. Returns the pooled sd (NaN when no group has 2 runs) and the
    number of runs in groups of at least 2.
    """
    values = np.asarray(values, dtype=np.float64)
    squares = np.zeros(values.shape[1:])
    dof = 0
    replicated = 0
    for group in np.unique(groups):
        members = values[groups == group]
        if len(members) < 2:
            continue
        squares = squares + ((members - members.mean(axis=0)) ** 2).sum(axis=0)
        dof += len(members) - 1
        replicated += len(members)
    if dof == 0:
        return np.full(values.shape[1:], np.nan), 0
    return np.sqrt(squares / dof), replicated


# ---------------------------------------------------------------- curves


def curve_stats(curves: NDArray, threshold: float | None = None) -> NDArray[np.float64]:
    """Shape of cooking curves: (..., layer) -> (..., stat), stats in `CURVE_STATS` order.

    - peak_layer: the layer of the largest value (the first, on ties).
    - peak_mass: that largest value.
    - area: the sum over layers (area under the curve with unit layer spacing).
    - first_above: the first layer whose value reaches `threshold`; with
      `threshold=None`, half the curve's own peak (the "half-rise" layer).
      NaN when never reached.
    A curve that is NaN (a missing region) gives NaN for every stat.
    """
    curves = np.asarray(curves, dtype=np.float64)
    missing = np.isnan(curves).any(axis=-1)
    filled = np.where(np.isnan(curves), -np.inf, curves)
    peak_layer = filled.argmax(axis=-1).astype(np.float64)
    peak_mass = filled.max(axis=-1)
    area = curves.sum(axis=-1)
    level = peak_mass / 2 if threshold is None else np.full(peak_mass.shape, float(threshold))
    reached = curves >= level[..., None]
    first = np.where(reached.any(axis=-1), reached.argmax(axis=-1), np.nan)
    stats = np.stack([peak_layer, peak_mass, area, first], axis=-1)
    stats[missing] = np.nan
    return stats
