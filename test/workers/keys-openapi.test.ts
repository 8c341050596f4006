/// <reference types="vite/client" />
// biome-ignore-all lint/suspicious/noExplicitAny: the tests walk a parsed JSON document
/**
 * docs/openapi.json: regenerated from the code and compared with the checked-in file,
 * checked structurally as OpenAPI 3.1 (no validator package is available, so the rules
 * that matter here are written out), and compared with the routes the app really serves.
 */
import { describe, expect, it } from "vitest";
import checkedIn from "../../docs/openapi.json?raw";
import { createApp } from "../../src/app.ts";
import { ERRORS } from "../../src/errors.ts";
import { openApiText } from "../../src/routes/keys-openapi.ts";
import { gateway, uniqueAccount } from "./keys-support.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const JSON_SCHEMA_TYPES = ["string", "number", "integer", "boolean", "object", "array", "null"];
const ERROR_REF = "#/components/schemas/Error";

const isObj = (value: unknown): value is Obj => typeof value === "object" && value !== null && !Array.isArray(value);

/** Resolves a local `#/...` reference, or undefined. */
function resolve(doc: Obj, ref: string): Json | undefined {
  if (!ref.startsWith("#/")) return undefined;
  let node: Json | undefined = doc;
  for (const raw of ref.slice(2).split("/")) {
    const part = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    node = isObj(node) ? node[part] : undefined;
  }
  return node;
}

/** Walks every node, with its JSON pointer. */
function walk(node: Json, visit: (node: Json, pointer: string) => void, pointer = "#"): void {
  visit(node, pointer);
  if (Array.isArray(node)) {
    for (const [i, child] of node.entries()) walk(child, visit, `${pointer}/${i}`);
  } else if (isObj(node)) for (const [key, child] of Object.entries(node)) walk(child, visit, `${pointer}/${key}`);
}

/**
 * The OpenAPI 3.1 rules this document must keep: a list of problems, empty when valid.
 * Covers the document shape, operations, parameters, responses, references and the
 * JSON Schema 2020-12 dialect (3.1 dropped `nullable`).
 */
