//! Privacy v2 (issue #19, docs/crypto.md §16): a room as an MLS group (RFC 9420), on
//! ts-mls 1.6.4. Sans-I/O: bytes in, bytes out; nothing here touches the network or the
//! DOM. The client uses it for v2 rooms through lobby.ts (loaded only for them).
//!
//! Group configuration (the Rust engine uses exactly the same; changing any of it is a
//! protocol change):
//! - ciphersuite 0x0001, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
//! - BasicCredential whose identity is the member's raw 32-byte Ed25519 public key, which
//!   is also the leaf's signature key (a credential that differs from its signature key is
//!   refused), so a member's fingerprint (crypto.ts `fingerprintOf`) is the same in every
//!   epoch;
//! - group id = SHA-256("streamchat mls v1 group" || room id as UTF-8);
//! - the Welcome carries the ratchet tree (ratchet_tree extension in its GroupInfo);
//! - commits and application messages are PrivateMessages (ciphertext wire format);
//! - a commit carries Add and Remove proposals only, and standalone proposals are
//!   refused; a commit whose UpdatePath leaf changes its committer's signature key (or
//!   carries a credential not naming it) is refused: the Rust engine refuses the same, and
//!   both must agree on every commit. Agreeing includes the keys: a commit or proposal that
//!   passes MLS's checks and is refused by these rules uses up its key of the sender's
//!   ratchet (openmls keeps that step exactly then); one that fails MLS's checks does not;
//! - the secrets of 4 past epochs are kept, so a message sealed just before a commit still
//!   opens after it;
//! - application messages and commits are padded so that their ciphertext (encrypted
//!   content and AEAD tag) is a multiple of 32 bytes, as openmls pads (ts-mls 1.6.4 has no
//!   "multiple of N" padding: an application message's padding is computed from its length,
//!   and a commit is sealed again with its padding once made).
//!
//! Ordering. In StreamChat the ordered room log decides which commit wins: every member,
//! the author included, applies commits in log order. `add` and `remove` therefore do not
//! change the epoch: the author keeps the new state aside and applies it only when
//! `process` sees its own commit come back. If another commit for the same epoch comes
//! first, everyone applies that one, the author's pending commits are discarded (the
//! `epoch` result lists them in `discarded`, so the caller can redo them on the new
//! epoch), and when the discarded commit itself comes back `process` answers `lost-race`.
//! Everyone else refuses it as `stale`.
//!
//! Own messages. MLS cannot open a message for the member that sealed it (its key was
//! used up sealing), yet every message comes back to its author through the log: the
//! group remembers its last 64 sealed messages and answers those from memory.
//!
//! The identity key. ts-mls signs with a raw private key (`Uint8Array`); the client's
//! identity key (crypto.ts `Identity`) is a non-extractable WebCrypto key. Each member's
//! ts-mls instance therefore gets its own Signature implementation that signs with that
//! CryptoKey; the "private key" ts-mls stores is an empty placeholder that it only ever
//! hands back to that implementation. The private key never leaves WebCrypto.

import {
  type CiphersuiteImpl, type ClientConfig, type ClientState, type Credential, type IncomingMessageCallback, type KeyPackage,
  type MLSMessage, type PrivateKeyPackage, type PrivateMessage,
  createApplicationMessage, createCommit, createGroup as mlsCreateGroup, decodeMlsMessage,
  defaultCapabilities, defaultKeyPackageEqualityConfig, defaultLifetime, defaultLifetimeConfig,
  emptyPskIndex, encodeMlsMessage, generateKeyPackageWithKey, getCiphersuiteFromName,
  getCiphersuiteImpl, joinGroup,
  processPrivateMessage, zeroOutUint8Array,
} from 'ts-mls';
import type { AuthenticatedContent } from 'ts-mls/authenticatedContent.js';
import { protect, unprotectPrivateMessage } from 'ts-mls/messageProtection.js';
import { MlsError as LibraryError } from 'ts-mls/mlsError.js';
import { expand as hkdfExpand, extract as hkdfExtract } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Identity } from './crypto';
import { type Bytes, bytesEqual, concatBytes, toHex, utf8 } from './encoding';

export const CIPHERSUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519' as const;
export const GROUP_ID_LABEL = 'streamchat mls v1 group';
export const PAST_EPOCHS = 4;
export const PADDING_MULTIPLE = 32;
/** How many of its own discarded commits a member remembers, to answer `lost-race`. */
const DISCARDED_MEMORY = 16;
/** How many of its own application messages a member remembers, to read them back from the log. */
const SENT_MEMORY = 64;

