#!/usr/bin/env bash
# Holds the engine-side verification recipes (examples/verify-*, docs/engine-integration.md) to
# the contract: identity tokens are made by the gateway's own signing code
# (examples/identity-tokens.ts), and every recipe whose toolchain is present must accept the
# good ones with the right identity and reject every bad one with a clean "rejected:" (a crash
# is not a rejection). Missing toolchains are installed from Debian when running as root with
# CI=true, and skipped with the reason otherwise. Exit status 1 when any recipe misjudges a token.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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

# run_cases NAME COMMAND... — runs COMMAND --jwks … --method M --path P < token for every case,
# with fresh tokens (they live 60 s, so they are made right before each recipe runs).
run_cases() {
  local name=$1
  shift
  local dir="$work/$name" started ok=0 bad=0
  started=$(now_ms)
  "$node" examples/identity-tokens.ts "$dir"
  local expected method path
  expected=$(cat "$dir/identity.json")
  read -r method path <"$dir/request.txt"
  while IFS=$'\t' read -r case expect why; do
    local out rc
    set +e
    out=$("$@" --jwks "$dir/jwks.json" --method "$method" --path "$path" <"$dir/tokens/$case.jwt" 2>"$dir/stderr")
    rc=$?
    set -e
    local reason
    reason=$(grep -m1 '^rejected:' "$dir/stderr" || true)
    if [ "$expect" = accept ]; then
      if [ "$rc" -eq 0 ] && [ "$out" = "$expected" ]; then
        ok=$((ok + 1))
      else
        bad=$((bad + 1))
        echo "  FAIL $name rejected a good token [$case: $why]: exit $rc ${reason:-$(tail -n 3 "$dir/stderr")} ${out:+stdout: $out}"
      fi
    else
      if [ "$rc" -eq 1 ] && [ -n "$reason" ] && [ -z "$out" ]; then
        ok=$((ok + 1))
      else
        bad=$((bad + 1))
        echo "  FAIL $name did not cleanly reject [$case: $why]: exit $rc, stdout '${out}', stderr: $(tail -n 3 "$dir/stderr")"
      fi
    fi
  done <"$dir/cases.tsv"
  local took=$(($(now_ms) - started))
  echo "  $name: $ok/$((ok + bad)) cases right in ${took} ms"
  summary+=("$name: $ok/$((ok + bad)) cases right (${took} ms)")
  failures=$((failures + bad))
}

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
