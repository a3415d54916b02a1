// A benchmark, not a test: the cost of one epoch change with the browser's MLS engine
// (src/mls.ts, ts-mls 1.6.4 on WebCrypto, docs/crypto.md §16) in a room of N members, for
// issue #19. The same method as the Rust engine's crates/mls/examples/epoch_cost.rs, run
// under Node, whose WebCrypto (X25519, Ed25519, AES-GCM, SHA-256) stands in for the
// browser's: ts-mls calls the same `crypto.subtle` API in both.
//
// For each N, member A creates the group and adds the other N-1 with one commit of N-1
// KeyPackages; member B (the first of them) joins from that Welcome and keeps up; the
// others exist only as leaves. Then, for each run (5 for N <= 50, EPOCH_COST_RUNS_LARGE,
// default 3, above):
// - join: a newcomer X publishes a KeyPackage; A commits its Add (commit_ms, commit_bytes,
//   welcome_bytes); A applies its own commit when it comes back (own_apply_ms); B
//   processes it (process_ms); X joins from the Welcome (welcome_ms). N -> N+1 members;
// - leave: A commits the removal of X, applies it, B processes it. Back to N.
// Medians over the runs. Each of those also records the process's CPU time (cpu_ms:
// Node runs WebCrypto jobs on its thread pool, so all threads count), which a loaded
// machine disturbs less than wall time. Only the "fresh" tree (most of it blank after the add-all
// commit): the browser engine has no self-update (its commits carry Add and Remove
// only), so the Rust benchmark's "filled" shape cannot be built with it.
// Also a 256-byte application message: A seals, B opens (medians of 200), and beside it
// the same message sealed and opened as a v1 room does (v1_seal_us, v1_open_us).
//
// Run: `npx vitest run --config vitest.bench.config.ts` in web/ (scripts/bench-mls-epochs
// does it), with EPOCH_COST_SIZES (default "2,50,500") and EPOCH_COST_OUT (a file that
// receives one JSON object a line per N; without it they go to the console).
import { appendFileSync } from 'node:fs';
import { it } from 'vitest';
import { deriveRoomKeys, generateIdentity, open as openV1, randomBytes, seal as sealV1 } from '../src/crypto';
import { type PendingJoin, type Processed, type RoomGroup, createGroup, keyPackage } from '../src/mls';

const ROOM = 'AAECAwQFBgcICQoLDA0ODw';
const MESSAGES = 200;
const MESSAGE_BYTES = 256;

const sizes = (process.env.EPOCH_COST_SIZES ?? '2,50,500').split(',').map((s) => Number.parseInt(s, 10));
const runsLarge = Number.parseInt(process.env.EPOCH_COST_RUNS_LARGE ?? '3', 10);
const out = process.env.EPOCH_COST_OUT;

function median(values: number[]): number {
  const v = [...values].sort((x, y) => x - y);
  const n = v.length;
  if (n === 0) return Number.NaN;
  return n % 2 === 1 ? (v[(n - 1) / 2] as number) : ((v[n / 2 - 1] as number) + (v[n / 2] as number)) / 2;
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

function expectEpoch(p: Processed): void {
  if (p.kind !== 'epoch') throw new Error(`expected a new epoch, got ${p.kind}`);
}

/** CPU time of this process (all its threads: Node runs WebCrypto jobs on its thread pool), ms. */
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e3;
};

/** Wall time of `work` into `samples`; its CPU time into `cpu` when given. */
async function timed<T>(samples: number[], work: () => Promise<T>, cpu?: number[]): Promise<T> {
  const c = cpuMs();
  const t = performance.now();
  const result = await work();
  samples.push(performance.now() - t);
  cpu?.push(cpuMs() - c);
  return result;
}

