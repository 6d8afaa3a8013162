"""Small helpers shared by the interop tests."""

from __future__ import annotations

import numpy as np

ATOL = 1e-6

DATATYPE = {
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
    np.dtype(np.int64): "INT64",
    np.dtype(np.int32): "INT32",
    np.dtype(np.bool_): "BOOL",
    np.dtype(object): "BYTES",
}


def inputs(module, feeds: dict[str, np.ndarray], binary: bool | None = None) -> list:
    """tritonclient InferInputs for `feeds`; `binary` only applies to the HTTP module."""
    out = []
    for name, value in feeds.items():
        i = module.InferInput(name, list(value.shape), DATATYPE[value.dtype])
        if binary is None:
            i.set_data_from_numpy(value)
        else:
            i.set_data_from_numpy(value, binary_data=binary)
        out.append(i)
    return out


def assert_same(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Outputs equal onnxruntime's: integers exactly, floats to ATOL, same shapes."""
    assert set(actual) == set(expected), (sorted(actual), sorted(expected))
    for name, want in expected.items():
        got = actual[name]
        assert got is not None, f"output {name} missing"
        assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(got, want, rtol=0, atol=ATOL, err_msg=name)
        else:
            assert got.dtype == want.dtype, f"{name}: dtype {got.dtype}, expected {want.dtype}"
            np.testing.assert_array_equal(got, want, err_msg=name)
