//! End to end on the local stack: a real kube-apiserver + etcd, the CRD from `crds/`, the operator
//! binary running against it, AWS served by moto. Each test has its own namespace and its own
//! operator process watching only that namespace. One test binary, one file per feature, shared
//! support in `support.rs`.

mod admission;
mod browser;
mod chaos;
mod domain;
mod images;
mod lifecycle;
mod placement;
mod recovery;
mod rollout;
mod security;
mod sizing;
mod support;
mod tables;
mod tenancy;
