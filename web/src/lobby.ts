//! The lobby of a v2 room (docs/crypto.md §17.3): who holds the room's MLS group, who
//! knocks, who lets whom in, who removes a leaver, and what this client does with each
//! frame and each engine result. Sans-I/O: it never touches the network, the DOM or a
//! lobby key. The host (RoomSession, or a test's simulated room) opens and seals lobby
//! frames, sends what this module asks it to send, and tells it, one at a time and in the
//! room log's order, what arrived. The MLS engine is mls.ts.
//!
//! Every method that takes an event must be called from the host's event queue (one at
//! a time, in log order). Answers to this client's own sends (their log positions) come
//! back through `host.later`, so that they are handled after every event the server sent
//! before them: the author applies its own commit in log order, like everyone (§16).

import type { Identity } from './crypto';
import { type Bytes, toBase64Url } from './encoding';
import { type PendingJoin, type Processed, type RoomGroup, MlsError, createGroup, keyPackage, keyPackageKey } from './mls';

/** A newcomer keeps at most this many MLS frames while it knocks (§17.3 item 2). */
export const MAX_KEPT_FRAMES = 256;
/** KeyPackages a knocker keeps, so that a Welcome for an earlier knock still works. */
export const MAX_PENDING_JOINS = 4;
/** Leavers' names remembered by key, for "Keys changed: Bob left"; bounded. */
const MAX_DEPARTED = 256;
/** Before trying again a send that did not go (offline, rate limited). */
const RETRY_MS = 1000;
/** How many times a Welcome is sent before it is given up (RETRY_MS apart): two minutes. */
const WELCOME_ATTEMPTS = 120;

// ---- Lobby bodies (§17.2): lobby-body.ts --------------------------------------------------

export { type LobbyBody, decodeLobbyBody, encodeLobbyBody } from './lobby-body';
import { type LobbyBody, encodeLobbyBody } from './lobby-body';

/** What an MLS frame is, read from its clear header (RFC 9420 §6): to tell commits from messages. */
export type MlsFrameKind = 'application' | 'commit' | 'proposal' | 'welcome' | 'other';

export function mlsFrameKind(data: Uint8Array): MlsFrameKind {
  if (data.length < 4 || data[0] !== 0x00 || data[1] !== 0x01) return 'other';
  const wireformat = (data[2] ?? 0) * 256 + (data[3] ?? 0);
  if (wireformat === 3) return 'welcome';
  const offset = epochOffset(data);
  if (offset === null) return 'other';
  switch (data[offset + 8]) {
    case 1: return 'application';
    case 2: return 'proposal';
    case 3: return 'commit';
    default: return 'other';
  }
}

/** Where a PrivateMessage's epoch (8 bytes) starts: after version, wire format and group_id<V>. */
function epochOffset(data: Uint8Array): number | null {
  if (data.length < 5 || data[0] !== 0x00 || data[1] !== 0x01 || data[2] !== 0x00 || data[3] !== 0x02) return null;
  const first = data[4] ?? 0;
  const prefix = first >> 6;
  if (prefix === 3) return null;
  const size = 1 << prefix;
  let length = first & 0x3f;
  for (let i = 1; i < size; i++) length = length * 256 + (data[4 + i] ?? 0);
  const offset = 4 + size + length;
  return offset + 9 <= data.length ? offset : null;
}

/** The epoch a PrivateMessage was sealed in (in the clear, RFC 9420 §6.3), or null. */
export function mlsFrameEpoch(data: Uint8Array): bigint | null {
  const offset = epochOffset(data);
  if (offset === null) return null;
  let epoch = 0n;
  for (let i = 0; i < 8; i++) epoch = (epoch << 8n) | BigInt(data[offset + i] ?? 0);
  return epoch;
}

// ---- The machine -------------------------------------------------------------------------

export type LobbyState = 'in' | 'knocking' | 'unknown';

