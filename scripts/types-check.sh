#!/usr/bin/env bash
# Fails when worker-configuration.d.ts no longer matches wrangler.toml. `wrangler types --check`
# compares only the hash in the file's header line, so a hand edit of the body would pass it;
# this regenerates the file next to the real one (the `import("./src/index")` path is relative
# to the output) and compares every byte. The secret's name comes from `secrets.required` in
# wrangler.toml, so a developer's .dev.vars does not change the result.
set -euo pipefail
cd "$(dirname "$0")/.."
unset CLOUDFLARE_ENV
export WRANGLER_SEND_METRICS=false

target=worker-configuration.d.ts
fresh=.worker-configuration.check.d.ts
trap 'rm -f "$fresh"' EXIT

npx wrangler types --include-runtime=false "$fresh" >/dev/null
# The header records the command line; drop the output path so it reads as `npm run types` wrote it.
sed -i "2s| $fresh\`|\`|" "$fresh"

if ! diff -u "$target" "$fresh"; then
  echo "$target is out of date with wrangler.toml: run \`npm run types\` and commit the result." >&2
  exit 1
fi
echo "$target matches wrangler.toml."
