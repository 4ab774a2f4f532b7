-- wrk script: POST Segment batches to /v1/batch with HTTP Basic auth (write key as user).
--
-- Environment (set by bench_ingest.py):
--   WRK_TEMPLATE  a file holding one batch body in which every messageId is the
--                 placeholder @@MID@@ and every timestamp (and sentAt) @@TS@@
--                 (bench_ingest.py writes it from _common.make_message)
--   WRK_AUTH      the full Authorization header value ("Basic base64(key:)")
--   WRK_SEED      optional base seed for the per-thread random generators
--
-- Every message of every request gets a unique messageId shaped like a UUIDv4 (as SDKs
-- send): random hex (so it lands at a random place in the (source_id, message_id) index,
-- like a real SDK's uuid4) with the wrk thread number and a per-thread counter in the
-- last groups, so ids can never repeat within a run. Timestamps are the wall clock's second
-- when the request is made, with a per-thread counter as the fraction: clients stamp
-- messages as they happen, so live traffic arrives roughly in time order.
--
-- done() prints one line "WRK_JSON {...}" with counts and latency percentiles.

local threads = {}
local thread_no = 0

function setup(thread)
   thread_no = thread_no + 1
   thread:set("tid", thread_no)
   table.insert(threads, thread)
end

local parts, kinds, nparts, pieces
local counter = 0
sent, ok, non2xx = 0, 0, 0

local function load_template(path)
   local fh = assert(io.open(path, "rb"), "cannot open WRK_TEMPLATE " .. tostring(path))
   local body = fh:read("*a")
   fh:close()
   local out, what = {}, {}
   local start = 1
   while true do
      local i, j = string.find(body, "@@MID@@", start, true)
      local ti, tj = string.find(body, "@@TS@@", start, true)
      local kind = "mid"
      if ti and (not i or ti < i) then
         i, j, kind = ti, tj, "ts"
      end
      if not i then break end
      table.insert(out, string.sub(body, start, i - 1))
      table.insert(what, kind)
      start = j + 1
   end
   table.insert(out, string.sub(body, start))
   return out, what
end

function init(args)
   parts, kinds = load_template(os.getenv("WRK_TEMPLATE"))
   nparts = #parts
   pieces = {}
   local seed = tonumber(os.getenv("WRK_SEED") or "") or os.time()
   math.randomseed(seed + 7919 * tid)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = os.getenv("WRK_AUTH")
end

local fmt = string.format
local random = math.random

function request()
   counter = counter + 1
   sent = sent + 1
   -- parts[1] mid/ts parts[2] mid/ts ... parts[n]
   local second = os.date("!%Y-%m-%dT%H:%M:%S", os.time())
   for k = 1, nparts - 1 do
      pieces[2 * k - 1] = parts[k]
      if kinds[k] == "ts" then
         pieces[2 * k] = fmt("%s.%06dZ", second, (counter * 128 + k) % 1000000)
      else
         pieces[2 * k] = fmt("%04x%04x-%04x-4%03x-%x%03x-%04x%08x",
            random(0, 65535), random(0, 65535), random(0, 65535), random(0, 4095),
            8 + random(0, 3), random(0, 4095), tid, counter * 128 + k)
      end
   end
   pieces[2 * nparts - 1] = parts[nparts]
   return wrk.format(nil, nil, nil, table.concat(pieces, "", 1, 2 * nparts - 1))
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      non2xx = non2xx + 1
      if non2xx <= 3 then
         io.stderr:write(fmt("non-2xx %d: %s\n", status, string.sub(body or "", 1, 300)))
      end
   end
end

function done(summary, latency, requests)
   local t_sent, t_ok, t_bad = 0, 0, 0
   for _, thread in ipairs(threads) do
      t_sent = t_sent + (thread:get("sent") or 0)
      t_ok = t_ok + (thread:get("ok") or 0)
      t_bad = t_bad + (thread:get("non2xx") or 0)
   end
   local e = summary.errors
   io.write(fmt(
      'WRK_JSON {"duration_us":%d,"requests":%d,"bytes":%d,"sent":%d,"ok":%d,"non2xx":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.duration, summary.requests, summary.bytes, t_sent, t_ok, t_bad,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9)))
end
