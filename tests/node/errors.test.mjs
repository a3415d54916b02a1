// Error acks: bad_request, not_member, too_large. Each case checks the ack
// `{ok:false, error:{code, message}}`, that the connection stays up, and that nothing
// reached the other members.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  Env, assertError, barrier, bytes, fileId, isBinary, msgsIn, profile, roomId, toBuf,
} from './helpers.mjs';

const GENEROUS_RATES = ['--messages-per-second', 100000, '--message-burst', 100000];

/**
 * Sets up the usual cast: `a` and `b` in `room`, `outsider` connected and alone in `elsewhere`.
 * `a` sends the faulty event.
 */
async function cast(env) {
  const room = roomId();
  const elsewhere = roomId();
  const [a, b, outsider] = await env.connectMany(3);
  await a.join(room);
  await b.join(room);
  await outsider.join(elsewhere);
  return { room, elsewhere, a, b, outsider };
}

/** After a rejection: a is still connected and a member, b got nothing, nobody left. */
async function assertUnaffected(ctx) {
  const { room, a, b } = ctx;
  assert.ok(a.connected, 'the connection stays up');
  await barrier(room, a, [b]); // a can still send to the room, b still receives
  assert.deepEqual(msgsIn(b, room), [], 'nothing of the rejected event reached the other member');
  assert.deepEqual(b.events('chunk'), [], 'no chunk reached the other member');
  assert.deepEqual(b.events('presence'), [], 'no presence change was broadcast');
  assert.deepEqual(a.events('$disconnect'), []);
}

/** Runs one data-driven rejection case: `payload(ctx)` sent as `event` must be acked with `code`. */
function rejects(env, { name, event, payload, code }) {
  it(`${event} ${name} → ${code}`, async () => {
    const ctx = await cast(env());
    const ack = await ctx.a.call(event, ...(payload === undefined ? [] : [payload(ctx)]));
    assertError(ack, code, `${event} ${name}`);
    await assertUnaffected(ctx);
  });
}

const ROOM_22 = 'A'.repeat(22);
const BAD_ROOMS = [
  ['an empty room id', ''],
  ['a short room id', 'abc'],
  ['a 21-char room id', 'A'.repeat(21)],
  ['a 23-char room id', 'A'.repeat(23)],
  ['a room id with "+"', `${'A'.repeat(21)}+`],
  ['a room id with "/"', `${'A'.repeat(21)}/`],
  ['a padded room id', `${'A'.repeat(20)}==`],
  ['a room id with a space', `${'A'.repeat(21)} `],
  ['a numeric room id', 1234567890],
  ['a null room id', null],
  ['an array room id', [ROOM_22]],
];

const BAD_REQUESTS = [
  // join
  ...BAD_ROOMS.map(([name, room]) => ({ event: 'join', name: `with ${name}`, payload: () => ({ room, profile: profile() }) })),
  { event: 'join', name: 'without room', payload: () => ({ profile: profile() }) },
  { event: 'join', name: 'without profile', payload: () => ({ room: roomId() }) },
  { event: 'join', name: 'with a numeric profile', payload: () => ({ room: roomId(), profile: 42 }) },
  { event: 'join', name: 'with a binary profile', payload: () => ({ room: roomId(), profile: bytes(16) }) },
  { event: 'join', name: 'with a string payload', payload: () => 'hello' },
  { event: 'join', name: 'with a null payload', payload: () => null },
  { event: 'join', name: 'without payload', payload: undefined },
  // msg
  ...BAD_ROOMS.map(([name, room]) => ({ event: 'msg', name: `with ${name}`, payload: () => ({ room, data: bytes(8) }) })),
  { event: 'msg', name: 'without room', payload: () => ({ data: bytes(8) }) },
  { event: 'msg', name: 'without data', payload: ({ room }) => ({ room }) },
  { event: 'msg', name: 'with a base64 string as data', payload: ({ room }) => ({ room, data: bytes(8).toString('base64url') }) },
  { event: 'msg', name: 'with a numeric data', payload: ({ room }) => ({ room, data: 12345 }) },
  { event: 'msg', name: 'with an array of numbers as data', payload: ({ room }) => ({ room, data: [1, 2, 3] }) },
  { event: 'msg', name: 'with a numeric `to`', payload: ({ room }) => ({ room, data: bytes(8), to: 42 }) },
  { event: 'msg', name: 'with a string payload', payload: () => 'hello' },
  { event: 'msg', name: 'with a null payload', payload: () => null },
  // chunk
  ...BAD_ROOMS.slice(0, 5).map(([name, room]) => ({ event: 'chunk', name: `with ${name}`, payload: () => ({ room, file: fileId(), seq: 0, data: bytes(8) }) })),
  { event: 'chunk', name: 'without file', payload: ({ room }) => ({ room, seq: 0, data: bytes(8) }) },
  { event: 'chunk', name: 'with a 15-char file id', payload: ({ room }) => ({ room, file: fileId().slice(1), seq: 0, data: bytes(8) }) },
  { event: 'chunk', name: 'with a 17-char file id', payload: ({ room }) => ({ room, file: `${fileId()}A`, seq: 0, data: bytes(8) }) },
  { event: 'chunk', name: 'with a file id with "+"', payload: ({ room }) => ({ room, file: `${'A'.repeat(15)}+`, seq: 0, data: bytes(8) }) },
  { event: 'chunk', name: 'with a numeric file id', payload: ({ room }) => ({ room, file: 1234567890123456, seq: 0, data: bytes(8) }) },
  { event: 'chunk', name: 'without seq', payload: ({ room }) => ({ room, file: fileId(), data: bytes(8) }) },
  { event: 'chunk', name: 'with a negative seq', payload: ({ room }) => ({ room, file: fileId(), seq: -1, data: bytes(8) }) },
  { event: 'chunk', name: 'with a fractional seq', payload: ({ room }) => ({ room, file: fileId(), seq: 1.5, data: bytes(8) }) },
  { event: 'chunk', name: 'with a string seq', payload: ({ room }) => ({ room, file: fileId(), seq: '0', data: bytes(8) }) },
  { event: 'chunk', name: 'without data', payload: ({ room }) => ({ room, file: fileId(), seq: 0 }) },
  { event: 'chunk', name: 'with a base64 string as data', payload: ({ room }) => ({ room, file: fileId(), seq: 0, data: bytes(8).toString('base64') }) },
  { event: 'chunk', name: 'with a string payload', payload: () => 'hello' },
  // leave
  ...BAD_ROOMS.slice(0, 5).map(([name, room]) => ({ event: 'leave', name: `with ${name}`, payload: () => ({ room }) })),
  { event: 'leave', name: 'without room', payload: () => ({}) },
  { event: 'leave', name: 'with a string payload', payload: () => 'hello' },
];

