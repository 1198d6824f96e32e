-- Argo CD health of a Release Passport Passport (releasepassport.io/v1alpha1).
-- A Passport's signed content is immutable, so its health is its decision:
--   Healthy:     ALLOW or ALLOW_WITH_CANARY
--   Suspended:   REQUIRE_APPROVAL
--   Degraded:    HOLD, BLOCK, ROLLBACK_RECOMMENDED, or Verified=False
--   Progressing: no decision in the document (never written by the operator)
local hs = {}
local spec = obj.spec
if spec == nil or spec.decision == nil then
  hs.status = "Progressing"
  hs.message = "No decision recorded yet"
  return hs
end

local status = obj.status or {}
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Verified" and c.status == "False" then
      hs.status = "Degraded"
      hs.message = "Signature not verified: " .. (c.reason or "") .. ": " .. (c.message or "")
      return hs
    end
  end
end

local decision = spec.decision
local release = (spec.service or "?") .. " " .. (spec.release or "?")
local summary = decision .. " for " .. release .. " in " .. (spec.environment or "?")
if status.supersededBy ~= nil then
  summary = summary .. " (superseded by " .. status.supersededBy .. ")"
end

local failing = {}
if spec.policyResults ~= nil then
  for _, r in ipairs(spec.policyResults) do
    -- a missing optional rule does not count against the decision
    local optional_missing = r.state == "missing" and r.required ~= true
    if r.state ~= "pass" and r.state ~= "waived" and not optional_missing then
      table.insert(failing, r.id)
    end
  end
end
local details = ""
if #failing > 0 then
  details = "; failing checks: " .. table.concat(failing, ", ")
end
if spec.nextActions ~= nil and #spec.nextActions > 0 then
  details = details .. "; next: " .. spec.nextActions[1]
end

if decision == "ALLOW" or decision == "ALLOW_WITH_CANARY" then
  hs.status = "Healthy"
  hs.message = summary
elseif decision == "REQUIRE_APPROVAL" then
  hs.status = "Suspended"
  hs.message = summary .. details
elseif decision == "HOLD" or decision == "BLOCK" or decision == "ROLLBACK_RECOMMENDED" then
  hs.status = "Degraded"
  hs.message = summary .. details
else
  hs.status = "Unknown"
  hs.message = "Unknown decision " .. tostring(decision)
end
return hs
