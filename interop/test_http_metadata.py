"""Health, server and model metadata, model configuration, statistics and the repository index
over HTTP, as tritonclient.http reads them."""

from __future__ import annotations

import pytest
from conftest import ADD_SUB, CATEGORICAL, GBT, MLP, NUMERIC, PIPELINE

ALL_MODELS = {PIPELINE, GBT, MLP, ADD_SUB}


def test_health(http_client, server):
    assert http_client.is_server_live()
    assert http_client.is_server_ready()
    for path in ("/v2/health/live", "/v2/health/ready"):
        status, _, _ = server.request("GET", path)
        assert status == 200, path


def test_server_metadata(http_client):
    meta = http_client.get_server_metadata()
    assert meta["name"] and meta["version"]
    extensions = set(meta["extensions"])
    # perf_analyzer and tritonclient rely on these being advertised and implemented.
    assert {"binary_tensor_data", "model_repository", "model_configuration", "statistics"} <= extensions, extensions


def test_model_readiness(http_client):
    for model in ALL_MODELS:
        assert http_client.is_model_ready(model), model
    assert http_client.is_model_ready(ADD_SUB, "1")
    assert http_client.is_model_ready(ADD_SUB, "2")
    assert not http_client.is_model_ready("no_such_model")
    assert not http_client.is_model_ready(ADD_SUB, "3")


def test_metadata_one_input_per_column(http_client):
    meta = http_client.get_model_metadata(PIPELINE)
    assert meta["name"] == PIPELINE
    assert meta["platform"] == "onnx_onnxv1"
    assert meta["versions"] == ["1"]
    inputs = {t["name"]: t for t in meta["inputs"]}
    assert set(inputs) == set(NUMERIC + CATEGORICAL)
    for name in NUMERIC:
        assert inputs[name]["datatype"] == "FP32" and inputs[name]["shape"] == [-1, 1], inputs[name]
    for name in CATEGORICAL:
        assert inputs[name]["datatype"] == "BYTES" and inputs[name]["shape"] == [-1, 1], inputs[name]
    outputs = {t["name"]: t for t in meta["outputs"]}
    assert outputs["label"]["datatype"] == "INT64" and outputs["label"]["shape"] == [-1]
    assert outputs["probabilities"]["datatype"] == "FP32" and outputs["probabilities"]["shape"] == [-1, 2]


@pytest.mark.parametrize("model", [GBT, MLP])
def test_metadata_matrix_input(http_client, model):
    meta = http_client.get_model_metadata(model)
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, len(NUMERIC)]}]


def test_metadata_of_each_version(http_client):
    meta = http_client.get_model_metadata(ADD_SUB)
    assert sorted(meta["versions"]) == ["1", "2"]
    v1 = http_client.get_model_metadata(ADD_SUB, "1")
    assert [t["name"] for t in v1["inputs"]] == ["INPUT0", "INPUT1"]
    assert all(t["shape"] == [-1, 4] and t["datatype"] == "FP32" for t in v1["inputs"] + v1["outputs"])


def test_config_in_triton_form(http_client):
    config = http_client.get_model_config(PIPELINE)
    assert config["name"] == PIPELINE
    assert config["max_batch_size"] == 64
    inputs = {t["name"]: t for t in config["input"]}
    # With max_batch_size > 0 Triton leaves the batch dimension out of dims.
    assert inputs["age"]["data_type"] == "TYPE_FP32" and inputs["age"]["dims"] == [1]
    assert inputs["workclass"]["data_type"] == "TYPE_STRING" and inputs["workclass"]["dims"] == [1]
    outputs = {t["name"]: t for t in config["output"]}
    assert outputs["label"]["data_type"] == "TYPE_INT64" and outputs["label"]["dims"] == []
    assert outputs["probabilities"]["data_type"] == "TYPE_FP32" and outputs["probabilities"]["dims"] == [2]

    gbt = http_client.get_model_config(GBT)
    assert [(t["name"], t["dims"]) for t in gbt["input"]] == [("features", [len(NUMERIC)])]


def test_statistics_count_successes(http_client, matrix):
    import tritonclient.http as httpclient
    from helpers import inputs

    before = _success_count(http_client.get_inference_statistics(MLP), MLP)
    for _ in range(3):
        http_client.infer(MLP, inputs(httpclient, {"features": matrix[:2]}))
    after = _success_count(http_client.get_inference_statistics(MLP), MLP)
    assert after - before == 3


def _success_count(stats: dict, model: str) -> int:
    rows = [s for s in stats["model_stats"] if s["name"] == model]
    assert rows, stats
    return sum(int(s["inference_stats"]["success"]["count"]) for s in rows)


def test_repository_index(http_client):
    index = http_client.get_model_repository_index()
    by_name: dict[str, list[dict]] = {}
    for entry in index:
        by_name.setdefault(entry["name"], []).append(entry)
    assert ALL_MODELS <= set(by_name), index
    for name in ALL_MODELS:
        assert all(e["state"] == "READY" for e in by_name[name]), by_name[name]
        assert all(isinstance(e.get("version", ""), str) for e in by_name[name]), by_name[name]
    assert {e.get("version") for e in by_name[ADD_SUB]} == {"1", "2"}


def test_repository_index_ready_filter(server):
    status, index = server.json("POST", "/v2/repository/index", {"ready": True})
    assert status == 200, index
    assert ALL_MODELS <= {e["name"] for e in index}
    assert all(e["state"] == "READY" for e in index)
