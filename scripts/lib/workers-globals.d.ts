/**
 * The Worker's sources that the scripts import (KeyStore, config) name a few Workers
 * runtime types as globals; under the Node tsconfig they come from the module form of
 * @cloudflare/workers-types, which does not clash with Node's and the DOM's globals.
 */
import type {
  KVNamespace as WorkersKVNamespace,
  KVNamespaceListOptions as WorkersKVNamespaceListOptions,
  KVNamespacePutOptions as WorkersKVNamespacePutOptions,
  RateLimit as WorkersRateLimit,
} from "@cloudflare/workers-types/index.ts";

declare global {
  type KVNamespace<Key extends string = string> = WorkersKVNamespace<Key>;
  type KVNamespaceListOptions = WorkersKVNamespaceListOptions;
  type KVNamespacePutOptions = WorkersKVNamespacePutOptions;
  type RateLimit = WorkersRateLimit;
  /** Workers' scheduler (KeyStore's lookup path only; the scripts never call it). */
  var scheduler: { wait(ms: number): Promise<void> };
}