/** A member present, as the lobby knows them. */
export interface LobbyPerson {
  readonly member: string;
  /** Profile key, base64url (the identity the MLS credential must name). */
  readonly key: string;
  readonly name: string;
  readonly fingerprint: string;
}

interface Present extends LobbyPerson {
  state: LobbyState;
  /** Their latest knock, until it is answered (their key added, or their `in`) or they leave. */
  knock: { readonly keyPackage: Bytes; readonly pos: number } | null;
}

/** An MLS frame as the room log delivered it. */
export interface Frame {
  readonly from: string;
  readonly data: Bytes;
  readonly pos: number;
  readonly ts: number;
  /** A direct message (`to` this client): how a Welcome comes. */
  readonly direct: boolean;
}

export interface LobbyHost {
  /** Seals a lobby body under the lobby key as this member and sends it to the room; its log position, or null if it did not go. */
  sendLobby(body: Bytes): Promise<number | null>;
  /** Sends an MLS frame to the room, or directly to member `to`; its log position, or null if it did not go. */
  sendMls(frame: Bytes, to?: string): Promise<number | null>;
  /** Runs `task` after every event already received, in the host's event queue. */
  later(task: () => Promise<void>): void;
  /** An application message opened, from `frame.from` (its MLS sender checked against their profile key). */
  message(frame: Frame, plaintext: Bytes): void;
  /** The lobby's view changed (status, epoch, knocks). */
  changed(): void;
  /** Something to tell the person. `names`: people's names in `text`, in order. */
  alert(text: string, tone: 'info' | 'warning', names: readonly string[]): void;
}

/** What the page shows of the lobby. */
export interface LobbyView {
  /** `joining`: before the join; `in`: this client holds the group; `waiting`: it knocks. */
  readonly status: 'joining' | 'in' | 'waiting';
  /** Whether newcomers must be let in by hand (a `#2.` room) rather than automatically (`#2o.`). */
  readonly knockRoom: boolean;
  /** The MLS epoch of the keys in use, when in. */
  readonly epoch: bigint | null;
  /** People asking to be let in (shown to members in the group of a knock room). */
  readonly knocks: readonly LobbyPerson[];
  /** Members present who are not in the group (as far as this client, in it, can tell): waiting to be let in. */
  readonly outside: readonly string[];
}

export interface LobbyOptions {
  readonly identity: Identity;
  /** The room id: the group id derives from it. */
  readonly roomId: string;
  /** An open room (`#2o.`): the designated member lets every knock in. */
  readonly open: boolean;
  readonly now?: () => number;
}

interface InFlight {
  readonly commit: Bytes;
  readonly welcome: Bytes | null;
  /** Keys (base64url) the commit adds. */
  readonly add: readonly string[];
}

export class Lobby {
  readonly #identity: Identity;
  readonly #selfKey: string;
  readonly #roomId: string;
  readonly #open: boolean;
  readonly #host: LobbyHost;
  readonly #now: () => number;
  readonly #present = new Map<string, Present>();
  readonly #departed = new Map<string, string>();
  #self: string | null = null;
  #group: RoomGroup | null = null;
  /** Bumped whenever the group is replaced or lost: answers for an older one are ignored. */
  #generation = 0;
  #pendingJoins: PendingJoin[] = [];
  #knockPos: number | null = null;
  #knocking = false;
  /** This client created the group it holds and its `genesis` is at this position (null until acknowledged). */
  #genesis: { pos: number | null } | null = null;
  #kept: Frame[] = [];
  /** The epoch this client's group started at for it (its Welcome's, or 0 for a founder). */
  #firstEpoch = 0n;
  #inflight: InFlight | null = null;
  #committing = false;
  /** Keys this person chose to let in (a knock room), until they are in the group. */
  readonly #letIn = new Set<string>();
  #lastSentAt = 0;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /**
   * §17.3 item 8: own frames placed in the log (genesis, knock, commit) whose ack has not
   * come yet, and the events received meanwhile, held until the ack says which of them
   * were positioned before the own frame.
   */
  #placing = 0;
  #held: { readonly pos: number; readonly task: () => Promise<void> }[] = [];
  /** Bumped on every join: acks of what was sent before it no longer count. */
  #session = 0;

