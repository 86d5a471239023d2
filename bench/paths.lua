-- wrk script: cycles through the article paths listed in /tmp/paths.txt
-- (see docs/benchmarks.md, simulator section).
local paths = {}
for line in io.lines("/tmp/paths.txt") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
