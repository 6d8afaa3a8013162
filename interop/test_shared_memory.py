"""Triton's system shared memory extension, driven by tritonclient's own shared memory utilities:
inputs read from and outputs written to POSIX shared memory over HTTP and gRPC equal Python
onnxruntime's; registration, status and unregistration answer as tritonclient expects; the CUDA
calls answer as a CPU server's do."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from conftest import CATEGORICAL, GBT, NUMERIC, PIPELINE
from helpers import assert_same, inputs
from tritonclient.utils import InferenceServerException, serialize_byte_tensor


@pytest.fixture(params=["http", "grpc"])
def client(request, http_client, grpc_client):
    module, c = (httpclient, http_client) if request.param == "http" else (grpcclient, grpc_client)
    c.unregister_system_shared_memory()
    yield module, c
    c.unregister_system_shared_memory()


@pytest.fixture
def regions(request):
    """Creates shared memory objects (name -> size) and destroys them after the test."""
    made = []

    def create(name: str, size: int):
        handle = shm.create_shared_memory_region(name, f"/slipway_{os.getpid()}_{name}", size)
        made.append(handle)
        return handle

    yield create
    for handle in made:
        shm.destroy_shared_memory_region(handle)


def key_of(handle) -> str:
    return handle._shm_key


def output_shape(module, result, name) -> list[int]:
    out = result.get_output(name)
    return [int(d) for d in (out["shape"] if module is httpclient else out.shape)]


def status_of(module, c) -> dict[str, tuple[str, int, int]]:
    if module is httpclient:
        return {r["name"]: (r["key"], int(r["offset"]), int(r["byte_size"])) for r in c.get_system_shared_memory_status()}
    regions = c.get_system_shared_memory_status(as_json=True).get("regions", {})
    return {n: (r["key"], int(r.get("offset", 0)), int(r["byte_size"])) for n, r in regions.items()}


def test_matrix_input_and_both_outputs_in_shared_memory(client, regions, reference, matrix):
    module, c = client
    expected = reference.run(GBT, {"features": matrix})
    label_bytes, probs_bytes = expected["label"].nbytes, expected["probabilities"].nbytes
    inp = regions("in", matrix.nbytes)
    out = regions("out", label_bytes + probs_bytes)
    shm.set_shared_memory_region(inp, [matrix])
    c.register_system_shared_memory("in", key_of(inp), matrix.nbytes)
    c.register_system_shared_memory("out", key_of(out), label_bytes + probs_bytes)
    assert status_of(module, c) == {
        "in": (key_of(inp), 0, matrix.nbytes),
        "out": (key_of(out), 0, label_bytes + probs_bytes),
    }

    features = module.InferInput("features", list(matrix.shape), "FP32")
    features.set_shared_memory("in", matrix.nbytes)
    label = module.InferRequestedOutput("label")
    label.set_shared_memory("out", label_bytes)
    probabilities = module.InferRequestedOutput("probabilities")
    probabilities.set_shared_memory("out", probs_bytes, offset=label_bytes)
    result = c.infer(GBT, [features], outputs=[label, probabilities])

    got = {
        "label": shm.get_contents_as_numpy(out, np.int64, output_shape(module, result, "label")),
        "probabilities": shm.get_contents_as_numpy(
            out, np.float32, output_shape(module, result, "probabilities"), offset=label_bytes
        ),
    }
    assert_same(got, expected)


def test_bytes_inputs_in_shared_memory_beside_inputs_sent_inline(client, regions, reference, pipeline_feeds):
    """Categorical (BYTES) columns from shared memory, numeric ones in the request: over gRPC the
    raw contents then cover only the inline inputs."""
    module, c = client
    serialized = {col: serialize_byte_tensor(pipeline_feeds[col]) for col in CATEGORICAL}
    sizes = {col: serialized[col].item().__len__() for col in CATEGORICAL}
    region = regions("strings", sum(sizes.values()))
    shm.set_shared_memory_region(region, [serialized[col] for col in CATEGORICAL])
    c.register_system_shared_memory("strings", key_of(region), sum(sizes.values()))

    request = inputs(module, {col: pipeline_feeds[col] for col in NUMERIC})
    offset = 0
    for col in CATEGORICAL:
        i = module.InferInput(col, list(pipeline_feeds[col].shape), "BYTES")
        i.set_shared_memory("strings", sizes[col], offset=offset)
        offset += sizes[col]
        request.append(i)
    result = c.infer(PIPELINE, request)
    got = {n: result.as_numpy(n) for n in ("label", "probabilities")}
    assert_same(got, reference.run(PIPELINE, pipeline_feeds))


def test_registration_errors_name_the_problem(client, regions, matrix):
    module, c = client
    region = regions("small", 64)
    with pytest.raises(InferenceServerException, match="does not exist"):
        c.register_system_shared_memory("ghost", f"/slipway_{os.getpid()}_no_such_object", 64)
    with pytest.raises(InferenceServerException, match="runs past the end"):
        c.register_system_shared_memory("big", key_of(region), 128)
    c.register_system_shared_memory("small", key_of(region), 64)
    with pytest.raises(InferenceServerException, match="already registered"):
        c.register_system_shared_memory("small", key_of(region), 64)

    features = module.InferInput("features", list(matrix.shape), "FP32")
    features.set_shared_memory("small", matrix.nbytes)
    with pytest.raises(InferenceServerException, match="runs past the end of region 'small'"):
        c.infer(GBT, [features])
    features.set_shared_memory("missing", 64)
    with pytest.raises(InferenceServerException, match="region 'missing' is not registered"):
        c.infer(GBT, [features])

    c.unregister_system_shared_memory("small")
    assert status_of(module, c) == {}


def test_cuda_shared_memory_is_answered_as_on_a_cpu_server(client):
    module, c = client
    status = c.get_cuda_shared_memory_status() if module is httpclient else c.get_cuda_shared_memory_status(as_json=True)
    assert not status or status == {} or status.get("regions", {}) == {}
    c.unregister_cuda_shared_memory()
    with pytest.raises(InferenceServerException, match="CUDA shared memory is not supported"):
        c.register_cuda_shared_memory("gpu", b"\0" * 64, 0, 64)
