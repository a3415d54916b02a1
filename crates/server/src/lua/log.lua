-- A room's cluster-wide log (crates/server/src/redis.rs, docs/reliability.md): every
-- room event gets the room's next position here, atomically with the membership change
-- it carries, and is kept for the replay window as the bytes that were relayed.
--
-- KEYS (all of one room, with its hash tag: one slot of a Redis Cluster): 1 room members
-- (hash member -> {node, at, profile}), 2 log state (hash: epoch, pos, ts, bytes,
-- evicted), 3 log (stream, entry id "<pos>-1", fields t, s, e), 4 resume tokens (hash
-- member -> token), 5 absences (hash member -> since), 6 the resend key of an `event`.
-- The nodes' member sets live in other slots: the caller keeps them (redis.rs).
-- ARGV: 1 op, 2 event bytes, 3 window ms, 4 window bytes, 5 epoch candidate,
-- 6 position hint, 7 room id, 8... per op (see each branch).
-- Returns {status, epoch, pos, ts, ...}: status "ok", "dup", "full" or "refused".
local room, state, log, tokens, away, dup = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local op, data, window, max_bytes = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local epoch_candidate, hint, room_id = ARGV[5], tonumber(ARGV[6]), ARGV[7]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Appends `data` at the next position, drops what left the window, returns epoch, pos, ts.
local function place()
  local known = redis.call('HMGET', state, 'epoch', 'pos', 'ts', 'bytes', 'evicted')
  local epoch = known[1] or epoch_candidate
  local last = tonumber(known[2] or '0')
  if hint > last then last = hint end -- a store that lost the room carries on from a node's place
  local pos = last + 1
  local now = now_ms()
  local ts = tonumber(known[3] or '0')
  if now > ts then ts = now end
  local size = string.len(data) + 160
  local bytes = tonumber(known[4] or '0') + size
  local evicted = tonumber(known[5] or '0')
  redis.call('XADD', log, pos .. '-1', 't', ts, 's', size, 'e', data)
  while true do
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    if not first then break end
    local fields = first[2]
    if tonumber(fields[2]) >= now - window and bytes <= max_bytes then break end
    redis.call('XDEL', log, first[1])
    bytes = bytes - tonumber(fields[4])
    evicted = tonumber(string.match(first[1], '^(%d+)'))
  end
  redis.call('HSET', state, 'epoch', epoch, 'pos', pos, 'ts', ts, 'bytes', bytes, 'evicted', evicted)
  return epoch, pos, ts
end

-- A room that gets a member again keeps its log (it was to expire with its last member).
local function keep()
  redis.call('PERSIST', state)
  redis.call('PERSIST', log)
end

-- After a leave: a room with nobody left keeps its log for the window, then forgets it.
local function forget_if_empty()
  if redis.call('HLEN', room) == 0 then
    redis.call('PEXPIRE', state, window)
    redis.call('PEXPIRE', log, window)
    redis.call('DEL', tokens, away)
  end
end

if op == 'event' then
  -- 8 '1' if the event has a resend key (KEYS[6]), '' if not, 9 its lifetime (ms)
  if ARGV[8] ~= '' then
    local seen = redis.call('GET', dup)
    if seen then
      local p, t = string.match(seen, '^(%d+) (%d+)$')
      return {'dup', redis.call('HGET', state, 'epoch') or epoch_candidate, p, t}
    end
  end
  local epoch, pos, ts = place()
  if ARGV[8] ~= '' then
    redis.call('SET', dup, pos .. ' ' .. ts, 'PX', tonumber(ARGV[9]))
  end
  return {'ok', epoch, pos, ts}
elseif op == 'admit' then
  -- 8 member, 9 stored member JSON, 10 room maximum, 11 resume token
  local member = ARGV[8]
  if redis.call('HEXISTS', room, member) == 0 and redis.call('HLEN', room) >= tonumber(ARGV[10]) then
    return {'full'}
  end
  redis.call('HSET', room, member, ARGV[9])
  redis.call('HSET', tokens, member, ARGV[11])
  redis.call('HDEL', away, member)
  local epoch, pos, ts = place()
  keep()
  local reply = {'ok', epoch, pos, ts}
  for _, v in ipairs(redis.call('HGETALL', room)) do
    reply[#reply + 1] = v
  end
  return reply
elseif op == 'away' then
  -- 8 member, 9 the node that must hold it
  local stored = redis.call('HGET', room, ARGV[8])
  if not stored or cjson.decode(stored).node ~= ARGV[9] then
    return {'refused'}
  end
  local epoch, pos, ts = place()
  redis.call('HSET', away, ARGV[8], ts)
  return {'ok', epoch, pos, ts}
elseif op == 'remove' then
  -- 8 member, 9 the node that must hold it, 10 the absence that must still go on ('' any)
  local member = ARGV[8]
  local stored = redis.call('HGET', room, member)
  if not stored or cjson.decode(stored).node ~= ARGV[9] then
    return {'refused'}
  end
  if ARGV[10] ~= '' and redis.call('HGET', away, member) ~= ARGV[10] then
    return {'refused'}
  end
  redis.call('HDEL', room, member)
  redis.call('HDEL', tokens, member)
  redis.call('HDEL', away, member)
  local epoch, pos, ts = place()
  forget_if_empty()
  return {'ok', epoch, pos, ts}
elseif op == 'resume' then
  -- 8 member, 9 token presented, 10 new token, 11 this node
  local member = ARGV[8]
  local stored = redis.call('HGET', room, member)
  local token = redis.call('HGET', tokens, member)
  if not stored or not token or token ~= ARGV[9] then
    return {'refused'}
  end
  local info = cjson.decode(stored)
  info.node = ARGV[11]
  redis.call('HSET', room, member, cjson.encode(info))
  redis.call('HSET', tokens, member, ARGV[10])
  redis.call('HDEL', away, member)
  local epoch, pos, ts = place()
  keep()
  local reply = {'ok', epoch, pos, ts, stored}
  for _, v in ipairs(redis.call('HGETALL', room)) do
    reply[#reply + 1] = v
  end
  return reply
end
return redis.error_reply('unknown log operation')
