//! One person's session in one room: the state between the connection and the UI. It
//! seals what this person sends, opens and verifies what others send (each member's
//! profile proves their key; every later message must be signed by it), drops replays,
//! keeps the member list (with who is reconnecting) and the outbox, and tells the UI what
//! changed. The outbox sends this person's texts one at a time, in order, each with a
//! client id: what cannot go now (offline, rate limited, server busy, no answer) waits
//! and goes out by itself, and after a reconnection every text without an answer is sent
//! again under the same id (the server drops what it already relayed). Only a text that
//! can never go is marked as not sent. After a gap that could not be recovered it says
//! plainly what was missed. The UI calls methods here; it never sees the socket or a key.
//!
//! A v2 room (docs/crypto.md §17) differs only in how bodies are sealed: profiles and the
//! lobby bodies under the lobby key (§5's sealing), everything people say, send or type as
//! MLS application messages of the room's group; `lobby.ts` decides who is in the group,
//! and until this person is let in, the outbox waits and no typing notice goes.

import { Connection, type ConnectionState } from './connection';
import {
  type Identity, type RoomKeys, type RoomKind, OpenError, deriveRoomKeys, fingerprintOf, generateIdentity,
  importPublicKey, openEnvelope, saltOf, seal, verifyEnvelope,
} from './crypto';
import {
  type Body, type DeleteBody, type EditBody, type FileBody, type MessageRef, type ReactionBody, MAX_TEXT_CHARS,
  cutQuote, decodeBody, encodeBody, isEmojiLike,
} from './content';
import { Conversation, type ReactionView, type Refusal } from './conversation';
import { type Bytes, fromBase64Url, toBase64Url } from './encoding';
import { type PresenceAlert, failureText, gapText, presenceAlertText, typingText } from './format';
import type { Frame, Lobby, LobbyPerson, LobbyView } from './lobby';
import { decodeLobbyBody } from './lobby-body';
import type {
  Ack, ErrorAck, IncomingChunk, IncomingMsg, JoinAck, Limits, LeaveReason, Missed, Notice, Presence, ResumeAck,
} from './protocol';
import { ReplayGuard, replayKey } from './replay';
import { TypingTracker } from './typing';

/** A member as the UI shows them. */
export interface MemberView {
  readonly member: string;
  readonly name: string;
  readonly fingerprint: string;
  /** The identity public key (base64url): who they are for trust marks, never sent anywhere. */
  readonly key: string;
  readonly joinedAt: number;
  readonly self: boolean;
  /** Their connection dropped and they are reconnecting (still a member, for the server's grace). */
  readonly away: boolean;
}

export interface Author {
  readonly name: string;
  readonly fingerprint: string;
  readonly self: boolean;
}

/** Where one of this person's own messages stands. */
export type OutgoingStatus =
  /** Waiting for the connection, or (`lobby`) for this person to be let in to a v2 room. */
  | { readonly kind: 'queued'; readonly lobby?: boolean }
  | { readonly kind: 'sending' }
  | { readonly kind: 'sent' }
  | { readonly kind: 'failed'; readonly reason: string };

export type ChatItem =
  | {
      readonly kind: 'text';
      readonly id: string;
      readonly author: Author;
      readonly text: string;
      /** Server time; for an own message not yet acknowledged, the local time it was typed. */
      readonly ts: number;
      readonly status: OutgoingStatus;
      readonly direct: boolean;
      /** How replies, reactions, edits and deletions name it (docs/crypto.md §8). */
      readonly ref?: MessageRef;
      /** The text it answers. */
      readonly reply?: ReplyView;
      /** Its author changed it. */
      readonly edited?: boolean;
      /** Its author deleted it: `text` is empty. */
      readonly deleted?: boolean;
      /** Reactions, per emoji. */
      readonly reactions?: readonly ReactionView[];
    }
  | {
      readonly kind: 'alert'; readonly id: string; readonly text: string; readonly ts: number; readonly tone: 'info' | 'warning'; readonly count: number;
      /** People's names in `text`, in order, for the UI to isolate (bidi). */
      readonly names: readonly string[];
    };

/** What a reply answers, as shown above it. */
export interface ReplyView {
  /** The answered text. */
  readonly ref: MessageRef;
  /** The answered text's timeline item, if it is known here (to scroll to it). */
  readonly itemId: string | null;
  /** Its author, if known here. */
  readonly author: string | null;
  /** Its text now if known here, else the quote the replier sent (untrusted, like any text). */
  readonly text: string;
  readonly deleted: boolean;
}

export type TextItem = Extract<ChatItem, { kind: 'text' }>;

export interface RoomListener {
  connection(state: ConnectionState): void;
  members(members: readonly MemberView[]): void;
  added(item: ChatItem): void;
  updated(item: ChatItem): void;
  /** The typing line, and the names in it (in order) for the UI to isolate. */
  typing(text: string, names: readonly string[]): void;
  /** A file announcement, chunk or cancellation, for the file-transfer module. */
  file?(event: FileEvent): void;
  /** A v2 room's lobby (docs/crypto.md §17.3): whether this person is let in, the key epoch, who knocks. */
  lobby?(view: LobbyView): void;
}

export type FileEvent =
  | { readonly kind: 'announced'; readonly body: FileBody; readonly author: Author; readonly from: string; readonly ts: number }
  | { readonly kind: 'chunk'; readonly chunk: IncomingChunk }
  /** The sender of file `file` cancelled it: no more chunks will come. */
  | { readonly kind: 'cancelled'; readonly from: string; readonly file: string }
  /** Events were lost while this person was offline: files still arriving cannot complete. */
  | { readonly kind: 'gap' };

export interface RoomOptions {
  readonly secret: Bytes;
  readonly name: string;
  readonly url?: string;
  /** What the link names: a v1 room (the default) or a v2 room (docs/crypto.md §17). */
  readonly kind?: RoomKind;
  /** Override for tests; default Date.now. */
  readonly now?: () => number;
}

