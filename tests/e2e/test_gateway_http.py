"""End-to-end tests of the HTTP gateway (`steward serve`) with real MCP SDK clients and servers.

    steward serve --config <tmp>/steward.yaml --listen 127.0.0.1:<free port>

Clients: py_client.py / ts_client.mjs in --url mode (the SDKs' streamable HTTP transports).
Upstreams: server-everything and mcp-server-time as stdio children, server-everything's
streamable HTTP mode and servers/recording_http_server.py as HTTP upstreams. Everything binds
127.0.0.1 only; every wait is bounded. The binary comes from $STEWARD_BIN (default
<repo>/target/debug/steward); these tests fail, not skip, when it is missing.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from e2e_helpers import (
    CLIENT_IDS,
    CLIENTS,
    EVERYTHING_CALLS,
    TIME_CALLS,
    Gateway,
    HttpTarget,
    bearer,
    comparable,
    conformance_entry,
    conformance_node,
    descendants,
    everything_cmd,
    http_request,
    mcp_initialize,
    run_client,
    text_of,
    time_cmd,
    wait_for,
    wait_gone,
)

pytestmark = pytest.mark.steward

CALLBACK_CALLS = [
    ("trigger-sampling-request", {"prompt": "hi", "maxTokens": 10}),
    ("trigger-elicitation-request", {}),
    ("get-roots-list", {}),
]


def stdio(cmd: list[str]) -> dict[str, Any]:
    return {"command": cmd[0], "args": cmd[1:]}


def servers_stdio() -> dict[str, Any]:
    return {"everything": stdio(everything_cmd()), "time": stdio(time_cmd())}


def run_steward(steward_bin: Path, *args: str, timeout: float = 30, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(steward_bin), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"steward {' '.join(args)} did not finish within {timeout}s") from None


def audit_rows(steward_bin: Path, db: Path) -> list[dict[str, Any]]:
    proc = run_steward(steward_bin, "audit", "query", "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def ok_doc(doc: dict[str, Any]) -> dict[str, Any]:
    assert "connectError" not in doc, f"{doc.get('connectError')}\nstderr: {doc['_stderr'][-3000:]}"
    assert doc["_exit"] == 0, doc["_stderr"][-3000:]
    return doc


def tool_names(doc: dict[str, Any]) -> list[str]:
    assert isinstance(doc.get("tools"), list), doc.get("tools")
    return [t["name"] for t in doc["tools"]]


def call_tool_raw(gw: Gateway, server: str, key: str | None, name: str, args: dict[str, Any], msg_id: int = 2) -> dict[str, Any]:
    """initialize + tools/call over raw HTTP; returns the tools/call JSON-RPC response."""
    headers = bearer(key) if key else {}
    ans, sid = mcp_initialize(gw.url(server), headers)
    assert ans.status == 200 and sid, f"initialize -> HTTP {ans.status} {ans.body[:500]!r}"
    hdrs = dict(headers, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
    resp = http_request("POST", gw.url(server), headers=hdrs, body={"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": {"name": name, "arguments": args}})
    assert resp.status == 200, f"tools/call -> HTTP {resp.status} {resp.body[:500]!r}"
    return resp.message()


# --------------------------------------------------------------------------- 1. real clients, same as direct


@pytest.mark.parametrize(("client", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_everything_stdio_upstream_same_as_direct(client: str, mode: str | None, gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    direct = ok_doc(run_client(client, everything_cmd(), EVERYTHING_CALLS, mode=mode))
    via = ok_doc(run_client(client, gw.target("everything", gw.keys["alice"]), EVERYTHING_CALLS, mode=mode))
    assert comparable(via) == comparable(direct)


@pytest.mark.parametrize(("client", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_time_stdio_upstream_same_as_direct(client: str, mode: str | None, gateway) -> None:
    """mcp-server-time: the Python client in auto mode speaks 2026-07-28 (stateless) through the gateway."""
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    direct = ok_doc(run_client(client, time_cmd(), TIME_CALLS, mode=mode, normalize_datetimes=True))
    via = ok_doc(run_client(client, gw.target("time", gw.keys["alice"]), TIME_CALLS, mode=mode, normalize_datetimes=True))
    if client == "py" and mode is None:
        assert direct["protocolVersion"] == "2026-07-28", direct
    assert comparable(via) == comparable(direct)


@pytest.mark.parametrize("client", ["py", "ts"])
def test_server_to_client_requests_stdio_upstream(client: str, gateway) -> None:
    """sampling/createMessage, elicitation/create and roots/list reach the HTTP client and back."""
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    direct = ok_doc(run_client(client, everything_cmd(), CALLBACK_CALLS, with_callbacks=True))
    via = ok_doc(run_client(client, gw.target("everything", gw.keys["alice"]), CALLBACK_CALLS, with_callbacks=True))
    assert comparable(via) == comparable(direct)


@pytest.mark.parametrize(("client", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_http_upstream_same_as_direct(client: str, mode: str | None, gateway, http_server) -> None:
    url, _ = http_server("everything")
    gw = gateway({"servers": {"remote": {"url": url}}}, keys={"alice": ["user"]})
    direct = ok_doc(run_client(client, HttpTarget.of(url), EVERYTHING_CALLS, mode=mode))
    via = ok_doc(run_client(client, gw.target("remote", gw.keys["alice"]), EVERYTHING_CALLS, mode=mode))
    assert comparable(via) == comparable(direct)


@pytest.mark.parametrize(("client", "mode"), CLIENTS + [("py", "2026-07-28")], ids=CLIENT_IDS + ["py-2026-07-28"])
def test_modern_http_upstream_same_as_direct(client: str, mode: str | None, gateway, http_server) -> None:
    """mcp-server-time over HTTP: py-auto / 2026-07-28 go stateless through the gateway to an HTTP upstream."""
    url, _ = http_server("time")
    gw = gateway({"servers": {"thttp": {"url": url}}}, keys={"alice": ["user"]})
    direct = ok_doc(run_client(client, HttpTarget.of(url), TIME_CALLS, mode=mode, normalize_datetimes=True))
    via = ok_doc(run_client(client, gw.target("thttp", gw.keys["alice"]), TIME_CALLS, mode=mode, normalize_datetimes=True))
    assert comparable(via) == comparable(direct)


@pytest.mark.parametrize("client", ["py", "ts"])
def test_server_to_client_requests_http_upstream(client: str, gateway, http_server) -> None:
    url, _ = http_server("everything")
    gw = gateway({"servers": {"remote": {"url": url}}}, keys={"alice": ["user"]})
    direct = ok_doc(run_client(client, HttpTarget.of(url), CALLBACK_CALLS, with_callbacks=True))
    via = ok_doc(run_client(client, gw.target("remote", gw.keys["alice"]), CALLBACK_CALLS, with_callbacks=True))
    assert comparable(via) == comparable(direct)


# --------------------------------------------------------------------------- 2. conformance suite


def run_conformance(url: str, out_dir: Path, timeout: float = 240) -> dict[tuple[str, str], str]:
    """Runs `conformance server --url URL -o DIR`; returns {(scenario, check id): status}."""
    node22, entry = conformance_node(), conformance_entry()
    assert node22.exists() and entry.exists(), "conformance suite missing: run tests/e2e/setup.sh (npm ci)"
    argv = [str(node22), str(entry), "server", "--url", url, "-o", str(out_dir)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"conformance suite did not finish within {timeout}s: {argv}") from None
    results: dict[tuple[str, str], str] = {}
    for checks in out_dir.glob("*/checks.json"):
        scenario = re.sub(r"^server-|-\d{4}-\d\d-\d\dT.*$", "", checks.parent.name)
        for c in json.loads(checks.read_text()):
            results[(scenario, c["id"])] = c["status"]
    assert results, f"conformance wrote no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return results


def passed(status: str) -> bool:
    # INFO: an optional feature not exercised (e.g. the gateway answered JSON where SSE is optional).
    return status in ("SUCCESS", "INFO")


@pytest.mark.timeout(900)
def test_conformance_suite_same_through_gateway(gateway, http_server, tmp_path: Path) -> None:
    """@modelcontextprotocol/conformance against server-everything (HTTP) directly, and through the
    gateway to the same HTTP server and to server-everything as a stdio child: same verdicts,
    except DNS rebinding, which the gateway must pass whatever the upstream does."""
    url, _ = http_server("everything")
    # The suite sends no credentials: a loopback gateway with `auth: none`.
    # The suite opens a session per scenario and never closes them: room for all of them.
    roomy = {"sessions_per_principal": 500, "children_per_principal": 100, "max_children": 100}
    gw = gateway(
        {"auth": {"none": True}, "limits": roomy, "servers": {"remote": {"url": url}, "everything": stdio(everything_cmd())}}
    )
    direct = run_conformance(url, tmp_path / "conf-direct")
    for server in ("remote", "everything"):
        via = run_conformance(gw.url(server), tmp_path / f"conf-{server}")
        rebinding = {k: v for k, v in via.items() if k[0] == "dns-rebinding-protection"}
        assert rebinding and all(passed(v) for v in rebinding.values()), f"{server}: {rebinding}"
        diff = {
            k: (direct.get(k), via.get(k))
            for k in set(direct) | set(via)
            if k[0] != "dns-rebinding-protection" and passed(direct.get(k, "MISSING")) != passed(via.get(k, "MISSING"))
        }
        assert not diff, f"through /mcp/{server} the verdicts differ (direct, gateway): {diff}"


@pytest.mark.timeout(600)
def test_conformance_suite_modern_http_upstream(gateway, http_server, tmp_path: Path) -> None:
    """The same comparison with mcp-server-time over HTTP (Python SDK server, both eras) upstream."""
    url, _ = http_server("time")
    gw = gateway({"auth": {"none": True}, "limits": {"sessions_per_principal": 500}, "servers": {"thttp": {"url": url}}})
    direct = run_conformance(url, tmp_path / "conf-direct")
    via = run_conformance(gw.url("thttp"), tmp_path / "conf-gw")
    rebinding = {k: v for k, v in via.items() if k[0] == "dns-rebinding-protection"}
    assert rebinding and all(passed(v) for v in rebinding.values()), rebinding
    diff = {
        k: (direct.get(k), via.get(k))
        for k in set(direct) | set(via)
        if k[0] != "dns-rebinding-protection" and passed(direct.get(k, "MISSING")) != passed(via.get(k, "MISSING"))
    }
    assert not diff, f"verdicts differ (direct, gateway): {diff}"


# --------------------------------------------------------------------------- 3. authentication


def test_keys_cli_is_wired(steward_bin: Path, keys_cli: bool) -> None:
    assert keys_cli, "`steward keys` is not a subcommand of this binary (issue: `steward keys create --config FILE --principal P --roles r1,r2`)"


def test_keys_create_list_revoke(steward_bin: Path, keys_cli: bool, gateway, tmp_path: Path) -> None:
    assert keys_cli, "`steward keys` is not a subcommand of this binary"
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user", "ops"]})
    key = gw.keys["alice"]
    assert re.fullmatch(r"stw_[0-9a-f]{12}_[0-9a-f]{64}", key), key
    assert call_tool_raw(gw, "everything", key, "echo", {"message": "hi"})["result"]["content"][0]["text"] == "Echo: hi"
    listed = run_steward(steward_bin, "keys", "list", "--config", str(gw.config_path))
    assert listed.returncode == 0, listed.stderr
    assert "alice" in listed.stdout and key.split("_")[2] not in listed.stdout, listed.stdout
    revoked = run_steward(steward_bin, "keys", "revoke", "--config", str(gw.config_path), key.split("_")[1])
    assert revoked.returncode == 0, revoked.stderr + revoked.stdout
    ans, _ = mcp_initialize(gw.url("everything"), bearer(key))
    assert ans.status == 401, (ans.status, ans.body[:300])


def test_api_key_allowed_missing_or_wrong_key_401(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    url = gw.url("everything")
    metadata = f"{gw.base}/.well-known/oauth-protected-resource/mcp/everything"
    wrong = "stw_" + "0" * 12 + "_" + "1" * 64
    for headers in ({}, bearer(wrong), bearer("not-a-key"), {"Authorization": "Basic YWxpY2U6c2VjcmV0"}):
        ans, sid = mcp_initialize(url, headers)
        assert ans.status == 401, (headers, ans.status, ans.body[:300])
        assert sid is None
        challenge = ans.headers.get("www-authenticate", "")
        assert challenge.startswith("Bearer "), challenge
        assert f'resource_metadata="{metadata}"' in challenge, challenge
    ans, sid = mcp_initialize(url, bearer(gw.keys["alice"]))
    assert ans.status == 200 and sid, (ans.status, ans.body[:300])
    # The real clients: a wrong key fails to connect, the right one works.
    for client in ("py", "ts"):
        bad = run_client(client, gw.target("everything", wrong))
        assert "connectError" in bad and bad["_exit"] != 0, bad
        good = ok_doc(run_client(client, gw.target("everything", gw.keys["alice"]), [("echo", {"message": "k"})]))
        assert text_of(good["calls"][0]) == "Echo: k"


def test_every_endpoint_needs_credentials(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    for method, path, body in (
        ("GET", "/mcp/everything", None),
        ("DELETE", "/mcp/everything", None),
        ("POST", "/v1/decide", {"server": "everything", "tool": "echo", "args": {}}),
        ("POST", "/mcp/nonexistent", {"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    ):
        ans = http_request(method, gw.base + path, headers={"Mcp-Session-Id": "x"} if method != "POST" else None, body=body)
        assert ans.status == 401, (method, path, ans.status, ans.body[:300])
        assert ans.headers.get("www-authenticate", "").startswith("Bearer resource_metadata="), ans.headers


def test_protected_resource_metadata(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    for path, resource in (
        ("/.well-known/oauth-protected-resource/mcp/everything", "/mcp/everything"),
        ("/.well-known/oauth-protected-resource/mcp/time", "/mcp/time"),
        ("/.well-known/oauth-protected-resource", "/mcp"),
    ):
        ans = http_request("GET", gw.base + path)
        assert ans.status == 200, (path, ans.status)
        assert ans.headers["content-type"].startswith("application/json")
        doc = ans.json()
        assert doc["resource"] == gw.base + resource, doc
        assert doc.get("bearer_methods_supported") == ["header"], doc
    assert http_request("GET", gw.base + "/.well-known/oauth-protected-resource/mcp/nope").status == 404


# --------------------------------------------------------------------------- 4. roles


ROLES_POLICY = """\
version: 1
default: allow
roles:
  admin: [env-read]
  user: [basic]
