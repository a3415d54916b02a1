//! The only owner of the Socket.IO connection. It connects, joins the room, and after a
//! reconnection comes back as the same member with `resume` (protocol v1.1: the server
//! replays what was missed, in order), or, when the server no longer knows the session,
//! joins again with `since` and a freshly sealed profile (a new socket id is a new member
//! id, and the profile is bound to it). It keeps the room's epoch, the last position seen
//! and the resume token, drops events it has already seen, tracks the connection as a
//! discriminated union, validates everything the server sends (protocol.ts) and hands it
//! on to one listener. Nothing else in the client emits on the socket.

import { io, type Socket } from 'socket.io-client';
import type { Bytes } from './encoding';
import {
  type Ack, type ErrorAck, type ErrorCode, type IncomingChunk, type IncomingMsg, type JoinAck,
  type Limits, type MsgAck, type Notice, type Presence, type ResumeAck, EVENT, parseIncomingChunk, parseIncomingMsg,
  parseJoinAck, parseMsgAck, parseNotice, parseOkAck, parsePresence, parseResumeAck,
} from './protocol';

/** Why the connection is down while it tries again. */
export type OfflineCause = 'network' | 'server_restart' | 'closed_by_server' | 'refused_at_connect' | 'join_failed';

export type ConnectionState =
  | { readonly kind: 'connecting'; readonly attempt: number }
  | { readonly kind: 'joining'; readonly sid: string }
  | { readonly kind: 'online'; readonly member: string; readonly joinedAt: number; readonly limits: Limits | null }
  | { readonly kind: 'offline'; readonly cause: OfflineCause; readonly detail: string; readonly attempt: number }
  /** The server refused the room for good (full, malformed…); no retry. */
  | { readonly kind: 'refused'; readonly code: ErrorCode | 'unknown'; readonly message: string }
  /** This person left; the connection is closed and stays closed. */
  | { readonly kind: 'closed' };

export interface ConnectionListener {
  state(state: ConnectionState): void;
  /**
   * Joined (`rejoin`: after a reconnection that could not resume, as a new member) with
   * the members already present; `ack.missed` says what could not be recovered.
   */
  joined(ack: JoinAck, rejoin: boolean): void;
  /** Came back as the same member after a reconnection; the missed events follow. */
  resumed(ack: ResumeAck): void;
  presence(presence: Presence): void;
  message(message: IncomingMsg): void;
  chunk(chunk: IncomingChunk): void;
  notice(notice: Notice): void;
}

export interface ConnectionOptions {
  readonly roomId: string;
  /** Seals this person's profile for `member`, the id of the new connection; base64url. */
  readonly sealProfile: (member: string) => Promise<string>;
  /** Server origin; default: the page's own (the only one the CSP allows). */
  readonly url?: string;
  readonly ackTimeoutMs?: number;
}

const DEFAULT_ACK_TIMEOUT_MS = 10_000;
/** Join failures that a retry can fix; anything else is final. */
const RETRYABLE_JOIN_ERRORS: ReadonlySet<string> = new Set(['unavailable', 'rate_limited', 'timeout', 'offline', 'unknown']);
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 5000;

/** This member's place in the room's log, kept across reconnections (protocol v1.1). */
interface LogPlace {
  readonly member: string;
  readonly epoch: string;
  /** The last position seen: events at or before it are duplicates. */
  readonly pos: number;
  readonly token: string;
}

