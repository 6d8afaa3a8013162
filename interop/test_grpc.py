"""The gRPC endpoint with tritonclient.grpc (raw tensor contents) and the plain generated stub
(typed contents), checked against Python onnxruntime."""

from __future__ import annotations

import queue

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from conftest import ADD_SUB, CATEGORICAL, GBT, MLP, NUMERIC, PIPELINE
from helpers import assert_same, inputs
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException


def as_dict(result, names) -> dict[str, np.ndarray]:
    return {n: result.as_numpy(n) for n in names}


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(server.grpc_url)
    yield service_pb2_grpc.GRPCInferenceServiceStub(channel)
    channel.close()


def test_health_and_server_metadata(grpc_client):
    assert grpc_client.is_server_live()
    assert grpc_client.is_server_ready()
    meta = grpc_client.get_server_metadata(as_json=True)
    assert meta["name"] and meta["version"]
    assert "binary_tensor_data" in meta.get("extensions", [])


def test_model_metadata(grpc_client):
    assert grpc_client.is_model_ready(PIPELINE)
    assert not grpc_client.is_model_ready("no_such_model")
    meta = grpc_client.get_model_metadata(PIPELINE, as_json=True)
    assert meta["name"] == PIPELINE and meta["platform"] == "onnx_onnxv1"
    assert meta["versions"] == ["1"]
    inputs_ = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in meta["inputs"]}
    assert inputs_ == {
        **{c: ("FP32", [-1, 1]) for c in NUMERIC},
        **{c: ("BYTES", [-1, 1]) for c in CATEGORICAL},
    }
    outputs = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in meta["outputs"]}
    assert outputs == {"label": ("INT64", [-1]), "probabilities": ("FP32", [-1, 2])}


def test_model_config(grpc_client):
    config = grpc_client.get_model_config(GBT, as_json=True)["config"]
    assert config["name"] == GBT
    assert int(config["max_batch_size"]) == 64
    assert [(t["name"], t["data_type"], [int(d) for d in t["dims"]]) for t in config["input"]] == [
        ("features", "TYPE_FP32", [len(NUMERIC)])
    ]


@pytest.mark.parametrize("model", [GBT, MLP])
def test_raw_contents_match_onnxruntime(grpc_client, reference, matrix, model):
    feeds = {"features": matrix}
    result = grpc_client.infer(model, inputs(grpcclient, feeds), request_id="g-1", headers={"x-trace": "interop"})
    response = result.get_response()
    assert response.model_name == model and response.id == "g-1"
    assert_same(as_dict(result, ["label", "probabilities"]), reference.run(model, feeds))


def test_bytes_inputs_raw(grpc_client, reference, pipeline_feeds):
    result = grpc_client.infer(PIPELINE, inputs(grpcclient, pipeline_feeds))
    assert_same(as_dict(result, ["label", "probabilities"]), reference.run(PIPELINE, pipeline_feeds))


def test_only_requested_output_is_returned(grpc_client, reference, matrix):
    feeds = {"features": matrix}
    result = grpc_client.infer(GBT, inputs(grpcclient, feeds), outputs=[grpcclient.InferRequestedOutput("label")])
    assert [o.name for o in result.get_response().outputs] == ["label"]
    assert result.as_numpy("probabilities") is None
    np.testing.assert_array_equal(result.as_numpy("label"), reference.run(GBT, feeds)["label"])


def test_versions_are_routed(grpc_client):
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    feeds = {"INPUT0": a, "INPUT1": a}
    for version, bias in (("1", 0.0), ("2", 1.0)):
        result = grpc_client.infer(ADD_SUB, inputs(grpcclient, feeds), model_version=version)
        assert result.get_response().model_version == version
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + a + bias)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - a)


