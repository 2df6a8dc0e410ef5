"""The Lua scripts of the Redis store, and the argument layout the write script expects.

One ``ADD_EVENTS`` call writes one batch atomically. Every key it touches is passed in
KEYS and carries the deployment's hash tag (see ``keys.py``), so it runs unchanged on a
Redis Cluster shard. The client sums each cell of the batch; the script adds the ids of
each minute to that minute's id set (one SMISMEMBER and one SADD per minute, not a key per
event) and applies a cell's sums only for ids the set did not hold, summing one by one
only in a cell where some were counted before. Running it again with the same batch (a
retry after a lost reply, a second collector, a replayed frame, a batch re-sent after
Redis restarted from its AOF) changes nothing: that is what makes the totals exact.
"""

from __future__ import annotations

# KEYS: per target bucket t = 1..T (a minute or an hour): its cells hash, largest hash and
#       top zset (KEYS[3t-2], KEYS[3t-1], KEYS[3t]); then per id set s = 1..S (one per
#       minute in the batch): the set of the event ids counted in that minute (KEYS[3T+s]).
# ARGV: dedupe_ms, retention_ms, keep, T, S, groups, records, tops, then per id set s:
#       its ids joined by "\n" (ARGV[6+3s]), and the USD value and the quantity of each of
#       those events as little-endian doubles (ARGV[7+3s], ARGV[8+3s]).
#   groups: per (minute, venue, completeness, coin, side) cell of the batch, the header
#       "<mask> <tm> <th> <s> <first> <count> <rec> <usd> <qty> <max> <flen> <field>"
#       whose events are ids first .. first+count-1 of set s, summed by the client
#       (usd, qty, max) and whose largest event is record rec.
#   records: the events that may be kept whole (each cell's largest, each target's
#       `keep` largest), each "<s> <i> <len> <record>", event i of set s; the record is
#       the event as a JSON array that starts with usd and qty (see ``records.py``).
#   tops: per target, "<k> r1 .. rk ": the records that may enter its top zset.
# Ids, sums and values travel as a few strings: one argument per event would cost more in
# redis-py's pure-Python command packing than everything else on the client.
# Returns the number of events that were new.
ADD_EVENTS = r"""
local dedupe_ms, retention_ms = ARGV[1], ARGV[2]
local keep = tonumber(ARGV[3])
local ntargets, nsets = tonumber(ARGV[4]), tonumber(ARGV[5])
local groups, records, tops = ARGV[6], ARGV[7], ARGV[8]
local find, sub, match, gmatch, format = string.find, string.sub, string.match, string.gmatch,
  string.format
local unpack_double = struct.unpack
local SLICE = 1000  -- Redis's Lua unpacks only so many values at once

-- Which ids were counted before this call: seen[s][i] for the i-th id of set s. A set
-- that does not exist yet needs no lookup; a batch never repeats an id (the client
-- drops repeats), so asking before adding is exact.
local seen = {}
for s = 1, nsets do
  local key = KEYS[3 * ntargets + s]
  local ids, n = {}, 0
  for id in gmatch(ARGV[6 + 3 * s], '[^\n]+') do n = n + 1; ids[n] = id end
  local flags = {}
  local existed = redis.call('EXISTS', key) == 1
  for i = 1, n, SLICE do
    local j = math.min(i + SLICE - 1, n)
    if existed then
      local r = redis.call('SMISMEMBER', key, unpack(ids, i, j))
      for k = 1, #r do
        if r[k] == 1 then flags[i + k - 1] = true end
      end
    end
    redis.call('SADD', key, unpack(ids, i, j))
  end
  redis.call('PEXPIRE', key, dedupe_ms)
  seen[s] = flags
end

-- The records: where each sits in the payload, and whether its event is new.
local rec_new, rec_at, rec_end = {}, {}, {}
local pos, r = 1, 0
while pos <= #records do
  local _, last, s, i, len = find(records, '^(%d+) (%d+) (%d+) ', pos)
  r = r + 1
  rec_new[r] = not seen[tonumber(s)][tonumber(i)]
  rec_at[r] = last + 1
  pos = last + 1 + tonumber(len)
  rec_end[r] = pos - 1
end

-- Per target: its cells (field -> {usd, count, qty, max, mask, record}) in first-seen order.
local cells, order = {}, {}
for t = 1, ntargets do cells[t] = {}; order[t] = {} end

local function merge(t, field, usd, count, qty, max, mask, rec)
  local c = cells[t][field]
  if c == nil then
    cells[t][field] = {usd, count, qty, max, mask, rec}
    local o = order[t]
    o[#o + 1] = field
  else
    c[1] = c[1] + usd
    c[2] = c[2] + count
    c[3] = c[3] + qty
    c[5] = bit.bor(c[5], mask)
    if max > c[4] then c[4] = max; c[6] = rec end
  end
end

local new = 0
pos = 1
local header = '^(%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+) (%S+) (%S+) (%S+) (%d+) '
while pos <= #groups do
  local _, last, mask, tm, th, s, first, count, rec, usd, qty, max, flen =
    find(groups, header, pos)
  flen = tonumber(flen)
  local field = sub(groups, last + 1, last + flen)
  pos = last + flen + 1
  s = tonumber(s); first = tonumber(first); count = tonumber(count); rec = tonumber(rec)
  local flags = seen[s]
  local fresh = count
  if next(flags) ~= nil then
    fresh = 0
    for i = first, first + count - 1 do
      if not flags[i] then fresh = fresh + 1 end
    end
  end
  if fresh == count then
    usd = tonumber(usd); qty = tonumber(qty); max = tonumber(max)
  elseif fresh > 0 then
    -- Some of the cell's events were counted before: sum the others one by one.
    local usds, qtys = ARGV[7 + 3 * s], ARGV[8 + 3 * s]
    usd, qty, max = 0, 0, 0
    for i = first, first + count - 1 do
      if not flags[i] then
        local u = unpack_double('<d', usds, 8 * i - 7)
        usd = usd + u
        qty = qty + unpack_double('<d', qtys, 8 * i - 7)
        if u > max then max = u end
      end
    end
    -- A largest event counted before is in the stored cell already, whose max is then
    -- at least as large as any new one: no record to replace.
    if not rec_new[rec] then rec = nil end
  end
  if fresh > 0 then
    new = new + fresh
    mask = tonumber(mask)
    merge(tonumber(tm), field, usd, fresh, qty, max, mask, rec)
    merge(tonumber(th), field, usd, fresh, qty, max, mask, rec)
  end
end

-- Redis's Lua can unpack only so many values at once; long argument lists go in slices.
local function call_sliced(cmd, key, list, step)
  local out = {}
  for i = 1, #list, step do
    local r = redis.call(cmd, key, unpack(list, i, math.min(i + step - 1, #list)))
    if type(r) == 'table' then
      for j = 1, #r do out[#out + 1] = r[j] end
    end
  end
  return out
end

local top_list = {}
for x in gmatch(tops, '%d+') do top_list[#top_list + 1] = tonumber(x) end
local at = 1
for t = 1, ntargets do
  local k = top_list[at]
  local first_top = at + 1
  at = at + k + 1
  local fields = order[t]
  if #fields > 0 then
    local hkey, xkey, zkey = KEYS[3 * t - 2], KEYS[3 * t - 1], KEYS[3 * t]
    local old = call_sliced('HMGET', hkey, fields, 500)
    local hset, xset = {}, {}
    for i = 1, #fields do
      local f = fields[i]
      local c = cells[t][f]
      local usd, count, qty, max, mask, rec = c[1], c[2], c[3], c[4], c[5], c[6]
      local better = rec ~= nil
      if old[i] then
        local u0, n0, q0, x0, m0 = match(old[i], '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
        usd = usd + tonumber(u0)
        count = count + tonumber(n0)
        qty = qty + tonumber(q0)
        mask = bit.bor(mask, tonumber(m0))
        x0 = tonumber(x0)
        if max <= x0 then max = x0; better = false end
      end
      hset[#hset + 1] = f
      -- %.17g round-trips a double exactly
      hset[#hset + 1] = format('%.17g %d %.17g %.17g %d', usd, count, qty, max, mask)
      if better then
        xset[#xset + 1] = f
        xset[#xset + 1] = sub(records, rec_at[rec], rec_end[rec])
      end
    end
    call_sliced('HSET', hkey, hset, 1000)
    redis.call('PEXPIRE', hkey, retention_ms)
    if #xset > 0 then call_sliced('HSET', xkey, xset, 1000) end
    redis.call('PEXPIRE', xkey, retention_ms)
    -- The client sent the target's `keep` largest events of the batch. One counted
    -- before is in the zset already, or `keep` larger ones are: so the new ones among
    -- them are all that can enter it.
    -- Once the zset is full, a candidate below its `keep`-th score cannot enter it.
    local kth = redis.call('ZRANGE', zkey, -keep, -keep, 'WITHSCORES')
    local floor = kth[2] and tonumber(kth[2]) or -math.huge
    local z = {}
    for j = first_top, first_top + k - 1 do
      local rr = top_list[j]
      if rec_new[rr] then
        -- the score as the client wrote it: a Lua number would print only 14 digits
        local score = match(records, '^%[([^,]+),', rec_at[rr])
        if tonumber(score) >= floor then
          z[#z + 1] = score
          z[#z + 1] = sub(records, rec_at[rr], rec_end[rr])
        end
      end
    end
    if #z > 0 then
      call_sliced('ZADD', zkey, z, 1000)
      redis.call('ZREMRANGEBYRANK', zkey, 0, -keep - 1)
      redis.call('PEXPIRE', zkey, retention_ms)
    end
  end
end
return new
"""

# KEYS: cascades hash, order zset, sequence counter. ARGV: id, record JSON, how many to keep.
# A new id takes the next sequence number; a known id is replaced in place (HSET returns 0),
# so a retried call cannot reorder or duplicate anything.
RECORD_CASCADE = r"""
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[2], seq, ARGV[1])
  local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
  if excess > 0 then
    local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
    for i = 1, #old do redis.call('HDEL', KEYS[1], old[i]) end
  end
end
return 0
"""

# KEYS: hashes. Returns, per hash, its fields and values joined by newlines ("" if none).
# One string per hash instead of two per cell: redis-py parses replies in pure Python at a
# few microseconds per element, which made a 24 h read of full buckets take ~10x longer.
# Fields and values never hold a newline (the write path refuses such fields).
READ_HASHES = r"""
local out = {}
for i = 1, #KEYS do
  out[i] = table.concat(redis.call('HGETALL', KEYS[i]), '\n')
end
return out
"""
