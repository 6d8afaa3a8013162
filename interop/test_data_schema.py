"""Slipway's schema rules flag the same rows as Great Expectations and Pandera.

Errors are injected at known rows of the repository's datasets (Adult: negative and too-high ages,
an unknown workclass, a label with the UCI test split's trailing period, missing values in a
non-nullable column, out-of-range hours, duplicated ids, a country name too long, a cross-column
violation; German credit: codes that break the pattern, an unknown purpose, out-of-range amounts,
missing durations, an amount too small for its duration). The same rules are written once as a
Slipway schema and once in the reference library; `slipway data validate --json --max-failures 0`
must flag exactly the rows the library flags, rule by rule (the library's 0-based pandas index + 1
is Slipway's 1-based data row), with the same failure counts and the same outcome under `mostly`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TQDM_DISABLE", "1")  # Great Expectations' progress bars

import great_expectations as gx  # noqa: E402
import pandera.pandas as pa  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ADULT = ROOT / "datasets" / "adult" / "adult.csv"
GERMAN = ROOT / "datasets" / "german_credit" / "german.csv"

# A file with injected errors, as pandas reads it back, and the 0-based rows of each injection.
Broken = tuple[Path, pd.DataFrame, dict[str, list[int]]]


def slipway_validate(data: Path, schema: dict, tmp_path: Path) -> dict:
    schema_file = tmp_path / f"{data.stem}.schema.json"
    schema_file.write_text(json.dumps(schema))
    out = subprocess.run(
        [
            "node",
            str(ROOT / "bin" / "slipway.js"),
            *["data", "validate", str(data), "--schema", str(schema_file), "--json", "--max-failures", "0"],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1), out.stderr
    report = json.loads(out.stdout)
    assert out.returncode == (0 if report["success"] else 1)
    return report


def flagged_by_rule(report: dict) -> dict[tuple[str, str], list[int]]:
    rows: dict[tuple[str, str], list[int]] = defaultdict(list)
    for f in report["failures"]:
        assert f["row"] is not None, f
        rows[(f["column"], f["rule"])].append(f["row"])
    return rows


def pick(rng: np.random.Generator, free: set[int], n: int) -> list[int]:
    """n distinct row indexes not used by another injection, so each rule's rows are known."""
    chosen = sorted(rng.choice(sorted(free), size=n, replace=False).tolist())
    free.difference_update(chosen)
    return chosen


# --- Adult with Great Expectations ---------------------------------------------------------------


@pytest.fixture(scope="module")
def adult_broken(tmp_path_factory: pytest.TempPathFactory) -> Broken:
    df = pd.read_csv(ADULT).drop(columns=["split"])
    df.insert(0, "id", np.arange(1, len(df) + 1))
    rng = np.random.default_rng(20240301)
    free = set(range(len(df)))
    injected: dict[str, list[int]] = {}
    injected["age_negative"] = pick(rng, free, 25)
    df.loc[injected["age_negative"], "age"] = -rng.integers(1, 60, size=25)
    injected["age_high"] = pick(rng, free, 5)
    df.loc[injected["age_high"], "age"] = 150
    injected["workclass"] = pick(rng, free, 20)
    df.loc[injected["workclass"], "workclass"] = "Space-force"
    injected["income"] = pick(rng, free, 12)
    df.loc[injected["income"], "income"] = df.loc[injected["income"], "income"] + "."
    injected["hours"] = pick(rng, free, 16)
    df.loc[injected["hours"], "hours_per_week"] = [0, 120, 168, -1] * 4
    injected["education_num"] = pick(rng, free, 15)
    df["education_num"] = df["education_num"].astype("float64")  # written as 13.0: integral floats
    df.loc[injected["education_num"], "education_num"] = np.nan
    dup_from, dup_to = pick(rng, free, 10), pick(rng, free, 10)
    df.loc[dup_to, "id"] = df.loc[dup_from, "id"].to_numpy()
    injected["id"] = sorted(dup_from + dup_to)
    injected["country"] = pick(rng, free, 7)
    df.loc[injected["country"], "native_country"] = "United-States-of-America-North"
    # age > education_num holds on every clean row; here education years equal the age.
    injected["pair"] = pick(rng, free, 9)
    df.loc[injected["pair"], "education_num"] = df.loc[injected["pair"], "age"].astype("float64")
    path = tmp_path_factory.mktemp("schema") / "adult-broken.csv"
    df.to_csv(path, index=False)
    return path, pd.read_csv(path), injected