def test_stream_infer_matches_onnxruntime(grpc_client, reference, matrix, pipeline_feeds):
    """tritonclient's streaming API (start_stream, async_stream_infer) on one bidirectional
    stream: every request answered, matched by id; a failed one reaches the callback as an error
    and the stream goes on."""
    answers: queue.Queue = queue.Queue()
    grpc_client.start_stream(callback=lambda result, error: answers.put((result, error)))
    feeds = {"features": matrix}
    models = {f"s-{i}": GBT if i % 2 == 0 else MLP for i in range(6)}
    try:
        grpc_client.async_stream_infer("no_such_model", inputs(grpcclient, feeds), request_id="s-missing")
        for request_id, model in models.items():
            grpc_client.async_stream_infer(model, inputs(grpcclient, feeds), request_id=request_id)
        grpc_client.async_stream_infer(PIPELINE, inputs(grpcclient, pipeline_feeds), request_id="s-pipeline")
        got = [answers.get(timeout=60) for _ in range(len(models) + 2)]
    finally:
        grpc_client.stop_stream()
    errors = [error for _, error in got if error is not None]
    assert len(errors) == 1 and "no_such_model" in str(errors[0]), errors
    results = {result.get_response().id: result for result, error in got if error is None}
    assert set(results) == set(models) | {"s-pipeline"}
    for request_id, model in models.items():
        assert results[request_id].get_response().model_name == model
        assert_same(as_dict(results[request_id], ["label", "probabilities"]), reference.run(model, feeds))
    assert_same(
        as_dict(results["s-pipeline"], ["label", "probabilities"]), reference.run(PIPELINE, pipeline_feeds)
    )


def _outputs(res: service_pb2.ModelInferResponse) -> dict[str, np.ndarray]:
    """Reads a response whether the server used raw_output_contents or typed contents."""
    out = {}
    for i, t in enumerate(res.outputs):
        shape = list(t.shape)
        if res.raw_output_contents:
            dtype = {"INT64": np.int64, "FP32": np.float32}[t.datatype]
            out[t.name] = np.frombuffer(res.raw_output_contents[i], dtype=dtype).reshape(shape)
        elif t.datatype == "INT64":
            out[t.name] = np.array(t.contents.int64_contents, dtype=np.int64).reshape(shape)
        else:
            out[t.name] = np.array(t.contents.fp32_contents, dtype=np.float32).reshape(shape)
    return out


def test_typed_contents_match_onnxruntime(stub, reference, matrix):
    req = service_pb2.ModelInferRequest(model_name=GBT, id="typed")
    t = req.inputs.add(name="features", datatype="FP32", shape=list(matrix.shape))
    t.contents.fp32_contents.extend(matrix.ravel().tolist())
    res = stub.ModelInfer(req, timeout=30)
    assert res.id == "typed"
    assert_same(_outputs(res), reference.run(GBT, {"features": matrix}))


def test_typed_bytes_contents(stub, reference, pipeline_feeds):
    req = service_pb2.ModelInferRequest(model_name=PIPELINE)
    for name, value in pipeline_feeds.items():
        t = req.inputs.add(name=name, shape=list(value.shape))
        if value.dtype == object:
            t.datatype = "BYTES"
            t.contents.bytes_contents.extend(s.encode() for s in value.ravel())
        else:
            t.datatype = "FP32"
            t.contents.fp32_contents.extend(value.ravel().tolist())
    res = stub.ModelInfer(req, timeout=30)
    assert_same(_outputs(res), reference.run(PIPELINE, pipeline_feeds))


def test_unknown_model_is_a_client_error(grpc_client, matrix):
    with pytest.raises(InferenceServerException) as err:
        grpc_client.infer("no_such_model", inputs(grpcclient, {"features": matrix[:1]}))
    assert err.value.status() in {"StatusCode.NOT_FOUND", "StatusCode.INVALID_ARGUMENT", "StatusCode.UNAVAILABLE"}


def test_bad_input_is_invalid_argument_naming_it(stub):
    req = service_pb2.ModelInferRequest(model_name=GBT)
    t = req.inputs.add(name="features", datatype="FP32", shape=[2, len(NUMERIC)])
    t.contents.fp32_contents.extend([0.0] * len(NUMERIC))  # half the elements the shape needs
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "features" in err.value.details()
