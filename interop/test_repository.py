"""Model repository extension: unload and load a model while the server runs."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as httpclient
from conftest import ADD_SUB
from helpers import inputs
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
