/**
 * The API Keys pages, server-rendered with hono/html (every interpolated value is escaped).
 * Every control has a visible label or text, errors are `role="alert"`, and the once-shown
 * secret sits in an `aria-live` region that takes the focus.
 */
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { KeyObject } from "../../../src/keys/record.ts";
import type { SignedInUser } from "./session.ts";

/** What a page function answers. */
export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** A typed error from the gateway (the `/v1/keys` envelope as a value), or the dashboard's own. */
export interface ShownError {
  code: string;
  message: string;
  requestId?: string;
}

/** What the create form had, so a refused form loses nothing. */
export interface CreateForm {
  name: string;
  expires: string;
}

/** Grace periods the roll form offers (seconds → wording); the gateway allows 0–86400. */
export const GRACE_CHOICES: readonly [number, string][] = [
  [0, "No grace period: the old secret stops at once"],
  [300, "5 minutes"],
  [3600, "1 hour"],
  [86_400, "24 hours"],
];

/** `2031-03-04T05:06:07.000Z` → a `<time>` reading `2031-03-04 05:06 UTC`; null → the fallback. */
function when(instant: string | null, fallback: string): Html {
  if (instant === null) return html`${fallback}`;
  return html`<time datetime="${instant}">${instant.slice(0, 10)} ${instant.slice(11, 16)} UTC</time>`;
}

function status(key: KeyObject, now: number): Html {
  if (key.revoked_at !== null) return html`<span class="status revoked">Revoked</span>`;
  if (key.expires_at !== null && Date.parse(key.expires_at) <= now)
    return html`<span class="status expired">Expired</span>`;
  return html`<span class="status active">Active</span>`;
}

function errorBox(error: ShownError | undefined): Html {
  if (error === undefined) return html``;
  const request = error.requestId === undefined ? "" : ` (request ${error.requestId})`;
  return html`<div class="error" role="alert"><strong>${error.code}</strong>: ${error.message}<small>${request}</small></div>`;
}