  constructor(options: LobbyOptions, host: LobbyHost) {
    this.#identity = options.identity;
    this.#selfKey = toBase64Url(options.identity.publicKeyBytes);
    this.#roomId = options.roomId;
    this.#open = options.open;
    this.#host = host;
    this.#now = options.now ?? Date.now;
  }

  // ---- What the page shows -----------------------------------------------------------------

  get inGroup(): boolean {
    return this.#group !== null && this.#group.active;
  }

  /** The group in use: a new object whenever the group is replaced (what was sealed for an older one must be sealed again). */
  get group(): RoomGroup | null {
    return this.inGroup ? this.#group : null;
  }

  get view(): LobbyView {
    const group = this.group;
    const inGroup = group === null ? new Set<string>() : this.#groupKeys(group);
    return {
      status: this.#self === null ? 'joining' : group !== null ? 'in' : 'waiting',
      knockRoom: !this.#open,
      epoch: group?.epoch ?? null,
      knocks: group === null || this.#open ? [] : Array.from(this.#present.values())
        .filter((p) => p.knock !== null && !inGroup.has(p.key))
        .map(({ member, key, name, fingerprint }) => ({ member, key, name, fingerprint })),
      outside: group === null ? [] : Array.from(this.#present.values()).filter((p) => !inGroup.has(p.key) || p.state !== 'in').map((p) => p.member),
    };
  }

  /** How much this lobby holds (for tests and the fuzz target: every one of these must stay bounded). */
  get footprint(): { kept: number; pendingJoins: number; held: number; present: number; departed: number; letIn: number; timers: number } {
    return {
      kept: this.#kept.length, pendingJoins: this.#pendingJoins.length, held: this.#held.length, present: this.#present.size,
      departed: this.#departed.size, letIn: this.#letIn.size, timers: this.#timers.size,
    };
  }

  /** A member's lobby state (for tests and the page). */
  stateOf(member: string): LobbyState | null {
    return this.#present.get(member)?.state ?? null;
  }

  /**
   * The member whose client removes leavers (and, in an open room, lets knocks in): the
   * first member of the group in leaf order whose leaf is *held*, by this client or by a
   * member present and *in* (§17.3 item 3). A member present that knocks (it lost the
   * group) or is unknown (it rejoined under a new member id) holds no leaf: it could not
   * commit. The Rust client (crates/client/src/session/lobby.rs) counts the same way, so
   * both agree on who it is. Null if this client is not in the group.
   */
  designated(): string | null {
    const group = this.group;
    if (group === null) return null;
    const byKey = this.#holders();
    for (const key of group.members()) {
      const member = byKey.get(toBase64Url(key));
      if (member !== undefined) return member;
    }
    return null;
  }

  /** Who holds a leaf, by key (base64url): this client and the members present and in. */
  #holders(): Map<string, string> {
    const byKey = new Map<string, string>();
    for (const p of this.#present.values()) if (p.state === 'in') byKey.set(p.key, p.member);
    if (this.#self !== null) byKey.set(this.#selfKey, this.#self);
    return byKey;
  }

  /** Seals an application message for the group; null when this client is not in it. */
  async seal(plaintext: Bytes): Promise<Bytes | null> {
    const group = this.group;
    if (group === null) return null;
    try {
      return await group.seal(plaintext);
    } catch (e: unknown) {
      if (e instanceof MlsError) return null;
      throw e;
    }
  }

  // ---- Events (from the host's queue, in log order) ----------------------------------------

  /**
   * This client joined the room as `self`, with `present` already there (the join ack,
   * profiles verified). After a lost session (`rejoin`), the old group is gone: the others
   * removed this client when it left.
   */
  async joined(self: string, present: readonly LobbyPerson[], rejoin = false): Promise<void> {
    const hadGroup = this.#group !== null;
    this.#reset();
    this.#session++;
    this.#placing = 0;
    this.#held = [];
    this.#self = self;
    this.#present.clear();
    for (const person of present) this.#present.set(person.member, { ...person, state: 'in', knock: null });
    if (rejoin && hadGroup && present.length > 0) this.#host.alert('You missed a key change: asking to be let in again', 'warning', []);
    if (present.length === 0) await this.#create();
    else await this.#knock();
    this.#host.changed();
  }

  /** A member joined (presence `join`, at `pos`). */
  async memberJoined(person: LobbyPerson, pos: number): Promise<void> {
    await this.#gate(pos, async () => {
      if (person.member === this.#self || this.#present.has(person.member)) return;
      this.#present.set(person.member, { ...person, state: 'unknown', knock: null });
      this.#host.changed();
    });
  }

  /** A member left (presence `leave`, at `pos`: after the grace, not on `away`). */
  async memberLeft(member: string, pos: number): Promise<void> {
    await this.#gate(pos, () => this.#memberLeft(member));
  }

  async #memberLeft(member: string): Promise<void> {
    const gone = this.#present.get(member);
    if (gone === undefined) return;
    this.#present.delete(member);
    this.#departed.set(gone.key, gone.name);
    if (this.#departed.size > MAX_DEPARTED) {
      const oldest = this.#departed.keys().next();
      if (oldest.done !== true) this.#departed.delete(oldest.value);
    }
    this.#host.changed();
    if (this.group !== null) await this.#duties();
    else await this.#fallback();
  }

