"""Slipway's cleaning steps against scikit-learn on the repository's datasets.

The same steps are fitted on a training split by `slipway data fit` and by scikit-learn
(SimpleImputer, StandardScaler, MinMaxScaler, FunctionTransformer(np.log1p),
OneHotEncoder(handle_unknown='ignore'), OrdinalEncoder(unknown_value=-1)), each step on the output
of the one before as in a Pipeline; the held-out split is transformed by `slipway data transform`
and by the fitted estimators, and every output column must agree to 1e-9 (relative).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

ROOT = Path(__file__).resolve().parents[1]
ADULT = ROOT / "datasets" / "adult" / "adult.csv"
GERMAN = ROOT / "datasets" / "german_credit" / "german.csv"
TOLERANCE = 1e-9

def slipway(*args: str) -> str:
    out = subprocess.run(["node", str(ROOT / "bin" / "slipway.js"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def fit_transform(tmp: Path, spec: dict, train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    train_csv, test_csv = tmp / "train.csv", tmp / "test.csv"
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    (tmp / "spec.json").write_text(json.dumps(spec))
    slipway("data", "fit", str(train_csv), "--steps", str(tmp / "spec.json"), "-o", str(tmp / "fitted.json"))
    slipway("data", "transform", str(test_csv), "--steps", str(tmp / "fitted.json"), "-o", str(tmp / "out.csv"))
    return pd.read_csv(tmp / "out.csv"), json.loads((tmp / "fitted.json").read_text())


def chain(train: pd.DataFrame, test: pd.DataFrame, columns: list[str], *estimators) -> tuple[np.ndarray, list[str]]:
    """Fits estimators one after another on train[columns] (a Pipeline); returns test transformed and names."""
    a, b = train[columns], test[columns]
    names = columns
    for est in estimators:
        a = est.fit_transform(a)
        b = est.transform(b)
        if hasattr(est, "get_feature_names_out") and isinstance(est, OneHotEncoder):
            names = list(est.get_feature_names_out(columns))
    return np.asarray(b, dtype=float), names


def assert_columns_close(actual: pd.DataFrame, expected: dict[str, np.ndarray]) -> None:
    assert set(actual.columns) == set(expected), (sorted(set(actual.columns) ^ set(expected)))
    for name, want in expected.items():
        got = actual[name].to_numpy(dtype=float)
        assert got.shape == want.shape, name
        bad = np.abs(got - want) > TOLERANCE * np.maximum(1.0, np.abs(want))
        assert not bad.any(), (name, np.flatnonzero(bad)[:5], got[bad][:5], want[bad][:5])


def test_adult_matches_scikit_learn(tmp_path: Path) -> None:
    df = pd.read_csv(ADULT)
    # Missing numbers to impute (Adult's gaps are all in categorical columns).
    df.loc[df.index % 11 == 0, "age"] = np.nan
    df.loc[df.index % 13 == 0, "hours_per_week"] = np.nan
    train = df[df["split"] == "train"].reset_index(drop=True)
    test = df[df["split"] == "test"].reset_index(drop=True)
    # Categories the training split never saw: all zeros (one-hot) and -1 (ordinal).
    test.loc[0, "workclass"] = "Space-agency"
    test.loc[1, "education"] = "Hogwarts"
    assert train["workclass"].isna().any() and test["occupation"].isna().any()

    one_hot = ["workclass", "marital_status", "relationship", "race", "sex"]
    ordinal = ["education", "occupation", "native_country"]
    spec = {
        "steps": [
            {"step": "impute", "columns": ["age"], "strategy": "median"},
            {"step": "impute", "columns": ["hours_per_week"], "strategy": "mean"},
            {"step": "impute", "columns": ["workclass", "occupation", "native_country"], "strategy": "most_frequent"},
            {"step": "log", "columns": ["capital_gain", "capital_loss"]},
            {"step": "min_max_scale", "columns": ["capital_gain", "capital_loss"]},
            {"step": "standardize", "columns": ["age", "fnlwgt", "education_num", "hours_per_week"]},
            {"step": "one_hot", "columns": one_hot, "separator": "_"},
            {"step": "ordinal", "columns": ordinal},
        ],
        "remainder": "drop",
    }
    out, fitted = fit_transform(tmp_path, spec, train, test)
    assert len(out) == len(test)

    expected: dict[str, np.ndarray] = {}
    for col, strategy in [("age", "median"), ("hours_per_week", "mean")]:
        values, _ = chain(train, test, [col], SimpleImputer(strategy=strategy), StandardScaler())
        expected[col] = values[:, 0]
    for col in ["fnlwgt", "education_num"]:
        values, _ = chain(train, test, [col], StandardScaler())
        expected[col] = values[:, 0]
    for col in ["capital_gain", "capital_loss"]:
        values, _ = chain(train, test, [col], FunctionTransformer(np.log1p), MinMaxScaler())
        expected[col] = values[:, 0]
    imputed = {"workclass", "occupation", "native_country"}
    for col in one_hot:
        steps = [SimpleImputer(strategy="most_frequent")] if col in imputed else []
        values, names = chain(
            train, test, [col], *steps, OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        )
        for j, name in enumerate(names):
            expected[name] = values[:, j]
    for col in ordinal:
        steps = [SimpleImputer(strategy="most_frequent")] if col in imputed else []
        values, _ = chain(
            train, test, [col], *steps, OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        )
        expected[col] = values[:, 0]
    assert_columns_close(out, expected)

    assert out.loc[0, [c for c in out.columns if c.startswith("workclass_")]].sum() == 0
    assert out.loc[1, "education"] == -1
    # The learned parameters themselves, against the estimators' attributes.
    scaler = StandardScaler().fit(SimpleImputer(strategy="median").fit_transform(train[["age"]]))
    learned = fitted["steps"][5]["fitted"]["age"]
    assert abs(learned["mean"] - scaler.mean_[0]) <= TOLERANCE * abs(scaler.mean_[0])
    assert abs(learned["scale"] - scaler.scale_[0]) <= TOLERANCE * scaler.scale_[0]
    assert fitted["steps"][0]["fitted"]["age"]["value"] == train["age"].median()


def test_german_credit_matches_scikit_learn(tmp_path: Path) -> None:
    df = pd.read_csv(GERMAN)
    train, test = df.iloc[:700].reset_index(drop=True), df.iloc[700:].reset_index(drop=True)
    one_hot = ["checking_account_status", "purpose", "housing"]
    ordinal = ["savings_account", "employment_since"]
    spec = {
        "steps": [
            {"step": "clip", "columns": ["credit_amount"], "lower_quantile": 0.01, "upper_quantile": 0.99},
            {"step": "log", "columns": ["duration_months"]},
            {"step": "standardize", "columns": ["credit_amount", "duration_months", "age_years"]},
            {"step": "min_max_scale", "columns": ["installment_rate_pct"], "feature_range": [-1, 1]},
            {"step": "one_hot", "columns": one_hot, "separator": "_"},
            {"step": "ordinal", "columns": ordinal},
        ],
        "remainder": "drop",
    }
    out, fitted = fit_transform(tmp_path, spec, train, test)

    expected: dict[str, np.ndarray] = {}
    # pandas' quantiles (linear interpolation) as clip bounds, then the scaler on the clipped column.
    lo, hi = train["credit_amount"].quantile(0.01), train["credit_amount"].quantile(0.99)
    clip = FunctionTransformer(lambda x: np.clip(x, lo, hi))
    values, _ = chain(train, test, ["credit_amount"], clip, StandardScaler())
    expected["credit_amount"] = values[:, 0]
    values, _ = chain(train, test, ["duration_months"], FunctionTransformer(np.log1p), StandardScaler())
    expected["duration_months"] = values[:, 0]
    values, _ = chain(train, test, ["age_years"], StandardScaler())
    expected["age_years"] = values[:, 0]
    values, _ = chain(train, test, ["installment_rate_pct"], MinMaxScaler(feature_range=(-1, 1)))
    expected["installment_rate_pct"] = values[:, 0]
    for col in one_hot:
        values, names = chain(train, test, [col], OneHotEncoder(handle_unknown="ignore", sparse_output=False))
        for j, name in enumerate(names):
            expected[name] = values[:, j]
    for col in ordinal:
        values, _ = chain(
            train, test, [col], OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        )
        expected[col] = values[:, 0]
    assert_columns_close(out, expected)
    bounds = fitted["steps"][0]["fitted"]["credit_amount"]
    assert bounds["exact"] and bounds["min"] == pytest.approx(lo, rel=TOLERANCE)
    assert bounds["max"] == pytest.approx(hi, rel=TOLERANCE)


def test_medians_equal_pandas_and_scikit_learn_exactly(tmp_path: Path) -> None:
    path = ROOT / "datasets" / "bike_sharing" / "hour.csv"
    df = pd.read_csv(path)
    columns = ["temp", "atemp", "hum", "windspeed", "casual", "cnt"]
    df.loc[df.index % 7 == 0, columns] = np.nan
    spec = {"steps": [{"step": "impute", "columns": columns, "strategy": "median"}], "remainder": "drop"}
    out, fitted = fit_transform(tmp_path, spec, df, df)
    imputer = SimpleImputer(strategy="median").fit(df[columns])
    for j, col in enumerate(columns):
        learned = fitted["steps"][0]["fitted"][col]
        assert learned["exact"] and learned["n"] == df[col].count(), col
        # Bit for bit: the mean of the two middle values, as numpy computes a median.
        assert learned["value"] == df[col].median() == imputer.statistics_[j], col
        assert (out[col].to_numpy() == imputer.transform(df[columns])[:, j]).all(), col
