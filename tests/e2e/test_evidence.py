"""Evidence end to end: audit sinks with real receivers, kill -9 while shipping, checkpoints,
truncation found with the sqlite3 CLI, prune, and `steward proxy --audit-config`.

Receivers: Debian's rsyslog (imtcp on a free loopback port, omfile to a temp file), a local
HTTP receiver for JSON / Splunk HEC / Elasticsearch _bulk, and an OTLP/HTTP logs receiver
built on the `opentelemetry-proto` package. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest

from e2e_helpers import Daemon, fake_cmd, free_port, http_request, mcp_initialize, wait_for

SEQ = re.compile(r'\[steward@32473 seq="(\d+)"')
HASH = re.compile(r' hash="([0-9a-f]{64})"')


def run_steward(steward_bin: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(steward_bin), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def db_query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """A read of the audit database; retried while a gateway that just started recovers the
    WAL a killed one left (readers then see "database is locked" for a moment)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
                return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def db_rows(db: Path) -> dict[int, str]:
    """seq -> hash of every committed row."""
    return dict(db_query(db, "SELECT seq, hash FROM audit_events ORDER BY seq"))


class Session:
    """One MCP session on the gateway's demo server, calling lookup_order."""

    def __init__(self, url: str) -> None:
        self.url = url
        ans, sid = mcp_initialize(url)
        assert ans.status == 200 and sid, f"initialize -> HTTP {ans.status} {ans.body[:300]!r}"
        self.headers = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
        self.next_id = 10

    def call(self, n: int = 1) -> None:
        for _ in range(n):
            self.next_id += 1
            body = {"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call", "params": {"name": "lookup_order", "arguments": {"order_id": f"o-{self.next_id}"}}}
            resp = http_request("POST", self.url, headers=self.headers, body=body, timeout=20)
            assert resp.status == 200, f"tools/call -> HTTP {resp.status} {resp.body[:300]!r}"
            assert "Order o-" in json.dumps(resp.message()), resp.body[:300]


