//! The write token's Kubernetes side: the Secret the spec names, or one the operator generates,
//! owned by the BlogDeployment (so it goes with it). The value never leaves this module but to
//! Secrets Manager: not into status, Events, logs or any AWS configuration.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt};

use crate::crd::BlogDeployment;

/// The token and the Secret that holds it.
pub struct WriteToken {
    pub secret: String,
    pub value: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A person must act: the named Secret or its key is missing or empty.
    #[error("{0}")]
    Missing(String),
    #[error("reading the write token's Secret: {0}")]
    Kube(#[from] kube::Error),
}

/// The Secret a generated token lives in.
#[must_use]
pub fn generated_secret_name(bd: &BlogDeployment) -> String {
    format!("{}-write-token", bd.name_any())
}

/// The token: from the spec's Secret, or from the operator's own (made on first use).
///
/// # Errors
/// `Missing` when the spec's Secret or key is absent or empty; `Kube` when the API fails.
pub async fn resolve(client: &kube::Client, bd: &BlogDeployment) -> Result<WriteToken, TokenError> {
    let namespace = bd.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let spec = &bd.spec.write_token;
    if let Some(name) = &spec.secret_name {
        let found = secrets.get_opt(name).await?;
        let value = found.as_ref().and_then(|s| value_of(s, &spec.key));
        return value.map(|value| WriteToken { secret: name.clone(), value }).ok_or_else(|| {
            TokenError::Missing(format!(
                "spec.writeToken: Secret {namespace}/{name} has no non-empty key {:?}; create it, or drop \
                 secretName and the operator generates a token",
                spec.key
            ))
        });
    }
    let name = generated_secret_name(bd);
    if let Some(value) = secrets.get_opt(&name).await?.as_ref().and_then(|s| value_of(s, "token")) {
        return Ok(WriteToken { secret: name, value });
    }
    let value = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            owner_references: bd.controller_owner_ref(&()).map(|r| vec![r]),
            labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), "blog-operator".to_owned())])),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([("token".to_owned(), value.clone())])),
        ..Secret::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(WriteToken { secret: name, value }),
        // Made by a reconcile cut off before it could use it: read it next time.
        Err(kube::Error::Api(e)) if e.code == 409 => Err(TokenError::Kube(kube::Error::Api(e))),
        Err(e) => Err(e.into()),
    }
}

fn value_of(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key).map(|ByteString(b)| b.clone())?;
    String::from_utf8(bytes).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