tools:
  - match: "*/get-env"
    risk: LOW
    requires: [env-read]
"""


def test_roles_see_different_tools_and_are_denied(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, policy=ROLES_POLICY, keys={"ada": ["admin"], "uma": ["user"]})
    docs = {}
    for who in ("ada", "uma"):
        docs[who] = ok_doc(run_client("py", gw.target("everything", gw.keys[who]), [("get-env", {}), ("echo", {"message": "x"})], mode="legacy"))
    assert "get-env" in tool_names(docs["ada"])
    assert "get-env" not in tool_names(docs["uma"])
    assert set(tool_names(docs["ada"])) - set(tool_names(docs["uma"])) == {"get-env"}
    ada_env, uma_env = docs["ada"]["calls"][0], docs["uma"]["calls"][0]
    assert ada_env.get("isError") is False, ada_env
    assert uma_env.get("isError") is True, uma_env
    assert "env-read" in text_of(uma_env), uma_env
    assert docs["uma"]["calls"][1].get("isError") is False
    ts = ok_doc(run_client("ts", gw.target("everything", gw.keys["uma"]), [("get-env", {})]))
    assert "get-env" not in tool_names(ts) and ts["calls"][0].get("isError") is True, ts["calls"]


# --------------------------------------------------------------------------- 5. credentials stay at the gateway


@pytest.mark.parametrize("client", ["py", "ts"])
def test_client_token_never_reaches_http_upstream(client: str, gateway, http_server) -> None:
    url, rec = http_server("recording")
    config = {
        "servers": {
            "rec": {"url": url, "headers": {"Authorization": "Bearer upstream-cred-123", "X-Upstream-Token": "upstream-secret-456"}}
        }
    }
    gw = gateway(config, keys={"alice": ["user"]})
    key = gw.keys["alice"]
    doc = ok_doc(run_client(client, gw.target("rec", key), [("echo", {"message": "m"}), ("show_headers", {})]))
    assert text_of(doc["calls"][0]) == "Echo: m"
    records = [json.loads(line) for line in rec.record_path.read_text().splitlines() if line.strip()]
    assert records, "the upstream saw no request"
    for r in records:
        flat = json.dumps(r)
        assert key not in flat and key.split("_")[2] not in flat, f"client key reached the upstream: {r['headers']}"
        assert r["headers"].get("authorization") == "Bearer upstream-cred-123", r["headers"]
        assert r["headers"].get("x-upstream-token") == "upstream-secret-456", r["headers"]
    seen = doc["calls"][1].get("structuredContent") or {}
    assert seen.get("authorization") == "Bearer upstream-cred-123", seen


def test_stdio_child_gets_only_declared_env(gateway) -> None:
    """The child's environment: base variables plus its entry's `env`, never the gateway's secrets."""
    env = dict(os.environ, STEWARD_E2E_GATEWAY_SECRET="gateway-only-789", STEWARD_E2E_FOR_CHILD="child-ok")
    config = {"servers": {"everything": dict(stdio(everything_cmd()), env={"DECLARED": "${STEWARD_E2E_FOR_CHILD}"})}}
    gw = gateway(config, keys={"alice": ["user"]}, env=env)
    resp = call_tool_raw(gw, "everything", gw.keys["alice"], "get-env", {})
    text = resp["result"]["content"][0]["text"]
    assert "gateway-only-789" not in text and gw.keys["alice"] not in text
    assert "child-ok" in text, text[:2000]


