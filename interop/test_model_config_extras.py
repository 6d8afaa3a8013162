"""Triton's model_warmup and response_cache in config.json, seen through tritonclient: the
configuration both protocols report, a warmed model answering like onnxruntime, and a repeated
request answered from the response cache (counted as a cache hit in the statistics)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import MLP, ROOT, Server, free_port, serve_process
from helpers import assert_same, inputs

CONFIG = {
    "max_batch_size": 16,
    "response_cache": {"enable": True},
    "model_warmup": [
        {
            "name": "random_rows",
            "batch_size": 8,
            "count": 2,
            "inputs": {"features": {"data_type": "TYPE_FP32", "dims": [6], "random_data": True}},
        }
    ],
}


@pytest.fixture(scope="module")
def cache_server(model_repo, tmp_path_factory):
    """A server of its own with a response cache, serving the suite's MLP with CONFIG."""
    repo = tmp_path_factory.mktemp("cache-models")
    shutil.copytree(model_repo / MLP, repo / MLP)
    (repo / MLP / "config.json").write_text(json.dumps(CONFIG))
    host, http_port, grpc_port = "127.0.0.1", free_port(), free_port()
    log = tmp_path_factory.mktemp("cache-server") / "slipway.log"
    cmd = ["node", str(ROOT / "bin" / "slipway.js"), "serve", "--models", str(repo)]
    cmd += ["--data-dir", str(tmp_path_factory.mktemp("cache-data")), "--host", host]
    cmd += ["--port", str(http_port), "--grpc-port", str(grpc_port), "--response-cache-bytes", str(1 << 20)]
    for _ in serve_process(cmd, f"http://{host}:{http_port}/v2/health/ready", log):
        yield Server(host, http_port, grpc_port, log), repo


def test_config_reports_warmup_and_cache(cache_server):
    server, _ = cache_server
    http = httpclient.InferenceServerClient(server.http_url)
    grpc = grpcclient.InferenceServerClient(server.grpc_url)
    config = http.get_model_config(MLP)
    assert config["response_cache"] == {"enable": True}
    assert config["model_warmup"] == CONFIG["model_warmup"]
    g = grpc.get_model_config(MLP, as_json=True)["config"]
    assert g["response_cache"] == {"enable": True}
    sample = g["model_warmup"][0]
    assert (sample["name"], sample["batch_size"], sample["count"]) == ("random_rows", 8, 2)
    assert sample["inputs"]["features"]["data_type"] == "TYPE_FP32"
    assert sample["inputs"]["features"]["random_data"] is True


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_repeated_request_is_a_cache_hit(cache_server, matrix, protocol):
    server, repo = cache_server
    client, module = (
        (httpclient.InferenceServerClient(server.http_url), httpclient)
        if protocol == "http"
        else (grpcclient.InferenceServerClient(server.grpc_url), grpcclient)
    )
    rows = matrix[:4] + (1.0 if protocol == "http" else 2.0)  # inputs no other test sent
    before = client.get_inference_statistics(MLP, as_json=True) if protocol == "grpc" else None
    before = before or client.get_inference_statistics(MLP)
    first = client.infer(MLP, inputs(module, {"features": rows}))
    second = client.infer(MLP, inputs(module, {"features": rows}))
    session = ort.InferenceSession(str(repo / MLP / "1" / "model.onnx"))
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"features": rows})))
    assert_same({n: first.as_numpy(n) for n in want}, want)
    assert_same({n: second.as_numpy(n) for n in want}, want)
    after = client.get_inference_statistics(MLP, as_json=True) if protocol == "grpc" else None
    after = after or client.get_inference_statistics(MLP)

    def counts(stats):
        s = stats["model_stats"][0]
        i = s["inference_stats"]
        get = lambda d: int(d.get("count", 0))  # noqa: E731 (gRPC's JSON leaves zero counts out)
        return get(i["cache_hit"]), get(i["cache_miss"]), int(s.get("execution_count", 0))

    hit0, miss0, exec0 = counts(before)
    hit1, miss1, exec1 = counts(after)
    assert (hit1 - hit0, miss1 - miss0, exec1 - exec0) == (1, 1, 1)
    np.testing.assert_array_equal(first.as_numpy("label"), second.as_numpy("label"))
