"""Evidently's DataDriftPreset on two CSV files, printed as `slipway drift --json` prints its result.

Runs in interop/.venv-drift (Evidently needs pandas 2; see requirements-drift.txt):

    python interop/evidently_drift.py ref.csv cur.csv [--test col=name] [--threshold col=x]
        [--method name] [--drift-share x] [--time]

Columns are typed by Evidently's own inference (`infer_column_type` on the current frame, the one
Report.run takes its data definition from), except that a column it would call Text is given to it
as categorical, as Slipway types it (Evidently's text drift is a domain classifier, not one of the
per-column tests). With --time, prints the seconds spent reading and running and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.datasets import infer_column_type
from evidently.legacy.calculations.stattests import mmd_stattest
from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
from evidently.legacy.core import ColumnType
from evidently.presets import DataDriftPreset

warnings.filterwarnings("ignore")

# empirical_mmd draws its permutations from numpy's global generator, which Evidently never seeds
# (its p-value changes from run to run, and with whatever ran before it in the report). Seeded to
# 0 at the start of each such test here, so the p-value is reproducible; Slipway draws the same.
_mmd_pval = mmd_stattest.mmd_pval


def _seeded_mmd_pval(x, y):
    np.random.seed(0)
    return _mmd_pval(x, y)


mmd_stattest.mmd_pval = _seeded_mmd_pval


def pairs(items: list[str], convert) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = convert(value)
    return out


def definition(frame: pd.DataFrame) -> tuple[DataDefinition, dict[str, str]]:
    numerical, categorical, types = [], [], {}
    for column in frame.columns:
        kind = infer_column_type(frame[column])
        if kind == ColumnType.Numerical:
            numerical.append(column)
            types[column] = "numerical"
        elif kind in (ColumnType.Categorical, ColumnType.Text):
            categorical.append(column)
            types[column] = "categorical"
    return (
        DataDefinition(
            numerical_columns=numerical,
            categorical_columns=categorical,
            text_columns=[],
            datetime_columns=[],
            unknown_columns=[],
            list_columns=[],
        ),
        types,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("--test", action="append", default=[])
    parser.add_argument("--threshold", action="append", default=[])
    parser.add_argument("--method")
    parser.add_argument("--drift-share", type=float, default=0.5)
    parser.add_argument("--time", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    cpu_started = time.process_time()
    reference = pd.read_csv(args.reference)
    current = pd.read_csv(args.current)
    read = time.perf_counter() - started
    data_definition, types = definition(current)
    preset = DataDriftPreset(
        drift_share=args.drift_share,
        method=args.method,
        per_column_method=pairs(args.test, str) or None,
        per_column_threshold=pairs(args.threshold, float) or None,
    )
    snapshot = Report([preset], include_tests=True).run(
        current_data=Dataset.from_pandas(current, data_definition=data_definition),
        reference_data=Dataset.from_pandas(reference, data_definition=data_definition),
    )
    elapsed = time.perf_counter() - started

    by_display = {}
    for name, per_type in _registered_stat_tests.items():
        for test in per_type.values():
            by_display[test.display_name] = name
    result = snapshot.dict()
    drifted_by_metric = {}
    dataset_drift = None
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        failed = getattr(test["status"], "value", test["status"]) == "FAIL"
        if params["type"] == "evidently:metric_v2:ValueDrift":
            drifted_by_metric[params["column"]] = failed
        elif params["type"] == "evidently:metric_v2:DriftedColumnsCount":
            dataset_drift = failed
    columns = {}
    share = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"] == "evidently:metric_v2:DriftedColumnsCount":
            share = metric["value"]["share"]
        if config["type"] != "evidently:metric_v2:ValueDrift":
            continue
        name = config["column"]
        columns[name] = {
            "type": types[name],
            "test": by_display.get(config["method"], config["method"]),
            "score": metric["value"],
            "threshold": config["threshold"],
            "drifted": drifted_by_metric.get(name),
        }
    out = {"dataset_drift": dataset_drift, "drift_share": share, "columns": columns}
    if args.time:
        out["seconds"] = elapsed
        out["read_seconds"] = read
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["cpu_seconds"] = time.process_time() - cpu_started
        out["max_rss_mb"] = usage.ru_maxrss / 1024
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
