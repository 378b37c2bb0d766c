//! The validating admission webhook on the real local apiserver: `kubectl apply` of a bad spec is
//! refused with every broken rule named, a good one is admitted, and with the webhook down under
//! `failurePolicy: Ignore` a bad spec is admitted and then caught by the reconciler.

use std::process::Command;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::support::*;

/// A CA and a serving certificate for 127.0.0.1 in `dir` (`ca.crt`, `tls.crt`, `tls.key`).
pub(crate) fn certificates(dir: &std::path::Path) -> Vec<u8> {
    std::fs::create_dir_all(dir).expect("cert dir");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=webhook-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
    ]);
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext",
        "-out",
        "tls.crt",
    ]);
    std::fs::read(dir.join("ca.crt")).expect("ca.crt")
}

pub(crate) fn webhook_config(
    name: &str,
    namespace: &str,
    port: u16,
    ca: &[u8],
    policy: &str,
) -> ValidatingWebhookConfiguration {
    ValidatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta { name: Some(name.to_owned()), ..Default::default() },
        webhooks: Some(vec![ValidatingWebhook {
            name: "validate.blogs.serverless.dev".into(),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            failure_policy: Some(policy.into()),
            timeout_seconds: Some(5),
            client_config: WebhookClientConfig {
                url: Some(format!("https://127.0.0.1:{port}/validate")),
                ca_bundle: Some(ByteString(ca.to_vec())),
                ..Default::default()
            },
            // Only this test's namespace: the other tests run their own operators.
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("blog-webhook-test".to_owned(), namespace.to_owned())])),
                ..Default::default()
            }),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec!["blogs.serverless.dev".into()]),
                api_versions: Some(vec!["v1alpha1".into()]),
                operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
                resources: Some(vec!["blogdeployments".into()]),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
    }
}

/// `kubectl apply` of one BlogDeployment: (accepted, what kubectl printed).
pub(crate) fn kubectl_apply(stack: &Stack, namespace: &str, name: &str, spec: &str) -> (bool, String) {
    let manifest = format!(
        "apiVersion: blogs.serverless.dev/v1alpha1\nkind: BlogDeployment\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}"
    );
    let out = kubectl_apply_stdin(stack, &manifest);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let said = said.lines().filter(|l| !l.contains("version difference")).collect::<Vec<_>>().join("\n");
    (out.status.success(), said)
}

#[tokio::test]
async fn kubectl_apply_meets_the_reconcilers_own_validation() {
    use k8s_openapi::api::core::v1::Namespace;
    let (stack, client, ns, api) = setup("admit").await;
    let _logs = stack.logs_on_failure();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let label = json!({"metadata": {"labels": {"blog-webhook-test": ns.name}}});
    namespaces.patch(&ns.name, &PatchParams::default(), &Patch::Merge(label)).await.expect("label");
    let dir = stack.dir.join(format!("webhook-{}", ns.name));
    let ca = certificates(&dir);
    let port = free_port();
    let webhook = [
        "--webhook-addr".to_owned(),
        format!("127.0.0.1:{port}"),
        "--webhook-cert-dir".to_owned(),
        dir.display().to_string(),
    ];
    let webhook: Vec<&str> = webhook.iter().map(String::as_str).collect();
    let operator = Operator::start_with(stack, &ns.name, 60, &webhook, &stack.kubeconfig).await;
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let config_name = format!("blog-operator-{}", ns.name);
    configs
        .create(&PostParams::default(), &webhook_config(&config_name, &ns.name, port, &ca, "Fail"))
        .await
        .expect("config");

    // Three bad specs, each refused at apply with every broken rule of its kind named.
    let bad = [
        (
            "pair",
            "  image: Not An Image\n  container: {cpu: 1024, memoryMiB: 512}\n",
            vec!["spec.image", "memoryMiB 512"],
        ),
        (
            "bounds",
            "  image: blog:1\n  function: {}\n  allocation: {minMemoryMiB: 2048, maxMemoryMiB: 1024}\n",
            vec!["minMemoryMiB 2048"],
        ),
        ("nothing", "  image: blog:1\n  function: {enabled: false}\n", vec!["enable at least one variant"]),
    ];
    for (name, spec, fields) in &bad {
        let deadline = Instant::now() + Duration::from_secs(20);
        let (accepted, said) = loop {
            let (accepted, said) = kubectl_apply(stack, &ns.name, name, spec);
            // The apiserver may take a moment to see a new webhook configuration.
            if !accepted || Instant::now() > deadline {
                break (accepted, said);
            }
            api.delete(name, &DeleteParams::default()).await.ok();
            wait_gone(&api, name).await;
        };
        println!("$ kubectl apply -f {name}.yaml\n{said}");
        assert!(!accepted, "{name} was admitted: {said}");
        assert!(said.contains("denied the request: InvalidSpec"), "{said}");
        for field in fields {
            assert!(said.contains(field), "{field} in {said}");
        }
    }
    // Connections held open without a TLS handshake (more than the 64 served at once) are closed
    // by the webhook after its handshake timeout instead of piling up in the operator's memory.
    let mut idle = Vec::new();
    for _ in 0..70 {
        idle.push(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect"));
    }
    for mut stream in idle {
        use tokio::io::AsyncReadExt;
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "an idle connection is closed by the webhook: {read:?}");
    }
    // A good one passes, and the operator's own updates (finalizer, status) go through.
    let (accepted, said) = kubectl_apply(stack, &ns.name, "good", "  image: blog:1\n  function: {}\n");
    assert!(accepted, "{said}");
    wait_for(&api, "good", "Ready", ready).await;

    // The webhook down, failurePolicy Ignore: admitted, and the reconciler still refuses it.
    operator.kill().await;
    let mut current = configs.get(&config_name).await.expect("config");
    if let Some(hook) = current.webhooks.as_mut().and_then(|w| w.first_mut()) {
        hook.failure_policy = Some("Ignore".into());
    }
    configs.replace(&config_name, &PostParams::default(), &current).await.expect("Ignore");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (accepted, said) = kubectl_apply(stack, &ns.name, "pair", bad[0].1);
        if accepted {
            break;
        }
        assert!(Instant::now() < deadline, "still refused with the webhook down: {said}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let operator = Operator::start(stack, &ns.name, 60).await;
    wait_for(&api, "pair", "InvalidSpec from the reconciler", |bd| {
        condition(bd, "Ready").is_some_and(|c| c.reason == "InvalidSpec")
    })
    .await;
    configs.delete(&config_name, &DeleteParams::default()).await.expect("delete config");
    for name in ["good", "pair"] {
        api.delete(name, &DeleteParams::default()).await.expect("delete");
        wait_gone(&api, name).await;
    }
    operator.kill().await;
}
