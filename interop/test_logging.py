"""Triton's logging extension with tritonclient's update_log_settings / get_log_settings, over HTTP
and gRPC: a change takes effect and is read back by the other protocol."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException


def settings_of(client, protocol: str) -> dict:
    if protocol == "http":
        return client.get_log_settings()
    raw = client.get_log_settings(as_json=True)["settings"]
    return {k: next(iter(v.values())) for k, v in raw.items()}


@pytest.mark.parametrize(("writer", "reader"), [("http", "grpc"), ("grpc", "http")])
def test_log_settings_change_and_read_back(http_client, grpc_client, writer, reader):
    clients = {"http": http_client, "grpc": grpc_client}
    before = settings_of(clients[reader], reader)
    assert before["log_file"] == "" and before["log_format"] == "default"
    try:
        clients[writer].update_log_settings({"log_info": True, "log_verbose_level": 1})
        after = settings_of(clients[reader], reader)
        assert after["log_info"] is True and int(after["log_verbose_level"]) == 1
        with pytest.raises(InferenceServerException, match="log_file"):
            clients[writer].update_log_settings({"log_file": "/tmp/triton.log"})
    finally:
        clients[writer].update_log_settings(
            {"log_info": before["log_info"], "log_verbose_level": int(before.get("log_verbose_level", 0))}
        )
    assert settings_of(clients[reader], reader)["log_info"] == before["log_info"]