# --------------------------------------------------------------------------- 6. Origin / Host / headers


def test_origin_and_host_validation(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    url = gw.url("everything")
    for extra in ({"Origin": "http://evil.example"}, {"Host": "evil.example"}, {"Host": f"evil.example:{gw.port}"}, {"Origin": "null"}):
        ans, sid = mcp_initialize(url, dict(auth, **extra))
        assert ans.status == 403, (extra, ans.status, ans.body[:300])
        assert sid is None
        for method in ("GET", "DELETE"):
            assert http_request(method, url, headers=dict(auth, **extra, **{"Mcp-Session-Id": "x"})).status == 403, (method, extra)
    # Unauthenticated evil origin is refused before anything else, too.
    assert mcp_initialize(url, {"Origin": "http://evil.example"})[0].status == 403
    for extra in ({"Origin": f"http://localhost:{gw.port}"}, {"Origin": f"http://127.0.0.1:{gw.port}"}, {"Host": f"localhost:{gw.port}"}):
        ans, sid = mcp_initialize(url, dict(auth, **extra))
        assert ans.status == 200 and sid, (extra, ans.status, ans.body[:300])


def test_allowed_hosts_and_origins_config(gateway) -> None:
    cfg = {"servers": servers_stdio(), "allowed_hosts": ["mcp.internal.example"], "allowed_origins": ["https://app.internal.example"]}
    gw = gateway(cfg, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    url = gw.url("everything")
    assert mcp_initialize(url, dict(auth, Host="mcp.internal.example"))[0].status == 200
    assert mcp_initialize(url, dict(auth, Host="mcp.internal.example", Origin="https://app.internal.example"))[0].status == 200
    assert mcp_initialize(url, dict(auth, Host="evil.example"))[0].status == 403
    assert mcp_initialize(url, dict(auth, Host="mcp.internal.example", Origin="https://evil.example"))[0].status == 403


def modern_call(name: str, args: dict[str, Any], msg_id: int = 7) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "steward-e2e-raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": {"name": name, "arguments": args, "_meta": meta}}


def test_stateless_header_mismatch_is_400_32020(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    auth = dict(bearer(gw.keys["alice"]), **{"MCP-Protocol-Version": "2026-07-28"})
    url = gw.url("time")
    body = modern_call("get_current_time", {"timezone": "UTC"})
    good = http_request("POST", url, headers=dict(auth, **{"Mcp-Method": "tools/call", "Mcp-Name": "get_current_time"}), body=body)
    assert good.status == 200, (good.status, good.body[:500])
    assert "result" in good.message(), good.message()
    for hdrs in (
        {"Mcp-Method": "tools/list", "Mcp-Name": "get_current_time"},
        {"Mcp-Method": "tools/call", "Mcp-Name": "convert_time"},
        {"Mcp-Method": "tools/call"},
    ):
        ans = http_request("POST", url, headers=dict(auth, **hdrs), body=body)
        assert ans.status == 400, (hdrs, ans.status, ans.body[:300])
        err = ans.json()
        assert err.get("error", {}).get("code") == -32020, (hdrs, err)
        assert err.get("id") == 7, err


# --------------------------------------------------------------------------- 7. decision API


def test_decide_api_is_audited(gateway, steward_bin: Path) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"svc": ["user"]})
    auth = bearer(gw.keys["svc"])
    answers = {}
    for label, args in (("ls", {"command": "ls -la"}), ("ssh", {"command": "cat ~/.ssh/id_rsa"})):
        ans = http_request("POST", f"{gw.base}/v1/decide", headers=auth, body={"server": "everything", "tool": "run_command", "args": args})
        assert ans.status == 200, (ans.status, ans.body[:500])
        doc = ans.json()
        assert {"effect", "risk", "decision_id"} <= set(doc), doc
        answers[label] = doc
    assert answers["ls"]["effect"] == "allow", answers["ls"]
    assert answers["ssh"]["effect"] == "deny", answers["ssh"]
    assert http_request("POST", f"{gw.base}/v1/decide", headers=auth, body={"tool": "x"}).status == 400
    assert http_request("POST", f"{gw.base}/v1/decide", body={"server": "everything", "tool": "x", "args": {}}).status == 401
    gw.stop()  # flushes the audit log
    rows = audit_rows(steward_bin, gw.db_path)
    by_id = {r["decision_id"]: r for r in rows if r.get("kind") == "decision"}
    for doc in answers.values():
        row = by_id.get(doc["decision_id"])
        assert row is not None, f"decision {doc['decision_id']} not in the audit log: {rows}"
        assert row["effect"] == doc["effect"] and row["principal"] == "svc" and row["tool"] == "run_command", row


