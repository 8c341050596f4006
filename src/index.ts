/**
 * The Worker entry: the gateway with production dependencies.
 */
import { createApp } from "./app.ts";

export { KeyChangeLog } from "./keys/change-log-object.ts";

const gateway = createApp();

export default { fetch: gateway.fetch };
