-- Request generator for the benchmark (scripts/bench/wrk.ts writes the spec file).
-- Every request is built once, in init(); request() only hands out the next prebuilt
-- string, so rotating through thousands of keys costs wrk almost nothing per request.
--
-- Spec file, one directive per line:
--   method GET
--   path /v1/agents?x=1
--   header Name: value          (sent on every request)
--   body 1048576                (a body of that many bytes, the same for every request)
--   variant Name: value<TAB>Name: value   (extra headers of one request; rotated through)

local requests = {}
local index = 0
local next_thread = 0

function setup(thread)
  thread:set("bench_thread", next_thread)
  next_thread = next_thread + 1
end

local function split_headers(line, into)
  for part in string.gmatch(line, "[^\t]+") do
    local name, value = string.match(part, "^([^:]+):%s?(.*)$")
    if name then into[name] = value end
  end
end

function init(args)
  local spec = args[1]
  local method, path, body = "GET", "/", nil
  local common, variants = {}, {}
  for line in io.lines(spec) do
    local directive, rest = string.match(line, "^(%S+)%s(.*)$")
    if directive == "method" then method = rest
    elseif directive == "path" then path = rest
    elseif directive == "header" then split_headers(rest, common)
    elseif directive == "body" then
      local n = tonumber(rest)
      if n and n > 0 then body = string.rep("a", n) end
    elseif directive == "variant" then variants[#variants + 1] = rest
    end
  end
  if #variants == 0 then variants[1] = "" end
  for i, variant in ipairs(variants) do
    local headers = {}
    for k, v in pairs(common) do headers[k] = v end
    split_headers(variant, headers)
    requests[i] = wrk.format(method, path, headers, body)
  end
  -- The harness passes where the previous run stopped (args[2]), so a rotation through
  -- thousands of keys continues across runs instead of replaying warm entries; threads
  -- start at different points.
  local id = tonumber(rawget(_G, "bench_thread")) or 0
  index = ((tonumber(args[2]) or 0) + id * 7919) % #requests
end

function request()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end

function done(summary, latency, requests_)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
