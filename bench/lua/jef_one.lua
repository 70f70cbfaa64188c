-- jef-one accept: a new session_id per request; a success is 202 with is_accepted true.
local H = {["Content-Type"] = "application/json"}

request = function()
  counter = counter + 1
  local body = '{"entity_number": "1001", "employee_number": "00001", "session_id": "s-'
    .. RUN .. '-' .. tid .. '-' .. counter .. '", "app_type": "mobile", "app_number": "001"}'
  return wrk.format("POST", "/one-post-create-session-job", H, body)
end

response = function(status, headers, body)
  tally(status == 202 and string.find(body, '"is_accepted"%s*:%s*true') ~= nil, status, body)
end