  /** A lobby body from `from`, opened and verified by the host with their profile key. */
  async lobbyBody(from: string, body: LobbyBody, pos: number): Promise<void> {
    await this.#gate(pos, () => this.#lobbyBody(from, body, pos));
  }

  async #lobbyBody(from: string, body: LobbyBody, pos: number): Promise<void> {
    const sender = this.#present.get(from);
    if (sender === undefined || from === this.#self) return;
    switch (body.type) {
      case 'genesis':
        await this.#onGenesis(sender, pos);
        break;
      case 'knock': {
        let key: Bytes;
        try {
          key = keyPackageKey(body.keyPackage);
        } catch (e: unknown) {
          if (!(e instanceof MlsError)) throw e;
          this.#host.alert(`${sender.name} knocked with a damaged key package; it was ignored.`, 'warning', [sender.name]);
          return;
        }
        if (toBase64Url(key) !== sender.key) {
          this.#host.alert(`${sender.name} knocked with someone else’s key; it was ignored.`, 'warning', [sender.name]);
          return;
        }
        sender.state = 'knocking';
        sender.knock = { keyPackage: body.keyPackage, pos };
        this.#host.changed();
        if (this.group !== null) await this.#duties();
        else await this.#fallback();
        break;
      }
      case 'in':
        sender.state = 'in';
        sender.knock = null;
        this.#letIn.delete(sender.key);
        this.#host.changed();
        if (this.group !== null) await this.#duties();
        break;
    }
  }

  /** An MLS frame (first byte 0x00) from `frame.from`. */
  async mlsFrame(frame: Frame): Promise<void> {
    await this.#gate(frame.pos, () => this.#mlsFrame(frame));
  }

