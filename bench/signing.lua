-- wrk script: POST a signature with a unique email per request (per thread, per run).
local counter = 0
local thread_id = 0
local threads = {}
local run = tostring(os.time())

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id
end

function request()
  counter = counter + 1
  local body = string.format('{"email":"b%s-%d-%d@bench.example","consents":{"updates":true}}',
                             run, thread_id, counter)
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"}, body)
end
