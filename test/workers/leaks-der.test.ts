/**
 * DER → raw ECDSA signature conversion (src/leaks/der.ts), which stands between GitHub's
 * signature header and WebCrypto: hostile encodings as a table, and properties over random
 * integers and real signatures.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { derToRawSignature } from "../../src/leaks/der.ts";
import { rawToDer } from "./leaks-support.ts";

const ones = (n: number, byte = 0x11) => Array(n).fill(byte) as number[];
const int = (bytes: number[]) => [0x02, bytes.length, ...bytes];
const seq = (content: number[]) => [0x30, content.length, ...content];

describe("derToRawSignature", () => {
  it("decodes a canonical signature, left-padding short integers and dropping a sign-guarding zero", () => {
    const der = new Uint8Array(seq([...int([0x01]), ...int([0x00, 0x80, ...ones(31)])]));
    const raw = derToRawSignature(der)!;
    expect(raw).toHaveLength(64);
    expect([...raw.subarray(0, 32)]).toEqual([...ones(31, 0), 0x01]);
    expect([...raw.subarray(32)]).toEqual([0x80, ...ones(31)]);
  });

  const hostile: [string, number[]][] = [
    ["empty", []],
    ["a lone SEQUENCE tag", [0x30]],
    ["not a SEQUENCE", [0x31, 6, ...int([1]), ...int([1])]],
    ["a SEQUENCE length longer than the input", [0x30, 7, ...int([1]), ...int([1])]],
    ["a SEQUENCE length shorter than the input", [0x30, 5, ...int([1]), ...int([1])]],
    ["trailing bytes after the SEQUENCE", [...seq([...int([1]), ...int([1])]), 0x00]],
    ["trailing bytes inside the SEQUENCE", seq([...int([1]), ...int([1]), 0x00])],
    ["a long-form SEQUENCE length", [0x30, 0x81, 6, ...int([1]), ...int([1])]],
    ["an indefinite SEQUENCE length", [0x30, 0x80, ...int([1]), ...int([1]), 0, 0]],
    ["one INTEGER only", seq(int([1]))],
    ["three INTEGERs", seq([...int([1]), ...int([1]), ...int([1])])],
    ["r not an INTEGER", seq([0x04, 1, 1, ...int([1])])],
    ["a zero-length INTEGER", seq([0x02, 0, ...int([1])])],
    ["a long-form INTEGER length", seq([0x02, 0x81, 1, 1, ...int([1])])],
    ["an INTEGER length past the SEQUENCE", seq([0x02, 5, 1, ...int([1])])],
    ["a negative r", seq([...int([0x80, ...ones(31)]), ...int([1])])],
    ["a negative s", seq([...int([1]), ...int([0xff])])],
    ["a non-minimal leading zero", seq([...int([0x00, 0x01]), ...int([1])])],
    ["a lone zero byte r (r = 0)", seq([...int([0x00]), ...int([1])])],
    ["r = 0 written in 32 bytes", seq([...int(ones(32, 0)), ...int([1])])],
    ["an r of 33 bytes without a sign zero", seq([...int([0x01, ...ones(32)]), ...int([1])])],
    ["an r of 34 bytes", seq([...int([0x00, 0x80, ...ones(32)]), ...int([1])])],
    ["an oversized s (P-384 width)", seq([...int([1]), ...int(ones(48))])],
    ["two zeros before a high byte", seq([...int([0x00, 0x00, 0x80, ...ones(30)]), ...int([1])])],
  ];
  for (const [what, bytes] of hostile) {
    it(`refuses ${what}`, () => {
      expect(derToRawSignature(new Uint8Array(bytes))).toBeNull();
    });
  }

  it("round-trips every nonzero 32-byte r and s through canonical DER", () => {
    const scalar = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((b) => b.some((x) => x !== 0));
    fc.assert(
      fc.property(scalar, scalar, (r, s) => {
        const raw = new Uint8Array([...r, ...s]);
        expect(derToRawSignature(rawToDer(raw))).toEqual(raw);
      }),
      { numRuns: 2_000 },
    );
  });

  it("never accepts arbitrary bytes that are not the canonical encoding of what it returns", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const raw = derToRawSignature(bytes);
        if (raw !== null) expect(rawToDer(raw)).toEqual(bytes);
      }),
      { numRuns: 5_000 },
    );
  });

  it("never accepts a canonical signature with one byte appended, removed or its length changed", () => {
    const scalar = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((b) => b.some((x) => x !== 0));
    fc.assert(
      fc.property(scalar, scalar, fc.integer({ min: 0, max: 255 }), (r, s, extra) => {
        const der = rawToDer(new Uint8Array([...r, ...s]));
        expect(derToRawSignature(new Uint8Array([...der, extra]))).toBeNull();
        expect(derToRawSignature(der.subarray(0, der.length - 1))).toBeNull();
        const wrongLength = new Uint8Array(der);
        wrongLength[1] = (wrongLength[1]! + 1 + (extra % 100)) & 0xff;
        expect(derToRawSignature(wrongLength)).toBeNull();
      }),
      { numRuns: 1_000 },
    );
  });

  it("turns real P-256 signatures into ones WebCrypto verifies", async () => {
    const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const algorithm = { name: "ECDSA", hash: "SHA-256" };
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (message) => {
        const raw = new Uint8Array(await crypto.subtle.sign(algorithm, pair.privateKey, message));
        const back = derToRawSignature(rawToDer(raw))!;
        expect(await crypto.subtle.verify(algorithm, pair.publicKey, back, message)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
