"""The statistics every summary uses (issue 29, item 5): one place for intervals and tests.

- ci(xs): the mean over seeds with a 95 % percentile-bootstrap interval (10,000 resamples, a fixed
  generator, so a summary made twice prints the same numbers);
- paired(a, b): a comparison of two arms on the same seeds (same data per seed): the mean
  difference a - b with its bootstrap interval and the exact two-sided sign-flip permutation test
  (every one of the 2^n sign patterns for n <= 20; Monte Carlo beyond);
- unpaired(a, b): the difference of means and the permutation test over group labels (exact when
  the number of splits is at most 100,000);
- fisher_exact(k1, n1, k2, n2): Fisher's exact test of two proportions (two-sided: the sum of the
  tables no more likely than the one observed);
- trend(x, y): a monotone trend of y in x (Spearman's rho) with a permutation p.

Only numpy. Tested by tests/experiments/test_stats.py against values computed by hand and by
scipy where it is installed.
"""

import itertools
import math

import numpy as np

LEVEL = 0.95
N_BOOT = 10000
N_PERM = 100000
EXACT_SIGNS = 20
SEED = 12345


def _finite(xs):
    return np.asarray([float(x) for x in xs if x is not None and isinstance(x, (int, float, np.floating))
                       and math.isfinite(float(x))], dtype=float)


def _fmt(x):
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}"


class Interval:
    """mean, lo, hi and n of one quantity over seeds; lo = hi = nan when n < 2."""

    def __init__(self, mean, lo, hi, n):
        self.mean, self.lo, self.hi, self.n = mean, lo, hi, n

    def __str__(self):
        if self.n == 0:
            return "n/a"
        if self.n == 1:
            return f"{_fmt(self.mean)} (n=1, no interval)"
        return f"{_fmt(self.mean)} [{_fmt(self.lo)}, {_fmt(self.hi)}] (n={self.n})"

    def fmt(self, f):
        if self.n == 0:
            return "n/a"
        if self.n == 1:
            return f"{f(self.mean)} (n=1, no interval)"
        return f"{f(self.mean)} [{f(self.lo)}, {f(self.hi)}] (n={self.n})"


def bootstrap_mean(v, level=LEVEL, n_boot=N_BOOT, seed=SEED):
    """(lo, hi) of the percentile bootstrap of the mean of v (1-D array, n >= 2)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    means = v[idx].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def ci(xs, level=LEVEL):
    """Interval of the mean of the finite values of xs (95 % percentile bootstrap)."""
    v = _finite(xs)
    if len(v) == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if len(v) == 1:
        return Interval(float(v[0]), math.nan, math.nan, 1)
    lo, hi = bootstrap_mean(v, level)
    return Interval(float(v.mean()), lo, hi, len(v))


def _p_str(p):
    if p is None or not math.isfinite(p):
        return "p n/a"
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 1e-4"


class Test:
    """A comparison: the effect (with its interval where there is one), the test, p and n."""

    def __init__(self, name, effect, p, n, detail=""):
        self.name, self.effect, self.p, self.n, self.detail = name, effect, p, n, detail

    def __str__(self):
        eff = f"{self.effect}" if self.effect is not None else ""
        extra = f", {self.detail}" if self.detail else ""
        return f"{eff} ({self.name}, {_p_str(self.p)}{extra})".strip()


def sign_flip_p(d, n_perm=N_PERM, seed=SEED):
    """Two-sided p of the sign-flip permutation test of mean(d) = 0: the share of sign patterns
    whose |mean| is at least the observed one (exact for len(d) <= EXACT_SIGNS)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return math.nan
    obs = abs(d.sum()) - 1e-12 * max(1.0, abs(d).sum())
    if n <= EXACT_SIGNS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return float(np.mean(np.abs(signs @ d) >= obs))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_perm, n))
    return float((1 + np.sum(np.abs(signs @ d) >= obs)) / (n_perm + 1))


