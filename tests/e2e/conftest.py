"""pytest fixtures for the Steward end-to-end tests.

The steward binary is taken from $STEWARD_BIN (absolute, or relative to the
repository root) and defaults to <repo>/target/debug/steward. Tests that need it
FAIL (never skip) with a clear message when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from e2e_helpers import NODE_MODULES, REPO_ROOT, VENV_BIN, RawProcess


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
