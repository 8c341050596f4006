/**
 * The Worker entry: the gateway with production dependencies, the `KeyAdmin` entrypoint
 * that only a service binding reaches (src/admin/key-admin.ts), and the key change log's
 * Durable Object class.
 */
import { createApp } from "./app.ts";
import { isolateServices } from "./services.ts";

const gateway = createApp({ servicesFor: isolateServices });

export default { fetch: gateway.fetch };
export { KeyAdmin } from "./admin/key-admin.ts";
export type { AdminCaller, AdminOutcome } from "./admin/key-admin.ts";
export { KeyChangeLog } from "./keys/change-log-object.ts";
