-- BokaMera: GET /codelock/axema/usersync/<Id> of a completed sync, with the API key.
wrk.method = "GET"
wrk.path = "/codelock/axema/usersync/" .. (os.getenv("BENCH_SYNC_ID") or "")
wrk.headers["x-api-key"] = os.getenv("BENCH_KEY")

response = function(status, headers, body)
  tally(status == 200 and string.find(body, '"StatusName"%s*:%s*"Completed"') ~= nil,
    status, body)
end
