// Sender-keys alternative in Node with WebCrypto only (X25519 + HKDF-SHA256 + AES-256-GCM
// + Ed25519), same variants and byte layout as the Rust src/bin/sender_keys.rs:
//   S  static-static X25519 per pair, entry = idx(2)+nonce(12)+ct(48) = 62 B
//   E  ephemeral X25519 per recipient + Ed25519 signature per entry = 146 B
// Times are for ONE member. Usage: node sender-keys.mjs [runs] [N...]
import { median, now } from "./common.mjs";
const s = globalThis.crypto.subtle;
const SALT = new TextEncoder().encode("streamchat/v2/sk");
const ROOM = new Uint8Array(16).fill(7);
const args = process.argv.slice(2).map(Number);
const runs = args[0] || 5;
const sizes = args.length > 1 ? args.slice(1) : [2, 50, 500];

function info(epoch, from, to, extra = new Uint8Array(0)) {
  const v = new Uint8Array(16 + 8 + 4 + extra.length);
  v.set(ROOM); new DataView(v.buffer).setBigUint64(16, BigInt(epoch)); new DataView(v.buffer).setUint16(24, from); new DataView(v.buffer).setUint16(26, to);
  v.set(extra, 28);
  return v;
}
async function aeadKey(priv, pub, inf) {
  const shared = await s.deriveBits({ name: "X25519", public: pub }, priv, 256);
  const ikm = await s.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  return s.deriveKey({ name: "HKDF", hash: "SHA-256", salt: SALT, info: inf }, ikm, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}
const genX = () => s.generateKey({ name: "X25519" }, true, ["deriveBits"]);
const genEd = () => s.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);

async function bench(n) {
  const members = [];
  for (let i = 0; i < n; i++) members.push({ x: await genX(), ed: await genEd() });
  const rS = [[], []], rE = [[], []];
  for (let run = 0; run < runs; run++) {
    const epoch = run + 1;
    const sk = crypto.getRandomValues(new Uint8Array(32));
    // S: static-static
    let t = now();
    const parts = [];
    for (let j = 1; j < n; j++) {
      const key = await aeadKey(members[0].x.privateKey, members[j].x.publicKey, info(epoch, 0, j));
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = new Uint8Array(await s.encrypt({ name: "AES-GCM", iv }, key, sk));
      const e = new Uint8Array(62); new DataView(e.buffer).setUint16(0, j); e.set(iv, 2); e.set(ct, 14);
      parts.push(e);
    }
    rS[0].push(now() - t);
    const inc = [];
    for (let j = 1; j < n; j++) {
      const key = await aeadKey(members[j].x.privateKey, members[0].x.publicKey, info(epoch, j, 0));
      const iv = crypto.getRandomValues(new Uint8Array(12));
      inc.push([j, iv, new Uint8Array(await s.encrypt({ name: "AES-GCM", iv }, key, sk))]);
    }
    t = now();
    for (const [j, iv, ct] of inc) {
      const key = await aeadKey(members[0].x.privateKey, members[j].x.publicKey, info(epoch, j, 0));
      const pt = new Uint8Array(await s.decrypt({ name: "AES-GCM", iv }, key, ct));
      if (pt.length !== 32) throw new Error("bad");
    }
    rS[1].push(now() - t);
    // E: ephemeral per recipient + Ed25519 signature per entry
    t = now();
    const eparts = [];
    for (let j = 1; j < n; j++) {
      const eph = await genX();
      const ephPub = new Uint8Array(await s.exportKey("raw", eph.publicKey));
      const key = await aeadKey(eph.privateKey, members[j].x.publicKey, info(epoch, 0, j, ephPub));
      const ct = new Uint8Array(await s.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, key, sk));
      const e = new Uint8Array(146); new DataView(e.buffer).setUint16(0, j); e.set(ephPub, 2); e.set(ct, 34);
      e.set(new Uint8Array(await s.sign("Ed25519", members[0].ed.privateKey, e.subarray(0, 82))), 82);
      eparts.push(e);
    }
    rE[0].push(now() - t);
    const einc = [];
    for (let j = 1; j < n; j++) {
      const eph = await genX();
      const ephPub = new Uint8Array(await s.exportKey("raw", eph.publicKey));
      const key = await aeadKey(eph.privateKey, members[0].x.publicKey, info(epoch, j, 0, ephPub));
      const ct = new Uint8Array(await s.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, key, sk));
      const e = new Uint8Array(146); e.set(ephPub, 2); e.set(ct, 34);
      e.set(new Uint8Array(await s.sign("Ed25519", members[j].ed.privateKey, e.subarray(0, 82))), 82);
      einc.push([j, e]);
    }
    t = now();
    for (const [j, e] of einc) {
      if (!(await s.verify("Ed25519", members[j].ed.publicKey, e.subarray(82), e.subarray(0, 82)))) throw new Error("sig");
      const ephPub = e.slice(2, 34);
      const pub = await s.importKey("raw", ephPub, { name: "X25519" }, true, []);
      const key = await aeadKey(members[0].x.privateKey, pub, info(epoch, j, 0, ephPub));
      const pt = new Uint8Array(await s.decrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, key, e.subarray(34, 82)));
      if (pt.length !== 32) throw new Error("bad");
    }
    rE[1].push(now() - t);
  }
  for (const [name, entry, r] of [["S static-static", 62, rS], ["E ephemeral/recipient + sig", 146, rE]]) {
    const sent = (n - 1) * entry, recvT = sent, recvB = (n - 1) * sent;
    console.log(`| ${n} | ${name} | ${entry} | ${sent} | ${recvT} | ${recvB} | ${n * sent + n * recvT} | ${n * sent + n * recvB} | ${median(r[0]).toFixed(3)} | ${median(r[1]).toFixed(3)} |`);
  }
}
console.log(`sender keys, Node ${process.version} WebCrypto (X25519 deriveBits + HKDF deriveKey + AES-256-GCM + Ed25519); ${runs} runs; times are for ONE member`);
console.log("| N | variant | entry B | sent per member B | received per member (targeted) B | received per member (broadcast) B | server total in+out targeted B | server total in+out broadcast B | member send ms | member receive ms |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const n of sizes) await bench(n);
