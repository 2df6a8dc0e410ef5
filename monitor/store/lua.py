"""The Lua scripts of the Redis store, and the argument layout the write script expects.

One ``ADD_EVENTS`` call writes one batch atomically. Every key it touches is passed in
KEYS and carries the deployment's hash tag (see ``keys.py``), so it runs unchanged on a
Redis Cluster shard. Because the script checks each event id with SET NX before counting
it, running it again with the same batch (a retry after a lost reply, a second collector,
a replayed frame) changes nothing: that is what makes the totals exact.
"""

from __future__ import annotations

# KEYS: the dedupe key of each of the n events, in payload order; then per target bucket t
#       (a minute or an hour): its cells hash, largest hash and top zset.
# ARGV: n, dedupe_ms, retention_ms, keep, number of targets, number of groups, payload.
#       The payload is a run of groups, each a header
#           "<mask> <minute target> <hour target> <count> <len> <field>"
#       followed by <count> events, largest first, each "<len> <record>", where the record
#       is the event as a JSON array that starts with usd and qty (see ``records.py``).
#       Every event goes in one string: one argument per event would cost more in
#       redis-py's pure-Python command packing than everything else on the client.
# Returns the number of events that were new.
ADD_EVENTS = r"""
local n = tonumber(ARGV[1])
local dedupe_ms = ARGV[2]
local retention_ms = ARGV[3]
local keep = tonumber(ARGV[4])
local ntargets = tonumber(ARGV[5])
local ngroups = tonumber(ARGV[6])
local payload = ARGV[7]
local find, sub, match, format = string.find, string.sub, string.match, string.format

-- Per target: its cells (field -> {usd, count, qty, max, mask, record start, record end})
-- in first-seen order, and its candidates for the top `keep` as parallel arrays of usd
-- and record positions in the payload (strings are cut only for the winners).
local cells, order, cand_usd, cand_at, floor = {}, {}, {}, {}, {}
for t = 1, ntargets do
  cells[t] = {}; order[t] = {}; cand_usd[t] = {}; cand_at[t] = {}
  -- a candidate must reach the target's current keep-th largest, once it has that many
  local kth = redis.call('ZRANGE', KEYS[n + 3 * t], -keep, -keep, 'WITHSCORES')
  floor[t] = kth[2] and tonumber(kth[2]) or -math.huge
end

local function merge(t, field, usd, count, qty, max, mask, rs, re)
  local c = cells[t][field]
  if c == nil then
    cells[t][field] = {usd, count, qty, max, mask, rs, re}
    local o = order[t]
    o[#o + 1] = field
  else
    c[1] = c[1] + usd
    c[2] = c[2] + count
    c[3] = c[3] + qty
    c[5] = bit.bor(c[5], mask)
    if max > c[4] then c[4] = max; c[6] = rs; c[7] = re end
  end
end

local new = 0
local pos = 1
local e = 0
local ends = {}  -- record start -> record end
for g = 1, ngroups do
  local _, last, mask, tm, th, c, flen = find(payload, '^(%d+) (%d+) (%d+) (%d+) (%d+) ', pos)
  mask = tonumber(mask); tm = tonumber(tm); th = tonumber(th); flen = tonumber(flen)
  local field = sub(payload, last + 1, last + flen)
  pos = last + flen + 1
  local usd, qty, count, max, rs, re = 0, 0, 0, 0, 0, 0
  for i = 1, tonumber(c) do
    local _, stop, rlen = find(payload, '^(%d+) ', pos)
    local start = stop + 1
    pos = start + tonumber(rlen)
    e = e + 1
    if redis.call('SET', KEYS[e], '1', 'NX', 'PX', dedupe_ms) then
      local us, qs = match(payload, '^%[([^,]+),([^,]+),', start)
      local u = tonumber(us)
      usd = usd + u
      qty = qty + tonumber(qs)
      count = count + 1
      ends[start] = pos - 1
      -- a group's events come largest first: the first new one is its largest, and
      -- only its first `keep` new ones can make any top `keep`
      if count == 1 then max = u; rs = start; re = pos - 1 end
      if count <= keep then
        if u >= floor[tm] then
          local k = #cand_usd[tm] + 1
          cand_usd[tm][k] = u
          cand_at[tm][k] = start
        end
        if u >= floor[th] then
          local k = #cand_usd[th] + 1
          cand_usd[th][k] = u
          cand_at[th][k] = start
        end
      end
    end
  end
  if count > 0 then
    new = new + count
    merge(tm, field, usd, count, qty, max, mask, rs, re)
    merge(th, field, usd, count, qty, max, mask, rs, re)
  end
end

-- Record starts of the `keep` largest candidates of target t.
local function winners(t)
  local us, at = cand_usd[t], cand_at[t]
  if #us <= keep then return at end
  -- sorting bare numbers: a Lua comparator call per comparison would dominate
  local sorted = {}
  for i = 1, #us do sorted[i] = us[i] end
  table.sort(sorted)
  local threshold = sorted[#sorted - keep + 1]
  local ties = keep
  for i = #sorted - keep + 1, #sorted do
    if sorted[i] > threshold then ties = ties - 1 end
  end
  local out = {}
  for i = 1, #us do
    if us[i] > threshold then
      out[#out + 1] = at[i]
    elseif us[i] == threshold and ties > 0 then
      out[#out + 1] = at[i]
      ties = ties - 1
    end
  end
  return out
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

for t = 1, ntargets do
  local fields = order[t]
  if #fields > 0 then
    local hkey, xkey, zkey = KEYS[n + 3 * t - 2], KEYS[n + 3 * t - 1], KEYS[n + 3 * t]
    local old = call_sliced('HMGET', hkey, fields, 500)
    local hset, xset = {}, {}
    for i = 1, #fields do
      local f = fields[i]
      local c = cells[t][f]
      local usd, count, qty, max, mask = c[1], c[2], c[3], c[4], c[5]
      local better = true
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
        xset[#xset + 1] = sub(payload, c[6], c[7])
      end
    end
    call_sliced('HSET', hkey, hset, 1000)
    redis.call('PEXPIRE', hkey, retention_ms)
    if #xset > 0 then call_sliced('HSET', xkey, xset, 1000) end
    redis.call('PEXPIRE', xkey, retention_ms)
    local z = {}
    for _, rs in ipairs(winners(t)) do
      -- the score as the client wrote it: a Lua number would print only 14 digits
      z[#z + 1] = match(payload, '^%[([^,]+),', rs)
      z[#z + 1] = sub(payload, rs, ends[rs])
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