def sinks_status(steward_bin: Path, config: Path) -> list[dict[str, Any]]:
    out = run_steward(steward_bin, "audit", "sinks", "--config", str(config), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- rsyslog


def start_rsyslog(workdir: Path, port: int) -> tuple[Daemon, Path]:
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not Path(rsyslogd).exists():
        pytest.fail("rsyslogd is not installed: run scripts/test-all (it installs Debian's rsyslog)", pytrace=False)
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "steward.log"
    conf = workdir / "rsyslog.conf"
    conf.write_text(
        f"""
global(workDirectory="{workdir}")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="steward") {{
  action(type="omfile" file="{out}" template="raw" flushOnTXEnd="on")
}}
input(type="imtcp" port="{port}" address="127.0.0.1" ruleset="steward")
"""
    )
    daemon = Daemon([rsyslogd, "-n", "-f", str(conf), "-i", str(workdir / "rsyslogd.pid")], workdir / "rsyslogd.stdout")
    daemon.wait_port(port, timeout=20)
    return daemon, out


def syslog_seqs(path: Path) -> dict[int, list[str]]:
    """seq -> the hashes of every message rsyslog wrote for it."""
    seen: dict[int, list[str]] = {}
    if not path.exists():
        return seen
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m, h = SEQ.search(line), HASH.search(line)
        if m and h:
            seen.setdefault(int(m.group(1)), []).append(h.group(1))
    return seen


def test_rsyslog_gets_every_event_exactly_once_across_kill_9(gateway, steward_bin: Path, tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "shared" / "steward.db"
    config = {
        "store": {"sqlite": str(db)},
        "auth": {"none": True},
        "audit": {"sinks": [{"type": "syslog", "address": f"tcp://127.0.0.1:{port}", "batch": 7}], "checkpoint": {"every": 25}},
    }
    gw = gateway(config, name="first")
    assert gw.config_path is not None

    # rsyslog is not up: the sink falls behind and says why; decisions go on regardless.
    s = Session(gw.url("demo"))
    s.call(5)
    status = wait_for(lambda: [x for x in sinks_status(steward_bin, gw.config_path) if x["lag"] > 0 and x["last_error"]], timeout=20)
    assert status, sinks_status(steward_bin, gw.config_path)
    assert status[0]["sink"] == f"syslog:127.0.0.1:{port}" and "connect" in status[0]["last_error"], status
    metrics = http_request("GET", f"{gw.base}/metrics").body.decode()
    assert re.search(r'steward_audit_sink_up\{sink="syslog:127\.0\.0\.1:\d+",type="syslog"\} 0', metrics), metrics[-2000:]
    lag = re.search(r'steward_audit_sink_lag_events\{sink="[^"]+",type="syslog"\} (\d+)', metrics)
    assert lag and int(lag.group(1)) > 0, metrics[-2000:]
    ready = http_request("GET", f"{gw.base}/readyz")
    assert ready.status == 200 and b"failing" in ready.body, ready.body

    rsyslog, out = start_rsyslog(tmp_path / "rsyslog", port)
    try:
        # Calls keep coming while the gateway is killed in the middle of shipping them.
        errors: list[BaseException] = []

        def busy() -> None:
            # Until the kill ends it; bounded (5,000 calls) so a gateway that never dies cannot
            # keep the test running.
            try:
                for _ in range(100):
                    s.call(50)
            except BaseException as exc:  # noqa: BLE001 - the kill ends this client
                errors.append(exc)

        caller = threading.Thread(target=busy, daemon=True)
        caller.start()
        assert wait_for(lambda: len(syslog_seqs(out)) >= 40, timeout=40), f"rsyslog got too little: {rsyslog.log_text()[-2000:]}"
        assert caller.is_alive(), "the run must still be going when the gateway is killed"
        gw.daemon.kill()  # SIGKILL to the whole process group
        caller.join(30)
        assert not caller.is_alive() and errors, "the client saw the gateway die"
        killed_at = max(db_rows(db))
        shipped_at_kill = len(syslog_seqs(out))

        gw2 = gateway(config, name="second")
        Session(gw2.url("demo")).call(15)

        def caught_up() -> bool:
            want = db_rows(db)
            got = syslog_seqs(out)
            checkpoints = db_query(db, "SELECT count(*) FROM audit_events WHERE kind = 'checkpoint' AND seq > ?", (killed_at,))[0][0]
            return max(want) > killed_at and checkpoints > 0 and set(want) <= set(got)

        assert wait_for(caught_up, timeout=60, interval=0.5), (sorted(set(db_rows(db)) - set(syslog_seqs(out)))[:20], gw2.log_text()[-3000:])
        gw2.stop()
    finally:
        rsyslog.stop()

    want = db_rows(db)
    got = syslog_seqs(out)
    missing = sorted(set(want) - set(got))
    assert not missing, f"rsyslog lacks seqs {missing[:20]} of {len(want)}"
    # Re-sent after the kill at most as a batch; every copy is the very same row.
    for seq, hashes in got.items():
        assert all(h == want[seq] for h in hashes), f"seq {seq}: rsyslog has {hashes}, the log {want[seq]}"
    dups = sum(len(h) - 1 for h in got.values())
    assert dups <= 2 * 7, f"{dups} duplicates: more than the batches in flight"
    assert shipped_at_kill < killed_at, "the kill came while shipping was behind"
    print(f"rows {len(want)}, killed at seq {killed_at} with {shipped_at_kill} shipped, duplicates {dups}")
    # Checkpoints were shipped too.
    text = out.read_text(encoding="utf-8", errors="replace")
    assert 'kind="checkpoint"' in text, "no checkpoint event reached rsyslog"
    verify = run_steward(steward_bin, "audit", "verify", "--db", str(db))
    assert verify.returncode == 0, verify.stdout + verify.stderr


# --------------------------------------------------------------------------- HTTP collectors


class Collector:
    """A loopback HTTP receiver for the three HTTP sink shapes and OTLP/HTTP logs."""

    def __init__(self, fail_first: int = 0) -> None:
        self.json: list[dict[str, Any]] = []
        self.hec: list[dict[str, Any]] = []
        self.hec_auth: set[str] = set()
        self.bulk: dict[str, dict[str, Any]] = {}
        self.otlp: list[Any] = []
        self.otlp_resources: list[dict[str, Any]] = []
        self.fail_left = fail_first
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with collector.lock:
                    if collector.fail_left > 0 and self.path == "/json":
                        collector.fail_left -= 1
                        self.send_response(503)
                        self.end_headers()
                        self.wfile.write(b"try later")
                        return
                    status, ctype, answer = collector.handle(self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:
        # `headers` is the request's case-insensitive header map.
        if path == "/json":
            assert headers.get("Content-Type") == "application/json"
            self.json.extend(json.loads(body))
            return 200, "application/json", b"{}"
        if path == "/services/collector/event":
            self.hec_auth.add(headers.get("Authorization", ""))
            self.hec.extend(json.loads(line) for line in body.decode().splitlines() if line.strip())
            return 200, "application/json", b'{"text":"Success","code":0}'
        if path == "/_bulk":
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            items = []
            for action, doc in zip(lines[::2], lines[1::2]):
                _id = action["create"]["_id"]
                if _id in self.bulk:
                    items.append({"create": {"_id": _id, "status": 409, "error": {"type": "version_conflict_engine_exception"}}})
                else:
                    self.bulk[_id] = doc
                    items.append({"create": {"_id": _id, "status": 201}})
            errors = any(i["create"]["status"] >= 300 for i in items)
            return 200, "application/json", json.dumps({"errors": errors, "items": items}).encode()
        if path == "/v1/logs":
            from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

            req = logs_service_pb2.ExportLogsServiceRequest()
            req.ParseFromString(body)
            for rl in req.resource_logs:
                self.otlp_resources.append({kv.key: kv.value.string_value for kv in rl.resource.attributes})
                for sl in rl.scope_logs:
                    self.otlp.extend(sl.log_records)
            return 200, "application/x-protobuf", logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
        return 404, "text/plain", b"no such path"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def otlp_attrs(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in record.attributes:
        which = kv.value.WhichOneof("value")
        if which == "array_value":
            out[kv.key] = [v.string_value for v in kv.value.array_value.values]
        else:
            out[kv.key] = getattr(kv.value, which) if which else None
    return out


def test_http_and_otlp_sinks_deliver_every_event(gateway, steward_bin: Path, tmp_path: Path) -> None:
    rx = Collector(fail_first=2)
    token = "hec-e2e-secret-0123456789"
    try:
        base = f"http://127.0.0.1:{rx.port}"
        config = {
            "auth": {"none": True},
            "audit": {
                "sinks": [
                    {"type": "http", "url": f"{base}/json", "format": "json", "batch": 5},
                    {"type": "http", "url": f"{base}/services/collector/event", "format": "splunk_hec", "headers": {"Authorization": "Splunk ${E2E_HEC_TOKEN}"}},
                    {"type": "http", "url": f"{base}/_bulk", "format": "elastic_bulk", "index": "steward-e2e", "batch": 4},
                    {"type": "otlp", "endpoint": base},
                ]
            },
        }
        gw = gateway(config, env={**os.environ, "E2E_HEC_TOKEN": token})
        assert gw.config_path is not None
        Session(gw.url("demo")).call(12)

        def delivered() -> bool:
            want = set(db_rows(gw.db_path))
            with rx.lock:
                return (
                    want <= {e["seq"] for e in rx.json}
                    and want <= {e["event"]["seq"] for e in rx.hec}
                    and want <= {d["seq"] for d in rx.bulk.values()}
                    and want <= {otlp_attrs(r)["steward.seq"] for r in rx.otlp}
                )

        assert wait_for(delivered, timeout=60, interval=0.5), (sinks_status(steward_bin, gw.config_path), gw.log_text()[-3000:])
        rows = db_rows(gw.db_path)
        status = {s["sink"]: s for s in sinks_status(steward_bin, gw.config_path)}
        json_sink = status[f"http:127.0.0.1:{rx.port}/json"]
        assert json_sink["last_error"] and "503" in json_sink["last_error"], json_sink
        assert all(s["lag"] == 0 or s["cursor"] >= max(rows) - 2 for s in status.values()), status

        with rx.lock:
            decision = next(e for e in rx.json if e["kind"] == "decision" and e["tool"] == "lookup_order")
            assert decision["principal"] == "anonymous" and decision["hash"] == rows[decision["seq"]]
            assert rx.hec_auth == {f"Splunk {token}"}
            assert all(e["sourcetype"] == "steward:audit" and e["source"] == "steward" for e in rx.hec)
            assert all(_id == doc["hash"] for _id, doc in rx.bulk.items()), "bulk _id is the row hash"
            assert all("@timestamp" in doc for doc in rx.bulk.values())
            rec = next(r for r in rx.otlp if otlp_attrs(r).get("steward.tool") == "lookup_order")
            attrs = otlp_attrs(rec)
            assert attrs["steward.kind"] in ("decision", "outcome") and attrs["steward.server"] == "demo"
            assert rec.time_unix_nano > 0 and rec.severity_text
            assert rx.otlp_resources[0]["service.name"] == "steward"

        # The HEC token never shows: not in sink status, metrics, or the gateway's log.
        sinks_out = run_steward(steward_bin, "audit", "sinks", "--config", str(gw.config_path))
        metrics = http_request("GET", f"{gw.base}/metrics").body.decode()
        for where, text in [("audit sinks", sinks_out.stdout + sinks_out.stderr), ("metrics", metrics), ("log", gw.log_text())]:
            assert token not in text, f"the HEC token leaked into {where}"
        assert "steward_audit_sink_delivered_total" in metrics
    finally:
        rx.close()


# --------------------------------------------------------------------------- file sink, checkpoints, prune, truncation


def file_seqs(path: Path) -> list[dict[str, Any]]:
    events = []
    for p in sorted(path.parent.glob(path.name + "*")):
        events.extend(json.loads(line) for line in p.read_text().splitlines() if line.strip())
    return events


def test_file_sink_signed_checkpoints_prune_and_truncation(gateway, steward_bin: Path, tmp_path: Path) -> None:
    keydir = tmp_path / "keys"
    key = keydir / "audit-signing.key"
    out = run_steward(steward_bin, "audit", "keygen", "--out", str(key))
    assert out.returncode == 0, out.stderr
    sink_file = tmp_path / "ship" / "steward.jsonl"
    config = {
        "store": {"sqlite": str(tmp_path / "shared" / "steward.db")},
        "auth": {"none": True},
        "audit": {
            "sinks": [{"type": "file", "path": str(sink_file), "rotate": {"size": "4KiB", "keep": 50}}],
            "checkpoint": {"every": 10},
            "signing_key": {"file": str(key)},
            "retention": "90d",
        },
    }
    gw = gateway(config)
    assert gw.config_path is not None
    Session(gw.url("demo")).call(20)
    assert wait_for(
        lambda: set(db_rows(gw.db_path)) <= {e["seq"] for e in file_seqs(sink_file)} and any(e["kind"] == "checkpoint" for e in file_seqs(sink_file)),
        timeout=40,
    ), (sinks_status(steward_bin, gw.config_path), gw.log_text()[-3000:])
    events = file_seqs(sink_file)
    assert len(list(sink_file.parent.glob("steward.jsonl.*"))) >= 1, "4 KiB rotation made numbered files"
    seqs = [e["seq"] for e in events]
    assert len(seqs) == len(set(seqs)), "the file sink writes each event once"
    cp = next(e for e in events if e["kind"] == "checkpoint")
    assert cp["detail"]["checkpoint"]["signature"], cp
    assert gw.stop() == 0

    pub = f"{key}.pub"
    verify = run_steward(steward_bin, "audit", "verify", "--config", str(gw.config_path), "--public-key", pub)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "signed head" in verify.stdout, verify.stdout

    # Retention by hand: everything but the newest row, behind a signed anchor.
    time.sleep(1.2)
    prune = run_steward(steward_bin, "audit", "prune", "--before", "1s", "--config", str(gw.config_path))
    assert prune.returncode == 0, prune.stdout + prune.stderr
    assert "signed anchor" in prune.stdout, prune.stdout
    verify = run_steward(steward_bin, "audit", "verify", "--db", str(gw.db_path), "--public-key", pub)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # A new checkpoint, then the newest rows cut with the sqlite3 CLI: verify names the truncation.
    gw2 = gateway(config)
    Session(gw2.url("demo")).call(3)
    assert gw2.stop() == 0
    cp = run_steward(steward_bin, "audit", "checkpoint", "--config", str(gw.config_path))
    assert cp.returncode == 0 and "signed with key" in cp.stdout, cp.stdout + cp.stderr
    head = max(db_rows(gw.db_path))
    sqlite = shutil.which("sqlite3")
    assert sqlite, "sqlite3 is not installed: run scripts/test-all"
    subprocess.run([sqlite, str(gw.db_path), f"DELETE FROM audit_events WHERE seq > {head - 3}"], check=True, timeout=30)
    verify = run_steward(steward_bin, "audit", "verify", "--db", str(gw.db_path), "--public-key", pub)
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert "TRUNCATED" in verify.stdout and f"ends at seq {head - 3}" in verify.stdout, verify.stdout


# --------------------------------------------------------------------------- proxy


def test_proxy_ships_with_audit_config(steward_bin: Path, raw_process: Callable[..., Any], tmp_path: Path) -> None:
    sink_file = tmp_path / "proxy-audit.jsonl"
    audit_cfg = tmp_path / "audit.yaml"
    audit_cfg.write_text(f"audit:\n  sinks:\n    - {{ type: file, path: {sink_file} }}\n")
    db = tmp_path / "audit.db"
    proc = raw_process([str(steward_bin), "proxy", "--audit-db", str(db), "--audit-config", str(audit_cfg), "--server", "fake", "--", *fake_cmd()], name="proxy")
    proc.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "0"}}})
    assert "result" in proc.recv(timeout=20)
    proc.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    proc.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "meta-echo", "arguments": {"message": "hi"}}})
    assert "result" in proc.recv(timeout=20)
    assert wait_for(lambda: sink_file.exists() and {e["kind"] for e in file_seqs(sink_file)} >= {"decision", "outcome"}, timeout=30), proc.stderr_path.read_text()[-3000:]
    events = file_seqs(sink_file)
    assert any(e["kind"] == "decision" and e["server"] == "fake" and e["tool"] == "meta-echo" for e in events), events
    proc.proc.send_signal(signal.SIGTERM)