interface KnownMember {
  readonly view: MemberView;
  readonly publicKey: CryptoKey;
  /** base64url public key: the person's identity across reconnections (a new member id each time). */
  readonly keyText: string;
}

/**
 * After this client reconnects, people who were here and are not (yet) back get this long
 * to reconnect too before their leaving is announced: after a server restart everyone
 * reconnects at once, in no particular order.
 */
const RECONNECT_GRACE_MS = 20_000;
/** People who left, remembered by key so that their return reads "rejoined"; bounded. */
const MAX_REMEMBERED_PEOPLE = 256;
/** Texts remembered by author, time and content, to drop one sent again under a new member id; bounded. */
const MAX_REMEMBERED_TEXTS = 4096;
/** Waits of the outbox before trying again, when the server gave no hint. */
const RATE_LIMITED_WAIT_MS = 1000;
const UNAVAILABLE_WAIT_MS = 2000;
const NO_ANSWER_WAIT_MS = 1000;
/** `not_member` while online is usually a reconnection in progress; after this many, the text fails. */
const MAX_NOT_MEMBER_TRIES = 3;

/** One of this person's texts that the server has not acknowledged yet. */
interface Outgoing {
  /** The timeline item. */
  readonly itemId: string;
  /** The client id on the wire: the same for every attempt, so the server relays it once. */
  readonly wireId: string;
  readonly text: string;
  /** When it was typed, also the sealed body's `sent_at` (the same body for every attempt). */
  readonly typedAt: number;
  /** Sealed for one member id (and in a v2 room, one group); sealed again after a join as a new member. */
  sealed: { readonly member: string; readonly group: object | null; readonly data: Bytes } | null;
  notMemberTries: number;
  /** For a reply: the text answered, and the start of it. */
  readonly replyTo?: MessageRef;
  readonly quote?: string;
}

export class RoomSession {
  readonly keys: RoomKeys;
  readonly identity: Identity;
  readonly name: string;
  readonly #listener: RoomListener;
  readonly #connection: Connection;
  readonly #now: () => number;
  readonly #members = new Map<string, KnownMember>();
  readonly #departed = new Map<string, string>();
  readonly #replay = new ReplayGuard();
  /** Texts already shown, by author key, time and content (a resend after a rejoin has a new signature). */
  readonly #textsSeen = new ReplayGuard(MAX_REMEMBERED_TEXTS);
  readonly #outbox: Outgoing[] = [];
  readonly #conversation: Conversation;
  /** The latest version of each text item (bounded), so that changes build on it. */
  readonly #textItems = new Map<string, TextItem>();
  #lastSentAt = 0;
  #flushing = false;
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  /** Members whose connection dropped (presence `away`), until `back` or `leave`. */
  readonly #away = new Set<string>();
  readonly #typing: TypingTracker;
  /** People not back after our reconnection, by key: their leave alert waits for the grace period. */
  readonly #awaitingReturn = new Map<string, ReturnType<typeof setTimeout>>();
  #offlineCause: LeaveReason = 'disconnected';
  /** Incoming events are handled one at a time, in the order the server sent them. */
  #queue: Promise<void> = Promise.resolve();
  #member: string | null = null;
  #limits: Limits | null = null;
  #nextId = 0;
  #lastAlert: Extract<ChatItem, { kind: 'alert' }> | null = null;
  #wentOfflineAt: number | null = null;
  /** When the connection was last lost (also when alone in the room), for the gap line. */
  #offlineSince: number | null = null;
  #serverRestarting = false;
  /** A v2 room's lobby and MLS group; null in a v1 room. */
  readonly #lobby: Lobby | null;
  readonly kind: RoomKind;

