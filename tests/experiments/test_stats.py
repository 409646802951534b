#!/usr/bin/python3
"""experiments/summaries/stats.py against values worked out by hand (and scipy's, where installed).
Run: /usr/bin/python3 tests/experiments/test_stats.py SOURCE_DIR"""

import math
import os
import sys

sys.path.insert(0, os.path.join(sys.argv[1] if len(sys.argv) > 1 else ".", "experiments"))
from summaries import stats  # noqa: E402

failures = []


def check(name, ok, got=""):
    if not ok:
        failures.append(f"{name}: {got}")


# Fisher's exact test: 2 of 3 against 0 of 3 is p = 0.4 (tables k = 0 and 2 have 0.2 each).
check("fisher 2/3 vs 0/3", abs(stats.fisher_exact(2, 3, 0, 3) - 0.4) < 1e-12, stats.fisher_exact(2, 3, 0, 3))
check("fisher 0/10 vs 0/10", stats.fisher_exact(0, 10, 0, 10) == 1.0)
# 10/10 against 0/10: only the two extreme tables, each 1 / C(20, 10)
check("fisher 10/10 vs 0/10", abs(stats.fisher_exact(10, 10, 0, 10) - 2 / math.comb(20, 10)) < 1e-15)

# Sign-flip test: five positive differences: 2 of 32 sign patterns reach |sum| 15.
check("sign flip all positive", abs(stats.sign_flip_p([1, 2, 3, 4, 5]) - 2 / 32) < 1e-12,
      stats.sign_flip_p([1, 2, 3, 4, 5]))
check("sign flip symmetric", stats.sign_flip_p([1, -1, 2, -2]) == 1.0)
t = stats.paired([1, 2, 3], [1, 2, 3])
check("paired equal arms", t.p == 1.0, t)
t = stats.paired([1.0, 2.0, float("nan")], [0.0, 1.0, 5.0])
check("paired drops a nan pair", t.n == 2, t.n)

# Permutation test over labels: {1,2,3} vs {4,5,6}: 2 of the 20 splits are as extreme.
check("permutation exact", abs(stats.permutation_p([1, 2, 3], [4, 5, 6]) - 0.1) < 1e-12,
      stats.permutation_p([1, 2, 3], [4, 5, 6]))

# Bootstrap interval: a constant has a zero-width interval; the interval holds the mean; one
# value has none; the same call gives the same numbers (fixed generator).
iv = stats.ci([2.0, 2.0, 2.0])
check("ci constant", iv.lo == 2.0 and iv.hi == 2.0 and iv.n == 3, iv)
iv = stats.ci([1.0, 2.0, 3.0, 4.0, 10.0])
check("ci holds the mean", iv.lo < iv.mean < iv.hi, iv)
check("ci repeatable", str(iv) == str(stats.ci([1.0, 2.0, 3.0, 4.0, 10.0])))
check("ci n=1", "no interval" in str(stats.ci([3.0])))
check("ci ignores nan", stats.ci([1.0, float("nan"), 3.0]).n == 2)
check("ci empty", str(stats.ci([])) == "n/a")

# Ratios: a is twice b in every seed.
t = stats.ratio_paired([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])
check("ratio paired", t.effect.startswith("ratio 2 [2, 2]"), t)

# Spearman: a perfect monotone trend.
check("spearman +1", abs(stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) - 1) < 1e-12)
check("spearman -1", abs(stats.spearman([1, 2, 3, 4], [4, 3, 2, 1]) + 1) < 1e-12)
t = stats.trend([1, 2, 4, 8] * 5, [4, 3, 2, 1] * 5)
check("trend significant", t.p < 1e-3, t)

t = stats.trend([0, 0, 0, 0], [1, 2, 3, 4])
check("trend of a constant has no p", t.p != t.p and "n/a" in str(t), t)

try:  # scipy, where installed, agrees on random tables
    from scipy.stats import fisher_exact as sfe
    import numpy as np
    rng = np.random.default_rng(0)
    for _ in range(200):
        n1, n2 = int(rng.integers(1, 15)), int(rng.integers(1, 15))
        k1, k2 = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
        ours = stats.fisher_exact(k1, n1, k2, n2)
        theirs = sfe([[k1, n1 - k1], [k2, n2 - k2]])[1]
        check(f"fisher {k1}/{n1} vs {k2}/{n2} against scipy", abs(ours - theirs) < 1e-9, (ours, theirs))
except ImportError:
    pass

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("stats: all checks passed")
