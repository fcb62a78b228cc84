"""End-to-end tests of sandboxed stdio servers (docs/sandbox.md) with real servers.

    steward proxy --sandbox node --allow-read DIR -- node .../server-filesystem/dist/index.js DIR
    steward serve with `sandbox:` on stdio servers (servers/probe_server.py)

Every refusal checked here comes from the kernel (Landlock, the network namespace or seccomp,
the pids cgroup), not from policy: the policy allows everything. Each case has an unsandboxed
control that succeeds. Listeners bind 127.0.0.1 only; fork loops are bounded (count and time).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from e2e_helpers import (
    E2E_DIR,
    NODE_MODULES,
    RawProcess,
    Gateway,
    bearer,
    http_request,
    mcp_initialize,
    node,
    python,
)

pytestmark = pytest.mark.steward

ALLOW_ALL = "version: 1\ndefault: allow\n"
FS_ENTRY = NODE_MODULES / "@modelcontextprotocol" / "server-filesystem" / "dist" / "index.js"
PROBE = E2E_DIR / "servers" / "probe_server.py"
SECRET = "fixture key material: only its owner may read this"  # not key-shaped: output redaction would hide it


@pytest.fixture
def fixture_home(tmp_path: Path) -> dict[str, Path]:
    """A temp HOME with ~/.ssh/id_rsa, and DIR with a file and a symlink pointing at the key."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "id_rsa"
    key.write_text(SECRET)
    data = tmp_path / "data"
    data.mkdir()
    (data / "note.txt").write_text("inside the sandbox")
    (data / "key-link").symlink_to(key)
    policy = tmp_path / "allow.yaml"
    policy.write_text(ALLOW_ALL)
    return {"home": home, "key": key, "data": data, "policy": policy, "db": tmp_path / "audit.db"}


def fs_proxy(
    steward_bin: Path, f: dict[str, Path], server_args: list[str], *, profile: str | None = "node", server: list[str] | None = None
) -> list[str]:
    """`steward proxy [--sandbox PROFILE --allow-read DIR] -- SERVER ARGS` (server-filesystem run by node by default)."""
    argv = [str(steward_bin), "proxy", "--policy", str(f["policy"]), "--audit-db", str(f["db"]), "--server", "files"]
    if profile is not None:
        argv += ["--sandbox", profile, "--allow-read", str(f["data"])]
    return argv + ["--", *(server or [node(), str(FS_ENTRY)]), *server_args]


def initialize(proc: RawProcess) -> None:
    ans = proc.request(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}},
        },
        timeout=30,
    )
    assert "result" in ans, f"{ans}\n{proc.stderr_tail()}"
    proc.send({"jsonrpc": "2.0", "method": "notifications/initialized"})


