#!/usr/bin/env python3
"""Verifies a Nixflex gateway identity header (X-Nixflex-Identity) with PyJWT.

    pip install "pyjwt[crypto]>=2.6"     # Debian/Ubuntu: apt install python3-jwt python3-cryptography
    python3 verify_identity.py --jwks jwks.json --method POST --path /v1/agents < token

Prints {"account_id":…,"key_id":…,"request_id":…} and exits 0 when the token is valid for
that request; prints the reason on stderr and exits 1 otherwise. In an engine, call
`verify_identity()` from your request middleware with the method and the path as it arrived
(not percent-decoded: ASGI scope["raw_path"], gunicorn's RAW_URI without the query), and
answer 401 on IdentityError. docs/engine-integration.md explains each check.
"""
from __future__ import annotations

import argparse
import json
import sys

import jwt  # PyJWT

IDENTITY_TYP = "nixflex-identity+jwt"
# The algorithm is pinned per key (the JWK's "alg"), never taken from the token alone.
ALLOWED_ALGS = {"EdDSA", "ES256"}
MAX_LIFETIME_S = 60
LEEWAY_S = 5
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti", "key_id", "htm", "htu"]
# decode_complete also returns the verified header (typ); PyJWT 2.6 has it only on the class.
_PYJWT = jwt.PyJWT()


class IdentityError(Exception):
    """The header is missing or does not prove this request came through the gateway."""


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


def verify_identity(token: str | None, keys: GatewayKeys, method: str, path: str,
                    issuer: str = "https://api.nixflex.com", audience: str = "nixflex-engine") -> dict:
    """Returns the caller's identity, or raises IdentityError. `path` excludes the query."""
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
    return {"account_id": claims["sub"], "key_id": claims["key_id"], "request_id": claims["jti"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jwks", required=True, help="path to the gateway's JWKS document")
    parser.add_argument("--method", required=True)
    parser.add_argument("--path", required=True, help="request path without the query")
    parser.add_argument("--issuer", default="https://api.nixflex.com")
    parser.add_argument("--audience", default="nixflex-engine")
    parser.add_argument("--token", help="the header value; read from stdin when absent")
    args = parser.parse_args()

    with open(args.jwks, encoding="utf-8") as f:
        keys = GatewayKeys(json.load(f))
    token = args.token if args.token is not None else sys.stdin.read().strip()
    try:
        identity = verify_identity(token, keys, args.method, args.path, args.issuer, args.audience)
    except IdentityError as error:
        print(f"rejected: {error}", file=sys.stderr)
        return 1
    print(json.dumps(identity, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
