//! The other BlogDeployments this operator watches, read from its watch caches: the claims and
//! counts that span objects (a table another one records, a namespace's reserved concurrency).

use std::sync::{Arc, RwLock};

use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::crd::BlogDeployment;

/// Every watch cache of this operator (one per watched namespace, or one for all).
#[derive(Clone, Default)]
pub struct Peers {
    stores: Arc<RwLock<Vec<Store<BlogDeployment>>>>,
}

impl Peers {
    /// Adds a watch cache.
    pub fn watch(&self, store: Store<BlogDeployment>) {
        if let Ok(mut stores) = self.stores.write() {
            stores.push(store);
        }
    }

    /// Every object cached, except the one with `uid`.
    fn others(&self, uid: Option<&str>) -> Vec<Arc<BlogDeployment>> {
        let stores = self.stores.read().map(|s| s.clone()).unwrap_or_default();
        stores.iter().flat_map(Store::state).filter(|bd| bd.uid().as_deref() != uid).collect()
    }

    /// Reserved concurrency the namespace's other BlogDeployments hold.
    #[must_use]
    pub fn reserved_concurrency(&self, namespace: &str, uid: Option<&str>) -> i32 {
        let others = self.others(uid);
        let specs = others.iter().filter(|bd| bd.namespace().as_deref() == Some(namespace)).map(|bd| &bd.spec);
        blog_core::tenancy::reserved_concurrency(specs)
    }

    /// Whether another BlogDeployment (in any watched namespace) records the table `name`.
    #[must_use]
    pub fn table_recorded_elsewhere(&self, name: &str, uid: Option<&str>) -> bool {
        self.others(uid).iter().filter_map(|bd| bd.status.as_ref()).any(|s| blog_core::desired::records_table(s, name))
    }
}
