/**
 * Who is signed in: THE place a real dashboard plugs in its session.
 *
 * This example has no sign-in (out of scope). `currentUser` answers a fixed local stand-in,
 * the demo user of account `acct_demo` (the account `npm start` seeds), and every page says
 * so. A real dashboard replaces the body of `currentUser` with its session check: read its
 * session cookie (`HttpOnly; Secure; SameSite=Lax` or `Strict`, which, with the Origin check
 * in index.ts, keeps other sites from posting forms as the user), look the session up, and
 * answer the user's id and the account they chose, or `null` to send them to sign-in. Nothing
 * else in the dashboard changes: every call to the gateway passes exactly this pair.
 */

/** The signed-in user, as the gateway's `KeyAdmin` wants it (`AdminCaller`). */
export interface SignedInUser {
  /** The dashboard's user id: named in the gateway's audit line of every change. */
  userId: string;
  /** The account whose keys this user manages. */
  accountId: string;
  /** How the page names the user. */
  label: string;
  /** True for the local stand-in, so the page can say it is not a real session. */
  standIn: boolean;
}

/** The fixed local stand-in: a demo user of the account `npm start` seeds. */
export const DEMO_USER: SignedInUser = {
  userId: "user_demo",
  accountId: "acct_demo",
  label: "Demo user",
  standIn: true,
};

/**
 * The user behind a request, or `null` when nobody is signed in.
 * Local stand-in: always the demo user. Replace this function with the real session check.
 */
export function currentUser(_request: Request): SignedInUser | null {
  return DEMO_USER;
}
