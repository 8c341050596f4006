-- One traffic class of the soak test (scripts/soak.ts writes the spec file; one wrk
-- process per class, so every response this script sees belongs to its class).
--
-- request() rotates through prebuilt requests and, when asked, through client addresses
-- (CF-Connecting-IP), so the failure limiter sees the traffic spread the spec promises.
-- response() tallies every status and checks each answer against the class's
-- expectations: a status outside them, a body that does not match, or a missing header
-- is "unexpected". done() prints one SOAKJSON line that the harness parses.
--
-- Spec file, one directive per line, fields separated by TABs:
--   host    127.0.0.1:8787
--   ip      fixed   203.0.113.10
--   ip      rotate  10.77   4096            (10.77.0.0 … upwards, this many addresses)
--   expect  200  exact|prefix|contains  <text>  [header-name …]   (alternatives OR-ed)
--   request GET  /path?query  <body or ->  Name: value  Name: value …

local heads, tails = {}, {}
local expect = {}
local host = "127.0.0.1"
local ip_mode, ip_fixed, ip_prefix, ip_count = "none", nil, nil, 1
local index, ip_index = 0, 0

-- Read by done() through thread:get (wrk copies tables between Lua states).
counts = {}
bad = {}
bad_sample = ""
-- Wall-clock seconds of the first and last unexpected answer (0: none), to line up with RSS samples.
bad_first, bad_last = 0, 0

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function fields(line)
  local out = {}
  for part in string.gmatch(line, "[^\t]+") do
    out[#out + 1] = part
  end
  return out
end

function init(args)
  local requests = {}
  for line in io.lines(args[1]) do
    local f = fields(line)
    local directive = f[1]
    if directive == "host" then
      host = f[2]
    elseif directive == "ip" then
      ip_mode = f[2]
      if ip_mode == "fixed" then
        ip_fixed = "CF-Connecting-IP: " .. f[3] .. "\r\n"
      else
        ip_prefix, ip_count = f[3], tonumber(f[4])
      end
    elseif directive == "expect" then
      local status = tonumber(f[2])
      local headers = {}
      for i = 5, #f do
        headers[#headers + 1] = string.lower(f[i])
      end
      expect[status] = expect[status] or {}
      table.insert(expect[status], { mode = f[3], text = f[4], headers = headers })
    elseif directive == "request" then
      requests[#requests + 1] = f
    end
  end
  for i, f in ipairs(requests) do
    local method, path, body = f[2], f[3], f[4]
    local head = method .. " " .. path .. " HTTP/1.1\r\nHost: " .. host .. "\r\n"
    for j = 5, #f do
      head = head .. f[j] .. "\r\n"
    end
    local tail
    if body == "-" then
      tail = "\r\n"
    else
      tail = "Content-Length: " .. #body .. "\r\n\r\n" .. body
    end
    heads[i], tails[i] = head, tail
  end
  -- Connections of different wrk runs start at different points of the rotation.
  index = (tonumber(args[2]) or 0) % #heads
  ip_index = (tonumber(args[2]) or 0) % ip_count
end

local function address_line()
  if ip_mode == "fixed" then return ip_fixed end
  if ip_mode ~= "rotate" then return "" end
  ip_index = ip_index + 1
  if ip_index >= ip_count then ip_index = 0 end
  return "CF-Connecting-IP: " .. ip_prefix .. "." .. math.floor(ip_index / 256) .. "." .. (ip_index % 256) .. "\r\n"
end

function request()
  index = index + 1
  if index > #heads then index = 1 end
  return heads[index] .. address_line() .. tails[index]
end

local function has_header(headers, name)
  for k, _ in pairs(headers) do
    if string.lower(k) == name then return true end
  end
  return false
end

local function matches(e, headers, body)
  body = body or ""
  if e.mode == "exact" then
    if body ~= e.text then return false end
  elseif e.mode == "prefix" then
    if string.sub(body, 1, #e.text) ~= e.text then return false end
  elseif e.mode == "contains" then
    if string.find(body, e.text, 1, true) == nil then return false end
  end
  for _, name in ipairs(e.headers) do
    if not has_header(headers, name) then return false end
  end
  return true
end

local function note_unexpected(status, body)
  local now = os.time()
  if bad_sample == "" then
    bad_sample = status .. " " .. string.sub(body or "", 1, 200)
    bad_first = now
  end
  bad_last = now
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  local alternatives = expect[status]
  if alternatives == nil then return note_unexpected(status, body) end
  for _, e in ipairs(alternatives) do
    if matches(e, headers, body) then return end
  end
  bad[status] = (bad[status] or 0) + 1
  note_unexpected(status, body)
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

local function json_counts(t)
  local parts = {}
  for status, n in pairs(t) do
    parts[#parts + 1] = '"' .. status .. '":' .. n
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests_)
  local all_counts, all_bad, sample, first, last = {}, {}, "", 0, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      all_counts[status] = (all_counts[status] or 0) + n
    end
    for status, n in pairs(thread:get("bad")) do
      all_bad[status] = (all_bad[status] or 0) + n
    end
    local s = thread:get("bad_sample")
    if sample == "" and s ~= nil then sample = s end
    local f, l = thread:get("bad_first"), thread:get("bad_last")
    if f > 0 and (first == 0 or f < first) then first = f end
    if l > last then last = l end
  end
  local e = summary.errors
  io.write(string.format(
    'SOAKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d,"counts":%s,"bad":%s,"bad_sample":%s,"bad_first":%d,"bad_last":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max,
    json_counts(all_counts), json_counts(all_bad), json_string(sample), first, last))
end
