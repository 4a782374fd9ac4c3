-- POST /webhooks/stripe: pre-signed checkout.session.completed events, each for its own open payment.
package.path = package.path .. ";" .. os.getenv("WRK_LUA_DIR") .. "/?.lua"
local common = require("common")

setup = common.setup

local events = nil
local next_event = 0

local function load_events()
  -- Each thread takes every Nth line of the file: no event is sent twice.
  events = {}
  local threads = tonumber(os.getenv("WRK_THREADS"))
  local n = 0
  for line in io.lines(os.getenv("BENCH_EVENTS")) do
    if n % threads == tid then
      local tab = string.find(line, "\t", 1, true)
      table.insert(events, {string.sub(line, 1, tab - 1), string.sub(line, tab + 1)})
    end
    n = n + 1
  end
end

function request()
  if events == nil then load_events() end
  next_event = next_event + 1
  local event = events[((next_event - 1) % #events) + 1]
  return wrk.format("POST", "/webhooks/stripe",
    {["Content-Type"] = "application/json", ["Stripe-Signature"] = event[1]}, event[2])
end

done = common.done
