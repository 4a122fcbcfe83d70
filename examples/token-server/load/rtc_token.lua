-- wrk script: POST /api/v1/rtc/token as the load-test user (see ../README.md).
-- Every request goes through authentication, the rate limiter, the ban/stream/owner checks,
-- Agora 007 minting and the audit log.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TK_USER_KEY") or "tku_load_test_user_key")
wrk.body = '{"vendor":"' .. (os.getenv("TK_VENDOR") or "agora") .. '","channel":"load-1","role":"publisher","ttl_secs":60}'

local codes = {}
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx/3xx responses: %d\n", summary.errors.status))
end