  private constructor(keys: RoomKeys, identity: Identity, options: RoomOptions, listener: RoomListener, lobbyClass: typeof Lobby | null) {
    this.keys = keys;
    this.identity = identity;
    this.name = options.name;
    this.#listener = listener;
    this.#now = options.now ?? Date.now;
    this.kind = options.kind ?? 'v1';
    this.#lobby = lobbyClass === null ? null : new lobbyClass({ identity, roomId: keys.roomId, open: this.kind === 'open', now: this.#now }, {
      sendLobby: async (body) => {
        const member = this.#member;
        if (member === null || this.#connection.state.kind !== 'online') return null;
        const ack = await this.#connection.sendMsg(await seal(this.keys, this.identity, member, body));
        return ack.ok ? ack.value.pos : null;
      },
      sendMls: async (frame, to) => {
        if (this.#member === null || this.#connection.state.kind !== 'online') return null;
        const ack = await this.#connection.sendMsg(frame, to === undefined ? {} : { to });
        return ack.ok ? ack.value.pos : null;
      },
      later: (task) => this.#enqueue(task),
      message: (frame, plaintext) => this.#onPlaintext(frame, plaintext),
      changed: () => this.#lobbyChanged(),
      alert: (text, tone, names) => this.#alert(text, tone, this.#now(), names),
    });
    this.#conversation = new Conversation(toBase64Url(identity.publicKeyBytes));
    this.#typing = new TypingTracker((members) => {
      const names = members.map((member) => this.#members.get(member)?.view.name).filter((name): name is string => name !== undefined);
      this.#listener.typing(typingText(names), names.length <= 2 ? names : []);
    });
    this.#connection = new Connection(
      {
        roomId: keys.roomId,
        sealProfile: (member) => this.#sealProfile(member),
        ...(options.url === undefined ? {} : { url: options.url }),
      },
      {
        state: (state) => this.#onState(state),
        joined: (ack, rejoin) => this.#enqueue(() => this.#onJoined(ack, rejoin)),
        resumed: (ack) => this.#enqueue(() => this.#onResumed(ack)),
        presence: (presence) => this.#enqueue(() => this.#onPresence(presence)),
        message: (message) => this.#enqueue(() => this.#onMessage(message)),
        // In order with messages, so a file's announcement is opened before its chunks.
        chunk: (chunk) => this.#enqueue(async () => this.#onChunk(chunk)),
        notice: (notice) => this.#onNotice(notice),
      },
    );
  }

  /** Derives the room's keys, makes this session's identity and connects. */
  static async open(options: RoomOptions, listener: RoomListener): Promise<RoomSession> {
    const keys = await deriveRoomKeys(options.secret, saltOf(options.kind ?? 'v1'));
    const identity = await generateIdentity();
    // The MLS engine (ts-mls, most of the page's code) is loaded only for a v2 room.
    const lobbyClass = (options.kind ?? 'v1') === 'v1' ? null : (await import('./lobby')).Lobby;
    const session = new RoomSession(keys, identity, options, listener, lobbyClass);
    session.#connection.start();
    return session;
  }

  get connection(): Connection {
    return this.#connection;
  }

  get limits(): Limits | null {
    return this.#limits;
  }

  get memberId(): string | null {
    return this.#member;
  }

  get members(): readonly MemberView[] {
    return this.#memberViews();
  }

  /** A v2 room's lobby as the page shows it; null in a v1 room. */
  get lobby(): LobbyView | null {
    return this.#lobby?.view ?? null;
  }

  /** In a v2 knock room: lets the knocking member in (a commit adding them). */
  letIn(member: string): void {
    const lobby = this.#lobby;
    if (lobby !== null) this.#enqueue(() => lobby.letIn(member));
  }

  get self(): Author {
    return { name: this.name, fingerprint: this.identity.fingerprint, self: true };
  }

  /**
   * Sends a text: it shows at once as sending, and goes out when the connection allows,
   * after every text typed before it.
   */
  sendText(text: string, replyToItem: string | null = null): void {
    const trimmed = text.replace(/^\s*\n|\s+$/g, '');
    if (trimmed.trim().length === 0) return;
    const id = this.#newId();
    const typedAt = this.#nextSentAt();
    const ref: MessageRef = { key: toBase64Url(this.identity.publicKeyBytes), sentAt: typedAt };
    const replyTo = replyToItem === null ? null : this.#conversation.refOf(replyToItem);
    const answered = replyToItem === null ? undefined : this.#textItems.get(replyToItem);
    this.#typing.resetSent();
    const item: ChatItem = {
      // Never cut: a text over the limit is shown whole as not sent (the composer refuses it first).
      kind: 'text', id, author: this.self, text: trimmed, ts: typedAt,
      status: { kind: this.#connection.state.kind === 'online' ? 'sending' : 'queued' }, direct: false,
      ref,
      ...(replyTo === null || answered === undefined ? {} : {
        reply: { ref: replyTo, itemId: replyToItem, author: answered.author.name, text: answered.text, deleted: answered.deleted === true },
      }),
    };
    this.#add(item);
    if (trimmed.length > MAX_TEXT_CHARS) {
      this.#listener.updated({ ...item, status: { kind: 'failed', reason: `${trimmed.length} characters, longer than the limit of ${MAX_TEXT_CHARS}` } });
      return;
    }
    this.#conversation.record(ref, id);
    this.#outbox.push({
      itemId: id, wireId: newWireId(), text: item.text, typedAt, sealed: null, notMemberTries: 0,
      ...(replyTo === null || answered === undefined ? {} : { replyTo, quote: cutQuote(answered.text) }),
    });
    void this.#flushOutbox();
  }

  /** Whether `itemId` is a text of this person's own, sent and not deleted: one they can edit or delete. */
  canChange(itemId: string): boolean {
    const ref = this.#conversation.refOf(itemId);
    const item = this.#textItems.get(itemId);
    return ref !== null && item?.status.kind === 'sent' && this.#conversation.ownAndLive(ref) === null;
  }

  /** Whether `itemId` is a text that can be answered or reacted to (known here, sent, not deleted). */
  canAnswer(itemId: string): boolean {
    const ref = this.#conversation.refOf(itemId);
    return ref !== null && !this.#conversation.isDeleted(ref) && this.#textItems.get(itemId)?.status.kind === 'sent';
  }

  /** The latest text of this person's own that they can still edit, for the Up arrow. */
  lastOwnChangeable(): string | null {
    const ids = Array.from(this.#textItems.keys());
    for (let i = ids.length - 1; i >= 0; i--) {
      const id = ids[i];
      if (id !== undefined && this.#textItems.get(id)?.author.self === true && this.canChange(id)) return id;
    }
    return null;
  }

  /** The current version of a text item. */
  textItem(itemId: string): TextItem | null {
    return this.#textItems.get(itemId) ?? null;
  }

  /** Puts this person's `emoji` on text `itemId`, or takes it back if it is on. */
  react(itemId: string, emoji: string): void {
    const ref = this.#conversation.refOf(itemId);
    if (ref === null || !isEmojiLike(emoji)) return;
    const body: ReactionBody = { type: 'reaction', to: ref, emoji, add: !this.#conversation.hasOwnReaction(ref, emoji), sentAt: this.#nextSentAt() };
    const reactions = this.#conversation.react(toBase64Url(this.identity.publicKeyBytes), this.name, body);
    if (typeof reactions === 'string') return;
    this.#changeItem(itemId, { reactions });
    void this.#sendChange(body, 'reaction');
  }

  /** Replaces the text of this person's own text `itemId`; false if it cannot be changed. */
  editText(itemId: string, text: string): boolean {
    const ref = this.#conversation.refOf(itemId);
    const trimmed = text.replace(/^\s*\n|\s+$/g, '');
    if (ref === null || !this.canChange(itemId) || trimmed.trim().length === 0 || trimmed.length > MAX_TEXT_CHARS) return false;
    if (trimmed === this.#textItems.get(itemId)?.text) return true;
    const body: EditBody = { type: 'edit', to: ref, text: trimmed, sentAt: this.#nextSentAt() };
    if (this.#conversation.edit(ref.key, body) !== null) return false;
    this.#changeItem(itemId, { text: trimmed, edited: true });
    this.#changeQuotes(ref, { text: trimmed });
    void this.#sendChange(body, 'edit');
    return true;
  }

  /** Deletes this person's own text `itemId` for everyone. */
  deleteText(itemId: string): void {
    const ref = this.#conversation.refOf(itemId);
    if (ref === null || !this.canChange(itemId)) return;
    const body: DeleteBody = { type: 'delete', to: ref, sentAt: this.#nextSentAt() };
    if (this.#conversation.delete(ref.key, body) !== null) return;
    this.#changeItem(itemId, { text: '', deleted: true, reactions: [] });
    this.#changeQuotes(ref, { text: '', deleted: true });
    void this.#sendChange(body, 'deletion');
  }

  /** Called on every keystroke in the composer; sends a sealed `typing` at most every 3 s. */
  typing(): void {
    const now = this.#now();
    if (this.#member === null || (this.#lobby !== null && !this.#lobby.inGroup) || !this.#typing.shouldSend(now)) return;
    void this.#sealAndSend(encodeBody({ type: 'typing', sentAt: now }), true);
  }

  /** Seals a body and sends it (used by the file-transfer module for `file` bodies). */
  async sendBody(body: Bytes): Promise<{ readonly ok: true; readonly ts: number } | ErrorAck> {
    const ack = await this.#sealAndSend(body, false);
    return ack.ok ? { ok: true, ts: ack.value.ts } : ack;
  }

  /** Sends one encrypted file chunk (the file-transfer module's pacing depends on the answer). */
  sendChunk(file: string, seq: number, data: Bytes): Promise<Ack<null>> {
    return this.#connection.sendChunk(file, seq, data);
  }

  async leave(): Promise<void> {
    this.#typing.clear();
    this.#lobby?.close();
    await this.#connection.leave();
  }

  /** For `pagehide`: leave without waiting. */
  leaveNow(): void {
    this.#connection.leaveNow();
  }

  /** Looks a member up by id, for the file module (announcements and chunks name members). */
  author(member: string): Author | null {
    const known = this.#members.get(member);
    return known === undefined ? null : { name: known.view.name, fingerprint: known.view.fingerprint, self: known.view.self };
  }

  // ---- Sending ---------------------------------------------------------------------------

  /** Now, or one more than the last `sent_at` given: no two bodies of this tab share one (a `MessageRef` names one text). */
  #nextSentAt(): number {
    this.#lastSentAt = Math.max(this.#now(), this.#lastSentAt + 1);
    return this.#lastSentAt;
  }

  /** Sends a reaction, edit or deletion, trying again for a while when the server asks to wait or the connection is away. */
  async #sendChange(body: ReactionBody | EditBody | DeleteBody, what: string): Promise<void> {
    const bytes = encodeBody(body);
    for (let attempt = 0; attempt < 30; attempt++) {
      const ack = await this.#sealAndSend(bytes, false);
      if (ack.ok) return;
      if (ack.code !== 'offline' && ack.code !== 'rate_limited' && ack.code !== 'unavailable' && ack.code !== 'timeout') break;
      await new Promise((resolve) => setTimeout(resolve, ('retryMs' in ack ? ack.retryMs : undefined) ?? RATE_LIMITED_WAIT_MS));
    }
    this.#alert(`Your ${what} could not be sent; the others do not see it.`, 'warning');
  }

  /** Shows a changed version of text item `itemId`. */
  #changeItem(itemId: string, change: Partial<Pick<TextItem, 'text' | 'edited' | 'deleted' | 'reactions'>>): void {
    const item = this.#textItems.get(itemId);
    if (item === undefined) return;
    const changed: TextItem = { ...item, ...change };
    this.#keepItem(changed);
    this.#listener.updated(changed);
  }

  /** Shows the replies that quote `ref` with its new text (after an edit or deletion by its author). */
  #changeQuotes(ref: MessageRef, change: { readonly text: string; readonly deleted?: boolean }): void {
    for (const item of Array.from(this.#textItems.values())) {
      const reply = item.reply;
      if (reply === undefined || reply.ref.key !== ref.key || reply.ref.sentAt !== ref.sentAt || reply.deleted) continue;
      const changed: TextItem = { ...item, reply: { ...reply, ...change } };
      this.#keepItem(changed);
      this.#listener.updated(changed);
    }
  }

  #keepItem(item: TextItem): void {
    // In the order shown: a changed item keeps its place.
    this.#textItems.set(item.id, item);
    if (this.#textItems.size > MAX_REMEMBERED_TEXTS) {
      const oldest = this.#textItems.keys().next();
      if (oldest.done !== true) this.#textItems.delete(oldest.value);
    }
  }

  async #sealProfile(member: string): Promise<string> {
    const body = encodeBody({ type: 'profile', name: this.name, key: toBase64Url(this.identity.publicKeyBytes), sentAt: this.#now() });
    return toBase64Url(await seal(this.keys, this.identity, member, body));
  }

  /** A body for the room: v1 sealed with the message key (§5); v2 an MLS application message (§17.2), null while not let in. */
  async #sealBody(member: string, body: Bytes): Promise<Bytes | null> {
    return this.#lobby === null ? seal(this.keys, this.identity, member, body) : this.#lobby.seal(body);
  }

  async #sealAndSend(body: Bytes, volatile: boolean) {
    const member = this.#member;
    if (member === null || this.#connection.state.kind !== 'online') {
      return { ok: false, code: 'offline', message: 'not connected' } as const;
    }
    const sealed = await this.#sealBody(member, body);
    if (sealed === null) return { ok: false, code: 'offline', message: 'you have not been let in yet' } as const;
    if (this.#limits !== null && sealed.length > this.#limits.maxMessageBytes) {
      return { ok: false, code: 'too_large', message: 'too large for this server' } as const;
    }
    return this.#connection.sendMsg(sealed, { volatile });
  }

  /**
   * Sends the outbox, one text at a time, in order. A text leaves the outbox when the
   * server acknowledges it (or a resend of it), or when it can never go; anything else
   * keeps it (and those after it) waiting: for the connection, or a moment.
   */
  async #flushOutbox(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      for (let next = this.#outbox[0]; next !== undefined; next = this.#outbox[0]) {
        const member = this.#member;
        if (member === null || this.#connection.state.kind !== 'online') break;
        const group = this.#lobby?.group ?? null;
        if (this.#lobby !== null && group === null) {
          // Not let in (yet): what is typed waits, and goes once the group is ours.
          for (const waiting of this.#outbox) this.#setStatus(waiting, { kind: 'queued', lobby: true }, waiting.typedAt);
          break;
        }
        this.#setStatus(next, { kind: 'sending' }, next.typedAt);
        if (next.sealed?.member !== member || next.sealed.group !== group) {
          const body = encodeBody({
            type: 'text', text: next.text, sentAt: next.typedAt,
            ...(next.replyTo === undefined ? {} : { replyTo: next.replyTo, quote: next.quote ?? '' }),
          });
          const data = await this.#sealBody(member, body);
          if (data === null) {
            // The group went away meanwhile (or refused to seal): the next change of the lobby sends it.
            this.#scheduleFlush(NO_ANSWER_WAIT_MS);
            break;
          }
          next.sealed = { member, group, data };
        }
        if (this.#limits !== null && next.sealed.data.length > this.#limits.maxMessageBytes) {
          this.#outbox.shift();
          this.#setStatus(next, { kind: 'failed', reason: `too large for this server (${next.sealed.data.length} bytes encrypted, its limit is ${this.#limits.maxMessageBytes}); it can never be sent as it is` }, next.typedAt);
          continue;
        }
        const ack = await this.#connection.sendMsg(next.sealed.data, { id: next.wireId });
        if (ack.ok) {
          this.#outbox.shift();
          this.#setStatus(next, { kind: 'sent' }, ack.value.ts);
          continue;
        }
        const wait = this.#waitBeforeRetry(ack, next);
        if (wait === null) {
          this.#outbox.shift();
          this.#setStatus(next, { kind: 'failed', reason: failureText(ack) }, next.typedAt);
          continue;
        }
        // Offline: the next join or resume sends it. Online: try again in a moment.
        if (this.#connection.state.kind === 'online') this.#scheduleFlush(wait);
        break;
      }
      if (this.#connection.state.kind !== 'online') {
        for (const waiting of this.#outbox) this.#setStatus(waiting, { kind: 'queued' }, waiting.typedAt);
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** How long to wait before sending `entry` again after `ack`; null if it can never go. */
  #waitBeforeRetry(ack: ErrorAck, entry: Outgoing): number | null {
    switch (ack.code) {
      case 'offline':
        return 0;
      case 'rate_limited':
        return ack.retryMs ?? RATE_LIMITED_WAIT_MS;
      case 'unavailable':
        return ack.retryMs ?? UNAVAILABLE_WAIT_MS;
      case 'timeout':
        // No answer: it may have been relayed; the same id makes a resend safe.
        return NO_ANSWER_WAIT_MS;
      case 'not_member':
        return ++entry.notMemberTries <= MAX_NOT_MEMBER_TRIES ? NO_ANSWER_WAIT_MS : null;
      default:
        return null;
    }
  }

  #scheduleFlush(delayMs: number): void {
    if (this.#flushTimer !== null) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      void this.#flushOutbox();
    }, delayMs);
  }

  #setStatus(entry: Outgoing, status: OutgoingStatus, ts: number): void {
    const current = this.#textItems.get(entry.itemId);
    const item: TextItem = current === undefined
      ? { kind: 'text', id: entry.itemId, author: this.self, text: entry.text, ts, status, direct: false }
      : { ...current, ts, status };
    this.#keepItem(item);
    this.#listener.updated(item);
  }

  // ---- Receiving -------------------------------------------------------------------------

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((e: unknown) => {
      // A bug in one handler must not stop the room; show it rather than hide it.
      this.#alert(`Something went wrong handling an event: ${e instanceof Error ? e.message : String(e)}`, 'warning');
    });
  }

  #onState(state: ConnectionState): void {
    if (state.kind === 'online') {
      this.#member = state.member;
      this.#limits = state.limits;
    } else {
      this.#member = null;
    }
    if (state.kind === 'offline') this.#offlineCause = state.cause === 'server_restart' ? 'server_restart' : 'disconnected';
    if (state.kind === 'offline' && state.cause === 'server_restart') this.#serverRestarting = true;
    if (state.kind === 'closed') {
      this.#lobby?.close();
      this.#clearAwaitingReturn();
      if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
    }
    if (state.kind === 'offline' && this.#offlineSince === null) this.#offlineSince = this.#now();
    if ((state.kind === 'offline' || state.kind === 'refused') && this.#wentOfflineAt === null && this.#members.size > 0) {
      this.#wentOfflineAt = this.#now();
      this.#alert(state.kind === 'offline' && state.cause === 'server_restart'
        ? 'The server is restarting; reconnecting…'
        : 'Connection lost; reconnecting…', 'warning');
      this.#typing.clear();
    }
    this.#listener.connection(state);
    // Texts waiting for the connection say so.
    if (state.kind === 'offline') void this.#flushOutbox();
  }

  /**
   * Back as the same member: nobody saw this person leave, and the server replays what
   * was missed right after this (the roster catches up through the replayed presence).
   */
  async #onResumed(ack: ResumeAck): Promise<void> {
    if (this.#wentOfflineAt !== null) this.#presenceAlert({ kind: 'self-resume', at: this.#now() });
    this.#reportGap(ack.missed);
    if (ack.missed !== null) await this.#lobby?.missedCommits();
    this.#wentOfflineAt = null;
    this.#offlineSince = null;
    this.#serverRestarting = false;
    this.#listener.members(this.#memberViews());
    void this.#flushOutbox();
  }

  /** After a gap that could not be replayed: one plain line, and files still arriving cannot complete. */
  #reportGap(missed: Missed | null): void {
    if (missed === null) return;
    const offlineMs = this.#offlineSince === null ? 0 : Math.max(0, this.#now() - this.#offlineSince);
    this.#alert(gapText(offlineMs, missed, this.#serverRestarting), missed.messages > 0 || !missed.exact ? 'warning' : 'info');
    this.#listener.file?.({ kind: 'gap' });
  }

  async #onJoined(ack: JoinAck, rejoin: boolean): Promise<void> {
    const previous = new Map(this.#members);
    this.#members.clear();
    this.#away.clear();
    const previousKeys = new Map(Array.from(previous.values(), (known) => [known.keyText, known] as const));
    for (const present of ack.members) {
      const opened = await this.#openProfile(present.member, present.profile, present.at);
      if (opened === null) continue;
      this.#members.set(present.member, opened);
      const before = previousKeys.get(opened.keyText);
      previousKeys.delete(opened.keyText);
      if (rejoin && before === undefined && !this.#cancelAwaitingReturn(opened.keyText)) {
        const returning = this.#departed.has(opened.keyText);
        this.#presenceAlert({ kind: returning ? 'rejoin' : 'join', name: opened.view.name, at: present.at });
      }
    }
    const self: KnownMember = {
      view: { member: ack.member, name: this.name, fingerprint: this.identity.fingerprint, key: toBase64Url(this.identity.publicKeyBytes), joinedAt: ack.at, self: true, away: false },
      publicKey: this.identity.publicKey,
      keyText: toBase64Url(this.identity.publicKeyBytes),
    };
    this.#members.set(ack.member, self);
    if (rejoin) {
      // Whoever we knew and is not back may be reconnecting too: give them a moment.
      const reason = this.#offlineCause;
      const at = this.#wentOfflineAt ?? ack.at;
      for (const gone of previousKeys.values()) {
        if (gone.view.self || this.#awaitingReturn.has(gone.keyText)) continue;
        this.#awaitingReturn.set(gone.keyText, setTimeout(() => {
          this.#awaitingReturn.delete(gone.keyText);
          this.#remember(gone);
          this.#presenceAlert({ kind: 'leave', name: gone.view.name, at, reason });
        }, RECONNECT_GRACE_MS));
      }
      this.#presenceAlert({ kind: 'self-rejoin', at: ack.at });
      // A join after a lost session: whatever the server counted, and whatever was
      // arriving, is gone. (Null from a server that does not keep a log.)
      this.#reportGap(ack.missed);
    } else {
      this.#presenceAlert({ kind: 'self-join', at: ack.at });
    }
    this.#wentOfflineAt = null;
    this.#offlineSince = null;
    this.#serverRestarting = false;
    this.#listener.members(this.#memberViews());
    if (this.#lobby !== null) {
      const present = Array.from(this.#members.values()).filter((known) => !known.view.self).map(personOf);
      await this.#lobby.joined(ack.member, present, rejoin);
    }
    void this.#flushOutbox();
  }

  /** The lobby changed: the page shows it, and once let in, what waited in the outbox goes. */
  #lobbyChanged(): void {
    const lobby = this.#lobby;
    if (lobby === null) return;
    this.#listener.lobby?.(lobby.view);
    void this.#flushOutbox();
  }

  async #onPresence(presence: Presence): Promise<void> {
    switch (presence.kind) {
      case 'join': {
        if (this.#members.has(presence.member)) return;
        const opened = await this.#openProfile(presence.member, presence.profile, presence.at);
        if (opened === null) return;
        this.#members.set(presence.member, opened);
        await this.#lobby?.memberJoined(personOf(opened), presence.pos);
        // Back within the grace period after a reconnection: no news, they never really left.
        if (!this.#cancelAwaitingReturn(opened.keyText)) {
          const returning = this.#departed.delete(opened.keyText);
          this.#presenceAlert({ kind: returning ? 'rejoin' : 'join', name: opened.view.name, at: presence.at });
        }
        break;
      }
      case 'leave': {
        const gone = this.#members.get(presence.member);
        if (gone === undefined || gone.view.self) return;
        this.#members.delete(presence.member);
        this.#away.delete(presence.member);
        this.#typing.stop(presence.member);
        this.#remember(gone);
        this.#presenceAlert({ kind: 'leave', name: gone.view.name, at: presence.at, reason: presence.reason });
        await this.#lobby?.memberLeft(presence.member, presence.pos);
        break;
      }
      case 'away': {
        // Reconnecting, not gone: shown in the online list, no alert.
        const known = this.#members.get(presence.member);
        if (known === undefined || known.view.self) return;
        this.#away.add(presence.member);
        this.#typing.stop(presence.member);
        break;
      }
      case 'back':
        if (!this.#away.delete(presence.member)) return;
        break;
    }
    this.#listener.members(this.#memberViews());
  }

  async #onMessage(message: IncomingMsg): Promise<void> {
    const sender = this.#members.get(message.from);
    if (sender === undefined || sender.view.self) {
      this.#alert('A message from someone who is not in the room was dropped.', 'warning');
      return;
    }
    if (this.#lobby !== null) {
      await this.#onV2Frame(message, sender, this.#lobby);
      return;
    }
    let body: Body | null;
    let signature: string;
    try {
      const envelope = await openEnvelope(this.keys, message.from, message.data);
      await verifyEnvelope(sender.publicKey, this.keys, message.from, envelope);
      body = decodeBody(envelope.body);
      signature = toBase64Url(envelope.signature);
    } catch (e: unknown) {
      if (!(e instanceof OpenError)) throw e;
      this.#alert(`A message from ${sender.view.name} failed ${e.kind === 'signature' ? 'signature verification' : 'decryption'} and was not shown.`, 'warning', this.#now(), [sender.view.name]);
      return;
    }
    this.#deliver(message, sender, body, signature);
  }

  /**
   * A v2 frame (docs/crypto.md §17.2), told by its first byte: 0x01 a lobby body sealed
   * with the lobby key and signed by the sender (genesis, knock, in), 0x00 an MLS message.
   */
  async #onV2Frame(message: IncomingMsg, sender: KnownMember, lobby: Lobby): Promise<void> {
    const first = message.data[0];
    if (first === 0x00) {
      await lobby.mlsFrame({ from: message.from, data: message.data, pos: message.pos, ts: message.ts, direct: message.to !== null });
      return;
    }
    const name = sender.view.name;
    if (first !== 0x01) {
      this.#alert(`A malformed message from ${name} was not shown.`, 'warning', this.#now(), [name]);
      return;
    }
    let body: ReturnType<typeof decodeLobbyBody>;
    try {
      const envelope = await openEnvelope(this.keys, message.from, message.data);
      await verifyEnvelope(sender.publicKey, this.keys, message.from, envelope);
      body = decodeLobbyBody(envelope.body);
    } catch (e: unknown) {
      if (!(e instanceof OpenError)) throw e;
      this.#alert(`A message from ${name} failed ${e.kind === 'signature' ? 'signature verification' : 'decryption'} and was not shown.`, 'warning', this.#now(), [name]);
      return;
    }
    if (body === 'other') {
      // What people say travels only under MLS: a text sealed with the lobby key is refused.
      this.#alert(`A message from ${name} was not end-to-end encrypted for the members and was not shown.`, 'warning', this.#now(), [name]);
      return;
    }
    if (body === null) {
      this.#alert(`A malformed message from ${name} was not shown.`, 'warning', this.#now(), [name]);
      return;
    }
    await lobby.lobbyBody(message.from, body, message.pos);
  }

  /** An MLS application message the lobby opened (its sender's key already checked against the profile). */
  #onPlaintext(frame: Frame, plaintext: Bytes): void {
    const sender = this.#members.get(frame.from);
    if (sender === undefined || sender.view.self) return;
    // The AEAD tag ends the frame: unique per message, it stands for the signature of v1.
    this.#deliver({ from: frame.from, ts: frame.ts, to: frame.direct ? this.#member : null }, sender, decodeBody(plaintext), toBase64Url(frame.data.subarray(-16)));
  }

  /** Shows a verified body from `sender` (v1 and v2 alike). */
  #deliver(message: Pick<IncomingMsg, 'from' | 'ts' | 'to'>, sender: KnownMember, body: Body | null, signature: string): void {
    if (body === null || body.type === 'profile') {
      this.#alert(`A malformed message from ${sender.view.name} was not shown.`, 'warning', this.#now(), [sender.view.name]);
      return;
    }
    if (!this.#replay.accept(replayKey(sender.keyText, body.sentAt, signature))) return;
    const author: Author = { name: sender.view.name, fingerprint: sender.view.fingerprint, self: false };
    switch (body.type) {
      case 'text':
        this.#typing.stop(message.from);
        if (body.text.trim().length === 0) break;
        // The same text sent again by its author under a new member id (after a rejoin).
        if (!this.#textsSeen.accept(textKey(sender.keyText, body.sentAt, body.text))) break;
        {
          const id = this.#newId();
          const ref: MessageRef = { key: sender.keyText, sentAt: body.sentAt };
          this.#conversation.record(ref, id);
          this.#add({
            kind: 'text', id, author, text: body.text, ts: message.ts, status: { kind: 'sent' }, direct: message.to !== null,
            ref, ...(body.replyTo === undefined ? {} : { reply: this.#replyView(body.replyTo, body.quote ?? '') }),
          });
        }
        break;
      case 'edit': {
        const refused = this.#conversation.edit(sender.keyText, body);
        const itemId = this.#conversation.itemOf(body.to);
        if (refused === null && itemId !== null) this.#changeItem(itemId, { text: body.text, edited: true });
        else this.#changeRefused(sender.view.name, 'edit', refused);
        // By the author: quotes of the text change too, even where the text itself is not known.
        if (refused === null || refused === 'unknown') this.#changeQuotes(body.to, { text: body.text });
        break;
      }
      case 'delete': {
        const refused = this.#conversation.delete(sender.keyText, body);
        const itemId = this.#conversation.itemOf(body.to);
        if (refused === null && itemId !== null) this.#changeItem(itemId, { text: '', deleted: true, reactions: [] });
        else this.#changeRefused(sender.view.name, 'delete', refused);
        if (refused === null || refused === 'unknown') this.#changeQuotes(body.to, { text: '', deleted: true });
        break;
      }
      case 'reaction': {
        const reactions = this.#conversation.react(sender.keyText, sender.view.name, body);
        const itemId = this.#conversation.itemOf(body.to);
        if (typeof reactions !== 'string' && itemId !== null) this.#changeItem(itemId, { reactions });
        break;
      }
      case 'typing':
        this.#typing.start(message.from);
        break;
      case 'file':
        this.#typing.stop(message.from);
        this.#listener.file?.({ kind: 'announced', body, author, from: message.from, ts: message.ts });
        break;
      case 'file-cancel':
        // Only the sender's own file: transfers are keyed by the member the server names.
        this.#listener.file?.({ kind: 'cancelled', from: message.from, file: body.file });
        break;
      case 'unknown':
        break;
    }
  }

  /** What a reply answers: the text as it is now if known here, else the quote it carries. */
  #replyView(to: MessageRef, quote: string): ReplyView {
    const itemId = this.#conversation.itemOf(to);
    const item = itemId === null ? undefined : this.#textItems.get(itemId);
    return item === undefined
      ? { ref: to, itemId: null, author: null, text: quote, deleted: false }
      : { ref: to, itemId: item.id, author: item.author.name, text: item.text, deleted: item.deleted === true };
  }

  /**
   * An edit or deletion that changed nothing: another member's attempt to change someone
   * else's words is worth a warning; the rest (a text sent before this person joined, an
   * older edit arriving late) is ignored.
   */
  #changeRefused(name: string, what: 'edit' | 'delete', refused: Refusal | null): void {
    if (refused === 'not-author') this.#alert(`${name} tried to ${what} someone else’s message; it was ignored.`, 'warning', this.#now(), [name]);
  }

  /**
   * A file chunk goes to the file module if it comes from a member whose profile was
   * verified; the server names the sender, so nobody can slip chunks into another
   * member's file. Others' chunks (their profile failed, already reported) are dropped.
   */
  #onChunk(chunk: IncomingChunk): void {
    if (!this.#members.has(chunk.from)) return;
    this.#listener.file?.({ kind: 'chunk', chunk });
  }

  #onNotice(notice: Notice): void {
    // A shutdown is reported once, when the connection drops ("The server is restarting…").
    if (notice.code === 'shutting_down') {
      this.#serverRestarting = true;
      return;
    }
    if (notice.code === 'rate_limited') this.#alert('Slow down: the server is limiting how fast you send.', 'warning');
    else this.#alert(`Server notice: ${notice.message || notice.code}`, 'info');
  }

  /** Opens and verifies a sealed profile for `member`; warns and returns null if it fails. */
  async #openProfile(member: string, profileText: string, at: number): Promise<KnownMember | null> {
    try {
      const sealed = fromBase64Url(profileText);
      if (sealed === null) throw new OpenError('format', 'profile is not base64url');
      const envelope = await openEnvelope(this.keys, member, sealed);
      const body = decodeBody(envelope.body);
      if (body === null || body.type !== 'profile') throw new OpenError('format', 'not a profile');
      const keyBytes = fromBase64Url(body.key);
      if (keyBytes === null) throw new OpenError('format', 'profile key is not base64url');
      const publicKey = await importPublicKey(keyBytes);
      // The profile is signed by the key it announces and bound (aad, signature) to `member`.
      await verifyEnvelope(publicKey, this.keys, member, envelope);
      const fingerprint = await fingerprintOf(keyBytes);
      return { view: { member, name: body.name, fingerprint, key: body.key, joinedAt: at, self: false, away: false }, publicKey, keyText: body.key };
    } catch (e: unknown) {
      if (!(e instanceof OpenError)) throw e;
      this.#alert(`Someone joined with a profile that failed ${e.kind === 'signature' ? 'signature verification' : e.kind === 'decrypt' ? 'decryption' : 'validation'}; they are not shown and their messages will be dropped.`, 'warning');
      return null;
    }
  }

  /** True if this person was awaited after a reconnection (and now is not any more). */
  #cancelAwaitingReturn(keyText: string): boolean {
    const timer = this.#awaitingReturn.get(keyText);
    if (timer === undefined) return false;
    clearTimeout(timer);
    this.#awaitingReturn.delete(keyText);
    return true;
  }

  #clearAwaitingReturn(): void {
    for (const timer of this.#awaitingReturn.values()) clearTimeout(timer);
    this.#awaitingReturn.clear();
  }

  // ---- Helpers ---------------------------------------------------------------------------

  #memberViews(): MemberView[] {
    return Array.from(this.#members.values(), (known) => ({ ...known.view, away: this.#away.has(known.view.member) }))
      .sort((a, b) => Number(b.self) - Number(a.self) || a.joinedAt - b.joinedAt);
  }

  #remember(known: KnownMember): void {
    this.#departed.set(known.keyText, known.view.name);
    if (this.#departed.size > MAX_REMEMBERED_PEOPLE) {
      const oldest = this.#departed.keys().next();
      if (oldest.done !== true) this.#departed.delete(oldest.value);
    }
  }

  #presenceAlert(alert: PresenceAlert): void {
    this.#alert(presenceAlertText(alert), 'info', alert.at, 'name' in alert ? [alert.name] : []);
  }

  /** Adds a system alert; the same warning repeated in a row is counted, not repeated. */
  #alert(text: string, tone: 'info' | 'warning', ts: number = this.#now(), names: readonly string[] = []): void {
    const last = this.#lastAlert;
    if (tone === 'warning' && last !== null && last.text === text) {
      this.#lastAlert = { ...last, count: last.count + 1, ts };
      this.#listener.updated(this.#lastAlert);
      return;
    }
    const item = { kind: 'alert', id: this.#newId(), text, ts, tone, count: 1, names } as const;
    this.#lastAlert = tone === 'warning' ? item : null;
    this.#listener.added(item);
  }

  #add(item: ChatItem): void {
    if (item.kind === 'text') this.#keepItem(item);
    this.#lastAlert = null;
    this.#listener.added(item);
  }

  #newId(): string {
    return `item-${++this.#nextId}`;
  }
}

/** A member as the lobby knows them. */
function personOf(known: KnownMember): LobbyPerson {
  return { member: known.view.member, key: known.keyText, name: known.view.name, fingerprint: known.view.fingerprint };
}

/** A fresh client id for an outgoing text: 16 random bytes as base64url (22 characters). */
function newWireId(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(16)));
}

/** Who wrote a text, when, and what (bounded): the same text sent again has the same key. */
function textKey(senderKey: string, sentAt: number, text: string): string {
  return `${senderKey}|${sentAt}|${text.length}|${text.slice(0, 64)}`;
}
