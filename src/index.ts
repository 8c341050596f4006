/**
 * The Worker entry: the gateway with production dependencies, and the `KeyAdmin`
 * entrypoint that only a service binding reaches (src/admin/key-admin.ts).
 */
import { createApp } from "./app.ts";
import { isolateServices } from "./services.ts";

const gateway = createApp({ servicesFor: isolateServices });

export default { fetch: gateway.fetch };
export { KeyAdmin } from "./admin/key-admin.ts";
export type { AdminCaller, AdminOutcome } from "./admin/key-admin.ts";