def adult_rules(clean: pd.DataFrame) -> list[tuple[dict, tuple[str, str], object]]:
    """(Slipway column schema or cross-column rule, the rule it reports as, the same expectation in GE)."""
    workclass = sorted(clean["workclass"].dropna().unique().tolist())
    e = gx.expectations
    between = e.ExpectColumnValuesToBeBetween
    return [
        (
            {"name": "id", "type": "integer", "unique": True},
            ("id", "unique"),
            e.ExpectColumnValuesToBeUnique(column="id"),
        ),
        (
            {"name": "age", "type": "integer", "range": {"min": 17, "max": 90}},
            ("age", "range"),
            between(column="age", min_value=17, max_value=90),
        ),
        (
            {"name": "workclass", "type": "categorical", "categories": workclass},
            ("workclass", "categories"),
            e.ExpectColumnValuesToBeInSet(column="workclass", value_set=workclass),
        ),
        (
            {"name": "education_num", "type": "integer", "nullable": False},
            ("education_num", "nullable"),
            e.ExpectColumnValuesToNotBeNull(column="education_num"),
        ),
        (
            {"name": "capital_gain", "type": "integer", "range": {"min": 0, "max": 50000}, "mostly": {"range": 0.99}},
            ("capital_gain", "range"),
            between(column="capital_gain", min_value=0, max_value=50000, mostly=0.99),
        ),
        (
            {"name": "capital_loss", "type": "integer", "range": {"min": 0, "max": 3000}, "mostly": {"range": 0.9999}},
            ("capital_loss", "range"),
            between(column="capital_loss", min_value=0, max_value=3000, mostly=0.9999),
        ),
        (
            {"name": "hours_per_week", "type": "integer", "range": {"min": 1, "max": 99}},
            ("hours_per_week", "range"),
            between(column="hours_per_week", min_value=1, max_value=99),
        ),
        (
            {"name": "native_country", "type": "categorical", "length": {"min": 4, "max": 26}},
            ("native_country", "length"),
            e.ExpectColumnValueLengthsToBeBetween(column="native_country", min_value=4, max_value=26),
        ),
        (
            {"name": "income", "type": "categorical", "categories": ["<=50K", ">50K"], "environments": ["training"]},
            ("income", "categories"),
            e.ExpectColumnValuesToBeInSet(column="income", value_set=["<=50K", ">50K"]),
        ),
        (
            {"name": "years", "expr": "age > education_num"},
            ("years", "expression"),
            # Slipway leaves a row with a missing operand unchecked, as a SQL CHECK does.
            e.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="age", column_B="education_num", ignore_row_if="either_value_is_missing"
            ),
        ),
    ]


def ge_results(df: pd.DataFrame, expectations: list[object]) -> list[dict]:
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("slipway")
        .add_dataframe_asset("table")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": df})
    )
    out = []
    for expectation in expectations:
        r = batch.validate(expectation, result_format="COMPLETE")
        assert not r.exception_info.get("raised_exception", False), r.exception_info
        rows = [int(i) + 1 for i in r.result["unexpected_index_list"]]
        out.append({"success": r.success, "rows": rows, "count": r.result["unexpected_count"]})
    return out


def test_adult_rules_flag_the_rows_great_expectations_flags(adult_broken: Broken, tmp_path: Path) -> None:
    path, df, injected = adult_broken
    rules = adult_rules(pd.read_csv(ADULT))
    columns = [spec for spec, _, _ in rules if "expr" not in spec]
    named = {c["name"] for c in columns}
    columns += [{"name": c, "type": "any"} for c in df.columns if c not in named]
    cross = [spec for spec, _, _ in rules if "expr" in spec]
    schema = {"format": "slipway.schema", "version": 1, "columns": columns, "rules": cross}
    report = slipway_validate(path, schema, tmp_path)
    assert report["rows_checked"] == len(df) == 48842
    flagged = flagged_by_rule(report)
    outcome = {(r["column"], r["rule"]): r for r in report["rules"]}

    for (_, key, _), theirs in zip(rules, ge_results(df, [g for _, _, g in rules]), strict=True):
        ours = outcome[key]
        assert ours["success"] == theirs["success"], (key, theirs)
        assert ours["failed"] == theirs["count"], key
        # A rule that passes within `mostly` lists no rows; a failing one lists exactly GE's.
        assert flagged.get(key, []) == ([] if theirs["success"] else sorted(theirs["rows"])), key
    # Every other rule (types of the listed columns) passed: integral floats such as 13.0 are integers.
    failed = {k for k, r in outcome.items() if not r["success"]}
    assert failed == {k for _, k, _ in rules} - {("capital_gain", "range")}

    # The rows are the injected ones (nothing else in Adult breaks these rules), 1-based.
    one = lambda rows: sorted(i + 1 for i in rows)  # noqa: E731
    assert flagged[("age", "range")] == one(injected["age_negative"] + injected["age_high"])
    assert flagged[("workclass", "categories")] == one(injected["workclass"])
    assert flagged[("income", "categories")] == one(injected["income"])
    assert flagged[("hours_per_week", "range")] == one(injected["hours"])
    assert flagged[("education_num", "nullable")] == one(injected["education_num"])
    assert flagged[("id", "unique")] == one(injected["id"])
    assert flagged[("native_country", "length")] == one(injected["country"])
    # The pair rule also catches the negative ages (an age below the years of education).
    assert flagged[("years", "expression")] == one(injected["pair"] + injected["age_negative"])
    capital = {r["column"]: r for r in report["rules"] if r["rule"] == "range" and r["column"].startswith("capital")}
    assert capital["capital_gain"]["success"] and capital["capital_gain"]["failed"] == 244
    assert not capital["capital_loss"]["success"] and capital["capital_loss"]["failed"] == 18
    assert not report["success"]


