#!/usr/bin/env python3
"""Trains the serving benchmark's model: a 30-feature logistic regression on UCI Adult.

    interop/run.sh --install-only                              # numpy, scikit-learn, skl2onnx, onnx
    interop/.venv/bin/python bench/models/train_logreg30.py    # rewrite the ONNX model and samples
    bench/.venv-mlserver/bin/python bench/models/train_logreg30.py --joblib-only   # MLServer's copy

The 30 FP32 features are the six numeric columns (age, fnlwgt, education_num, capital_gain,
capital_loss, hours_per_week) then one-hot columns of education (16), relationship (6) and sex (2),
each in sorted order; the model is StandardScaler + LogisticRegression, so a request is one row
of 30 floats and the work per row is tiny: the benchmark measures the serving stack, not the model.

Writes bench/models/logreg30/{1/model.onnx,config.json} (input `input` FP32 [-1,30]; outputs
`label` INT64 [-1], `probabilities` FP32 [-1,2]), bench/models/logreg30-samples.json (64 test
rows and scikit-learn's probabilities, used to build the load and check every server's answers)
and bench/mlserver/logreg30/model.joblib. `--joblib-only` needs only numpy and scikit-learn and
writes just the joblib. Everything is seeded, so a rerun with the same packages (scikit-learn
1.9.1 in both venvs) fits the same coefficients.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "adult" / "adult.csv"
MODELS = ROOT / "bench" / "models"
MODEL_DIR = MODELS / "logreg30"
SAMPLES = MODELS / "logreg30-samples.json"
JOBLIB = ROOT / "bench" / "mlserver" / "logreg30" / "model.joblib"

NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
ONE_HOT = ["education", "relationship", "sex"]
N_FEATURES = 30
N_SAMPLES = 64
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}  # loadable by onnxruntime-node 1.30
RANDOM_STATE = 0


def load() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    with DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    categories = {c: sorted({r[c] for r in rows}) for c in ONE_HOT}
    names = list(NUMERIC)
    for c in ONE_HOT:
        names += [f"{c}={v}" for v in categories[c]]
    assert len(names) == N_FEATURES, len(names)
    x = np.zeros((len(rows), N_FEATURES), dtype=np.float32)
    for i, r in enumerate(rows):
        for j, c in enumerate(NUMERIC):
            x[i, j] = float(r[c])
        offset = len(NUMERIC)
        for c in ONE_HOT:
            x[i, offset + categories[c].index(r[c])] = 1.0
            offset += len(categories[c])
    y = np.array([r["income"] == ">50K" for r in rows], dtype=np.int64)
    train = np.array([r["split"] == "train" for r in rows])
    return names, x, y, train


def export_onnx(model: Pipeline, x_test: np.ndarray, model_dir: Path = MODEL_DIR) -> float:
    """Writes `model_dir`/1/model.onnx and config.json; returns the largest probability gap to
    scikit-learn on `x_test`."""
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, N_FEATURES]))],
        options={id(model.named_steps["clf"]): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    onx.ir_version = min(onx.ir_version, 8)
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    (model_dir / "1" / "model.onnx").write_bytes(onx.SerializeToString())
    (model_dir / "config.json").write_text(json.dumps({"max_batch_size": 64}, indent=2) + "\n")

    sess = ort.InferenceSession(str(model_dir / "1" / "model.onnx"))
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
    _, probs = sess.run(None, {"input": x_test})
    return float(np.abs(probs - model.predict_proba(x_test)).max())


def write_samples(names: list[str], rows: np.ndarray, probabilities: np.ndarray) -> None:
    """One row per line, laid out as the repository's formatter (Biome) lays out JSON."""

    def number(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else repr(float(v))

    def array(values) -> str:
        return "[" + ", ".join(number(v) for v in values) + "]"

    lines = ["{", '  "feature_names": [']
    lines += [f"    {json.dumps(n)}," for n in names]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["  ],", '  "rows": [']
    lines += [f"    {array(r)}," for r in rows]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["  ],", '  "probabilities": [']
    lines += [f"    {array(round(float(p), 6) for p in r)}," for r in probabilities]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["  ]", "}"]
    SAMPLES.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--joblib-only", action="store_true", help="write only MLServer's joblib")
    args = parser.parse_args()

    names, x, y, train = load()
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(max_iter=1000, random_state=RANDOM_STATE)),
        ]
    ).fit(x[train], y[train])
    x_test, y_test = x[~train], y[~train]
    accuracy = float((model.predict(x_test) == y_test).mean())

    JOBLIB.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, JOBLIB)
    print(f"test accuracy {accuracy:.4f}; wrote {JOBLIB.relative_to(ROOT)}")
    if args.joblib_only:
        return 0

    max_diff = export_onnx(model, x_test)
    rows = x_test[:N_SAMPLES]
    write_samples(names, rows, model.predict_proba(rows))
    size = (MODEL_DIR / "1" / "model.onnx").stat().st_size
    print(f"max |p_onnx - p_sklearn| on the test split: {max_diff:.2e}")
    print(f"wrote {(MODEL_DIR / '1' / 'model.onnx').relative_to(ROOT)} ({size} bytes) and {SAMPLES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
