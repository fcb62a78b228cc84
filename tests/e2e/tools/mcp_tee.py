#!/usr/bin/env python3
"""Transparent stdio tee for MCP: sits between a client and a server and logs every line.

Usage:
    mcp_tee.py --log FILE [--truncate N] -- CMD ARGS...

The client launches this script as if it were the server. It starts CMD, copies
its own stdin to CMD's stdin and CMD's stdout to its own stdout, line by line,
unchanged, and appends one JSON object per line to FILE:

    {"n": 3, "t_ms": 12, "dir": "c2s", "msg": {...}}    client -> server
    {"n": 4, "t_ms": 15, "dir": "s2c", "msg": {...}}    server -> client
    {"n": 9, "t_ms": 40, "dir": "c2s", "eof": true}      client closed stdin
    {"n": 10, "t_ms": 45, "dir": "s2c", "eof": true, "exit": 0}

A line that is not valid JSON is logged as {"raw": "<text>"}. A JSON line longer
than --truncate characters (default 4096) is logged abbreviated (strings over
160 characters cut, arrays over 3 items cut, marked with "…") and flagged with
"abbreviated": <original length>; a non-JSON line that long is logged cut.
Lines are always forwarded unchanged. CMD's stderr is inherited. The exit status is CMD's.

Standard library only, so it runs with any python3.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time


def abbreviate(value: object) -> object:
    if isinstance(value, str) and len(value) > 160:
        return value[:120] + f"…(+{len(value) - 120} chars)"
    if isinstance(value, list):
        head = [abbreviate(v) for v in value[:3]]
        return head + ([f"…(+{len(value) - 3} more)"] if len(value) > 3 else [])
    if isinstance(value, dict):
        return {k: abbreviate(v) for k, v in value.items()}
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, help="JSONL file to append the transcript to")
    parser.add_argument("--truncate", type=int, default=4096, help="max characters of a line kept in the log")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    opts = parser.parse_args()
    cmd = opts.cmd[1:] if opts.cmd[:1] == ["--"] else opts.cmd
    if not cmd:
        parser.error("missing server command after --")

    start = time.monotonic()
    lock = threading.Lock()
    counter = [0]
    log = open(opts.log, "a", encoding="utf-8")

    def record(direction: str, line: bytes | None, **extra: object) -> None:
        entry: dict[str, object] = {"dir": direction}
        if line is not None:
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                msg = json.loads(text)
            except ValueError:
                if len(text) > opts.truncate:
                    entry["raw"] = text[: opts.truncate]
                    entry["truncated"] = len(text)
                else:
                    entry["raw"] = text
            else:
                if len(text) > opts.truncate:
                    msg = abbreviate(msg)
                    entry["abbreviated"] = len(text)
                entry["msg"] = msg
        entry.update(extra)
        with lock:
            counter[0] += 1
            entry["n"] = counter[0]
            entry["t_ms"] = int((time.monotonic() - start) * 1000)
            log.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
            log.flush()

    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)

    def forward_signal(signum: int, _frame: object) -> None:
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward_signal)

    def pump_stdin() -> None:
        assert proc.stdin is not None
        stdin = sys.stdin.buffer
        try:
            while True:
                line = stdin.readline()
                if not line:
                    break
                record("c2s", line)
                try:
                    proc.stdin.write(line)
                    proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    break
        finally:
            record("c2s", None, eof=True)
            try:
                proc.stdin.close()
            except OSError:
                pass

    threading.Thread(target=pump_stdin, daemon=True).start()

    assert proc.stdout is not None
    out = sys.stdout.buffer
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        record("s2c", line)
        try:
            out.write(line)
            out.flush()
        except (BrokenPipeError, OSError):
            break
    rc = proc.wait()
    record("s2c", None, eof=True, exit=rc)
    log.close()
    try:
        sys.stdout.close()
    except OSError:
        pass
    # Do not wait for the stdin thread: it may be blocked reading from the client.
    os._exit(rc if rc >= 0 else 128 - rc)


if __name__ == "__main__":
    sys.exit(main())
