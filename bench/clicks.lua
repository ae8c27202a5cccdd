-- wrk script: GET /c/{token}, cycling through the tokens of a file (one a line), given
-- after `--` on wrk's command line.
local tokens = {}
local next_token = 0

function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = "/c/" .. line
  end
end

function request()
  next_token = next_token % #tokens + 1
  return wrk.format("GET", tokens[next_token])
end
