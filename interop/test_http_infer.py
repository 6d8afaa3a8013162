"""Inference over HTTP with tritonclient.http: JSON and binary tensors, BYTES, outputs, versions."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import tritonclient.http as httpclient
from conftest import ADD_SUB, GBT, MLP, PIPELINE
from helpers import assert_same, inputs
from tritonclient.utils import InferenceServerException


def as_dict(result, names) -> dict[str, np.ndarray]:
    return {n: result.as_numpy(n) for n in names}


@pytest.mark.parametrize("model", [GBT, MLP])
def test_json_tensors_match_onnxruntime(http_client, reference, matrix, model):
    feeds = {"features": matrix}
    outputs = [httpclient.InferRequestedOutput(n, binary_data=False) for n in ("label", "probabilities")]
    result = http_client.infer(model, inputs(httpclient, feeds, binary=False), outputs=outputs)
    response = result.get_response()
    assert response["model_name"] == model
    # JSON outputs carry their data inline, with no binary_data_size parameter.
    for out in response["outputs"]:
        assert "data" in out and "binary_data_size" not in out.get("parameters", {}), out
    assert_same(as_dict(result, ["label", "probabilities"]), reference.run(model, feeds))


@pytest.mark.parametrize("model", [GBT, MLP])
def test_binary_tensors_match_onnxruntime(http_client, reference, matrix, model):
    feeds = {"features": matrix}
    result = http_client.infer(model, inputs(httpclient, feeds, binary=True))
    for out in result.get_response()["outputs"]:
        assert out["parameters"]["binary_data_size"] > 0, out
    assert_same(as_dict(result, ["label", "probabilities"]), reference.run(model, feeds))


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_only_requested_output_is_returned(http_client, reference, matrix, binary):
    feeds = {"features": matrix}
    result = http_client.infer(
        GBT,
        inputs(httpclient, feeds, binary=binary),
        outputs=[httpclient.InferRequestedOutput("probabilities", binary_data=binary)],
    )
    names = [o["name"] for o in result.get_response()["outputs"]]
    assert names == ["probabilities"]
    assert result.as_numpy("label") is None
    want = reference.run(GBT, feeds)["probabilities"]
    np.testing.assert_allclose(result.as_numpy("probabilities"), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_bytes_inputs_one_per_column(http_client, reference, pipeline_feeds, binary):
    result = http_client.infer(PIPELINE, inputs(httpclient, pipeline_feeds, binary=binary))
    assert_same(as_dict(result, ["label", "probabilities"]), reference.run(PIPELINE, pipeline_feeds))


def test_mixed_json_and_binary_outputs(http_client, reference, matrix):
    feeds = {"features": matrix}
    outputs = [
        httpclient.InferRequestedOutput("label", binary_data=False),
        httpclient.InferRequestedOutput("probabilities", binary_data=True),
    ]
    result = http_client.infer(GBT, inputs(httpclient, feeds, binary=True), outputs=outputs)
    by_name = {o["name"]: o for o in result.get_response()["outputs"]}
    assert "data" in by_name["label"]
    assert by_name["probabilities"]["parameters"]["binary_data_size"] == matrix.shape[0] * 2 * 4
    assert_same(as_dict(result, ["label", "probabilities"]), reference.run(GBT, feeds))


def test_request_id_is_echoed(http_client, matrix):
    feeds = {"features": matrix[:1]}
    result = http_client.infer(GBT, inputs(httpclient, feeds), request_id="req-42")
    assert result.get_response()["id"] == "req-42"


def test_gzip_compressed_request(http_client, reference, matrix):
    feeds = {"features": matrix}
    result = http_client.infer(GBT, inputs(httpclient, feeds), request_compression_algorithm="gzip")
    assert_same(as_dict(result, ["label", "probabilities"]), reference.run(GBT, feeds))


def test_gzip_compressed_response(http_client, reference, matrix):
    feeds = {"features": matrix}
    result = http_client.infer(GBT, inputs(httpclient, feeds), response_compression_algorithm="gzip")
    assert_same(as_dict(result, ["label", "probabilities"]), reference.run(GBT, feeds))


def test_versions_are_routed(http_client, reference):
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.full((2, 4), 0.5, dtype=np.float32)
    feeds = {"INPUT0": a, "INPUT1": b}
    for version in (1, 2):
        result = http_client.infer(ADD_SUB, inputs(httpclient, feeds), model_version=str(version))
        assert result.get_response()["model_version"] == str(version)
        assert_same(as_dict(result, ["OUTPUT0", "OUTPUT1"]), reference.run(ADD_SUB, feeds, version))
    # Without a version the highest one answers (Triton's rule).
    result = http_client.infer(ADD_SUB, inputs(httpclient, feeds))
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b + 1)


# --- Plain HTTP, for what tritonclient does not send --------------------------------------------


def test_nested_json_data_is_accepted(server, reference, matrix):
    x = matrix[:3]
    body = {
        "id": "nested",
        "inputs": [{"name": "features", "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()}],
    }
    status, res = server.json("POST", f"/v2/models/{GBT}/infer", body)
    assert status == 200, res
    assert res["id"] == "nested"
    out = {o["name"]: o for o in res["outputs"]}
    want = reference.run(GBT, {"features": x})
    assert out["label"]["datatype"] == "INT64" and out["label"]["shape"] == [3]
    assert out["probabilities"]["datatype"] == "FP32" and out["probabilities"]["shape"] == [3, 2]
    np.testing.assert_array_equal(np.array(out["label"]["data"]).ravel(), want["label"])
    got = np.array(out["probabilities"]["data"], dtype=np.float32).reshape(3, 2)
    np.testing.assert_allclose(got, want["probabilities"], rtol=0, atol=1e-6)


def test_header_length_zero_means_one_raw_input(server, reference, matrix):
    """`Inference-Header-Content-Length: 0`: the body is the only input's raw bytes, batch 1."""
    x = matrix[:1]
    status, headers, raw = server.request(
        "POST",
        f"/v2/models/{GBT}/infer",
        x.tobytes(),
        {"Inference-Header-Content-Length": "0", "Content-Type": "application/octet-stream"},
    )
    assert status == 200, raw[:500]
    header_len = int(headers.get("Inference-Header-Content-Length", len(raw)))
    header = json.loads(raw[:header_len])
    assert {o["name"] for o in header["outputs"]} == {"label", "probabilities"}
    offset = header_len
    got = {}
    for o in header["outputs"]:
        size = o["parameters"]["binary_data_size"]
        dtype = {"INT64": np.int64, "FP32": np.float32}[o["datatype"]]
        got[o["name"]] = np.frombuffer(raw[offset : offset + size], dtype=dtype).reshape(o["shape"])
        offset += size
    want = reference.run(GBT, {"features": x})
    np.testing.assert_array_equal(got["label"], want["label"])
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=0, atol=1e-6)


