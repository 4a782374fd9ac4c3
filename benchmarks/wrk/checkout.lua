-- POST /v1/payments, a new booking every request (as a flash sale's many customers).
package.path = package.path .. ";" .. os.getenv("WRK_LUA_DIR") .. "/?.lua"
local common = require("common")

setup = common.setup

local counter = 0
local token = os.getenv("BENCH_TOKEN")
local run = os.getenv("BENCH_RUN") or "r"

function request()
  counter = counter + 1
  local body = string.format(
    '{"booking_id": "bk_%s_%d_%d", "amount": 3750, "currency": "usd", "description": "Dune: Part Two, 2 seats"}',
    run, tid, counter)
  return wrk.format("POST", "/v1/payments",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

done = common.done
