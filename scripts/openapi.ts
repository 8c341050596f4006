/**
 * Writes docs/openapi.json from the key routes' definitions (src/routes/keys-openapi.ts).
 *
 *   npm run openapi            regenerate the file
 *   npm run openapi -- --check exit 1 when the checked-in file differs from the code
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { openApiText } from "../src/routes/keys-openapi.ts";

const target = fileURLToPath(new URL("../docs/openapi.json", import.meta.url));
const text = openApiText();

if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {
    // A missing file is drift too.
  }
  if (current !== text) {
    console.error("docs/openapi.json differs from the code; run `npm run openapi` and commit the result.");
    process.exit(1);
  }
  console.log("docs/openapi.json matches the code.");
} else {
  writeFileSync(target, text);
  console.log(`wrote docs/openapi.json (${text.length} bytes)`);
}