def read_file(proc: RawProcess, path: Path | str, msg_id: int) -> tuple[bool, str]:
    ans = proc.request(
        {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": {"name": "read_text_file", "arguments": {"path": str(path)}}},
        timeout=30,
    )
    assert "result" in ans, f"{ans}\n{proc.stderr_tail()}"
    text = "\n".join(c.get("text", "") for c in ans["result"].get("content", []))
    return bool(ans["result"].get("isError")), text


def with_home(home: Path) -> dict[str, str]:
    return dict(os.environ, HOME=str(home))


@pytest.fixture
def proc_with_env(tmp_path: Path) -> Iterator:
    """Like the raw_process fixture (cwd tests/e2e), with an environment (HOME) of the test's choosing."""
    started: list[RawProcess] = []

    def start_proc(argv: list[str], env: dict[str, str], name: str) -> RawProcess:
        proc = RawProcess(argv, tmp_path / f"{name}-{len(started)}.stderr", env=env)
        started.append(proc)
        return proc

    yield start_proc
    for p in started:
        p.kill()


# --------------------------------------------------------------------------- filesystem


def test_filesystem_server_in_the_sandbox_reads_only_its_directory(steward_bin: Path, fixture_home, proc_with_env) -> None:
    """The command of the issue: DIR is readable; the key is not, by path, by `..` or by symlink."""
    f = fixture_home
    proc = proc_with_env(fs_proxy(steward_bin, f, [str(f["data"])]), with_home(f["home"]), "fs")
    initialize(proc)
    err, text = read_file(proc, f["data"] / "note.txt", 2)
    assert (err, text) == (False, "inside the sandbox")
    for i, path in enumerate([f["key"], f["data"] / ".." / "home" / ".ssh" / "id_rsa", f["data"] / "key-link", "/etc/passwd"], start=3):
        err, text = read_file(proc, path, i)
        assert err and SECRET not in text and "root:" not in text, f"{path}: {text}"


def test_kernel_refuses_what_a_permissive_server_would_read(steward_bin: Path, fixture_home, proc_with_env) -> None:
    """The CVE class: a server whose own path checks let too much through (here: it is told HOME
    and / are allowed). The sandbox still allows only DIR: Landlock answers EACCES, and the
    server reports permission denied. Control: the same server unsandboxed reads the key."""
    f = fixture_home
    server_args = [str(f["data"]), str(f["home"]), "/"]
    control = proc_with_env(fs_proxy(steward_bin, f, server_args, profile=None), with_home(f["home"]), "control")
    initialize(control)
    assert read_file(control, f["key"], 2) == (False, SECRET)
    assert read_file(control, f["data"] / "key-link", 3) == (False, SECRET)

    proc = proc_with_env(fs_proxy(steward_bin, f, server_args), with_home(f["home"]), "sandboxed")
    initialize(proc)
    assert read_file(proc, f["data"] / "note.txt", 2) == (False, "inside the sandbox")
    for i, path in enumerate([f["key"], f["data"] / "key-link", f["data"] / ".." / ".." / ".." / "etc" / "passwd"], start=3):
        err, text = read_file(proc, path, i)
        assert err, f"{path}: {text}"
        assert "EACCES: permission denied" in text, f"{path}: {text}"
        assert SECRET not in text


@pytest.mark.parametrize(
    ("profile", "server"),
    [
        ("npx", ["npx", "--offline", "@modelcontextprotocol/server-filesystem"]),
        # The command of the issue, word for word: `--sandbox node ... -- npx PKG DIR`.
        ("node", ["npx", "@modelcontextprotocol/server-filesystem"]),
    ],
    ids=["npx-profile", "node-profile-npx"],
)
def test_npx_runs_the_installed_package_offline(steward_bin: Path, fixture_home, proc_with_env, profile: str, server: list[str]) -> None:
    """npx in the sandbox (no network) runs the package installed in tests/e2e/node_modules."""
    f = fixture_home
    argv = fs_proxy(steward_bin, f, [str(f["data"])], profile=profile, server=server)
    proc = proc_with_env(argv, with_home(f["home"]), "npx")
    initialize(proc)
    assert read_file(proc, f["data"] / "note.txt", 2) == (False, "inside the sandbox")
    err, text = read_file(proc, f["key"], 3)
    assert err and SECRET not in text


def test_proxy_refuses_to_start_without_landlock_and_says_why(steward_bin: Path, fixture_home, tmp_path: Path) -> None:
    f = fixture_home
    env = dict(with_home(f["home"]), STEWARD_SANDBOX_UNAVAILABLE="landlock")
    argv = fs_proxy(steward_bin, f, [str(f["data"])])
    out = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "landlock is missing" in out.stderr, out.stderr
    assert "forced off by STEWARD_SANDBOX_UNAVAILABLE" in out.stderr
    assert "best_effort" in out.stderr and "--sandbox-best-effort" in out.stderr
    assert "Secure MCP Filesystem Server" not in out.stderr, "the server must not have started"

    # best effort: it starts, says what it skipped, and the audit log has it.
    proc = RawProcess([*argv[:2], "--sandbox-best-effort", *argv[2:]], tmp_path / "best-effort.stderr", env=env)
    try:
        initialize(proc)
        assert read_file(proc, f["data"] / "note.txt", 2) == (False, "inside the sandbox")
        proc.close_stdin()
        proc.wait(10)
        assert "sandbox started without landlock (best_effort)" in proc.stderr_text()
    finally:
        proc.kill()
    rows = audit_rows(steward_bin, f["db"])
    system = [r for r in rows if r.get("kind") == "system" and "sandbox" in (r.get("reason") or "")]
    assert system and "landlock" in system[-1]["reason"], rows


# --------------------------------------------------------------------------- gateway


def audit_rows(steward_bin: Path, db: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(steward_bin), "audit", "query", "--db", str(db), "--json"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def probe_server(sandbox: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {"command": python(), "args": [str(PROBE)]}
    if sandbox is not None:
        cfg["sandbox"] = sandbox
    return cfg


def call(gw: Gateway, server: str, key: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    headers = bearer(key)
    ans, sid = mcp_initialize(gw.url(server), headers)
    assert ans.status == 200 and sid, f"initialize {server} -> HTTP {ans.status} {ans.body[:800]!r}\n{gw.log_text()[-3000:]}"
    hdrs = dict(headers, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": args}}
    resp = http_request("POST", gw.url(server), headers=hdrs, body=body, timeout=60)
    assert resp.status == 200, f"tools/call -> HTTP {resp.status} {resp.body[:500]!r}"
    return resp.message()


def text_of(msg: dict[str, Any]) -> str:
    return "\n".join(c.get("text", "") for c in msg["result"].get("content", []))


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that accepts (and closes) connections, for at most 60 s."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.5)
    stop = threading.Event()

    def accept() -> None:
        for _ in range(120):
            if stop.is_set():
                return
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    t.join(5)
    sock.close()


def test_network_none_cannot_reach_a_local_listener_in_serve(gateway, listener: int) -> None:
    gw = gateway(
        {"servers": {"open": probe_server(), "boxed": probe_server({"profile": "python", "network": "none"})}},
        policy=ALLOW_ALL,
        keys={"alice": ["user"]},
    )
    key = gw.keys["alice"]
    control = call(gw, "open", key, "connect", {"host": "127.0.0.1", "port": listener})
    assert text_of(control) == "connected", control
    boxed = call(gw, "boxed", key, "connect", {"host": "127.0.0.1", "port": listener})
    assert boxed["result"]["isError"], boxed
    # seccomp refuses the socket (EACCES); in its own network namespace it would be unreachable.
    assert any(e in text_of(boxed) for e in ("EACCES", "ENETUNREACH")), boxed


def test_fork_bomb_stops_at_the_process_limit(gateway) -> None:
    gw = gateway(
        {
            "servers": {
                "open": probe_server(),
                "boxed": probe_server({"profile": "python", "limits": {"processes": 16, "memory": "512MiB"}}),
            }
        },
        policy=ALLOW_ALL,
        keys={"alice": ["user"]},
    )
    key = gw.keys["alice"]
    boxed = text_of(call(gw, "boxed", key, "fork", {"count": 60, "hold": 3}))
    started, refused = (int(part.split("=")[1]) for part in boxed.split())
    assert started < 16 and refused > 0 and started + refused == 60, boxed
    control = text_of(call(gw, "open", key, "fork", {"count": 60, "hold": 3}))
    assert control == "started=60 refused=0", control


REGISTRY = """\
approved:
  - name: probe
    version: "1.0.0"
    approved_by: sec
    expires: 2099-12-31
    data_scope: INTERNAL
    risk: MEDIUM
    rationale: e2e
    sandbox: required
    config:
      command: {python}
      args: [{probe}]
      sandbox: {{profile: python, network: none}}
  - name: bare
    version: "1.0.0"
    approved_by: sec
    expires: 2099-12-31
    data_scope: INTERNAL
    risk: MEDIUM
    rationale: e2e
    sandbox: required
    config:
      command: {python}
      args: [{probe}]
"""


def test_required_sandbox_refuses_to_start_without_landlock(gateway, steward_bin: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY.format(python=json.dumps(python()), probe=json.dumps(str(PROBE))))
    env = dict(os.environ, STEWARD_SANDBOX_UNAVAILABLE="landlock")
    gw = gateway({"registry": str(registry)}, policy=ALLOW_ALL, keys={"alice": ["user"]}, env=env)
    headers = bearer(gw.keys["alice"])
    ans, sid = mcp_initialize(gw.url("probe"), headers)
    assert ans.status == 502 and sid is None, f"{ans.status} {ans.body[:500]!r}"
    message = ans.message()["error"]["message"]
    assert "landlock is missing" in message and "STEWARD_SANDBOX_UNAVAILABLE" in message, message
    assert "best_effort: true" in message, message
    # An entry that requires a sandbox but declares none is not served at all.
    ans, _ = mcp_initialize(gw.url("bare"), headers)
    assert ans.status == 404, f"{ans.status} {ans.body[:300]!r}"
    log = gw.log_text()
    assert "requires a sandbox" in log, log[-3000:]
    rows = audit_rows(steward_bin, gw.db_path)
    assert any(
        r.get("kind") == "system" and r.get("server") == "probe" and "sandbox cannot be enforced" in (r.get("reason") or "")
        for r in rows
    ), rows
    gw.stop()

    # Without the switch the same registry serves the sandboxed entry.
    gw = gateway({"registry": str(registry)}, policy=ALLOW_ALL, keys={"alice": ["user"]}, name="gw-ok")
    msg = call(gw, "probe", gw.keys["alice"], "read", {"path": str(registry)})
    assert msg["result"]["isError"] and "EACCES" in text_of(msg), msg