/** Why MLS bytes were refused; never any other exception type leaves this module. */
export type MlsErrorCode =
  /** Not an MLS message of the expected kind, or truncated. */
  | 'malformed'
  /** For another group (another room). */
  | 'wrong-group'
  /** A commit for an epoch that already moved on, or a message for an epoch no longer kept. */
  | 'stale'
  /** For an epoch this member has not reached: a commit is missing. */
  | 'future'
  /** This member is not (or no longer) in the group, or the member named is not in it. */
  | 'not-member'
  /** A Welcome that is not for this member's KeyPackage. */
  | 'not-for-me'
  /** Failed decryption, signature or any other MLS validation. */
  | 'invalid';

export class MlsError extends Error {
  readonly code: MlsErrorCode;
  constructor(code: MlsErrorCode, message: string) {
    super(message);
    this.name = 'MlsError';
    this.code = code;
  }
}

/** A commit this member made that lost the race on the room log: what it meant to do. */
export interface DiscardedCommit {
  readonly add: Bytes[];
  readonly remove: Bytes[];
}

export type Processed =
  /** A commit was applied; `own` when it was this member's. Keys are raw Ed25519 public keys. */
  | {
      readonly kind: 'epoch';
      readonly epoch: bigint;
      readonly added: Bytes[];
      readonly removed: Bytes[];
      readonly own: boolean;
      /** This member's pending commits that this one displaced (to redo on the new epoch). */
      readonly discarded: DiscardedCommit[];
    }
  | { readonly kind: 'message'; readonly sender: Bytes; readonly plaintext: Bytes; readonly epoch: bigint }
  /**
   * This member was removed by this commit: the group is closed for it. `epoch` is the one
   * the commit moved the group into, which this member is not part of (as the Rust engine).
   */
  | { readonly kind: 'removed'; readonly epoch: bigint }
  /** This member's own commit came back after another commit for its epoch: it was discarded. */
  | { readonly kind: 'lost-race'; readonly epoch: bigint };

// ---- Configuration ---------------------------------------------------------------------

let baseSuite: Promise<CiphersuiteImpl> | null = null;

/**
 * The library's ciphersuite, with SHA-256, HMAC and HKDF computed in JavaScript
 * (@noble/hashes) instead of through WebCrypto. Every message derives its key and nonce
 * with several HKDF calls on a few dozen bytes; through `crypto.subtle` each is an
 * asynchronous job (and HMAC a key import first), which made a message cost 1.2–1.5 ms
 * against v1's 0.2–0.4 (docs/benchmarks.md, "MLS epoch changes"). SHA-256 has no
 * secret-dependent branches or table lookups, so the JavaScript one leaks no more timing
 * than WebCrypto's. AES-GCM, Ed25519 and X25519 stay in WebCrypto.
 */
function suiteBase(): Promise<CiphersuiteImpl> {
  baseSuite ??= getCiphersuiteImpl(getCiphersuiteFromName(CIPHERSUITE)).then((suite) => ({
    ...suite,
    hash: {
      digest: (data) => Promise.resolve(sha256(data)),
      mac: (key, data) => Promise.resolve(hmac(sha256, key, data)),
      verifyMac: (key, mac, data) => Promise.resolve(bytesEqual(hmac(sha256, key, data), mac)),
    },
    kdf: {
      extract: (salt, ikm) => Promise.resolve(hkdfExtract(sha256, ikm, salt)),
      expand: (prk, info, length) => Promise.resolve(hkdfExpand(sha256, prk, info, length)),
      size: sha256.outputLen,
    },
  }));
  return baseSuite;
}

/** Imported Ed25519 public keys by their bytes: every message opened is verified with its sender's. */
const verifyingKeys = new Map<string, Promise<CryptoKey>>();
const MAX_VERIFYING_KEYS = 4096;

function verifyingKey(publicKey: Uint8Array): Promise<CryptoKey> {
  const id = toHex(publicKey);
  let key = verifyingKeys.get(id);
  if (key === undefined) {
    if (verifyingKeys.size >= MAX_VERIFYING_KEYS) verifyingKeys.clear();
    key = crypto.subtle.importKey('raw', new Uint8Array(publicKey), ED25519, false, ['verify']);
    key.catch(() => verifyingKeys.delete(id));
    verifyingKeys.set(id, key);
  }
  return key;
}

const ED25519: AlgorithmIdentifier = { name: 'Ed25519' };
/** What ts-mls stores as our signature private key; only our own `sign` ever sees it. */
const KEY_PLACEHOLDER = new Uint8Array(0);

