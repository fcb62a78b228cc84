"""End-to-end tests of `steward proxy` (stdio) with real MCP SDK clients and servers.

    steward proxy [--policy FILE] [--server NAME] [--principal NAME] [--audit-db PATH] -- CMD ARGS...

The binary comes from $STEWARD_BIN (default <repo>/target/debug/steward); these
tests fail, not skip, when it is missing. Every subprocess wait is bounded and
nothing binds anything but stdio.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from e2e_helpers import (
    CLIENT_IDS,
    CLIENTS,
    EVERYTHING_CALLS,
    TIME_CALLS,
    comparable,
    descendants,
    everything_cmd,
    run_client,
    text_of,
    time_cmd,
    wait_for,
    wait_gone,
)

pytestmark = pytest.mark.steward

SERVERS = {
    "everything": (everything_cmd, EVERYTHING_CALLS),
    "time": (time_cmd, TIME_CALLS),
}

DENY_POLICY = """\
version: 1
default: allow
rules:
  - id: no-forbidden-echo
    match: "*/echo"
    when: 'args.message.contains("forbidden")'
    effect: deny
    reason: "echo of forbidden words"
"""
AUDIT_FIELDS = {"seq", "ts", "principal", "server", "tool", "effect", "risk", "reason"}


def initialize(msg_id: Any) -> dict[str, Any]:
    """A legacy (2025-11-25) initialize request, as both SDK clients send it."""
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "steward-e2e-raw", "version": "0.0.0"},
        },
    }


def run_steward(steward_bin: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(steward_bin), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"steward {' '.join(args)} did not finish within {timeout}s") from None


def assert_still_serving(proxy: Any, msg_id: Any) -> None:
    assert proxy.proc.poll() is None, f"steward exited ({proxy.proc.returncode}); stderr: {proxy.stderr_tail()}"
    resp = proxy.request(initialize(msg_id), timeout=30)
    assert "result" in resp, f"initialize after bad input failed: {resp}"
    assert resp["result"].get("protocolVersion") == "2025-11-25", resp


@pytest.fixture
def raw_proxy(raw_process, proxy_cmd, tmp_path: Path):
    """Start `steward proxy` as a raw subprocess (no SDK) in front of `server_cmd`."""

    def start(server_cmd: list[str] | None = None):
        cmd = server_cmd if server_cmd is not None else time_cmd()
        return raw_process(proxy_cmd(cmd, audit_db=tmp_path / "audit.db"), "steward")

    return start


# --------------------------------------------------------------------------- a. transparency


@pytest.mark.parametrize("server", sorted(SERVERS))
@pytest.mark.parametrize(("client", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_proxy_output_equals_direct(client: str, mode: str | None, server: str, proxy_cmd, tmp_path: Path) -> None:
    make_cmd, calls = SERVERS[server]
    direct = run_client(client, make_cmd(), calls, mode=mode, normalize_datetimes=True)
    assert direct["_exit"] == 0 and "connectError" not in direct, direct
    db = tmp_path / "audit.db"
    proxied = run_client(client, proxy_cmd(make_cmd(), audit_db=db), calls, mode=mode, normalize_datetimes=True)
    assert "connectError" not in proxied, f"{proxied.get('connectError')}\nstderr: {proxied['_stderr'][-3000:]}"
    assert proxied["_exit"] == 0, proxied["_stderr"][-3000:]
    assert comparable(proxied) == comparable(direct)
    assert db.exists(), "--audit-db file was not created"


@pytest.mark.parametrize("client", ["py", "ts"])
def test_proxy_forwards_server_to_client_requests(client: str, proxy_cmd, tmp_path: Path) -> None:
    """sampling/createMessage, elicitation/create and roots/list flow back through the proxy."""
    calls = [
        ("trigger-sampling-request", {"prompt": "hi", "maxTokens": 10}),
        ("trigger-elicitation-request", {}),
        ("get-roots-list", {}),
    ]
    direct = run_client(client, everything_cmd(), calls, with_callbacks=True)
    proxied = run_client(client, proxy_cmd(everything_cmd(), audit_db=tmp_path / "audit.db"), calls, with_callbacks=True)
    assert proxied["_exit"] == 0, proxied["_stderr"][-3000:]
    assert comparable(proxied) == comparable(direct)


# --------------------------------------------------------------------------- b. policy + audit


@pytest.mark.parametrize("client", ["py", "ts"])
def test_deny_by_argument_and_audit_chain(client: str, steward_bin: Path, proxy_cmd, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(DENY_POLICY)
    db = tmp_path / "audit.db"
    calls = [("echo", {"message": "hello"}), ("echo", {"message": "forbidden words"})]

    direct = run_client(client, everything_cmd(), calls[:1])
    doc = run_client(
        client,
        proxy_cmd(everything_cmd(), audit_db=db, policy=policy, server="everything", principal="alice"),
        calls,
    )
    assert doc["_exit"] == 0 and "connectError" not in doc, doc["_stderr"][-3000:]
    allowed, denied = doc["calls"]
    assert comparable({"calls": [allowed]}) == comparable({"calls": direct["calls"]})

    assert denied.get("isError") is True, f"deny must be an isError tool result, got {denied}"
    text = text_of(denied)
    assert "denied" in text.lower(), text
    assert "echo of forbidden words" in text, text
    assert "Echo:" not in text, "the denied call reached the server"
    assert "steward/decisionId" in (denied.get("meta") or {}), f"no steward/decisionId in result _meta: {denied}"

    # Audit log: one JSON object per line.
    query = run_steward(steward_bin, "audit", "query", "--db", str(db), "--json")
    assert query.returncode == 0, query.stderr
    events = [json.loads(line) for line in query.stdout.splitlines() if line.strip()]
    assert events, f"audit query returned nothing; stderr: {query.stderr}"
    for event in events:
        assert AUDIT_FIELDS <= set(event), f"audit event lacks {AUDIT_FIELDS - set(event)}: {event}"
    echo_events = [e for e in events if str(e["tool"]).split("/")[-1] == "echo"]
    assert {e["effect"] for e in echo_events} >= {"allow", "deny"}, echo_events
    deny = [e for e in echo_events if e["effect"] == "deny"]
    assert any("echo of forbidden words" in str(e.get("reason")) for e in deny), deny
    assert all(e["principal"] == "alice" for e in echo_events), echo_events
    assert all(e["server"] == "everything" for e in echo_events), echo_events

    # Hash chain: intact, then tampered.
    verify = run_steward(steward_bin, "audit", "verify", "--db", str(db))
    assert verify.returncode == 0, f"verify of an untouched log failed: {verify.stdout}{verify.stderr}"
    with sqlite3.connect(db) as conn:
        changed = conn.execute("UPDATE audit_events SET principal='mallory' WHERE seq=1").rowcount
    assert changed == 1, "no audit_events row with seq=1"
    verify = run_steward(steward_bin, "audit", "verify", "--db", str(db))
    output = verify.stdout + verify.stderr
    assert verify.returncode == 1, f"verify of a tampered log exited {verify.returncode}: {output}"
    assert re.search(r"seq\D{0,4}1\b", output, re.IGNORECASE), f"verify output does not name seq 1: {output}"


# --------------------------------------------------------------------------- c. malformed input


@pytest.mark.parametrize(
    "line",
    [b"this is not json", b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"', b"\xff\xfe\x00garbage"],
    ids=["text", "truncated-object", "invalid-utf8"],
)
def test_invalid_json_gets_parse_error(raw_proxy, line: bytes) -> None:
    proxy = raw_proxy()
    proxy.send_bytes(line + b"\n")
    msg = proxy.recv(timeout=10)
    assert msg.get("jsonrpc") == "2.0", msg
    assert "id" in msg and msg["id"] is None, f"parse error must carry id null: {msg}"
    assert msg.get("error", {}).get("code") == -32700, msg
    assert_still_serving(proxy, 100)


@pytest.mark.parametrize(
    ("request_obj", "ids"),
    [
        ({"id": 5, "method": "tools/list"}, (5, None)),
        ({"jsonrpc": "1.0", "id": 6, "method": "tools/list"}, (6, None)),
        ({"jsonrpc": "2.0", "id": 7, "method": 42}, (7, None)),
        ({"jsonrpc": "2.0", "id": {"not": "an id"}, "method": "tools/list"}, (None,)),
        (42, (None,)),
        ("a string", (None,)),
    ],
    ids=["missing-jsonrpc", "jsonrpc-1.0", "method-not-string", "id-is-object", "number", "string"],
)
def test_invalid_request_shape_gets_invalid_request(raw_proxy, request_obj: Any, ids: tuple) -> None:
    proxy = raw_proxy()
    proxy.send_bytes(json.dumps(request_obj).encode() + b"\n")
    msg = proxy.recv(timeout=10)
    assert msg.get("error", {}).get("code") == -32600, msg
    assert "id" in msg and msg["id"] in ids, f"id should be one of {ids}: {msg}"
    assert_still_serving(proxy, 101)


def test_ten_megabyte_line_is_rejected_and_proxy_survives(raw_proxy) -> None:
    proxy = raw_proxy(everything_cmd())
    message = "A" * (10 * 1024 * 1024)
    big = {"jsonrpc": "2.0", "id": "big", "method": "tools/call", "params": {"name": "echo", "arguments": {"message": message}}}
    stderr_before = len(proxy.stderr_text())
    proxy.send_bytes(json.dumps(big).encode() + b"\n", timeout=60)
    replies = proxy.drain(quiet=3.0, limit=30)
    for reply in replies:
        assert "result" not in reply, "a 10 MB request was forwarded and answered"
    errors = [r for r in replies if isinstance(r, dict) and "error" in r]
    if errors:
        assert errors[0]["error"]["code"] in (-32600, -32700), errors[0]
        assert errors[0].get("id") in ("big", None), errors[0]
    else:
        assert len(proxy.stderr_text()) > stderr_before, "oversized line dropped without a log line on stderr"
    assert_still_serving(proxy, 102)


# --------------------------------------------------------------------------- d. shutdown


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_stdin_eof_shuts_down_cleanly(raw_proxy, server: str) -> None:
    proxy = raw_proxy(SERVERS[server][0]())
    resp = proxy.request(initialize(1), timeout=30)
    assert "result" in resp, resp
    proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    upstream = wait_for(lambda: descendants(proxy.pid), timeout=5)
    assert upstream, "no upstream process found under steward"
    proxy.close_stdin()
    rc = proxy.wait(timeout=10)
    assert rc is not None, f"steward still running 10s after stdin EOF; stderr: {proxy.stderr_tail()}"
    assert rc == 0, f"steward exited {rc} after stdin EOF; stderr: {proxy.stderr_tail()}"
    assert wait_gone(upstream, timeout=10) == [], "upstream still alive after steward exited"


def _pending_request_fails(proxy) -> None:
    resp = proxy.recv_response(1, timeout=15)
    assert "error" in resp and isinstance(resp["error"].get("code"), int), f"pending request not failed: {resp}"
    rc = proxy.wait(timeout=15)
    assert rc is not None, f"steward still running after upstream died; stderr: {proxy.stderr_tail()}"
    assert rc != 0, "steward exited 0 although its upstream died"
    assert proxy.stderr_text().strip(), "steward printed nothing on stderr about the dead upstream"


def test_upstream_exit_fails_pending_request(raw_proxy) -> None:
    proxy = raw_proxy([sys.executable, "-c", "import sys; sys.stdin.readline(); sys.exit(3)"])
    proxy.send(initialize(1))
    _pending_request_fails(proxy)


def test_upstream_killed_fails_pending_request(raw_proxy) -> None:
    marker = "steward-e2e-sleeping-upstream"
    proxy = raw_proxy([sys.executable, "-c", f"import sys, time; sys.stdin.readline(); time.sleep(120)  # {marker}"])

    def upstream_pids() -> list[int]:
        found = []
        for pid in descendants(proxy.pid):
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
            except OSError:
                pass
        return found

    pids = wait_for(upstream_pids, timeout=10)
    assert pids, "upstream process not found under steward"
    proxy.send(initialize(1))
    time.sleep(0.5)  # let the request reach the upstream
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    _pending_request_fails(proxy)


def test_upstream_exiting_at_start_makes_steward_fail(raw_proxy) -> None:
    proxy = raw_proxy([sys.executable, "-c", "import sys; sys.exit(1)"])
    rc = proxy.wait(timeout=15)
    if rc is None:  # a proxy may only notice on first use
        try:
            proxy.send(initialize(1))
        except OSError:
            pass
        rc = proxy.wait(timeout=15)
    assert rc is not None and rc != 0, f"steward exit status {rc}; stderr: {proxy.stderr_tail()}"
    assert proxy.stderr_text().strip(), "no message on stderr"


def test_missing_upstream_command_fails(raw_proxy) -> None:
    proxy = raw_proxy(["/nonexistent/steward-e2e-upstream"])
    rc = proxy.wait(timeout=15)
    if rc is None:  # a proxy may only notice on first use
        try:
            proxy.send(initialize(1))
        except OSError:
            pass
        rc = proxy.wait(timeout=15)
    assert rc is not None and rc != 0, f"steward exit status {rc}; stderr: {proxy.stderr_tail()}"
    assert proxy.stderr_text().strip(), "no message on stderr"
