-- wrk script: POST /api/orders with an admin token; every request a new 5-line order.
--
-- Environment (set by bench_orders.py):
--   WRK_AUTH    the full Authorization header value ("Bearer tk_...")
--   WRK_SKUS    how many SKUs the catalogue has (S000 .. S<n-1>); S000 is the scarce one
--   WRK_SCARCE  share of orders whose first line is the scarce SKU (default 0.1)
--   WRK_RUN     a run label, part of every external_id (so runs never collide)
--   WRK_SEED    optional base seed for the per-thread random generators
--
-- Orders go to a random point in mainland Spain by home delivery, on a random channel,
-- with 5 distinct SKUs (1 unit each). done() prints one line "WRK_JSON {...}" with the
-- answers by status (201 created, 200 duplicate, 409 refused, other) and latency
-- percentiles over every answer.

local threads = {}
local thread_no = 0

function setup(thread)
   thread_no = thread_no + 1
   thread:set("tid", thread_no)
   table.insert(threads, thread)
end

local n_skus, scarce, run
local counter = 0
local channels = {"web", "app", "marketplace", "pos", "mobile_pos"}
created, duplicate, refused, other = 0, 0, 0, 0

function init(args)
   n_skus = tonumber(os.getenv("WRK_SKUS") or "200")
   scarce = tonumber(os.getenv("WRK_SCARCE") or "0.1")
   run = os.getenv("WRK_RUN") or tostring(os.time())
   local seed = tonumber(os.getenv("WRK_SEED") or "") or os.time()
   math.randomseed(seed + 7919 * tid)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = os.getenv("WRK_AUTH")
end

local fmt = string.format
local random = math.random

local function five_skus()
   local picked, out = {}, {}
   while #out < 5 do
      local k = random(1, n_skus - 1)
      if not picked[k] then
         picked[k] = true
         table.insert(out, k)
      end
   end
   if random() < scarce then out[1] = 0 end
   return out
end

function request()
   counter = counter + 1
   local lines = {}
   for i, k in ipairs(five_skus()) do
      lines[i] = fmt('{"sku":"S%03d","quantity":1,"unit_price":"19.95"}', k)
   end
   local body = fmt(
      '{"channel":"%s","external_id":"B-%s-%d-%d",' ..
      '"customer":{"email":"cliente%d@example.es"},"lines":[%s],' ..
      '"fulfilment":{"method":"delivery","address":{"line1":"Calle Mayor 1",' ..
      '"postcode":"28013","city":"Madrid","country":"ES","latitude":%.4f,"longitude":%.4f}}}',
      channels[random(1, #channels)], run, tid, counter, random(0, 999999),
      table.concat(lines, ","), 36.5 + 7.0 * random(), -8.5 + 11.5 * random())
   return wrk.format(nil, "/api/orders", nil, body)
end

function response(status, headers, body)
   if status == 201 then
      created = created + 1
   elseif status == 200 then
      duplicate = duplicate + 1
   elseif status == 409 then
      refused = refused + 1
   else
      other = other + 1
      if other <= 3 then
         io.stderr:write(fmt("status %d: %s\n", status, string.sub(body or "", 1, 300)))
      end
   end
end

function done(summary, latency, requests)
   local c, d, r, o = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      c = c + (thread:get("created") or 0)
      d = d + (thread:get("duplicate") or 0)
      r = r + (thread:get("refused") or 0)
      o = o + (thread:get("other") or 0)
   end
   local e = summary.errors
   io.write(fmt(
      'WRK_JSON {"duration_us":%d,"requests":%d,"created":%d,"duplicate":%d,"refused":%d,' ..
      '"other":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}}\n',
      summary.duration, summary.requests, c, d, r, o,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99)))
end
