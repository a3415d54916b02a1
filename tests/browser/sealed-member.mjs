// A room member written with node:crypto only (docs/crypto.md §3-§6 once more): it joins with
// a profile it seals and signs itself and sends whatever body a test gives it, sealed and
// signed as the spec says. Tests use it for what no honest client sends, such as an edit of
// someone else's message.
import { createCipheriv, generateKeyPairSync, hkdfSync, randomBytes, sign } from 'node:crypto';
import { io } from 'socket.io-client';
import { nextEvent } from '../harness.mjs';

export class SealedMember {
  /** Joins the room of `link` (its 43-character fragment) on `serverUrl` as `name`. */
  static async join(serverUrl, link, name) {
    const secret = Buffer.from(new URL(link).hash.slice(1), 'base64url');
    const member = new SealedMember(secret);
    member.socket = io(serverUrl, { transports: ['websocket'], reconnection: false });
    await nextEvent(member.socket, 'connect');
    const profile = member.seal({ type: 'profile', name, key: member.key, sent_at: Date.now() });
    const ack = await member.socket.timeout(5000).emitWithAck('join', { room: member.roomId, profile: profile.toString('base64url') });
    if (ack.ok !== true) throw new Error(`join refused: ${JSON.stringify(ack)}`);
    return member;
  }

  constructor(secret) {
    this.roomBytes = Buffer.from(hkdfSync('sha256', secret, 'streamchat/v1', 'room-id', 16));
    this.messageKey = Buffer.from(hkdfSync('sha256', secret, 'streamchat/v1', 'message-key', 32));
    this.roomId = this.roomBytes.toString('base64url');
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    this.privateKey = privateKey;
    /** The public key, base64url, as profiles and message references carry it. */
    this.key = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url').toString('base64url');
  }

  #memberField() {
    const bytes = Buffer.from(this.socket.id, 'utf8');
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  }

  /** `body` (an object) as compact JSON, signed and sealed for this member. */
  seal(body) {
    const bytes = Buffer.from(JSON.stringify(body), 'utf8');
    const signature = sign(null, Buffer.concat([Buffer.from('streamchat/v1/sig'), this.roomBytes, this.#memberField(), bytes]), this.privateKey);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.messageKey, iv);
    cipher.setAAD(Buffer.concat([Buffer.from('streamchat/v1'), this.roomBytes, this.#memberField()]));
    const ciphertext = Buffer.concat([cipher.update(Buffer.concat([signature, bytes])), cipher.final(), cipher.getAuthTag()]);
    return Buffer.concat([Buffer.from([1]), iv, ciphertext]);
  }

  /** Sends `body` to the room; resolves once the server accepted it. */
  async send(body) {
    const ack = await this.socket.timeout(5000).emitWithAck('msg', { room: this.roomId, data: this.seal(body) });
    if (ack.ok !== true) throw new Error(`msg refused: ${JSON.stringify(ack)}`);
  }

  close() {
    this.socket.disconnect();
  }
}
