//! ECR: the manifest of the image a variant is about to run, read so that an image Lambda or
//! Fargate would refuse (an index for Lambda, an index without the task's platform, a tag that is
//! not there) is named in a condition before anything is created or rolled out.

use super::Call;
use aws_sdk_ecr::types::ImageIdentifier;

use super::{AwsClients, CloudError, CloudResult, map_sdk};
use crate::aws::Scope;
use crate::crd::Architecture;
use crate::image::{self, ImageReference, Runner};

/// The operator's IAM statements for the calls in this file: the shipped policy
/// (`manifests/iam/operator-policy.json`) is assembled from these ([`super::operator_policy`]).
pub const IAM: &str = r#"[
  {
    "Sid": "ImageManifestReadsInThisAccount",
    "Effect": "Allow",
    "Action": [
      "ecr:BatchGetImage"
    ],
    "Resource": [
      "arn:aws:ecr:*:*:repository/*"
    ],
    "Condition": {
      "StringEquals": {
        "aws:ResourceAccount": "${aws:PrincipalAccount}"
      }
    }
  }
]"#;

pub(crate) const SERVICE: &str = "ecr";

/// The calls above as IAM sees them (see [`Call`]).
pub const CALLS: &[Call] =
    &[Call::new("read an image's manifest", "ecr:BatchGetImage", "arn:aws:ecr:{region}:{account}:repository/blogs/blogs/blog")];

/// No codes beyond the common ones.
pub const CODES: &[(&str, super::ErrorKind)] = &[];

/// The error code of a refused image; [`crate::apply::failure_reason`] turns it into the
/// `ImageNotRunnable` reason.
pub const NOT_RUNNABLE: &str = "ImageNotRunnable";

fn not_runnable(message: String) -> CloudError {
    CloudError::refused(SERVICE, "BatchGetImage", NOT_RUNNABLE, message)
}

/// Checks that `image` can run on `runner` with `architecture`. Only images in this account's ECR
/// registry of the region are read: another registry's manifest is not the operator's to read, and
/// Lambda takes ECR images of the same region only.
///
/// # Errors
/// `ImageNotRunnable` (kind Invalid) with the image and the architecture, or the AWS failure.
pub async fn check_runnable(
    clients: &AwsClients,
    scope: &Scope,
    image: &str,
    runner: Runner,
    architecture: Architecture,
) -> CloudResult<()> {
    let Some(ecr) = image::ecr_image(image).filter(|e| e.account == scope.account && e.region == clients.region) else {
        return Ok(());
    };
    let id = match &ecr.reference {
        ImageReference::Tag(tag) => ImageIdentifier::builder().image_tag(tag).build(),
        ImageReference::Digest(digest) => ImageIdentifier::builder().image_digest(digest).build(),
    };
    let found = clients
        .ecr
        .batch_get_image()
        .registry_id(&ecr.account)
        .repository_name(&ecr.repository)
        .image_ids(id)
        .set_accepted_media_types(Some(image::MANIFEST_TYPES.map(str::to_owned).to_vec()))
        .send()
        .await
        .map_err(map_sdk(SERVICE, "BatchGetImage"))
        .map_err(|e| if e.is_not_found() { not_runnable(format!("{image}: {}", e.message)) } else { e })?;
    let Some(manifest) = found.images().first() else {
        let why = found.failures().first().and_then(|f| f.failure_reason()).unwrap_or("not found");
        return Err(not_runnable(format!("{image} is not in ECR ({why}); push it, or fix the reference")));
    };
    let media_type = manifest.image_manifest_media_type();
    let text = manifest.image_manifest().unwrap_or_default();
    match image::unrunnable(image, media_type, text, runner, architecture) {
        Some(why) => Err(not_runnable(why)),
        None => Ok(()),
    }
}
