"""The Great Expectations peer of Slipway's validation (`npm run bench:data`): reads the CSV with
pandas and validates it against an expectation suite built from a rules file, so both tools check
the same rules. Times itself after the imports and prints one JSON line:
{"rows", "seconds", "read_seconds", "validate_seconds", "cpu_seconds", "peak_rss_mb",
 "success", "expectations", "failed", "unexpected"}.

The rules file (written by bench/data.ts):
  {"columns": ["age", ...],
   "rules": [{"column": "age", "type": "integer", "nullable": false, "min": 17, "max": 90},
             {"column": "sex", "type": "string", "nullable": false, "values": ["Female", "Male"]}, ...]}
Each rule becomes: the column's dtype (ExpectColumnValuesToBeOfType), not null unless
nullable, ExpectColumnValuesToBeBetween for min/max, ExpectColumnValuesToBeInSet for values,
ExpectColumnValueLengthsToBeBetween, ExpectColumnValuesToMatchRegex (anchored) and
ExpectColumnValuesToBeUnique when given, each with its `mostly`; the table gets
ExpectTableColumnsToMatchOrderedList and ExpectTableRowCountToBeBetween ("rows": {"min", "max"}).

usage: python ge_validate.py <file.csv> <rules.json>
"""

import json
import os
import resource
import sys
import time

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

# The dtype pandas.read_csv gives each type. ExpectColumnValuesToBeInTypeList fails on pandas 3's
# `str` dtype in this release (it observes "str" and still fails), ExpectColumnValuesToBeOfType works.
TYPES = {"integer": "int64", "float": "float64", "string": "str"}


def suite_for(spec: dict) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name="bench")
    suite.add_expectation(gxe.ExpectTableColumnsToMatchOrderedList(column_list=spec["columns"]))
    if spec.get("rows"):
        rows = spec["rows"]
        suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=rows.get("min"), max_value=rows.get("max")))
    for r in spec["rules"]:
        col = r["column"]
        mostly = r.get("mostly") or {}

        def relaxed(rule: str) -> dict:
            return {"mostly": mostly[rule]} if rule in mostly else {}

        suite.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=col, type_=TYPES[r["type"]]))
        if not r.get("nullable", True):
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=col, **relaxed("nullable")))
        if r.get("min") is not None or r.get("max") is not None:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col, min_value=r.get("min"), max_value=r.get("max"), **relaxed("range")
                )
            )
        if "values" in r:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeInSet(column=col, value_set=r["values"], **relaxed("categories"))
            )
        if "length" in r:
            suite.add_expectation(
                gxe.ExpectColumnValueLengthsToBeBetween(
                    column=col, min_value=r["length"].get("min"), max_value=r["length"].get("max"), **relaxed("length")
                )
            )
        if "pattern" in r:
            suite.add_expectation(
                gxe.ExpectColumnValuesToMatchRegex(column=col, regex=f"^(?:{r['pattern']})$", **relaxed("pattern"))
            )
        if r.get("unique"):
            suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=col, **relaxed("unique")))
    return suite


def main() -> None:
    path, rules_path = sys.argv[1], sys.argv[2]
    with open(rules_path) as f:
        spec = json.load(f)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("bench").add_dataframe_asset("table")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    suite = suite_for(spec)

    wall0, cpu0 = time.perf_counter(), time.process_time()
    df = pd.read_csv(path)
    wall1 = time.perf_counter()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(suite, result_format="SUMMARY")
    wall2, cpu2 = time.perf_counter(), time.process_time()

    failed = [r for r in result.results if not r.success]
    print(
        json.dumps(
            {
                "rows": int(df.shape[0]),
                "seconds": wall2 - wall0,
                "read_seconds": wall1 - wall0,
                "validate_seconds": wall2 - wall1,
                "cpu_seconds": cpu2 - cpu0,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "success": bool(result.success),
                "expectations": len(result.results),
                "failed": [
                    r.expectation_config.type + ":" + str(r.expectation_config.kwargs.get("column")) for r in failed
                ],
                "unexpected": sum(int(r.result.get("unexpected_count") or 0) for r in result.results),
                "great_expectations": gx.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
