"""Model repository extension: unload and load a model while the server runs."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import ADD_SUB, FIXTURES, NUMERIC, SEED, _export
from helpers import assert_same, inputs
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import RandomForestClassifier
from tritonclient.utils import InferenceServerException

A = np.arange(4, dtype=np.float32).reshape(1, 4)
FEEDS = {"INPUT0": A, "INPUT1": A}


@pytest.fixture
def restore_add_sub(http_client):
    yield
    http_client.load_model(ADD_SUB)


def test_unload_then_load(http_client, restore_add_sub):
    http_client.unload_model(ADD_SUB)
    assert not http_client.is_model_ready(ADD_SUB)
    # An explicit unload leaves the server ready (Triton: "okay if model is not ready due to unload").
    assert http_client.is_server_ready()
    with pytest.raises(InferenceServerException) as err:
        http_client.infer(ADD_SUB, inputs(httpclient, FEEDS))
    # Triton answers an unloaded model like an unknown one; any 4xx/503 is acceptable, not 500.
    assert err.value.status() in {"400", "404", "503"}, err.value

    index = {(e["name"], e.get("version")): e for e in http_client.get_model_repository_index()}
    states = {k: e["state"] for k, e in index.items() if k[0] == ADD_SUB}
    assert states and all(s != "READY" for s in states.values()), states

    http_client.load_model(ADD_SUB)
    assert http_client.is_model_ready(ADD_SUB)
    result = http_client.infer(ADD_SUB, inputs(httpclient, FEEDS))
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), A + A + 1)


def test_load_unknown_model_fails_cleanly(http_client):
    with pytest.raises(InferenceServerException) as err:
        http_client.load_model("no_such_model")
    assert err.value.status() in {"400", "404"}, err.value


def test_grpc_unload_then_load(grpc_client, http_client, restore_add_sub):
    grpc_client.unload_model(ADD_SUB)
    assert not grpc_client.is_model_ready(ADD_SUB)
    grpc_client.load_model(ADD_SUB)
    assert grpc_client.is_model_ready(ADD_SUB)
    assert http_client.is_model_ready(ADD_SUB, "2")


# --- Model files sent with the load request (Triton's file:<version>/<name> parameters) --------


@pytest.fixture(scope="module")
def uploaded_forest(adult, tmp_path_factory) -> tuple[bytes, RandomForestClassifier]:
    """A model the server's repository does not have, trained here and exported to ONNX bytes."""
    train, _ = adult
    X = train[NUMERIC].to_numpy(np.float32)
    forest = RandomForestClassifier(n_estimators=12, max_depth=6, random_state=SEED).fit(X, train["y"])
    path = tmp_path_factory.mktemp("upload") / "model.onnx"
    _export(forest, forest, [("features", FloatTensorType([None, len(NUMERIC)]))], path)
    return path.read_bytes(), forest


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_load_model_from_files(http_client, grpc_client, uploaded_forest, matrix, protocol):
    onnx_bytes, forest = uploaded_forest
    client, module = (http_client, httpclient) if protocol == "http" else (grpc_client, grpcclient)
    name = f"uploaded_forest_{protocol}"
    config = json.dumps({"max_batch_size": 16, "label_names": ["<=50K", ">50K"]})
    client.load_model(name, config=config, files={"file:1/model.onnx": onnx_bytes})
    try:
        assert client.is_model_ready(name, "1")
        meta = http_client.get_model_metadata(name)
        assert [i["name"] for i in meta["inputs"]] == ["features"]

        result = client.infer(name, inputs(module, {"features": matrix}))
        session = ort.InferenceSession(onnx_bytes)
        want = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"features": matrix})))
        assert_same({n: result.as_numpy(n) for n in want}, want)
        np.testing.assert_allclose(result.as_numpy("probabilities"), forest.predict_proba(matrix), atol=1e-5)
    finally:
        client.unload_model(name)
    assert not client.is_model_ready(name)


def test_load_files_replace_then_repository_returns(http_client, restore_add_sub):
    # Version 1 of the upload is the repository's version 2 (OUTPUT0 = a + b + 1).
    v2 = (FIXTURES / ADD_SUB / "2" / "model.onnx").read_bytes()
    http_client.load_model(ADD_SUB, config="{}", files={"file:1/model.onnx": v2})
    assert http_client.is_model_ready(ADD_SUB, "1")
    assert not http_client.is_model_ready(ADD_SUB, "2")
    result = http_client.infer(ADD_SUB, inputs(httpclient, FEEDS), model_version="1")
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), A + A + 1)
    # restore_add_sub loads it again without files: the repository's versions come back.


def test_load_files_without_config_is_refused(http_client):
    with pytest.raises(InferenceServerException) as err:
        http_client.load_model("no_config", files={"file:1/model.onnx": b"\x08\x07"})
    assert err.value.status() == "400", err.value
    assert "parameter 'config' is required" in err.value.message()


def test_load_files_cannot_escape_the_model_folder(http_client):
    with pytest.raises(InferenceServerException) as err:
        http_client.load_model("escape", config="{}", files={"file:../../escaped.txt": b"nope"})
    assert err.value.status() == "400", err.value
    assert "relative path inside the model's folder" in err.value.message()