export class Connection {
  readonly #options: ConnectionOptions;
  readonly #listener: ConnectionListener;
  readonly #socket: Socket;
  readonly #ackTimeoutMs: number;
  #state: ConnectionState = { kind: 'connecting', attempt: 0 };
  /** Bumped on every connect and disconnect, so that a slow join of an old connection is ignored. */
  #generation = 0;
  #hasJoined = false;
  /** Null before the first join, or with a server that does not resume sessions. */
  #place: LogPlace | null = null;
  /** The limits of the last join, for a resume ack that lacks them. */
  #limits: Limits | null = null;
  #shutdownNoticed = false;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: ConnectionOptions, listener: ConnectionListener) {
    this.#options = options;
    this.#listener = listener;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    const socketOptions = {
      // WebSocket only: file chunks are far larger than a long-polling body may be, and a
      // WebSocket needs no sticky sessions behind a load balancer.
      transports: ['websocket'],
      autoConnect: false,
      reconnection: true,
      reconnectionDelay: RETRY_BASE_MS,
      reconnectionDelayMax: RETRY_MAX_MS,
    };
    this.#socket = options.url === undefined ? io(socketOptions) : io(options.url, socketOptions);
    this.#wire();
    // Back online: try at once rather than at the end of the current backoff.
    if (typeof window !== 'undefined') window.addEventListener('online', () => this.#reconnectNow());
  }

  get state(): ConnectionState {
    return this.#state;
  }

  start(): void {
    this.#setState({ kind: 'connecting', attempt: this.#attempt });
    this.#socket.connect();
  }

  /**
   * Sends a sealed message; resolves with the server time and position, or an error ack
   * (never rejects). With `id`, a resend of the same message is not relayed twice.
   */
  async sendMsg(data: Bytes, options: { readonly to?: string; readonly volatile?: boolean; readonly id?: string } = {}): Promise<Ack<MsgAck>> {
    if (this.#state.kind !== 'online' || !this.#socket.connected) return offline();
    const payload = {
      room: this.#options.roomId, data,
      ...(options.to === undefined ? {} : { to: options.to }),
      ...(options.id === undefined ? {} : { id: options.id }),
    };
    const target = options.volatile === true ? this.#socket.volatile : this.#socket;
    return this.#request(target, EVENT.msg, payload, parseMsgAck);
  }

  /** Sends one encrypted file chunk; resolves once the server relayed it (the sender's pacing signal). */
  async sendChunk(file: string, seq: number, data: Bytes): Promise<Ack<null>> {
    if (this.#state.kind !== 'online' || !this.#socket.connected) return offline();
    return this.#request(this.#socket, EVENT.chunk, { room: this.#options.roomId, file, seq, data }, parseOkAck);
  }

  /** Leaves the room and closes the connection for good. */
  async leave(): Promise<void> {
    if (this.#state.kind === 'closed') return;
    const wasOnline = this.#state.kind === 'online' && this.#socket.connected;
    this.#close();
    if (wasOnline) {
      // The answer does not matter: the connection closes right after either way.
      await this.#request(this.#socket, EVENT.leave, { room: this.#options.roomId }, parseOkAck, 2000);
    }
    this.#socket.disconnect();
  }

  /** Best-effort leave while the page is being unloaded: no waiting for an answer. */
  leaveNow(): void {
    if (this.#state.kind === 'closed') return;
    if (this.#state.kind === 'online' && this.#socket.connected) {
      this.#socket.emit(EVENT.leave, { room: this.#options.roomId });
    }
    this.#close();
    this.#socket.disconnect();
  }

  #close(): void {
    this.#generation++;
    this.#clearRetry();
    this.#place = null;
    this.#setState({ kind: 'closed' });
  }

  /** The browser is online again: reconnect now if the connection is down. */
  #reconnectNow(): void {
    if (this.#state.kind !== 'offline' || this.#socket.connected) return;
    this.#clearRetry();
    // Stops the Manager's pending attempt and starts a new one right away.
    this.#socket.disconnect();
    this.#socket.connect();
  }

  /**
   * Whether an event at `pos` is new; advances the last position seen. Events without a
   * position (a v1 server) are always new.
   */
  #fresh(pos: number): boolean {
    const place = this.#place;
    if (this.#state.kind !== 'online') return false;
    if (place === null || pos === 0) return true;
    if (pos <= place.pos) return false;
    this.#place = { ...place, pos };
    return true;
  }

  #wire(): void {
    const socket = this.#socket;
    socket.on('connect', () => {
      this.#generation++;
      this.#clearRetry();
      this.#shutdownNoticed = false;
      // Socket.IO's own connection state recovery is left unused: it would move the
      // member to the new connection without handing over a new resume token, so the
      // next reconnection could not resume. `resume` does it all, and says what was missed.
      (socket as unknown as { _pid?: string | undefined })._pid = undefined;
      const place = this.#place;
      if (place === null) void this.#join(this.#generation, null);
      else void this.#resume(this.#generation, place);
    });
    socket.on('disconnect', (reason: string) => {
      this.#generation++;
      if (this.#state.kind === 'closed' || this.#state.kind === 'refused') return;
      const cause: OfflineCause = this.#shutdownNoticed
        ? 'server_restart'
        : reason === 'io server disconnect' ? 'closed_by_server' : 'network';
      this.#setState({ kind: 'offline', cause, detail: reason, attempt: this.#attempt });
      // The Manager reconnects by itself after a transport failure, but not after the
      // server closed this socket on purpose (graceful shutdown, slow receiver).
      if (!socket.active) this.#scheduleReconnect();
    });
    socket.on('connect_error', (error: Error) => {
      if (this.#state.kind === 'closed' || this.#state.kind === 'refused') return;
      const refused = error.message.startsWith('rate_limited:');
      this.#setState({
        kind: 'offline',
        cause: refused ? 'refused_at_connect' : this.#state.kind === 'offline' ? this.#state.cause : 'network',
        detail: error.message.slice(0, 200),
        attempt: this.#attempt,
      });
      if (!socket.active) this.#scheduleReconnect();
    });
    socket.io.on('reconnect_attempt', (attempt: number) => {
      this.#attempt = attempt;
      if (this.#state.kind === 'offline') this.#setState({ ...this.#state, attempt });
    });
    socket.on(EVENT.presence, (payload: unknown) => {
      const presence = parsePresence(payload);
      if (presence !== null && presence.room === this.#options.roomId && this.#fresh(presence.pos)) this.#listener.presence(presence);
    });
    socket.on(EVENT.msg, (payload: unknown) => {
      const message = parseIncomingMsg(payload);
      if (message !== null && message.room === this.#options.roomId && this.#fresh(message.pos)) this.#listener.message(message);
    });
    socket.on(EVENT.chunk, (payload: unknown) => {
      const chunk = parseIncomingChunk(payload);
      if (chunk !== null && chunk.room === this.#options.roomId && this.#fresh(chunk.pos)) this.#listener.chunk(chunk);
    });
    socket.on(EVENT.notice, (payload: unknown) => {
      const notice = parseNotice(payload);
      if (notice === null) return;
      if (notice.code === 'shutting_down') this.#shutdownNoticed = true;
      this.#listener.notice(notice);
    });
  }

  /**
   * Comes back as the member this client was, on the new connection: the server replays
   * what was missed after the ack. If the server no longer knows the session (grace over,
   * server restarted, anything else), joins again with `since`.
   */
  async #resume(generation: number, place: LogPlace): Promise<void> {
    const sid = this.#socket.id;
    if (sid === undefined) return;
    this.#setState({ kind: 'joining', sid });
    const ack = await this.#request(this.#socket, EVENT.resume, {
      room: this.#options.roomId, member: place.member, token: place.token, epoch: place.epoch, pos: place.pos,
    }, parseResumeAck);
    if (generation !== this.#generation) return;
    if (!ack.ok || ack.value.member !== place.member) {
      // The profile is sealed for the new socket id: a new member, who says where it left off.
      await this.#join(generation, { epoch: place.epoch, pos: place.pos });
      return;
    }
    const { session } = ack.value;
    // The last position seen stays: the replayed events that follow advance it.
    this.#place = { member: place.member, epoch: session.epoch, token: session.token, pos: session.epoch === place.epoch ? place.pos : 0 };
    this.#attempt = 0;
    const limits = ack.value.limits ?? this.#limits;
    this.#limits = limits;
    this.#setState({ kind: 'online', member: ack.value.member, joinedAt: ack.value.at, limits });
    this.#listener.resumed(ack.value);
  }

  async #join(generation: number, since: { readonly epoch: string; readonly pos: number } | null): Promise<void> {
    const sid = this.#socket.id;
    if (sid === undefined) return;
    this.#setState({ kind: 'joining', sid });
    let profile: string;
    try {
      profile = await this.#options.sealProfile(sid);
    } catch (e: unknown) {
      this.#refuse('unknown', `could not seal the profile: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (generation !== this.#generation) return;
    const request = since === null ? { room: this.#options.roomId, profile } : { room: this.#options.roomId, profile, since };
    const ack = await this.#request(this.#socket, EVENT.join, request, parseJoinAck);
    if (generation !== this.#generation) return;
    if (!ack.ok) {
      if (RETRYABLE_JOIN_ERRORS.has(ack.code)) {
        this.#setState({ kind: 'offline', cause: 'join_failed', detail: ack.message, attempt: ++this.#attempt });
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = null;
          if (generation === this.#generation && this.#socket.connected) void this.#join(generation, since);
        }, backoff(this.#attempt));
      } else {
        this.#refuse(ack.code === 'offline' || ack.code === 'timeout' ? 'unknown' : ack.code, ack.message);
      }
      return;
    }
    if (ack.value.member !== sid) {
      // The profile was sealed for `sid`; other members could not open it.
      this.#refuse('unknown', 'the server named this connection differently from its socket id');
      return;
    }
    this.#attempt = 0;
    const rejoin = this.#hasJoined;
    this.#hasJoined = true;
    const session = ack.value.session;
    this.#place = session === null ? null : { member: ack.value.member, epoch: session.epoch, pos: session.pos, token: session.token };
    this.#limits = ack.value.limits;
    this.#setState({ kind: 'online', member: ack.value.member, joinedAt: ack.value.at, limits: ack.value.limits });
    this.#listener.joined(ack.value, rejoin);
  }

  #refuse(code: ErrorCode | 'unknown', message: string): void {
    this.#generation++;
    this.#clearRetry();
    this.#setState({ kind: 'refused', code, message });
    this.#socket.disconnect();
  }

  #scheduleReconnect(): void {
    if (this.#retryTimer !== null) return;
    this.#attempt++;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#state.kind === 'offline' && !this.#socket.connected) this.#socket.connect();
    }, backoff(this.#attempt));
  }

  #clearRetry(): void {
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  /**
   * Emits with an acknowledgement and parses the answer; a missing answer (timeout or the
   * connection dropped meanwhile) becomes a client-side `timeout` error ack.
   */
  async #request<T>(target: Socket, event: string, payload: object, parse: (answer: unknown) => Ack<T>, timeoutMs = this.#ackTimeoutMs): Promise<Ack<T>> {
    let answer: unknown;
    try {
      answer = await target.timeout(timeoutMs).emitWithAck(event, payload);
    } catch (e: unknown) {
      if (e instanceof Error) return { ok: false, code: 'timeout', message: 'no answer from the server in time' };
      throw e;
    }
    return parse(answer);
  }

  #setState(state: ConnectionState): void {
    this.#state = state;
    this.#listener.state(state);
  }
}

function offline(): ErrorAck {
  return { ok: false, code: 'offline', message: 'not connected' };
}

/** Exponential backoff with jitter, from 1 s up to 5 s. */
function backoff(attempt: number): number {
  const base = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(attempt, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
