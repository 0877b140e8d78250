"""The Lua that makes each multi-step change to the router state in Redis one atomic step.

Registered once by `RedisState` and run by EVALSHA. Per-account scripts are
`PRELUDE` + body and share one calling convention: KEYS = hold, window, slots,
live index[, one more]; ARGV = account id, now (Unix seconds, the caller's
clock, as hold and lease times are), change channel[, more]. Hash values are
JSON arrays whose first element is the entry's expiry (null: none).
"""

# Prepended to every per-account script. KEYS: hold, window, slots, live[, other];
# ARGV: account, now (Unix seconds), channel[, ...].
PRELUDE = """
local now = tonumber(ARGV[2])

local function expire_at(key, seconds)
  redis.call('PEXPIREAT', key, string.format('%.0f', math.ceil(seconds * 1000)))
end

-- Drops the fields whose expiry (the value's first element) has passed; the key
-- then expires with its last dated field, or never while an undated one is left.
local function settle(key)
  local flat = redis.call('HGETALL', key)
  local latest, undated = 0, false
  for i = 1, #flat, 2 do
    local expiry = cjson.decode(flat[i + 1])[1]
    if expiry == cjson.null then
      undated = true
    elseif expiry <= now then
      redis.call('HDEL', key, flat[i])
    elseif expiry > latest then
      latest = expiry
    end
  end
  if undated then
    redis.call('PERSIST', key)
  elseif latest > 0 then
    expire_at(key, latest)
  end
end

local function settle_slots(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then
    expire_at(key, tonumber(last[2]))
  end
end

-- Holds removed by kind (wanted: a set of kinds, or nil for all); returns how many.
local function clear(key, wanted)
  local removed = 0
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if wanted == nil or wanted[cjson.decode(field)[2]] then
      removed = removed + redis.call('HDEL', key, field)
    end
  end
  return removed
end

-- Scores the account in the live index by when its last key expires.
local function reindex()
  local score = -1
  for i = 1, 3 do
    local at = redis.call('PEXPIRETIME', KEYS[i])
    if at == -1 then
      score = math.huge
    elseif at > score then
      score = at
    end
  end
  if score < 0 then
    redis.call('ZREM', KEYS[4], ARGV[1])
  elseif score == math.huge then
    redis.call('ZADD', KEYS[4], '+inf', ARGV[1])
  else
    redis.call('ZADD', KEYS[4], score, ARGV[1])
  end
  -- The index itself lives as long as its longest-lived account.
  local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
  if last[2] == 'inf' then
    redis.call('PERSIST', KEYS[4])
  elseif last[2] then
    redis.call('PEXPIREAT', KEYS[4], last[2])
  end
end

local function changed()
  settle(KEYS[1])
  reindex()
  redis.call('PUBLISH', ARGV[3], 'health')
end
"""

# KEYS[5]: the hash (hold or window); ARGV[4], ARGV[5]: field, value.
PUT = """
redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
settle(KEYS[5])
reindex()
redis.call('PUBLISH', ARGV[3], 'health')
"""

# ARGV[4..]: the kinds to clear; none means all.
CLEAR_HOLDS = """
local wanted = nil
if #ARGV > 3 then
  wanted = {}
  for i = 4, #ARGV do wanted[ARGV[i]] = true end
end
if clear(KEYS[1], wanted) > 0 then changed() end
"""

# KEYS[5]: breaker; ARGV[4..9]: threshold, streak TTL (ms), the breaker hold's field and value, the
# tripped mark's field and value. A half-open breaker (mark live, hold ended) opens again at once.
RECORD_FAILURE = """
local function live(field)
  local value = redis.call('HGET', KEYS[1], field)
  if not value then return false end
  local expiry = cjson.decode(value)[1]
  return expiry == cjson.null or expiry > now
end
if not (live(ARGV[8]) and not live(ARGV[6])) then
  if redis.call('INCR', KEYS[5]) < tonumber(ARGV[4]) then
    redis.call('PEXPIRE', KEYS[5], ARGV[5])
    return 0
  end
end
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[1], ARGV[6], ARGV[7])
redis.call('HSET', KEYS[1], ARGV[8], ARGV[9])
changed()
return 1
"""

# KEYS[5]: breaker; ARGV[4], ARGV[5]: the kinds a success clears (the breaker hold and the tripped mark).
RECORD_SUCCESS = """
redis.call('DEL', KEYS[5])
if clear(KEYS[1], {[ARGV[4]] = true, [ARGV[5]] = true}) > 0 then
  changed()
  return 1
end
return 0
"""

# ARGV[4..6]: lease id, limit, expires at.
ACQUIRE = """
settle_slots(KEYS[3])
if not redis.call('ZSCORE', KEYS[3], ARGV[4]) then
  local limit = tonumber(ARGV[5])
  if limit > 0 and redis.call('ZCARD', KEYS[3]) >= limit then return 0 end
end
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[4])
settle_slots(KEYS[3])
reindex()
return 1
"""

EXTEND = """
settle_slots(KEYS[3])
if not redis.call('ZSCORE', KEYS[3], ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
settle_slots(KEYS[3])
reindex()
return 1
"""

RELEASE = """
if redis.call('ZREM', KEYS[3], ARGV[4]) == 1 then
  settle_slots(KEYS[3])
  reindex()
end
"""

# The mirror's source: every account in the live index with its holds, windows
# and live leases, and the accounts version. KEYS: live, accounts:version;
# ARGV: key prefix, now (s). The only script that derives keys (not for Cluster).
SNAPSHOT = """
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now * 1000))
local out = {}
for _, account in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = {
    account,
    redis.call('HGETALL', ARGV[1] .. 'hold:' .. account),
    redis.call('HGETALL', ARGV[1] .. 'window:' .. account),
    redis.call('ZRANGE', ARGV[1] .. 'slots:' .. account, '(' .. ARGV[2], '+inf', 'BYSCORE', 'WITHSCORES'),
  }
end
return {redis.call('GET', KEYS[2]) or '0', out}
"""

# KEYS: accounts, accounts:version; ARGV: account, record, channel. Returns the new version.
PUT_ACCOUNT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], 'accounts')
return version
"""

# KEYS: accounts, accounts:version; ARGV: account, channel. Returns the new version, or 0 if absent.
DELETE_ACCOUNT = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[2], 'accounts')
return version
"""

# KEYS: credentials, accounts:version; ARGV: account, record, channel. Returns the new accounts version, or 0
# when the record was ignored: the one held replaces the same file credential and expires later (the same rule
# as `memory.credential_arrived_late`).
PUT_CREDENTIAL = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local ok, late = pcall(function()
    local new, old = cjson.decode(ARGV[2]), cjson.decode(held)
    if new.replaces ~= old.replaces then return false end
    local a = tostring(new.credential.secrets.expires_at or '')
    local b = tostring(old.credential.secrets.expires_at or '')
    if not a:match('^%d+$') or not b:match('^%d+$') then return false end
    return tonumber(a) < tonumber(b)
  end)
  if ok and late then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], 'accounts')
return version
"""
