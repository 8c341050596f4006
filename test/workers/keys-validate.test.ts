/**
 * Request validation of the key routes (src/routes/keys-validate.ts: @cfworker/json-schema
 * plus the API's wording and rules) as pure functions: hostile inputs as tables,
 * properties for the rest, and a guard that the request schemas use only keywords that are
 * enforced — a keyword nobody checked would be documented in docs/openapi.json without
 * being true.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KEY_ROUTES } from "../../src/routes/keys.ts";
import { CreateKeyRequest, KeyIdParam, ListKeysQuery, RollKeyRequest } from "../../src/routes/keys-schemas.ts";
import { conforms, type JsonSchema, type Rules, validate } from "../../src/routes/keys-validate.ts";

const FIELD: Rules = { noun: "field" };
const createRules = KEY_ROUTES.find((route) => route.operationId === "createKey")!.input!.rules;

/** The first problem's text, `path: message` as the routes answer it, or "ok". */
function outcome(schema: typeof CreateKeyRequest | typeof RollKeyRequest, input: unknown, rules = FIELD): string {
  const result = validate(schema, input, rules);
  return result.ok ? "ok" : result.issues.map((issue) => `${issue.path ?? "body"}: ${issue.message}`).join("; ");
}

const expiresAt = (value: unknown) => outcome(CreateKeyRequest, { name: "x", expires_at: value });