function structuralProblems(doc: unknown): string[] {
  const problems: string[] = [];
  const fail = (message: string) => problems.push(message);
  if (!isObj(doc)) return ["the document is not an object"];
  if (typeof doc.openapi !== "string" || !/^3\.1\.\d+$/.test(doc.openapi)) fail("openapi must be 3.1.x");
  if (!isObj(doc.info) || typeof doc.info.title !== "string" || typeof doc.info.version !== "string") {
    fail("info.title and info.version are required strings");
  }
  if (!isObj(doc.paths) || Object.keys(doc.paths).length === 0) fail("paths must be a non-empty object");
  const components = isObj(doc.components) ? doc.components : {};
  const schemes = isObj(components.securitySchemes) ? components.securitySchemes : {};
  for (const [name, scheme] of Object.entries(schemes)) {
    if (!isObj(scheme) || !["apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"].includes(String(scheme.type))) {
      fail(`securitySchemes.${name} has no valid type`);
    }
  }
  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries(isObj(doc.paths) ? doc.paths : {})) {
    if (!path.startsWith("/")) fail(`path ${path} must start with /`);
    if (!isObj(item)) {
      fail(`path ${path} is not an object`);
      continue;
    }
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    const operations = Object.entries(item).filter(([key]) => METHODS.includes(key));
    if (operations.length === 0) fail(`path ${path} has no operation`);
    for (const key of Object.keys(item)) {
      if (!METHODS.includes(key) && !["summary", "description", "parameters", "servers", "$ref"].includes(key)) {
        fail(`path ${path} has an unknown field ${key}`);
      }
    }
    for (const [method, op] of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!isObj(op)) {
        fail(`${where} is not an object`);
        continue;
      }
      if (typeof op.operationId !== "string") fail(`${where} has no operationId`);
      else if (operationIds.has(op.operationId)) fail(`${where} repeats operationId ${op.operationId}`);
      else operationIds.add(op.operationId);
      const params = Array.isArray(op.parameters) ? op.parameters.filter(isObj) : [];
      for (const param of params) {
        if (typeof param.name !== "string" || !["query", "header", "path", "cookie"].includes(String(param.in))) {
          fail(`${where} has a parameter without name or a valid in`);
        }
        if (!isObj(param.schema) && !isObj(param.content)) fail(`${where} parameter ${param.name} has no schema`);
        if (param.in === "path" && param.required !== true)
          fail(`${where} path parameter ${param.name} must be required`);
        if (param.in === "path" && !templated.includes(String(param.name)))
          fail(`${where} declares path parameter ${param.name} not in the path`);
      }
      for (const name of templated) {
        if (!params.some((p) => p.in === "path" && p.name === name))
          fail(`${where} does not declare path parameter ${name}`);
      }
      if (op.requestBody !== undefined) {
        const body = op.requestBody;
        if (!isObj(body) || !isObj(body.content) || Object.keys(body.content).length === 0)
          fail(`${where} requestBody has no content`);
        else
          for (const [type, media] of Object.entries(body.content))
            if (!isObj(media) || !isObj(media.schema)) fail(`${where} requestBody ${type} has no schema`);
      }
      if (!Array.isArray(op.security) || op.security.length === 0) fail(`${where} has no security requirement`);
      for (const requirement of Array.isArray(op.security) ? op.security : []) {
        for (const name of Object.keys(isObj(requirement) ? requirement : {})) {
          if (!(name in schemes)) fail(`${where} requires unknown security scheme ${name}`);
        }
      }
      if (!isObj(op.responses) || Object.keys(op.responses).length === 0) {
        fail(`${where} has no responses`);
        continue;
      }
      for (const [status, response] of Object.entries(op.responses)) {
        if (!/^(?:[1-5](?:\d\d|XX)|default)$/.test(status)) fail(`${where} has an invalid status ${status}`);
        if (!isObj(response) || typeof response.description !== "string") {
          fail(`${where} ${status} has no description`);
          continue;
        }
        const json = isObj(response.content) ? response.content["application/json"] : undefined;
        const schema = isObj(json) ? json.schema : undefined;
        if (!isObj(schema)) fail(`${where} ${status} has no application/json schema`);
        else if (/^[45]/.test(status) && schema.$ref !== ERROR_REF)
          fail(`${where} ${status} does not use the error envelope`);
        if (!isObj(response.headers) || !("X-Request-Id" in response.headers))
          fail(`${where} ${status} does not document X-Request-Id`);
      }
      if (!Object.keys(op.responses).some((status) => status.startsWith("2"))) fail(`${where} has no success response`);
    }
  }
  walk(doc, (node, pointer) => {
    if (!isObj(node)) return;
    if (typeof node.$ref === "string" && resolve(doc, node.$ref) === undefined)
      fail(`${pointer} refers to missing ${node.$ref}`);
    if ("nullable" in node && pointer.includes("schema")) fail(`${pointer} uses nullable, which OpenAPI 3.1 removed`);
    if (pointer.includes("schema") && "type" in node && !pointer.endsWith("/properties")) {
      const types = Array.isArray(node.type) ? node.type : [node.type];
      if (!types.every((t) => typeof t === "string" && JSON_SCHEMA_TYPES.includes(t)))
        fail(`${pointer} has an invalid type`);
    }
  });
  return problems;
}

const generated = JSON.parse(openApiText()) as Obj;

describe("docs/openapi.json", () => {
  it("matches what the code generates (run `npm run openapi` after changing a route)", () => {
    expect(JSON.parse(checkedIn)).toStrictEqual(generated);
  });

  it("is structurally valid OpenAPI 3.1", () => {
    expect(structuralProblems(JSON.parse(checkedIn))).toEqual([]);
  });

  it("the structural check catches broken documents", () => {
    const broken = (mutate: (doc: any) => void) => {
      const doc = structuredClone(generated) as any;
      mutate(doc);
      return structuralProblems(doc);
    };
    expect(broken((d) => (d.openapi = "3.0.3"))).toContain("openapi must be 3.1.x");
    expect(
      broken(
        (d) =>
          (d.paths["/v1/keys/{key_id}"].get.responses["404"].content["application/json"].schema = { type: "object" }),
      ),
    ).toContain("GET /v1/keys/{key_id} 404 does not use the error envelope");
    expect(broken((d) => (d.paths["/v1/keys/{key_id}"].delete.parameters = []))).toContain(
      "DELETE /v1/keys/{key_id} does not declare path parameter key_id",
    );
    expect(broken((d) => delete d.components.schemas.ApiKey).join()).toMatch(
      /refers to missing #\/components\/schemas\/ApiKey/,
    );
    expect(
      broken((d) => (d.components.schemas.ApiKey.properties.expires_at = { type: "string", nullable: true })).join(),
    ).toMatch(/nullable/);
    expect(broken((d) => (d.paths["/v1/keys"].get.operationId = "createKey"))).toContain(
      "GET /v1/keys repeats operationId createKey",
    );
    expect(broken((d) => (d.paths["/v1/keys"].post.security = [{ nope: [] }]))).toContain(
      "POST /v1/keys requires unknown security scheme nope",
    );
  });

  it("documents the error envelope with every code and type the gateway answers", () => {
    const error = (generated.components as any).schemas.Error;
    expect(error.required).toEqual(["error"]);
    expect(error.properties.error.required).toEqual(["type", "code", "message"]);
    expect(error.properties.error.properties.code.enum).toEqual(Object.keys(ERRORS));
    expect([...error.properties.error.properties.type.enum].sort()).toEqual(
      [...new Set(Object.values(ERRORS).map((entry) => entry.type))].sort(),
    );
  });

  it("documents the key object exactly (SPEC §5) and the revocation bound", () => {
    const schemas = (generated.components as any).schemas;
    expect(Object.keys(schemas.ApiKey.properties)).toEqual([
      "object",
      "key_id",
      "name",
      "created_at",
      "expires_at",
      "revoked_at",
      "last_used_at",
    ]);
    expect(schemas.ApiKey.properties.last_used_at.description).toMatch(/Precision: 60 s/);
    const revoked = JSON.stringify(schemas.RevokedApiKey);
    expect(revoked).toMatch(/revocation_propagation_seconds/);
    expect(revoked).toMatch(/Worst case, in seconds/);
  });
});

