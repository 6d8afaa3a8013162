"""Slipway's column profiles against pandas on the repository's datasets.

Each file is profiled by the compiled `profileTable` (CSV reader included) in a `node` child and
compared with `pandas.read_csv`: counts, missing, distinct, min, max, mean, sample std and the
quantiles (pandas' default linear interpolation) to 1e-9, the inferred types, and the top values.
With a small exact bound the same file is profiled through the sketches, which must stay within
their documented errors of pandas' exact answers.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASETS = [
    ROOT / "datasets" / "adult" / "adult.csv",
    ROOT / "datasets" / "bike_sharing" / "day.csv",
    ROOT / "datasets" / "bike_sharing" / "hour.csv",
]
TOLERANCE = 1e-9

PROFILE_JS = """
const { profileTable } = await import(process.argv[1]);
const profile = await profileTable(process.argv[2], { profile: JSON.parse(process.argv[3]) });
process.stdout.write(JSON.stringify(profile.summary()));
"""


def slipway_profile(path: Path, **options: int) -> dict:
    module = ROOT / "dist" / "src" / "data" / "profile" / "index.js"
    out = subprocess.run(
        ["node", "--input-type=module", "-e", PROFILE_JS, str(module), str(path), json.dumps(options)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return {c["name"]: c for c in json.loads(out.stdout)["columns"]}


def close(actual: float, expected: float) -> bool:
    return abs(actual - expected) <= TOLERANCE * max(1.0, abs(expected))


@pytest.mark.parametrize("path", DATASETS, ids=lambda p: p.name)
def test_profile_matches_pandas(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not in this checkout")
    df = pd.read_csv(path)
    profile = slipway_profile(path)
    assert list(profile) == list(df.columns)
    for name in df.columns:
        col, s = df[name], profile[name]
        assert s["count"] == col.count(), name
        assert s["missing"] == col.isna().sum(), name
        assert s["distinct"] == col.nunique(), name
        assert s["distinctExact"], name
        if col.dtype.kind == "i":
            assert s["type"] == "integer", name
        elif col.dtype.kind == "f":
            assert s["type"] in ("float", "integer"), name
        if col.dtype.kind in "if":
            for stat, expected in [
                ("mean", col.mean()),
                ("std", col.std()),
                ("min", col.min()),
                ("max", col.max()),
            ]:
                assert close(s[stat], float(expected)), (name, stat, s[stat], expected)
            assert close(s["stdPopulation"], float(col.std(ddof=0))), name
            for q, value in s["quantiles"].items():
                expected = float(col.quantile(float(q)))
                assert close(value, expected), (name, q, value, expected)
        else:
            dates = pd.to_datetime(col, errors="coerce", format="ISO8601")
            if s["type"] == "datetime":
                assert dates.notna().sum() == col.count(), name
                assert pd.Timestamp(s["min"]).tz_localize(None) == dates.min(), name
                assert pd.Timestamp(s["max"]).tz_localize(None) == dates.max(), name
            else:
                assert s["type"] in ("categorical", "text"), name
                counts = col.value_counts()
                top = {t["value"]: t["count"] for t in s["top"]}
                assert top == {k: counts[k] for k in top}, name
                assert max(top.values()) == counts.iloc[0], name


def test_sketches_stay_within_their_errors_of_pandas() -> None:
    path = DATASETS[0]
    df = pd.read_csv(path)
    profile = slipway_profile(path, exactLimit=50)
    n = len(df)
    for name in ["fnlwgt", "age", "capital_gain", "hours_per_week"]:
        col, s = df[name], profile[name]
        assert not s["quantilesExact"] and not s["distinctExact"], name
        # Exact regardless of the sketches.
        assert close(s["mean"], col.mean()) and close(s["std"], col.std()), name
        assert s["min"] == col.min() and s["max"] == col.max(), name
        # KLL: each reported quantile's true rank lies within 1.65% of q (ties widen the range).
        for q, value in s["quantiles"].items():
            below, at_most = (col < value).mean(), (col <= value).mean()
            assert below - 0.0165 <= float(q) <= at_most + 0.0165, (name, q, value, below, at_most)
        # HyperLogLog: within three standard errors (3 · 1.6%); linear counting when small.
        assert abs(s["distinct"] - col.nunique()) <= max(2, 0.049 * col.nunique()), (name, s["distinct"])
        # Histogram counts from sketch ranks add up and stay within the rank error per edge.
        counts = s["histogram"]["counts"]
        assert sum(counts) == n, name
        truth, _ = np.histogram(col, bins=s["histogram"]["edges"])
        drift = np.abs(np.cumsum(counts) - np.cumsum(truth)).max()
        assert drift <= 0.0165 * n + len(counts), (name, drift)
    # Misra–Gries on sketched columns: lower bounds within maxError, the heaviest value first.
    for name in ["capital_gain", "capital_loss", "hours_per_week"]:
        col, s = df[name], profile[name]
        truth = col.value_counts()
        for t in s["top"]:
            assert t["count"] <= truth[t["value"]] <= t["count"] + s.get("topMaxError", 0), (name, t)
        assert not s["topExact"] and s["top"][0]["value"] == truth.index[0], name