# --------------------------------------------------------------------------- 8. limits


def test_rate_limit_third_call_refused(gateway) -> None:
    gw = gateway({"servers": servers_stdio(), "limits": {"calls_per_minute": 2}}, keys={"alice": ["user"]})
    calls = [("echo", {"message": str(i)}) for i in range(3)]
    doc = ok_doc(run_client("py", gw.target("everything", gw.keys["alice"]), calls, mode="legacy"))
    first, second, third = doc["calls"]
    assert first.get("isError") is False and second.get("isError") is False, doc["calls"]
    assert third.get("isError") is True, third
    assert "rate limit" in text_of(third).lower(), third


def test_body_size_limit(gateway) -> None:
    gw = gateway({"servers": servers_stdio(), "limits": {"max_body_bytes": 2048}}, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    ans, sid = mcp_initialize(gw.url("everything"), auth)
    assert ans.status == 200 and sid
    big = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x" * 4096}}}
    resp = http_request("POST", gw.url("everything"), headers=dict(auth, **{"Mcp-Session-Id": sid}), body=big)
    assert resp.status == 413, (resp.status, resp.body[:300])


# --------------------------------------------------------------------------- 9. demo without config


def test_serve_without_config_serves_demo(gateway) -> None:
    gw = gateway(None, name="fresh")
    calls = [
        ("run_command", {"command": "ls"}),
        ("run_command", {"command": "rm -rf /"}),
        ("run_command", {"command": "cat ~/.ssh/id_rsa"}),
    ]
    for client, mode in (("py", None), ("py", "legacy"), ("ts", None)):
        doc = ok_doc(run_client(client, gw.target("demo"), calls, mode=mode))
        assert {"lookup_order", "run_command", "approve_expense"} <= set(tool_names(doc)), doc["tools"]
        ls, rm, ssh = doc["calls"]
        assert ls.get("isError") is False and "README.md" in text_of(ls), ls
        assert rm.get("isError") is True and "approv" in text_of(rm).lower(), rm
        assert ssh.get("isError") is True and "denied" in text_of(ssh).lower(), ssh
    assert (gw.workdir / "steward-data").is_dir(), "embedded defaults keep state under ./steward-data"
    assert f"/mcp/demo" in gw.log_text()


# --------------------------------------------------------------------------- sessions, shutdown, misc


def test_session_is_bound_to_its_principal_and_delete_ends_it(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"], "bob": ["user"]})
    url = gw.url("everything")
    ans, sid = mcp_initialize(url, bearer(gw.keys["alice"]))
    assert ans.status == 200 and sid
    assert len(sid) >= 32, sid
    ping = {"jsonrpc": "2.0", "id": 5, "method": "ping"}
    hdr = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
    assert http_request("POST", url, headers=dict(bearer(gw.keys["alice"]), **hdr), body=ping).status == 200
    stolen = http_request("POST", url, headers=dict(bearer(gw.keys["bob"]), **hdr), body=ping)
    assert stolen.status == 404, (stolen.status, stolen.body[:300])
    assert http_request("POST", gw.url("time"), headers=dict(bearer(gw.keys["alice"]), **hdr), body=ping).status == 404
    assert http_request("DELETE", url, headers=dict(bearer(gw.keys["bob"]), **hdr)).status == 404
    assert http_request("DELETE", url, headers=dict(bearer(gw.keys["alice"]), **hdr)).status in (200, 204)
    after = http_request("POST", url, headers=dict(bearer(gw.keys["alice"]), **hdr), body=ping)
    assert after.status == 404, (after.status, after.body[:300])


def test_unknown_server_is_404(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    ans, _ = mcp_initialize(gw.url("nope"), bearer(gw.keys["alice"]))
    assert ans.status == 404, (ans.status, ans.body[:300])


def test_per_session_children_stop_on_delete_and_shutdown(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    _, sid1 = mcp_initialize(gw.url("everything"), auth)
    _, sid2 = mcp_initialize(gw.url("everything"), auth)
    assert sid1 and sid2 and sid1 != sid2
    kids = wait_for(lambda: [p for p in descendants(gw.daemon.pid)] if len(descendants(gw.daemon.pid)) >= 2 else None, 10)
    assert kids, "expected one child per session"
    before = set(descendants(gw.daemon.pid))
    assert http_request("DELETE", gw.url("everything"), headers=dict(auth, **{"Mcp-Session-Id": sid1})).status in (200, 204)
    assert wait_for(lambda: len(set(descendants(gw.daemon.pid))) < len(before), 10), "DELETE left the session's child running"
    left = set(descendants(gw.daemon.pid))
    status = gw.stop(timeout=20)
    assert status == 0, f"steward serve exited {status} on SIGTERM:\n{gw.log_text()[-3000:]}"
    assert not wait_gone(left, 10), "children outlived the gateway"


def test_metrics_health_ready(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    call_tool_raw(gw, "everything", gw.keys["alice"], "echo", {"message": "m"})
    assert http_request("GET", f"{gw.base}/healthz").status == 200
    assert http_request("GET", f"{gw.base}/readyz").status == 200
    metrics = http_request("GET", f"{gw.base}/metrics")
    assert metrics.status == 200
    text = metrics.body.decode()
    assert re.search(r"^steward_\w+", text, re.M), text[:1000]
    assert gw.keys["alice"] not in text


def test_federated_endpoint_prefixes_tools(gateway) -> None:
    """`/mcp` aggregates every upstream's tools as `server__tool` (issue 4, "Front door")."""
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    doc = ok_doc(
        run_client("py", HttpTarget.of(f"{gw.base}/mcp", bearer(gw.keys["alice"])), [("everything__echo", {"message": "f"})], mode="legacy")
    )
    names = tool_names(doc)
    assert "everything__echo" in names and "time__get_current_time" in names, names
    assert text_of(doc["calls"][0]) == "Echo: f"


TIME_ROLES_POLICY = """\
version: 1
default: allow
roles:
  admin: [tz-convert]
  user: [basic]
tools:
  - match: "*/convert_time"
    risk: LOW
    requires: [tz-convert]
"""


@pytest.mark.parametrize(("client", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_roles_on_modern_and_legacy_time_server(client: str, mode: str | None, gateway) -> None:
    """Filtering and refusals in the 2026-07-28 era (py-auto) too: the refusal is a valid modern result."""
    gw = gateway({"servers": servers_stdio()}, policy=TIME_ROLES_POLICY, keys={"ada": ["admin"], "uma": ["user"]})
    calls = [("convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"})]
    ada = ok_doc(run_client(client, gw.target("time", gw.keys["ada"]), calls, mode=mode))
    uma = ok_doc(run_client(client, gw.target("time", gw.keys["uma"]), calls, mode=mode))
    assert "convert_time" in tool_names(ada) and "convert_time" not in tool_names(uma), (tool_names(ada), tool_names(uma))
    assert ada["calls"][0].get("isError") is False, ada["calls"]
    assert uma["calls"][0].get("isError") is True, uma["calls"]
    assert "tz-convert" in text_of(uma["calls"][0]), uma["calls"]


@pytest.mark.parametrize("client", ["py", "ts"])
def test_legacy_sse_transport_same_as_direct(client: str, gateway) -> None:
    """`/sse/{server}` (HTTP+SSE, 2024-11-05 transport) for old clients."""
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    direct = ok_doc(run_client(client, everything_cmd(), EVERYTHING_CALLS, mode="legacy" if client == "py" else None))
    target = HttpTarget.of(f"{gw.base}/sse/everything", bearer(gw.keys["alice"]))
    argv_mode = "legacy" if client == "py" else None
    via = ok_doc(run_client(client, target, EVERYTHING_CALLS, mode=argv_mode, sse=True))
    assert comparable(via) == comparable(direct)


def test_idle_session_expires(gateway) -> None:
    """A session idle longer than session_idle_timeout is gone (404), whenever the reaper last ran."""
    gw = gateway({"servers": servers_stdio(), "session_idle_timeout": "1s"}, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    ans, sid = mcp_initialize(gw.url("everything"), auth)
    assert ans.status == 200 and sid
    time.sleep(2.5)
    hdr = dict(auth, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
    after = http_request("POST", gw.url("everything"), headers=hdr, body={"jsonrpc": "2.0", "id": 5, "method": "ping"})
    assert after.status == 404, f"session idle 2.5s with session_idle_timeout 1s still served: HTTP {after.status} {after.body[:200]!r}"


def test_decide_api_checks_origin_and_host(gateway) -> None:
    """/v1/decide writes audit rows: a page on another site must not reach it (CSRF / DNS rebinding)."""
    gw = gateway({"auth": {"none": True}, "servers": servers_stdio()})
    body = {"server": "everything", "tool": "echo", "args": {}}
    for extra in ({"Origin": "http://evil.example"}, {"Host": "evil.example"}):
        ans = http_request("POST", f"{gw.base}/v1/decide", headers=extra, body=body)
        assert ans.status == 403, (extra, ans.status, ans.body[:300])
    # A simple (no preflight) cross-site form post: text/plain body.
    ans = http_request("POST", f"{gw.base}/v1/decide", headers={"Origin": "http://evil.example", "Content-Type": "text/plain"}, body=json.dumps(body))
    assert ans.status == 403, (ans.status, ans.body[:300])


def test_shared_child_does_not_leak_server_requests_across_sessions(gateway) -> None:
    """`mode: shared`: a server-to-client request caused by session A must never reach session B."""
    config = {"servers": {"everything": dict(stdio(everything_cmd()), mode="shared")}}
    gw = gateway(config, keys={"alice": ["user"], "bob": ["user"]})
    url = gw.url("everything")
    _, sid_b = mcp_initialize(url, bearer(gw.keys["bob"]))
    assert sid_b
    result: dict[str, Any] = {}

    def long_call() -> None:
        hdr = dict(bearer(gw.keys["bob"]), **{"Mcp-Session-Id": sid_b, "MCP-Protocol-Version": "2025-11-25"})
        body = {"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": "trigger-long-running-operation", "arguments": {"duration": 3, "steps": 2}}}
        result["b"] = http_request("POST", url, headers=hdr, body=body, timeout=30)

    t = threading.Thread(target=long_call)
    t.start()
    time.sleep(0.5)
    # Alice declares roots: server-everything asks her for them (roots/list) ~350 ms after initialized.
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {"roots": {"listChanged": True}}, "clientInfo": {"name": "alice", "version": "0"}}}
    a = http_request("POST", url, headers=bearer(gw.keys["alice"]), body=init)
    sid_a = a.headers.get("mcp-session-id")
    assert a.status == 200 and sid_a
    http_request("POST", url, headers=dict(bearer(gw.keys["alice"]), **{"Mcp-Session-Id": sid_a}), body={"jsonrpc": "2.0", "method": "notifications/initialized"})
    t.join(40)
    seen = [m.get("method") or m.get("id") for m in result["b"].messages()]
    assert "roots/list" not in seen, f"bob's tools/call stream carried alice's server requests: {seen}"
    assert not any(isinstance(m, str) and m.startswith("notifications/") for m in seen), f"bob's stream carried unrelated notifications: {seen}"


def test_sigterm_with_open_get_stream_exits(gateway) -> None:
    """SDK clients keep a GET stream open; SIGTERM must still stop the gateway promptly."""
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    _, sid = mcp_initialize(gw.url("everything"), auth)
    assert sid
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
    conn.request("GET", "/mcp/everything", headers=dict(auth, **{"Mcp-Session-Id": sid, "Accept": "text/event-stream"}))
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    closed = threading.Event()

    def drain() -> None:
        try:
            while resp.fp is not None and resp.fp.readline():
                pass
        except Exception:  # noqa: BLE001 - closed either way
            pass
        closed.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        status = gw.stop(timeout=15)
        assert status == 0, f"steward serve did not exit within 15 s of SIGTERM while a client held a GET stream (status {status}):\n{gw.log_text()[-2000:]}"
        assert closed.wait(5), "the GET stream was not closed at shutdown"
    finally:
        conn.close()


def test_graceful_shutdown_finishes_in_flight_call(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    _, sid = mcp_initialize(gw.url("everything"), auth)
    result: dict[str, Any] = {}

    def call() -> None:
        hdr = dict(auth, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
        body = {"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": "trigger-long-running-operation", "arguments": {"duration": 2, "steps": 2}}}
        try:
            result["a"] = http_request("POST", gw.url("everything"), headers=hdr, body=body, timeout=30)
        except OSError as exc:
            result["e"] = exc

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.5)
    status = gw.stop(timeout=20)
    t.join(30)
    assert "e" not in result, result
    msg = result["a"].message()
    assert "Long running operation completed" in json.dumps(msg), msg
    assert status == 0, gw.log_text()[-2000:]


@pytest.mark.parametrize(("client", "mode"), CLIENTS, ids=CLIENT_IDS)
def test_federated_endpoint_filters_by_role(client: str, mode: str | None, gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, policy=ROLES_POLICY, keys={"ada": ["admin"], "uma": ["user"]})
    fed = lambda who: HttpTarget.of(f"{gw.base}/mcp", bearer(gw.keys[who]))  # noqa: E731
    calls = [("everything__get-env", {}), ("time__convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"})]
    ada = ok_doc(run_client(client, fed("ada"), calls, mode=mode))
    uma = ok_doc(run_client(client, fed("uma"), calls, mode=mode))
    assert "everything__get-env" in tool_names(ada) and "everything__get-env" not in tool_names(uma)
    assert ada["calls"][0].get("isError") is False and uma["calls"][0].get("isError") is True, (ada["calls"], uma["calls"])
    for doc in (ada, uma):
        assert doc["calls"][1].get("isError") is False and "structuredContent" in doc["calls"][1], doc["calls"][1]


@pytest.mark.parametrize("client", ["py", "ts"])
def test_federated_endpoint_does_not_offer_server_request_tools(client: str, gateway) -> None:
    """Documented limitation (docs/gateway.md): `/mcp` reaches upstreams through connections the
    gateway initializes without client capabilities, so it cannot relay sampling, elicitation or
    roots; tools that need them are not offered there (they are on `/mcp/everything`)."""
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    fed_calls = [(f"everything__{name}", args) for name, args in CALLBACK_CALLS]
    via = ok_doc(run_client(client, HttpTarget.of(f"{gw.base}/mcp", bearer(gw.keys["alice"])), fed_calls, with_callbacks=True))
    names = {t["name"] for t in via["tools"]}
    assert "everything__echo" in names
    for name, _ in CALLBACK_CALLS:
        assert f"everything__{name}" not in names
    assert all(c.get("isError") or c.get("error") for c in via["calls"]), via["calls"]


# --------------------------------------------------------------------------- JWT (one end-to-end case)


class _Jwks:
    """A JWKS document served on 127.0.0.1 from a thread of the test process; counts fetches."""

    def __init__(self, jwk: dict[str, Any]) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.fetches = 0

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.fetches += 1
                data = json.dumps({"keys": [jwk]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_jwt_bearer_end_to_end(gateway) -> None:
    """A token from a local issuer (JWKS served by the test): valid → roles apply; expired,
    wrong audience, HS256 signed with the public key, alg none → 401."""
    import base64

    import jwt as pyjwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "e2e-1", "alg": "RS256", "use": "sig"})
    jwks = _Jwks(jwk)
    try:
        issuer = f"http://127.0.0.1:{jwks.port}/realms/e2e"
        auth = {"oidc": {"issuer": issuer, "audience": "steward", "jwks_url": f"http://127.0.0.1:{jwks.port}/certs", "roles_claim": "realm_access.roles"}}
        gw = gateway({"auth": auth, "servers": servers_stdio()}, policy=ROLES_POLICY)
        now = int(time.time())

        def token(**over: Any) -> str:
            claims = {"iss": issuer, "aud": "steward", "sub": "kc-user-1", "iat": now, "exp": now + 300, "realm_access": {"roles": ["admin"]}}
            claims.update(over)
            return pyjwt.encode(claims, key, algorithm="RS256", headers={"kid": "e2e-1"})

        good = ok_doc(run_client("py", gw.target("everything", token()), [("get-env", {})], mode="legacy"))
        assert "get-env" in tool_names(good) and good["calls"][0].get("isError") is False, good["calls"]
        user = ok_doc(run_client("ts", gw.target("everything", token(realm_access={"roles": ["user"]})), [("get-env", {})]))
        assert "get-env" not in tool_names(user) and user["calls"][0].get("isError") is True
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

        def b64(d: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

        import hmac
        import hashlib

        claims = {"iss": issuer, "aud": "steward", "sub": "x", "exp": now + 300}
        signing = f"{b64({'alg': 'HS256', 'kid': 'e2e-1', 'typ': 'JWT'})}.{b64(claims)}"
        hs_confusion = signing + "." + base64.urlsafe_b64encode(hmac.new(pem, signing.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
        alg_none = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
        for label, tok in (
            ("expired", token(exp=now - 600, iat=now - 900)),
            ("wrong audience", token(aud="someone-else")),
            ("wrong issuer", token(iss="http://127.0.0.1:1/realms/other")),
            ("HS256 with the public key", hs_confusion),
            ("alg none", alg_none),
        ):
            ans, sid = mcp_initialize(gw.url("everything"), bearer(tok))
            assert ans.status == 401 and sid is None, (label, ans.status, ans.body[:300])
            assert "resource_metadata=" in ans.headers.get("www-authenticate", ""), label
        meta = http_request("GET", f"{gw.base}/.well-known/oauth-protected-resource/mcp/everything").json()
        assert meta.get("authorization_servers") == [issuer], meta
    finally:
        jwks.close()


# --------------------------------------------------------------------------- upstream life cycle


def test_per_session_child_crash_is_reported_and_session_can_restart(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    _, sid = mcp_initialize(gw.url("everything"), auth)
    assert sid
    kids = wait_for(lambda: descendants(gw.daemon.pid), 10)
    assert kids
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not wait_gone(kids, 10)
    hdr = dict(auth, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
    body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}}}
    dead = wait_for(lambda: (lambda a: a if a.status != 200 or "error" in a.message() else None)(http_request("POST", gw.url("everything"), headers=hdr, body=body)), 10)
    assert dead, "a request to a session whose child died still succeeded"
    assert dead.status in (404, 502) or dead.message().get("error"), (dead.status, dead.body[:300])
    # The client starts over and works.
    assert call_tool_raw(gw, "everything", gw.keys["alice"], "echo", {"message": "again"})["result"]["content"][0]["text"] == "Echo: again"
    assert gw.daemon.proc.poll() is None


def test_http_upstream_session_deleted_with_client_session(gateway, http_server) -> None:
    url, rec = http_server("recording")
    gw = gateway({"servers": {"rec": {"url": url}}}, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    _, sid = mcp_initialize(gw.url("rec"), auth)
    assert sid
    hdr = dict(auth, **{"Mcp-Session-Id": sid})
    assert http_request("POST", gw.url("rec"), headers=hdr, body={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).status == 200
    assert http_request("DELETE", gw.url("rec"), headers=hdr).status in (200, 204)
    records = lambda: [json.loads(line) for line in rec.record_path.read_text().splitlines() if line.strip()]  # noqa: E731
    upstream_sid = next(r["headers"].get("mcp-session-id") for r in records() if r["method"] == "POST" and r["headers"].get("mcp-session-id"))
    deleted = wait_for(lambda: [r for r in records() if r["method"] == "DELETE" and r["headers"].get("mcp-session-id") == upstream_sid], 10)
    assert deleted, f"the upstream session was not deleted: {[(r['method'], r['headers'].get('mcp-session-id')) for r in records()]}"


def test_gateway_calls_are_audited_with_principal_and_chain_verifies(gateway, steward_bin: Path) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    calls = [("echo", {"message": "audited"}), ("get_current_time", {"timezone": "UTC"})]
    ok_doc(run_client("ts", gw.target("everything", gw.keys["alice"]), calls[:1]))
    ok_doc(run_client("py", gw.target("time", gw.keys["alice"]), calls[1:]))
    assert gw.stop() == 0
    rows = audit_rows(steward_bin, gw.db_path)
    decisions = [r for r in rows if r.get("kind") == "decision" and r.get("method") == "tools/call"]
    assert {(r["server"], r["tool"], r["principal"], r["door"]) for r in decisions} == {("everything", "echo", "alice", "gateway"), ("time", "get_current_time", "alice", "gateway")}, decisions
    outcomes = {r["decision_id"]: r["outcome"] for r in rows if r.get("kind") == "outcome"}
    assert all(outcomes.get(r["decision_id"]) == "ok" for r in decisions), (decisions, outcomes)
    assert gw.keys["alice"] not in json.dumps(rows)
    verify = run_steward(steward_bin, "audit", "verify", "--db", str(gw.db_path))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_tool_rate_limit_is_per_tool(gateway) -> None:
    gw = gateway({"servers": servers_stdio(), "limits": {"tool_calls_per_minute": 1}}, keys={"alice": ["user"]})
    calls = [("echo", {"message": "1"}), ("echo", {"message": "2"}), ("get-sum", {"a": 1, "b": 2})]
    doc = ok_doc(run_client("ts", gw.target("everything", gw.keys["alice"]), calls))
    first, second, other = doc["calls"]
    assert first.get("isError") is False and other.get("isError") is False, doc["calls"]
    assert second.get("isError") is True and "rate limit" in text_of(second).lower(), second


def test_bad_config_is_reported_with_location(steward_bin: Path, tmp_path: Path) -> None:
    for text, needle in (
        ("servers:\n  x: { args: [a] }\n", "neither command nor url"),
        ("srevers: {}\n", "unknown field"),
        ("servers:\n  r: { url: http://127.0.0.1:1/mcp, headers: { X-T: \"${STEWARD_E2E_SURELY_UNSET}\" } }\n", "STEWARD_E2E_SURELY_UNSET"),
    ):
        cfg = tmp_path / "steward.yaml"
        cfg.write_text(text)
        proc = run_steward(steward_bin, "serve", "--config", str(cfg), "--listen", "127.0.0.1:1", cwd=tmp_path)
        assert proc.returncode != 0, proc.stderr
        assert needle in proc.stderr and "steward.yaml:" in proc.stderr, proc.stderr


def test_federated_and_sse_endpoints_check_origin_and_credentials(gateway) -> None:
    gw = gateway({"servers": servers_stdio()}, keys={"alice": ["user"]})
    auth = bearer(gw.keys["alice"])
    for path in ("/mcp", "/mcp/everything"):
        assert mcp_initialize(gw.base + path, dict(auth, Origin="http://evil.example"))[0].status == 403, path
        assert mcp_initialize(gw.base + path, {})[0].status == 401, path
    assert http_request("GET", f"{gw.base}/sse/everything", headers=dict(auth, Origin="http://evil.example")).status == 403
    ans = http_request("GET", f"{gw.base}/sse/everything")
    assert ans.status == 401 and "resource_metadata=" in ans.headers.get("www-authenticate", ""), ans.status
    assert http_request("POST", f"{gw.base}/messages/everything?sessionId=nope", headers=auth, body={"jsonrpc": "2.0", "id": 1, "method": "ping"}).status == 404


# --------------------------------------------------------------------------- output protection (issue 7)


@pytest.mark.parametrize("client", ["py", "ts"])
def test_get_env_secrets_are_redacted(client: str, gateway, steward_bin: Path) -> None:
    """server-everything's get-env, run with a fake AWS key and GitHub token in the upstream's
    declared environment, returns them redacted; the audit event names the kinds, not the values."""
    # Not the AWS documentation key: that one is a known placeholder and is left alone.
    aws, gh = "AKIAZ7QK4M2XW9PL3RTB", "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"
    server = stdio(everything_cmd())
    server["env"] = {"AWS_ACCESS_KEY_ID": aws, "GITHUB_TOKEN": gh}
    gw = gateway({"servers": {"everything": server}}, keys={"alice": ["user"]})
    doc = ok_doc(run_client(client, HttpTarget.of(f"{gw.base}/mcp/everything", bearer(gw.keys["alice"])), [("get-env", {})]))
    text = json.dumps(doc["calls"][0])
    assert aws not in text and gh not in text, text[:2000]
    assert "REDACTED" in text, text[:2000]
    gw.stop()
    rows = audit_rows(steward_bin, gw.db_path)
    dumped = json.dumps(rows)
    assert aws not in dumped and gh not in dumped, "a secret reached the audit log"
    outcome = [r for r in rows if r.get("kind") == "outcome" and r.get("tool") == "get-env"]
    kinds = {f["kind"] for r in outcome for f in ((r.get("detail") or {}).get("output_findings") or [])}
    assert {"aws_access_key", "github_token"} <= kinds, outcome
