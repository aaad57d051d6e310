"""Reference figures for test/human-eval-stats.test.ts, from the packages that define them.

Krippendorff's alpha (nominal) from `krippendorff` (Castro's implementation of Krippendorff 2011), the
Bradley-Terry MLE from `choix` (Hunter's MM algorithm; ties given as half a win each way by doubling every
count), and the two-sided exact sign test from `scipy.stats.binomtest`.

    python -m venv /tmp/ref && /tmp/ref/bin/pip install krippendorff==0.9.0 choix==0.4.1 scipy
    /tmp/ref/bin/python dev/human-eval-reference.py > test/fixtures/human-eval/reference.json
"""

import json

import choix
import krippendorff
import numpy as np
from scipy.stats import binomtest

nan = float("nan")

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units, nominal
# values 1-5, missing entries as nan; the paper gives alpha = 0.743.
PAPER = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
]
# Three raters' A / tie / B choices (0 / 1 / 2) on 10 pairs, two left unrated: numbers fed to the unit.
RATINGS = [
    [0, 0, 1, 2, 0, 2, 1, 0, nan, 2],
    [0, 1, 1, 2, 0, 2, 0, 0, 2, 2],
    [0, 0, 2, 2, 1, 2, 1, nan, 2, 0],
]


def alpha(rows):
    return krippendorff.alpha(reliability_data=np.array(rows, dtype=float), level_of_measurement="nominal")


# Bradley-Terry between 3 systems: [i, j, wins of i over j, ties of i and j]; each pair has two rows (i, j) and
# (j, i), both listing the pair's ties, so 0 and 1 have 14 + 6 decided judgements and 4 ties.
PAIRS = [[0, 1, 14, 4], [1, 0, 6, 4], [0, 2, 9, 2], [2, 0, 7, 2], [1, 2, 5, 3], [2, 1, 11, 3]]


def bradley_terry(pairs, n):
    data = []
    for w, l, wins, ties in pairs:
        data += [(w, l)] * (2 * wins + ties)  # doubled: a tie is half a win each way, one half in each row
    params = choix.mm_pairwise(n, data, alpha=0.0, max_iter=100000, tol=1e-12)
    p = np.exp(params)
    return list(p / p.sum())


SIGN = [[14, 6], [3, 17], [10, 10], [0, 5], [1, 0]]

print(
    json.dumps(
        {
            "krippendorffPaper": {"data": [[None if x != x else x for x in r] for r in PAPER], "alpha": alpha(PAPER)},
            "krippendorffRatings": {
                "data": [[None if x != x else x for x in r] for r in RATINGS],
                "alpha": alpha(RATINGS),
            },
            "bradleyTerry": {"pairs": PAIRS, "strengths": bradley_terry(PAIRS, 3)},
            "signTest": [{"wins": a, "losses": b, "p": binomtest(a, a + b, 0.5).pvalue} for a, b in SIGN],
        },
        indent=1,
    )
)
