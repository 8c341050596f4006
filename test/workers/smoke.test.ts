import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("smoke", () => {
  it("answers healthz", async () => {
    const res = await exports.default.fetch("http://example.com/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
    expect(typeof env.API_KEYS.get).toBe("function");
  });
  it("answers 401 without a key", async () => {
    const res = await exports.default.fetch("http://example.com/v1/agents");
    expect(res.status).toBe(401);
    expect(await res.text()).toBe('{"error":{"type":"authentication_error","code":"invalid_api_key","message":"Invalid or missing API key"}}');
  });
});
