-- wrk: POST /api/v1/validate with a random key of KEYS_FILE and a fresh nonce, as an app does.
-- Usage: wrk -s bench/wrk/validate.lua URL -- KEYS_FILE TAG
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
  local body = '{"key":"' .. key .. '","nonce":"' .. tag .. '-' .. counter .. '"}'
  return wrk.format("POST", "/api/v1/validate", headers, body)
end
