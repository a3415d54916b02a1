// Shared helpers for the ts-mls side of the evaluation.
import {
  getCiphersuiteImpl, getCiphersuiteFromName, generateKeyPackage, defaultCapabilities,
  defaultLifetime, encodeMlsMessage, decodeMlsMessage, nobleCryptoProvider,
} from "ts-mls";

export const CS_NAME = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"; // 0x0001
// PROVIDER=noble selects ts-mls' pure-JS provider (@noble/*) instead of the default
// WebCrypto + @hpke/core one.
export const PROVIDER = process.env.PROVIDER === "noble" ? "noble" : "default (WebCrypto + @hpke/core)";
export const impl = await getCiphersuiteImpl(getCiphersuiteFromName(CS_NAME),
  process.env.PROVIDER === "noble" ? nobleCryptoProvider : undefined);

export async function newMember(name) {
  const credential = { credentialType: "basic", identity: new TextEncoder().encode(name) };
  return generateKeyPackage(credential, defaultCapabilities(), defaultLifetime, [], impl);
}

export const enc = (m) => encodeMlsMessage({ version: "mls10", ...m });
export function dec(bytes) {
  const r = decodeMlsMessage(bytes, 0);
  if (!r) throw new Error("decode failed");
  return r[0];
}
export const now = () => performance.now();
export function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
