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

/// The label a Secret must carry for the operator to read it as a write token: an opt-in, so a
/// spec cannot copy any Secret of its namespace (a ServiceAccount token, a database password) out
/// into AWS and into the blog's environment.
pub const OPT_IN_LABEL: &str = "blogs.serverless.dev/write-token";

/// The shortest token accepted: 32 characters (the generated ones have 64).
pub const MIN_LENGTH: usize = 32;

/// The token: from the spec's Secret, or from the operator's own (made on first use).
///
/// # Errors
/// `Missing` when the spec's Secret is absent, not opted in, not `Opaque`, or its key is missing
/// or too short, or when the operator may not make Secrets here; `Kube` when the API fails.
pub async fn resolve(client: &kube::Client, bd: &BlogDeployment) -> Result<WriteToken, TokenError> {
    let namespace = bd.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let spec = &bd.spec.write_token;
    if let Some(name) = &spec.secret_name {
        let found = secrets.get_opt(name).await?;
        let value = usable(found.as_ref(), &spec.key)
            .map_err(|why| TokenError::Missing(format!("spec.writeToken: Secret {namespace}/{name} {why}")))?;
        return Ok(WriteToken { secret: name.clone(), value });
    }
    let name = generated_secret_name(bd);
    let found = secrets.get_opt(&name).await?;
    // The operator's own Secret, made before the label existed: owned by this object.
    let own = found.as_ref().filter(|s| s.owner_references().iter().any(|r| Some(&r.uid) == bd.uid().as_ref()));
    if let Some(value) = own.and_then(|s| value_of(s, "token")).filter(|v| v.chars().count() >= MIN_LENGTH) {
        return Ok(WriteToken { secret: name, value });
    }
    // Opted in: made by an earlier object of this name (garbage collection may not have run yet)
    // or by the tenant; either way one meant for this blog.
    if let Ok(value) = usable(found.as_ref(), "token") {
        return Ok(WriteToken { secret: name, value });
    }
    if found.is_some() {
        return Err(TokenError::Missing(format!(
            "spec.writeToken: Secret {namespace}/{name} exists and is neither this BlogDeployment's nor an Opaque \
             Secret labelled {OPT_IN_LABEL}=true with a token of {MIN_LENGTH}+ characters; label it, or delete it \
             and the operator generates one"
        )));
    }
    let value = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let labels = [("app.kubernetes.io/managed-by", "blog-operator"), (OPT_IN_LABEL, "true")];
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            owner_references: bd.controller_owner_ref(&()).map(|r| vec![r]),
            labels: Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        string_data: Some(BTreeMap::from([("token".to_owned(), value.clone())])),
        ..Secret::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(WriteToken { secret: name, value }),
        // Made by a reconcile cut off before it could use it: read it next time.
        Err(kube::Error::Api(e)) if e.code == 409 => Err(TokenError::Kube(kube::Error::Api(e))),
        Err(kube::Error::Api(e)) if e.code == 403 => Err(TokenError::Missing(format!(
            "spec.writeToken: the operator may not make Secrets in namespace {namespace}; create an Opaque Secret \
             labelled {OPT_IN_LABEL}=true holding a token of at least {MIN_LENGTH} characters and name it in \
             spec.writeToken.secretName"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The token in `secret` under `key`, if the Secret opted in, is `Opaque`, and the value is long
/// enough; otherwise what is wrong, for a person to fix.
fn usable(secret: Option<&Secret>, key: &str) -> Result<String, String> {
    let secret = secret.ok_or("does not exist; create it, or drop secretName and the operator generates a token")?;
    if secret.labels().get(OPT_IN_LABEL).map(String::as_str) != Some("true") {
        return Err(format!("is not labelled {OPT_IN_LABEL}=true; the operator reads only Secrets that opt in"));
    }
    if secret.type_.as_deref().is_some_and(|t| t != "Opaque") {
        return Err("is not of type Opaque".to_owned());
    }
    let value = value_of(secret, key).ok_or_else(|| format!("has no non-empty key {key:?}"))?;
    if value.chars().count() < MIN_LENGTH {
        return Err(format!("holds a token under {MIN_LENGTH} characters under {key:?}; use a longer, random one"));
    }
    Ok(value)
}

fn value_of(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key).map(|ByteString(b)| b.clone())?;
    String::from_utf8(bytes).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(labelled: bool, kind: &str, value: &str) -> Secret {
        let labels = labelled.then(|| BTreeMap::from([(OPT_IN_LABEL.to_owned(), "true".to_owned())]));
        Secret {
            metadata: ObjectMeta { labels, ..ObjectMeta::default() },
            type_: Some(kind.to_owned()),
            data: Some(BTreeMap::from([("token".to_owned(), ByteString(value.as_bytes().to_vec()))])),
            ..Secret::default()
        }
    }

    #[test]
    fn only_an_opted_in_opaque_secret_with_a_long_token_is_read() {
        let long = "0123456789abcdef0123456789abcdef";
        assert_eq!(usable(Some(&secret(true, "Opaque", long)), "token").as_deref(), Ok(long));
        let unlabelled = usable(Some(&secret(false, "Opaque", long)), "token").expect_err("no opt-in");
        assert!(unlabelled.contains("is not labelled blogs.serverless.dev/write-token=true"), "{unlabelled}");
        let token = usable(Some(&secret(true, "kubernetes.io/service-account-token", long)), "token");
        assert_eq!(token.expect_err("not Opaque"), "is not of type Opaque");
        let short = usable(Some(&secret(true, "Opaque", "hunter2")), "token").expect_err("short");
        assert!(short.contains("under 32 characters"), "{short}");
        assert!(usable(None, "token").is_err() && usable(Some(&secret(true, "Opaque", long)), "other").is_err());
    }
}
