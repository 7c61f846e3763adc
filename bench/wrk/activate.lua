-- wrk: POST /api/v1/activate with a random key of KEYS_FILE and a device never seen before.
-- Usage: wrk -s bench/wrk/activate.lua URL -- KEYS_FILE TAG (TAG unique per wrk process and round)
local bench = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

local keys, tag
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  keys, tag = bench.load(args)
end

function request()
  counter = counter + 1
  local key = keys[math.random(#keys)]
  local device = tag .. "-" .. counter
  local body = '{"key":"' .. key .. '","fingerprint":"bench-' .. device .. '","name":"bench device",' ..
    '"platform":"linux","nonce":"' .. device .. '"}'
  return wrk.format("POST", "/api/v1/activate", headers, body)
end
