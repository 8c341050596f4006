/**
 * The Worker entry: the gateway with production dependencies.
 */
import { createApp } from "./app.ts";

const gateway = createApp();

export default { fetch: gateway.fetch };
