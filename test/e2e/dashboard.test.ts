/**
 * The example dashboard in a real browser (Debian's Chromium, driven by playwright-core):
 * the real local gateway and dashboard (two `wrangler dev` sessions, the dashboard bound
 * to the gateway's KeyAdmin entrypoint) and the demo engine. Create a key in the page,
 * read the once-shown secret, call the gateway with it (200 through to the engine), reload
 * (the secret is nowhere: not in the page, not in any response), revoke it in the page's
 * confirmation dialog, and the next call is the standard 401.
 *
 * Each flow's time is printed as one `dashboard_timing` JSON line. `UPDATE_SCREENSHOTS=1`
 * also writes docs/dashboard/*.png (the list, the once-shown secret, the revoke dialog).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../scripts/lib/project.ts";
import { startStack, type Stack } from "../support/stack.ts";

// SPEC §3, byte for byte.
const UNAUTHORIZED =
  '{"error":{"type":"authentication_error","code":"invalid_api_key","message":"Invalid or missing API key"}}';
const WARNING = "Copy it into your secrets manager now — it cannot be recovered.";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? join(PROJECT_ROOT, "docs", "dashboard") : null;
const started = performance.now();
const timings: Record<string, number> = {};

let stack: Stack;
let context: BrowserContext;
let page: Page;
let profile: string;
let dashboard: string;

/** Runs one flow and keeps its wall time in ms. */
async function timed<T>(flow: string, run: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await run();
  } finally {
    timings[flow] = Math.round(performance.now() - t0);
  }
}