/** The frame of every page: the header naming the signed-in user, and the stand-in banner. */
export function layout(title: string, user: SignedInUser, body: Html): Html {
  const banner = user.standIn
    ? html`<p class="stand-in" role="note"><strong>Local demo:</strong> no sign-in. You act as the stand-in user
        <code>${user.userId}</code> in the demo account <code>${user.accountId}</code>
        (examples/dashboard/src/session.ts, <code>currentUser</code>, is where a real dashboard plugs in its session).</p>`
    : html``;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Nixflex dashboard</title>
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script>
</head>
<body>
<header><span class="brand">Nixflex</span><nav aria-label="Dashboard"><a href="/keys">API Keys</a></nav>
<span class="who">${user.label} · account <code>${user.accountId}</code></span></header>
${banner}
<main id="main">
${body}
</main>
</body>
</html>`;
}

/** The API Keys page: create form, one page of keys, pagination, and the revoke dialog. */
export function keysPage(options: {
  user: SignedInUser;
  keys: KeyObject[];
  nextCursor: string | null;
  firstPage: boolean;
  now: number;
  notice?: string;
  error?: ShownError;
  form?: CreateForm;
}): Html {
  const { keys, now } = options;
  const form = options.form ?? { name: "", expires: "" };
  const rows = keys.map(
    (key) => html`<tr>
<td>${key.name}</td>
<td><code>${key.key_id}</code></td>
<td>${when(key.created_at, "")}</td>
<td>${when(key.last_used_at, "Never")}</td>
<td>${when(key.expires_at, "Never")}</td>
<td>${status(key, now)}</td>
<td>${
      key.revoked_at === null
        ? html`<div class="actions">
<a class="button small secondary" href="/keys/${key.key_id}/roll" aria-label="Roll secret of ${key.name}">Roll…</a>
<a class="button small danger" href="/keys/${key.key_id}/revoke" data-revoke-key="${key.key_id}" data-key-name="${key.name}" aria-label="Revoke ${key.name}">Revoke…</a>
</div>`
        : html``
    }</td>
</tr>`,
  );
  const table =
    keys.length === 0
      ? html`<p class="empty">${options.firstPage ? "No keys yet. Create one above." : "No more keys."}</p>`
      : html`<table>
<caption>Keys of account <code>${options.user.accountId}</code>, newest first. Secrets are never shown here.</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Key ID</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col">Status</th><th scope="col">Actions</th></tr></thead>
<tbody>${rows}</tbody>
</table>`;
  const pager = html`<nav class="pager" aria-label="Pages of keys">
${options.firstPage ? "" : html`<a href="/keys">First page</a>`}
${options.nextCursor === null ? "" : html`<a href="/keys?cursor=${encodeURIComponent(options.nextCursor)}">Next page</a>`}
</nav>`;
  const body = html`<h1>API Keys</h1>
${options.notice === undefined ? "" : html`<p class="notice" role="status">${options.notice}</p>`}
<section class="card" aria-labelledby="create-title">
<h2 id="create-title">Create new key</h2>
${errorBox(options.error)}
<form class="create" method="post" action="/keys">
<div class="field"><label for="key-name">Name</label>
<input id="key-name" name="name" required maxlength="100" value="${form.name}" placeholder="e.g. Production" autocomplete="off"></div>
<div class="field"><label for="key-expires">Expires on (optional)</label>
<input id="key-expires" name="expires" type="date" value="${form.expires}" aria-describedby="expires-hint">
<span class="hint" id="expires-hint">The key stops working at 00:00 UTC on this day. Leave empty for a key that never expires.</span></div>
<button type="submit">Create key</button>
</form>
</section>
<h2>Your keys</h2>
${table}
${pager}
<dialog id="revoke-dialog" aria-labelledby="revoke-title" aria-describedby="revoke-text">
<form method="post" action="">
<h2 id="revoke-title">Revoke this key?</h2>
<p id="revoke-text">Revoke <strong data-key-name></strong> (<code data-key-id></code>)? Every request with it gets
401 Unauthorized from now on; applications still using it stop working. This cannot be undone.</p>
<div class="actions"><button type="button" class="secondary" data-cancel>Cancel</button>
<button type="submit" class="danger">Revoke key</button></div>
</form>
</dialog>`;
  return layout("API Keys", options.user, body);
}

/**
 * The once-shown secret, answered to the POST that created or rolled the key and nowhere
 * else. The script moves the focus here and replaces the history entry with the list.
 */
export function secretPage(options: {
  user: SignedInUser;
  key: KeyObject;
  secret: string;
  action: "created" | "rolled";
  graceSeconds?: number;
  apiBaseUrl: string;
}): Html {
  const { key } = options;
  const intro =
    options.action === "created"
      ? html`Key <strong>${key.name}</strong> (<code>${key.key_id}</code>) is created and works at once.`
      : html`Key <strong>${key.name}</strong> (<code>${key.key_id}</code>) has a new secret, which works at once.
        ${options.graceSeconds ? `The old secret keeps working for ${options.graceSeconds} seconds.` : "The old secret stopped working."}`;
  const body = html`<h1>${options.action === "created" ? "Key created" : "Secret rolled"}</h1>
<section class="card" data-secret-page data-after-url="/keys" aria-labelledby="secret-title">
<h2 id="secret-title" tabindex="-1">Copy the secret now</h2>
<p>${intro}</p>
<p class="warning" id="secret-warning">The full key_secret is shown once. Copy it into your secrets manager now — it cannot be recovered.</p>
<div aria-live="polite">
<div class="field"><label for="key-secret">key_secret of <code>${key.key_id}</code></label>
<input id="key-secret" class="secret" readonly value="${options.secret}" aria-describedby="secret-warning" autocomplete="off" spellcheck="false"></div>
<p><button type="button" data-copy-target="key-secret" data-copy-status="copy-status" hidden>Copy secret</button>
<span id="copy-status" role="status"></span></p>
</div>
<p>Call the API with <code>Authorization: Bearer ${key.key_id}:KEY_SECRET</code>, for example
<code>curl ${options.apiBaseUrl}/v1/… -H "Authorization: Bearer ${key.key_id}:$NIXFLEX_KEY_SECRET"</code>.</p>
<p><a class="button secondary" href="/keys">Done: back to API Keys</a></p>
</section>`;
  return layout("Copy your new secret", options.user, body);
}

/** The revoke confirmation without JavaScript (the dialog shows the same text in-page). */
export function revokePage(user: SignedInUser, key: KeyObject): Html {
  const body = html`<h1>Revoke key</h1>
<section class="card" aria-labelledby="revoke-title">
<h2 id="revoke-title">Revoke this key?</h2>
<p>Revoke <strong>${key.name}</strong> (<code>${key.key_id}</code>)? Every request with it gets 401 Unauthorized from
now on; applications still using it stop working. This cannot be undone.</p>
<form method="post" action="/keys/${key.key_id}/revoke" class="actions">
<a class="button secondary" href="/keys">Cancel</a>
<button type="submit" class="danger">Revoke key</button>
</form>
</section>`;
  return layout("Revoke key", user, body);
}

/** The roll form: a new secret, with an optional grace period for the old one. */
export function rollPage(user: SignedInUser, key: KeyObject, error?: ShownError): Html {
  const options = GRACE_CHOICES.map(([seconds, label]) => html`<option value="${seconds}">${label}</option>`);
  const body = html`<h1>Roll secret</h1>
<section class="card" aria-labelledby="roll-title">
<h2 id="roll-title">New secret for <strong>${key.name}</strong> (<code>${key.key_id}</code>)</h2>
${errorBox(error)}
<p>The key keeps its key_id, name and expiry; the new secret is shown once.</p>
<form method="post" action="/keys/${key.key_id}/roll">
<div class="field"><label for="grace">Keep the old secret working for</label>
<select id="grace" name="grace_period_seconds">${options}</select></div>
<p class="actions"><a class="button secondary" href="/keys">Cancel</a>
<button type="submit">Roll secret</button></p>
</form>
</section>`;
  return layout("Roll secret", user, body);
}

/** A page that only says what went wrong (an unknown key, the gateway unreachable). */
export function errorPage(user: SignedInUser, error: ShownError): Html {
  return layout(
    "Error",
    user,
    html`<h1>Something went wrong</h1>${errorBox(error)}<p><a href="/keys">Back to API Keys</a></p>`,
  );
}
