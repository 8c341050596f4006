/**
 * What a leak report may carry as a token (SPEC §10): a key secret alone (`nxfs_…`, as in
 * `NIXFLEX_KEY_SECRET=…` in a .env file) or the pair `KEY_ID:KEY_SECRET` as the
 * `Authorization` header carries it. Anything else, and any secret whose checksum fails,
 * is not a Nixflex secret: no store is consulted for it.
 */
import { isWellFormedKeyId, isWellFormedSecret } from "../keys/format.ts";
import type { LeakCandidate } from "../keys/store.ts";

/** The candidate a reported token names, or null when it cannot be a Nixflex secret. */
export function parseLeakedToken(token: string): LeakCandidate | null {
  const text = token.trim();
  const colon = text.indexOf(":");
  const keyId = colon === -1 ? null : text.slice(0, colon);
  const secret = colon === -1 ? text : text.slice(colon + 1);
  if (keyId !== null && !isWellFormedKeyId(keyId)) return null;
  if (!isWellFormedSecret(secret)) return null;
  return { secret, keyId };
}