/** The ciphersuite for one member: the library's, except that it signs with the identity's CryptoKey. */
async function suiteFor(identity: Identity): Promise<CiphersuiteImpl> {
  const base = await suiteBase();
  return {
    ...base,
    signature: {
      async sign(signKey: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
        if (signKey !== KEY_PLACEHOLDER) throw new MlsError('invalid', 'unexpected signing key');
        return new Uint8Array(await crypto.subtle.sign(ED25519, identity.privateKey, new Uint8Array(message)));
      },
      verify: async (publicKey, message, signature) =>
        crypto.subtle.verify(ED25519, await verifyingKey(publicKey), new Uint8Array(signature), new Uint8Array(message)),
      keygen: () => Promise.reject(new MlsError('invalid', 'MLS signature keys are the identity keys')),
    },
  };
}

/** A leaf's credential must be a BasicCredential naming its own 32-byte signature key. */
const authService = {
  validateCredential(credential: Credential, signaturePublicKey: Uint8Array): Promise<boolean> {
    return Promise.resolve(
      credential.credentialType === 'basic' && credential.identity.length === 32 &&
        signaturePublicKey.length === 32 && bytesEqual(credential.identity, signaturePublicKey),
    );
  },
};

const CLIENT_CONFIG: ClientConfig = {
  keyRetentionConfig: { retainKeysForGenerations: 10, retainKeysForEpochs: PAST_EPOCHS, maximumForwardRatchetSteps: 200 },
  lifetimeConfig: defaultLifetimeConfig,
  keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
  // No padding by default; application messages set their own (see `paddingFor`).
  paddingConfig: { kind: 'alwaysPad', paddingLength: 0 },
  authService,
};

/** SHA-256("streamchat mls v1 group" || room id as UTF-8). */
export async function groupIdOf(room: string): Promise<Bytes> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concatBytes(utf8(GROUP_ID_LABEL), utf8(room))));
}

function credentialOf(identity: Identity): Credential {
  return { credentialType: 'basic', identity: identity.publicKeyBytes.slice() };
}

function varintLength(n: number): number {
  return n < 64 ? 1 : n < 16384 ? 2 : 4;
}

/** The AES-128-GCM tag the ciphertext adds to the encrypted content. */
const AEAD_TAG = 16;

/**
 * Zero bytes to add so that an application message's ciphertext (its PrivateMessageContent,
 * data<V>, signature<V> and padding, plus the AEAD tag) is a multiple of PADDING_MULTIPLE
 * bytes: openmls's rule for `padding_size`, so that a message's length is the same
 * whichever engine sealed it (testdata/mls-vectors.json).
 */
function paddingFor(plaintextLength: number): number {
  // A 64-byte signature<V> takes a 2-byte length: QUIC varints hold 0..63 in one byte.
  const length = varintLength(plaintextLength) + plaintextLength + 2 + 64 + AEAD_TAG;
  return (PADDING_MULTIPLE - (length % PADDING_MULTIPLE)) % PADDING_MULTIPLE;
}

/**
 * The commits StreamChat uses carry Add and Remove proposals only (and an empty one with
 * a path is an update): the Rust engine refuses any other, so every member must, or a
 * hostile member could split the room into two epochs.
 */
const onlyAddAndRemove: IncomingMessageCallback = (incoming) =>
  incoming.kind === 'commit' &&
  incoming.proposals.every((p) => p.proposal.proposalType === 'add' || p.proposal.proposalType === 'remove')
    ? 'accept'
    : 'reject';

/**
 * A commit's UpdatePath leaf (its committer's new leaf) must keep the committer's
 * signature key, and a credential naming that key: the Rust engine refuses a commit that
 * changes its committer's key, so every member must, or a hostile member could split the
 * room into two epochs. Throws `invalid` otherwise; a commit without a path passes.
 */
function checkCommitterKey(state: ClientState, content: AuthenticatedContent): void {
  const framed = content.content;
  if (framed.contentType !== 'commit' || framed.commit.path === undefined) return;
  if (framed.sender.senderType !== 'member') throw new MlsError('invalid', 'commit from a non-member');
  const key = leafKey(state, framed.sender.leafIndex);
  const next = framed.commit.path.leafNode;
  if (!bytesEqual(next.signaturePublicKey, key)) {
    throw new MlsError('invalid', "the commit changes its committer's signature key");
  }
  if (next.credential.credentialType !== 'basic' || !bytesEqual(next.credential.identity, key)) {
    throw new MlsError('invalid', "the committer's new leaf has a credential that is not its signature key");
  }
}