# --------------------------------------------------------------------------- syslog over TLS


def make_pki(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256, PEM)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: Any, path: Path) -> None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("steward-e2e-ca")).issuer_name(name("steward-e2e-ca"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    out = {"ca": d / "ca.pem"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for who, usage, san in [
        ("server", ExtendedKeyUsageOID.SERVER_AUTH, x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))])),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, x509.SubjectAlternativeName([x509.DNSName("steward-gateway")])),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder().subject_name(name(f"steward-e2e-{who}")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(san, critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        out[f"{who}_cert"] = d / f"{who}.pem"
        out[f"{who}_key"] = d / f"{who}.key"
        out[f"{who}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key, out[f"{who}_key"])
    return out


class TlsSyslogReceiver:
    """Octet-counted RFC 5425 syslog over TLS, requiring a client certificate from the test CA."""

    def __init__(self, pki: dict[str, Path]) -> None:
        import socket
        import ssl

        self.messages: list[str] = []
        self.peers: list[str] = []
        self.lock = threading.Lock()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["server_cert"], pki["server_key"])
        ctx.load_verify_locations(pki["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.ctx = ctx
        self.stopping = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        import socket
        import ssl

        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                tls = self.ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                conn.close()
                continue
            threading.Thread(target=self.read, args=(tls,), daemon=True).start()

    def read(self, tls: Any) -> None:
        peer = dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]
        with self.lock:
            self.peers.append(peer)
        buf = b""
        tls.settimeout(30)
        try:
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while b" " in buf[:12]:
                    length, rest = buf.split(b" ", 1)
                    n = int(length)
                    if len(rest) < n:
                        break
                    with self.lock:
                        self.messages.append(rest[:n].decode("utf-8"))
                    buf = rest[n:]
        except OSError:
            return

    def close(self) -> None:
        self.stopping = True
        self.sock.close()


def test_syslog_over_mutual_tls(gateway, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    rx = TlsSyslogReceiver(pki)
    try:
        config = {
            "auth": {"none": True},
            "audit": {
                "sinks": [
                    {
                        "type": "syslog",
                        "address": f"tls://127.0.0.1:{rx.port}",
                        "ca": str(pki["ca"]),
                        "cert": str(pki["client_cert"]),
                        "key": str(pki["client_key"]),
                        "facility": "authpriv",
                    }
                ]
            },
        }
        gw = gateway(config)
        Session(gw.url("demo")).call(4)

        def got_all() -> bool:
            with rx.lock:
                seen = {int(m.group(1)) for m in map(SEQ.search, rx.messages) if m}
            return set(db_rows(gw.db_path)) <= seen

        assert wait_for(got_all, timeout=40, interval=0.3), (rx.messages[:3], gw.log_text()[-3000:])
        with rx.lock:
            assert rx.peers and set(rx.peers) == {"steward-e2e-client"}, rx.peers
            first = rx.messages[0]
        # authpriv (10) * 8 + info (6) = 86; RFC 5424 version 1; structured data with the fields.
        assert re.match(r"<8[2-6]>1 \S+ \S+ steward \d+ \S+ \[steward@32473 seq=\"1\" ", first), first
    finally:
        rx.close()
