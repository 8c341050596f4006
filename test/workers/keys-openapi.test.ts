/// <reference types="vite/client" />
// biome-ignore-all lint/suspicious/noExplicitAny: the tests walk a parsed JSON document
/**
 * docs/openapi.json: regenerated from the code and compared with the checked-in file, and
 * compared with the routes the app really serves. Its validity as OpenAPI 3.1 is checked
 * by a maintained validator in test/node/openapi-document.test.ts (Ajv needs Node).
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
const generated = JSON.parse(openApiText()) as Obj;

describe("docs/openapi.json", () => {
  it("matches what the code generates (run `npm run openapi` after changing a route)", () => {
    expect(JSON.parse(checkedIn)).toStrictEqual(generated);
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
