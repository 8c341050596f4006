#!/usr/bin/env bash
# Holds the engine-side verification recipes (examples/verify-*, docs/engine-integration.md) to
# the contract: each recipe is a small HTTP engine; identity tokens are made by the gateway's own
# signing code (examples/identity-tokens.ts), and every recipe whose toolchain is present must
# answer the good ones with the right identity and every bad one — a replayed jti included — with
# exactly the gateway's 401 of SPEC §3, its reason only in the engine's log (a crash is not a
# rejection). Missing toolchains are installed from Debian when running as root with
# CI=true, and skipped with the reason otherwise. Exit status 1 when any recipe misjudges a token.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
engines=()
cleanup() {
  for pid in "${engines[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Node 22 runs the .ts files directly; the `node` devDependency provides it outside npm scripts too.
node=node
[ -x node_modules/.bin/node ] && node=node_modules/.bin/node

M2_REPO=${M2_REPO:-$HOME/.m2/repository}
GO_JOSE_GOPATH=${GO_JOSE_GOPATH:-/usr/share/gocode}

failures=0
summary=()
apt_updated=false

now_ms() { date +%s%3N; }

# Installs Debian packages only where that is expected of a script: as root in CI.
apt_install() {
  [ "$(id -u)" = 0 ] && [ "${CI:-}" = true ] && command -v apt-get >/dev/null || return 1
  echo "  installing $* (apt-get, CI)"
  if ! $apt_updated; then
    apt-get update -qq >/dev/null || return 1
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

skip() {
  echo "  SKIP $1: $2"
  summary+=("$1: skipped ($2)")
}

# header_value FILE NAME — the value(s) of response header NAME in a curl -D dump (one per line).
header_value() { tr -d '\r' <"$1" | grep -i "^$2:" | sed 's/^[^:]*:[[:space:]]*//' || true; }

# run_cases NAME COMMAND... — starts the recipe's engine (COMMAND --jwks FILE, which prints
# `listening http://127.0.0.1:PORT` on its first stdout line) and sends it every case as a real
# HTTP request with exactly the case's request target, in order, with fresh tokens (they live
# 60 s, so they are made right before each recipe runs). A good token must get 200 and its
# identity; every bad one, a replay included, exactly the gateway's 401 (body, WWW-Authenticate,
# Cache-Control, Content-Type) and one `rejected: <reason>` line on the engine's stderr.
run_cases() {
  local name=$1
  shift
  local dir="$work/$name" started ok=0 bad=0
  started=$(now_ms)
  "$node" examples/identity-tokens.ts "$dir"
  local body challenge
  body=$(cat "$dir/unauthorized-body.txt")
  challenge=$(cat "$dir/unauthorized-challenge.txt")
  "$@" --jwks "$dir/jwks.json" >"$dir/stdout" 2>"$dir/stderr" &
  local pid=$! base="" waited=0
  engines+=("$pid")
  # A JVM on a busy machine can take several seconds to listen.
  while [ -z "$base" ] && [ "$waited" -lt 600 ] && kill -0 "$pid" 2>/dev/null; do
    base=$(sed -n 's|^listening \(http://127\.0\.0\.1:[0-9][0-9]*\)$|\1|p' "$dir/stdout" | head -n 1)
    [ -n "$base" ] || sleep 0.1
    waited=$((waited + 1))
  done
  if [ -z "$base" ]; then
    echo "  FAIL $name never listened: $(tail -n 5 "$dir/stderr")"
    kill "$pid" 2>/dev/null || true
    summary+=("$name: did not start")
    failures=$((failures + 1))
    return
  fi
  while IFS=$'\t' read -r case expect method target why; do
    local status reasons_before reasons_after problem=""
    reasons_before=$(grep -c '^rejected:' "$dir/stderr" || true)
    status=$(curl -sS --path-as-is --max-time 10 --request-target "$target" -X "$method" \
      -H "X-Nixflex-Identity: $(cat "$dir/tokens/$case.jwt")" \
      -o "$dir/body" -D "$dir/headers" -w '%{http_code}' "$base/" 2>"$dir/curl.err") ||
      status="no answer ($(cat "$dir/curl.err"))"
    reasons_after=$(grep -c '^rejected:' "$dir/stderr" || true)
    if [ "$expect" = accept ]; then
      if [ "$status" != 200 ]; then
        problem="status $status, $(grep '^rejected:' "$dir/stderr" | tail -n 1)"
      elif [ "$(cat "$dir/body")" != "$(cat "$dir/identities/$case.json")" ]; then
        problem="wrong identity: $(cat "$dir/body")"
      fi
    else
      if [ "$status" != 401 ]; then
        problem="status $status, body $(head -c 200 "$dir/body")"
      elif [ "$(cat "$dir/body")" != "$body" ]; then
        problem="not the gateway's 401 body: $(head -c 200 "$dir/body")"
      elif [ "$(header_value "$dir/headers" www-authenticate)" != "$challenge" ] ||
        [ "$(header_value "$dir/headers" cache-control)" != no-store ] ||
        [ "$(header_value "$dir/headers" content-type)" != application/json ]; then
        problem="not the gateway's 401 headers: $(tr -d '\r' <"$dir/headers" | tr '\n' '|')"
      elif [ "$reasons_after" -ne $((reasons_before + 1)) ]; then
        problem="no 'rejected: <reason>' line on stderr"
      fi
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      problem="the engine crashed: $(tail -n 3 "$dir/stderr")"
    fi
    if [ -z "$problem" ]; then
      ok=$((ok + 1))
    else
      bad=$((bad + 1))
      echo "  FAIL $name misjudged [$case, $expect: $why]: $problem"
      kill -0 "$pid" 2>/dev/null || break
    fi
  done <"$dir/cases.tsv"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local took=$(($(now_ms) - started))
  echo "  $name: $ok/$((ok + bad)) cases right in ${took} ms"
  summary+=("$name: $ok/$((ok + bad)) cases right (${took} ms)")
  failures=$((failures + bad))
}

if ! command -v curl >/dev/null && ! apt_install curl; then
  echo "check-recipes needs curl to send the recipes real HTTP requests (apt install curl)" >&2
  exit 1
fi

echo "== typescript (the shipped verifier, reference for the cases)"
run_cases typescript "$node" examples/verify-typescript/verify-identity.ts

echo "== python (PyJWT)"
python_ok() { "$1" -c 'import jwt, cryptography, sys; sys.exit(tuple(map(int, jwt.__version__.split(".")[:2])) < (2, 6))' 2>/dev/null; }
python=""
for candidate in /usr/bin/python3 python3; do
  if command -v "$candidate" >/dev/null && python_ok "$candidate"; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ] && apt_install python3-jwt python3-cryptography && python_ok /usr/bin/python3; then
  python=/usr/bin/python3
fi
if [ -n "$python" ]; then
  echo "  $("$python" -c 'import jwt, cryptography; print(f"PyJWT {jwt.__version__}, cryptography {cryptography.__version__}")')"
  run_cases python "$python" examples/verify-python/verify_identity.py
else
  skip python "no python3 with PyJWT >= 2.6 and cryptography (apt install python3-jwt python3-cryptography, or pip install 'pyjwt[crypto]')"
fi

echo "== go (go-jose v2, GOPATH mode, offline)"
go_ok() { command -v go >/dev/null && [ -d "$GO_JOSE_GOPATH/src/gopkg.in/square/go-jose.v2" ]; }
if go_ok || { apt_install golang-go golang-gopkg-square-go-jose.v2-dev && go_ok; }; then
  echo "  $(go version)"
  started=$(now_ms)
  GO111MODULE=off GOFLAGS= GOPATH="$GO_JOSE_GOPATH" go build -o "$work/verify-go" ./examples/verify-go
  echo "  built in $(($(now_ms) - started)) ms"
  run_cases go "$work/verify-go"
else
  skip go "no Go toolchain with gopkg.in/square/go-jose.v2 under $GO_JOSE_GOPATH (apt install golang-go golang-gopkg-square-go-jose.v2-dev)"
fi

echo "== java (jose4j)"
jose4j="$M2_REPO/org/bitbucket/b_c/jose4j/0.9.6/jose4j-0.9.6.jar"
slf4j="$M2_REPO/org/slf4j/slf4j-api/1.7.36/slf4j-api-1.7.36.jar"
slf4j_nop="$M2_REPO/org/slf4j/slf4j-nop/1.7.36/slf4j-nop-1.7.36.jar"
if ! command -v javac >/dev/null; then
  skip java "no JDK 17+ (javac)"
elif [ ! -f "$jose4j" ] || [ ! -f "$slf4j" ]; then
  skip java "jose4j 0.9.6 / slf4j-api 1.7.36 not in $M2_REPO, and Debian packages no JOSE library for Java; with network: mvn -f examples/verify-java/pom.xml compile"
else
  echo "  $(javac -version 2>&1)"
  classes="$work/java-classes"
  runtime="$jose4j:$slf4j"
  [ -f "$slf4j_nop" ] && runtime="$runtime:$slf4j_nop"
  started=$(now_ms)
  # Build with the pom when Maven can resolve it offline (it checks the coordinates engines copy);
  # otherwise compile the one source file directly.
  if command -v mvn >/dev/null &&
    mvn -o -q -f examples/verify-java/pom.xml compile -DskipTests >"$work/mvn.log" 2>&1; then
    classes=examples/verify-java/target/classes
    echo "  built with mvn -o (pom.xml) in $(($(now_ms) - started)) ms"
  else
    mkdir -p "$classes"
    javac -d "$classes" -cp "$runtime" examples/verify-java/src/main/java/VerifyIdentity.java
    echo "  built with javac in $(($(now_ms) - started)) ms (mvn offline could not resolve the pom's plugins)"
  fi
  run_cases java java -cp "$classes:$runtime" VerifyIdentity
fi

echo
echo "== summary"
for line in "${summary[@]}"; do echo "  $line"; done
if [ "$failures" -gt 0 ]; then
  echo "$failures case(s) misjudged: a recipe accepts a bad token or rejects a good one." >&2
  exit 1
fi
echo "every recipe that ran judged every case right."