async function screenshot(name: string): Promise<void> {
  if (SCREENSHOTS === null) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** A request through the gateway to the demo engine with a key. */
async function callGateway(keyId: string, secret: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${stack.gatewayUrl}/v1/agents`, {
    headers: { authorization: `Bearer ${keyId}:${secret}` },
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, text: await res.text() };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  stack = await timed("start_stack", () => startStack({ dashboard: true }));
  dashboard = stack.dashboardUrl!;
  profile = mkdtempSync(join(tmpdir(), "nixflex-chromium-"));
  context = await timed("start_browser", () =>
    chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1180, height: 760 },
      permissions: ["clipboard-read", "clipboard-write"],
    }),
  );
  page = context.pages()[0] ?? (await context.newPage());
});

afterAll(async () => {
  await context?.close();
  await stack?.stop();
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  timings.test_wall = Math.round(performance.now() - started);
  process.stdout.write(`${JSON.stringify({ event: "dashboard_timing", ms: timings })}\n`);
});

describe("the API Keys page in Chromium", () => {
  let keyId = "";
  let secret = "";

  it("lists the demo account's keys and says it is a local stand-in", async () => {
    await page.goto(`${dashboard}/keys`);
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("API Keys");
    expect((await page.getByRole("note").textContent())?.replace(/\s+/g, " ")).toContain(
      "stand-in user user_demo in the demo account acct_demo",
    );
  });

  it("create: a name by keyboard, then the secret once, focused, with the docs' warning and a copy button", async () => {
    await timed("create", async () => {
      await page.getByLabel("Name").fill("Browser key");
      await page.getByLabel("Name").press("Enter");
      await page.getByRole("heading", { name: "Copy the secret now" }).waitFor();
    });
    secret = await page.getByLabel(/key_secret of/).inputValue();
    expect(secret).toMatch(/^nxfs_[0-9A-Za-z]{64}$/);
    keyId = (await page.locator("label[for=key-secret] code").textContent()) ?? "";
    expect(keyId).toMatch(/^nxf_[0-9a-f]{32}$/);
    expect(await page.locator("#secret-warning").textContent()).toContain(WARNING);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("secret-title");
    // The POST's history entry now reads /keys: a reload asks for the list, never re-posts.
    expect(new URL(page.url()).pathname).toBe("/keys");
    await page.getByRole("button", { name: "Copy secret" }).click();
    await page.getByText("Copied to the clipboard.").waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    await screenshot("secret-once");
  });

  it("call: the secret from the page authenticates through the gateway to the engine (200)", async () => {
    const answer = await timed("call", () => callGateway(keyId, secret));
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ verified: true, account_id: "acct_demo", key_id: keyId });
  });

  it("reload: the secret is nowhere, not in the page and not in any response, and no key was re-created", async () => {
    const bodies: string[] = [];
    const reading: Promise<void>[] = [];
    const onResponse = (response: import("playwright-core").Response) => {
      reading.push(
        response.text().then(
          (text) => void bodies.push(`${response.url()} ${JSON.stringify(response.headers())} ${text}`),
          () => undefined,
        ),
      );
    };
    page.on("response", onResponse);
    await timed("reload", async () => {
      await page.reload();
      await page.getByRole("heading", { name: "API Keys" }).waitFor();
    });
    page.off("response", onResponse);
    await Promise.all(reading);
    expect(bodies.length).toBeGreaterThan(0);
    for (const body of bodies) expect(body).not.toContain(secret);
    expect(await page.content()).not.toContain(secret);
    expect(await page.evaluate(() => document.body.textContent)).not.toContain("nxfs_");
    expect(await page.locator("tbody tr", { hasText: "Browser key" }).count()).toBe(1);
    const row = page.locator("tbody tr", { hasText: keyId });
    expect(await row.locator(".status").textContent()).toBe("Active");
  });

  it("revoke: the confirmation dialog (Escape cancels and returns the focus), then the key is revoked", async () => {
    const revoke = page.getByRole("link", { name: "Revoke Browser key" });
    await revoke.click();
    const dialog = page.getByRole("dialog", { name: "Revoke this key?" });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(keyId);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
    await screenshot("revoke-confirm");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    expect(await page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe("Revoke Browser key");

    await timed("revoke", async () => {
      await revoke.click();
      await dialog.getByRole("button", { name: "Revoke key" }).click();
      await page
        .getByRole("status")
        .filter({ hasText: `Key ${keyId} is revoked` })
        .waitFor();
    });
    const row = page.locator("tbody tr", { hasText: keyId });
    expect(await row.locator(".status").textContent()).toBe("Revoked");
    expect(await row.getByRole("link").count()).toBe(0);
  });

  it("the next call with the revoked key is the standard 401", async () => {
    const answer = await timed("call_after_revoke", () => callGateway(keyId, secret));
    expect(answer.status).toBe(401);
    expect(answer.text).toBe(UNAUTHORIZED);
  });

  it("an error from KeyAdmin is shown as its typed message, and the form keeps what was typed", async () => {
    await page.getByLabel("Name").fill("   ");
    await page.getByRole("button", { name: "Create key" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toContain("invalid_parameters: name: must contain a visible character");
    expect(await page.getByLabel("Name").inputValue()).toBe("   ");
  });

  it("roll: a new secret shown once, the old one kept for the grace period chosen", async () => {
    await page.goto(`${dashboard}/keys`);
    await page.getByLabel("Name").fill("Rolled key");
    await page.getByRole("button", { name: "Create key" }).click();
    const first = await page.getByLabel(/key_secret of/).inputValue();
    const rolledId = (await page.locator("label[for=key-secret] code").textContent()) ?? "";
    await page.getByRole("link", { name: "Done: back to API Keys" }).click();
    await page.getByRole("link", { name: "Roll secret of Rolled key" }).click();
    await page.getByLabel("Keep the old secret working for").selectOption({ label: "1 hour" });
    await page.getByRole("button", { name: "Roll secret" }).click();
    await page.getByRole("heading", { name: "Copy the secret now" }).waitFor();
    const second = await page.getByLabel(/key_secret of/).inputValue();
    expect(second).not.toBe(first);
    expect(await page.textContent("main")).toContain("The old secret keeps working for 3600 seconds.");
    expect((await callGateway(rolledId, first)).status).toBe(200);
    expect((await callGateway(rolledId, second)).status).toBe(200);
  });

  it("a form posted from another origin, or from no page at all, changes nothing (403); a non-form body 415", async () => {
    const res = await fetch(`${dashboard}/keys`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example" },
      body: "name=forged",
      redirect: "manual",
    });
    expect(res.status).toBe(403);
    // No Origin and no Sec-Fetch-Site (not a browser form of ours) is refused the same way.
    const bare = await fetch(`${dashboard}/keys`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "name=forged",
      redirect: "manual",
    });
    expect(bare.status).toBe(403);
    // A body that is not a form skips no check: it is refused before anything runs.
    const json = await fetch(`${dashboard}/keys/nxf_00000000000000000000000000000000/revoke`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: dashboard },
      body: "{}",
    });
    expect(json.status).toBe(415);
    await page.goto(`${dashboard}/keys`);
    expect(await page.locator("tbody tr", { hasText: "forged" }).count()).toBe(0);
    await screenshot("list");
  });

  it("a hostile key name is shown as text, never run as markup", async () => {
    const name = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>"'&`;
    await page.goto(`${dashboard}/keys`);
    await page.getByLabel("Name").fill(name);
    await page.getByRole("button", { name: "Create key" }).click();
    await page.getByRole("heading", { name: "Copy the secret now" }).waitFor();
    expect(await page.locator("main strong").first().textContent()).toBe(name);
    await page.goto(`${dashboard}/keys`);
    expect(await page.locator("tbody tr td:first-child").first().textContent()).toBe(name);
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator("main img").count()).toBe(0);
  });
});