def paired(a, b, name="paired sign-flip test"):
    """a and b: values per seed, in the same seed order (pairs with a non-finite member are
    dropped). The mean difference a - b with its interval, and the exact sign-flip p."""
    pairs = [(float(x), float(y)) for x, y in zip(a, b)
             if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    d = np.asarray([x - y for x, y in pairs])
    if len(d) == 0:
        return Test(name, None, math.nan, 0)
    eff = ci(d)
    wins = int(np.sum(d < 0)), int(np.sum(d > 0))
    return Test(name, f"difference {eff}", sign_flip_p(d), len(d),
                detail=f"first lower in {wins[0]} of {len(d)}")


def ratio_paired(a, b, name="paired sign-flip test on log ratios"):
    """For positive quantities (steps, seconds, MSE): the geometric mean of a / b with its
    interval, tested on log(a / b)."""
    pairs = [(float(x), float(y)) for x, y in zip(a, b)
             if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
             and x > 0 and y > 0]
    if not pairs:
        return Test(name, None, math.nan, 0)
    lr = np.log(np.asarray([x / y for x, y in pairs]))
    if len(lr) == 1:
        eff = f"ratio {_fmt(math.exp(lr[0]))} (n=1, no interval)"
    else:
        lo, hi = bootstrap_mean(lr)
        eff = f"ratio {_fmt(math.exp(lr.mean()))} [{_fmt(math.exp(lo))}, {_fmt(math.exp(hi))}] (n={len(lr)})"
    return Test(name, eff, sign_flip_p(lr), len(lr),
                detail=f"first lower in {int(np.sum(lr < 0))} of {len(lr)}")


def permutation_p(a, b, n_perm=N_PERM, seed=SEED):
    """Two-sided p of the permutation test of mean(a) = mean(b) over group labels."""
    a, b = _finite(a), _finite(b)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    pool = np.concatenate([a, b])
    n, na = len(pool), len(a)
    obs = abs(a.mean() - b.mean()) - 1e-12 * max(1.0, np.abs(pool).max())
    total = pool.sum()
    if math.comb(n, na) <= N_PERM:
        hits = cnt = 0
        for idx in itertools.combinations(range(n), na):
            sa = pool[list(idx)].sum()
            diff = sa / na - (total - sa) / (n - na)
            hits += abs(diff) >= obs
            cnt += 1
        return hits / cnt
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_perm):
        p = rng.permutation(pool)
        hits += abs(p[:na].mean() - p[na:].mean()) >= obs
    return (1 + hits) / (n_perm + 1)


def unpaired(a, b, name="permutation test"):
    a_, b_ = _finite(a), _finite(b)
    if len(a_) == 0 or len(b_) == 0:
        return Test(name, None, math.nan, len(a_) + len(b_))
    eff = f"difference of means {_fmt(a_.mean() - b_.mean())}"
    return Test(name, eff, permutation_p(a_, b_), len(a_) + len(b_),
                detail=f"n = {len(a_)} and {len(b_)}")


def _hypergeom_pmf(k, n1, n2, m):
    # P(X = k): k successes among n1 draws of group 1, m successes in all, n1 + n2 in all
    return math.comb(m, k) * math.comb(n1 + n2 - m, n1 - k) / math.comb(n1 + n2, n1)


def fisher_exact(k1, n1, k2, n2):
    """Two-sided p of Fisher's exact test: k1 of n1 against k2 of n2."""
    m = k1 + k2
    lo, hi = max(0, m - n2), min(n1, m)
    p_obs = _hypergeom_pmf(k1, n1, n2, m)
    p = sum(q for q in (_hypergeom_pmf(k, n1, n2, m) for k in range(lo, hi + 1))
            if q <= p_obs * (1 + 1e-9))
    return min(1.0, p)


def fisher(k1, n1, k2, n2, name="Fisher's exact test"):
    return Test(name, f"{k1}/{n1} against {k2}/{n2}", fisher_exact(k1, n1, k2, n2), n1 + n2)


def _ranks(v):
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    r[order] = np.arange(len(v), dtype=float)
    # average ties
    for val in np.unique(v):
        m = v == val
        if m.sum() > 1:
            r[m] = r[m].mean()
    return r


def spearman(x, y):
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float((rx ** 2).sum() * (ry ** 2).sum()))
    return float((rx * ry).sum() / den) if den > 0 else math.nan


def trend(x, y, name="Spearman's rho, permutation test", n_perm=20000, seed=SEED):
    """A monotone trend of y in x over every (x, y) point (e.g. one per seed and K)."""
    pts = [(float(a), float(b)) for a, b in zip(x, y)
           if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    if len(pts) < 3:
        return Test(name, None, math.nan, len(pts))
    xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    rho = spearman(xs, ys)
    if not math.isfinite(rho):  # x or y constant: no order to test
        return Test(name, "rho n/a (a constant)", math.nan, len(pts))
    rng = np.random.default_rng(seed)
    hits = sum(abs(spearman(xs, rng.permutation(ys))) >= abs(rho) - 1e-12 for _ in range(n_perm))
    return Test(name, f"rho {_fmt(rho)}", (1 + hits) / (n_perm + 1), len(pts))
