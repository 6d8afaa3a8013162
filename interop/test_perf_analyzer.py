"""Triton's perf_analyzer drives the server over HTTP (binary tensors) and gRPC (unary calls and
one bidirectional stream), with tensors inline or in system shared memory.

It reads /v2/models/{m}/config (and /stats), generates random inputs of the configured shape
and types, and measures throughput at each concurrency. A run must exit 0 and report a
positive throughput for every concurrency level.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GBT, PIPELINE, strict


def perf_analyzer() -> str:
    found = shutil.which("perf_analyzer") or shutil.which("perf_analyzer", path=str(Path(sys.prefix) / "bin"))
    if not found:
        if strict():
            pytest.fail("perf_analyzer is not installed (interop/run.sh installs it into interop/.venv)")
        pytest.skip("perf_analyzer is not installed")
    return found


@pytest.mark.parametrize(
    ("protocol", "model", "concurrency", "extra"),
    [
        ("http", GBT, "1:4", []),
        ("grpc", GBT, "1:4", []),
        ("grpc", GBT, "1:4", ["--streaming"]),
        ("http", PIPELINE, "1:2", []),
        ("http", GBT, "1:2", ["--shared-memory", "system"]),
        ("grpc", PIPELINE, "1:2", ["--shared-memory", "system"]),
    ],
    ids=["http-matrix", "grpc-matrix", "grpc-streaming", "http-bytes", "http-shm", "grpc-bytes-shm"],
)
def test_perf_analyzer_reports_throughput(server, tmp_path, protocol, model, concurrency, extra):
    url = server.http_url if protocol == "http" else server.grpc_url
    report = tmp_path / "report.csv"
    cmd = [
        perf_analyzer(),
        "-m",
        model,
        "-u",
        url,
        "-i",
        protocol,
        "--concurrency-range",
        concurrency,
        "--measurement-interval",
        "1000",
        # A 2-core machine shared with the server (and perf_analyzer) is noisy: accept wide
        # windows rather than wait for a 10% stable one that may never come.
        "--stability-percentage",
        "100",
        "--max-trials",
        "10",
        "-f",
        str(report),
        *extra,
    ]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"perf_analyzer exited {proc.returncode}:\n{output[-4000:]}"
    assert "Throughput:" in output, output[-4000:]
    with report.open() as f:
        rows = list(csv.DictReader(f))
    levels = concurrency.split(":")
    assert len(rows) == int(levels[1]) - int(levels[0]) + 1, rows
    for row in rows:
        assert float(row["Inferences/Second"]) > 0, row