const NOT_MEMBER = [
  { event: 'msg', name: 'to a room not joined', payload: ({ elsewhere }) => ({ room: elsewhere, data: bytes(8) }) },
  { event: 'msg', name: 'to a fresh room', payload: () => ({ room: roomId(), data: bytes(8) }) },
  { event: 'chunk', name: 'to a room not joined', payload: ({ elsewhere }) => ({ room: elsewhere, file: fileId(), seq: 0, data: bytes(8) }) },
  { event: 'leave', name: 'of a room not joined', payload: ({ elsewhere }) => ({ room: elsewhere }) },
  { event: 'msg', name: '`to` a connected non-member', payload: ({ room, outsider }) => ({ room, data: bytes(8), to: outsider.id }) },
  { event: 'msg', name: '`to` an unknown member id', payload: ({ room }) => ({ room, data: bytes(8), to: randomBytes(15).toString('base64url') }) },
];

describe('bad_request and not_member', { timeout: 120_000 }, () => {
  let env;
  before(async () => { env = await Env.start(GENEROUS_RATES); });
  afterEach(() => env.closePeers());
  after(() => env.stop());

  for (const c of BAD_REQUESTS) rejects(() => env, { ...c, code: 'bad_request' });
  for (const c of NOT_MEMBER) rejects(() => env, { ...c, code: 'not_member' });

  it('msg `to` a non-member reaches nobody', async () => {
    const ctx = await cast(env);
    const { room, elsewhere, a, outsider } = ctx;
    await a.join(elsewhere);
    assertError(await a.call('msg', { room, data: bytes(8), to: outsider.id }), 'not_member');
    await assertUnaffected(ctx);
    await barrier(elsewhere, a, [outsider]);
    assert.deepEqual(outsider.events('msg').filter((m) => m.room === room), []);
  });

  it('a member that left gets not_member for msg, chunk and leave of that room', async () => {
    const ctx = await cast(env);
    const { room, a, b } = ctx;
    await b.leave(room);
    assertError(await b.call('msg', { room, data: bytes(8) }), 'not_member', 'msg after leave');
    assertError(await b.call('chunk', { room, file: fileId(), seq: 0, data: bytes(8) }), 'not_member', 'chunk after leave');
    assertError(await b.call('leave', { room }), 'not_member', 'leave after leave');
    assert.ok(b.connected);
    await a.waitFor('presence', (p) => p.kind === 'leave' && p.member === b.id);
    assert.deepEqual(msgsIn(a, room), []);
  });
});

// Small limits so the boundaries are cheap to probe.
const SMALL = { msg: 1024, chunk: 2048, chunks: 8, profile: 64 };

