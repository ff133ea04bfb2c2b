"""Write examples/data/customers.csv: 1,200 synthetic customers, 7 columns on very different
scales, and what they did next (stay | downgrade | leave). Seeded: the output is the same on
every run. `python examples/data/make_customers.py` rewrites it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "customers.csv"
OUTCOMES = ("stay", "downgrade", "leave")


def make(rows: int = 1200, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.integers(18, 81, rows),
        "income": rng.lognormal(10.8, 0.45, rows).round(-2),
        "visits_per_month": rng.poisson(6, rows),
        "tenure_months": rng.integers(0, 121, rows),
        "basket_eur": rng.gamma(2.0, 30.0, rows).round(2),
        "support_calls": rng.poisson(1.2, rows),
        "region": rng.choice(["north", "south", "east", "west"], rows),
    })  # fmt: skip
    z = (
        0.9 * (frame["support_calls"] - 1.2)
        - 0.035 * (frame["tenure_months"] - 60)
        - 0.25 * (frame["visits_per_month"] - 6)
        + 0.6 * (frame["region"] == "east")
    )
    noisy = z + rng.normal(0, 0.8, rows)
    frame["outcome"] = np.select([noisy < -0.6, noisy < 0.9], ["stay", "downgrade"], "leave")
    return frame


if __name__ == "__main__":
    make().to_csv(OUT, index=False)
    print(f"wrote {OUT}")
