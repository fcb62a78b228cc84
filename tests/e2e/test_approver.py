"""Issue 19: approving where approvers already are.

Slack: signed and forged interaction payloads against a running `steward serve` (the signature
computed here with the signing secret exactly as Slack documents it), replayed and old
timestamps, unmapped users, a two-person approval completed by two Slack users; each refusal has
its status and audit row while the call stays pending, and the message is updated in place
through a fake `response_url` on 127.0.0.1.

The approver MCP endpoint `/mcp/_approvals` driven by the real Python MCP client: bob's key lists
alice's pending call and `approve` releases it; alice's key cannot approve her own call; an agent
key cannot approve anything. `steward proxy --approvals` offers the same tools over stdio.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import secrets
import sqlite3
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest

from e2e_helpers import (
    E2E_DIR,
    HttpTarget,
    bearer,
    client_argv,
    http_request,
    run_client,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.steward

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOB, CAROL, ALICE_SLACK, STRANGER = "U024BE7LH", "U0G9QF9C6", "U0ALICE01", "U0NOBODY9"

POLICY = """\
version: 1
default: allow
roles:
  "steward:approver": []
principals:
  # Slack clicks carry no credential: a Slack approver's roles come from here.
  alice: { roles: ["steward:approver"] }
  bob: { roles: ["steward:approver"] }
  carol: { roles: ["steward:approver"] }
  bot: { roles: ["steward:approver"], kind: agent }
detectors:
  builtin: true
rules:
  - id: destructive-needs-approval
    match: demo/run_command
    when: '"destructive-fs" in call.flags'
    effect: approve
    reason: destructive commands need an approver
    approvers: { roles: ["steward:approver"], count: COUNT, mode: hold, hold_timeout: 3m }
approvals:
  mode: hold
  hold_timeout: 3m
"""


class Receiver:
    """A fake Slack `response_url`: records every JSON body POSTed to it."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                bodies.append(json.loads(self.rfile.read(n) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/actions/T0/1/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> str:
        return "\n".join(json.dumps(b) for b in self.bodies)

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def slack_gateway(gateway: Any, count: int = 1) -> Any:
    cfg = {
        "auth": {"api_keys": True},
        "approvals": {
            "slack": {
                "signing_secret": {"env": "SLACK_SIGNING_SECRET"},
                "users": {BOB: "bob", CAROL: "carol", ALICE_SLACK: "alice"},
            }
        },
    }
    env = dict(os.environ, SLACK_SIGNING_SECRET=SECRET)
    keys = {"alice": ["steward:approver"], "bob": ["steward:approver"], "carol": ["steward:approver"], "bot": ["steward:approver"]}
    return gateway(cfg, policy=POLICY.replace("COUNT", str(count)), keys=keys, env=env)


def sign(body: bytes, ts: int, secret: str = SECRET) -> str:
    """Slack's v0 signature: HMAC-SHA256 over `v0:{timestamp}:{body}`, hex, `v0=` prefix."""
    base = b"v0:" + str(ts).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def click(user: str, approval_id: str, action: str, response_url: str) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0"},
        "team": {"id": "T0", "domain": "acme"},
        "actions": [{"action_id": f"steward_{action}", "block_id": "steward_approval", "value": approval_id, "type": "button"}],
        "response_url": response_url,
        # Every real click has a trigger id of its own.
        "trigger_id": f"13345224609.738474920.{secrets.token_hex(16)}",
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def post_slack(gw: Any, body: bytes, ts: int | None = None, signature: str | None = None) -> Any:
    ts = int(time.time()) if ts is None else ts
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature if signature is not None else sign(body, ts),
    }
    return http_request("POST", f"{gw.base}/v1/slack/interactions", headers=headers, body=body)