describe('too_large (small configured limits)', { timeout: 60_000 }, () => {
  let env;
  before(async () => {
    env = await Env.start([
      ...GENEROUS_RATES,
      '--max-message-bytes', SMALL.msg,
      '--max-chunk-bytes', SMALL.chunk,
      '--max-file-chunks', SMALL.chunks,
      '--max-profile-bytes', SMALL.profile,
    ]);
  });
  afterEach(() => env.closePeers());
  after(() => env.stop());

  it('join ack limits reflect the configuration', async () => {
    const [a] = await env.connectMany(1);
    const { limits } = await a.join(roomId());
    assert.deepEqual(
      { ...limits },
      {
        ...limits,
        max_message_bytes: SMALL.msg,
        max_chunk_bytes: SMALL.chunk,
        max_file_chunks: SMALL.chunks,
        max_file_bytes: SMALL.chunk * SMALL.chunks,
        max_members_per_room: 1000,
      },
    );
  });

  const TOO_LARGE = [
    { event: 'msg', name: `with ${SMALL.msg + 1} bytes of data`, payload: ({ room }) => ({ room, data: bytes(SMALL.msg + 1) }) },
    { event: 'msg', name: 'with 10× the limit', payload: ({ room }) => ({ room, data: bytes(SMALL.msg * 10) }) },
    { event: 'msg', name: `direct with ${SMALL.msg + 1} bytes of data`, payload: ({ room, b }) => ({ room, data: bytes(SMALL.msg + 1), to: b.id }) },
    { event: 'chunk', name: `with ${SMALL.chunk + 1} bytes of data`, payload: ({ room }) => ({ room, file: fileId(), seq: 0, data: bytes(SMALL.chunk + 1) }) },
    { event: 'chunk', name: `with seq = max-file-chunks (${SMALL.chunks})`, payload: ({ room }) => ({ room, file: fileId(), seq: SMALL.chunks, data: bytes(8) }) },
    { event: 'chunk', name: 'with seq far beyond max-file-chunks', payload: ({ room }) => ({ room, file: fileId(), seq: 1_000_000, data: bytes(8) }) },
    { event: 'join', name: `with a ${SMALL.profile + 1}-char profile`, payload: () => ({ room: roomId(), profile: 'A'.repeat(SMALL.profile + 1) }) },
  ];
  for (const c of TOO_LARGE) rejects(() => env, { ...c, code: 'too_large' });

  it('exactly at the limits everything is accepted and relayed intact', async () => {
    const ctx = await cast(env);
    const { room, a, b } = ctx;
    const data = bytes(SMALL.msg);
    await a.send(room, data);
    const m = await b.waitFor('msg', (e) => e.room === room);
    assert.ok(toBuf(m.data).equals(data), 'a max-size message arrives intact');

    const file = fileId();
    const chunk = bytes(SMALL.chunk);
    for (const seq of [0, SMALL.chunks - 1]) {
      assert.equal((await a.call('chunk', { room, file, seq, data: chunk })).ok, true, `chunk seq ${seq}`);
    }
    const got = await b.waitCount('chunk', 2);
    assert.deepEqual(got.map((c) => c.seq), [0, SMALL.chunks - 1]);
    assert.ok(got.every((c) => isBinary(c.data) && toBuf(c.data).equals(chunk)));

    const prof = 'B'.repeat(SMALL.profile);
    const [c] = await env.connectMany(1);
    await c.join(room, prof);
    const p = await b.waitFor('presence', (e) => e.member === c.id);
    assert.equal(p.profile, prof, 'a max-size profile is relayed verbatim');
  });
});

describe('default size limits', { timeout: 60_000 }, () => {
  let env;
  before(async () => { env = await Env.start(); });
  afterEach(() => env.closePeers());
  after(() => env.stop());

  const cases = [
    { name: 'msg', max: 65536, send: (ctx, data) => ctx.a.call('msg', { room: ctx.room, data }), got: 'msg' },
    { name: 'chunk', max: 1048576, send: (ctx, data) => ctx.a.call('chunk', { room: ctx.room, file: fileId(), seq: 0, data }), got: 'chunk' },
    {
      name: 'profile',
      max: 4096,
      send: async (ctx, data) => {
        const [c] = await env.connectMany(1);
        return c.call('join', { room: ctx.room, profile: 'P'.repeat(data.length) });
      },
      got: 'presence',
    },
  ];
  for (const { name, max, send, got } of cases) {
    it(`${name}: ${max} accepted and relayed, ${max + 1} → too_large`, async () => {
      const ctx = await cast(env);
      const data = bytes(max);
      assert.equal((await send(ctx, data)).ok, true, `${name} of exactly ${max}`);
      const e = await ctx.b.waitFor(got, () => true, { ms: 10_000 });
      if (got !== 'presence') assert.ok(toBuf(e.data).equals(data), `${name} of ${max} bytes arrives intact`);
      else assert.equal(e.profile.length, max);
      assertError(await send(ctx, bytes(max + 1)), 'too_large', `${name} of ${max + 1}`);
      assert.ok(ctx.a.connected);
      await barrier(ctx.room, ctx.a, [ctx.b]);
      const relayed = got === 'msg' ? msgsIn(ctx.b, ctx.room) : ctx.b.events(got);
      assert.equal(relayed.length, 1, 'the oversized one was not relayed');
    });
  }
});
