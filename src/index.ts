/**
 * The Worker entry: the gateway app with production dependencies.
 */
import { createApp } from "./app.ts";

export default createApp();
