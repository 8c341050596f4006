/**
 * The engine's hostname never reaches a client (SPEC §4), whichever response header names it.
 */
import { describe, expect, it } from "vitest";
import { clientResponseHeaders } from "../../src/proxy/headers.ts";

const context = {
  requestId: "req-1",
  engineOrigin: "https://engine.internal.nixflex.com",
  engineHostname: "engine.internal.nixflex.com",
  publicOrigin: "https://api.nixflex.com",
};

const through = (headers: [string, string][]) => clientResponseHeaders(new Headers(headers), context);

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
  ])("drops %s when the hostname remains outside a URL", (name, value) => {
    const out = through([
      [name, value],
      ["content-type", "application/json"],
    ]);
    expect(out.has(name)).toBe(false);
    expect(out.get("content-type")).toBe("application/json");
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
});
