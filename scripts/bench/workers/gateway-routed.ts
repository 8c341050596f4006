/**
 * The gateway with every request sent through the Hono app (`forwardThroughRouter`), as
 * it was before forwarded requests got their own path: the ladder measures it next to the
 * real gateway to show what the Hono chain costs a forwarded request (docs/BENCHMARKS.md).
 */
import { createApp } from "../../../src/app.ts";

export { KeyChangeLog } from "../../../src/keys/change-log-object.ts";

const gateway = createApp({ forwardThroughRouter: true });

export default { fetch: gateway.fetch };
