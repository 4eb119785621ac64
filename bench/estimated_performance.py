"""Estimated performance (CBPE, riskcore.estimation) of a 1M-row month against the realised AUC
on the same rows (riskcore.metrics.roc_auc, what model_performance computes once labels mature).

`python -m bench.estimated_performance [--rows 1000000]`: PDs shaped like a retail book's, labels
drawn from them; best of 3 runs each, and the ratio.
"""

import argparse
import time


def main(argv=None) -> int:
    import numpy as np

    from riskcore.estimation import estimated_performance
    from riskcore.metrics import roc_auc

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args(argv).rows
    rng = np.random.default_rng(0)
    pd_ = 1 / (1 + np.exp(-rng.normal(-2.6, 1.0, rows)))
    y = (rng.random(rows) < pd_).astype("int64")

    def best(fn) -> float:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            fn()
            timings.append(time.perf_counter() - started)
        return min(timings)

    estimate = estimated_performance(pd_, 0.95)
    ours, realised = best(lambda: estimated_performance(pd_, 0.95)), best(lambda: roc_auc(y, pd_))
    print(
        f"{rows:,} rows: estimate (AUC, default rate, 95% bounds) {ours:.3f} s; realised roc_auc {realised:.3f} s; ratio {ours / realised:.2f}"
        f" | estimated AUC {estimate['estimated_auc']:.4f} [{estimate['estimated_auc_low']:.4f}, {estimate['estimated_auc_high']:.4f}],"
        f" realised {roc_auc(y, pd_):.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
