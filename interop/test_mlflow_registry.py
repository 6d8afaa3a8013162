"""The data scientist's flow with the official `mlflow` client (3.x), end to end, against
`slipway serve` as tracking server, model registry and inference server at once.

Two scikit-learn models trained on UCI Adult (scaler + logistic regression, gradient-boosted
trees), converted with skl2onnx, are logged in one run with params, a metric over steps, tags and
an artifact, and registered by `mlflow.onnx.log_model(..., registered_model_name=...)` as
versions 1 and 2. The `champion` alias picks the version `/v2/models/{name}` serves; moving it
swaps what answers. Every value read back is compared with what was logged, and every prediction
(pyfunc and Open Inference Protocol) with Python onnxruntime on the original ONNX model.

Tests that depend on where `champion` points set it first, so each stands alone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from conftest import NUMERIC, SEED, _export, strict
from helpers import ATOL, assert_same, inputs

try:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import RestException
except ImportError:  # pragma: no cover - reported below
    mlflow = None

pytestmark = pytest.mark.skipif(
    mlflow is None and not strict(), reason="mlflow is not installed in the interop venv (pip install mlflow==3.17.2)"
)

EXPERIMENT = "interop-registry"
NAME = "adult-income"
ROWS = 64  # test-split rows used for every prediction
GBT_ITERATIONS = 25
LOSS_EVERY = 5  # log the GBT's test log-loss every LOSS_EVERY boosting iterations
SWAP_SECONDS = 10.0  # how long a served version may take to follow an alias


# ---------------------------------------------------------------------------------------------
# Models and the logged flow


@pytest.fixture(scope="module")
def X(adult) -> np.ndarray:
    _, test = adult
    return np.ascontiguousarray(test[NUMERIC].head(ROWS).to_numpy(np.float32))


@pytest.fixture(scope="module")
def trained(adult, tmp_path_factory) -> dict:
    """Version 1: scaler + logistic regression; version 2: gradient-boosted trees. Both take
    `features` FP32 [-1, 6] and give `label` INT64 [-1] and `probabilities` FP32 [-1, 2]."""
    train, test = adult
    Xtr, ytr = train[NUMERIC].to_numpy(np.float32), train["y"]
    Xte, yte = test[NUMERIC].to_numpy(np.float32), test["y"]
    folder = tmp_path_factory.mktemp("registry-models")
    types = [("features", FloatTensorType([None, len(NUMERIC)]))]

    C = 0.5
    lr = LogisticRegression(C=C, max_iter=1000)
    linear = Pipeline([("scale", StandardScaler()), ("clf", lr)]).fit(Xtr, ytr)
    _export(linear, lr, types, folder / "linear.onnx")

    gbt = HistGradientBoostingClassifier(max_iter=GBT_ITERATIONS, learning_rate=0.2, random_state=SEED)
    gbt.fit(Xtr, ytr)
    _export(gbt, gbt, types, folder / "gbt.onnx")
    # The test log-loss after every LOSS_EVERY-th iteration: a metric over steps.
    losses = [
        (step, float(log_loss(yte, proba)))
        for step, proba in enumerate(gbt.staged_predict_proba(Xte), start=1)
        if step % LOSS_EVERY == 0
    ]
    return {
        "onnx": [onnx.load(folder / "linear.onnx"), onnx.load(folder / "gbt.onnx")],
        "params": {"C": C, "gbt_max_iter": GBT_ITERATIONS, "gbt_learning_rate": 0.2, "features": len(NUMERIC)},
        "accuracy": [float(accuracy_score(yte, m.predict(Xte))) for m in (linear, gbt)],
        "losses": losses,
    }


def onnxruntime_outputs(model: onnx.ModelProto, X: np.ndarray) -> dict[str, np.ndarray]:
    """Python onnxruntime on the original ONNX model: the reference every prediction must equal."""
    sess = ort.InferenceSession(model.SerializeToString())
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {"features": X})))


@pytest.fixture(scope="module")
def client(registry_server):
    assert mlflow is not None, "mlflow is not installed in the interop venv"
    saved = dict(os.environ)
    # Fail fast instead of retrying for minutes if the server ever answered 5xx.
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    uri = f"http://{registry_server.http_url}"
    # The registry URI follows the tracking URI: one server for both.
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(uri)
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def flow(client, trained, tmp_path_factory) -> dict:
    """One run: params, a metric over steps, tags, an artifact file, and both models logged and
    registered under NAME (versions 1 and 2); then `champion` -> 1."""
    report = tmp_path_factory.mktemp("run-artifacts") / "evaluation.json"
    report.write_text(json.dumps({"accuracy": {"linear": trained["accuracy"][0], "gbt": trained["accuracy"][1]}}))
    tags = {"team": "risk", "dataset": "adult", "purpose": "income screening"}

    experiment = mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="adult-two-models") as run:
        mlflow.log_params(trained["params"])
        for step, loss in trained["losses"]:
            mlflow.log_metric("test_log_loss", loss, step=step)
        mlflow.log_metric("accuracy_linear", trained["accuracy"][0])
        mlflow.log_metric("accuracy_gbt", trained["accuracy"][1])
        mlflow.set_tags(tags)
        mlflow.log_artifact(str(report))
        infos = [mlflow.onnx.log_model(m, name="model", registered_model_name=NAME) for m in trained["onnx"]]
    client.set_registered_model_alias(NAME, "champion", "1")
    return {"experiment": experiment, "run_id": run.info.run_id, "infos": infos, "tags": tags, "report": report}


# ---------------------------------------------------------------------------------------------
# Serving helpers


@pytest.fixture(scope="module")
def v2(registry_server):
    import tritonclient.http as httpclient

    c = httpclient.InferenceServerClient(registry_server.http_url, network_timeout=60.0)
    yield c
    c.close()


def infer(v2, X: np.ndarray, version: str = "") -> tuple[str, dict[str, np.ndarray]]:
    """(model_version answered, outputs) for one request to NAME over the Open Inference Protocol."""
    import tritonclient.http as httpclient

    outputs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in ("label", "probabilities")]
    res = v2.infer(NAME, inputs(httpclient, {"features": X}, binary=True), model_version=version, outputs=outputs)
    return res.get_response()["model_version"], {n: res.as_numpy(n) for n in ("label", "probabilities")}


def wait_ready(server, path: str) -> None:
    deadline = time.monotonic() + SWAP_SECONDS
    status = None
    while time.monotonic() < deadline:
        status, _, _ = server.request("GET", path)
        if status == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} answered {status} for {SWAP_SECONDS:.0f} s")


def promote(client, server, v2, X, version: str) -> None:
    """Points `champion` at `version` and waits until /v2/models/NAME answers with it."""
    client.set_registered_model_alias(NAME, "champion", version)
    wait_ready(server, f"/v2/models/{NAME}/ready")
    deadline = time.monotonic() + SWAP_SECONDS
    answered = None
    while time.monotonic() < deadline:
        answered, _ = infer(v2, X)
        if answered == version:
            return
        time.sleep(0.1)
    raise AssertionError(f"/v2/models/{NAME} still answers version {answered} {SWAP_SECONDS:.0f} s after the move")


# ---------------------------------------------------------------------------------------------
# Tests


def test_log_model_registers_two_ready_versions(client, flow, registry_server):
    infos = flow["infos"]
    assert [str(i.registered_model_version) for i in infos] == ["1", "2"]
    assert infos[0].model_id != infos[1].model_id
    for number, info in zip(["1", "2"], infos):
        v = client.get_model_version(NAME, number)
        assert (v.name, v.version, v.status, v.current_stage) == (NAME, number, "READY", "None")
        # log_model sends no run id: the version belongs to the run that logged the model.
        assert v.run_id == flow["run_id"]
        assert v.source == f"models:/{info.model_id}"
        # The client's ModelVersion drops model_id; the server keeps it.
        status, body = registry_server.json("GET", f"/api/2.0/mlflow/model-versions/get?name={NAME}&version={number}")
        assert status == 200, body
        assert body["model_version"]["model_id"] == info.model_id
    # Each version downloads from its own immutable folder.
    assert client.get_model_version_download_uri(NAME, "2") == f"mlflow-artifacts:/registry/{NAME}/2"


def test_alias_and_registry_read_back(client, flow, registry_server, v2, X):
    promote(client, registry_server, v2, X, "1")
    by_alias = client.get_model_version_by_alias(NAME, "champion")
    assert (by_alias.name, by_alias.version, by_alias.status) == (NAME, "1", "READY")
    assert by_alias.aliases == ["champion"]
    assert by_alias.run_id == flow["run_id"]

    versions = client.search_model_versions(f"name='{NAME}'")
    assert sorted((v.version, v.status, v.run_id, tuple(v.aliases)) for v in versions) == [
        ("1", "READY", flow["run_id"], ("champion",)),
        ("2", "READY", flow["run_id"], ()),
    ]
    assert {v.version: v.source for v in versions} == {
        str(n): f"models:/{info.model_id}" for n, info in enumerate(flow["infos"], start=1)
    }

    model = client.get_registered_model(NAME)
    assert model.name == NAME
    assert model.aliases == {"champion": "1"}
    assert [v.version for v in model.latest_versions] == ["2"]
    assert [m.name for m in client.search_registered_models(f"name = '{NAME}'")] == [NAME]


def test_run_read_back(client, flow, trained, tmp_path):
    run = client.get_run(flow["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "adult-two-models"
    assert run.info.experiment_id == flow["experiment"].experiment_id
    assert run.data.params == {k: str(v) for k, v in trained["params"].items()}
    assert run.data.metrics == {
        "test_log_loss": trained["losses"][-1][1],
        "accuracy_linear": trained["accuracy"][0],
        "accuracy_gbt": trained["accuracy"][1],
    }
    for key, value in flow["tags"].items():
        assert run.data.tags[key] == value
    assert run.data.tags["mlflow.runName"] == "adult-two-models"

    history = client.get_metric_history(flow["run_id"], "test_log_loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == trained["losses"]
    assert len(trained["losses"]) == GBT_ITERATIONS // LOSS_EVERY

    # Both logged models are outputs of the run.
    assert sorted(o.model_id for o in run.outputs.model_outputs) == sorted(i.model_id for i in flow["infos"])

    report = flow["report"]
    listed = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(flow["run_id"])}
    assert ("evaluation.json", False, report.stat().st_size) in listed
    local = Path(client.download_artifacts(flow["run_id"], "evaluation.json", str(tmp_path)))
    assert local.read_bytes() == report.read_bytes()


def test_pyfunc_champion_predicts_like_the_original(client, flow, trained, registry_server, v2, X):
    promote(client, registry_server, v2, X, "1")
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    predicted = model.predict(X)
    expected = onnxruntime_outputs(trained["onnx"][0], X)
    np.testing.assert_array_equal(np.asarray(predicted["label"]), expected["label"])
    np.testing.assert_allclose(np.asarray(predicted["probabilities"]), expected["probabilities"], rtol=0, atol=ATOL)
    # The ONNX file behind the alias is, byte for byte, the one logged as version 1.
    loaded = mlflow.onnx.load_model(f"models:/{NAME}@champion")
    assert loaded.SerializeToString() == trained["onnx"][0].SerializeToString()
    # The two models really differ, so the comparisons here and below can tell them apart.
    other = onnxruntime_outputs(trained["onnx"][1], X)
    assert np.abs(other["probabilities"] - expected["probabilities"]).max() > 1e-3


def test_v2_serves_the_champion_by_name(client, flow, trained, registry_server, v2, X):
    promote(client, registry_server, v2, X, "1")
    wait_ready(registry_server, f"/v2/models/{NAME}/ready")
    version, outputs = infer(v2, X)
    assert version == "1"
    assert_same(outputs, onnxruntime_outputs(trained["onnx"][0], X))

    meta = v2.get_model_metadata(NAME)
    assert meta["name"] == NAME
    assert {i["name"]: (i["datatype"], i["shape"]) for i in meta["inputs"]} == {"features": ("FP32", [-1, 6])}
    # The latest version is loaded too, addressable by number. The server loads it when the
    # registry reports the change (reloads of one model at least 250 ms apart), so the champion
    # may answer before it is ready.
    wait_ready(registry_server, f"/v2/models/{NAME}/versions/2/ready")
    version, outputs = infer(v2, X, "2")
    assert version == "2"
    assert_same(outputs, onnxruntime_outputs(trained["onnx"][1], X))


def test_moving_champion_swaps_the_served_version(client, flow, trained, registry_server, v2, X):
    expected = {str(n): onnxruntime_outputs(m, X) for n, m in enumerate(trained["onnx"], start=1)}
    promote(client, registry_server, v2, X, "1")
    # Version 1 stays addressable after the move only while an alias names it (or it is the
    # latest): keep a rollback alias on it.
    client.set_registered_model_alias(NAME, "previous", "1")

    client.set_registered_model_alias(NAME, "champion", "2")
    # Every request during the swap succeeds, answered by one version or the other.
    answered = []
    deadline = time.monotonic() + SWAP_SECONDS
    while time.monotonic() < deadline:
        version, outputs = infer(v2, X)
        assert version in expected, version
        assert_same(outputs, expected[version])
        answered.append(version)
        if version == "2":
            break
        time.sleep(0.05)
    assert answered[-1] == "2", f"still version 1 after {SWAP_SECONDS:.0f} s ({len(answered)} requests)"
    for _ in range(5):
        assert infer(v2, X)[0] == "2"

    assert client.get_model_version_by_alias(NAME, "champion").version == "2"
    predicted = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(X)
    np.testing.assert_array_equal(np.asarray(predicted["label"]), expected["2"]["label"])
    np.testing.assert_allclose(np.asarray(predicted["probabilities"]), expected["2"]["probabilities"], rtol=0, atol=ATOL)

    version, outputs = infer(v2, X, "1")
    assert version == "1"
    assert_same(outputs, expected["1"])
    status, _, _ = registry_server.request("GET", f"/v2/models/{NAME}/versions/1/ready")
    assert status == 200

    # With no alias left on it, version 1 (not the latest) is no longer served; the champion is.
    client.delete_registered_model_alias(NAME, "previous")
    deadline = time.monotonic() + SWAP_SECONDS
    while time.monotonic() < deadline:
        status, _, _ = registry_server.request("GET", f"/v2/models/{NAME}/versions/1/ready")
        if status != 200:
            break
        time.sleep(0.1)
    assert status == 404, f"version 1 answers {status} to ready with no alias on it"
    status, body = registry_server.json(
        "POST",
        f"/v2/models/{NAME}/versions/1/infer",
        {"inputs": [{"name": "features", "datatype": "FP32", "shape": list(X[:1].shape), "data": X[:1].ravel().tolist()}]},
    )
    assert status == 404, (status, body)
    assert "1" in body["error"], body
    assert infer(v2, X)[0] == "2"


def test_creating_an_existing_registered_model_fails_fast(client, flow, monkeypatch):
    # With the client's default retries: a 4xx is not retried, so the error comes at once.
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    started = time.monotonic()
    with pytest.raises(RestException) as exists:
        client.create_registered_model(NAME)
    elapsed = time.monotonic() - started
    assert exists.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert NAME in str(exists.value)
    assert elapsed < 5.0, f"took {elapsed:.1f} s"
    # Nothing changed: still two versions.
    assert sorted(v.version for v in client.search_model_versions(f"name='{NAME}'")) == ["1", "2"]
