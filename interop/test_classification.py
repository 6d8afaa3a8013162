"""Triton's classification extension through tritonclient's `class_count`: an output's top classes
as "<value>:<index>:<label>" strings over HTTP (JSON and binary) and gRPC, equal to the top
classes of Python onnxruntime's probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import GBT, MLP
from helpers import inputs

LABELS = ["<=50K", ">50K"]


def expected_top(probabilities: np.ndarray, count: int) -> list[list[tuple[float, int, str]]]:
    rows = []
    for row in probabilities:
        # Highest first; equal values by index (a stable sort of the negated values).
        order = np.argsort(-row, kind="stable")[:count]
        rows.append([(float(row[i]), int(i), LABELS[i]) for i in order])
    return rows


def parse(cells: np.ndarray) -> list[list[tuple[float, int, str]]]:
    out = []
    for row in cells:
        parsed = []
        for cell in row:
            value, index, label = (cell.decode() if isinstance(cell, bytes) else cell).split(":", 2)
            parsed.append((float(value), int(index), label))
        out.append(parsed)
    return out


@pytest.mark.parametrize("model", [GBT, MLP])
@pytest.mark.parametrize(("protocol", "binary"), [("http", True), ("http", False), ("grpc", None)])
def test_class_count_gives_the_top_classes(http_client, grpc_client, reference, matrix, model, protocol, binary):
    module, client = (httpclient, http_client) if protocol == "http" else (grpcclient, grpc_client)
    feeds = {"features": matrix}
    probabilities = reference.run(model, feeds)["probabilities"]
    for count in (1, 2):
        if module is httpclient:
            wanted = module.InferRequestedOutput("probabilities", binary_data=binary, class_count=count)
        else:
            wanted = module.InferRequestedOutput("probabilities", class_count=count)
        result = client.infer(model, inputs(module, feeds), outputs=[wanted])
        cells = result.as_numpy("probabilities")
        assert cells.shape == (len(matrix), count)
        got, want = parse(cells), expected_top(probabilities, count)
        for g_row, w_row, p_row in zip(got, want, probabilities):
            tied = np.isclose(p_row[0], p_row[1], rtol=0, atol=1e-6)
            if not tied:
                assert [(i, label) for _, i, label in g_row] == [(i, label) for _, i, label in w_row], (g_row, w_row)
            # Values print with six decimals, as Triton prints them.
            np.testing.assert_allclose([v for v, _, _ in g_row], [v for v, _, _ in w_row], rtol=0, atol=5e-7)
