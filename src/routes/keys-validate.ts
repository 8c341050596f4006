/**
 * Request validation for the key routes: the JSON Schema literals of keys-schemas.ts (the
 * 2020-12 dialect of OpenAPI 3.1) are checked by @cfworker/json-schema, a maintained
 * validator built for Workers, and written unchanged into docs/openapi.json, so the
 * document cannot describe a rule the code does not enforce.
 *
 * This module adds what an API answer needs on top: one problem per field (the first a
 * client would fix), worded as what to fix, unknown fields named, defaults filled in, and
 * the route's own checks once the schema holds. The caller joins the problems into the one
 * `invalid_parameters` message (SPEC §7).
 */
import { type Schema, Validator } from "@cfworker/json-schema";

export type JsonType = "string" | "integer" | "number" | "boolean" | "object" | "array" | "null";

/** The JSON Schema subset of this API, as `as const` literals. */
export interface JsonSchema {
  readonly type?: JsonType | readonly JsonType[];
  readonly properties?: { readonly [name: string]: JsonSchema };
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly format?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly enum?: readonly (string | number | boolean | null)[];
  readonly default?: unknown;
  readonly description?: string;
  readonly example?: unknown;
  readonly items?: JsonSchema;
  readonly $ref?: string;
  readonly allOf?: readonly JsonSchema[];
}

/** An object schema: what a body or a query is. */
export type ObjectSchema = JsonSchema & { readonly type: "object"; readonly properties: JsonSchema["properties"] & {} };

type TypeOf<T> = T extends "string"
  ? string
  : T extends "integer" | "number"
    ? number
    : T extends "boolean"
      ? boolean
      : T extends "null"
        ? null
        : unknown;
type Present<S, P> =
  | (S extends { readonly required: readonly (infer K)[] } ? K : never)
  | { [K in keyof P]: P[K] extends { readonly default: unknown } ? K : never }[keyof P];

/** The value a schema accepts (after defaults are filled in), for typing the handlers. */
export type Infer<S> = S extends { readonly properties: infer P }
  ? { -readonly [K in keyof P as K extends Present<S, P> ? K : never]: Infer<P[K]> } & {
      -readonly [K in keyof P as K extends Present<S, P> ? never : K]?: Infer<P[K]>;
    }
  : S extends { readonly type: infer T }
    ? T extends readonly (infer U)[]
      ? TypeOf<U>
      : TypeOf<T>
    : unknown;

/** One problem: the field (or unknown fields, comma-separated) at fault, none for the whole value, and what to fix. */
export interface Issue {
  path?: string;
  message: string;
}

type Keyword = "type" | "required" | "minLength" | "maxLength" | "pattern" | "format" | "minimum" | "maximum" | "enum";

/** How a request is checked beyond its schema; wording lives with the route. */
export interface Rules {
  /** "field" for a body, "query parameter" for a query. */
  noun: "field" | "query parameter";
  /** Wording that replaces the default, per property ("" = the object itself): one text, or one per keyword. */
  messages?: { readonly [path: string]: string | Partial<Record<Keyword, string>> };
  /** Checks JSON Schema cannot state, run on a property once its schema holds; a text is the problem. */
  checks?: { readonly [name: string]: (value: never) => string | undefined };
}

/** The keywords a value can break, in the order a client would fix them. */
const KEYWORD_ORDER: readonly Keyword[] = [
  "type",
  "enum",
  "minLength",
  "maxLength",
  "pattern",
  "format",
  "minimum",
  "maximum",
];

const FORMAT_MESSAGES: Record<string, string> = {
  "date-time": "must be an ISO 8601 date-time with a time zone, e.g. 2030-01-01T00:00:00Z",
};

/**
 * This API's profile of a format, checked once the validator accepts it. `date-time`: RFC
 * 3339 as the API writes it — `T` and `Z` in upper case (RFC 3339 §5.6 allows lower case and
 * a space, which many clients misread) and no leap second (`Date.parse` cannot read :60).
 */
const FORMAT_PROFILES: Record<string, (text: string) => boolean> = {
  "date-time": (text) => /^[^tz ]*T[^tz ]*$/.test(text) && !Number.isNaN(Date.parse(text)),
};

