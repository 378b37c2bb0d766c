//! The OCI images `scripts/images.sh` writes (`make test` packs its debug binaries into
//! `target/test-images` before any test starts; `make images` the release ones into `target/images`;
//! `BLOG_TEST_IMAGES` names another folder): each layout's amd64 image says linux/amd64, runs as
//! 65532 and starts its binary; and the amd64 binary unpacked from its layers runs on the libraries
//! the image carries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

fn layout(name: &str) -> PathBuf {
    let images = std::env::var_os("BLOG_TEST_IMAGES")
        .map_or_else(|| blog_tests::workspace_root().join("target/test-images"), PathBuf::from);
    let dir = images.join(name);
    assert!(
        dir.join("index.json").is_file(),
        "{} is missing: run `scripts/images.sh --profile dev` (make test does)",
        dir.display()
    );
    dir
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').expect("algorithm:hex");
    layout.join("blobs").join(algorithm).join(hex)
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read blob")).expect("JSON blob")
}

/// The manifest of the image tagged `tag`, and its config.
fn image(layout: &Path, tag: &str) -> (Value, Value) {
    let index = json(&layout.join("index.json"));
    let entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} image in {}: {index}", layout.display()));
    let manifest = json(&blob(layout, entry["digest"].as_str().expect("digest")));
    let config = json(&blob(layout, manifest["config"]["digest"].as_str().expect("config digest")));
    (manifest, config)
}

/// Unpacks every layer of a manifest into a fresh folder (the image's root filesystem).
fn unpack(layout: &Path, manifest: &Value, into: &Path) {
    for layer in manifest["layers"].as_array().expect("layers") {
        let tarball = blob(layout, layer["digest"].as_str().expect("layer digest"));
        let status = Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(into).status().expect("run tar");
        assert!(status.success(), "could not unpack {}", tarball.display());
    }
}

fn checked_config(name: &str) -> (PathBuf, Value) {
    let layout = layout(name);
    let (manifest, config) = image(&layout, "amd64");
    assert_eq!((config["architecture"].as_str(), config["os"].as_str()), (Some("amd64"), Some("linux")), "{config}");
    assert_eq!(config["config"]["User"], "65532:65532", "{config}");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!([format!("/usr/local/bin/{name}")]));
    (layout, manifest)
}

fn root_of(layout: &Path, manifest: &Value, name: &str) -> PathBuf {
    let root = blog_tests::workspace_root().join(format!("target/test-state/image-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("root folder");
    unpack(layout, manifest, &root);
    assert!(root.join("etc/ssl/certs/ca-certificates.crt").is_file(), "CA roots in the image");
    root
}

/// The image's binary, started through the image's own dynamic loader and libraries, so the test
/// also proves the image carries everything the binary loads.
fn command_in(root: &Path, name: &str) -> Command {
    let loader = root.join("lib64/ld-linux-x86-64.so.2");
    assert!(loader.is_file(), "the image carries glibc's loader");
    let mut command = Command::new(loader);
    command.arg("--library-path").arg(root.join("lib/x86_64-linux-gnu")).arg(root.join("usr/local/bin").join(name));
    command
}

#[test]
fn the_operator_image_is_amd64_non_root_and_its_binary_runs() {
    let (layout, manifest) = checked_config("blog-operator");
    let root = root_of(&layout, &manifest, "blog-operator");
    let out = command_in(&root, "blog-operator").arg("--help").output().expect("run it");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("--namespace"), "{out:?}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_blog_service_image_is_amd64_non_root_and_its_binary_serves() {
    let (layout, manifest) = checked_config("blog-service");
    let root = root_of(&layout, &manifest, "blog-service");
    let port = blog_tests::free_port();
    let mut server = command_in(&root, "blog-service")
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATA_DIR", root.join("data"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start it");
    let answered = blog_tests::answers_ok_within(&format!("127.0.0.1:{port}"), "/healthz", Duration::from_secs(20));
    let _ = server.kill();
    let _ = server.wait();
    assert!(answered, "the image's blog-service did not answer /healthz");
    let _ = std::fs::remove_dir_all(root);
}
