// ts-mls timings for a join, a leave and a 256-byte application message in groups of N
// members. Usage: node bench.mjs [runs] [N...]   (default: 5 runs, N = 2 50 500)
import {
  createGroup, createCommit, joinGroup, processPrivateMessage, createApplicationMessage,
  emptyPskIndex, encodeMlsMessage,
} from "ts-mls";
import { impl, CS_NAME, PROVIDER, newMember, enc, dec, now, median } from "./common.mjs";

const BATCH = 100, APP_MSGS = 200;
const args = process.argv.slice(2).map(Number);
const runs = args[0] || 5;
const sizes = args.length > 1 ? args.slice(1) : [2, 50, 500];

async function processBytes(state, bytes) {
  const m = dec(bytes);
  if (m.wireformat !== "mls_private_message") throw new Error("expected private message");
  return processPrivateMessage(state, m.privateMessage, emptyPskIndex, impl);
}

async function bench(n) {
  const tb = now();
  const a = await newMember("A");
  const b = await newMember("B");
  let ga = await createGroup(new TextEncoder().encode(`g${n}`), a.publicPackage, a.privatePackage, [], impl);
  let gb;
  let added = 1, idx = 0;
  while (added < n) {
    const k = Math.min(BATCH, n - added);
    const props = [];
    for (let i = 0; i < k; i++) {
      const kp = added + i === 1 ? b.publicPackage : (await newMember(`m${idx++}`)).publicPackage;
      props.push({ proposalType: "add", add: { keyPackage: kp } });
    }
    const r = await createCommit({ state: ga, cipherSuite: impl }, { extraProposals: props, ratchetTreeExtension: true });
    ga = r.newState;
    if (!gb) {
      gb = await joinGroup(dec(enc({ wireformat: "mls_welcome", welcome: r.welcome })).welcome, b.publicPackage, b.privatePackage, emptyPskIndex, impl);
    } else {
      gb = (await processBytes(gb, enc(r.commit))).newState;
    }
    added += k;
  }
  const buildS = (now() - tb) / 1000;
  const addC = [], addP = [], welP = [], rmC = [], rmP = [];
  let commitB = 0, welcomeB = 0, rmB = 0;
  for (let r = 0; r < runs; r++) {
    const x = await newMember(`x${r}`);
    const kpBytes = enc({ wireformat: "mls_key_package", keyPackage: x.publicPackage });
    const kp = dec(kpBytes).keyPackage;
    let t = now();
    const c = await createCommit({ state: ga, cipherSuite: impl },
      { extraProposals: [{ proposalType: "add", add: { keyPackage: kp } }], ratchetTreeExtension: true });
    ga = c.newState;
    const cb = enc(c.commit);
    const wb = enc({ wireformat: "mls_welcome", welcome: c.welcome });
    addC.push(now() - t);
    commitB = cb.length; welcomeB = wb.length;
    t = now();
    gb = (await processBytes(gb, cb)).newState;
    addP.push(now() - t);
    t = now();
    const gx = await joinGroup(dec(wb).welcome, x.publicPackage, x.privatePackage, emptyPskIndex, impl);
    welP.push(now() - t);
    if (process.env.VERBOSE) console.error(`n=${n} run ${r}: welcome ${(now() - t).toFixed(0)} ms, add create ${addC.at(-1).toFixed(0)} ms, member ${addP.at(-1).toFixed(0)} ms, tree nodes ${ga.ratchetTree.length}`);
    if (gx.groupContext.epoch !== ga.groupContext.epoch) throw new Error("epoch mismatch");
    // Leave: remove the newcomer.
    t = now();
    const rc = await createCommit({ state: ga, cipherSuite: impl },
      { extraProposals: [{ proposalType: "remove", remove: { removed: gx.privatePath.leafIndex } }] });
    ga = rc.newState;
    const rcb = enc(rc.commit);
    rmC.push(now() - t);
    rmB = rcb.length;
    t = now();
    gb = (await processBytes(gb, rcb)).newState;
    rmP.push(now() - t);
  }
  const pt = new Uint8Array(256).fill(0x61);
  const encT = [], decT = [];
  let ctLen = 0;
  for (let i = 0; i < APP_MSGS; i++) {
    let t = now();
    const m = await createApplicationMessage(ga, pt, impl);
    ga = m.newState;
    const mb = enc({ wireformat: "mls_private_message", privateMessage: m.privateMessage });
    encT.push((now() - t) * 1000);
    ctLen = mb.length;
    t = now();
    const res = await processBytes(gb, mb);
    if (res.kind !== "applicationMessage" || res.message.length !== 256) throw new Error("app decrypt");
    gb = res.newState;
    decT.push((now() - t) * 1000);
  }
  const f = (x) => x.toFixed(2);
  console.log(`| ${n} | add (no path) | ${f(median(addC))} | ${commitB} | ${welcomeB} | ${f(median(addP))} | ${f(median(welP))} |`);
  console.log(`| ${n} | remove | ${f(median(rmC))} | ${rmB} | - | ${f(median(rmP))} | - |`);
  console.log(`| ${n} | app 256 B | enc ${median(encT).toFixed(0)} µs | +${ctLen - 256} B | - | dec ${median(decT).toFixed(0)} µs | - |`);
  console.log(`| ${n} | (group built in ${buildS.toFixed(1)} s by batched adds of ${BATCH}) | | | | | |`);
}

console.log(`ts-mls 1.6.4 on Node ${process.version}, ${CS_NAME} (0x0001), crypto provider ${PROVIDER}, ${runs} runs`);
console.log("| N | operation | committer create ms | commit bytes | welcome bytes | one member processes ms | newcomer processes welcome ms |");
console.log("|---|---|---|---|---|---|---|");
for (const n of sizes) await bench(n);
