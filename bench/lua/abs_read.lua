-- ABS reads. BENCH_MODE=get: one package, by the ids of $BENCH_IDS in turn.
-- BENCH_MODE=changes: getChanges from offset_version 0, limit 100 (a client whose feed holds
-- a fixed number of packages). A success is status ok with at least one record.
local H = {["Content-Type"] = "application/json", ["x-api-key"] = os.getenv("BENCH_KEY")}
local CC = os.getenv("BENCH_CLIENT")
local MODE = os.getenv("BENCH_MODE")
local IDS = {}
for id in string.gmatch(os.getenv("BENCH_IDS") or "1", "%d+") do table.insert(IDS, id) end

request = function()
  counter = counter + 1
  if MODE == "get" then
    local id = IDS[(counter + tid) % #IDS + 1]
    return wrk.format("POST", "/model/package/get", H,
      '{"client_code": "' .. CC .. '", "id": ' .. id .. '}')
  end
  return wrk.format("POST", "/model/package/getChanges", H,
    '{"client_code": "' .. CC .. '", "offset_version": 0, "limit": 100}')
end

response = function(status, headers, body)
  tally(status == 200 and string.find(body, '"status"%s*:%s*"ok"') ~= nil
    and string.find(body, '"total_records"%s*:%s*[1-9]') ~= nil, status, body)
end
