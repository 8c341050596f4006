/**
 * Key format (SPEC §2) and the Authorization parser (SPEC §3), as pure functions:
 * table tests for the hostile inputs we know about, properties for the rest.
 * The checksum is checked against an independent bitwise CRC-32, node:zlib's crc32
 * and the published check value, so a shared mistake cannot pass unnoticed.
 */
import { crc32 as zlibCrc32 } from "node:zlib";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BASE62,
  crc32,
  generateKeyId,
  generateSecret,
  isWellFormedSecret,
  parseAuthorization,
  randomBase62,
  secretChecksum,
} from "../../src/keys/format.ts";
import { decodeStoredHash, digestSecret, hashSecret } from "../../src/keys/hash.ts";
import { hex } from "./harness.ts";

/** CRC-32/ISO-HDLC bit by bit (reflected poly 0xEDB88320), no table: the reference. */
function referenceCrc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Reads a base62 number written with the alphabet 0-9A-Za-z. */
function fromBase62(text: string): number {
  let value = 0;
  for (const ch of text) {
    const digit = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".indexOf(ch);
    if (digit < 0) throw new Error(`not base62: ${ch}`);
    value = value * 62 + digit;
  }
  return value;
}

const KEY_ID = /^nxf_[0-9a-f]{32}$/;
const SECRET = /^nxfs_[0-9A-Za-z]{64}$/;
const base62Char = fc.constantFrom(...BASE62.split(""));
const asciiText = fc.string({
  unit: fc.integer({ min: 0, max: 127 }).map((c) => String.fromCharCode(c)),
  maxLength: 200,
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("crc32", () => {
  it.each([
    ["", 0x00000000],
    ["a", 0xe8b7be43],
    ["abc", 0x352441c2],
    ["123456789", 0xcbf43926],
    ["The quick brown fox jumps over the lazy dog", 0x414fa339],
  ])("computes the IEEE CRC-32 check value of %j", (input, expected) => {
    expect(crc32(input)).toBe(expected);
  });

  it("agrees with a bitwise reference and with node:zlib on any ASCII text", () => {
    fc.assert(
      fc.property(asciiText, (text) => {
        expect(crc32(text)).toBe(referenceCrc32(text));
        expect(crc32(text)).toBe(zlibCrc32(text));
      }),
      { numRuns: 500 },
    );
  });
});

describe("key_id generation", () => {
  it("is nxf_ followed by 32 lowercase hex characters", () => {
    for (let i = 0; i < 200; i++) expect(generateKeyId()).toMatch(KEY_ID);
  });

  it("never repeats across many draws", () => {
    const ids = new Set(Array.from({ length: 5000 }, generateKeyId));
    expect(ids.size).toBe(5000);
  });
});

describe("key_secret generation", () => {
  it("is nxfs_ followed by 64 base62 characters", () => {
    for (let i = 0; i < 200; i++) {
      const secret = generateSecret();
      expect(secret).toHaveLength(69);
      expect(secret).toMatch(SECRET);
    }
  });

  it("ends with the CRC-32 of everything before it, in base62 left-padded to 6", () => {
    for (let i = 0; i < 500; i++) {
      const secret = generateSecret();
      const body = secret.slice(0, 63);
      expect(fromBase62(secret.slice(63))).toBe(referenceCrc32(body));
      expect(secret.slice(63)).toBe(secretChecksum(body));
      expect(isWellFormedSecret(secret)).toBe(true);
    }
  });

  it("pads small checksums with leading zeros to exactly six characters", () => {
    // Brute-force bodies until one has a CRC below 62^5, so the padding is exercised.
    let body = "";
    do body = `nxfs_${randomBase62(58)}`;
    while (referenceCrc32(body) >= 62 ** 5);
    const checksum = secretChecksum(body);
    expect(checksum).toHaveLength(6);
    expect(checksum[0]).toBe("0");
    expect(fromBase62(checksum)).toBe(referenceCrc32(body));
  });

  it("writes the largest CRC (0xFFFFFFFF) in six base62 characters", () => {
    // Any 32-bit value fits: 62^6 > 2^32.
    expect(62 ** 6).toBeGreaterThan(0xffffffff);
    expect(fromBase62("4gfFC3")).toBe(0xffffffff);
  });

  it("draws its randomness from crypto.getRandomValues", () => {
    const spy = vi.spyOn(crypto, "getRandomValues");
    generateSecret();
    generateKeyId();
    expect(spy).toHaveBeenCalled();
  });

  it("maps each accepted byte value to a base62 character exactly as often (no modulo bias)", () => {
    // Feed every byte value once: bytes 248..255 must be rejected, the 248 others must
    // cover the 62 characters exactly 4 times each.
    vi.spyOn(crypto, "getRandomValues").mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
      const bytes = array as unknown as Uint8Array;
      for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
      return array;
    });
    const out = randomBase62(248);
    const counts = new Map<string, number>();
    for (const ch of out) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const count of counts.values()) expect(count).toBe(4);
  });

  it("skips bytes 248..255 instead of folding them onto the first characters", () => {
    let call = 0;
    vi.spyOn(crypto, "getRandomValues").mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
      const bytes = array as unknown as Uint8Array;
      bytes.fill(call++ === 0 ? 250 : 61);
      return array;
    });
    expect(randomBase62(10)).toBe("z".repeat(10));
    expect(call).toBe(2);
  });

  it("spreads secret characters uniformly over the alphabet (chi-square, generous bound)", () => {
    // 5,000 secrets × 58 random chars ≈ 4,677 per character. Uniform data gives χ² ≈ 61
    // (61 degrees of freedom, σ ≈ 11); `byte % 62` without rejection gives χ² ≈ 1,900.
    // The bound of 200 fails for uniform data with probability below 1e-15.
    const counts = new Map<string, number>(BASE62.split("").map((c) => [c, 0]));
    let total = 0;
    for (let i = 0; i < 5000; i++) {
      for (const ch of generateSecret().slice(5, 63)) {
        counts.set(ch, counts.get(ch)! + 1);
        total++;
      }
    }
    const expected = total / 62;
    let chi2 = 0;
    for (const count of counts.values()) chi2 += (count - expected) ** 2 / expected;
    expect(counts.size).toBe(62);
    expect(chi2).toBeLessThan(200);
  });
});

