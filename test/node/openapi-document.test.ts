/**
 * docs/openapi.json against the official OpenAPI 3.1 schemas, with a maintained validator
 * (@seriousme/openapi-schema-validator, which compiles them with Ajv — code generation
 * workerd forbids, hence a Node test), plus the rules this API adds: every operation needs
 * the key pair, every error answer is the one envelope, every answer documents
 * X-Request-Id, and every reference resolves.
 */
// biome-ignore-all lint/suspicious/noExplicitAny: the tests walk a parsed JSON document
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";

const checkedIn = JSON.parse(readFileSync(new URL("../../docs/openapi.json", import.meta.url), "utf8"));
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const ERROR_REF = "#/components/schemas/Error";

async function officialProblems(doc: unknown): Promise<unknown[]> {
  const result = await new Validator().validate(structuredClone(doc) as Record<string, unknown>);
  return result.valid ? [] : [result.errors].flat();
}

/** Every `$ref` of the document that does not resolve inside it. */
function danglingRefs(doc: any): string[] {
  const missing: string[] = [];
  const visit = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (typeof node === "object" && node !== null) {
      const ref = (node as { $ref?: unknown }).$ref;
      if (typeof ref === "string") {
        const target = ref
          .slice(2)
          .split("/")
          .reduce((at: any, part) => at?.[part.replaceAll("~1", "/").replaceAll("~0", "~")], doc);
        if (!ref.startsWith("#/") || target === undefined) missing.push(ref);
      }
      Object.values(node).forEach(visit);
    }
  };
  visit(doc);
  return missing;
}

/** What this API promises of every operation, beyond what OpenAPI itself requires. */
function houseRuleProblems(doc: any): string[] {
  const problems: string[] = [];
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item).filter(([key]) => METHODS.includes(key))) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!Array.isArray(op.security) || op.security.length === 0)
        problems.push(`${where} has no security requirement`);
      for (const [status, response] of Object.entries<any>(op.responses)) {
        const schema = response.content?.["application/json"]?.schema;
        if (/^[45]/.test(status) && schema?.$ref !== ERROR_REF) problems.push(`${where} ${status} is not the envelope`);
        if (response.headers?.["X-Request-Id"] === undefined) problems.push(`${where} ${status} lacks X-Request-Id`);
      }
    }
  }
  return [...problems, ...danglingRefs(doc).map((ref) => `dangling ${ref}`)];
}

const broken = (mutate: (doc: any) => void) => {
  const doc = structuredClone(checkedIn);
  mutate(doc);
  return doc;
};

describe("docs/openapi.json", () => {
  it("is valid OpenAPI 3.1 by the official schemas", async () => {
    expect(await officialProblems(checkedIn)).toEqual([]);
    expect(checkedIn.openapi).toMatch(/^3\.1\.\d+$/);
  });

  it("keeps the API's own rules: key pair required, one error envelope, X-Request-Id, refs resolve", () => {
    expect(houseRuleProblems(checkedIn)).toEqual([]);
  });

  it("the validator and the rules catch broken documents", async () => {
    expect(await officialProblems(broken((d) => delete d.info))).not.toEqual([]);
    expect(await officialProblems(broken((d) => (d.paths["/v1/keys"].get.responses = "none")))).not.toEqual([]);
    expect(
      await officialProblems(broken((d) => (d.paths["/v1/keys/{key_id}"].get.parameters[0].in = "body"))),
    ).not.toEqual([]);
    const envelope = broken(
      (d) =>
        (d.paths["/v1/keys/{key_id}"].get.responses["404"].content["application/json"].schema = { type: "object" }),
    );
    expect(houseRuleProblems(envelope)).toContain("GET /v1/keys/{key_id} 404 is not the envelope");
    expect(houseRuleProblems(broken((d) => delete d.components.schemas.ApiKey)).join()).toMatch(
      /dangling #\/components\/schemas\/ApiKey/,
    );
    expect(houseRuleProblems(broken((d) => (d.paths["/v1/keys"].post.security = [])))).toContain(
      "POST /v1/keys has no security requirement",
    );
  });
});