/**
 * RFC 9420 §12.4: a commit needs an UpdatePath when it is empty or covers any proposal
 * other than Add, PreSharedKey and ReInit. openmls refuses such a commit without one;
 * ts-mls 1.6.4 makes and accepts one for a GroupContextExtensions proposal alone.
 */
function missesRequiredPath(content: AuthenticatedContent): boolean {
  const framed = content.content;
  if (framed.contentType !== 'commit' || framed.commit.path !== undefined) return false;
  const { proposals } = framed.commit;
  return proposals.length === 0 || proposals.some((p) =>
    p.proposalOrRefType === 'proposal' && !(['add', 'psk', 'reinit'] as unknown[]).includes(p.proposal.proposalType));
}

type UnprotectResult = Awaited<ReturnType<typeof unprotectPrivateMessage>>;

// ---- Errors and encoding ---------------------------------------------------------------

/** Any failure inside ts-mls (or a TypeError from a decoder given garbage) as an MlsError. */
function toMlsError(error: unknown, fallback: MlsErrorCode = 'invalid'): MlsError {
  if (error instanceof MlsError) return error;
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (error instanceof LibraryError) {
    if (error.name === 'CodecError') return new MlsError('malformed', text);
    return new MlsError(fallback, text);
  }
  // RangeError/TypeError from reading past the end of truncated bytes, and the like.
  return new MlsError('malformed', text);
}

async function guard<T>(work: () => Promise<T>, fallback: MlsErrorCode = 'invalid'): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw toMlsError(error, fallback);
  }
}

function decode(bytes: Uint8Array): MLSMessage {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new MlsError('malformed', 'empty MLS message');
  let decoded: [MLSMessage, number] | undefined;
  try {
    decoded = decodeMlsMessage(bytes, 0);
  } catch (error) {
    throw toMlsError(error, 'malformed');
  }
  if (decoded === undefined) throw new MlsError('malformed', 'not an MLS message');
  if (decoded[1] !== bytes.length) throw new MlsError('malformed', 'trailing bytes after the MLS message');
  return decoded[0];
}

function encode(message: MLSMessage): Bytes {
  return new Uint8Array(encodeMlsMessage(message));
}

function decodeKeyPackage(bytes: Uint8Array): KeyPackage {
  const message = decode(bytes);
  if (message.wireformat !== 'mls_key_package') throw new MlsError('malformed', `expected a KeyPackage, got ${message.wireformat}`);
  if (message.keyPackage.cipherSuite !== CIPHERSUITE) throw new MlsError('invalid', 'KeyPackage for another ciphersuite');
  return message.keyPackage;
}

/** Raw Ed25519 public keys of a state's members, by leaf index (blank leaves skipped). */
function membersOf(state: ClientState): { leaf: number; key: Bytes }[] {
  const out: { leaf: number; key: Bytes }[] = [];
  state.ratchetTree.forEach((node, index) => {
    if (index % 2 === 0 && node?.nodeType === 'leaf') out.push({ leaf: index / 2, key: new Uint8Array(node.leaf.signaturePublicKey) });
  });
  return out;
}

function leafKey(state: Pick<ClientState, 'ratchetTree'>, leaf: number): Bytes {
  const node = state.ratchetTree[leaf * 2];
  if (node?.nodeType !== 'leaf') throw new MlsError('not-member', 'sender is not a member');
  return new Uint8Array(node.leaf.signaturePublicKey);
}

function difference(a: Bytes[], b: Bytes[]): Bytes[] {
  const seen = new Set(b.map(toHex));
  return a.filter((key) => !seen.has(toHex(key)));
}

/**
 * Overwrites secrets ts-mls says the new state no longer holds (forward secrecy), once
 * that state is the group's. Never after createCommit: its `consumed` are still the
 * current epoch's, which stays in use until the log decides.
 */
function wipe(consumed: Uint8Array[]): void {
  for (const secret of consumed) zeroOutUint8Array(secret);
}

function digestHex(bytes: Uint8Array): string {
  return toHex(sha256(bytes));
}

// ---- Joining ---------------------------------------------------------------------------

/** A newcomer waiting for its Welcome. */
export class PendingJoin {
  readonly #identity: Identity;
  readonly #room: string;
  readonly #suite: CiphersuiteImpl;
  readonly #publicPackage: KeyPackage;
  readonly #privatePackage: PrivateKeyPackage;

  /** @internal use `keyPackage()`. */
  constructor(identity: Identity, room: string, suite: CiphersuiteImpl, publicPackage: KeyPackage, privatePackage: PrivateKeyPackage) {
    this.#identity = identity;
    this.#room = room;
    this.#suite = suite;
    this.#publicPackage = publicPackage;
    this.#privatePackage = privatePackage;
  }