describe("isWellFormedSecret", () => {
  it("rejects every single-character change of a valid secret", () => {
    // CRC-32 catches every burst shorter than 33 bits, so no one-character edit passes.
    fc.assert(
      fc.property(fc.integer({ min: 5, max: 68 }), base62Char, (position, replacement) => {
        const secret = generateSecret();
        fc.pre(secret[position] !== replacement);
        const flipped = secret.slice(0, position) + replacement + secret.slice(position + 1);
        expect(isWellFormedSecret(flipped)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it("rejects truncated and extended secrets", () => {
    const secret = generateSecret();
    expect(isWellFormedSecret(secret.slice(0, -1))).toBe(false);
    expect(isWellFormedSecret(`${secret}0`)).toBe(false);
    expect(isWellFormedSecret(secret.slice(1))).toBe(false);
  });
});

describe("parseAuthorization", () => {
  const keyId = generateKeyId();
  const secret = generateSecret();
  const pair = `${keyId}:${secret}`;
  const flip = (text: string, at: number) => {
    const replacement = text[at] === "a" ? "b" : "a";
    return text.slice(0, at) + replacement + text.slice(at + 1);
  };

  it.each([
    ["the canonical form", `Bearer ${pair}`],
    ["a lowercase scheme", `bearer ${pair}`],
    ["an uppercase scheme", `BEARER ${pair}`],
    ["a mixed-case scheme", `bEaReR ${pair}`],
    ["surrounding spaces", `   Bearer ${pair}   `],
    ["surrounding tabs", `\t\tBearer ${pair}\t`],
    ["mixed surrounding whitespace", ` \t Bearer ${pair} \t `],
    ["several spaces after the scheme", `Bearer    ${pair}`],
  ])("accepts %s", (_name, header) => {
    expect(parseAuthorization(header)).toEqual({ ok: true, credentials: { keyId, secret } });
  });

  const nearMissSecret = flip(secret, 20);
  const checksumFlipped = flip(secret, 66);

  it.each([
    ["a missing header (null)", null, "missing"],
    ["a missing header (undefined)", undefined, "missing"],
    ["an empty header", "", "missing"],
    ["whitespace only", "   \t ", "wrong_scheme"],
    ["the scheme alone", "Bearer", "wrong_scheme"],
    ["the scheme and a space", "Bearer ", "wrong_scheme"],
    ["the Basic scheme", `Basic ${btoa(pair)}`, "wrong_scheme"],
    ["the Basic scheme with the pair in clear", `Basic ${pair}`, "wrong_scheme"],
    ["the Token scheme", `Token ${pair}`, "wrong_scheme"],
    ["a scheme that only starts with Bearer", `Bearerx ${pair}`, "wrong_scheme"],
    ["no space after the scheme", `Bearer${pair}`, "wrong_scheme"],
    ["a tab after the scheme", `Bearer\t${pair}`, "wrong_scheme"],
    ["a no-break space after the scheme", `Bearer\u00a0${pair}`, "wrong_scheme"],
    ["the pair without a scheme", pair, "wrong_scheme"],
    ["a Cyrillic look-alike scheme", `\u0412earer ${pair}`, "wrong_scheme"],
    ["a fullwidth look-alike scheme", `\uff22earer ${pair}`, "wrong_scheme"],
    ["a space instead of the colon", `Bearer ${keyId} ${secret}`, "malformed"],
    ["two colons", `Bearer ${keyId}::${secret}`, "malformed"],
    ["a trailing colon", `Bearer ${pair}:`, "malformed"],
    ["a third part", `Bearer ${pair}:${secret}`, "malformed"],
    ["the parts swapped", `Bearer ${secret}:${keyId}`, "malformed"],
    ["the key_id alone", `Bearer ${keyId}`, "malformed"],
    ["the secret alone", `Bearer ${secret}`, "malformed"],
    [
      "an uppercase-hex key_id",
      `Bearer nxf_${keyId
        .slice(4)
        .toUpperCase()
        .replace(/^[0-9]/, "A")}:${secret}`,
      "malformed",
    ],
    ["an uppercase key_id prefix", `Bearer NXF_${keyId.slice(4)}:${secret}`, "malformed"],
    ["a 31-char key_id", `Bearer ${keyId.slice(0, -1)}:${secret}`, "malformed"],
    ["a 33-char key_id", `Bearer ${keyId}0:${secret}`, "malformed"],
    ["a fullwidth colon", `Bearer ${keyId}\uff1a${secret}`, "malformed"],
    ["a fullwidth digit in the key_id", `Bearer ${keyId.slice(0, -1)}\uff10:${secret}`, "malformed"],
    ["an Arabic-Indic digit in the key_id", `Bearer ${keyId.slice(0, -1)}\u0660:${secret}`, "malformed"],
    ["a Cyrillic a in the secret", `Bearer ${keyId}:${secret.slice(0, 30)}\u0430${secret.slice(31)}`, "malformed"],
    ["a zero-width space inside the pair", `Bearer ${keyId}\u200b:${secret}`, "malformed"],
    ["a NUL at the end", `Bearer ${pair}\u0000`, "malformed"],
    ["a NUL inside the secret", `Bearer ${keyId}:${secret.slice(0, 40)}\u0000${secret.slice(41)}`, "malformed"],
    ["an escape character", `Bearer ${pair}\u001b[0m`, "malformed"],
    ["a DEL character", `Bearer ${pair}\u007f`, "malformed"],
    ["a vertical tab around the value", `\u000bBearer ${pair}`, "wrong_scheme"],
    ["a CR LF inside", `Bearer ${pair}\r\nX-Evil: 1`, "malformed"],
    ["a truncated secret", `Bearer ${keyId}:${secret.slice(0, -1)}`, "malformed"],
    ["an extended secret", `Bearer ${pair}0`, "malformed"],
    ["a secret with a non-base62 character", `Bearer ${keyId}:${secret.slice(0, 30)}-${secret.slice(31)}`, "malformed"],
    ["comma-joined duplicates", `Bearer ${pair}, Bearer ${pair}`, "malformed"],
    ["comma-joined pairs under one scheme", `Bearer ${pair},${pair}`, "malformed"],
    ["a near-miss secret (one random character changed)", `Bearer ${keyId}:${nearMissSecret}`, "bad_checksum"],
    ["a near-miss secret (one checksum character changed)", `Bearer ${keyId}:${checksumFlipped}`, "bad_checksum"],
  ])("rejects %s", (_name, header, problem) => {
    expect(parseAuthorization(header)).toEqual({ ok: false, problem });
  });

  const MB = 1024 * 1024;
  it.each([
    ["1 MB of garbage", "x".repeat(MB)],
    ["Bearer and 1 MB of garbage", `Bearer ${"a".repeat(MB)}`],
    ["a valid pair followed by 1 MB", `Bearer ${pair}${"0".repeat(MB)}`],
    ["1 MB of spaces between the scheme and a bad pair", `Bearer${" ".repeat(MB)}${keyId} ${secret}`],
    ["1 MB of spaces before a non-space tail", `Bearer ${pair}${" ".repeat(MB)}x`],
    ["1 MB of tabs before a non-space tail", `${"\t".repeat(MB)}x`],
    ["1 MB of colons", `Bearer ${":".repeat(MB)}`],
  ])("rejects %s in linear time", (_name, header) => {
    // A quadratic scan of a 1 MB header takes minutes; linear work takes milliseconds.
    const started = performance.now();
    expect(parseAuthorization(header).ok).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it.each([
    ["1 MB of surrounding whitespace", `${" ".repeat(MB)}Bearer ${pair}${"\t".repeat(MB)}`],
    ["1 MB of spaces between the scheme and the pair", `Bearer${" ".repeat(MB)}${pair}`],
  ])("accepts a valid pair after %s, in linear time", (_name, header) => {
    const started = performance.now();
    expect(parseAuthorization(header)).toEqual({ ok: true, credentials: { keyId, secret } });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("accepts every freshly generated pair, whatever the case of the scheme", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), (pad, upper) => {
        const id = generateKeyId();
        const s = generateSecret();
        const scheme = [..."bearer"].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join("");
        const header = `${pad ? " \t" : ""}${scheme} ${id}:${s}${pad ? "\t " : ""}`;
        expect(parseAuthorization(header)).toEqual({ ok: true, credentials: { keyId: id, secret: s } });
      }),
      { numRuns: 300 },
    );
  });

  it("never accepts a header whose secret differs from a valid one by one character", () => {
    fc.assert(
      fc.property(fc.integer({ min: 5, max: 68 }), base62Char, (position, replacement) => {
        fc.pre(secret[position] !== replacement);
        const near = secret.slice(0, position) + replacement + secret.slice(position + 1);
        expect(parseAuthorization(`Bearer ${keyId}:${near}`)).toEqual({ ok: false, problem: "bad_checksum" });
      }),
      { numRuns: 500 },
    );
  });

  it("never throws and only accepts exactly the canonical grammar, on arbitrary strings", () => {
    const canonical = /^[ \t]*[Bb][Ee][Aa][Rr][Ee][Rr] +(nxf_[0-9a-f]{32}):(nxfs_[0-9A-Za-z]{64})[ \t]*$/;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.string({ unit: "binary", maxLength: 300 }),
          fc
            .tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }))
            .map(([a, b]) => `${a}Bearer ${pair}${b}`),
          fc
            .tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }))
            .map(([a, b]) => `Bearer ${keyId}${a}:${b}${secret}`),
        ),
        (header) => {
          const parsed = parseAuthorization(header);
          const match = canonical.exec(header);
          if (parsed.ok) {
            expect(match).not.toBeNull();
            expect(isWellFormedSecret(parsed.credentials.secret)).toBe(true);
          } else if (match !== null) {
            expect(parsed.problem).toBe("bad_checksum");
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("hashSecret and decodeStoredHash", () => {
  it("stores sha256:<64 lowercase hex>", async () => {
    expect(await hashSecret(generateSecret())).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("hashes the secret's bytes with SHA-256 (FIPS 180-2 test vector)", async () => {
    expect(await hashSecret("abc")).toBe("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("decodes what it stores back to the digest bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 100 }), async (secret) => {
        const decoded = decodeStoredHash(await hashSecret(secret));
        expect(decoded).not.toBeNull();
        expect(hex(decoded!)).toBe(hex(await digestSecret(secret)));
      }),
      { numRuns: 200 },
    );
  });

  const digestHex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  it.each([
    ["an empty string", ""],
    ["the prefix alone", "sha256:"],
    ["another scheme (sha512)", `sha512:${digestHex}${digestHex}`],
    ["another scheme with a 64-hex body (sha3)", `sha3:${digestHex}`],
    ["bcrypt", "$2b$12$abcdefghijklmnopqrstuuJ1K0Gq9b0B0hYc9Yq3y4u8iEw3r9K5m"],
    ["an uppercase scheme name", `SHA256:${digestHex}`],
    ["uppercase hex", `sha256:${digestHex.toUpperCase()}`],
    ["63 hex characters", `sha256:${digestHex.slice(1)}`],
    ["65 hex characters", `sha256:${digestHex}0`],
    ["a non-hex character", `sha256:${digestHex.slice(1)}g`],
    ["a leading space", ` sha256:${digestHex}`],
    ["a trailing newline", `sha256:${digestHex}\n`],
    ["a bare digest without a scheme", digestHex],
    ["a secret stored in clear", generateSecret()],
  ])("rejects %s", (_name, stored) => {
    expect(decodeStoredHash(stored)).toBeNull();
  });
});
