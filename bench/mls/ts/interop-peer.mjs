// ts-mls side of the openmls <-> ts-mls interop test. Driven by the Rust program
// src/bin/interop.rs over stdin/stdout: one JSON object per line in, one per line out.
// Binary values travel as hex of the TLS-serialized MLSMessage.
import readline from "node:readline";
import {
  createCommit, joinGroup, processPrivateMessage, createApplicationMessage, emptyPskIndex,
  bytesToBase64,
} from "ts-mls";
import { impl, newMember, enc, dec } from "./common.mjs";

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (h) => new Uint8Array(Buffer.from(h, "hex"));
const te = new TextEncoder(), td = new TextDecoder();
const clients = new Map(); // name -> { kp, state }
const info = (c) => ({
  epoch: Number(c.state.groupContext.epoch),
  auth: hex(c.state.keySchedule.epochAuthenticator),
  leaf: c.state.privatePath.leafIndex,
  active: c.state.groupActiveState.kind,
  members: c.state.ratchetTree.filter((n) => n && n.nodeType === "leaf").length,
});

async function handle(req) {
  const c = clients.get(req.who);
  switch (req.op) {
    case "kp": {
      const kp = await newMember(req.who);
      clients.set(req.who, { kp });
      return { kp: hex(enc({ wireformat: "mls_key_package", keyPackage: kp.publicPackage })) };
    }
    case "welcome": {
      const m = dec(unhex(req.data));
      if (m.wireformat !== "mls_welcome") throw new Error(`expected welcome, got ${m.wireformat}`);
      c.state = await joinGroup(m.welcome, c.kp.publicPackage, c.kp.privatePackage, emptyPskIndex, impl);
      return info(c);
    }
    case "process": {
      const m = dec(unhex(req.data));
      if (m.wireformat !== "mls_private_message") throw new Error(`expected private message, got ${m.wireformat}`);
      const r = await processPrivateMessage(c.state, m.privateMessage, emptyPskIndex, impl);
      c.state = r.newState;
      return r.kind === "applicationMessage" ? { kind: "app", text: td.decode(r.message), ...info(c) } : { kind: "commit", ...info(c) };
    }
    case "send": {
      const r = await createApplicationMessage(c.state, te.encode(req.text), impl);
      c.state = r.newState;
      return { data: hex(enc({ wireformat: "mls_private_message", privateMessage: r.privateMessage })) };
    }
    case "add": {
      const kp = dec(unhex(req.kp));
      if (kp.wireformat !== "mls_key_package") throw new Error("expected key package");
      const r = await createCommit({ state: c.state, cipherSuite: impl },
        { extraProposals: [{ proposalType: "add", add: { keyPackage: kp.keyPackage } }], ratchetTreeExtension: true });
      c.state = r.newState;
      return { commit: hex(enc(r.commit)), welcome: hex(enc({ wireformat: "mls_welcome", welcome: r.welcome })), ...info(c) };
    }
    case "remove": {
      const r = await createCommit({ state: c.state, cipherSuite: impl },
        { extraProposals: [{ proposalType: "remove", remove: { removed: req.leaf } }] });
      c.state = r.newState;
      return { commit: hex(enc(r.commit)), ...info(c) };
    }
    case "update": {
      const r = await createCommit({ state: c.state, cipherSuite: impl }, {});
      c.state = r.newState;
      return { commit: hex(enc(r.commit)), ...info(c) };
    }
    case "update_tentative": {
      // Make a commit but keep the current state: the app applies it only once the room
      // log shows it came first (ts-mls states are immutable values, so this is free).
      const r = await createCommit({ state: c.state, cipherSuite: impl }, {});
      c.pending = r.newState;
      return { commit: hex(enc(r.commit)), ...info(c) };
    }
    case "apply_pending":
      c.state = c.pending; c.pending = undefined;
      return info(c);
    case "drop_pending":
      c.pending = undefined;
      return info(c);
    case "info":
      return info(c);
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let out;
  try {
    out = { ok: true, ...(await handle(JSON.parse(line))) };
  } catch (e) {
    out = { ok: false, error: `${e?.constructor?.name}: ${e?.message}` };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