describe("format date-time", () => {
  it.each([
    "2030-01-01T00:00:00Z",
    "2030-01-01T00:00:00.5Z",
    "2030-01-01T00:00:00.123456789+05:30",
    "2030-12-31T23:59:59-23:59",
    "2024-02-29T12:00:00Z",
    "2000-02-29T12:00:00Z",
    "0000-01-01T00:00:00Z",
  ])("accepts %s", (text) => {
    expect(expiresAt(text)).toBe("ok");
  });

  it.each([
    ["no time", "2030-01-01"],
    ["no zone", "2030-01-01T00:00:00"],
    ["no seconds", "2030-01-01T00:00Z"],
    ["lower-case t and z", "2030-01-01t00:00:00z"],
    ["a space for T", "2030-01-01 00:00:00Z"],
    ["Feb 29 of a common year", "2023-02-29T00:00:00Z"],
    ["Feb 29 of 2100", "2100-02-29T00:00:00Z"],
    ["April 31", "2030-04-31T00:00:00Z"],
    ["month 13", "2030-13-01T00:00:00Z"],
    ["month 0", "2030-00-10T00:00:00Z"],
    ["day 0", "2030-01-00T00:00:00Z"],
    ["hour 24", "2030-01-01T24:00:00Z"],
    ["a leap second", "2016-12-31T23:59:60Z"],
    ["offset +24:00", "2030-01-01T00:00:00+24:00"],
    ["offset without colon", "2030-01-01T00:00:00+0100"],
    ["an empty fraction", "2030-01-01T00:00:00.Z"],
    ["an expanded year", "+002030-01-01T00:00:00Z"],
    ["non-ASCII digits", "２０３０-01-01T00:00:00Z"],
    ["a trailing newline", "2030-01-01T00:00:00Z\n"],
    ["a number", 1956528000000],
    ["an object", { at: "2030-01-01T00:00:00Z" }],
  ])("refuses %s", (_, value) => {
    expect(expiresAt(value)).toBe(
      "expires_at: must be an ISO 8601 date-time with a time zone, e.g. 2030-01-01T00:00:00Z",
    );
  });

  it("accepts null (never expires)", () => {
    expect(expiresAt(null)).toBe("ok");
  });

  it("everything it accepts, Date.parse reads (the route compares it with the clock)", () => {
    const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, "0"));
    const shaped = fc
      .tuple(
        fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, "0")),
        two(13),
        two(32),
        two(24),
        two(60),
        two(61),
        fc.constantFrom("", ".0", ".999", ".123456789"),
        fc.constantFrom("Z", "+00:00", "-12:30", "+23:59"),
      )
      .map(([y, mo, d, h, mi, s, frac, zone]) => `${y}-${mo}-${d}T${h}:${mi}:${s}${frac}${zone}`);
    fc.assert(
      fc.property(shaped, (text) => {
        if (expiresAt(text) === "ok") expect(Number.isFinite(Date.parse(text)), text).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("string length", () => {
  it("counts Unicode code points, as JSON Schema does", () => {
    expect(outcome(CreateKeyRequest, { name: "🔑".repeat(100) }, createRules)).toBe("ok");
    expect(outcome(CreateKeyRequest, { name: "🔑".repeat(101) }, createRules)).toBe(
      "name: must be 1–100 characters (got 101)",
    );
    // A lone surrogate is one code point: too long by length, before the control-character check.
    expect(outcome(CreateKeyRequest, { name: `${"x".repeat(100)}\ud800` }, createRules)).toBe(
      "name: must be 1–100 characters (got 101)",
    );
  });

  it("a name is accepted exactly when it has 1–100 code points, a visible character and no control character", () => {
    const invisible = fc.constantFrom(..."\u200b\u2060\ufeff\u3164\u115f\u00ad\u180e\u034f \u3000\u202e\u2066\u200e");
    const names = fc.oneof(
      fc.string({ maxLength: 110 }),
      fc.string({ unit: "binary", maxLength: 110 }),
      fc.array(fc.oneof(invisible, fc.constantFrom("a", "é", "🔑")), { maxLength: 8 }).map((parts) => parts.join("")),
    );
    const visible = /[^\p{White_Space}\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
    fc.assert(
      fc.property(names, (name) => {
        const length = [...name].length;
        const fine =
          length >= 1 &&
          length <= 100 &&
          visible.test(name) &&
          !/[\p{Cc}\p{Cs}]/u.test(name) &&
          !/\p{Bidi_Control}/u.test(name);
        expect(outcome(CreateKeyRequest, { name }, createRules) === "ok").toBe(fine);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("odd names and expiries (issue: names of format characters only, five-digit years)", () => {
  it.each([
    ["U+202E RIGHT-TO-LEFT OVERRIDE alone", "\u202e"],
    ["U+200B ZERO WIDTH SPACE alone", "\u200b"],
    ["U+2060 WORD JOINER alone", "\u2060"],
    ["U+3164 HANGUL FILLER alone", "\u3164"],
    ["the BOM alone", "\ufeff"],
    ["format characters and spaces", " \u200b \u2060 \ufeff "],
    ["a soft hyphen and a combining grapheme joiner", "\u00ad\u034f"],
  ])("refuses a name that is only %s", (_, name) => {
    expect(outcome(CreateKeyRequest, { name }, createRules)).toMatch(
      /^name: must (contain a visible character|not contain bidirectional control characters)/,
    );
  });

  it.each([
    ["an override inside a name", "Prod\u202euction"],
    ["an isolate inside a name", "\u2067Production\u2069"],
    ["a left-to-right mark", "Production\u200e"],
    ["an Arabic letter mark", "\u061cProduction"],
  ])("refuses %s (bidirectional controls reorder what dashboards and logs show)", (_, name) => {
    expect(outcome(CreateKeyRequest, { name }, createRules)).toBe(
      "name: must not contain bidirectional control characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069)",
    );
  });

  it.each(["Production", "Producción", "مفتاح الإنتاج", "本番", "🔑 main", "a\u200db"])("accepts %j", (name) => {
    expect(outcome(CreateKeyRequest, { name }, createRules)).toBe("ok");
  });

  it.each([
    ["9999-12-31T23:59:59-23:59", "is year 10000 in UTC"],
    ["9999-12-31T23:59:59.9999-00:01", "is past the end of 9999 in UTC"],
  ])("refuses an expiry %s that %s", (expires_at) => {
    expect(outcome(CreateKeyRequest, { name: "x", expires_at }, createRules)).toBe(
      "expires_at: must be at most 9999-12-31T23:59:59.999Z",
    );
  });

  it("accepts the last expiry whose UTC form keeps a four-digit year", () => {
    expect(outcome(CreateKeyRequest, { name: "x", expires_at: "9999-12-31T23:59:59.999Z" }, createRules)).toBe("ok");
    expect(outcome(CreateKeyRequest, { name: "x", expires_at: "9999-12-31T23:59:59+01:00" }, createRules)).toBe("ok");
  });

  it("every expiry it accepts prints back as RFC 3339 (a four-digit year)", () => {
    const offset = fc
      .tuple(fc.constantFrom("+", "-"), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
      .map(([sign, h, m]) => `${sign}${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`);
    const instants = fc
      .tuple(
        fc.integer({ min: 9990, max: 9999 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 28 }),
        offset,
      )
      .map(([y, mo, d, zone]) => `${y}-${String(mo).padStart(2, "0")}-${String(d).padStart(2, "0")}T23:59:59${zone}`);
    fc.assert(
      fc.property(instants, (expires_at) => {
        if (outcome(CreateKeyRequest, { name: "x", expires_at }, createRules) === "ok") {
          expect(new Date(expires_at).toISOString()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("objects", () => {
  it("takes JSON's own __proto__ as a field, and never an inherited name", () => {
    expect(outcome(CreateKeyRequest, JSON.parse('{"name":"x","__proto__":{"admin":true}}'))).toBe(
      "__proto__: unknown field; allowed: name, expires_at",
    );
    // Only own fields count: a `name` on the prototype is no name.
    expect(outcome(CreateKeyRequest, Object.create({ name: "x" }), createRules)).toBe(
      "name: is required: a name of 1–100 characters",
    );
    const withoutPrototype = Object.assign(Object.create(null), { name: "x" });
    expect(outcome(CreateKeyRequest, withoutPrototype)).toBe("ok");
  });

  it("names unknown fields, the empty name too, after the known ones", () => {
    expect(outcome(CreateKeyRequest, { "": 1, name: 5 })).toBe(
      "name: must be a string of 1–100 characters; : unknown field; allowed: name, expires_at",
    );
    expect(outcome(RollKeyRequest, { a: 1, b: 2 })).toBe("a, b: unknown fields; allowed: grace_period_seconds");
  });

  it.each([null, [], "x", 1, true])("refuses %j as the whole body", (body) => {
    expect(outcome(RollKeyRequest, body)).toBe("body: must be a JSON object");
  });

  it("answers only the schema's fields, with defaults filled in", () => {
    expect(validate(RollKeyRequest, {}, FIELD)).toEqual({ ok: true, value: { grace_period_seconds: 0 } });
    expect(validate(ListKeysQuery, { limit: 20 }, { noun: "query parameter" })).toEqual({
      ok: true,
      value: { limit: 20 },
    });
    const created = validate(CreateKeyRequest, { name: "x", expires_at: null }, FIELD);
    expect(created).toEqual({ ok: true, value: { name: "x", expires_at: null } });
  });

  it("reports one problem per field, in schema order", () => {
    expect(outcome(CreateKeyRequest, { expires_at: "soon", name: "" }, createRules)).toBe(
      "name: must be 1–100 characters (got 0); expires_at: must be an ISO 8601 date-time with a time zone, e.g. 2030-01-01T00:00:00Z",
    );
  });
});

describe("integers", () => {
  it.each([
    [0, "ok"],
    [86_400, "ok"],
    [-0, "ok"],
    [1.0, "ok"],
    [-1, "range"],
    [86_401, "range"],
    [1.5, "range"],
    [2 ** 53, "range"],
    [Number.NaN, "range"],
    [Number.POSITIVE_INFINITY, "range"],
    ["60", "range"],
    [null, "range"],
    [true, "range"],
  ])("grace_period_seconds %j → %s", (grace, expected) => {
    const answer = outcome(RollKeyRequest, { grace_period_seconds: grace });
    expect(answer).toBe(expected === "ok" ? "ok" : "grace_period_seconds: must be an integer from 0 to 86400");
  });
});

describe("rules beside the schema", () => {
  it("run only once the schema holds, and their wording wins", () => {
    const seen: unknown[] = [];
    const rules: Rules = {
      noun: "field",
      messages: { "": "send an object", name: { maxLength: "too long" } },
      checks: {
        name: (name: string) => {
          seen.push(name);
          return name === "bad" ? "is bad" : undefined;
        },
      },
    };
    expect(outcome(CreateKeyRequest, "x", rules)).toBe("body: send an object");
    expect(outcome(CreateKeyRequest, { name: "x".repeat(101) }, rules)).toBe("name: too long");
    expect(outcome(CreateKeyRequest, { name: "bad" }, rules)).toBe("name: is bad");
    expect(seen).toEqual(["bad"]);
  });
});

describe("the key_id path parameter", () => {
  it.each([
    ["nxf_0123456789abcdef0123456789abcdef", true],
    ["nxf_0123456789ABCDEF0123456789abcdef", false],
    ["nxf_0123456789abcdef0123456789abcde", false],
    ["nxf_0123456789abcdef0123456789abcdef0", false],
    ["nxf_0123456789abcdef0123456789abcdef\n", false],
    ["\nnxf_0123456789abcdef0123456789abcdef", false],
    ["nxf_０123456789abcdef0123456789abcdef", false],
    ["", false],
  ])("%j conforms: %s", (keyId, expected) => {
    expect(conforms(KeyIdParam, keyId)).toBe(expected);
  });
});

describe("the request schemas", () => {
  const ENFORCED = ["type", "properties", "required", "additionalProperties", "minLength", "maxLength", "pattern"];
  const KNOWN = [...ENFORCED, "format", "minimum", "maximum", "enum", "default", "description", "example"];

  function keywords(schema: JsonSchema, into: Set<string>): Set<string> {
    for (const [keyword, value] of Object.entries(schema)) {
      into.add(keyword);
      if (keyword === "properties") for (const child of Object.values(value as object)) keywords(child, into);
    }
    return into;
  }

  it("use only keywords the validator enforces or that only annotate", () => {
    const inputs = KEY_ROUTES.flatMap((route) => (route.input ? [route.input.schema] : []));
    expect(inputs).toEqual([CreateKeyRequest, ListKeysQuery, RollKeyRequest]);
    for (const schema of [...inputs, KeyIdParam]) {
      expect([...keywords(schema, new Set())].filter((keyword) => !KNOWN.includes(keyword))).toEqual([]);
    }
  });

  it("use only the date-time format, whose profile the adapter checks", () => {
    const formats = new Set<string>();
    for (const schema of [CreateKeyRequest, ListKeysQuery, RollKeyRequest]) {
      for (const property of Object.values(schema.properties) as JsonSchema[]) {
        if (property.format !== undefined) formats.add(property.format);
      }
    }
    expect([...formats]).toEqual(["date-time"]);
  });
});
