"""Statistics for numbers you can act on: paired and one-sample bootstrap over per-item columns, exact McNemar, Holm,
an unpaired normal test from aggregates, binomial SE, agreement of binary verdicts, and Arena-Hard v0.1's
Bradley-Terry score in closed form. Pure numpy; every random draw comes from a generator seeded by the caller.

How a suite metric is recomputed on a resample: it is a function of *column sums per stratum*. Each item contributes a
row of numbers (its columns: an lm-eval `acc`, an Arena-Hard question's battle points and battle count, ...); a
resample gives each item a count (how often it was drawn); a statistic sees `Sums`: per resample, per stratum (lm-eval
subtask, MT-Bench turn) and per column the count-weighted sum, plus each stratum's item count. Means, ratios of sums
(IFEval instruction level, Arena-Hard), per-subtask normalized means (leaderboard BBH/MuSR) and per-turn means are all
functions of these sums, so one matrix product per batch of resamples serves every metric of a suite.

Resampling is stratified: each stratum resamples its own items with replacement, its size fixed, so no subtask vanishes
from a resample; each stratum draws from its own child generator (`Generator.spawn`; a table with one stratum draws from
the seed's generator itself), so the draws do not depend on the batch size. Within a stratum whose rows take few
distinct values (0/1 accuracies of A and B: at most four distinct rows) the counts of the distinct rows are drawn as one
multinomial, which is exactly the distribution the counts of iid index draws have, at a fraction of the cost; otherwise
indices are drawn (`integers(0, n, n)` per resample, the textbook loop's draws). A stratum of one item never varies (BBH
at 1 document per subtask: a zero-wide interval), so when any stratum has fewer than 2 items all items are drawn as one
pool from the seed's generator (the textbook loop's draws); the sums stay per stratum (over a varying number of its
items), `Sums.stratified` and the result's `stratified` are False.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

DEFAULT_RESAMPLES = 10_000
LEVEL = 0.95
BATCH_CELLS = 2_000_000
"""Resample x item cells drawn at once (bounds memory to tens of MB whatever n and the number of resamples)."""

Seed = int | Sequence[int]


@dataclass(frozen=True)
class ItemTable:
    """Per-item columns of one side, one row per item: `values[i, c]` is column `columns[c]` of item i;
    `strata[i]` indexes `stratum_names` (one stratum named None when the suite has none)."""

    columns: tuple[str, ...]
    values: np.ndarray
    strata: np.ndarray
    stratum_names: tuple[str | None, ...]

    @classmethod
    def build(cls, columns: Mapping[str, Sequence[float]], strata: Sequence[str | None] | None = None) -> ItemTable:
        names = tuple(columns)
        values = np.column_stack([np.asarray(columns[c], dtype=float) for c in names]) if names else np.zeros((0, 0))
        if not np.isfinite(values).all():  # a NaN would drop out of every resample: an interval of NaN and p 1
            row, col = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(f"column {names[col]!r}, row {row}: {values[row, col]} is not a finite number")
        labels = list(strata) if strata is not None else [None] * len(values)
        stratum_names = tuple(dict.fromkeys(labels))
        code = {s: i for i, s in enumerate(stratum_names)}
        return cls(names, values, np.array([code[s] for s in labels], dtype=np.int64), stratum_names)

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def stratifiable(self) -> bool:
        """Whether a stratified resample is defined: one stratum, or at least 2 items in every stratum."""
        return len(self.stratum_names) <= 1 or int(np.bincount(self.strata).min()) >= 2


class Sums:
    """Column sums of a batch of resamples: `sums[r, j, c]` over the resampled items of stratum j; `sizes[j]` items."""

    def __init__(self, sums: np.ndarray, sizes: np.ndarray, columns: Sequence[str],
                 stratum_names: Sequence[str | None], stratified: bool = True) -> None:
        self.sums, self.sizes, self.stratified = sums, sizes, stratified  # False: one pool (module docstring)
        self.columns, self.stratum_names = tuple(columns), tuple(stratum_names)

    def column(self, name: str) -> np.ndarray:
        """(resamples, strata) sums of one column."""
        return self.sums[:, :, self.columns.index(name)]

    def total(self, name: str) -> np.ndarray:
        return self.column(name).sum(axis=1)

    def mean(self, name: str) -> np.ndarray:
        """Mean over all items (strata pooled, i.e. weighted by size)."""
        return self.total(name) / self.sizes.sum()

    def ratio(self, numerator: str, denominator: str) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total(numerator) / self.total(denominator)

    def stratum_means(self, name: str) -> np.ndarray:
        """(resamples, strata) mean of a column within each stratum."""
        return self.column(name) / self.sizes

    def stratum_index(self, name: str | None) -> int:
        return self.stratum_names.index(name)


Statistic = Callable[[Sums], np.ndarray]
"""Metric on the card's scale, one value per resample, from the resamples' column sums."""


@dataclass(frozen=True)
class Interval:
    value: float
    ci_low: float
    ci_high: float
    se: float
    """Standard deviation of the bootstrap distribution."""
    n: int
    resamples: int
    stratified: bool = True  # False: a stratum had < 2 items, so items were resampled as one pool (module docstring)


@dataclass(frozen=True)
class Paired:
    a: float
    b: float
    delta: float
    """B - A on the paired items."""
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    n: int
    resamples: int
    draws: np.ndarray = field(repr=False, compare=False)
    """The bootstrap differences B* - A* (kept so independent suites can be combined, e.g. into an average)."""
    stratified: bool = True  # as `Interval.stratified`


def point(table: ItemTable, statistic: Statistic) -> float:
    """The statistic on the items themselves (every item counted once)."""
    return float(statistic(_sums(table, _full_sums(table.values, table.strata, len(table.stratum_names))))[0])


def bootstrap_ci(table: ItemTable, statistic: Statistic, resamples: int = DEFAULT_RESAMPLES, seed: Seed = 0,
                 level: float = LEVEL) -> Interval:
    """Percentile interval of the statistic over item resamples of one run."""
    draws = np.empty(resamples)
    stratified, n_strata = table.stratifiable, len(table.stratum_names)
    for start, sums in resampled_sums(table.values, table.strata, n_strata, resamples, seed, stratified):
        draws[start:start + len(sums)] = statistic(_sums(table, sums, stratified))
    low, high = percentile_ci(draws, level)
    return Interval(point(table, statistic), low, high, _sd(draws), table.n, resamples, stratified)


def mean_interval(values: Sequence[float] | np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: Seed = 0,
                  level: float = LEVEL) -> Interval:
    """The one-sample bootstrap of a plain mean (e.g. the SPPO objective's per-prompt preferences): `bootstrap_ci` on a
    one-column table, so every one-sample interval in the project comes from the same resampler."""
    return bootstrap_ci(ItemTable.build({"x": [float(v) for v in values]}), lambda s: s.mean("x"), resamples, seed,
                        level)


def paired_bootstrap(a: ItemTable, b: ItemTable, statistics: Mapping[str, Statistic],
                     resamples: int = DEFAULT_RESAMPLES, seed: Seed = 0, level: float = LEVEL) -> dict[str, Paired]:
    """Resample the items both sides scored (the same indices for A and B: the rows of `a` and `b` must be the same
    items in the same order), recompute every statistic on each side, and take B* - A*.

    CI: the percentile interval of B* - A*. p: two-sided, 2 min(P(d* <= 0), P(d* >= 0)) with +1 smoothing."""
    if a.n != b.n or not np.array_equal(a.strata, b.strata) or a.stratum_names != b.stratum_names:
        raise ValueError("paired tables must hold the same items in the same order and strata")
    joint = np.hstack([a.values, b.values])
    width = a.values.shape[1]
    draws = {name: (np.empty(resamples), np.empty(resamples)) for name in statistics}
    stratified = a.stratifiable
    for start, sums in resampled_sums(joint, a.strata, len(a.stratum_names), resamples, seed, stratified):
        side_a, side_b = _sums(a, sums[:, :, :width], stratified), _sums(b, sums[:, :, width:], stratified)
        for name, statistic in statistics.items():
            draws[name][0][start:start + len(sums)] = statistic(side_a)
            draws[name][1][start:start + len(sums)] = statistic(side_b)
    out = {}
    for name, statistic in statistics.items():
        value_a, value_b = point(a, statistic), point(b, statistic)
        delta = draws[name][1] - draws[name][0]
        low, high = percentile_ci(delta, level)
        out[name] = Paired(value_a, value_b, value_b - value_a, low, high, bootstrap_p_value(delta), _sd(delta), a.n,
                           resamples, delta, stratified)
    return out


def percentile_ci(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The (1-level)/2 and (1+level)/2 percentiles (numpy's linear interpolation); NaN draws are left out."""
    finite = draws[np.isfinite(draws)]
    if not finite.size:
        return math.nan, math.nan
    low, high = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def bootstrap_p_value(deltas: np.ndarray) -> float:
    """Two-sided bootstrap p of "no difference": 2 min(#(d* <= 0) + 1, #(d* >= 0) + 1) / (R + 1), at most 1."""
    finite = deltas[np.isfinite(deltas)]
    below, above = int(np.sum(finite <= 0)), int(np.sum(finite >= 0))
    return min(1.0, 2.0 * (min(below, above) + 1) / (finite.size + 1))


def resampled_sums(values: np.ndarray, strata: np.ndarray, n_strata: int, resamples: int, seed: Seed,
                   stratified: bool = True) -> Iterator[tuple[int, np.ndarray]]:
    """Batches (start, sums[r, j, c]) of `resamples` stratified resamples (not `stratified`: one pool, a row's values in
    its stratum's block). One stratum or a pool draws from `np.random.default_rng(seed)`; several from its `.spawn(n)`."""
    width = values.shape[1]
    if not stratified:
        values = np.einsum("ij,ik->ijk", np.eye(n_strata)[strata], values).reshape(len(values), n_strata * width)
    groups = [_Stratum(values[strata == j]) for j in range(n_strata)] if stratified else [_Stratum(values)]
    root = np.random.default_rng(seed)
    streams = [root] if len(groups) == 1 else root.spawn(len(groups))
    batch = max(1, min(resamples, BATCH_CELLS // max([g.cells for g in groups] + [1])))
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        sums = np.empty((size, len(groups), values.shape[1]))
        for j, (group, rng) in enumerate(zip(groups, streams, strict=True)):
            sums[:, j, :] = group.draw(rng, size)
        yield start, sums.reshape(size, n_strata, width)


class _Stratum:
    """One stratum's rows; draws the column sums of `size` resamples of its n rows."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.n = len(values)
        self.distinct, counts = np.unique(values, axis=0, return_counts=True) if self.n else (values, np.zeros(0))
        self.compressed = 4 * len(self.distinct) <= self.n
        self.probs = counts / max(self.n, 1)
        self.cells = len(self.distinct) if self.compressed else self.n

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.n == 0:
            return np.zeros((size, self.values.shape[1]))
        if self.compressed:
            return rng.multinomial(self.n, self.probs, size=size) @ self.distinct
        index = rng.integers(0, self.n, size=(size, self.n))
        flat = (index + (np.arange(size) * self.n)[:, None]).ravel()
        counts = np.bincount(flat, minlength=size * self.n).reshape(size, self.n)
        return counts @ self.values


def _full_sums(values: np.ndarray, strata: np.ndarray, n_strata: int) -> np.ndarray:
    sums = np.zeros((1, n_strata, values.shape[1]))
    np.add.at(sums[0], strata, values)
    return sums


def _sums(table: ItemTable, sums: np.ndarray, stratified: bool = True) -> Sums:
    sizes = np.bincount(table.strata, minlength=len(table.stratum_names)).astype(float)
    return Sums(sums, sizes, table.columns, table.stratum_names, stratified)


def _sd(draws: np.ndarray) -> float:
    finite = draws[np.isfinite(draws)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan


# ----------------------------------------------------------------------------------------- tests on 0/1 and aggregates

@dataclass(frozen=True)
class McNemar:
    b: int
    """Items right in A only."""
    c: int
    """Items right in B only."""
    p_value: float


def mcnemar(a_correct: Sequence[bool] | np.ndarray, b_correct: Sequence[bool] | np.ndarray) -> McNemar:
    """Exact McNemar: p = min(1, 2 BinomCDF(min(b, c); b + c, 1/2)); p = 1 when no item is discordant. The binomial
    CDF is scipy's (log-space, no tail lost to rounding; exact big-integer sums were the slowest part of a report)."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("McNemar needs the same items on both sides")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return McNemar(0, 0, 1.0)
    from scipy.stats import binom

    tail = float(binom.cdf(min(only_a, only_b), only_a + only_b, 0.5))
    return McNemar(only_a, only_b, min(1.0, 2 * tail))


def mcnemar_power(n: int, only_a: float, only_b: float, alpha: float = 0.05) -> float:
    """Power of the two-sided exact McNemar test (`mcnemar`) at level `alpha` on n paired items when an item is right
    in A only with probability `only_a` and in B only with `only_b`: the sum over the number of discordant items d
    (binomial) of P(the exact test rejects | d), exactly. E.g. 100 prompts, 10% discordant, a 6-point drop
    (only_a 0.08, only_b 0.02) has power 0.36; on 541 prompts a 4-point drop (0.07 vs 0.03) has 0.82."""
    from scipy.stats import binom

    discordant = only_a + only_b
    if n <= 0 or not 0.0 <= discordant <= 1.0 or min(only_a, only_b) < 0:
        raise ValueError(f"McNemar power needs n > 0 and discordant probabilities that sum to at most 1 (n={n}, "
                         f"only_a={only_a}, only_b={only_b})")
    share = only_a / discordant if discordant else 0.5
    power = 0.0
    for d in range(1, n + 1):
        k = np.arange(d + 1)
        p_two = np.minimum(1.0, 2 * binom.cdf(np.minimum(k, d - k), d, 0.5))  # the test's p for each split
        power += float(binom.pmf(d, n, discordant)) * float(binom.pmf(k[p_two <= alpha], d, share).sum())
    return power


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjustment: sorted ascending, p_adj(i) = max over j <= i of min(1, (m - j + 1) p(j)).
    None entries (rows without a test) are skipped and stay None; m counts the others."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class Unpaired:
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    method: str = "unpaired normal"


def unpaired_normal(a: tuple[float, float], b: tuple[float, float], level: float = LEVEL) -> Unpaired:
    """Two independent estimates (value, stderr): delta = b - a, se = sqrt(se_a^2 + se_b^2), normal CI and two-sided p.
    For sides with only aggregates (a published card): it ignores that both sides scored the same items, so it is
    conservative next to a paired test."""
    delta = b[0] - a[0]
    se = math.hypot(a[1], b[1])
    z = NormalDist().inv_cdf(0.5 + level / 2)
    if se == 0:
        return Unpaired(delta, delta, delta, 1.0 if delta == 0 else 0.0, 0.0)
    p = 2.0 * (1.0 - NormalDist().cdf(abs(delta) / se))
    return Unpaired(delta, delta - z * se, delta + z * se, p, se)


def binomial_se(p: float, n: int) -> float:
    """Standard error of a proportion p (0..1) on n items: sqrt(p (1 - p) / n)."""
    if n <= 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"binomial SE needs 0 <= p <= 1 and n > 0 (got p={p}, n={n})")
    return math.sqrt(p * (1.0 - p) / n)


# ------------------------------------------------------------------------------------------- binary verdict agreement

@dataclass(frozen=True)
class Agreement:
    n: int
    agreement: float
    """Fraction of items with the same verdict."""
    kappa: float
    """Cohen's kappa; NaN when both raters give one constant verdict (chance agreement 1: undefined)."""
    majority_baseline: float
    """Agreement of always answering the reference rater's majority verdict."""


def agreement(verdicts: Sequence[bool] | np.ndarray, reference: Sequence[bool] | np.ndarray) -> Agreement:
    """Binary verdicts of a judge against a reference judge (e.g. the official one) on the same items."""
    x, y = np.asarray(verdicts, dtype=bool), np.asarray(reference, dtype=bool)
    if x.shape != y.shape or not x.size:
        raise ValueError("agreement needs the same non-empty items on both sides")
    share = float(np.mean(y))
    return Agreement(int(x.size), float(np.mean(x == y)), cohen_kappa(x, y), max(share, 1.0 - share))


def cohen_kappa(x: Sequence[bool] | np.ndarray, y: Sequence[bool] | np.ndarray) -> float:
    """(p_o - p_e) / (1 - p_e) with p_e = p_x p_y + (1 - p_x)(1 - p_y), for binary verdicts."""
    a, b = np.asarray(x, dtype=bool), np.asarray(y, dtype=bool)
    p_o = float(np.mean(a == b))
    p_x, p_y = float(np.mean(a)), float(np.mean(b))
    p_e = p_x * p_y + (1 - p_x) * (1 - p_y)
    return math.nan if p_e == 1.0 else (p_o - p_e) / (1.0 - p_e)


# ------------------------------------------------------------------------------- Arena-Hard v0.1 Bradley-Terry score

def bt_win_rate_vs_baseline(points: np.ndarray | float, battles: np.ndarray | float) -> np.ndarray:
    """Arena-Hard v0.1's score (win rate vs the baseline, %) from a model's battle points (wins + ties/2, `>>`
    verdicts counted `multiplier` times) and its number of battles, vectorized over resamples.

    Every v0.1 battle is the model against the one baseline, so upstream's Bradley-Terry logistic regression has a
    closed form: the likelihood depends on the two coefficients only through d = beta_baseline - beta_model, with
    P(row says "baseline wins") = sigma(ln(10) d). Upstream duplicates the battle table, a win giving two rows for the
    winner and a tie one row each way; the score equation sum_i (y_i - sigma) = 0 puts sigma at the share of
    baseline rows, so the model's predicted win rate 1 - sigma = (wins + ties/2) / battles. The Elo gap is
    400 log10(p / (1 - p)) (`elo_from_win_rate`); 0 or 100 when one side won every battle (upstream's limit)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * np.asarray(points, dtype=float) / np.asarray(battles, dtype=float)


def elo_from_win_rate(win_rate: float, scale: float = 400.0, base: float = 10.0, baseline_elo: float = 1000.0) -> float:
    """The model's Elo when the baseline sits at `baseline_elo` (inverse of upstream's `predict_win_rate`)."""
    p = win_rate / 100.0
    if p <= 0.0 or p >= 1.0:
        return -math.inf if p <= 0.0 else math.inf
    return baseline_elo + scale * math.log(p / (1.0 - p), base)