def audit_rows(gw: Any, where: str, *params: Any) -> list[sqlite3.Row]:
    con = sqlite3.connect(f"file:{gw.db_path}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(f"SELECT * FROM audit_events WHERE {where} ORDER BY seq", params).fetchall()
    finally:
        con.close()


def approval(gw: Any, approval_id: str) -> dict[str, Any]:
    r = http_request("GET", f"{gw.base}/v1/approvals/{approval_id}", headers=bearer(gw.keys["bob"]))
    assert r.status == 200, r.body
    return r.json()


def start_held_call(gw: Any, tmp_path: Path, name: str) -> tuple[subprocess.Popen, str]:
    """Alice's client calls a destructive command and is held; returns it and the approval id."""
    before = set(pending(gw))
    argv = client_argv("py", HttpTarget.of(gw.url("demo"), bearer(gw.keys["alice"])), [("run_command", {"command": "rm -rf /"})], timeout=150)
    out, err = open(tmp_path / f"{name}.out", "wb"), open(tmp_path / f"{name}.err", "wb")
    proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=E2E_DIR)
    new = wait_for(lambda: [i for i in pending(gw) if i not in before], timeout=60)
    assert new, f"no pending approval appeared: {(tmp_path / f'{name}.err').read_text()[-2000:]}"
    return proc, new[0]


def pending(gw: Any) -> list[str]:
    r = http_request("GET", f"{gw.base}/v1/approvals?state=pending", headers=bearer(gw.keys["bob"]))
    assert r.status == 200, r.body
    return [a["id"] for a in r.json()["approvals"]]


def finish(proc: subprocess.Popen, tmp_path: Path, name: str, timeout: float = 60) -> dict[str, Any]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"client {name} still held after {timeout}s: {(tmp_path / f'{name}.err').read_text()[-2000:]}")
    return json.loads((tmp_path / f"{name}.out").read_text())


def assert_released(proc: subprocess.Popen, tmp_path: Path, name: str) -> None:
    call = finish(proc, tmp_path, name)["calls"][0]
    assert call.get("isError") is not True, call
    assert "(simulated) $ rm -rf /" in text_of(call), call


# --------------------------------------------------------------------------- Slack


def test_a_signed_click_releases_the_call_and_forgeries_are_refused(gateway, receiver: Receiver, tmp_path: Path) -> None:
    gw = slack_gateway(gateway)
    proc, apr = start_held_call(gw, tmp_path, "held")
    try:
        body = click(BOB, apr, "approve", receiver.url)
        now = int(time.time())

        # A forged signature (another secret), a body altered after signing, no signature.
        forged = post_slack(gw, body, now, sign(body, now, "not-the-secret"))
        assert forged.status == 401, forged.body
        altered = post_slack(gw, body.replace(b"U024BE7LH", b"U0G9QF9C6"), now, sign(body, now))
        assert altered.status == 401, altered.body
        assert post_slack(gw, body, now, "").status == 401
        # An old timestamp (correctly signed for it), and one from the future.
        old = post_slack(gw, body, now - 6 * 60)
        assert old.status == 401 and "stale_timestamp" in old.body.decode(), old.body
        assert post_slack(gw, body, now + 6 * 60).status == 401
        # A correctly signed click from a Slack user nobody mapped.
        stranger = post_slack(gw, click(STRANGER, apr, "approve", receiver.url))
        assert stranger.status == 403, stranger.body
        assert approval(gw, apr)["state"] == "pending"
        assert proc.poll() is None, "the call must still be held"

        refusals = audit_rows(gw, "kind = 'system' AND door = 'slack' AND outcome = 'refused'")
        codes = [json.loads(r["detail"])["refusal"] for r in refusals]
        assert codes.count("bad_signature") == 2, codes
        assert "signature_malformed" in codes or "signature_missing" in codes, codes
        assert codes.count("stale_timestamp") == 2, codes
        assert "unmapped_user" in codes, codes
        unmapped = [r for r in refusals if json.loads(r["detail"])["refusal"] == "unmapped_user"][0]
        assert STRANGER in unmapped["reason"] and unmapped["approval_id"] == apr
        for r in refusals:
            text = json.dumps(dict(r))
            assert SECRET not in text and "v0=" not in text, text

        # The real click from bob releases the call; the message is replaced in place.
        ok = post_slack(gw, body, now)
        assert ok.status == 200, ok.body
        assert_released(proc, tmp_path, "held")
        assert approval(gw, apr)["state"] in ("approved", "executed")
        wait_for(lambda: any("Approved by bob" in json.dumps(b) for b in receiver.bodies), timeout=10)
        update = [b for b in receiver.bodies if "Approved by bob" in json.dumps(b)][0]
        assert update["replace_original"] is True
        assert not [b for b in update["blocks"] if b["type"] == "actions"], "no buttons once decided"

        # The store's transition row names bob, and the Slack user.
        approved = audit_rows(gw, "kind = 'approval' AND approval_id = ? AND principal = 'bob'", apr)
        assert approved and any(BOB in (r["reason"] or "") for r in approved), [dict(r) for r in approved]

        # Replaying the accepted request is refused.
        again = post_slack(gw, body, now)
        assert again.status == 401 and "replayed" in again.body.decode(), again.body
    finally:
        if proc.poll() is None:
            proc.kill()


