"""Self-tests of the harness: the SDK clients against the real servers directly (no steward).

These pin down the behaviour the proxy tests compare against, and fail loudly if
a dependency bump changes what the servers or SDKs do on the wire.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from e2e_helpers import (
    CLIENT_IDS,
    CLIENTS,
    EVERYTHING_CALLS,
    TEE,
    TIME_CALLS,
    comparable,
    everything_cmd,
    fake_cmd,
    run_client,
    text_of,
    time_cmd,
)




@pytest.mark.parametrize(("client", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_everything_direct(client: str, mode: str | None) -> None:
    doc = run_client(client, everything_cmd(), EVERYTHING_CALLS, mode=mode)
    assert doc["_exit"] == 0, doc["_stderr"]
    # Neither SDK client gets anything newer than the handshake era from server-everything.
    assert doc["protocolVersion"] == "2025-11-25"
    assert doc["serverInfo"] == {"name": "mcp-servers/everything", "version": "2.0.0"}
    names = [t["name"] for t in doc["tools"]]
    assert {"echo", "get-sum", "get-structured-content"} <= set(names)
    echo, add, structured, bad_args, unknown = doc["calls"]
    assert echo["isError"] is False and text_of(echo) == "Echo: hi"
    assert add["isError"] is False and text_of(add) == "The sum of 2 and 3 is 5."
    assert structured["structuredContent"] == {"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82}
    assert bad_args["isError"] is True and "-32602" in text_of(bad_args)
    assert unknown["isError"] is True and "not found" in text_of(unknown)


@pytest.mark.parametrize(("client", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_time_direct(client: str, mode: str | None) -> None:
    doc = run_client(client, time_cmd(), TIME_CALLS, mode=mode, normalize_datetimes=True)
    assert doc["_exit"] == 0, doc["_stderr"]
    # The Python SDK's default (auto) mode reaches the stateless 2026-07-28 era with this server.
    assert doc["protocolVersion"] == ("2026-07-28" if (client, mode) == ("py", None) else "2025-11-25")
    assert [t["name"] for t in doc["tools"]] == ["convert_time", "get_current_time"]
    convert, now, bad_tz, unknown = doc["calls"]
    assert convert["isError"] is False
    assert convert["structuredContent"]["time_difference"] == "+9.0h"
    assert now["structuredContent"]["datetime"] == "<datetime>"
    assert bad_tz["isError"] is True and "Invalid timezone" in text_of(bad_tz)
    assert unknown["error"] == {"code": -32602, "message": "Unknown tool: no-such-tool"}


@pytest.mark.parametrize(("client", "mode"), CLIENTS, ids=CLIENT_IDS)
@pytest.mark.parametrize("server", ["everything", "time"])
def test_output_is_canonical(client: str, mode: str | None, server: str) -> None:
    """Two runs against the same server print byte-identical documents."""
    cmd, calls = (everything_cmd(), EVERYTHING_CALLS) if server == "everything" else (time_cmd(), TIME_CALLS)
    first = run_client(client, cmd, calls, mode=mode, normalize_datetimes=True)
    second = run_client(client, cmd, calls, mode=mode, normalize_datetimes=True)
    assert json.dumps(comparable(first), sort_keys=True) == json.dumps(comparable(second), sort_keys=True)


@pytest.mark.parametrize("client", ["py", "ts"])
def test_server_to_client_requests_direct(client: str) -> None:
    """sampling/createMessage, elicitation/create and roots/list answered by the clients' fixed callbacks."""
    calls = [
        ("trigger-sampling-request", {"prompt": "hi", "maxTokens": 10}),
        ("trigger-elicitation-request", {}),
        ("get-roots-list", {}),
    ]
    doc = run_client(client, everything_cmd(), calls, with_callbacks=True)
    sampling, elicitation, roots = doc["calls"]
    assert "steward-e2e sampled: Resource trigger-sampling-request context: hi" in text_of(sampling)
    assert "- Name: Steward E2E" in text_of(elicitation)
    assert "file:///tmp/steward-e2e-root" in text_of(roots)


@pytest.mark.parametrize("client", ["py", "ts"])
def test_clients_report_meta_iserror_and_rpc_errors(client: str) -> None:
    calls = [("meta-echo", {"message": "m"}), ("fail", {}), ("rpc-error", {}), ("zzz", {})]
    doc = run_client(client, fake_cmd(), calls)
    meta_echo, fail, rpc_error, unknown = doc["calls"]
    # Both SDKs keep result `_meta`; the decision id is volatile and normalised.
    assert meta_echo["meta"] == {"example.com/k": "v", "steward/decisionId": "<volatile>"}
    assert fail["isError"] is True and text_of(fail) == "fake failure"
    assert rpc_error["error"] == {"code": -32001, "message": "fake rpc error"}
    assert unknown["error"] == {"code": -32602, "message": "Unknown tool: zzz"}


def test_connect_failure_is_reported() -> None:
    doc = run_client("py", [sys.executable, "-c", "import sys; sys.exit(0)"], timeout=10)
    assert doc["_exit"] == 2 and "connectError" in doc
    doc = run_client("ts", [sys.executable, "-c", "import sys; sys.exit(0)"], timeout=10)
    assert doc["_exit"] == 2 and "connectError" in doc


@pytest.mark.parametrize("client", ["py", "ts"])
def test_tee_is_transparent(client: str, tmp_path: Path) -> None:
    log = tmp_path / "transcript.jsonl"
    direct = run_client(client, everything_cmd(), EVERYTHING_CALLS[:2])
    teed = run_client(client, [sys.executable, str(TEE), "--log", str(log), "--", *everything_cmd()], EVERYTHING_CALLS[:2])
    assert comparable(teed) == comparable(direct)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    methods = [e["msg"].get("method") for e in entries if e["dir"] == "c2s" and "msg" in e]
    assert "initialize" in methods and methods.count("tools/call") == 2
    assert entries[-1]["dir"] == "s2c" and entries[-1]["eof"] is True