  async #mlsFrame(frame: Frame): Promise<void> {
    if (frame.from === this.#self || !this.#present.has(frame.from)) return;
    const kind = mlsFrameKind(frame.data);
    if (kind === 'welcome') {
      if (frame.direct && this.#group === null) await this.#welcome(frame);
      return;
    }
    if (this.#group === null) {
      if (this.#knocking) {
        this.#kept.push(frame);
        if (this.#kept.length > MAX_KEPT_FRAMES) this.#kept.shift();
      }
      return;
    }
    await this.#process(frame, false);
  }

  /** The person lets the knocker `member` in (a knock room): a commit adding their KeyPackage. */
  async letIn(member: string): Promise<void> {
    const knocker = this.#present.get(member);
    if (knocker?.knock == null || this.group === null) return;
    this.#letIn.add(knocker.key);
    await this.#duties();
  }

  /** Stops timers (the session closed). */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#generation++;
  }

  // ---- Creating, knocking, joining ---------------------------------------------------------

  #reset(): void {
    this.#generation++;
    this.#group = null;
    this.#pendingJoins = [];
    this.#knockPos = null;
    this.#knocking = false;
    this.#genesis = null;
    this.#kept = [];
    this.#inflight = null;
    this.#committing = false;
  }

  /** §17.3 item 1: a new group, this client alone at epoch 0, announced by `genesis`. */
  async #create(): Promise<void> {
    this.#reset();
    const generation = this.#generation;
    const group = await createGroup(this.#identity, this.#roomId);
    if (generation !== this.#generation) return;
    this.#group = group;
    this.#firstEpoch = 0n;
    const genesis = { pos: null as number | null };
    this.#genesis = genesis;
    this.#host.changed();
    this.#sendLobby({ type: 'genesis', sentAt: this.#nextSentAt() }, generation, async (pos) => {
      genesis.pos = pos;
      await this.#duties();
    });
  }

  /** §17.3 item 2: a fresh KeyPackage, sent as `knock`; MLS frames are kept until the Welcome. */
  async #knock(): Promise<void> {
    const generation = ++this.#generation;
    this.#group = null;
    this.#genesis = null;
    this.#inflight = null;
    this.#committing = false;
    this.#knocking = true;
    this.#knockPos = null;
    // Frames kept for an earlier knock belong to a group this client will not join from them.
    this.#kept = [];
    const made = await keyPackage(this.#identity, this.#roomId);
    if (generation !== this.#generation) return;
    this.#pendingJoins.push(made.pending);
    if (this.#pendingJoins.length > MAX_PENDING_JOINS) this.#pendingJoins.shift();
    this.#host.changed();
    this.#sendLobby({ type: 'knock', keyPackage: made.keyPackage, sentAt: this.#nextSentAt() }, generation, async (pos) => {
      this.#knockPos = pos;
      await this.#fallback();
    });
  }

  /**
   * Sends a lobby body; `then` runs in log order once it is placed (a genesis or knock
   * holds the events received meanwhile, §17.3 item 8). A body that did not go is sent again.
   */
  #sendLobby(body: LobbyBody, generation: number, then: (pos: number) => void | Promise<void>): void {
    const send = (): Promise<number | null> => this.#host.sendLobby(encodeLobbyBody(body));
    const placed = async (pos: number | null): Promise<void> => {
      if (generation !== this.#generation) return;
      if (pos === null) {
        this.#retry(() => this.#sendLobby({ ...body, sentAt: this.#nextSentAt() }, generation, then));
        return;
      }
      await then(pos);
    };
    if (body.type === 'in') void send().then((pos) => this.#host.later(() => placed(pos)));
    else this.#place(send, placed);
  }

  /** Runs an event now, or holds it while an own frame waits for its place (§17.3 item 8). */
  async #gate(pos: number, task: () => Promise<void>): Promise<void> {
    if (this.#placing > 0) {
      this.#held.push({ pos, task });
      return;
    }
    await task();
  }

  /**
   * Sends a frame that takes a place in the log. When its ack comes (in the host's
   * queue), the events held meanwhile that were positioned before it are handled first,
   * then `placed` (with null if it did not go), then, once nothing of this client's is
   * in flight any more, the rest.
   */
  #place(send: () => Promise<number | null>, placed: (pos: number | null) => Promise<void>): void {
    const session = this.#session;
    this.#placing++;
    void send().then((pos) => this.#host.later(async () => {
      if (session !== this.#session) return;
      try {
        if (pos !== null) await this.#release((held) => held < pos);
        await placed(pos);
      } finally {
        this.#placing--;
      }
      if (this.#placing === 0) await this.#release(() => true);
    }));
  }

  /** Handles the held events that `which` selects, in the order received. */
  async #release(which: (pos: number) => boolean): Promise<void> {
    const now = this.#held.filter((held) => which(held.pos));
    this.#held = this.#held.filter((held) => !which(held.pos));
    for (const held of now) await held.task();
  }

  #retry(task: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#host.later(async () => task());
    }, RETRY_MS);
    this.#timers.add(timer);
  }

  /**
   * Sends a Welcome until the server takes it, once a second while its newcomer is present
   * (offline, refused for rate, …), for at most WELCOME_ATTEMPTS tries: a lost Welcome
   * would leave the newcomer waiting while everyone else counts it in.
   */
  #sendWelcome(welcome: Bytes, member: string, attempt: number): void {
    void this.#host.sendMls(welcome, member).then((pos) => {
      if (pos !== null || attempt + 1 >= WELCOME_ATTEMPTS || !this.#present.has(member)) return;
      this.#retry(() => this.#sendWelcome(welcome, member, attempt + 1));
    });
  }

  async #onGenesis(sender: Present, pos: number): Promise<void> {
    sender.state = 'in';
    sender.knock = null;
    if (this.#genesis !== null && this.#group !== null) {
      // Two groups were made at once: the genesis placed first wins (§17.3 item 1).
      const own = this.#genesis.pos;
      if (own !== null && own < pos) return;
      await this.#knock();
      return;
    }
    // Knocking already: the founder saw that knock (it was in the room first), so a second
    // knock would only arrive after the first was answered, and undo it (the Rust client's
    // two_founders_at_once test caught exactly that under load).
    this.#host.changed();
  }

  /** A Welcome for this client (one of its KeyPackages): join, apply what was kept, say `in`. */
  async #welcome(frame: Frame): Promise<void> {
    let group: RoomGroup | null = null;
    for (const pending of [...this.#pendingJoins].reverse()) {
      try {
        group = await pending.join(frame.data);
        break;
      } catch (e: unknown) {
        if (!(e instanceof MlsError)) throw e;
        if (e.code === 'not-for-me') continue;
        await this.#lose();
        return;
      }
    }
    if (group === null) return;
    const generation = ++this.#generation;
    this.#group = group;
    this.#firstEpoch = group.epoch;
    this.#knocking = false;
    this.#pendingJoins = [];
    this.#genesis = null;
    const kept = this.#kept;
    this.#kept = [];
    const admitter = this.#present.get(frame.from);
    if (admitter !== undefined) admitter.state = 'in';
    // Knockers seen while waiting whose keys are in the group were let in before this
    // client joined (their commit is not this client's to apply): they are in, as the
    // others, who applied it, count them.
    const members = this.#groupKeys(group);
    for (const p of this.#present.values()) {
      if (p.knock !== null && members.has(p.key)) {
        p.knock = null;
        p.state = 'in';
      }
    }
    for (const earlier of kept) {
      if (generation !== this.#generation || this.#group === null) return;
      await this.#process(earlier, true);
    }
    if (generation !== this.#generation) return;
    const name = admitter?.name ?? 'Someone';
    this.#host.alert(`${name} let you in`, 'info', admitter === undefined ? [] : [name]);
    this.#sendLobby({ type: 'in', epoch: Number(group.epoch), sentAt: this.#nextSentAt() }, generation, () => undefined);
    this.#host.changed();
    await this.#duties();
  }

  /** §17.3 item 6: the group is lost; say so and knock again. */
  async #lose(): Promise<void> {
    this.#host.alert('You missed a key change: asking to be let in again', 'warning', []);
    await this.#knock();
    this.#host.changed();
  }

  /**
   * The server reported a gap this client could not get back (a resume whose window no
   * longer reached back): a commit may be among what was missed, so the group is not to be
   * trusted any more; knock again (§17.3 item 6).
   */
  async missedCommits(): Promise<void> {
    if (this.#group === null) return;
    this.#group = null;
    await this.#lose();
  }

  /** §17.3 item 7: nobody present holds the group; the earliest knocker makes a new one. */
  async #fallback(): Promise<void> {
    if (this.#group !== null || !this.#knocking || this.#knockPos === null) return;
    const others = Array.from(this.#present.values());
    if (others.some((p) => p.state === 'in')) return;
    const earliest = Math.min(...others.flatMap((p) => (p.state === 'knocking' && p.knock !== null ? [p.knock.pos] : [])));
    if (this.#knockPos < earliest) await this.#create();
  }

  // ---- In the group ------------------------------------------------------------------------

  /** Applies an MLS frame from the log (or one kept while knocking: `kept`). */
  async #process(frame: Frame, kept: boolean): Promise<void> {
    const group = this.#group;
    if (group === null) return;
    const generation = this.#generation;
    let result: Processed;
    try {
      result = await group.process(frame.data);
    } catch (e: unknown) {
      if (!(e instanceof MlsError)) throw e;
      if (generation !== this.#generation) return;
      await this.#refused(frame, e, kept);
      return;
    }
    if (generation !== this.#generation) return;
    await this.#result(frame.from, result, frame);
    if (result.kind === 'epoch' && !kept && generation === this.#generation) await this.#duties();
  }

  async #refused(frame: Frame, error: MlsError, kept: boolean): Promise<void> {
    const kind = mlsFrameKind(frame.data);
    // Frames of epochs before this client's first are not for it (what was said while it
    // knocked: §17.3); a commit that lost a race is refused by everyone.
    const epoch = mlsFrameEpoch(frame.data);
    if (error.code === 'stale' && (kept || kind === 'commit' || (epoch !== null && epoch < this.#firstEpoch))) return;
    // A removal this client applied (authenticated by the group) ends its membership. A
    // frame of a later epoch does not: its epoch is in the clear and anyone present can
    // forge it, and the room log delivers every commit in order, so a missed commit
    // comes only with a gap the server reports (`missedCommits`).
    if (error.code === 'not-member' && this.#group?.active === false) {
      await this.#lose();
      return;
    }
    if (kept && kind === 'commit') return;
    const name = this.#present.get(frame.from)?.name ?? 'someone';
    const why = error.code === 'stale' ? 'was sealed with keys that are not kept any more' : 'could not be opened';
    this.#host.alert(`A message from ${name} ${why} and was not shown.`, 'warning', [name]);
  }

  async #result(from: string, result: Processed, frame: Frame | null): Promise<void> {
    switch (result.kind) {
      case 'message': {
        const sender = from === this.#self ? this.#selfKey : this.#present.get(from)?.key;
        if (frame === null) return;
        if (sender !== toBase64Url(result.sender)) {
          const name = this.#present.get(from)?.name ?? 'someone';
          this.#host.alert(`A message from ${name} was signed by another member’s key and was not shown.`, 'warning', [name]);
          return;
        }
        this.#host.message(frame, result.plaintext);
        return;
      }
      case 'removed':
        await this.#lose();
        return;
      case 'lost-race':
        return;
      case 'epoch': {
        const added = result.added.map(toBase64Url);
        const removed = result.removed.map(toBase64Url);
        for (const key of added) this.#letIn.delete(key);
        const committer = result.own ? 'You' : this.#present.get(from)?.name ?? 'Someone';
        if (added.length > 0) {
          const names = added.map((key) => this.#nameOf(key));
          const knockers = Array.from(this.#present.values()).filter((p) => added.includes(p.key));
          // Whoever was added is in, whether or not their `in` comes.
          for (const p of knockers) {
            p.knock = null;
            p.state = 'in';
          }
          this.#host.alert(`${committer} let ${names.join(', ')} in`, 'info', result.own ? names : [committer, ...names]);
          if (result.own && this.#inflight?.welcome != null) {
            const welcome = this.#inflight.welcome;
            for (const p of knockers) this.#sendWelcome(welcome, p.member, 0);
          }
        }
        if (removed.length > 0) {
          const names = removed.map((key) => this.#nameOf(key));
          this.#host.alert(`Keys changed: ${names.join(', ')} left`, 'info', names);
        }
        this.#host.changed();
        return;
      }
    }
  }

  #nameOf(key: string): string {
    for (const p of this.#present.values()) if (p.key === key) return p.name;
    return this.#departed.get(key) ?? 'someone';
  }

  #groupKeys(group: RoomGroup): Set<string> {
    return new Set(group.members().map(toBase64Url));
  }

  /**
   * What this client must commit now, one commit at a time (§17.3 items 3–5): as the
   * designated member, remove the leaves nobody holds (a leaver's, or the old leaf of a
   * member that lost the group and knocks again: MLS refuses a second leaf with the same
   * key); then add whom this person let in, and in an open room, as the designated
   * member, every knock.
   */
  async #duties(): Promise<void> {
    const group = this.group;
    // Nothing is committed to a group whose genesis may still lose the race (§17.3 item 1).
    if (group === null || this.#committing || this.#genesis?.pos === null) return;
    const inGroup = this.#groupKeys(group);
    const designated = this.designated() === this.#self;
    if (designated) {
      // Leaves nobody holds: a leaver's, or one whose member lost the group and knocks.
      const held = this.#holders();
      const remove = group.members().filter((key) => !held.has(toBase64Url(key)));
      if (remove.length > 0) {
        await this.#commit(group, () => group.remove(remove).then(({ commit }) => ({ commit, welcome: null, add: [] })));
        return;
      }
    }
    const adds = Array.from(this.#present.values())
      .filter((p) => p.knock !== null && !inGroup.has(p.key) && (this.#open ? designated : this.#letIn.has(p.key)));
    if (adds.length === 0) return;
    await this.#commit(group, () => group.add(adds.map((p) => (p.knock as { keyPackage: Bytes }).keyPackage))
      .then(({ commit, welcome }) => ({ commit, welcome, add: adds.map((p) => p.key) })));
  }

  /** Makes a commit and sends it; it is applied when its position comes back (in log order). */
  async #commit(group: RoomGroup, make: () => Promise<InFlight>): Promise<void> {
    const generation = this.#generation;
    this.#committing = true;
    let made: InFlight;
    try {
      made = await make();
    } catch (e: unknown) {
      if (!(e instanceof MlsError)) throw e;
      this.#committing = false;
      this.#host.alert(`A key change could not be made (${e.code}).`, 'warning', []);
      return;
    }
    if (generation !== this.#generation) return;
    this.#inflight = made;
    this.#place(() => this.#host.sendMls(made.commit), async (pos) => {
      if (generation !== this.#generation || this.#inflight !== made) return;
      if (pos === null) {
        // It never reached the log: the next commit made replaces it.
        this.#inflight = null;
        this.#committing = false;
        this.#retry(() => void this.#duties());
        return;
      }
      let result: Processed | null = null;
      try {
        result = await group.process(made.commit);
      } catch (e: unknown) {
        if (!(e instanceof MlsError)) throw e;
      }
      if (generation !== this.#generation) return;
      if (result !== null) await this.#result(this.#self ?? '', result, null);
      if (generation !== this.#generation) return;
      this.#inflight = null;
      this.#committing = false;
      await this.#duties();
    });
  }

  #nextSentAt(): number {
    this.#lastSentAt = Math.max(this.#now(), this.#lastSentAt + 1);
    return this.#lastSentAt;
  }
}

/** For tests: a person's lobby identity from their key bytes. */
export function personOf(member: string, key: Bytes, name: string, fingerprint = ''): LobbyPerson {
  return { member, key: toBase64Url(key), name, fingerprint };
}
