#!/usr/bin/env python3
"""Trains the response-cache benchmark's heavier model: an MLP on the same 30 features as logreg30.

    interop/run.sh --install-only                            # numpy, scikit-learn, skl2onnx, onnx
    interop/.venv/bin/python bench/models/train_mlp256.py    # rewrite bench/models/mlp256

StandardScaler + MLPClassifier with two hidden layers of 256 (some 74,000 weights), trained for a
few seeded epochs on Adult's training split: a model whose run costs tens of microseconds a row,
so that what a cache hit saves shows next to what it costs. The inputs, outputs and sample rows
are logreg30's (`input` FP32 [-1,30]; `label` INT64 [-1], `probabilities` FP32 [-1,2]), so
`npm run bench:cache -- --model mlp256` sends the same requests. A rerun writes the same file.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_logreg30 import MODELS, RANDOM_STATE, export_onnx, load  # noqa: E402

MODEL_DIR = MODELS / "mlp256"


def main() -> int:
    _, x, y, train = load()
    mlp = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=15, random_state=RANDOM_STATE)
    model = Pipeline([("scale", StandardScaler()), ("clf", mlp)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[train], y[train])
    accuracy = float((model.predict(x[~train]) == y[~train]).mean())
    gap = export_onnx(model, x[~train], MODEL_DIR)
    print(f"test accuracy {accuracy:.3f}; onnxruntime vs scikit-learn max |Δp| {gap:.2e}")
    return 0 if gap < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
