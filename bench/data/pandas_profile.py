"""The pandas peer of Slipway's profile (`npm run bench:data`): `read_csv`, then
`describe(include='all')` and `value_counts()` of every column, as a data scientist profiles a
file. Times itself after the imports and prints one JSON line:
{"rows", "columns", "seconds", "read_seconds", "profile_seconds", "cpu_seconds", "peak_rss_mb"}.

usage: python pandas_profile.py <file.csv>
"""

import json
import resource
import sys
import time

import pandas as pd


def main() -> None:
    path = sys.argv[1]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    df = pd.read_csv(path)
    wall1 = time.perf_counter()
    described = df.describe(include="all")
    counts = [df[c].value_counts() for c in df.columns]
    wall2, cpu2 = time.perf_counter(), time.process_time()
    # Touch the results so nothing is left lazy.
    assert described.shape[1] == df.shape[1] and len(counts) == df.shape[1]
    print(
        json.dumps(
            {
                "rows": int(df.shape[0]),
                "columns": int(df.shape[1]),
                "seconds": wall2 - wall0,
                "read_seconds": wall1 - wall0,
                "profile_seconds": wall2 - wall1,
                "cpu_seconds": cpu2 - cpu0,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "pandas": pd.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
