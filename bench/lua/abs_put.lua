-- ABS putDb. BENCH_MODE=create: every request creates a package. BENCH_MODE=update: per
-- connection (one per thread), create one package, then update it with the id and version of
-- the last answer (a failed answer starts over with a new package).
local H = {["Content-Type"] = "application/json", ["x-api-key"] = os.getenv("BENCH_KEY")}
local CC = os.getenv("BENCH_CLIENT")
local MODE = os.getenv("BENCH_MODE")
local PATH = "/model/package/putDb"
pid, version = nil, nil

request = function()
  if MODE == "create" or pid == nil then
    return wrk.format("POST", PATH, H, '{"client_code": "' .. CC .. '", "oauth_access_token": '
      .. '"", "processing_date": "2021-10-30", "processing_status": "", "processing_step": ""}')
  end
  counter = counter + 1
  return wrk.format("POST", PATH, H, '{"client_code": "' .. CC .. '", "id": ' .. pid
    .. ', "version": ' .. version .. ', "processing_status": "S' .. counter .. '"}')
end

response = function(status, headers, body)
  local good = status == 200 and string.find(body, '"status"%s*:%s*"ok"') ~= nil
  tally(good, status, body)
  if MODE == "update" then
    if good then
      pid = string.match(body, '"id"%s*:%s*(%d+)')
      version = string.match(body, '"version"%s*:%s*(%d+)')
    else
      pid = nil
    end
  end
end
