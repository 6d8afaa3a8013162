"""Every Open Inference Protocol datatype travels intact through the identity_<type> fixtures,
as tritonclient encodes it: binary tensors and JSON over HTTP, raw contents over gRPC."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import IDENTITY_DATATYPES


def sample(datatype: str) -> np.ndarray:
    """A [2, 3] tensor that uses each type's range, including its extremes."""
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    if datatype == "BYTES":
        # UTF-8, an empty element and a long one.
        return np.array([["a", "", "héllo"], ["x y", "\u2603", "z" * 300]], dtype=object)
    dtype = np.dtype({"FP16": "float16", "FP32": "float32", "FP64": "float64"}.get(datatype, datatype.lower()))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.array([[info.min, 0, 1], [info.max, info.max - 1, 7]], dtype=dtype)
    info = np.finfo(dtype)
    return np.array([[info.min, -0.0, 1.5], [info.max, info.tiny, -2.25]], dtype=dtype)


def expected(x: np.ndarray, json: bool) -> np.ndarray:
    # tritonclient returns BYTES elements as bytes from binary data, as str from JSON.
    if x.dtype == object and not json:
        return np.array([s.encode() for s in x.ravel()], dtype=object).reshape(x.shape)
    return x


def check(got: np.ndarray, x: np.ndarray, json: bool = False) -> None:
    want = expected(x, json)
    assert got is not None
    assert got.shape == want.shape
    if x.dtype != object:
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("datatype", IDENTITY_DATATYPES)
def test_http_binary(http_client, datatype):
    x = sample(datatype)
    i = httpclient.InferInput("INPUT0", list(x.shape), datatype)
    i.set_data_from_numpy(x, binary_data=True)
    out = httpclient.InferRequestedOutput("OUTPUT0", binary_data=True)
    result = http_client.infer(f"identity_{datatype.lower()}", [i], outputs=[out])
    check(result.as_numpy("OUTPUT0"), x)


# FP16 has no JSON form in Triton; tritonclient refuses to encode it.
@pytest.mark.parametrize("datatype", [d for d in IDENTITY_DATATYPES if d != "FP16"])
def test_http_json(http_client, datatype):
    x = sample(datatype)
    if datatype in ("FP32", "FP64"):
        # JSON numbers: keep to values that survive a decimal round trip at any precision.
        x = np.array([[-3.5, 0.0, 1.5], [1e10, 0.125, -2.25]], dtype=x.dtype)
    if datatype in ("INT64", "UINT64"):
        # JSON numbers are exact up to 2^53; larger ones are refused (see the test below).
        lo = 0 if datatype == "UINT64" else -(2**53 - 1)
        x = np.array([[lo, 0, 1], [2**53 - 1, 2**40, 7]], dtype=x.dtype)
    i = httpclient.InferInput("INPUT0", list(x.shape), datatype)
    i.set_data_from_numpy(x, binary_data=False)
    out = httpclient.InferRequestedOutput("OUTPUT0", binary_data=False)
    result = http_client.infer(f"identity_{datatype.lower()}", [i], outputs=[out])
    check(result.as_numpy("OUTPUT0"), x, json=True)


@pytest.mark.parametrize("datatype", ["INT64", "UINT64"])
def test_http_json_output_of_64_bit_extremes(http_client, datatype):
    """Binary in, JSON out: 64-bit integers beyond 2^53 must be written digit for digit."""
    x = sample(datatype)
    i = httpclient.InferInput("INPUT0", list(x.shape), datatype)
    i.set_data_from_numpy(x, binary_data=True)
    out = httpclient.InferRequestedOutput("OUTPUT0", binary_data=False)
    result = http_client.infer(f"identity_{datatype.lower()}", [i], outputs=[out])
    check(result.as_numpy("OUTPUT0"), x, json=True)


@pytest.mark.parametrize(
    "datatype,value",
    [("INT64", 2**63 - 1), ("INT64", -(2**63)), ("INT64", 2**53 + 1), ("UINT64", 2**64 - 1), ("UINT64", 2**64)],
)
def test_http_json_64_bit_beyond_2_53_is_refused(server, datatype, value):
    """A JSON number beyond 2^53 has lost digits before the server sees it: a 400 naming the
    input, never a silently rounded value."""
    import json
    import urllib.error
    import urllib.request

    body = {"inputs": [{"name": "INPUT0", "datatype": datatype, "shape": [1, 1], "data": [value]}]}
    req = urllib.request.Request(
        f"http://{server.http_url}/v2/models/identity_{datatype.lower()}/infer",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    assert info.value.code == 400
    assert "INPUT0" in json.loads(info.value.read())["error"]


@pytest.mark.parametrize("value", [b"x\x00y", b"\xff\xfe"], ids=["nul", "not-utf8"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bytes_an_onnx_string_cannot_hold(http_client, grpc_client, protocol, value):
    """BYTES may carry any bytes; an ONNX string tensor in onnxruntime-node cannot hold a NUL
    or invalid UTF-8. The element must come back unchanged or be refused with a client
    error, never altered silently."""
    from tritonclient.utils import InferenceServerException

    module, client = (httpclient, http_client) if protocol == "http" else (grpcclient, grpc_client)
    x = np.array([[value]], dtype=object)
    i = module.InferInput("INPUT0", [1, 1], "BYTES")
    i.set_data_from_numpy(x)
    try:
        result = client.infer("identity_bytes", [i])
    except InferenceServerException as err:
        assert err.status() in {"400", "StatusCode.INVALID_ARGUMENT"}, err
        assert "INPUT0" in err.message(), err
        return
    assert result.as_numpy("OUTPUT0")[0, 0] == value


@pytest.mark.parametrize("datatype", IDENTITY_DATATYPES)
def test_grpc_raw(grpc_client, datatype):
    x = sample(datatype)
    i = grpcclient.InferInput("INPUT0", list(x.shape), datatype)
    i.set_data_from_numpy(x)
    result = grpc_client.infer(f"identity_{datatype.lower()}", [i])
    check(result.as_numpy("OUTPUT0"), x)


def test_metadata_reports_each_datatype(http_client):
    for datatype in IDENTITY_DATATYPES:
        meta = http_client.get_model_metadata(f"identity_{datatype.lower()}")
        assert meta["inputs"] == [{"name": "INPUT0", "datatype": datatype, "shape": [-1, -1]}], meta
        assert meta["outputs"] == [{"name": "OUTPUT0", "datatype": datatype, "shape": [-1, -1]}], meta
