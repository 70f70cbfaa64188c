-- Ikonomikal: per connection (one connection per thread), a pre-made logged-in session
-- (line tid of $BENCH_SESSIONS: subsID, intGID, userID, sessID, tab-separated), then
-- O1_getSCPrgPrcCheckTkn (procID 1, SS07) and ss_02_ss07_sav (cmdStat 0, a new code), in
-- turn. The client never sends the token back (the server consumes the session's oldest live
-- NEW token), so the save follows only a token answer with rspID 0; both calls are counted.
local TOKEN = "/bcss_wbcl_wa_sc/api/O1_getSCPrgPrcCheckTkn"
local SAVE = "/bcss_wbcl_wa_ss/api/ss_02_ss07_sav"
local H = {["Content-Type"] = "application/json"}
local PRG = '"prgInf": {"pMODL": "SS", "pPRGM": "SS07", "pPRGDSC": "Department Profile"}'
stage = "token"
session = ""

function init(args)
  local lines = {}
  for line in io.lines(os.getenv("BENCH_SESSIONS")) do table.insert(lines, line) end
  local l = lines[((tid - 1) % #lines) + 1]
  local subs, gid, user, sess = string.match(l, "([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)")
  session = '"portalID": "", "portID": 0, "subsID": "' .. subs .. '", "intGID": "' .. gid
    .. '", "userID": "' .. user .. '", "sessID": "' .. sess .. '", "timeOffSet": -180'
end

request = function()
  if stage == "token" then
    return wrk.format("POST", TOKEN, H,
      '{"pgProcTkn": {"procID": 1, ' .. PRG .. '}, ' .. session .. '}')
  end
  counter = counter + 1
  local code = "B" .. RUN .. tid .. "-" .. counter
  return wrk.format("POST", SAVE, H, '{' .. PRG .. ', "saveData": {"modInf": {"mUser": "", '
    .. '"mGroup": "", "mDate": 0, "mTime": 0}, "f001": "' .. code .. '", "f002": "Finance", '
    .. '"f003": "Finance", "f004": 0, "l001": "Code", "l002": "Description", '
    .. '"l003": "Other Description", "l004": "Expense Type", "isRead": -1, "rowId": 1}, '
    .. '"cmdStat": 0, ' .. session .. '}')
end

response = function(status, headers, body)
  local good = status == 200 and string.find(body, '"rspID"%s*:%s*0%s*[,}]') ~= nil
  if good and stage == "save" then good = string.find(body, '"parCode"%s*:%s*%["') ~= nil end
  tally(good, status, body)
  if stage == "token" and good then stage = "save" else stage = "token" end
end
