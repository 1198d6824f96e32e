-- Argo CD health of a Release Passport ReleaseApproval (releasepassport.io/v1alpha1).
--   Progressing: the operator has not judged it yet
--   Healthy:     it counts for its gate's release
--   Degraded:    it does not count (status.reason says why: SelfApproval,
--                ServiceAccount, OtherRelease, OtherDigest, DuplicateApprover)
-- An approval kept in Git is applied by Argo CD's ServiceAccount: it never
-- counts unless the Policy sets approval.allowServiceAccounts.
local hs = {}
local spec = obj.spec or {}
local what = "Approval of " .. (spec.gate or "?") .. " " .. (spec.release or "?") .. " by " .. (spec.approver or "?")
local status = obj.status
if status == nil or status.state == nil then
  hs.status = "Progressing"
  hs.message = what .. ": waiting for the Release Passport operator to judge it"
  return hs
end
if status.state == "Counted" then
  hs.status = "Healthy"
  hs.message = what .. " counts"
  return hs
end
hs.status = "Degraded"
hs.message = what .. " does not count (" .. (status.reason or "NotCounted") .. "): " .. (status.message or "")
return hs