  /** Joins from a Welcome (an MLSMessage) for this KeyPackage; the Welcome must carry the ratchet tree. */
  async join(welcome: Uint8Array): Promise<RoomGroup> {
    const message = decode(welcome);
    if (message.wireformat !== 'mls_welcome') throw new MlsError('malformed', `expected a Welcome, got ${message.wireformat}`);
    if (message.welcome.cipherSuite !== CIPHERSUITE) throw new MlsError('invalid', 'Welcome for another ciphersuite');
    const state = await guard(async () => {
      try {
        return await joinGroup(message.welcome, this.#publicPackage, this.#privatePackage, emptyPskIndex, this.#suite, undefined, undefined, CLIENT_CONFIG);
      } catch (error) {
        // ts-mls's words when no EncryptedGroupSecrets names this KeyPackage.
        if (error instanceof LibraryError && error.message === 'No matching secret found') {
          throw new MlsError('not-for-me', 'Welcome not for this KeyPackage');
        }
        throw error;
      }
    });
    if (!bytesEqual(state.groupContext.groupId, await groupIdOf(this.#room))) throw new MlsError('wrong-group', 'Welcome for another room');
    return new RoomGroup(this.#identity, this.#suite, state);
  }
}

/** A newcomer's KeyPackage (an MLSMessage, to publish) and what it needs to join from the Welcome. */
export async function keyPackage(identity: Identity, room: string): Promise<{ pending: PendingJoin; keyPackage: Bytes }> {
  const suite = await suiteFor(identity);
  const { publicPackage, privatePackage } = await guard(() =>
    generateKeyPackageWithKey(credentialOf(identity), defaultCapabilities(), defaultLifetime, [],
      { signKey: KEY_PLACEHOLDER, publicKey: identity.publicKeyBytes.slice() }, suite),
  );
  return {
    pending: new PendingJoin(identity, room, suite, publicPackage, privatePackage),
    keyPackage: encode({ version: 'mls10', wireformat: 'mls_key_package', keyPackage: publicPackage }),
  };
}

/**
 * The identity key (raw Ed25519 public key) a KeyPackage (an MLSMessage) names: its
 * credential, which must be its leaf's signature key. A `knock` is accepted only from the
 * member whose profile key this is (docs/crypto.md §17.2).
 */
export function keyPackageKey(bytes: Uint8Array): Bytes {
  const leaf = decodeKeyPackage(bytes).leafNode;
  const credential = leaf.credential;
  if (credential.credentialType !== 'basic' || !bytesEqual(credential.identity, leaf.signaturePublicKey) || leaf.signaturePublicKey.length !== 32) {
    throw new MlsError('invalid', 'KeyPackage credential is not its signature key');
  }
  return new Uint8Array(leaf.signaturePublicKey);
}

/** The first member founds the room's group, alone, at epoch 0. */
export async function createGroup(identity: Identity, room: string): Promise<RoomGroup> {
  const suite = await suiteFor(identity);
  const state = await guard(async () => {
    const { publicPackage, privatePackage } = await generateKeyPackageWithKey(credentialOf(identity), defaultCapabilities(),
      defaultLifetime, [], { signKey: KEY_PLACEHOLDER, publicKey: identity.publicKeyBytes.slice() }, suite);
    return mlsCreateGroup(await groupIdOf(room), publicPackage, privatePackage, [], suite, CLIENT_CONFIG);
  });
  return new RoomGroup(identity, suite, state);
}

// ---- The group -------------------------------------------------------------------------

interface Pending {
  readonly digest: string;
  readonly state: ClientState;
  readonly intent: DiscardedCommit;
}

/** This member's view of a room's group. Calls are applied one at a time, in call order. */
export class RoomGroup {
  readonly #identity: Identity;
  readonly #suite: CiphersuiteImpl;
  #state: ClientState;
  /** Own commits for the current epoch, waiting for the log to show which comes first. */
  #pending: Pending[] = [];
  /** Digests of own commits that lost a race, to recognise them when they come back. */
  #discarded: string[] = [];
  /** Own recent application messages by digest: MLS cannot open what its own member sealed. */
  #sent = new Map<string, Bytes>();
  #queue: Promise<unknown> = Promise.resolve();

  /** @internal use `createGroup()` or `PendingJoin.join()`. */
  constructor(identity: Identity, suite: CiphersuiteImpl, state: ClientState) {
    this.#identity = identity;
    this.#suite = suite;
    this.#state = state;
  }

  get epoch(): bigint {
    return this.#state.groupContext.epoch;
  }

  /** False once this member has been removed. */
  get active(): boolean {
    return this.#state.groupActiveState.kind === 'active';
  }

  /** The epoch authenticator: equal for every member of the same epoch (compare out of band). */
  authenticator(): Bytes {
    return new Uint8Array(this.#state.keySchedule.epochAuthenticator);
  }

  /** The members' raw Ed25519 public keys, in leaf order. */
  members(): Bytes[] {
    return membersOf(this.#state).map((m) => m.key);
  }

  /** Whether this member has commits waiting for the log. */
  get hasPending(): boolean {
    return this.#pending.length > 0;
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #checkActive(): void {
    if (!this.active) throw new MlsError('not-member', 'this member is no longer in the group');
  }

  /** A commit adding these KeyPackages, and the Welcome for them. Applied when it comes back through `process`. */
  add(keyPackages: Uint8Array[]): Promise<{ commit: Bytes; welcome: Bytes }> {
    return this.#serial(async () => {
      this.#checkActive();
      if (keyPackages.length === 0) throw new MlsError('invalid', 'nothing to add');
      const packages = keyPackages.map(decodeKeyPackage);
      const result = await guard(() =>
        createCommit({ state: this.#state, cipherSuite: this.#suite }, {
          extraProposals: packages.map((keyPackage) => ({ proposalType: 'add' as const, add: { keyPackage } })),
          ratchetTreeExtension: true,
          wireAsPublicMessage: false,
        }),
      );
      if (result.welcome === undefined) throw new MlsError('invalid', 'no Welcome for an add');
      const commit = encode(await this.#padded(result.commit));
      await this.#keep(commit, result.newState, { add: keyPackages.map((k) => new Uint8Array(k)), remove: [] });
      return { commit, welcome: encode({ version: 'mls10', wireformat: 'mls_welcome', welcome: result.welcome }) };
    });
  }

  /** A commit removing these members (raw Ed25519 public keys). Applied when it comes back through `process`. */
  remove(members: Uint8Array[]): Promise<{ commit: Bytes }> {
    return this.#serial(async () => {
      this.#checkActive();
      if (members.length === 0) throw new MlsError('invalid', 'nothing to remove');
      const current = membersOf(this.#state);
      const leaves = members.map((key) => {
        if (bytesEqual(key, this.#identity.publicKeyBytes)) throw new MlsError('invalid', 'a member cannot remove itself');
        const found = current.find((m) => bytesEqual(m.key, key));
        if (found === undefined) throw new MlsError('not-member', 'no such member');
        return found.leaf;
      });
      const result = await guard(() =>
        createCommit({ state: this.#state, cipherSuite: this.#suite }, {
          extraProposals: leaves.map((removed) => ({ proposalType: 'remove' as const, remove: { removed } })),
          wireAsPublicMessage: false,
        }),
      );
      const commit = encode(await this.#padded(result.commit));
      await this.#keep(commit, result.newState, { add: [], remove: members.map((k) => new Uint8Array(k)) });
      return { commit };
    });
  }

  /**
   * This member's new commit sealed again with padding, so that its ciphertext is a
   * multiple of PADDING_MULTIPLE bytes as openmls pads commits: ts-mls pads by a fixed
   * amount, and a commit's length is known only once it is made. The padding is outside
   * the transcript, so the commit's next epoch is unchanged. The first sealing never
   * leaves this function; the second uses the same generation of this member's handshake
   * ratchet (ts-mls does not advance it for a commit) with a fresh reuse guard.
   */
  async #padded(commit: MLSMessage): Promise<MLSMessage> {
    if (commit.wireformat !== 'mls_private_message') throw new MlsError('invalid', 'commits are PrivateMessages');
    const pm = commit.privateMessage;
    const padding = (PADDING_MULTIPLE - (pm.ciphertext.length % PADDING_MULTIPLE)) % PADDING_MULTIPLE;
    if (padding === 0) return commit;
    const state = this.#state;
    return guard(async () => {
      const opened = await unprotectPrivateMessage(state.keySchedule.senderDataSecret, pm, state.secretTree, state.ratchetTree,
        state.groupContext, state.clientConfig.keyRetentionConfig, this.#suite);
      const content = { ...opened.content.content, auth: opened.content.auth };
      if (content.contentType !== 'commit' || content.auth.contentType !== 'commit') throw new MlsError('invalid', 'not a commit');
      const sealed = await protect(state.keySchedule.senderDataSecret, pm.authenticatedData, state.groupContext, state.secretTree,
        { ...content, auth: content.auth }, state.privatePath.leafIndex, { kind: 'alwaysPad', paddingLength: padding }, this.#suite);
      if (sealed.privateMessage.ciphertext.length % PADDING_MULTIPLE !== 0) throw new MlsError('invalid', 'commit padding');
      return { version: 'mls10', wireformat: 'mls_private_message', privateMessage: sealed.privateMessage };
    });
  }

  async #keep(commit: Bytes, state: ClientState, intent: DiscardedCommit): Promise<void> {
    this.#pending.push({ digest: digestHex(commit), state, intent });
  }

  /** Seals an application message in the current epoch (a PrivateMessage as MLSMessage bytes). */
  seal(plaintext: Uint8Array): Promise<Bytes> {
    return this.#serial(async () => {
      this.#checkActive();
      const state: ClientState = {
        ...this.#state,
        clientConfig: { ...this.#state.clientConfig, paddingConfig: { kind: 'alwaysPad', paddingLength: paddingFor(plaintext.length) } },
      };
      const result = await guard(() => createApplicationMessage(state, plaintext, this.#suite));
      this.#state = { ...result.newState, clientConfig: this.#state.clientConfig };
      wipe(result.consumed);
      const sealed = encode({ version: 'mls10', wireformat: 'mls_private_message', privateMessage: result.privateMessage });
      this.#sent.set(digestHex(sealed), new Uint8Array(plaintext));
      for (const key of this.#sent.keys()) {
        if (this.#sent.size <= SENT_MEMORY) break;
        this.#sent.delete(key);
      }
      return sealed;
    });
  }

  /** Applies the next item of the room log: a commit (anyone's, own included) or an application message. */
  process(bytes: Uint8Array): Promise<Processed> {
    return this.#serial(() => this.#process(bytes));
  }

  async #process(bytes: Uint8Array): Promise<Processed> {
    const message = decode(bytes);
    if (message.wireformat !== 'mls_private_message') {
      throw new MlsError('malformed', `expected a PrivateMessage, got ${message.wireformat}`);
    }
    const pm = message.privateMessage;
    if (!bytesEqual(pm.groupId, this.#state.groupContext.groupId)) throw new MlsError('wrong-group', 'message for another group');
    if (pm.contentType === 'application') {
      const mine = this.#sent.get(digestHex(bytes));
      if (mine !== undefined) {
        return { kind: 'message', sender: this.#identity.publicKeyBytes.slice(), plaintext: mine.slice(), epoch: pm.epoch };
      }
      return this.#open(pm);
    }
    if (pm.contentType !== 'commit') {
      // The Rust engine refuses a standalone proposal once openmls has opened and checked
      // it, which uses up its key there: so it must here too (see `#useUp`).
      if (this.active && pm.epoch === this.epoch) {
        const opened = await this.#openHandshake(pm).catch(() => undefined);
        if (opened !== undefined) this.#useUp(opened);
      }
      throw new MlsError('invalid', 'standalone proposals are not used');
    }

    const digest = digestHex(bytes);
    if (this.#discarded.includes(digest)) return { kind: 'lost-race', epoch: this.epoch };
    const own = this.#pending.find((p) => p.digest === digest);
    if (own !== undefined) {
      if (pm.epoch !== this.epoch) throw new MlsError('stale', 'own commit for a past epoch');
      return this.#advance(own.state, true, this.#pending.filter((p) => p !== own));
    }
    this.#checkActive();
    if (pm.epoch < this.epoch) throw new MlsError('stale', `commit for epoch ${pm.epoch}, the group is at ${this.epoch}`);
    if (pm.epoch > this.epoch) throw new MlsError('future', `commit for epoch ${pm.epoch}, the group is at ${this.epoch}`);
    // ts-mls's callback sees the proposals but not the UpdatePath: the commit is opened
    // here as well, for the committer's new leaf.
    const state = this.#state;
    const opened = await this.#openHandshake(pm);
    if (missesRequiredPath(opened.content)) throw new MlsError('invalid', 'a commit without the UpdatePath its proposals require');
    // ts-mls checks the whole commit as MLS first, as openmls does; only then does this
    // engine apply its own rules, so a commit refused by either check in one engine is
    // refused by the same check, with the same effect on keys, in the other.
    let disallowed = false;
    const result = await guard(() =>
      processPrivateMessage(state, pm, emptyPskIndex, this.#suite, (incoming) => {
        if (onlyAddAndRemove(incoming) === 'reject') disallowed = true;
        return 'accept';
      }),
    );
    if (result.kind !== 'newState') throw new MlsError('invalid', 'commit not applied');
    try {
      if (disallowed) throw new MlsError('invalid', 'a commit may carry only Add and Remove proposals');
      checkCommitterKey(state, opened.content);
    } catch (error) {
      this.#useUp(opened);
      throw error;
    }
    const processed = this.#advance(result.newState, false, this.#pending);
    wipe(result.consumed);
    wipe(opened.consumed);
    return processed;
  }

  /** Opens a handshake message of the current epoch without keeping anything from it. */
  #openHandshake(pm: PrivateMessage): Promise<UnprotectResult> {
    const state = this.#state;
    return guard(() =>
      unprotectPrivateMessage(state.keySchedule.senderDataSecret, pm, state.secretTree, state.ratchetTree, state.groupContext,
        state.clientConfig.keyRetentionConfig, this.#suite),
    );
  }

  /**
   * Keeps the secret tree of a handshake message that opened and passed MLS's checks but
   * that this engine refuses: its key is used up. openmls keeps its ratchet's step exactly
   * then (when its processing succeeds, whatever the Rust engine decides after), so without
   * this another message at the same generation from the same sender would be refused by
   * Rust members and applied here: a hostile member could split the room into two epochs.
   */
  #useUp(opened: UnprotectResult): void {
    this.#state = { ...this.#state, secretTree: opened.tree };
    wipe(opened.consumed);
  }

  #advance(next: ClientState, own: boolean, displaced: Pending[]): Processed {
    const before = this.members();
    const committedFrom = this.epoch;
    let state = next;
    if (own) {
      // The pending state was made before any message this member sealed or opened since:
      // its copy of the old epoch's secret tree must be the latest one.
      const historical = new Map(state.historicalReceiverData);
      const old = historical.get(this.epoch);
      if (old !== undefined) historical.set(this.epoch, { ...old, secretTree: this.#state.secretTree });
      state = { ...state, historicalReceiverData: historical };
    }
    this.#state = state;
    for (const p of displaced) this.#discarded.push(p.digest);
    this.#discarded.splice(0, Math.max(0, this.#discarded.length - DISCARDED_MEMORY));
    this.#pending = [];
    // ts-mls leaves a removed member's state in the epoch it was removed from.
    if (state.groupActiveState.kind === 'removedFromGroup') return { kind: 'removed', epoch: committedFrom + 1n };
    const after = this.members();
    return {
      kind: 'epoch',
      epoch: this.epoch,
      added: difference(after, before),
      removed: difference(before, after),
      own,
      discarded: displaced.map((p) => p.intent),
    };
  }

  /** Opens an application message of the current epoch or of one of the past epochs kept. */
  async #open(pm: PrivateMessage): Promise<Processed> {
    const state = this.#state;
    const config = state.clientConfig.keyRetentionConfig;
    if (pm.epoch > state.groupContext.epoch) {
      throw new MlsError(this.active ? 'future' : 'not-member', `message for epoch ${pm.epoch}, the group is at ${state.groupContext.epoch}`);
    }
    if (pm.epoch === state.groupContext.epoch) {
      const result = await guard(() =>
        unprotectPrivateMessage(state.keySchedule.senderDataSecret, pm, state.secretTree, state.ratchetTree, state.groupContext, config, this.#suite),
      );
      if (result.content.content.contentType !== 'application') throw new MlsError('invalid', 'content type mismatch');
      const sender = this.#senderLeaf(result.content.content.sender);
      this.#state = { ...this.#state, secretTree: result.tree };
      wipe(result.consumed);
      return { kind: 'message', sender: leafKey(state, sender), plaintext: new Uint8Array(result.content.content.applicationData), epoch: pm.epoch };
    }
    const past = state.historicalReceiverData.get(pm.epoch);
    if (past === undefined) throw new MlsError('stale', `message for epoch ${pm.epoch}, no longer kept`);
    const result = await guard(() =>
      unprotectPrivateMessage(past.senderDataSecret, pm, past.secretTree, past.ratchetTree, past.groupContext, config, this.#suite),
    );
    if (result.content.content.contentType !== 'application') throw new MlsError('invalid', 'content type mismatch');
    const sender = this.#senderLeaf(result.content.content.sender);
    const historical = new Map(this.#state.historicalReceiverData);
    historical.set(pm.epoch, { ...past, secretTree: result.tree });
    this.#state = { ...this.#state, historicalReceiverData: historical };
    wipe(result.consumed);
    return { kind: 'message', sender: leafKey(past, sender), plaintext: new Uint8Array(result.content.content.applicationData), epoch: pm.epoch };
  }

  #senderLeaf(sender: { senderType: string; leafIndex?: number }): number {
    if (sender.senderType !== 'member' || sender.leafIndex === undefined) throw new MlsError('not-member', 'sender is not a member');
    return sender.leafIndex;
  }
}
