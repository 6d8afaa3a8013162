"""`slipway drift` against Evidently's DataDriftPreset on the repository's datasets.

Each case writes a reference and a current CSV, runs `node bin/slipway.js drift --json` and
interop/evidently_drift.py (Evidently 0.7.23 in interop/.venv-drift, built by drift-venv.sh: it
needs pandas 2) on the same files, and requires every column's type, test name, threshold and
decision, the dataset verdict and the drift share to be equal, and every score within 1e-6
relative (zeros exactly). Real shifts (Adult train vs test, bike sharing 2011 vs 2012, German
credit's first half vs second) and injected ones (shifted and rescaled numbers, relabelled and
reweighted categories, missing values), each with a small reference (at most 1000 rows: ks,
chisquare, z) and a large one (wasserstein, jensenshannon); then every test of the catalogue
named as a column override.
"""

from __future__ import annotations

import json
import math
import subprocess
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "datasets"
REL = 1e-6


@cache
def evidently_python() -> str:
    out = subprocess.run(["bash", str(ROOT / "interop" / "drift-venv.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


@cache
def slipway_tests() -> tuple[str, ...]:
    script = "import('./dist/src/monitoring/index.js').then(m => console.log(JSON.stringify([...m.statTests.keys()])))"
    out = subprocess.run(["node", "-e", script], cwd=ROOT, check=True, capture_output=True, text=True)
    return tuple(json.loads(out.stdout))


def flags(overrides: dict[str, str] | None, thresholds: dict[str, float] | None) -> list[str]:
    out = []
    for column, test in (overrides or {}).items():
        out += ["--test", f"{column}={test}"]
    for column, threshold in (thresholds or {}).items():
        out += ["--threshold", f"{column}={threshold}"]
    return out


def run_both(ref: Path, cur: Path, overrides=None, thresholds=None) -> tuple[dict, dict]:
    extra = flags(overrides, thresholds)
    slipway = subprocess.run(
        ["node", "bin/slipway.js", "drift", "--reference", str(ref), "--current", str(cur), "--json", *extra],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    evidently = subprocess.run(
        [evidently_python(), str(ROOT / "interop" / "evidently_drift.py"), str(ref), str(cur), *extra],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(slipway.stdout), json.loads(evidently.stdout)


def assert_same(ours: dict, theirs: dict) -> None:
    assert sorted(ours["columns"]) == sorted(theirs["columns"])
    problems = []
    for name, want in theirs["columns"].items():
        got = ours["columns"][name]
        for key in ("type", "test", "threshold", "drifted"):
            if got[key] != want[key]:
                problems.append(f"{name}.{key}: slipway {got[key]!r}, evidently {want[key]!r}")
        a, b = float(got["score"]), float(want["score"])
        same = a == b if (b == 0 or math.isinf(b)) else abs(a - b) / abs(b) <= REL
        if not same:
            problems.append(f"{name}.score: slipway {a!r}, evidently {b!r}")
    assert not problems, "\n".join(problems)
    assert ours["dataset_drift"] == theirs["dataset_drift"]
    assert ours["drift_share"] == pytest.approx(theirs["drift_share"], rel=1e-12)


def adult() -> pd.DataFrame:
    return pd.read_csv(DATASETS / "adult" / "adult.csv")


def inject(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Shifted and rescaled numbers, a relabelled and a reweighted category, missing values."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    numeric = [c for c in out.columns if pd.api.types.is_numeric_dtype(out[c])]
    categorical = [c for c in out.columns if c not in numeric]
    if numeric:
        c = numeric[0]
        out[c] = out[c] + out[c].std() * 0.3
    if len(numeric) > 1:
        c = numeric[1]
        out[c] = out[c] * 1.1
    if len(numeric) > 2:
        c = numeric[2]
        out.loc[rng.random(len(out)) < 0.25, c] = np.nan
    if categorical:
        c = categorical[0]
        top = out[c].value_counts().index[0]
        out.loc[(out[c] == top) & (rng.random(len(out)) < 0.4), c] = "relabelled"
    if len(categorical) > 1:
        c = categorical[1]
        keep = (out[c] != out[c].value_counts().index[-1]) | (rng.random(len(out)) < 0.2)
        out.loc[~keep, c] = out[c].value_counts().index[0]
    return out


def cases() -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    a = adult().drop(columns=["split"])
    train, test = a[adult()["split"] == "train"], a[adult()["split"] == "test"]
    hour = pd.read_csv(DATASETS / "bike_sharing" / "hour.csv")
    day = pd.read_csv(DATASETS / "bike_sharing" / "day.csv")
    german = pd.read_csv(DATASETS / "german_credit" / "german.csv")
    return [
        ("adult train vs test, small reference", train.sample(800, random_state=1), test),
        ("adult train vs test, large reference", train, test),
        ("adult injected, small reference", train.sample(1000, random_state=2), inject(test, 3)),
        ("adult injected, large reference", train, inject(test, 4)),
        ("bike hourly 2011 vs 2012, small reference", hour[hour.yr == 0].sample(900, random_state=5), hour[hour.yr == 1]),
        ("bike hourly 2011 vs 2012, large reference", hour[hour.yr == 0], hour[hour.yr == 1]),
        ("bike hourly injected, large reference", hour[hour.yr == 0], inject(hour[hour.yr == 0], 6)),
        ("bike daily 2011 vs 2012 (dates as categories)", day[day.yr == 0], day[day.yr == 1]),
        ("german credit first half vs second", german.iloc[:500], german.iloc[500:]),
        ("german credit injected", german.iloc[:500], inject(german.iloc[500:], 7)),
    ]


CASES = cases()


@pytest.mark.parametrize("label,reference,current", CASES, ids=[c[0] for c in CASES])
def test_drift_equals_data_drift_preset(label, reference, current, tmp_path):
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    reference.to_csv(ref, index=False)
    current.to_csv(cur, index=False)
    ours, theirs = run_both(ref, cur)
    assert_same(ours, theirs)
    assert len(ours["columns"]) >= 10
    # The default choice is the one the reference size calls for.
    small = len(reference) <= 1000
    tests = {c["test"] for c in ours["columns"].values()}
    assert tests <= ({"ks", "chisquare", "z"} if small else {"wasserstein", "jensenshannon"})


def test_header_names_are_pandas_names(tmp_path):
    """A file as pandas' to_csv writes it by default, its index column under an empty name, and a
    repeated column name: Slipway names the columns as read_csv does, so the reports line up."""
    a = adult().drop(columns=["split"])
    train, test = a[a.index % 2 == 0], a[a.index % 2 == 1]
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    for frame, path in ((train.sample(900, random_state=8), ref), (test, cur)):
        subset = frame[["age", "hours_per_week", "age", "workclass"]]
        subset.to_csv(path)  # index=True: the header starts with an empty name
    assert ref.read_text().split("\n")[0] == ",age,hours_per_week,age,workclass"
    ours, theirs = run_both(ref, cur)
    assert sorted(ours["columns"]) == ["Unnamed: 0", "age", "age.1", "hours_per_week", "workclass"]
    assert_same(ours, theirs)


def test_mixed_columns_and_lines_of_spaces_as_pandas_reads_them(tmp_path):
    """A mixed column (numbers spelled several ways among words) is an object column in pandas,
    its cells kept as text: 1, 1.0 and ' 1' are three categories. A line of spaces is blank."""
    rng = np.random.default_rng(9)

    def write(path, weights):
        spellings = ["1", "1.0", " 1", "1e0", "True", "true", "word"]
        lines = ["x,spelled"]
        for i in range(400):
            lines.append(f"{rng.normal():.4f},{rng.choice(spellings, p=weights)}")
            if i % 50 == 0:
                lines.append("   ")
        path.write_text("\n".join(lines) + "\n")

    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    write(ref, [0.3, 0.3, 0.1, 0.1, 0.1, 0.05, 0.05])
    write(cur, [0.5, 0.1, 0.1, 0.1, 0.05, 0.1, 0.05])
    ours, theirs = run_both(ref, cur)
    assert ours["columns"]["x"]["type"] == "numerical"
    assert ours["columns"]["spelled"]["type"] == "categorical"
    assert_same(ours, theirs)


# Each test of the catalogue as a column override, on Adult (equal sizes so fisher_exact applies).
NUMERICAL_TESTS = [
    "ks", "wasserstein", "jensenshannon", "psi", "kl_div", "hellinger", "anderson", "cramer_von_mises",
    "es", "t_test", "mannw", "ed", "empirical_mmd",
]  # fmt: skip
CATEGORICAL_TESTS = ["chisquare", "z", "jensenshannon", "psi", "kl_div", "hellinger", "fisher_exact", "g_test", "TVD"]
ALL_TESTS = sorted(set(NUMERICAL_TESTS) | set(CATEGORICAL_TESTS))


def test_the_catalogue_has_eighteen_tests():
    assert len(ALL_TESTS) == 18


@pytest.mark.parametrize("test", ALL_TESTS)
def test_override_equals_evidently(test, tmp_path):
    if test not in slipway_tests():
        pytest.skip(f"{test} is not in slipway's registry yet")
    a = adult().drop(columns=["split"])
    train, held_out = a[adult()["split"] == "train"], a[adult()["split"] == "test"]
    reference = train.sample(600, random_state=11)
    current = inject(held_out.sample(600, random_state=12), 13)
    overrides = {}
    if test in NUMERICAL_TESTS:
        overrides.update({"age": test, "hours_per_week": test, "fnlwgt": test})
    if test in CATEGORICAL_TESTS:
        # fisher_exact takes two values; both it and g_test need as many values on each side
        # (Evidently raises otherwise, and so does Slipway): columns without missing values.
        if test == "fisher_exact":
            overrides.update({"sex": test, "income": test})
        elif test == "g_test":
            overrides.update({"race": test, "relationship": test})
        else:
            overrides.update({"workclass": test, "race": test})
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    reference.to_csv(ref, index=False)
    current.to_csv(cur, index=False)
    ours, theirs = run_both(ref, cur, overrides, {next(iter(overrides)): 0.2})
    assert_same(ours, theirs)
    for column in overrides:
        assert ours["columns"][column]["test"] == test
