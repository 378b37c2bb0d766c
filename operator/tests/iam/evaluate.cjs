// Evaluates IAM requests with @cloud-copilot/iam-simulate (installed by `scripts/tools.sh install`).
// Usage: node evaluate.cjs NODE_MODULES_DIR REQUESTS.json  → prints [{name, result, errors, unvalidated}].
// Each request: {name, action, resource, context, identityPolicies: [names], boundary: name|null,
// resourcePolicy: name|null};
// the file also holds {policies: {name: document}}.
'use strict'
const { createRequire } = require('node:module')
const fs = require('node:fs')
const path = require('node:path')

const [modules, requestsFile] = process.argv.slice(2)
const load = createRequire(path.join(path.resolve(modules), 'noop.js'))
const { runSimulation, runUnsafeSimulation } = load('@cloud-copilot/iam-simulate')
const input = JSON.parse(fs.readFileSync(requestsFile, 'utf8'))

async function main() {
  const verdicts = []
  for (const r of input.requests) {
    const account = r.resource.split(':')[4] || '123456789012'
    const simulation = {
      request: {
        principal: r.principal || `arn:aws:iam::123456789012:role/${r.role || 'blog-operator'}`,
        action: r.action,
        resource: { resource: r.resource, accountId: account || '123456789012' },
        contextVariables: r.context || {},
      },
      identityPolicies: r.identityPolicies.map((name) => ({ name, policy: input.policies[name] })),
      permissionBoundaryPolicies: r.boundary ? [{ name: r.boundary, policy: input.policies[r.boundary] }] : undefined,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: r.resourcePolicy ? input.policies[r.resourcePolicy] : undefined,
    }
    let out = await runSimulation(simulation, {})
    // Where the evaluator's own service data lacks a resource type AWS documents (API Gateway's
    // /apis, ELB AddTags on target groups, ...), evaluate without that check and say so.
    let unvalidated = null
    const gap = out.errors && ['no.resource.types', 'multiple.resource.types'].includes(out.errors.message)
    if (gap) {
      unvalidated = out.errors.message
      out = { overallResult: await runUnsafeSimulation(simulation, {}) }
    }
    verdicts.push({ name: r.name, result: out.overallResult || out.resultType, errors: out.errors || null, unvalidated })
  }
  process.stdout.write(JSON.stringify(verdicts))
}
main().catch((e) => { console.error(e); process.exit(1) })
