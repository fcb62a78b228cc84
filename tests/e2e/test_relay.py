"""The relay at every door: resources and prompts decided and inspected like tools, and the
attacks that used to get through, written as an attacker would (issue 11).

Doors: `steward proxy`, `steward serve` `/mcp/<server>`, legacy `/sse/<server>`, federated `/mcp`.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from e2e_helpers import (
    E2E_DIR,
    CLIENT_TIMEOUT,
    everything_cmd,
    http_request,
    mcp_initialize,
    python,
)

PY_RESOURCES = E2E_DIR / "clients" / "py_resources.py"
HOSTILE = E2E_DIR / "servers" / "hostile_server.py"
AWS = "AKIAZ7QX4EXAMPLE9999"
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"

POLICY = """version: 1
default: allow
rules:
  - id: no-static-documents
    method: resources/read
    match: "everything/demo://resource/static/document/*"
    effect: deny
    reason: static documents are off limits
  - id: no-simple-prompt
    method: prompts/get
    match: "everything/simple-prompt"
    effect: deny
    reason: that prompt is off limits
"""

STATIC = "demo://resource/static/document/architecture.md"
DYNAMIC = "demo://resource/dynamic/text/1"


def resources_client(target: list[str], *, prompt_prefix: str = "") -> dict[str, Any]:
    argv = [python(), str(PY_RESOURCES), "--read", STATIC, "--read", DYNAMIC]
    argv += ["--prompt", f"{prompt_prefix}simple-prompt", "{}"]
    argv += ["--prompt", f"{prompt_prefix}args-prompt", json.dumps({"city": "Lyon"})]
    out = subprocess.run(argv + target, capture_output=True, text=True, timeout=CLIENT_TIMEOUT + 30)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def stable(read: dict[str, Any]) -> Any:
    """A read with the creation time server-everything writes into dynamic resources removed."""
    return json.loads(re.sub(r" created at [0-9:]+ [AP]M", "", json.dumps(read)))


def steward_json(steward_bin: Path, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run([str(steward_bin), *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def doors(gateway, proxy_cmd, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Each door's client target, and the prompt name prefix it needs."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    gw = gateway(
        {"auth": {"none": True}, "servers": {"everything": {"command": everything_cmd()[0], "args": everything_cmd()[1:]}}},
        policy=POLICY,
    )
    proxy = proxy_cmd(everything_cmd(), policy=policy, server="everything", audit_db=tmp_path / "proxy.db")
    return {
        "proxy": (["--", *proxy], ""),
        "gateway": (["--url", gw.url("everything")], ""),
        "sse": (["--url", f"{gw.base}/sse/everything", "--sse"], ""),
        "federation": (["--url", f"{gw.base}/mcp"], "everything__"),
    }


def test_resources_and_prompts_are_decided_at_every_door(gateway, proxy_cmd, tmp_path: Path) -> None:
    direct = resources_client(["--", *everything_cmd()])
    assert "contents" in direct["reads"][0] and "contents" in direct["reads"][1], direct
    for door, (target, prefix) in doors(gateway, proxy_cmd, tmp_path).items():
        via = resources_client(target, prompt_prefix=prefix)
        static, dynamic = via["reads"]
        assert "error" in static and "static documents are off limits" in static["error"]["message"], (door, static)
        assert stable(dynamic) == stable(direct["reads"][1]), (door, dynamic)
        simple, args = via["prompts_got"]
        assert "error" in simple and "off limits" in simple["error"]["message"], (door, simple)
        assert args["messages"] == direct["prompts_got"][1]["messages"], (door, args)


def hostile_gateway(gateway) -> Any:
    return gateway({"auth": {"none": True}, "servers": {"hostile": {"command": python(), "args": [str(HOSTILE)]}}})


def test_secrets_never_reach_the_client_whatever_the_id(gateway, steward_bin: Path, raw_process, tmp_path: Path) -> None:
    db = tmp_path / "proxy.db"
    proc = raw_process([str(steward_bin), "proxy", "--server", "hostile", "--audit-db", str(db), "--", python(), str(HOSTILE)])
    proc.request({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "attacker", "version": "1"}}})
    proc.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    seen: list[str] = []
    for raw_id in ["7", "7.0", "1e0", '"7"', "-1"]:
        proc.send_bytes(f'{{"jsonrpc":"2.0","id":{raw_id},"method":"tools/call","params":{{"name":"leak","arguments":{{}}}}}}\n'.encode())
        proc.send_bytes(f'{{"jsonrpc":"2.0","id":{raw_id}1,"method":"tools/call","params":{{"name":"fail","arguments":{{}}}}}}\n'.encode())
        proc.send_bytes(f'{{"jsonrpc":"2.0","id":{raw_id}2,"method":"resources/read","params":{{"uri":"secret://config"}}}}\n'.encode())
    for m in proc.drain(quiet=1.5, limit=20):
        seen.append(json.dumps(m))
    text = "\n".join(seen)
    assert AWS not in text and GITHUB not in text, text[:3000]
    assert "stray" not in text, "an answer to an id Steward never sent reached the client"
    ids = [json.loads(s).get("id") for s in seen if "id" in json.loads(s)]
    assert 7 in ids and "7" in ids and -1 in ids, ids
    # A reused id while the first is pending is refused.
    proc.send_bytes(b'{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}\n')
    proc.close_stdin()
    proc.wait(10)
    rows = steward_json(steward_bin, "audit", "query", "--db", str(db), "--json")
    decisions = {r["decision_id"] for r in rows if r["kind"] == "decision" and r.get("method") == "tools/call" and r.get("effect") == "allow"}
    outcomes = {r["decision_id"] for r in rows if r["kind"] == "outcome"}
    assert decisions and decisions <= outcomes, f"calls without outcome: {decisions - outcomes}"
    verify = subprocess.run([str(steward_bin), "audit", "verify", "--db", str(db)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Through the gateway: the same answers, redacted.
    gw = hostile_gateway(gateway)
    ans, sid = mcp_initialize(gw.url("hostile"))
    assert sid, ans.body
    headers = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
    for raw_id in ["7", "7.0", "1e0", '"7"']:
        for body in (
            f'{{"jsonrpc":"2.0","id":{raw_id},"method":"tools/call","params":{{"name":"leak","arguments":{{}}}}}}',
            f'{{"jsonrpc":"2.0","id":{raw_id},"method":"tools/call","params":{{"name":"fail","arguments":{{}}}}}}',
            f'{{"jsonrpc":"2.0","id":{raw_id},"method":"resources/read","params":{{"uri":"secret://config"}}}}',
        ):
            a = http_request("POST", gw.url("hostile"), headers=dict(headers, **{"Content-Type": "application/json"}), body=body)
            assert a.status == 200, a.body[:300]
            assert AWS.encode() not in a.body and GITHUB.encode() not in a.body and b"stray" not in a.body, a.body[:1000]
            assert a.body.decode().count(f'"id":{raw_id}') >= 1, a.body[:300]


def test_a_poisoned_tool_is_never_callable(gateway, steward_bin: Path, raw_process, tmp_path: Path) -> None:
    db = tmp_path / "proxy.db"
    argv = [str(steward_bin), "proxy", "--server", "hostile", "--audit-db", str(db), "--", python(), str(HOSTILE)]
    for attempt in ("never listed", "after a restart"):
        proc = raw_process(argv)
        proc.request({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "attacker", "version": "1"}}})
        proc.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        r = proc.request({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2, "sidenote": "x"}}})
        assert r["result"]["isError"] is True and "blocked" in r["result"]["content"][0]["text"], (attempt, r)
        listed = proc.request({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        assert "add" not in [t["name"] for t in listed["result"]["tools"]], (attempt, listed)
        proc.close_stdin()
        proc.wait(10)
    gw = hostile_gateway(gateway)
    ans, sid = mcp_initialize(gw.url("hostile"))
    a = http_request(
        "POST",
        gw.url("hostile"),
        headers={"Mcp-Session-Id": sid or "", "MCP-Protocol-Version": "2025-11-25"},
        body={"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}},
    )
    assert a.message()["result"]["isError"] is True, a.body[:500]


@pytest.mark.parametrize("depth", [500, 5000])
def test_deep_answers_are_inspected_or_withheld(gateway, depth: int) -> None:
    gw = gateway(
        {"auth": {"none": True}, "servers": {"hostile": {"command": python(), "args": [str(HOSTILE)], "env": {"HOSTILE_DEPTH": str(depth)}}}}
    )
    ans, sid = mcp_initialize(gw.url("hostile"))
    a = http_request(
        "POST",
        gw.url("hostile"),
        headers={"Mcp-Session-Id": sid or "", "MCP-Protocol-Version": "2025-11-25"},
        body={"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "leak", "arguments": {}}},
    )
    assert AWS.encode() not in a.body, a.body[:300]
    result = a.message()["result"]
    if depth > 1024:
        assert result["isError"] is True and "withheld" in result["content"][0]["text"], result