async function measure(n: number, runs: number): Promise<Record<string, unknown>> {
  const start = performance.now();
  const a = await createGroup(await generateIdentity(), ROOM);
  const pendings: PendingJoin[] = [];
  const kps: Uint8Array[] = [];
  for (let i = 1; i < n; i++) {
    const { pending, keyPackage: kp } = await keyPackage(await generateIdentity(), ROOM);
    pendings.push(pending);
    kps.push(kp);
  }
  const keyPackagesS = (performance.now() - start) / 1e3;
  const built = await a.add(kps);
  expectEpoch(await a.process(built.commit));
  const first = pendings[0];
  if (first === undefined) throw new Error('N must be at least 2');
  const b: RoomGroup = await first.join(built.welcome);
  const buildS = (performance.now() - start) / 1e3;

  const j = { commit: [] as number[], own: [] as number[], process: [] as number[], welcome: [] as number[],
    commitCpu: [] as number[], processCpu: [] as number[], welcomeCpu: [] as number[], commitBytes: [] as number[], welcomeBytes: [] as number[], members: [] as number[] };
  const l = { commit: [] as number[], own: [] as number[], process: [] as number[], commitCpu: [] as number[], processCpu: [] as number[],
    commitBytes: [] as number[] };
  for (let r = 0; r < runs; r++) {
    const xIdentity = await generateIdentity();
    const { pending, keyPackage: kp } = await keyPackage(xIdentity, ROOM);
    const added = await timed(j.commit, () => a.add([kp]), j.commitCpu);
    expectEpoch(await timed(j.own, () => a.process(added.commit)));
    expectEpoch(await timed(j.process, () => b.process(added.commit), j.processCpu));
    const x = await timed(j.welcome, () => pending.join(added.welcome), j.welcomeCpu);
    j.commitBytes.push(added.commit.length);
    j.welcomeBytes.push(added.welcome.length);
    j.members.push(x.members().length);

    const removed = await timed(l.commit, () => a.remove([xIdentity.publicKeyBytes]), l.commitCpu);
    expectEpoch(await timed(l.own, () => a.process(removed.commit)));
    expectEpoch(await timed(l.process, () => b.process(removed.commit), l.processCpu));
    l.commitBytes.push(removed.commit.length);
  }

  const plaintext = new Uint8Array(MESSAGE_BYTES).fill(0x61);
  const seal: number[] = [];
  const open: number[] = [];
  let sealedBytes = 0;
  for (let i = 0; i < MESSAGES; i++) {
    const sealed = await timed(seal, () => a.seal(plaintext));
    const opened = await timed(open, () => b.process(sealed));
    if (opened.kind !== 'message' || opened.plaintext.length !== MESSAGE_BYTES) throw new Error(`expected the message, got ${opened.kind}`);
    sealedBytes = sealed.length;
  }
  // The same message sealed and opened as a v1 room does today (docs/crypto.md §5).
  const v1Keys = await deriveRoomKeys(randomBytes(32));
  const v1Identity = await generateIdentity();
  const v1Seal: number[] = [];
  const v1Open: number[] = [];
  for (let i = 0; i < MESSAGES; i++) {
    const sealed = await timed(v1Seal, () => sealV1(v1Keys, v1Identity, 'm1', plaintext));
    const opened = await timed(v1Open, () => openV1(v1Keys, 'm1', v1Identity.publicKey, sealed));
    if (opened.length !== MESSAGE_BYTES) throw new Error('the v1 message did not open to its plaintext');
  }
  // The floor under both: one WebCrypto call of each kind this engine makes per message.
  // Sealing makes five in MLS (the sender data's and the content's AES key imported and
  // used, and the signature) and two in v1; opening the same with a verification.
  const floor = { importAes: [] as number[], encrypt: [] as number[], sign: [] as number[], verify: [] as number[] };
  const aesKey = await crypto.subtle.importKey('raw', randomBytes(16), 'AES-GCM', false, ['encrypt']);
  const iv = randomBytes(12);
  const signature = new Uint8Array(await crypto.subtle.sign('Ed25519', v1Identity.privateKey, plaintext));
  for (let i = 0; i < MESSAGES; i++) {
    await timed(floor.importAes, () => crypto.subtle.importKey('raw', randomBytes(16), 'AES-GCM', false, ['encrypt']));
    await timed(floor.encrypt, () => crypto.subtle.encrypt({ name: 'AES-GCM', iv }, aesKey, plaintext));
    await timed(floor.sign, () => crypto.subtle.sign('Ed25519', v1Identity.privateKey, plaintext));
    await timed(floor.verify, () => crypto.subtle.verify('Ed25519', v1Identity.publicKey, signature, plaintext));
  }
  return {
    engine: 'browser',
    n,
    tree: 'fresh',
    runs,
    key_packages_s: round(keyPackagesS, 2),
    build_s: round(buildS, 2),
    join: {
      members_after: median(j.members),
      commit_ms: round(median(j.commit), 2),
      own_apply_ms: round(median(j.own), 2),
      process_ms: round(median(j.process), 2),
      welcome_ms: round(median(j.welcome), 2),
      cpu_ms: { commit: round(median(j.commitCpu), 1), process: round(median(j.processCpu), 1), welcome: round(median(j.welcomeCpu), 1) },
      commit_bytes: median(j.commitBytes),
      welcome_bytes: median(j.welcomeBytes),
    },
    leave: {
      commit_ms: round(median(l.commit), 2),
      own_apply_ms: round(median(l.own), 2),
      process_ms: round(median(l.process), 2),
      cpu_ms: { commit: round(median(l.commitCpu), 1), process: round(median(l.processCpu), 1) },
      commit_bytes: median(l.commitBytes),
    },
    message: {
      plaintext_bytes: MESSAGE_BYTES,
      seal_us: round(median(seal) * 1e3, 1),
      open_us: round(median(open) * 1e3, 1),
      sealed_bytes: sealedBytes,
      overhead_bytes: sealedBytes - MESSAGE_BYTES,
      v1_seal_us: round(median(v1Seal) * 1e3, 1),
      v1_open_us: round(median(v1Open) * 1e3, 1),
      webcrypto_us: {
        import_aes_key: round(median(floor.importAes) * 1e3, 1),
        aes_gcm_encrypt: round(median(floor.encrypt) * 1e3, 1),
        ed25519_sign: round(median(floor.sign) * 1e3, 1),
        ed25519_verify: round(median(floor.verify) * 1e3, 1),
      },
    },
  };
}

for (const n of sizes) {
  it(`epoch change in a room of ${n}`, async () => {
    const line = JSON.stringify(await measure(n, n <= 50 ? 5 : runsLarge));
    if (out === undefined) console.log(line);
    else appendFileSync(out, `${line}\n`);
  }, 30 * 60_000);
}
