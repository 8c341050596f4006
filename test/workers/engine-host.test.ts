/**
 * The engine's hostname never reaches a client (SPEC §4), whichever response header names it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fitResponseHeaders, HOP_BY_HOP } from "../../src/proxy/headers.ts";

const context = {
  requestId: "req-1",
  engineOrigin: "https://engine.internal.nixflex.com",
  engineHostname: "engine.internal.nixflex.com",
  publicOrigin: "https://api.nixflex.com",
};

const through = (headers: [string, string][]) => {
  const fitted = new Headers(headers);
  fitResponseHeaders(fitted, context);
  return fitted;
};

describe("engine hostname scrubbing in response headers", () => {
  it.each([
    ["location", "https://engine.internal.nixflex.com/v1/calls/1?x=1", "https://api.nixflex.com/v1/calls/1?x=1"],
    ["location", "http://ENGINE.internal.nixflex.com:8443/a#f", "https://api.nixflex.com/a#f"],
    ["location", "/v1/calls/1", "/v1/calls/1"],
    ["location", "https://example.com/elsewhere", "https://example.com/elsewhere"],
    ["content-location", "https://engine.internal.nixflex.com/v1/x", "https://api.nixflex.com/v1/x"],
    [
      "link",
      '<https://engine.internal.nixflex.com/v1/agents?page=2>; rel="next"',
      '<https://api.nixflex.com/v1/agents?page=2>; rel="next"',
    ],
    ["refresh", "5; url=http://engine.internal.nixflex.com:8080/done", "5; url=https://api.nixflex.com/done"],
    ["set-cookie", "sid=1; Domain=engine.internal.nixflex.com; Path=/; Secure", "sid=1; Path=/; Secure"],
    ["set-cookie", "sid=1; Path=/; domain=.ENGINE.internal.nixflex.com", "sid=1; Path=/"],
    ["x-upstream", "served by https://engine.internal.nixflex.com", "served by https://api.nixflex.com"],
  ])("rewrites %s: %s", (name, value, expected) => {
    const out = through([[name, value]]);
    expect(out.get(name)).toBe(expected);
  });

  it.each([
    ["server", "engine.internal.nixflex.com"],
    ["via", "1.1 ENGINE.INTERNAL.NIXFLEX.COM"],
    ["x-debug", "host=engine.internal.nixflex.com port=8443"],
    // Found by the property below: a relative reference can name the host in its path or query.
    ["location", "engine.internal.nixflex.com"],
    ["location", "/login?next=//engine.internal.nixflex.com.evil/x"],
  ])("drops %s when the hostname remains outside a URL", (name, value) => {
    const out = through([
      [name, value],
      ["content-type", "application/json"],
    ]);
    expect(out.has(name)).toBe(false);
    expect(out.get("content-type")).toBe("application/json");
  });

  it("rewrites Location when the public origin shares the engine's host (a local gateway and engine)", () => {
    const local = {
      requestId: "req-1",
      engineOrigin: "http://127.0.0.1:9999",
      engineHostname: "127.0.0.1",
      publicOrigin: "http://127.0.0.1:8787",
    };
    const headers = new Headers({ location: "http://127.0.0.1:9999/moved?x=1", link: "<http://127.0.0.1:9999/a>" });
    fitResponseHeaders(headers, local);
    expect(headers.get("location")).toBe("http://127.0.0.1:8787/moved?x=1");
    expect(headers.get("link")).toBe("<http://127.0.0.1:8787/a>");
  });

  it("leaves no header naming the engine host, for any mix of headers", () => {
    const out = through([
      ["link", "<https://engine.internal.nixflex.com/a>; rel=next, <https://engine.internal.nixflex.com/b>; rel=prev"],
      ["set-cookie", "a=1; Domain=engine.internal.nixflex.com"],
      ["set-cookie", "b=2; Path=/"],
      ["server", "engine.internal.nixflex.com"],
      ["x-ok", "fine"],
    ]);
    for (const [, value] of out) expect(value.toLowerCase()).not.toContain("engine.internal");
    expect(out.getSetCookie()).toEqual(["a=1", "b=2; Path=/"]);
    expect(out.get("x-ok")).toBe("fine");
    expect(out.get("x-request-id")).toBe("req-1");
  });

  it("for any engine headers: no trace of the host, nothing hop-by-hop, everything else as sent (property)", () => {
    const hosts = ["engine.internal.nixflex.com", "ENGINE.Internal.NIXFLEX.com", "engine.internal.nixflex.com:8443"];
    const value = fc.oneof(
      fc.string({ unit: fc.constantFrom(..."abc =;,/:<>\"'"), maxLength: 12 }),
      fc
        .tuple(
          fc.constantFrom("", "https://", "http://", "//", "wss://", "<https://", "x "),
          fc.constantFrom(...hosts),
          fc.constantFrom("", "/a?b=1", "; Domain=", ">; rel=next", ", other", ".evil/x", ":8x", "-2"),
        )
        .map(([scheme, host, rest]) => `${scheme}${host}${rest}`),
    );
    const name = fc.constantFrom(
      "location",
      "content-location",
      "link",
      "set-cookie",
      "server",
      "x-custom",
      "content-type",
      "x-drop-me",
      "connection",
      "keep-alive",
      "transfer-encoding",
      "upgrade",
      "te",
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 10 }), (entries) => {
        const input = new Headers();
        for (const [n, v] of entries) {
          try {
            input.append(n, n === "connection" ? "x-drop-me" : v);
          } catch {
            // A value the Headers API refuses never reaches the gateway either.
          }
        }
        const original = new Headers(input);
        // `connection: x-drop-me` makes x-drop-me hop-by-hop (RFC 9110 §7.6.1).
        const listed = original.has("connection");
        fitResponseHeaders(input, context);
        for (const [n, v] of input) {
          expect(v.toLowerCase(), n).not.toContain("engine.internal.nixflex.com");
          expect(HOP_BY_HOP.has(n), n).toBe(false);
          if (listed) expect(n).not.toBe("x-drop-me");
        }
        expect(input.get("x-request-id")).toBe("req-1");
        for (const [n, v] of original) {
          const untouched =
            !HOP_BY_HOP.has(n) &&
            !(listed && n === "x-drop-me") &&
            n !== "location" &&
            n !== "content-location" &&
            !v.toLowerCase().includes("engine.internal.nixflex.com");
          if (!untouched) continue;
          if (n === "set-cookie") expect(input.getSetCookie()).toContain(v);
          else expect(input.get(n), n).toBe(v);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
