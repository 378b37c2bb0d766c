//! Whether an image can run where a variant puts it: an ECR image reference taken apart, and the
//! manifest ECR holds for it read against what Lambda and Fargate accept.

use crate::crd::Architecture;

/// An image in a private ECR registry: `<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub account: String,
    pub region: String,
    pub repository: String,
    /// The tag or digest the reference names; `latest` when it names neither.
    pub reference: ImageReference,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    Tag(String),
    Digest(String),
}

/// The ECR image a reference names, if it names one in a private ECR registry.
#[must_use]
pub fn ecr_image(image: &str) -> Option<EcrImage> {
    let (host, path) = image.split_once('/')?;
    let mut parts = host.split('.');
    let (account, dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if dkr != "dkr" || ecr != "ecr" || account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (name, reference) = match path.split_once('@') {
        Some((name, digest)) => (name, ImageReference::Digest(digest.to_owned())),
        None => match path.rfind(':') {
            Some(i) if !path[i..].contains('/') => (&path[..i], ImageReference::Tag(path[i + 1..].to_owned())),
            _ => (path, ImageReference::Tag("latest".to_owned())),
        },
    };
    Some(EcrImage { account: account.to_owned(), region: region.to_owned(), repository: name.to_owned(), reference })
}

/// What runs the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    Lambda,
    Fargate,
}

/// The manifest media types a registry may answer with.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    INDEX_TYPES[0],
    INDEX_TYPES[1],
];

/// Media types of an image index (one manifest per platform).
pub const INDEX_TYPES: [&str; 2] =
    ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

/// The OCI name of an architecture (`GOARCH`), as image indexes and configs write it.
#[must_use]
pub fn oci_architecture(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::Arm64 => "arm64",
        Architecture::X86_64 => "amd64",
    }
}

/// Why `image`, whose manifest ECR gave, cannot run on `runner` with `architecture`; `None` when it
/// can as far as the manifest tells. Lambda runs no image index; Fargate picks the index's entry
/// for the task's platform, so the index must have one. A single manifest names its architecture
/// only in its config blob, which this check does not read.
#[must_use]
pub fn unrunnable(
    image: &str,
    media_type: Option<&str>,
    manifest: &str,
    runner: Runner,
    architecture: Architecture,
) -> Option<String> {
    let parsed: serde_json::Value = serde_json::from_str(manifest).unwrap_or_default();
    let media_type = media_type.or_else(|| parsed["mediaType"].as_str()).unwrap_or_default();
    if !INDEX_TYPES.contains(&media_type) {
        return None;
    }
    let platforms: Vec<&str> = parsed["manifests"]
        .as_array()
        .map(|entries| entries.iter().filter_map(|m| m["platform"]["architecture"].as_str()).collect())
        .unwrap_or_default();
    let wanted = oci_architecture(architecture);
    match runner {
        Runner::Lambda => Some(format!(
            "{image} is a multi-architecture image index ({}); Lambda runs only a single-architecture \
             image: set spec.function.image to its {wanted} image",
            platforms.join(", ")
        )),
        Runner::Fargate if platforms.contains(&wanted) => None,
        Runner::Fargate => Some(format!(
            "{image} has no {wanted} image (its index holds {}); set spec.container.architecture to one \
             of them or push a {wanted} image",
            if platforms.is_empty() { "no platform".to_owned() } else { platforms.join(", ") }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "123456789012.dkr.ecr.us-west-1.amazonaws.com/team/blog";

    fn index(architectures: &[&str]) -> String {
        let entries: Vec<_> = architectures
            .iter()
            .map(|a| {
                serde_json::json!({"mediaType": MANIFEST_TYPES[0], "digest": "sha256:00", "size": 1,
                                        "platform": {"os": "linux", "architecture": a}})
            })
            .collect();
        serde_json::json!({"schemaVersion": 2, "mediaType": INDEX_TYPES[0], "manifests": entries}).to_string()
    }

    #[test]
    fn references_are_taken_apart() {
        let tagged = ecr_image(&format!("{IMAGE}:1.0.0")).expect("ECR");
        assert_eq!(
            (tagged.account.as_str(), tagged.region.as_str(), tagged.repository.as_str()),
            ("123456789012", "us-west-1", "team/blog")
        );
        assert_eq!(tagged.reference, ImageReference::Tag("1.0.0".into()));
        let pinned = ecr_image(&format!("{IMAGE}@sha256:ab")).expect("ECR");
        assert_eq!(pinned.reference, ImageReference::Digest("sha256:ab".into()));
        assert_eq!(ecr_image(IMAGE).expect("ECR").reference, ImageReference::Tag("latest".into()));
        assert_eq!(ecr_image("blog-service:1.0.0"), None);
        assert_eq!(ecr_image("public.ecr.aws/team/blog:1"), None);
    }

    #[test]
    fn lambda_refuses_an_index_and_fargate_needs_its_platform_in_it() {
        let both = index(&["amd64", "arm64"]);
        let lambda = unrunnable(IMAGE, None, &both, Runner::Lambda, Architecture::Arm64).expect("refused");
        assert!(lambda.contains("image index (amd64, arm64)") && lambda.contains("its arm64 image"), "{lambda}");
        assert_eq!(unrunnable(IMAGE, Some(INDEX_TYPES[0]), &both, Runner::Fargate, Architecture::Arm64), None);
        let amd = index(&["amd64"]);
        let fargate = unrunnable(IMAGE, None, &amd, Runner::Fargate, Architecture::Arm64).expect("refused");
        assert!(fargate.starts_with(&format!("{IMAGE} has no arm64 image (its index holds amd64)")), "{fargate}");
        assert_eq!(unrunnable(IMAGE, None, &amd, Runner::Fargate, Architecture::X86_64), None);
    }

    #[test]
    fn a_single_manifest_passes_and_the_media_type_parameter_wins() {
        let single = serde_json::json!({"schemaVersion": 2, "mediaType": MANIFEST_TYPES[0]}).to_string();
        assert_eq!(unrunnable(IMAGE, None, &single, Runner::Lambda, Architecture::Arm64), None);
        let untyped = index(&["arm64"]).replace(INDEX_TYPES[0], "");
        assert!(unrunnable(IMAGE, Some(INDEX_TYPES[1]), &untyped, Runner::Lambda, Architecture::Arm64).is_some());
    }
}
