//! Who a resource belongs to: the BlogDeployment's namespace, name and UID, and the tags that
//! say so on every AWS resource the operator makes.

use std::collections::BTreeMap;

/// Tag keys every resource carries.
pub const OWNER_TAG: &str = "blogs.serverless.dev/owner";
pub const UID_TAG: &str = "blogs.serverless.dev/uid";
pub const MANAGED_BY_TAG: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "blog-operator";

/// Which BlogDeployment a resource belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    /// `namespace/name`, the value of the owner tag.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The tags every resource of this owner carries.
    #[must_use]
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (OWNER_TAG.to_owned(), self.key()),
            (UID_TAG.to_owned(), self.uid.clone()),
            (MANAGED_BY_TAG.to_owned(), MANAGED_BY.to_owned()),
        ])
    }

    /// Whether tags found on a resource say this owner made it.
    #[must_use]
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(UID_TAG) == Some(&self.uid) && tags.get(OWNER_TAG) == Some(&self.key())
    }
}
