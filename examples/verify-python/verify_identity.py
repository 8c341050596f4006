#!/usr/bin/env python3
"""A minimal engine that trusts the Nixflex gateway's identity header (X-Nixflex-Identity), with PyJWT.

    pip install "pyjwt[crypto]>=2.6"     # Debian/Ubuntu: apt install python3-jwt python3-cryptography
    python3 verify_identity.py --jwks jwks.json [--port 0]

Serves every request: 200 {"account_id":…,"key_id":…,"request_id":…} when the header is valid
for this method and path and its jti is new, otherwise exactly the gateway's 401 (SPEC §3) with
the reason on stderr only (`rejected: …`). First line on stdout: `listening http://127.0.0.1:PORT`.
In your engine, call `verify_identity()` from the request middleware with the method and the
path as it arrived (`request_target_path`: not percent-decoded — ASGI scope["raw_path"],
gunicorn's RAW_URI without the query), and answer `UNAUTHORIZED_BODY` on IdentityError.
docs/engine-integration.md explains each check.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt  # PyJWT

IDENTITY_TYP = "nixflex-identity+jwt"
# The algorithm is pinned per key (the JWK's "alg"), never taken from the token alone.
ALLOWED_ALGS = {"EdDSA", "ES256"}
MAX_LIFETIME_S = 60
LEEWAY_S = 5
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti", "key_id", "htm", "htu"]
# decode_complete also returns the verified header (typ); PyJWT 2.6 has it only on the class.
_PYJWT = jwt.PyJWT()


# The gateway's 401 (SPEC §3), byte for byte: the client never learns which check failed.
UNAUTHORIZED_BODY = (b'{"error":{"type":"authentication_error","code":"invalid_api_key",'
                     b'"message":"Invalid or missing API key"}}')
UNAUTHORIZED_HEADERS = {
    "Content-Type": "application/json",
    "WWW-Authenticate": 'Bearer realm="api.nixflex.com"',
    "Cache-Control": "no-store",
}
# Absolute-form request target (RFC 9112 §3.2.2): scheme "://" authority, then the path.
_ABSOLUTE_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


class IdentityError(Exception):
    """The header is missing or does not prove this request came through the gateway."""


class ReplayGuard:
    """Remembers each used jti until its token expires (plus the skew), at most `max_entries`
    at once (the oldest is dropped first), so a captured header works for one request only.
    Several engine instances need one shared store instead, e.g. Redis
    `SET nixflex:jti:<jti> 1 PXAT <expires_ms> NX` (first use when it answers OK)."""

    def __init__(self, max_entries: int = 100_000):
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def claim(self, jti: str, expires_at: float) -> bool:
        now = time.time()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) <= now:
                self._seen.popitem(last=False)
            if self._seen.get(jti, 0) > now:
                return False
            self._seen.pop(jti, None)
            while len(self._seen) >= self._max:
                self._seen.popitem(last=False)
            self._seen[jti] = expires_at
            return True


def request_target_path(target: str) -> str:
    """The path of a raw request target without the query, as the gateway signed it:
    `//v1/reports?x` -> `//v1/reports`; `http://host/v1/reports` -> `/v1/reports`."""
    if not target.startswith("/"):
        match = _ABSOLUTE_FORM.match(target)
        if match:
            target = target[match.end():]
            if target == "" or target.startswith("?"):
                target = "/" + target
    return target.split("?", 1)[0]


class GatewayKeys:
    """The gateway's public keys by kid. In production, load
    https://api.nixflex.com/.well-known/jwks.json (e.g. jwt.PyJWKClient(url, lifespan=600))
    and refetch when a token names an unknown kid: that is how key rotation reaches you."""

    def __init__(self, jwks: dict):
        self._keys = {}
        for jwk in jwks.get("keys", []):
            alg = jwk.get("alg")
            if alg in ALLOWED_ALGS and isinstance(jwk.get("kid"), str):
                self._keys[jwk["kid"]] = (alg, jwt.PyJWK.from_dict(jwk, algorithm=alg).key)

    def get(self, kid):
        return self._keys.get(kid)


def verify_identity(token: str | None, keys: GatewayKeys, method: str, path: str, replay: ReplayGuard | None,
                    issuer: str = "https://api.nixflex.com", audience: str = "nixflex-engine") -> dict:
    """Returns the caller's identity, or raises IdentityError. `path` excludes the query.
    `replay` is checked last, so only a token valid for this very request uses up its jti."""
    if not token or "," in token:
        raise IdentityError("no single identity header")
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as error:
        raise IdentityError(f"not a JWS: {error}") from None
    entry = keys.get(kid) if isinstance(kid, str) else None
    if entry is None:
        raise IdentityError("unknown kid (refetch the JWKS once, then reject)")
    alg, key = entry
    try:
        decoded = _PYJWT.decode_complete(
            token,
            key=key,
            algorithms=[alg],
            issuer=issuer,
            audience=audience,
            leeway=LEEWAY_S,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as error:
        raise IdentityError(f"invalid token: {error}") from None
    header, claims = decoded["header"], decoded["payload"]
    if header.get("typ") != IDENTITY_TYP:
        raise IdentityError("wrong typ")
    if not all(isinstance(claims[name], str) for name in ("sub", "jti", "key_id", "htm", "htu")):
        raise IdentityError("sub, jti, key_id, htm and htu must be strings")
    if claims["exp"] - claims["iat"] > MAX_LIFETIME_S:
        raise IdentityError("token lives longer than 60 s")
    if claims["htm"] != method.upper() or claims["htu"] != path:
        raise IdentityError("token was issued for another method or path")
    if replay is not None and not replay.claim(claims["jti"], claims["exp"] + LEEWAY_S):
        raise IdentityError("jti already used: a replayed header")
    return {"account_id": claims["sub"], "key_id": claims["key_id"], "request_id": claims["jti"]}


def engine_handler(keys: GatewayKeys, replay: ReplayGuard, issuer: str, audience: str):
    """An http.server handler that verifies every request before anything else runs."""

    class Engine(BaseHTTPRequestHandler):
        def handle_any(self):
            values = self.headers.get_all("x-nixflex-identity") or []
            token = values[0] if len(values) == 1 else None  # none, or two: refused alike
            # The raw target from the request line: http.server rewrites a leading "//" in self.path.
            target = self.requestline.split(" ")[1]
            try:
                identity = verify_identity(token, keys, self.command, request_target_path(target), replay,
                                           issuer, audience)
            except IdentityError as error:
                print(f"rejected: {error}", file=sys.stderr, flush=True)
                self.answer(401, UNAUTHORIZED_HEADERS, UNAUTHORIZED_BODY)
                return
            body = json.dumps(identity, separators=(",", ":")).encode()
            self.answer(200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, body)

        def answer(self, status: int, headers: dict, body: bytes):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any

        def log_message(self, format, *args):  # no access log: stderr carries only the refusals' reasons
            pass

    return Engine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jwks", required=True, help="path to the gateway's JWKS document")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--issuer", default="https://api.nixflex.com")
    parser.add_argument("--audience", default="nixflex-engine")
    args = parser.parse_args()

    with open(args.jwks, encoding="utf-8") as f:
        keys = GatewayKeys(json.load(f))
    server = ThreadingHTTPServer(("127.0.0.1", args.port),
                                 engine_handler(keys, ReplayGuard(), args.issuer, args.audience))
    print(f"listening http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
