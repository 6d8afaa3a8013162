"""Session fixtures for the interop suite.

At session start the suite trains its own models on UCI Adult, exports them with skl2onnx into
a temporary model repository, starts `node bin/slipway.js serve` on free ports and waits for
`/v2/health/ready`. Every test then talks to that one server through real clients
(tritonclient HTTP and gRPC, perf_analyzer) and compares outputs with Python onnxruntime.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "datasets" / "adult" / "adult.csv"
FIXTURES = ROOT / "test" / "fixtures" / "models"

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
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
TRAIN_ROWS = 8000
SEED = 0

# Models the suite trains (name -> input layout); add_sub is copied from test/fixtures.
PIPELINE = "adult_pipeline"  # one input per column, string categoricals, logistic regression
GBT = "adult_gbt"  # HistGradientBoosting on one FP32 [N, 6] matrix input
MLP = "adult_mlp"  # StandardScaler + MLPClassifier on one FP32 [N, 6] matrix input
ADD_SUB = "add_sub"  # two versions, used for version routing and load/unload
# identity_<datatype> fixtures: INPUT0 -> OUTPUT0, shape [-1, -1], one model per datatype.
IDENTITY_DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
IDENTITY_DATATYPES += ["FP16", "FP32", "FP64", "BYTES"]


def strict() -> bool:
    return os.environ.get("SLIPWAY_INTEROP_STRICT") == "1"


# ---------------------------------------------------------------------------------------------
# Data and models


@pytest.fixture(scope="session")
def adult() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(DATA)
    for c in CATEGORICAL:
        df[c] = df[c].fillna("").astype(object)
    for c in NUMERIC:
        df[c] = df[c].astype(np.float32)
    df["y"] = (df["income"] == ">50K").astype(np.int64)
    train = df[df["split"] == "train"].sample(TRAIN_ROWS, random_state=SEED)
    test = df[df["split"] == "test"].reset_index(drop=True)
    return train, test


def _export(model, clf, initial_types, path: Path) -> None:
    onx = to_onnx(model, initial_types=initial_types, options={id(clf): {"zipmap": False}}, target_opset=TARGET_OPSET)
    # Some converters list a domain twice; keep one import per domain.
    seen: dict[str, int] = {}
    for op in onx.opset_import:
        seen[op.domain] = max(seen.get(op.domain, 0), op.version)
    del onx.opset_import[:]
    onx.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in seen.items())
    onx.ir_version = min(onx.ir_version, 8)
    onnx.checker.check_model(onx)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onx.SerializeToString())


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory, adult) -> Path:
    train, _ = adult
    repo = tmp_path_factory.mktemp("models")
    y = train["y"]

    categorical = Pipeline(
        [
            ("impute", SimpleImputer(missing_values="", strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    features = ColumnTransformer([("num", StandardScaler(), NUMERIC), ("cat", categorical, CATEGORICAL)])
    lr = LogisticRegression(max_iter=1000)
    pipe = Pipeline([("features", features), ("clf", lr)]).fit(train[NUMERIC + CATEGORICAL], y)
    types = [(c, FloatTensorType([None, 1])) for c in NUMERIC] + [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    _export(pipe, lr, types, repo / PIPELINE / "1" / "model.onnx")

    X = train[NUMERIC].to_numpy(np.float32)
    gbt = HistGradientBoostingClassifier(max_iter=30, random_state=SEED).fit(X, y)
    _export(gbt, gbt, [("features", FloatTensorType([None, len(NUMERIC)]))], repo / GBT / "1" / "model.onnx")

    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp_pipe = Pipeline([("scale", StandardScaler()), ("clf", mlp)]).fit(X, y)
    _export(mlp_pipe, mlp, [("features", FloatTensorType([None, len(NUMERIC)]))], repo / MLP / "1" / "model.onnx")

    labels = {"max_batch_size": 64, "label_names": ["<=50K", ">50K"], "monitoring": {"segments": ["region"]}}
    for name in (PIPELINE, GBT, MLP):
        (repo / name / "config.json").write_text(json.dumps(labels))
    shutil.copytree(FIXTURES / ADD_SUB, repo / ADD_SUB)
    for datatype in IDENTITY_DATATYPES:
        shutil.copytree(FIXTURES / f"identity_{datatype.lower()}", repo / f"identity_{datatype.lower()}")
    return repo


@dataclass
class Reference:
    """Python onnxruntime sessions on the same files the server serves."""

    repo: Path

    def session(self, model: str, version: int = 1) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        return ort.InferenceSession(str(self.repo / model / str(version) / "model.onnx"), opts)

    def run(self, model: str, feeds: dict[str, np.ndarray], version: int = 1) -> dict[str, np.ndarray]:
        sess = self.session(model, version)
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds)))


@pytest.fixture(scope="session")
def reference(model_repo) -> Reference:
    return Reference(model_repo)


@pytest.fixture(scope="session")
def records(adult) -> pd.DataFrame:
    """Test-split rows with at least one missing category among them."""
    _, test = adult
    missing = test[(test[CATEGORICAL] == "").any(axis=1)].head(2)
    return pd.concat([test.head(14), missing]).reset_index(drop=True)


@pytest.fixture(scope="session")
def pipeline_feeds(records) -> dict[str, np.ndarray]:
    feeds = {c: records[c].to_numpy(np.float32).reshape(-1, 1) for c in NUMERIC}
    feeds.update({c: records[c].to_numpy(object).reshape(-1, 1) for c in CATEGORICAL})
    return feeds


@pytest.fixture(scope="session")
def matrix(records) -> np.ndarray:
    return np.ascontiguousarray(records[NUMERIC].to_numpy(np.float32))


# ---------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    host: str
    http_port: int
    grpc_port: int
    log: Path
    trace_file: Path | None = None

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """Plain HTTP for what a client library hides: (status, headers, body bytes).

        The headers are an `email.message.Message`, so `.get()` ignores case.
        """
        req = urllib.request.Request(
            f"http://{self.http_url}{path}", data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                return res.status, res.headers, res.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def json(self, method: str, path: str, payload=None):
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, _, raw = self.request(method, path, body, headers)
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as res:
                if res.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def server(model_repo, tmp_path_factory) -> Server:
    host = "127.0.0.1"
    http_port, grpc_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("server") / "slipway.log"
    trace_file = log.parent / "trace.json"
    cmd = [
        "node",
        str(ROOT / "bin" / "slipway.js"),
        "serve",
        "--models",
        str(model_repo),
        "--host",
        host,
        "--port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        # test_shared_memory.py registers regions, as Triton allows with --allow-client-shm.
        "--allow-client-shm",
        # test_trace.py turns tracing on at run time; the file is set at start only, as in Triton.
        "--trace-file",
        str(trace_file),
    ]
    for _ in serve_process(cmd, f"http://{host}:{http_port}/v2/health/ready", log):
        yield Server(host, http_port, grpc_port, log, trace_file)


@pytest.fixture(scope="session")
def http_client(server):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.http_url, network_timeout=60.0)
    yield client
    client.close()


@pytest.fixture(scope="session")
def grpc_client(server):
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.grpc_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory) -> Server:
    """`slipway serve` with no model folder and a fresh --data-dir: the MLflow tracking server."""
    host = "127.0.0.1"
    http_port = free_port()
    data_dir = tmp_path_factory.mktemp("slipway-data")
    log = tmp_path_factory.mktemp("tracking-server") / "slipway.log"
    cmd = ["node", str(ROOT / "bin" / "slipway.js"), "serve", "--data-dir", str(data_dir)]
    cmd += ["--host", host, "--port", str(http_port), "--no-grpc"]
    for _ in serve_process(cmd, f"http://{host}:{http_port}/health", log):
        yield Server(host, http_port, 0, log)


def serve_process(cmd: list[str], ready_url: str, log: Path):
    """Starts `cmd` (a `slipway serve`) in its own process group, yields the process once
    `ready_url` answers 200, and stops the whole group (so nothing it started outlives the suite)
    when resumed. A fixture iterates it once:
    `for _ in serve_process(...): yield Server(...)`."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(proc, ready_url, log)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def registry_server(tmp_path_factory) -> Server:
    """A module's own `slipway serve`: fresh --data-dir, no model folder, no gRPC. It serves
    what the module registers, so alias moves in one module cannot reach another."""
    host = "127.0.0.1"
    http_port = free_port()
    data_dir = tmp_path_factory.mktemp("registry-data")
    log = tmp_path_factory.mktemp("registry-server") / "slipway.log"
    cmd = ["node", str(ROOT / "bin" / "slipway.js"), "serve", "--data-dir", str(data_dir)]
    cmd += ["--host", host, "--port", str(http_port), "--no-grpc"]
    for _ in serve_process(cmd, f"http://{host}:{http_port}/health", log):
        yield Server(host, http_port, 0, log)
