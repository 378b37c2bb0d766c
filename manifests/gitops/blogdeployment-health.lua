-- Argo CD health check for blogs.serverless.dev/BlogDeployment (resource.customizations).
-- Healthy: Ready=True for the current generation. Progressing: no status yet, an older
-- generation, or Ready=False while AWS works or a new version rolls out step by step (reasons
-- Progressing, Creating, RollingOut). Suspended: held by a person (reasons Paused, RolloutPaused).
-- Degraded: Ready=False for any other reason (InvalidSpec, AccessDenied, InvalidRequest,
-- RolloutFailed, RolledBack, ...).
local hs = {status = "Progressing", message = "Waiting for the operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (obj.status.observedGeneration == nil or obj.status.observedGeneration < generation) then
  hs.message = "The operator has not yet seen generation " .. tostring(generation)
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    if condition.status == "True" then
      hs.status = "Healthy"
    elseif condition.reason == "Progressing" or condition.reason == "Creating" or condition.reason == "RollingOut" then
      hs.status = "Progressing"
    elseif condition.reason == "Paused" or condition.reason == "RolloutPaused" then
      hs.status = "Suspended"
    else
      hs.status = "Degraded"
    end
    hs.message = (condition.reason or "") .. ": " .. (condition.message or "")
    return hs
  end
end
return hs
