-- Shared by the scenarios: a number per wrk thread, and one JSON line with wrk's summary.
local common = {}

local thread_count = 0
function common.setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

function common.done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"timeouts": %d, "p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end

return common
