-- Argo CD health of a Release Passport ReleaseGate (releasepassport.io/v1alpha1).
--   Progressing: no decision yet, or status.observedGeneration behind
--                metadata.generation (the decision is still the previous
--                release's: a sync wave must not pass on it)
--   Healthy:     ALLOW or ALLOW_WITH_CANARY for the current generation
--   Suspended:   REQUIRE_APPROVAL (the wave keeps waiting for an approval)
--   Degraded:    HOLD, BLOCK, ROLLBACK_RECOMMENDED, or Ready=False (the gate
--                cannot be evaluated, e.g. InvalidPolicy, PolicyNotFound)
local hs = {}

local function condition(status, type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function failing(status)
  if status.failingChecks == nil or #status.failingChecks == 0 then
    return ""
  end
  return "; failing checks: " .. table.concat(status.failingChecks, ", ")
end

local function next_action(status)
  if status.nextActions == nil or #status.nextActions == 0 then
    return ""
  end
  return "; next: " .. status.nextActions[1]
end

local spec = obj.spec or {}
local release = (spec.service or "?") .. " " .. (spec.release or "?")
local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Release Passport operator to evaluate " .. release
  return hs
end

local generation = obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  local previous = ""
  if status.decision ~= nil then
    local of = "an earlier generation"
    if observed ~= nil then
      of = "generation " .. tostring(observed)
    end
    previous = " (the current decision " .. status.decision .. " is for " .. of .. ")"
  end
  hs.message = "Evaluating " .. release .. ": generation " .. tostring(generation) .. " not observed yet" .. previous
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = "Cannot be evaluated: " .. (ready.reason or "NotReady") .. ": " .. (ready.message or "")
  return hs
end

local decision = status.decision
if decision == nil or status.passportName == nil then
  hs.status = "Progressing"
  hs.message = "Evaluating " .. release .. ": no passport yet"
  return hs
end

local summary = decision .. " for " .. release .. " (passport " .. status.passportName .. ")"
if decision == "ALLOW" or decision == "ALLOW_WITH_CANARY" then
  hs.status = "Healthy"
  hs.message = summary
elseif decision == "REQUIRE_APPROVAL" then
  hs.status = "Suspended"
  hs.message = summary .. failing(status) .. next_action(status)
elseif decision == "HOLD" or decision == "BLOCK" or decision == "ROLLBACK_RECOMMENDED" then
  hs.status = "Degraded"
  hs.message = summary .. failing(status) .. next_action(status)
else
  hs.status = "Unknown"
  hs.message = "Unknown decision " .. tostring(decision)
end
return hs
