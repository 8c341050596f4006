/**
 * Writes docs/openapi.json from the key routes' definitions (src/routes/keys-openapi.ts),
 * then formats it with the repository's Biome settings so `npm run format` leaves it alone.
 *
 *   npm run openapi            regenerate the file
 *   npm run openapi -- --check exit 1 when the checked-in document differs from the code
 *
 * The comparison is on the parsed document, not its bytes: formatting is not drift.
 * test/workers/keys-openapi.test.ts makes the same check inside workerd.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { openApiText } from "../src/routes/keys-openapi.ts";

const target = fileURLToPath(new URL("../docs/openapi.json", import.meta.url));
const biome = fileURLToPath(new URL("../node_modules/.bin/biome", import.meta.url));

if (process.argv.includes("--check")) {
  let current: unknown;
  try {
    current = JSON.parse(readFileSync(target, "utf8"));
  } catch {
    current = undefined;
  }
  if (!isDeepStrictEqual(current, JSON.parse(openApiText()))) {
    console.error("docs/openapi.json differs from the code; run `npm run openapi` and commit the result.");
    process.exit(1);
  }
  console.log("docs/openapi.json matches the code.");
} else {
  writeFileSync(target, openApiText());
  if (existsSync(biome)) execFileSync(biome, ["format", "--write", target], { stdio: "ignore" });
  console.log("wrote docs/openapi.json");
}