# --- German credit with Pandera -------------------------------------------------------------------


@pytest.fixture(scope="module")
def german_broken(tmp_path_factory: pytest.TempPathFactory) -> Broken:
    df = pd.read_csv(GERMAN)
    rng = np.random.default_rng(19940101)
    free = set(range(len(df)))
    injected: dict[str, list[int]] = {}
    injected["checking"] = pick(rng, free, 6)
    df.loc[injected["checking"], "checking_account_status"] = ["A15", "B11", "a12", "A111", "A1", " A11"]
    injected["purpose"] = pick(rng, free, 4)
    df.loc[injected["purpose"], "purpose"] = "A499"
    injected["amount"] = pick(rng, free, 4)
    df.loc[injected["amount"], "credit_amount"] = [100, 249, 20001, 99999]
    injected["duration"] = pick(rng, free, 5)
    df["duration_months"] = df["duration_months"].astype("float64")
    df.loc[injected["duration"], "duration_months"] = np.nan
    # credit_amount >= 20 * duration_months holds on every clean row (the least is 24 a month).
    injected["monthly"] = pick(rng, free, 6)
    df.loc[injected["monthly"], "duration_months"] = 60.0
    df.loc[injected["monthly"], "credit_amount"] = [300, 500, 900, 1199, 1000, 250]
    path = tmp_path_factory.mktemp("schema") / "german-broken.csv"
    df.to_csv(path, index=False)
    return path, pd.read_csv(path), injected


# Pandera's check names (before their arguments) as Slipway's rule names.
PANDERA_RULES = {"str_matches": "pattern", "isin": "categories", "in_range": "range", "not_nullable": "nullable"}


def test_german_credit_rules_flag_the_rows_pandera_flags(german_broken: Broken, tmp_path: Path) -> None:
    path, df, injected = german_broken
    purposes = sorted(pd.read_csv(GERMAN)["purpose"].unique().tolist())
    slipway = {
        "format": "slipway.schema",
        "version": 1,
        "columns": [
            {"name": "checking_account_status", "type": "categorical", "pattern": "A1[1-4]"},
            {"name": "purpose", "type": "categorical", "categories": purposes},
            {"name": "credit_amount", "type": "integer", "range": {"min": 250, "max": 20000}},
            {"name": "duration_months", "type": "integer", "nullable": False},
        ],
        "table": {"extra_columns": True},
        "rules": [{"name": "monthly", "expr": "credit_amount >= 20 * duration_months"}],
    }
    report = slipway_validate(path, slipway, tmp_path)
    assert report["rows_checked"] == 1000
    flagged = flagged_by_rule(report)

    schema = pa.DataFrameSchema(
        {
            # str_matches is re.match (anchored at the start only): \Z completes the full match.
            "checking_account_status": pa.Column(
                checks=pa.Check.str_matches(r"A1[1-4]\Z"), nullable=True
            ),
            "purpose": pa.Column(checks=pa.Check.isin(purposes), nullable=True),
            "credit_amount": pa.Column(checks=pa.Check.in_range(250, 20000), nullable=True),
            "duration_months": pa.Column(nullable=False),
        },
        checks=[
            pa.Check(
                lambda d: (d.credit_amount >= 20 * d.duration_months)
                | d.credit_amount.isna()
                | d.duration_months.isna(),
                name="monthly",
            )
        ],
    )
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        schema.validate(df, lazy=True)
    cases = caught.value.failure_cases
    theirs: dict[tuple[str, str], list[int]] = {}
    for (column, check), rows in cases.groupby(["column", "check"])["index"]:
        rule = PANDERA_RULES.get(check.split("(")[0], check)
        key = ("monthly", "expression") if check == "monthly" else (column, rule)
        theirs[key] = sorted({int(i) + 1 for i in rows} | set(theirs.get(key, [])))

    assert set(theirs) == set(flagged)
    for key, rows in theirs.items():
        assert flagged[key] == rows, key
    one = lambda rows: sorted(i + 1 for i in rows)  # noqa: E731
    assert flagged[("checking_account_status", "pattern")] == one(injected["checking"])
    assert flagged[("purpose", "categories")] == one(injected["purpose"])
    assert flagged[("credit_amount", "range")] == one(injected["amount"])
    assert flagged[("duration_months", "nullable")] == one(injected["duration"])
    # Two of the small amounts (100, 249 over 4+ months) also break the monthly rule.
    monthly = set(one(injected["monthly"]))
    assert monthly <= set(flagged[("monthly", "expression")])
    extra = set(flagged[("monthly", "expression")]) - monthly
    assert extra <= set(one(injected["amount"]))
    assert all(df.loc[r - 1, "credit_amount"] < 20 * df.loc[r - 1, "duration_months"] for r in extra)
