#!/usr/bin/env python3
"""Trains the demo model: income > $50K on UCI Adult, exported to ONNX with one input per column.

    interop/run.sh --install-only                   # a venv with the pinned packages
    interop/.venv/bin/python examples/adult/train.py

Writes examples/models/adult-income/{1/model.onnx,config.json} and
examples/adult/sample-records.json, and prints the test-split accuracy of both the
scikit-learn pipeline and the ONNX model. Every random choice is seeded, so a rerun with the
same package versions writes the same model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "adult" / "adult.csv"
MODEL_DIR = ROOT / "examples" / "models" / "adult-income"
SAMPLES = ROOT / "examples" / "adult" / "sample-records.json"

NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CATEGORICAL = [
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native_country",
]
LABEL_NAMES = ["<=50K", ">50K"]  # index = the integer class the model predicts
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}  # loadable by onnxruntime-node 1.30
RANDOM_STATE = 0


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(DATA)
    # Missing categories arrive as empty strings, which is also how a client sends them.
    for c in CATEGORICAL:
        df[c] = df[c].fillna("").astype(object)
    for c in NUMERIC:
        df[c] = df[c].astype(np.float32)
    df["y"] = (df["income"] == ">50K").astype(np.int64)
    return df[df["split"] == "train"], df[df["split"] == "test"]


def pipeline() -> Pipeline:
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(missing_values="", strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    features = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", categorical, CATEGORICAL)],
    )
    clf = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=RANDOM_STATE)
    return Pipeline([("features", features), ("clf", clf)])


def onnx_inputs(df: pd.DataFrame) -> dict[str, np.ndarray]:
    feeds = {c: df[c].to_numpy(np.float32).reshape(-1, 1) for c in NUMERIC}
    feeds.update({c: df[c].to_numpy(object).reshape(-1, 1) for c in CATEGORICAL})
    return feeds


def main() -> int:
    train, test = load()
    model = pipeline().fit(train[NUMERIC + CATEGORICAL], train["y"])
    clf = model.named_steps["clf"]
    assert list(clf.classes_) == [0, 1], clf.classes_
    sk_acc = float((model.predict(test[NUMERIC + CATEGORICAL]) == test["y"]).mean())

    initial_types = [(c, FloatTensorType([None, 1])) for c in NUMERIC]
    initial_types += [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    onx = to_onnx(
        model,
        initial_types=initial_types,
        options={id(clf): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    onx.ir_version = min(onx.ir_version, 8)
    (MODEL_DIR / "1").mkdir(parents=True, exist_ok=True)
    (MODEL_DIR / "1" / "model.onnx").write_bytes(onx.SerializeToString())
    config = {"max_batch_size": 64, "label_names": LABEL_NAMES}
    (MODEL_DIR / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    sess = ort.InferenceSession(str(MODEL_DIR / "1" / "model.onnx"))
    label, probs = sess.run(["label", "probabilities"], onnx_inputs(test))
    onnx_acc = float((label == test["y"].to_numpy()).mean())
    sk_probs = model.predict_proba(test[NUMERIC + CATEGORICAL])
    max_diff = float(np.abs(probs - sk_probs).max())

    columns = [c for c in test.columns if c in NUMERIC or c in CATEGORICAL]  # the CSV's order
    instances = [
        {c: (int(r[c]) if c in NUMERIC else r[c]) for c in columns} for _, r in test.head(5).iterrows()
    ]
    SAMPLES.write_text(json.dumps({"instances": instances}, indent=2) + "\n")

    size = (MODEL_DIR / "1" / "model.onnx").stat().st_size
    print(f"train rows {len(train)}, test rows {len(test)}")
    print(f"test accuracy: scikit-learn {sk_acc:.4f}, onnx {onnx_acc:.4f}")
    print(f"max |p_onnx - p_sklearn| on the test split: {max_diff:.2e}")
    print(f"wrote {MODEL_DIR / '1' / 'model.onnx'} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
