-- Prepended to every bench/apis.py script: each thread counts successful and failed answers
-- (the script's response() decides), done() prints the sums for the driver to parse.
-- BENCH_RUN is a fresh prefix per wrk run, so generated keys never repeat across runs.
local threads = {}
RUN = os.getenv("BENCH_RUN") or "run"
counter = 0
ok, bad, sample = 0, 0, ""

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function tally(good, status, body)
  if good then
    ok = ok + 1
    return
  end
  bad = bad + 1
  if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 300) end
end

function done(summary, latency, requests)
  local o, b, s = 0, 0, ""
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    b = b + t:get("bad")
    if s == "" then s = t:get("sample") end
  end
  io.write(string.format("BENCH-OK %d\nBENCH-BAD %d\n", o, b))
  if s ~= "" then io.write("BENCH-SAMPLE " .. (string.gsub(s, "\n", " ")) .. "\n") end
end

-- ---- script ----