def test_two_slack_users_complete_a_two_person_approval(gateway, receiver: Receiver, tmp_path: Path) -> None:
    gw = slack_gateway(gateway, count=2)
    proc, apr = start_held_call(gw, tmp_path, "two")
    try:
        first = post_slack(gw, click(BOB, apr, "approve", receiver.url))
        assert first.status == 200, first.body
        a = approval(gw, apr)
        assert a["state"] == "pending" and len(a["approvals"]) == 1, a
        wait_for(lambda: "waiting for 1 more approver" in receiver.texts(), timeout=10)
        assert proc.poll() is None

        # The requester clicking through her own Slack account is refused, and audited.
        own = post_slack(gw, click(ALICE_SLACK, apr, "approve", receiver.url))
        assert own.status == 403, own.body
        rows = audit_rows(gw, "kind = 'system' AND door = 'slack' AND principal = 'alice' AND outcome = 'refused'")
        assert rows and json.loads(rows[-1]["detail"])["refusal"] == "self_approval", [dict(r) for r in rows]
        # Bob again does not count twice.
        assert post_slack(gw, click(BOB, apr, "approve", receiver.url)).status == 409
        assert approval(gw, apr)["state"] == "pending"

        done = post_slack(gw, click(CAROL, apr, "approve", receiver.url))
        assert done.status == 200, done.body
        assert_released(proc, tmp_path, "two")
        wait_for(lambda: "Approved by carol" in receiver.texts(), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_deny_click_without_a_bot_token_denies_from_slack(gateway, receiver: Receiver, tmp_path: Path) -> None:
    gw = slack_gateway(gateway)
    proc, apr = start_held_call(gw, tmp_path, "denied")
    try:
        r = post_slack(gw, click(CAROL, apr, "deny", receiver.url))
        assert r.status == 200, r.body
        call = finish(proc, tmp_path, "denied")["calls"][0]
        assert call.get("isError") is True or "error" in call, call
        a = approval(gw, apr)
        assert a["state"] == "denied" and a["decided_by"] == "carol", a
        assert "denied from Slack" in a["decision_reason"] and CAROL in a["decision_reason"], a
        wait_for(lambda: "Denied by carol" in receiver.texts(), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


# --------------------------------------------------------------------------- /mcp/_approvals


def approver(gw: Any, who: str, calls: list[tuple[str, dict[str, Any]]], mode: str | None = None) -> dict[str, Any]:
    doc = run_client("py", HttpTarget.of(f"{gw.base}/mcp/_approvals", bearer(gw.keys[who])), calls, mode=mode)
    assert "connectError" not in doc, doc
    return doc


@pytest.mark.parametrize("mode", [None, "legacy"], ids=["py-auto", "py-legacy"])
def test_bob_approves_alices_call_from_his_assistant(gateway, tmp_path: Path, mode: str | None) -> None:
    gw = slack_gateway(gateway)
    proc, apr = start_held_call(gw, tmp_path, "held")
    try:
        doc = approver(gw, "bob", [("list_pending_approvals", {}), ("show_approval", {"id": apr})], mode)
        assert {t["name"] for t in doc["tools"]} == {"list_pending_approvals", "show_approval", "approve", "deny"}, doc
        listed = doc["calls"][0]
        assert listed.get("isError") is False, listed
        items = listed["structuredContent"]["approvals"]
        assert [i["id"] for i in items] == [apr], items
        assert items[0]["requester"] == "alice" and items[0]["risk"] and items[0]["reasons"], items
        assert items[0]["seconds_left"] > 0 and "rm -rf /" in text_of(listed)
        assert doc["calls"][1]["structuredContent"]["id"] == apr

        # Alice's own key: her call is not listed, and approving it is refused.
        mine = approver(gw, "alice", [("list_pending_approvals", {}), ("approve", {"id": apr, "reason": "trust me"})], mode)
        assert mine["calls"][0]["structuredContent"]["approvals"] == [], mine
        refused = mine["calls"][1]
        assert refused["isError"] is True and refused["structuredContent"]["refused"] == "self_approval", refused
        # An agent key (kind: agent) holding the approver role cannot approve either.
        bot = approver(gw, "bot", [("approve", {"id": apr, "reason": "looks fine"})], mode)
        assert bot["calls"][0]["isError"] is True and bot["calls"][0]["structuredContent"]["refused"] == "agent", bot
        assert approval(gw, apr)["state"] == "pending" and proc.poll() is None
        rows = audit_rows(gw, "kind = 'system' AND door = 'approver-mcp' AND outcome = 'refused'")
        assert {r["principal"] for r in rows} >= {"alice", "bot"}, [dict(r) for r in rows]

        done = approver(gw, "bob", [("approve", {"id": apr, "reason": "scratch box, agreed"})], mode)
        assert done["calls"][0]["isError"] is False and done["calls"][0]["structuredContent"]["complete"] is True, done
        assert_released(proc, tmp_path, "held")
        a = approval(gw, apr)
        assert "bob" in [v["by"] for v in a["approvals"]] and "scratch box, agreed" in json.dumps(a), a
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_endpoint_asks_for_credentials_and_cannot_be_shadowed(gateway, tmp_path: Path) -> None:
    gw = slack_gateway(gateway)
    r = http_request("POST", f"{gw.base}/mcp/_approvals", headers={"Content-Type": "application/json"}, body=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}')
    assert r.status == 401, r.body
    # No upstream may take the name.
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"servers": {"_approvals": {"command": "true"}}}))
    check = subprocess.run([os.environ.get("STEWARD_BIN", str(E2E_DIR.parent.parent / "target/debug/steward")), "serve", "--config", str(bad), "--listen", "127.0.0.1:1"], capture_output=True, timeout=30)
    assert check.returncode != 0 and b"reserved" in check.stderr + check.stdout, check


