"""The official `mlflow` client (3.x) against `slipway serve` as its tracking server.

A data scientist's flow: set an experiment, start runs, log params, metrics over steps, tags and
artifacts (files and a folder), log a 3.x logged model (`mlflow.onnx.log_model`), then read it all
back through `MlflowClient` and compare values, bytes and predictions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import strict

try:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus, ViewType
    from mlflow.exceptions import MlflowException
except ImportError:  # pragma: no cover - reported below
    mlflow = None

pytestmark = pytest.mark.skipif(
    mlflow is None and not strict(), reason="mlflow is not installed in the interop venv (pip install mlflow==3.17.2)"
)

EXPERIMENT = "interop-tracking"
LOSSES = [1.0, 0.5, 0.3333, 0.25, 0.2]


@pytest.fixture(scope="module")
def client(tracking_server) -> MlflowClient:
    assert mlflow is not None, "mlflow is not installed in the interop venv"
    saved = dict(os.environ)
    # Fail fast instead of retrying for minutes if the server ever answered 5xx.
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    uri = f"http://{tracking_server.http_url}"
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(uri)
    os.environ.clear()
    os.environ.update(saved)


def _tiny_onnx():
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    clf = LogisticRegression().fit(X, y)
    onx = to_onnx(clf, X[:1], options={id(clf): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    return onx, X


@pytest.fixture(scope="module")
def logged(client, tmp_path_factory):
    """Two runs logged through the fluent API, the first with artifacts and a logged model."""
    files = tmp_path_factory.mktemp("artifacts")
    (files / "notes.txt").write_text("first baseline\n")
    folder = files / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "table.csv").write_text("a,b\n1,2\n3,4\n")
    (folder / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    onx, X = _tiny_onnx()

    experiment = mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"epochs": 5, "optimizer": "adam"})
        for step, loss in enumerate(LOSSES):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metrics({"accuracy": 0.91, "f1": 0.88})
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"dataset": "synthetic", "stage": "dev"})
        mlflow.log_artifact(str(files / "notes.txt"))
        mlflow.log_artifacts(str(folder), artifact_path="data")
        model_info = mlflow.onnx.log_model(onx, name="model")
    with mlflow.start_run(run_name="variant") as variant:
        mlflow.log_param("lr", 0.01)
        for step, loss in enumerate([0.9, 0.7, 0.6]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.set_tag("team", "nlp")
    return {
        "experiment": experiment,
        "run_id": run.info.run_id,
        "variant_id": variant.info.run_id,
        "files": files,
        "model_info": model_info,
        "onnx": onx,
        "X": X,
    }


def test_experiment_and_runs_read_back(client, logged):
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert exp.experiment_id == logged["experiment"].experiment_id
    assert exp.artifact_location == f"mlflow-artifacts:/{exp.experiment_id}"
    assert exp.lifecycle_stage == "active"

    run = client.get_run(logged["run_id"])
    assert run.info.run_name == "baseline"
    assert run.info.status == "FINISHED"
    assert run.info.end_time >= run.info.start_time
    assert run.info.artifact_uri == f"mlflow-artifacts:/{exp.experiment_id}/{run.info.run_id}/artifacts"
    assert run.data.params == {"lr": "0.1", "epochs": "5", "optimizer": "adam"}
    assert run.data.metrics == {"loss": LOSSES[-1], "accuracy": 0.91, "f1": 0.88}
    assert run.data.tags["team"] == "vision"
    assert run.data.tags["dataset"] == "synthetic"
    assert run.data.tags["mlflow.runName"] == "baseline"
    assert run.data.tags["mlflow.source.type"] == "LOCAL"


def test_metric_history(client, logged):
    history = client.get_metric_history(logged["run_id"], "loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == list(enumerate(LOSSES))
    assert all(m.timestamp > 0 for m in history)
    assert client.get_metric_history(logged["run_id"], "missing") == []


def test_search_runs_filters_and_orders(client, logged):
    exp_id = logged["experiment"].experiment_id
    found = client.search_runs([exp_id], "metrics.loss < 0.5 and params.lr = '0.1'")
    assert [r.info.run_id for r in found] == [logged["run_id"]]
    ordered = client.search_runs([exp_id], order_by=["metrics.loss DESC"])
    assert [r.info.run_id for r in ordered] == [logged["variant_id"], logged["run_id"]]
    assert [r.info.run_name for r in client.search_runs([exp_id], "tags.team = 'nlp'")] == ["variant"]
    assert client.search_runs([exp_id], "attributes.run_name LIKE 'Base%'") == []
    assert len(client.search_runs([exp_id], "attributes.run_name ILIKE 'Base%'")) == 1
    paged = client.search_runs([exp_id], max_results=1, order_by=["attributes.run_name ASC"])
    assert [r.info.run_name for r in paged] == ["baseline"]
    assert paged.token
    rest = client.search_runs([exp_id], max_results=1, order_by=["attributes.run_name ASC"], page_token=paged.token)
    assert [r.info.run_name for r in rest] == ["variant"]
    frame = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string="params.lr = '0.01'")
    assert list(frame["run_id"]) == [logged["variant_id"]]
    assert list(frame["metrics.loss"]) == [0.6]


def test_artifacts_list_and_download_equal_bytes(client, logged, tmp_path):
    run_id, files = logged["run_id"], logged["files"]
    root = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)}
    assert ("notes.txt", False, len((files / "notes.txt").read_bytes())) in root
    assert ("data", True, None) in root
    data = [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "data")]
    table = len((files / "data" / "table.csv").read_bytes())
    assert data == [("data/sub", True, None), ("data/table.csv", False, table)]

    local = Path(client.download_artifacts(run_id, "data", str(tmp_path)))
    for rel in ["table.csv", "sub/weights.bin"]:
        assert (local / rel).read_bytes() == (files / "data" / rel).read_bytes(), rel
    note = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes.txt", dst_path=str(tmp_path)))
    assert note.read_bytes() == (files / "notes.txt").read_bytes()


def test_logged_model_round_trip(client, logged):
    info = logged["model_info"]
    exp_id = logged["experiment"].experiment_id
    assert info.model_id.startswith("m-") and len(info.model_id) == 34
    model = client.get_logged_model(info.model_id)
    assert model.status == LoggedModelStatus.READY
    assert model.source_run_id == logged["run_id"]
    assert model.name == "model"
    assert model.artifact_location == f"mlflow-artifacts:/{exp_id}/models/{info.model_id}/artifacts"
    # 3.x copies the run's params and metrics (tagged with the model id) onto the logged model.
    assert model.params == {"lr": "0.1", "epochs": "5", "optimizer": "adam"}
    assert {m.key for m in model.metrics} == {"loss", "accuracy", "f1"}

    run = client.get_run(logged["run_id"])
    assert [o.model_id for o in run.outputs.model_outputs] == [info.model_id]
    found = mlflow.search_logged_models(
        experiment_ids=[exp_id], filter_string="name = 'model'", output_format="list"
    )
    assert [m.model_id for m in found] == [info.model_id]

    loaded = mlflow.onnx.load_model(info.model_uri)
    assert loaded.SerializeToString() == logged["onnx"].SerializeToString()
    X = logged["X"]
    expected = ort.InferenceSession(logged["onnx"].SerializeToString()).run(None, {"X": X})
    predicted = mlflow.pyfunc.load_model(info.model_uri).predict({"X": X})
    np.testing.assert_array_equal(np.asarray(predicted["label"]), expected[0])
    np.testing.assert_allclose(np.asarray(predicted["probabilities"]), expected[1], rtol=0, atol=1e-6)


def test_client_errors_are_mlflow_errors(client, logged):
    with pytest.raises(MlflowException) as missing:
        client.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as changed:
        client.log_param(logged["variant_id"], "lr", "0.5")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "lr" in str(changed.value)
    with pytest.raises(MlflowException) as exists:
        client.create_experiment(EXPERIMENT)
    assert exists.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_delete_and_restore_run(client, logged):
    exp_id = logged["experiment"].experiment_id
    run = client.create_run(exp_id, run_name="throwaway")
    client.delete_run(run.info.run_id)
    active = {r.info.run_id for r in client.search_runs([exp_id])}
    assert run.info.run_id not in active
    deleted = client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run.info.run_id]
    client.restore_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"
