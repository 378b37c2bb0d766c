//! Validate: the decision the admission webhook makes, taken again before any AWS call (the
//! webhook may be off, or the tenant policy changed). A spec that passes becomes a [`Validated`],
//! which the build step requires.

use kube::ResourceExt;

use crate::context::Settings;
use crate::crd::{BlogDeployment, BlogDeploymentSpec, BlogDeploymentStatus};
use crate::desired::Owner;
use crate::peers::Peers;
use crate::tenancy::TenantPolicy;

/// A spec refused before any AWS call: the reason every condition gets, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Refused {
    pub reason: &'static str,
    pub message: String,
}

/// A spec the webhook's rules and the tenant policy admit, with the rules of its namespace.
pub struct Validated<'a> {
    pub spec: &'a BlogDeploymentSpec,
    pub owner: Owner,
    /// The tenant policy as it applies to this namespace, resolved once per reconcile.
    pub rules: TenantPolicy,
}

/// Refuses what the webhook refuses: a broken spec, one outside the tenant policy, a region or
/// table changed under recorded resources, a concurrency the namespace's other objects exhaust.
///
/// # Errors
/// [`Refused`], with the reason and every broken rule.
pub fn validate<'a>(
    bd: &'a BlogDeployment,
    owner: Owner,
    (settings, peers): (&Settings, &Peers),
    previous: &BlogDeploymentStatus,
) -> Result<Validated<'a>, Refused> {
    let facts = crate::tenancy::Facts {
        namespace: &owner.namespace,
        default_region: &settings.default_region,
        recorded_table_arn: previous.resources.table_arn.as_deref(),
        reserved_elsewhere: Some(peers.reserved_concurrency(&owner.namespace, bd.uid().as_deref())),
    };
    if let Some((reason, message)) = crate::admission::refusal(&bd.spec, &settings.tenant_policy, &facts) {
        return Err(Refused { reason, message });
    }
    let rules = settings.tenant_policy.for_namespace(&owner.namespace);
    Ok(Validated { spec: &bd.spec, owner, rules })
}
