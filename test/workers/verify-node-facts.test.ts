/**
 * Request facts for node:http engines (src/verify/node.ts): the path the verifier compares is
 * exactly the `htu` the gateway signs (`new URL(public request).pathname`, src/proxy/forward.ts),
 * recovered from the raw request target the engine receives, whatever its form.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nodeRequestFacts, requestTargetPath } from "../../src/verify/node.ts";

/** What the gateway signs as `htu` for a public request with this target. */
const signedPath = (target: string) => new URL(`https://api.nixflex.com${target}`).pathname;

describe("requestTargetPath", () => {
  it.each([
    ["/v1/reports", "/v1/reports"],
    ["/v1/reports?limit=1&x=/y", "/v1/reports"],
    ["//v1/reports", "//v1/reports"],
    ["//v1//reports//?q", "//v1//reports//"],
    ["/v1/caf%C3%A9", "/v1/caf%C3%A9"],
    ["/v1/a%2Fb", "/v1/a%2Fb"],
    ["/v1/a%2fb", "/v1/a%2fb"],
    ["/v1/%2e%2e/keys", "/v1/%2e%2e/keys"],
    ["/v1/a%3Fb?c", "/v1/a%3Fb"],
    ["/v1/100%25", "/v1/100%25"],
    ["/", "/"],
    ["/?", "/"],
    ["http://engine.internal/v1/reports?x", "/v1/reports"],
    ["http://engine.internal//v1/reports", "//v1/reports"],
    ["https://user@engine.internal:8443/v1/caf%C3%A9?x", "/v1/caf%C3%A9"],
    ["HTTP://engine.internal", "/"],
    ["http://engine.internal?x", "/"],
    // Not a path the gateway ever signs: returned as is, so it matches no token.
    ["*", "*"],
    ["engine.internal:443", "engine.internal:443"],
    ["v1/reports", "v1/reports"],
  ])("reads %j as path %j", (target, path) => {
    expect(requestTargetPath(target)).toBe(path);
  });

  it("does not read //host/path as a host, the way new URL(target, base) does", () => {
    expect(new URL("//v1/reports", "http://engine.invalid").pathname).toBe("/reports");
    expect(requestTargetPath("//v1/reports")).toBe("//v1/reports");
  });

  it("recovers the signed htu from any forwarded target, origin-form or absolute-form (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string(), fc.constantFrom("/", "//", "%2F", "%C3%A9", "..", ".", "?", "#", "\\")), {
          maxLength: 8,
        }),
        (parts) => {
          const url = new URL(`https://api.nixflex.com/${parts.join("")}`);
          // The gateway forwards ENGINE_URL + pathname + search and signs the pathname.
          const forwarded = url.pathname + url.search;
          expect(requestTargetPath(forwarded)).toBe(url.pathname);
          expect(requestTargetPath(`http://engine.internal:8788${forwarded}`)).toBe(url.pathname);
          expect(signedPath(forwarded)).toBe(url.pathname);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe("nodeRequestFacts", () => {
  it("takes method, raw path and the identity header from an IncomingMessage-like request", () => {
    expect(
      nodeRequestFacts({ method: "DELETE", url: "//v1/keys/a%2Fb?x=1", headers: { "x-nixflex-identity": "t" } }),
    ).toEqual({ method: "DELETE", path: "//v1/keys/a%2Fb", token: "t" });
  });

  it("joins repeated identity headers, which the verifier refuses, and reports a missing one as null", () => {
    expect(nodeRequestFacts({ url: "/", headers: { "x-nixflex-identity": ["a", "b"] } }).token).toBe("a,b");
    expect(nodeRequestFacts({ url: "/", headers: {} })).toEqual({ method: "GET", path: "/", token: null });
  });
});
