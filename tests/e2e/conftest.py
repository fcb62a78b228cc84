"""pytest fixtures for the Steward end-to-end tests.

The steward binary is taken from $STEWARD_BIN (absolute, or relative to the
repository root) and defaults to <repo>/target/debug/steward. Tests that need it
FAIL (never skip) with a clear message when it is missing.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from e2e_helpers import (
    EVERYTHING_HTTP,
    NODE_MODULES,
    RECORDING_SERVER,
    REPO_ROOT,
    TIME_HTTP,
    VENV_BIN,
    Daemon,
    Gateway,
    RawProcess,
    create_key_cli,
    free_port,
    insert_key_sqlite,
    node,
    python,
    steward_keys_cli_available,
    wait_healthz,
)


def _steward_path() -> Path:
    configured = os.environ.get("STEWARD_BIN")
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else (REPO_ROOT / path)
    return REPO_ROOT / "target" / "debug" / "steward"


@pytest.fixture(scope="session")
def steward_bin() -> Path:
    path = _steward_path()
    if not path.is_file():
        pytest.fail(
            f"steward binary not found at {path}. Build it first (cargo build -p steward, giving "
            f"<repo>/target/debug/steward) or point STEWARD_BIN at it.",
            pytrace=False,
        )
    if not os.access(path, os.X_OK):
        pytest.fail(f"steward binary at {path} is not executable", pytrace=False)
    return path


@pytest.fixture(scope="session", autouse=True)
def _dependencies_installed() -> None:
    missing = [str(p) for p in (VENV_BIN / "mcp-server-time", NODE_MODULES / "@modelcontextprotocol") if not p.exists()]
    if missing:
        pytest.fail(f"e2e dependencies missing ({', '.join(missing)}): run tests/e2e/setup.sh", pytrace=False)


@pytest.fixture
def proxy_cmd(steward_bin: Path):
    """Build `steward proxy [options] -- <server cmd>`."""

    def build(
        server_cmd: Sequence[str],
        *,
        audit_db: Path | None = None,
        policy: Path | None = None,
        server: str | None = None,
        principal: str | None = None,
    ) -> list[str]:
        argv = [str(steward_bin), "proxy"]
        if policy is not None:
            argv += ["--policy", str(policy)]
        if server is not None:
            argv += ["--server", server]
        if principal is not None:
            argv += ["--principal", principal]
        if audit_db is not None:
            argv += ["--audit-db", str(audit_db)]
        return argv + ["--", *server_cmd]

    return build


@pytest.fixture
def raw_process(tmp_path: Path) -> Iterator:
    """Factory for RawProcess objects that are always killed at teardown."""
    started: list[RawProcess] = []

    def start(argv: Sequence[str], name: str = "proc") -> RawProcess:
        proc = RawProcess(argv, tmp_path / f"{name}-{len(started)}.stderr")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


# --------------------------------------------------------------------------- HTTP gateway


@pytest.fixture(scope="session")
def keys_cli(steward_bin: Path) -> bool:
    """Whether `steward keys` exists in this binary (when not, keys are written to SQLite directly)."""
    return steward_keys_cli_available(steward_bin)


@pytest.fixture
def gateway(steward_bin: Path, tmp_path: Path, keys_cli: bool) -> Iterator:
    """Factory: start `steward serve` on a free 127.0.0.1 port; SIGTERM (then SIGKILL) at teardown.

        gw = gateway({"auth": {"api_keys": True}, "servers": {...}},
                     policy="version: 1\n...", keys={"alice": ["admin"]})
        gw.url("everything"), gw.keys["alice"], gw.db_path

    `config` is written as steward.yaml (JSON is YAML) in a fresh directory, with
    `store: {sqlite: <dir>/steward.db}` unless given; `policy` text goes to policy.yaml next
    to it. `config=None` runs without --config (embedded defaults) in that directory. API keys are
    made with `steward keys create --config FILE --principal P --roles ...`.
    """
    started: list[Gateway] = []

    def start(
        config: dict[str, Any] | None,
        *,
        policy: str | None = None,
        keys: dict[str, Sequence[str]] | None = None,
        name: str = "gw",
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> Gateway:
        workdir = tmp_path / f"{name}-{len(started)}"
        workdir.mkdir()
        port = free_port()
        config_path: Path | None = None
        db_path = workdir / "steward-data" / "steward.db"
        argv = [str(steward_bin), "serve", "--listen", f"127.0.0.1:{port}"]
        if config is not None:
            config = dict(config)
            config.setdefault("store", {"sqlite": str(workdir / "steward.db")})
            db_path = Path(config["store"]["sqlite"])
            if policy is not None:
                (workdir / "policy.yaml").write_text(policy)
                config["policy"] = str(workdir / "policy.yaml")
            config_path = workdir / "steward.yaml"
            config_path.write_text(json.dumps(config, indent=2) + "\n")
            argv += ["--config", str(config_path)]
        made: dict[str, str] = {}
        for principal, roles in (keys or {}).items():
            assert config_path is not None, "API keys need a config file"
            if keys_cli:
                made[principal] = create_key_cli(steward_bin, config_path, principal, roles)
            else:
                warnings.warn("`steward keys` is not in this binary: API keys written to SQLite directly")
                made[principal] = insert_key_sqlite(db_path, principal, roles)
        daemon = Daemon([*argv, *extra_args], workdir / "serve.log", cwd=workdir, env=env)
        gw = Gateway(daemon=daemon, port=port, workdir=workdir, config_path=config_path, db_path=db_path, config=config or {}, keys=made)
        started.append(gw)
        wait_healthz(gw)
        return gw

    yield start
    for gw in started:
        gw.daemon.stop()


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator:
    """Factory for local HTTP MCP servers (loopback only), killed at teardown.

    http_server("everything") -> (url, Daemon): server-everything's streamable HTTP mode
    http_server("recording")  -> (url, Daemon): servers/recording_http_server.py; its header log
                                  is Daemon.record_path (JSON lines)
    http_server("time")       -> (url, Daemon): servers/time_http.py (mcp-server-time over HTTP, both eras)
    """
    started: list[Daemon] = []

    def start(kind: str) -> tuple[str, Daemon]:
        port = free_port()
        n = len(started)
        if kind == "everything":
            env = dict(os.environ, PORT=str(port))
            d = Daemon([node(), str(EVERYTHING_HTTP)], tmp_path / f"everything-http-{n}.log", env=env)
        elif kind == "recording":
            record = tmp_path / f"recording-{n}.jsonl"
            record.touch()
            d = Daemon([python(), str(RECORDING_SERVER), "--port", str(port), "--log", str(record)], tmp_path / f"recording-{n}.log")
            d.record_path = record  # type: ignore[attr-defined]
        elif kind == "time":
            d = Daemon([python(), str(TIME_HTTP), "--port", str(port)], tmp_path / f"time-http-{n}.log")
        else:
            raise ValueError(kind)
        started.append(d)
        d.wait_port(port)
        return f"http://127.0.0.1:{port}/mcp", d

    yield start
    for d in started:
        d.kill()
