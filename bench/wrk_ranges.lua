-- wrk script for bench/stream.py: `wrk ... -s wrk_ranges.lua URL -- MODE FILE_SIZE SPAN`
--   full:  GET the whole file (no Range header)
--   range: SPAN bytes from a random offset in [1, FILE_SIZE - SPAN]
--   start: SPAN bytes from byte 0 (a playback start: video-streaming publishes a view)
--   byte1: SPAN bytes from byte 1 (same work, no view)
-- Prints one line `BENCH {json}` with the totals when the run is over.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  mode = args[1] or "full"
  size = tonumber(args[2] or "0")
  span = tonumber(args[3] or "0")
  math.randomseed(os.time() * 1000 + id)
end

function request()
  if mode == "full" then
    return wrk.format("GET")
  end
  local first
  if mode == "range" then
    first = math.random(1, size - span)
  elseif mode == "start" then
    first = 0
  else
    first = 1
  end
  return wrk.format("GET", nil, { Range = "bytes=" .. first .. "-" .. (first + span - 1) })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"bytes":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    summary.requests, summary.bytes, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
