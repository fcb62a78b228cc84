#!/usr/bin/env python3
"""A tiny OpenID Connect issuer for the console's browser tests (loopback only).

    oidc_issuer.py --port P --client-id steward-console --users '{"carol": ["steward:viewer"]}'

Serves discovery (/.well-known/openid-configuration), a JWKS (/jwks) with one RSA key, an
authorization page (/authorize) that lists the users as buttons ("sign in as carol"), and a
token endpoint (/token) that checks the client id, the redirect URI, the single-use code and the
PKCE S256 verifier before it signs an ID token (aud = client id, nonce, preferred_username,
roles) and an access token (the same claims). /forge?action=URL&field=value... is a page of this
(other) origin with a form that posts to URL: the tests use it as a cross-origin attacker.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def b64url_uint(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Issuer:
    def __init__(self, base: str, client_id: str, users: dict[str, list[str]]) -> None:
        self.base = base
        self.client_id = client_id
        self.users = users
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.codes: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.log: list[dict] = []

    def discovery(self) -> dict:
        return {
            "issuer": self.base,
            "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token",
            "jwks_uri": f"{self.base}/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict:
        pub = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64url_uint(pub.n), "e": b64url_uint(pub.e)}]}

    def token(self, user: str, nonce: str | None, aud: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.base,
            "sub": f"sub-{user}",
            "aud": aud,
            "iat": now,
            "exp": now + 600,
            "preferred_username": user,
            "roles": self.users.get(user, []),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


class Handler(BaseHTTPRequestHandler):
    issuer: Issuer

    def log_message(self, fmt: str, *args) -> None:  # quiet
        pass

    def reply(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def json(self, status: int, doc: dict) -> None:
        self.reply(status, json.dumps(doc).encode(), "application/json")

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        iss = self.issuer
        if url.path == "/.well-known/openid-configuration":
            return self.json(200, iss.discovery())
        if url.path == "/jwks":
            return self.json(200, iss.jwks())
        if url.path == "/authorize":
            problems = []
            if q.get("response_type") != "code":
                problems.append("response_type must be code")
            if q.get("client_id") != iss.client_id:
                problems.append("unknown client_id")
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                problems.append("PKCE S256 is required")
            if not q.get("state") or not q.get("nonce"):
                problems.append("state and nonce are required")
            if "openid" not in q.get("scope", "").split():
                problems.append("scope must include openid")
            if problems:
                return self.reply(400, ("; ".join(problems)).encode(), "text/plain")
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in q.items()
            )
            buttons = "".join(
                f'<button type="submit" name="user" value="{html.escape(u)}" id="user-{html.escape(u)}">Sign in as {html.escape(u)}</button> '
                for u in iss.users
            )
            page = f"<!doctype html><title>Test issuer</title><h1>Test identity provider</h1><form method='post' action='/authorize'>{hidden}{buttons}</form>"
            return self.reply(200, page.encode(), "text/html; charset=utf-8")
        if url.path == "/forge":
            action = q.pop("action", "")
            fields = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in q.items()
            )
            page = (
                "<!doctype html><title>Not the gateway</title><h1>A page of another origin</h1>"
                f"<form method='post' action='{html.escape(action)}' id='forged'>{fields}"
                "<button type='submit' id='go'>Win a prize</button></form>"
            )
            return self.reply(200, page.encode(), "text/html; charset=utf-8")
        self.reply(404, b"not found", "text/plain")

    def form(self) -> dict[str, str]:
        n = int(self.headers.get("Content-Length") or 0)
        return dict(urllib.parse.parse_qsl(self.rfile.read(min(n, 65536)).decode()))

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        iss = self.issuer
        if url.path == "/authorize":
            f = self.form()
            user = f.get("user", "")
            if user not in iss.users:
                return self.reply(400, b"unknown user", "text/plain")
            code = secrets.token_urlsafe(24)
            with iss.lock:
                iss.codes[code] = {
                    "user": user,
                    "challenge": f.get("code_challenge", ""),
                    "redirect_uri": f.get("redirect_uri", ""),
                    "nonce": f.get("nonce"),
                    "client_id": f.get("client_id"),
                }
            target = f.get("redirect_uri", "") + "?" + urllib.parse.urlencode({"code": code, "state": f.get("state", "")})
            return self.reply(302, b"", "text/plain", {"Location": target})
        if url.path == "/token":
            f = self.form()
            with iss.lock:
                grant = iss.codes.pop(f.get("code", ""), None)  # single use
            iss.log.append({k: v for k, v in f.items() if k != "code_verifier"})
            if grant is None or f.get("grant_type") != "authorization_code":
                return self.json(400, {"error": "invalid_grant"})
            if f.get("client_id") != iss.client_id or grant["client_id"] != iss.client_id:
                return self.json(400, {"error": "invalid_client"})
            if f.get("redirect_uri") != grant["redirect_uri"]:
                return self.json(400, {"error": "invalid_grant", "error_description": "redirect_uri differs"})
            verifier = f.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or digest != grant["challenge"]:
                return self.json(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
            user = grant["user"]
            return self.json(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": 600,
                    "id_token": iss.token(user, grant["nonce"], iss.client_id),
                    "access_token": iss.token(user, None, iss.client_id),
                },
            )
        self.reply(404, b"not found", "text/plain")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--client-id", default="steward-console")
    ap.add_argument("--users", default='{"carol": ["steward:viewer"]}')
    opts = ap.parse_args()
    base = f"http://127.0.0.1:{opts.port}"
    Handler.issuer = Issuer(base, opts.client_id, json.loads(opts.users))
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    print(f"issuer {base}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
