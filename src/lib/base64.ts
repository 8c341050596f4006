/** Standard (RFC 4648 §4) base64, as GitHub sends signatures and PEM carries keys. */

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The bytes of a padded standard base64 string, or null for anything else. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> | null {
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64.test(text)) return null;
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}
