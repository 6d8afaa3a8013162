"""Trace extension: tritonclient reads and changes the trace settings over HTTP and gRPC, and the
requests it then sends are written to Triton's JSON trace file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import MLP
from helpers import inputs
from tritonclient.utils import InferenceServerException

SERVER_ORDER = [
    "REQUEST_START",
    "QUEUE_START",
    "COMPUTE_START",
    "COMPUTE_INPUT_END",
    "COMPUTE_OUTPUT_START",
    "COMPUTE_END",
    "REQUEST_END",
    "INFER_RESPONSE_COMPLETE",
]
ORDER = ["HTTP_RECV_START", "HTTP_RECV_END", *SERVER_ORDER, "HTTP_SEND_START", "HTTP_SEND_END"]
GRPC_ORDER = ["GRPC_WAITREAD_END", *SERVER_ORDER, "GRPC_SEND_START", "GRPC_SEND_END"]


def _trace_files(server) -> set[Path]:
    # `<file>.N` once written; `<file>.N.partial` while it is being written.
    return {p for p in server.trace_file.parent.glob(server.trace_file.name + ".*") if p.suffix[1:].isdigit()}


def _wait_new(server, before: set[Path], count: int) -> list[Path]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new = sorted(_trace_files(server) - before, key=lambda p: int(p.suffix[1:]))
        if len(new) >= count:
            return new
        time.sleep(0.05)
    raise AssertionError(f"expected {count} new trace files, found {sorted(_trace_files(server) - before)}")


@pytest.fixture
def tracing_off(http_client):
    yield
    http_client.update_trace_settings(model_name=MLP, settings={"trace_level": None, "trace_count": None})
    http_client.update_trace_settings(settings={"trace_level": ["OFF"], "trace_rate": "1000", "log_frequency": "0"})


def test_http_settings_then_timestamps_in_the_file(server, http_client, matrix, tracing_off):
    settings = http_client.get_trace_settings()
    assert settings["trace_level"] == ["OFF"]
    assert settings["trace_file"] == str(server.trace_file)

    updated = http_client.update_trace_settings(
        model_name=MLP,
        settings={"trace_level": ["TIMESTAMPS", "TENSORS"], "trace_rate": "1", "trace_count": "2", "log_frequency": "1"},
    )
    assert updated["trace_level"] == ["TIMESTAMPS", "TENSORS"]
    assert updated["trace_count"] == "2"
    # Another model follows the global settings: off.
    assert http_client.get_trace_settings(model_name="adult_gbt")["trace_level"] == ["OFF"]

    before = _trace_files(server)
    rows = matrix[:3]
    for i in range(3):
        result = http_client.infer(MLP, inputs(httpclient, {"features": rows}), request_id=f"trace-{i}")
    files = _wait_new(server, before, 2)
    assert len(files) == 2, "trace_count 2: the third request is not traced"
    entries = [e for f in files for e in json.loads(f.read_text())]
    heads = [e for e in entries if "model_name" in e]
    assert [(h["model_name"], h["model_version"], h["request_id"]) for h in heads] == [
        (MLP, 1, "trace-0"),
        (MLP, 1, "trace-1"),
    ]
    for h in heads:
        stamps = next(e["timestamps"] for e in entries if e["id"] == h["id"] and "timestamps" in e)
        assert [s["name"] for s in stamps] == ORDER
        ns = [s["ns"] for s in stamps]
        assert ns == sorted(ns)
        tensors = {e["tensor"]["name"]: e for e in entries if e["id"] == h["id"] and "tensor" in e}
        assert tensors["features"]["activity"] == "TENSOR_QUEUE_INPUT"
        assert tensors["features"]["tensor"]["shape"] == "3,6"
        sent = np.array([float(x) for x in tensors["features"]["tensor"]["data"].split(",")], np.float32)
        np.testing.assert_array_equal(sent, rows.ravel())
        probabilities = tensors["probabilities"]["tensor"]
        assert probabilities["dtype"] == "FP32"
        traced = np.array([float(x) for x in probabilities["data"].split(",")], np.float32).reshape(3, 2)
        np.testing.assert_allclose(traced, result.as_numpy("probabilities"), rtol=0, atol=1e-7)
    assert http_client.get_trace_settings(model_name=MLP)["trace_count"] == "0"


def test_grpc_infer_is_traced_with_its_read_and_send_times(server, grpc_client, matrix, tracing_off):
    grpc_client.update_trace_settings(
        model_name=MLP, settings={"trace_level": ["TIMESTAMPS"], "trace_rate": "1", "trace_count": "1"}
    )
    before = _trace_files(server)
    grpc_client.infer(MLP, inputs(grpcclient, {"features": matrix[:2]}), request_id="grpc-trace")
    (file,) = _wait_new(server, before, 1)
    entries = json.loads(file.read_text())
    (head,) = [e for e in entries if "model_name" in e]
    assert head["request_id"] == "grpc-trace"
    stamps = next(e["timestamps"] for e in entries if e["id"] == head["id"] and "timestamps" in e)
    assert [s["name"] for s in stamps] == GRPC_ORDER
    ns = [s["ns"] for s in stamps]
    assert ns == sorted(ns)


def test_grpc_settings_and_clearing(grpc_client, http_client, tracing_off):
    read = grpc_client.get_trace_settings(as_json=True)
    assert read["settings"]["trace_rate"]["value"] == ["1000"]
    changed = grpc_client.update_trace_settings(
        model_name=MLP, settings={"trace_level": ["TIMESTAMPS"], "trace_rate": "5"}, as_json=True
    )
    assert changed["settings"]["trace_level"]["value"] == ["TIMESTAMPS"]
    assert http_client.get_trace_settings(model_name=MLP)["trace_rate"] == "5"
    cleared = grpc_client.update_trace_settings(model_name=MLP, settings={"trace_rate": None}, as_json=True)
    assert cleared["settings"]["trace_rate"]["value"] == ["1000"], "the global rate again"
    assert cleared["settings"]["trace_level"]["value"] == ["TIMESTAMPS"], "its own level stays"


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_trace_file_cannot_be_changed(http_client, grpc_client, protocol):
    client = http_client if protocol == "http" else grpc_client
    with pytest.raises(InferenceServerException) as err:
        client.update_trace_settings(settings={"trace_file": "/tmp/elsewhere.json"})
    assert "'trace_file' cannot be changed through the network" in err.value.message()
    # Triton answers UNSUPPORTED: HTTP 501, gRPC UNIMPLEMENTED.
    if protocol == "http":
        assert err.value.status() == "501"
    else:
        assert err.value.status() == "StatusCode.UNIMPLEMENTED"