describe("the document and the running routes", () => {
  const documented = () => {
    const ops: string[] = [];
    for (const [path, item] of Object.entries(generated.paths as Obj)) {
      for (const method of Object.keys(item as Obj))
        if (METHODS.includes(method)) ops.push(`${method.toUpperCase()} ${path}`);
    }
    return ops.sort();
  };

  const keyRoutes = () => createApp().routes.filter((route) => /^\/v1\/keys(?:\/|$)/.test(route.path));

  it("lists every route the gateway answers under /v1/keys, and no other", () => {
    const served = keyRoutes()
      .filter((route) => route.method !== "ALL")
      .map((route) => `${route.method} ${route.path.replace(/:([^/]+)/g, "{$1}")}`);
    expect([...new Set(served)].sort()).toEqual(documented());
  });

  it("the gateway answers everything under /v1/keys itself: 401 first, then 405 for undocumented methods, 404 below", async () => {
    const g = gateway();
    const caller = await g.createKey(uniqueAccount());
    const paths = new Map<string, string[]>();
    for (const op of documented()) {
      const [method, template] = op.split(" ") as [string, string];
      paths.set(template, [...(paths.get(template) ?? []), method]);
    }
    for (const [template, methods] of paths) {
      const path = template.replace("{key_id}", "nxf_0123456789abcdef0123456789abcdef");
      const allowed = methods.includes("GET") ? [...methods, "HEAD"] : methods;
      expect((await g.call(methods[0]!, path)).status, `${methods[0]} ${template} without a key`).toBe(401);
      for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].filter((m) => !allowed.includes(m))) {
        const answer = await g.call(method, path, { auth: caller });
        expect(answer.status, `${method} ${template}`).toBe(405);
        expect(answer.headers.get("allow")?.split(", ").sort(), `${method} ${template}`).toEqual([...allowed].sort());
      }
      expect((await g.call("GET", `${path}/undocumented`, { auth: caller })).status, `below ${template}`).toBe(404);
    }
    expect(g.engineCalls).toHaveLength(0);
  });

  it("every documented operation is answered by its handler, with a body the schema describes", async () => {
    const g = gateway();
    const account = uniqueAccount();
    const caller = await g.createKey(account);
    const target = await g.createKey(account);
    const schemas = (generated.components as any).schemas;
    const fields = (ref: string): string[] => {
      const schema = schemas[ref.split("/").pop()!];
      if (schema.allOf)
        return schema.allOf.flatMap((part: any) => (part.$ref ? fields(part.$ref) : Object.keys(part.properties)));
      return Object.keys(schema.properties);
    };
    for (const op of documented()) {
      const [method, template] = op.split(" ") as [string, string];
      const operation = (generated.paths as any)[template][method.toLowerCase()];
      const path = template.replace("{key_id}", target.id);
      const body =
        method === "POST" && template === "/v1/keys" ? { name: "doc check" } : method === "POST" ? {} : undefined;
      // Revoke last, so roll still has a live key to act on.
      if (method === "DELETE") continue;
      const answer = await g.call(method, path, { auth: caller, body });
      const status = Object.keys(operation.responses).find((s) => s.startsWith("2"))!;
      expect(answer.status, op).toBe(Number(status));
      const ref = operation.responses[status].content["application/json"].schema.$ref;
      expect(Object.keys(answer.json).sort(), op).toEqual(fields(ref).sort());
    }
    const revoke = await g.call("DELETE", `/v1/keys/${target.id}`, { auth: caller });
    const ref = (generated.paths as any)["/v1/keys/{key_id}"].delete.responses["200"].content["application/json"].schema
      .$ref;
    expect(Object.keys(revoke.json).sort()).toEqual(fields(ref).sort());
  });
});
