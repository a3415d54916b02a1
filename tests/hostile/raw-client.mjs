// A raw Socket.IO v5 client over a bare WebSocket, for payloads the official client
// cannot produce: invalid JSON, 10,000-deep nesting, fake binary placeholders, event
// names that are not strings, attachments that never come. It speaks just enough of
// Engine.IO v4 (open, ping/pong, message) and Socket.IO v5 (connect, event, ack).
// Not a test file itself (the runner only picks up *.test.mjs).
//
// `ws` is the WebSocket library socket.io-client itself depends on (tests/node_modules).
import WebSocket from 'ws';

const ACK_MS = 5000;

export class RawClient {
  /** Connects to the default namespace; resolves once the server acknowledged it. */
  static async connect(url, { ms = 5000 } = {}) {
    const client = new RawClient(new WebSocket(RawClient.wsUrl(url), { maxPayload: 64 * 1024 * 1024 }));
    await client.connected(ms);
    return client;
  }

  /**
   * Opens an Engine.IO session and stops there: never connects to a namespace. Resolves
   * with the client once the server's open packet arrived, or rejects.
   */
  static async bare(url, { ms = 5000 } = {}) {
    const client = new RawClient(new WebSocket(RawClient.wsUrl(url)), { namespace: false });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('raw client: no engine.io open')), ms);
      client.onOpen = () => { clearTimeout(timer); resolve(); };
      client.closed.then(() => { clearTimeout(timer); reject(new Error('raw client: closed before open')); });
    });
    return client;
  }

  static wsUrl(url) {
    const u = new URL(url);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.pathname = '/socket.io/';
    u.search = 'EIO=4&transport=websocket';
    return u;
  }

  constructor(ws, { namespace = true } = {}) {
    this.ws = ws;
    this.namespace = namespace;
    this.nextId = 1;
    /** ack id → resolve */
    this.pending = new Map();
    /** Every server→client Socket.IO text packet, as received (after the engine.io `4`). */
    this.packets = [];
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve({ code })));
    this.isClosed = false;
    this.closed.then(() => {
      this.isClosed = true;
      for (const [, p] of this.pending) p.reject(new Error('connection closed before the ack'));
      this.pending.clear();
    });
    ws.on('error', () => {}); // a refused or cut connection shows as `closed`
    ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
  }

  connected(ms) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('raw client: no namespace connect')), ms);
      this.onConnect = (ok, body) => {
        clearTimeout(timer);
        if (ok) { this.sid = JSON.parse(body).sid; resolve(); } else reject(new Error(`connect_error ${body}`));
      };
      this.closed.then(() => { clearTimeout(timer); reject(new Error('raw client: closed while connecting')); });
    });
  }

  onFrame(data, isBinary) {
    if (isBinary) return; // our acks carry no attachments; events' binaries are not needed here
    const text = data.toString();
    switch (text[0]) {
      case '0': // engine.io open → connect to "/", unless bare
        if (this.namespace) this.ws.send('40'); else this.onOpen?.();
        return;
      case '2': this.ws.send('3'); return; // ping → pong
      case '4': break;
      default: return;
    }
    const sio = text.slice(1);
    this.packets.push(sio);
    if (sio.startsWith('0')) { this.onConnect?.(true, sio.slice(1)); return; } // CONNECT
    if (sio.startsWith('4')) { this.onConnect?.(false, sio.slice(1)); return; } // CONNECT_ERROR
    const ack = sio.match(/^3(\d+)(\[.*)$/s);
    if (ack) {
      const id = Number(ack[1]);
      const p = this.pending.get(id);
      if (p) { this.pending.delete(id); p.resolve(JSON.parse(ack[2])); }
    }
  }

  /**
   * Sends an event with an ack id. `argsText` is the raw text after the event name
   * inside the JSON array (it need not be valid JSON); `binaries` are sent as
   * attachments after the header. `eventText` is the raw first element (default: the
   * quoted event name). Resolves with the ack's arguments array, rejects if none comes.
   */
  request(event, argsText, { binaries = [], eventText = JSON.stringify(event), count = binaries.length, ms = ACK_MS } = {}) {
    const id = this.nextId++;
    const head = count > 0 ? `5${count}-` : '2';
    const sep = argsText === undefined ? '' : ',';
    const packet = `4${head}${id}[${eventText}${sep}${argsText ?? ''}]`;
    const answer = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no ack for ${event} (id ${id}, ${packet.length} chars) within ${ms} ms; connection closed=${this.isClosed}`));
      }, ms);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
    this.ws.send(packet);
    for (const b of binaries) this.ws.send(b, { binary: true });
    return answer;
  }

  /** Sends a raw engine.io text frame as is. */
  sendText(text) { this.ws.send(text); }

  /** Resolves true if the server closes the connection within `ms`, else false. */
  async closesWithin(ms) {
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(false), ms); });
    const result = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  close() { this.ws.terminate(); }
}
