/**
 * The example dashboard Worker: app.nixflex.com's API Keys page (the public docs, "Creating
 * keys"). It manages keys only through the gateway's `KeyAdmin` entrypoint over the service
 * binding `GATEWAY_ADMIN`: it holds no KV binding and no secret, and the gateway applies the
 * same validation, answers and audit line as `/v1/keys`.
 *
 * - `GET /keys`: the list (name, key_id, created, last used, expires, status), paginated,
 *   with the create form.
 * - `POST /keys`, `POST /keys/:id/roll`: answer the page with the secret, the only time it
 *   is shown (`Cache-Control: no-store`; the script replaces that history entry with the list).
 * - `GET /keys/:id/roll`, `GET /keys/:id/revoke`: the roll form and the revoke confirmation
 *   (the list opens the same confirmation as an in-page dialog).
 * - `POST /keys/:id/revoke`: revokes, then redirects (303) to the list.
 *
 * Forms are same-origin only (hono/csrf: Origin or Sec-Fetch-Site), and a real session cookie
 * is SameSite (session.ts). Who acts comes from `currentUser` (session.ts), a local stand-in.
 */
import { Hono, type Context } from "hono";
import { csrf } from "hono/csrf";
import { secureHeaders } from "hono/secure-headers";
import type { AdminOutcome, KeyAdmin } from "../../../src/index.ts";
import type { KeyObject } from "../../../src/keys/record.ts";
import {
  type CreateForm,
  errorPage,
  type Html,
  keysPage,
  revokePage,
  rollPage,
  secretPage,
  type ShownError,
} from "./pages.ts";
import { currentUser, type SignedInUser } from "./session.ts";
import { SCRIPT, STYLES } from "./static.ts";

/** The dashboard's bindings (examples/dashboard/wrangler.toml). */
export interface DashboardEnv {
  /** The gateway's `KeyAdmin` entrypoint (src/admin/key-admin.ts). */
  GATEWAY_ADMIN: Service<KeyAdmin>;
  /** Where the public API answers, for the example call on the secret page. */
  API_BASE_URL?: string;
}

type Env = { Bindings: DashboardEnv; Variables: { user: SignedInUser } };

const PAGE_SIZE = 20;
const NO_STORE = { "Cache-Control": "no-store" } as const;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

const app = new Hono<Env>();

app.use(
  secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'"],
      connectSrc: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
    },
  }),
);
// A form post from another site never acts as the user: the Origin (or Sec-Fetch-Site) must be ours.
app.use(csrf());
app.use(async function formsOnly(c, next) {
  // Only form posts change anything; another content type would skip the check above.
  const type = c.req.header("content-type") ?? "";
  if (c.req.method === "POST" && !/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type)) {
    return c.text("Send the form as application/x-www-form-urlencoded", 415);
  }
  await next();
});

app.get("/static/dashboard.css", (c) =>
  c.body(STYLES, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "max-age=300" }),
);
app.get("/static/dashboard.js", (c) =>
  c.body(SCRIPT, 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "max-age=300" }),
);

app.use(async function signedIn(c, next) {
  const user = currentUser(c.req.raw);
  // A real dashboard redirects to its sign-in page here.
  if (user === null) return c.text("Sign in first", 401);
  c.set("user", user);
  await next();
});

/** The gateway's answer, or a typed error when the binding itself fails (the gateway not running, say). */
async function admin<T>(call: () => Promise<AdminOutcome<T>>): Promise<AdminOutcome<T>> {
  try {
    return await call();
  } catch {
    return {
      ok: false,
      requestId: crypto.randomUUID(),
      error: {
        status: 503,
        type: "api_error",
        code: "service_unavailable",
        message: "The gateway did not answer over the GATEWAY_ADMIN service binding; retry later",
      },
    } as AdminOutcome<T>;
  }
}

const shown = (outcome: Extract<AdminOutcome<unknown>, { ok: false }>): ShownError => ({
  code: outcome.error.code,
  message: outcome.error.message,
  requestId: outcome.requestId,
});

/** 400 for a refused form, 404 for an unknown key, 503 when the gateway is away: the status the gateway chose. */
const statusOf = (outcome: Extract<AdminOutcome<unknown>, { ok: false }>) =>
  outcome.error.status as 400 | 404 | 500 | 503;

const caller = (user: SignedInUser) => ({ accountId: user.accountId, actor: { userId: user.userId } });

