-- Argo CD health of a Release Passport ReleaseWaiver (releasepassport.io/v1alpha1).
--   Progressing: the operator has not judged it yet
--   Healthy:     it waives its rule for its gate's artifact until it expires
--   Degraded:    it expired, or it does not count (status.reason says why:
--                BeyondMaximumDuration, SelfWaiver, ServiceAccount,
--                OtherDigest, UnknownRule)
local hs = {}
local spec = obj.spec or {}
local what = "Waiver of " .. (spec.gate or "?") .. " rule " .. (spec.ruleId or "?") .. " by " .. (spec.author or "?")
local status = obj.status
if status == nil or status.state == nil then
  hs.status = "Progressing"
  hs.message = what .. ": waiting for the Release Passport operator to judge it"
  return hs
end
if status.state == "Counted" then
  hs.status = "Healthy"
  hs.message = what .. " counts until " .. (spec.expiresAt or "?")
  return hs
end
hs.status = "Degraded"
if status.state == "Expired" then
  hs.message = what .. " expired at " .. (spec.expiresAt or "?") .. "; remove it, or have an approver create a new one"
else
  hs.message = what .. " does not count (" .. (status.reason or "NotCounted") .. "): " .. (status.message or "")
end
return hs
