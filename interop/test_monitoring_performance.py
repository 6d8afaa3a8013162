"""Performance from logged predictions and ground truth equals scikit-learn's on the same rows.

Rows of Adult's test split go to the served scikit-learn pipeline through the records API; ground
truth (with weights) goes to /v1/feedback; /api/v1/monitoring/performance must give scikit-learn's
accuracy, precision, recall, F1, ROC AUC, log loss and confusion matrix for the same predictions,
overall and per segment. Regression metrics are checked on the identity model (prediction = input).
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from conftest import CATEGORICAL, NUMERIC, PIPELINE
from sklearn import metrics

REL = 1e-9


def close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(1.0, abs(b))


@pytest.fixture(scope="module")
def logged(server, adult):
    """Sends 600 test rows in requests of 50 with a region segment; returns what was sent and answered."""
    _, test = adult
    rows = test.head(600).reset_index(drop=True)
    rng = np.random.default_rng(7)
    weights = rng.choice([1.0, 2.0, 0.5], size=len(rows))
    region = np.where(np.arange(len(rows)) % 3 == 0, "EU", "US")
    start = int(time.time() * 1000) - 1
    predicted, proba, ids = [], [], []
    for i in range(0, len(rows), 50):
        chunk = rows.iloc[i : i + 50]
        instances = []
        for j, (_, r) in enumerate(chunk.iterrows()):
            rec = {c: float(r[c]) for c in NUMERIC}
            rec.update({c: r[c] for c in CATEGORICAL})
            rec["region"] = str(region[i + j])
            instances.append(rec)
        request_id = f"perf-{uuid.uuid4()}"
        status, body = server.json("POST", f"/v1/models/{PIPELINE}:predict", {"id": request_id, "instances": instances})
        assert status == 200, body
        for p in body["predictions"]:
            predicted.append(p["label"])
            proba.append(p["probabilities"][">50K"])
        ids.append(request_id)
    truth = rows["income"].tolist()
    feedback = [
        {"request_id": ids[k // 50], "row": k % 50, "ground_truth": truth[k], "weight": float(weights[k])}
        for k in range(len(rows))
    ]
    status, body = server.json("POST", "/v1/feedback", {"feedback": feedback})
    assert status == 200 and body == {"accepted": len(rows)}, body
    time.sleep(1.5)  # one flush interval of the prediction log
    return {
        "start": start,
        "until": int(time.time() * 1000) + 1,
        "truth": np.array(truth),
        "predicted": np.array(predicted),
        "proba": np.array(proba),
        "weights": weights,
        "region": region,
    }


def expected(d, mask):
    y, yhat, p, w = d["truth"][mask], d["predicted"][mask], d["proba"][mask], d["weights"][mask]
    labels = ["<=50K", ">50K"]
    return {
        "accuracy": metrics.accuracy_score(y, yhat, sample_weight=w),
        "precision": metrics.precision_score(y, yhat, pos_label=">50K", sample_weight=w, zero_division=0),
        "recall": metrics.recall_score(y, yhat, pos_label=">50K", sample_weight=w, zero_division=0),
        "f1": metrics.f1_score(y, yhat, pos_label=">50K", sample_weight=w, zero_division=0),
        "roc_auc": metrics.roc_auc_score(y == ">50K", p, sample_weight=w),
        "log_loss": metrics.log_loss(y, np.column_stack([1 - p, p]), labels=labels, sample_weight=w),
        "confusion_matrix": metrics.confusion_matrix(y, yhat, labels=labels, sample_weight=w).tolist(),
    }


def check(got, want):
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert close(got[key], want[key]), (key, got[key], want[key])
    for row_got, row_want in zip(got["confusion_matrix"], want["confusion_matrix"]):
        for a, b in zip(row_got, row_want):
            assert close(a, b)


def test_classification_overall_and_per_segment(server, logged):
    q = f"model={PIPELINE}&since={logged['start']}&until={logged['until']}&by=region"
    status, body = server.json("GET", f"/api/v1/monitoring/performance?{q}")
    assert status == 200, body
    assert body["labelled"] == 600
    assert body["metrics"]["classes"] == ["<=50K", ">50K"]
    check(body["metrics"], expected(logged, np.ones(600, bool)))
    for region in ("EU", "US"):
        check(body["segments"][region], expected(logged, logged["region"] == region))


def test_regression(server):
    rng = np.random.default_rng(3)
    x = rng.normal(10, 3, size=40).astype(np.float32)
    y = x + rng.normal(0, 1, size=40)
    w = rng.choice([1.0, 3.0], size=40)
    request_id = f"reg-{uuid.uuid4()}"
    start = int(time.time() * 1000) - 1
    status, body = server.json(
        "POST",
        "/v2/models/identity_fp32/infer",
        {"id": request_id, "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [40, 1], "data": x.tolist()}]},
    )
    assert status == 200, body
    status, _ = server.json(
        "POST",
        "/v1/feedback",
        [{"request_id": request_id, "row": i, "ground_truth": float(y[i]), "weight": float(w[i])} for i in range(40)],
    )
    assert status == 200
    time.sleep(1.5)
    status, body = server.json(
        "GET", f"/api/v1/monitoring/performance?model=identity_fp32&since={start}&until={int(time.time() * 1000) + 1}"
    )
    assert status == 200, body
    m = body["metrics"]
    pred = x.astype(np.float64)  # the model's float32 outputs, read back as doubles
    assert m["task"] == "regression"
    assert close(m["mae"], metrics.mean_absolute_error(y, pred, sample_weight=w))
    assert close(m["rmse"], np.sqrt(metrics.mean_squared_error(y, pred, sample_weight=w)))
    assert close(m["mape"], metrics.mean_absolute_percentage_error(y, pred, sample_weight=w))
    assert close(m["r2"], metrics.r2_score(y, pred, sample_weight=w))