/** Renders the list; `extra` carries a notice, or a refused create form and its error. */
async function renderList(
  c: Context<Env>,
  extra: { notice?: string; error?: ShownError; form?: CreateForm; status?: 200 | 400 | 404 | 500 | 503 } = {},
) {
  const user = c.var.user;
  const cursor = c.req.query("cursor");
  const page = await admin(() =>
    c.env.GATEWAY_ADMIN.list(caller(user), { limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) }),
  );
  const firstPage = cursor === undefined || cursor === "";
  if (!page.ok) {
    return c.html(
      keysPage({ user, keys: [], nextCursor: null, firstPage, now: Date.now(), ...extra, error: shown(page) }),
      statusOf(page),
      NO_STORE,
    );
  }
  const { data, next_cursor } = page.value;
  return c.html(
    keysPage({ user, keys: data, nextCursor: next_cursor, firstPage, now: Date.now(), ...extra }),
    extra.status ?? 200,
    NO_STORE,
  );
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");

app.get("/", (c) => c.redirect("/keys", 302));

app.get("/keys", async (c) => {
  const revoked = c.req.query("revoked");
  const notice =
    revoked !== undefined && /^nxf_[0-9a-f]{32}$/.test(revoked)
      ? `Key ${revoked} is revoked: every request with it now gets 401.`
      : undefined;
  return renderList(c, { notice });
});

app.post("/keys", async (c) => {
  const user = c.var.user;
  const body = await c.req.parseBody();
  const form: CreateForm = { name: text(body.name), expires: text(body.expires).trim() };
  // The date field means "from 00:00 UTC that day"; anything else goes to the gateway as typed, to be refused there.
  const expiresAt = form.expires === "" ? null : DATE.test(form.expires) ? `${form.expires}T00:00:00Z` : form.expires;
  const created = await admin(() =>
    c.env.GATEWAY_ADMIN.create(caller(user), { name: form.name, expires_at: expiresAt }),
  );
  if (!created.ok) return renderList(c, { error: shown(created), form, status: statusOf(created) });
  const { key_secret, ...key } = created.value;
  const page = secretPage({ user, key, secret: key_secret, action: "created", apiBaseUrl: apiBase(c) });
  return c.html(page, 201, NO_STORE);
});

/** A page about one key of the account: the key's page, or the gateway's error (`key_not_found` for a foreign key). */
async function keyPage(c: Context<Env>, render: (user: SignedInUser, key: KeyObject) => Html) {
  const user = c.var.user;
  const found = await admin(() => c.env.GATEWAY_ADMIN.get(caller(user), c.req.param("keyId") ?? ""));
  if (!found.ok) return c.html(errorPage(user, shown(found)), statusOf(found), NO_STORE);
  return c.html(render(user, found.value), 200, NO_STORE);
}

app.get("/keys/:keyId/roll", (c) => keyPage(c, (user, key) => rollPage(user, key)));

app.post("/keys/:keyId/roll", async (c) => {
  const user = c.var.user;
  const keyId = c.req.param("keyId");
  const raw = text((await c.req.parseBody()).grace_period_seconds).trim();
  // A number the gateway checks (0–86400); a non-number goes as is and is refused with the gateway's message.
  const grace: unknown = raw === "" ? 0 : /^\d+$/.test(raw) ? Number(raw) : raw;
  const rolled = await admin(() =>
    c.env.GATEWAY_ADMIN.roll(caller(user), keyId, { grace_period_seconds: grace as number }),
  );
  if (!rolled.ok) {
    const found = await admin(() => c.env.GATEWAY_ADMIN.get(caller(user), keyId));
    const page = found.ok ? rollPage(user, found.value, shown(rolled)) : errorPage(user, shown(rolled));
    return c.html(page, statusOf(rolled), NO_STORE);
  }
  const { key_secret, ...key } = rolled.value;
  const page = secretPage({
    user,
    key,
    secret: key_secret,
    action: "rolled",
    graceSeconds: grace as number,
    apiBaseUrl: apiBase(c),
  });
  return c.html(page, 200, NO_STORE);
});

app.get("/keys/:keyId/revoke", (c) => keyPage(c, revokePage));

app.post("/keys/:keyId/revoke", async (c) => {
  const user = c.var.user;
  const keyId = c.req.param("keyId");
  const revoked = await admin(() => c.env.GATEWAY_ADMIN.revoke(caller(user), keyId));
  if (!revoked.ok) return c.html(errorPage(user, shown(revoked)), statusOf(revoked), NO_STORE);
  return c.redirect(`/keys?revoked=${encodeURIComponent(revoked.value.key_id)}`, 303);
});

function apiBase(c: Context<Env>): string {
  return (c.env.API_BASE_URL ?? "https://api.nixflex.com").replace(/\/+$/, "");
}

export default app;