/** JSON Schema's string length: Unicode code points, so an emoji is one character. */
const codePoints = (text: string): number => [...text].length;

function typeOf(value: unknown): JsonType {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value as JsonType;
}

/** The default wording of each keyword, from the schema's own bounds. */
function defaultMessage(schema: JsonSchema, keyword: Keyword, value: unknown): string {
  const types = [schema.type ?? []].flat();
  const range = `${schema.minLength ?? 0}–${schema.maxLength}`;
  if (keyword === "required") return "is required";
  if (types.includes("integer")) {
    const bounded = schema.minimum !== undefined && schema.maximum !== undefined;
    return bounded ? `must be an integer from ${schema.minimum} to ${schema.maximum}` : "must be an integer";
  }
  if (schema.format !== undefined && FORMAT_MESSAGES[schema.format] !== undefined)
    return FORMAT_MESSAGES[schema.format]!;
  if (keyword === "minLength" || keyword === "maxLength") {
    return `must be ${range} characters (got ${codePoints(value as string)})`;
  }
  if (keyword === "enum") return `must be one of ${schema.enum!.join(", ")}`;
  if (keyword === "pattern") return `must match ${schema.pattern}`;
  if (types.includes("object")) return "must be a JSON object";
  if (types.includes("string") && schema.maxLength !== undefined) return `must be a string of ${range} characters`;
  return `must be of type ${types.join(" or ")}`;
}

// One compiled validator per schema literal, made on first use (the schemas are module constants).
const validators = new WeakMap<JsonSchema, Validator>();

/** The first keyword of `schema` that `value` breaks, as @cfworker/json-schema judges it. */
function firstBroken(schema: JsonSchema, value: unknown): Keyword | undefined {
  let validator = validators.get(schema);
  if (validator === undefined) {
    validator = new Validator(schema as Schema, "2020-12", false);
    validators.set(schema, validator);
  }
  const broken = new Set(validator.validate(value).errors.map((error) => error.keyword));
  const profile = schema.format === undefined ? undefined : FORMAT_PROFILES[schema.format];
  if (typeof value === "string" && profile !== undefined && !profile(value)) broken.add("format");
  return KEYWORD_ORDER.find((keyword) => broken.has(keyword));
}

/**
 * Checks `input` (parsed JSON, or a query as name → string) against an object schema.
 * Answers the problems in schema order, unknown names last, or the value with defaults
 * filled in and unknown names gone.
 */
export function validate<S extends ObjectSchema>(
  schema: S,
  input: unknown,
  rules: Rules,
): { ok: true; value: Infer<S> } | { ok: false; issues: Issue[] } {
  const message = (path: string, keyword: Keyword, node: JsonSchema, value?: unknown) => {
    const own = rules.messages?.[path];
    return (typeof own === "string" ? own : own?.[keyword]) ?? defaultMessage(node, keyword, value);
  };
  if (typeOf(input) !== "object") return { ok: false, issues: [{ message: message("", "type", schema) }] };
  const object = input as Record<string, unknown>;
  const issues: Issue[] = [];
  const value: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    if (!Object.hasOwn(object, name)) {
      if (property.default !== undefined) value[name] = property.default;
      else if (schema.required?.includes(name))
        issues.push({ path: name, message: message(name, "required", property) });
      continue;
    }
    const broken = firstBroken(property, object[name]);
    const problem =
      broken === undefined
        ? rules.checks?.[name]?.(object[name] as never)
        : message(name, broken, property, object[name]);
    if (problem === undefined) value[name] = object[name];
    else issues.push({ path: name, message: problem });
  }
  const unknown = Object.keys(object).filter((name) => !Object.hasOwn(schema.properties, name));
  if (schema.additionalProperties === false && unknown.length > 0) {
    const plural = unknown.length > 1 ? "s" : "";
    const allowed = Object.keys(schema.properties).join(", ");
    issues.push({ path: unknown.join(", "), message: `unknown ${rules.noun}${plural}; allowed: ${allowed}` });
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: value as Infer<S> };
}

/** Whether one value meets a schema's own keywords, e.g. a path parameter. */
export function conforms(schema: JsonSchema, value: unknown): boolean {
  return firstBroken(schema, value) === undefined;
}