def test_unknown_model_is_404(server):
    body = {"inputs": [{"name": "features", "shape": [1, 6], "datatype": "FP32", "data": [0] * 6}]}
    status, res = server.json("POST", "/v2/models/no_such_model/infer", body)
    assert status == 404, res
    assert isinstance(res, dict) and "no_such_model" in res.get("error", ""), res


def test_unknown_input_name_is_400_naming_it(server):
    body = {"inputs": [{"name": "featurez", "shape": [1, 6], "datatype": "FP32", "data": [0] * 6}]}
    status, res = server.json("POST", f"/v2/models/{GBT}/infer", body)
    assert status == 400, res
    assert "featurez" in res.get("error", ""), res


def test_wrong_element_count_is_400(server):
    body = {"inputs": [{"name": "features", "shape": [2, 6], "datatype": "FP32", "data": [0] * 6}]}
    status, res = server.json("POST", f"/v2/models/{GBT}/infer", body)
    assert status == 400, res
    assert "features" in res.get("error", ""), res


def test_wrong_datatype_is_400(server):
    body = {"inputs": [{"name": "features", "shape": [1, 6], "datatype": "INT32", "data": [0] * 6}]}
    status, res = server.json("POST", f"/v2/models/{GBT}/infer", body)
    assert status == 400, res
    assert "features" in res.get("error", ""), res


def test_client_raises_on_unknown_model(http_client, matrix):
    with pytest.raises(InferenceServerException) as err:
        http_client.infer("no_such_model", inputs(httpclient, {"features": matrix[:1]}))
    assert err.value.status() == "404"


def test_gzip_body_is_really_decoded(server, matrix):
    x = matrix[:2]
    body = {"inputs": [{"name": "features", "shape": [2, 6], "datatype": "FP32", "data": x.ravel().tolist()}]}
    status, _, raw = server.request(
        "POST",
        f"/v2/models/{GBT}/infer",
        gzip.compress(json.dumps(body).encode()),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 200, raw[:500]
    assert {o["name"] for o in json.loads(raw)["outputs"]} == {"label", "probabilities"}