def test_proxy_approvals_lists_over_stdio(gateway, tmp_path: Path) -> None:
    """`steward proxy --approvals` against the gateway's store, as bob and as alice."""
    gw = slack_gateway(gateway)
    proc, apr = start_held_call(gw, tmp_path, "held")
    steward = os.environ.get("STEWARD_BIN", str(E2E_DIR.parent.parent / "target/debug/steward"))
    policy = gw.workdir / "policy.yaml"
    try:
        cmd = [steward, "proxy", "--approvals", "--audit-db", str(gw.db_path), "--policy", str(policy), "--principal", "bob"]
        doc = run_client("py", cmd, [("list_pending_approvals", {})], mode="legacy")
        assert {t["name"] for t in doc["tools"]} == {"list_pending_approvals", "show_approval", "approve", "deny"}, doc
        assert [i["id"] for i in doc["calls"][0]["structuredContent"]["approvals"]] == [apr], doc
        alice = [steward, "proxy", "--approvals", "--audit-db", str(gw.db_path), "--policy", str(policy), "--principal", "alice"]
        own = run_client("py", alice, [("approve", {"id": apr, "reason": "mine"})], mode="legacy")
        assert own["calls"][0]["isError"] is True and own["calls"][0]["structuredContent"]["refused"]  == "self_approval", own
        assert approval(gw, apr)["state"] == "pending"
        # Bob's approval over stdio is seen by the gateway, which releases the held call.
        done = run_client("py", cmd, [("approve", {"id": apr, "reason": "from my terminal"})], mode="legacy")
        assert done["calls"][0]["isError"] is False, done
        assert_released(proc, tmp_path, "held")
    finally:
        if proc.poll() is None:
            proc.kill()
