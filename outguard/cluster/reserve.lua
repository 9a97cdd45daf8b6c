-- outguard: check every cap that applies to one call and reserve it, atomically.
--
-- KEYS: none (single Redis / Valkey primary; every key starts with ARGV[1], the prefix).
-- ARGV: prefix, op, then per op:
--   reserve  call_id now ttl_s dedup_s day tenant account caller_id destination n_caps
--            then n_caps x (rule_id scope key window_s limit enforce)
--   release  call_id now
--   refresh  now ttl_s then (call_id tenant account)...     (-1: not rebuilt yet)
--   record   call_id now dedup_s day tenant account caller_id destination   (replay)
--   take     call_id now ttl_s dedup_s day tenant account caller_id destination
--            (a call that went out unscreened: counted and slotted whatever the caps say;
--            -1: not rebuilt yet)
--   void     call_id at day tenant account caller_id destination
--            (a counted call that never went out after all: its counts taken back)
--   count    now scope key window_s day
--
-- What a reservation is: the call's rate buckets (account, caller ID, tenant at 1 s /
-- 1 min / 1 day resolution, the destination per minute and hour), its callee in the account's
-- set for the day, and one live-call slot per concurrency key (a sorted set scored by
-- the slot's expiry). The call record (P.."call:"..id) makes every op idempotent per
-- call id: a second reserve returns the first answer and counts nothing, a release
-- frees the slots once, a late reserve after the release reserves nothing. A call
-- counted by a replay (``record``: let through while Redis could not answer, or rebuilt
-- from the call log) holds no slot until its instance refreshes it as still up.
-- A reserve answers 'unready' while the epoch marker (P.."epoch") is missing: the
-- counters are complete only once it is set (``RedisCaps.mark_complete``, after a
-- rebuild from the call log).
-- Slots expire unless refreshed: the calls of an instance that died stop counting
-- after ttl_s (a reserve counts the slots whose expiry is later than now; a refresh
-- removes the expired ones of the keys it touches). Counts are cardinalities and sums
-- of increments: never negative.
--
-- Redis calls: a reserve with six caps makes ~40 (it made ~80 up to 9f97332): a bucket
-- hash's oldest bucket and expiry are touched only on the bucket's first call, an
-- expiry is pushed with one EXPIRE GT (NX only for a key without one), a callee set's
-- only when it gains a callee, and a destination without counts is one EXISTS. The keys,
-- fields and expiries are the same as before, so instances of both versions can share a
-- Redis during a rolling upgrade (tests/unit/cluster/test_script_upgrade.py).
-- What a reserve costs inside Redis is mostly Lua's, not the commands': every bucket
-- field asked for is a number made a string and every reply a Lua value. A hash with
-- fewer fields than half the buckets a window wants is read whole (``sum_ranges``), and
-- buckets that every window has left are swept (``count_in``): a reserve of six caps on
-- fresh keys took ~290 us of Redis's time before, ~150 us now (bench/RESULTS.md).

local P = ARGV[1]
local op = ARGV[2]
local RES = {{1, 120}, {60, 1500}, {3600, 26}, {86400, 8}}  -- hours: sums of minutes
local DEST_RES = {{60, 8 * 1440}, {3600, 192}}  -- minutes (1/min, 5/h caps), hours

-- A key lives at least ``seconds`` from now: its expiry is pushed later (GT; a key with
-- none is left alone by GT), or set when it has none (NX: a new key). One call when the
-- expiry moves, two otherwise.
local function expire_at_least(key, seconds)
  if redis.call('EXPIRE', key, seconds, 'GT') == 0 then
    redis.call('EXPIRE', key, seconds, 'NX')
  end
end

-- The sum of a bucket hash's buckets in the ranges {lo, hi} (inclusive, at most a few).
-- A hash holding fewer fields than half the buckets wanted is read whole (HGETALL: one
-- reply of only the buckets that exist) and filtered; a bigger one is read by the
-- buckets wanted (HMGET, in slices: Lua's unpack limit). A missing key is one HLEN.
local function sum_ranges(key, ranges)
  local wanted = 0
  for _, r in ipairs(ranges) do
    if r[2] >= r[1] then wanted = wanted + r[2] - r[1] + 1 end
  end
  if wanted == 0 then return 0 end
  local size = redis.call('HLEN', key)
  if size == 0 then return 0 end
  local total = 0
  if size * 2 < wanted then
    local all = redis.call('HGETALL', key)
    for k = 1, #all, 2 do
      local b = tonumber(all[k])
      for _, r in ipairs(ranges) do
        if b and b >= r[1] and b <= r[2] then
          total = total + tonumber(all[k + 1])
          break
        end
      end
    end
    return total
  end
  for _, r in ipairs(ranges) do
    local i = r[1]
    while i <= r[2] do
      local j = math.min(i + 999, r[2])
      local fields = {}
      for b = i, j do fields[#fields + 1] = b end
      for _, v in ipairs(redis.call('HMGET', key, unpack(fields))) do
        if v then total = total + tonumber(v) end
      end
      i = j + 1
    end
  end
  return total
end

local function bucket_sum(key, res, window, now)
  return sum_ranges(key, {{math.floor((now - window) / res), math.floor(now / res)}})
end

local function rate_key(scope, key, res) return P .. 'r:' .. scope .. ':' .. key .. ':' .. res end

-- Minute windows sum whole hours from an hourly hash kept beside the minute one: a day
-- is at most ~140 buckets read instead of 1,441, and the same minutes are counted.
local function minute_sum(mkey, hkey, window, now)
  local first = math.floor((now - window) / 60)
  local last = math.floor(now / 60)
  local h_first = math.ceil(first / 60)
  local h_last = math.floor((last + 1) / 60) - 1
  if h_last - h_first < 2 then
    return bucket_sum(mkey, 60, window, now)
  end
  return sum_ranges(mkey, {{first, h_first * 60 - 1}, {(h_last + 1) * 60, last}})
         + sum_ranges(hkey, {{h_first, h_last}})
end
local function dest_key(tenant, dest, res) return P .. 'd:' .. tenant .. ':' .. dest .. ':' .. res end
-- Before per-minute destination counts (outguard < the cn-callee-caps preset), a
-- destination's calls were one hourly hash without the resolution suffix. Calls counted
-- there before an upgrade (or by an instance not yet upgraded, in a rolling upgrade)
-- still count: every hour bucket that overlaps a window is added whole, so a cap errs
-- on the side of blocking, never of allowing. Nothing writes it any more; it expires
-- 192 hours after the last call an old instance counted in it.
local function legacy_dest_key(tenant, dest) return P .. 'd:' .. tenant .. ':' .. dest end
local function callee_key(account, day) return P .. 'u:' .. account .. ':' .. day end
local function conc_key(scope, key) return P .. 'c:' .. scope .. ':' .. key end

-- The slots still valid: scored by their expiry, later than now (``now_s``: the time as
-- the caller sent it). Expired slots (a dead instance's) are removed by ``refresh``;
-- a set nobody refreshes any more expires whole.
local function live_count(key, now_s)
  return redis.call('ZCOUNT', key, '(' .. now_s, '+inf')
end

local function count(scope, key, window, now, day, now_s)
  if scope == 'account' or scope == 'caller_id' or scope == 'tenant' then
    if window < 120 then return bucket_sum(rate_key(scope, key, 1), 1, window, now) end
    if window < 89940 then
      return minute_sum(rate_key(scope, key, 60), rate_key(scope, key, 3600), window, now)
    end
    return bucket_sum(rate_key(scope, key, 86400), 86400, window, now)
  elseif scope == 'destination' then
    -- key is "tenant\0destination"
    local sep = string.find(key, '\0', 1, true)
    local tenant, dest = string.sub(key, 1, sep - 1), string.sub(key, sep + 1)
    local mkey, hkey = dest_key(tenant, dest, 60), dest_key(tenant, dest, 3600)
    local legacy = legacy_dest_key(tenant, dest)
    -- most callees have no count yet (a new number on the list): one look, no reads
    if redis.call('EXISTS', mkey, hkey, legacy) == 0 then return 0 end
    return minute_sum(mkey, hkey, window, now) + bucket_sum(legacy, 3600, window, now)
  elseif scope == 'distinct_callees' then
    return redis.call('SCARD', callee_key(key, day))
  elseif scope == 'concurrent_account' then
    return live_count(conc_key('account', key), now_s)
  elseif scope == 'concurrent_tenant' then
    return live_count(conc_key('tenant', key), now_s)
  end
  return redis.error_reply('unknown cap scope ' .. scope)
end

-- One call into a bucket hash: its bucket counts one more. Only the first call of a
-- bucket (HINCRBY answers 1: counts only ever grow by one) moves anything else: the
-- bucket ``keep`` before it goes, and the key lives until this bucket has left every
-- window ((b + keep + 1) * res). Every later call of the bucket would set the same
-- expiry and delete the same field again, so it does nothing more.
local function count_in(key, res, keep, now)
  local b = math.floor(now / res)
  if redis.call('HINCRBY', key, b, 1) == 1 then
    local ttl = (b + keep + 1) * res - math.floor(now)
    if redis.call('EXPIRE', key, ttl, 'GT') == 0 then
      if redis.call('EXPIRE', key, ttl, 'NX') == 1 then return end  -- a new key: no old field
    end
    redis.call('HDEL', key, b - keep)
    -- A bucket without a call is never ``b - keep`` of a later call's first: idle
    -- seconds (minutes...) would stay behind as long as the key lives (~500 fields in
    -- an account's per-second hash after a day of 500 calls, every read scanning them).
    -- Once a hash holds ``slack`` fields more than its windows can read, every bucket
    -- older than ``keep`` goes: amortised, at least ``slack`` first calls apart.
    local slack = math.max(8, math.floor((keep + 1) / 4))
    if redis.call('HLEN', key) > keep + 1 + slack then
      local stale = {}
      for _, f in ipairs(redis.call('HKEYS', key)) do
        local n = tonumber(f)
        if n and n < b - keep then stale[#stale + 1] = f end
      end
      for i = 1, #stale, 1000 do
        redis.call('HDEL', key, unpack(stale, i, math.min(i + 999, #stale)))
      end
    end
  end
end

local function record(now, day, tenant, account, caller_id, destination)
  for _, party in ipairs({{'account', account}, {'caller_id', caller_id}, {'tenant', tenant}}) do
    if party[2] ~= '' then
      for _, r in ipairs(RES) do
        count_in(rate_key(party[1], party[2], r[1]), r[1], r[2], now)
      end
    end
  end
  for _, r in ipairs(DEST_RES) do
    count_in(dest_key(tenant, destination, r[1]), r[1], r[2], now)
  end
  -- the account's callees of the day: read only on that day, so the set outlives it when
  -- it lives two days from its first callee (and from each new one)
  local ckey = callee_key(account, day)
  if redis.call('SADD', ckey, destination) == 1 then expire_at_least(ckey, 2 * 86400) end
end

-- A call ``record`` counted at ``at`` is taken back: each bucket it went into loses one
-- (never below zero; a bucket already dropped is left alone). Its callee stays in the
-- account's set for the day: a set cannot tell whether another call reached it.
local function unrecord(at, tenant, account, caller_id, destination)
  for _, party in ipairs({{'account', account}, {'caller_id', caller_id}, {'tenant', tenant}}) do
    if party[2] ~= '' then
      for _, r in ipairs(RES) do
        local key = rate_key(party[1], party[2], r[1])
        local b = math.floor(at / r[1])
        if tonumber(redis.call('HGET', key, b) or 0) > 0 then
          redis.call('HINCRBY', key, b, -1)
        end
      end
    end
  end
  for _, r in ipairs(DEST_RES) do
    local dkey = dest_key(tenant, destination, r[1])
    local db = math.floor(at / r[1])
    if tonumber(redis.call('HGET', dkey, db) or 0) > 0 then
      redis.call('HINCRBY', dkey, db, -1)
    end
  end
end

-- The call is allowed and counted: it takes one live-call slot per concurrency key and
-- its call record says so (live, released once on its outcome).
local function take_slots(ckey, call_id, tenant, account, now, ttl, dedup, shadow)
  local slots = {}
  for _, party in ipairs({{'tenant', tenant}, {'account', account}}) do
    if party[2] ~= '' then
      local key = conc_key(party[1], party[2])
      redis.call('ZADD', key, now + ttl, call_id)
      expire_at_least(key, ttl + 60)
      slots[#slots + 1] = key
    end
  end
  redis.call('HSET', ckey, 'verdict', 'allow', 'rule', '', 'count', 0, 'limit', 0,
             'shadow', shadow, 'slots', table.concat(slots, '\n'), 'state', 'live')
  redis.call('EXPIRE', ckey, math.max(dedup, ttl))
end

if op == 'reserve' then
  local call_id, now, ttl, dedup = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local day, tenant, account, caller_id, destination = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
  local n_caps = tonumber(ARGV[12])
  if redis.call('EXISTS', P .. 'epoch') == 0 then
    -- emptied (restarted without persistence, flushed) and not rebuilt yet: the counts
    -- are incomplete, so nothing is decided on them (the caps' failure policy applies)
    return {'unready', '', 0, 0, ''}
  end
  local ckey = P .. 'call:' .. call_id
  local seen = redis.call('HMGET', ckey, 'verdict', 'rule', 'count', 'limit', 'shadow')
  if seen[1] then
    return {'dup-' .. seen[1], seen[2] or '', tonumber(seen[3] or 0), tonumber(seen[4] or 0), seen[5] or ''}
  end
  local shadow = {}
  local i = 13
  for _ = 1, n_caps do
    local rule, scope, key = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local window, limit, enforce = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), ARGV[i + 5]
    i = i + 6
    local n = count(scope, key, window, now, day, ARGV[4])
    if n >= limit then
      if enforce == '1' then
        redis.call('HSET', ckey, 'verdict', 'block', 'rule', rule, 'count', n, 'limit', limit,
                   'shadow', table.concat(shadow, ','))
        redis.call('EXPIRE', ckey, dedup)
        return {'block', rule, n, limit, table.concat(shadow, ',')}
      end
      shadow[#shadow + 1] = rule
    end
  end
  record(now, day, tenant, account, caller_id, destination)
  take_slots(ckey, call_id, tenant, account, now, ttl, dedup, table.concat(shadow, ','))
  return {'allow', '', 0, 0, table.concat(shadow, ',')}

elseif op == 'release' then
  local call_id = ARGV[3]
  local ckey = P .. 'call:' .. call_id
  local seen = redis.call('HMGET', ckey, 'state', 'slots')
  local state = seen[1]
  if state ~= 'live' then
    if not state then
      -- never reserved (or forgotten): remember the release so a late reserve is a no-op
      redis.call('HSET', ckey, 'verdict', 'released', 'state', 'released')
      redis.call('EXPIRE', ckey, 3600)
    elseif state == 'replayed' then
      -- counted by a replay, no slot: a later refresh must not take one for it
      redis.call('HSET', ckey, 'state', 'released')
    end
    return 0
  end
  for key in string.gmatch(seen[2] or '', '[^\n]+') do
    redis.call('ZREM', key, call_id)
  end
  redis.call('HSET', ckey, 'state', 'released')
  return 1

elseif op == 'refresh' then
  local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
  if redis.call('EXISTS', P .. 'epoch') == 0 then
    -- emptied and not rebuilt yet: a call record made now would make the rebuild skip
    -- the call's count (``record`` is idempotent per call id); the caller tries again
    return -1
  end
  local alive = 0
  local swept = {}
  for i = 5, #ARGV, 3 do
    local call_id, tenant, account = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local ckey = P .. 'call:' .. call_id
    local state = redis.call('HGET', ckey, 'state')
    if not state or state == 'replayed' then
      -- Redis forgot the call (emptied) while it is up, or knows it only from a replay
      -- (let through while Redis could not answer, or rebuilt from the call log): its
      -- slots are taken (its rates came back with the replay)
      local slots = {}
      for _, party in ipairs({{'tenant', tenant}, {'account', account}}) do
        if party[2] ~= '' then slots[#slots + 1] = conc_key(party[1], party[2]) end
      end
      redis.call('HSET', ckey, 'verdict', 'allow', 'rule', '', 'count', 0, 'limit', 0,
                 'shadow', '', 'slots', table.concat(slots, '\n'), 'state', 'live')
      state = 'live'
    end
    if state == 'live' then
      local slots = redis.call('HGET', ckey, 'slots') or ''
      for key in string.gmatch(slots, '[^\n]+') do
        if not swept[key] then  -- the slots of calls nobody refreshed (a dead instance's)
          redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[3])
          swept[key] = true
        end
        -- GT, not XX: a slot that expired while its call is still up (an instance
        -- restarted, or Redis lagged) is taken again; a released call is never re-added
        redis.call('ZADD', key, 'GT', now + ttl, call_id)
        expire_at_least(key, ttl + 60)
      end
      expire_at_least(ckey, ttl)
      alive = alive + 1
    end
  end
  return alive

elseif op == 'record' then
  local call_id, now, dedup = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local ckey = P .. 'call:' .. call_id
  if redis.call('EXISTS', ckey) == 1 then return 0 end
  record(now, ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
  redis.call('HSET', ckey, 'verdict', 'allow', 'state', 'replayed')
  redis.call('EXPIRE', ckey, dedup)
  return 1

elseif op == 'take' then
  -- A call screening could not decide that went out all the same (fail-open): no cap
  -- can refuse it, but it counts like an allowed call and holds its slots until its
  -- outcome. Idempotent per call id: a call already counted (reserved, replayed, rebuilt
  -- from the call log) is not counted again; one released before its count arrived (a
  -- short call, the count sent late) is counted and takes no slot.
  local call_id, now, ttl, dedup = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  if redis.call('EXISTS', P .. 'epoch') == 0 then return -1 end
  local ckey = P .. 'call:' .. call_id
  local seen = redis.call('HMGET', ckey, 'verdict', 'state')
  if seen[1] == 'allow' then return 0 end
  record(now, ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
  if seen[2] == 'released' then
    redis.call('HSET', ckey, 'verdict', 'allow')
    redis.call('EXPIRE', ckey, dedup)
    return 1
  end
  take_slots(ckey, call_id, ARGV[8], ARGV[9], now, ttl, dedup, '')
  return 1

elseif op == 'void' then
  -- A counted call whose decision was never carried out and that did not go out after
  -- all (decided again and refused, or refused by the dialplan's failure branch): its
  -- counts are taken back and its slots freed, once (idempotent per call id); a call
  -- never counted here is left alone. Only calls that went out count.
  local call_id, at = ARGV[3], tonumber(ARGV[4])
  local ckey = P .. 'call:' .. call_id
  local seen = redis.call('HMGET', ckey, 'verdict', 'slots')
  if seen[1] ~= 'allow' then return 0 end
  unrecord(at, ARGV[6], ARGV[7], ARGV[8], ARGV[9])
  for key in string.gmatch(seen[2] or '', '[^\n]+') do
    redis.call('ZREM', key, call_id)
  end
  redis.call('HSET', ckey, 'verdict', 'void', 'state', 'released')
  return 1

elseif op == 'count' then
  return count(ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[3]), ARGV[7], ARGV[3])
end
return redis.error_reply('unknown op ' .. tostring(op))
