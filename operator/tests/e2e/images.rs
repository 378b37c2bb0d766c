//! Images that cannot run are refused before a variant runs them: the manifest ECR holds is read
//! against what Lambda (no image index) and Fargate (the task's platform in the index) accept,
//! and a refused image is looked at again until a runnable one is pushed.

use crate::support::*;

#[tokio::test]
async fn images_that_cannot_run_are_refused_until_a_runnable_one_is_pushed() {
    let (stack, _client, ns, api) = setup("images").await;
    let _logs = stack.logs_on_failure();
    let aws = Aws::new(stack).await;
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk_config().await);
    let repository = ns.name.clone();
    ecr.create_repository().repository_name(&repository).send().await.expect("repository");
    let image = format!("123456789012.dkr.ecr.us-west-1.amazonaws.com/{repository}");
    // Conditions are read by tenants: the account id is masked in them.
    let shown = image.replace("123456789012", "<account>");
    push(&ecr, &repository, "1.0", &["amd64", "arm64"]).await;
    let operator = Operator::start(stack, &ns.name, 2).await;

    // Lambda runs no image index: the function is refused, naming the image and the architecture.
    let spec = json!({"image": format!("{image}:1.0"), "function": {}, "container": {"loadBalancer": {"plainHttp": true}}, "table": {"deletionPolicy": "Delete"}});
    api.create(&PostParams::default(), &blog("img", spec)).await.expect("create");
    let bd = wait_for(&api, "img", "FunctionReady ImageNotRunnable", |bd| {
        reason_of(bd, "FunctionReady").0 == "ImageNotRunnable"
    })
    .await;
    let (_, message) = reason_of(&bd, "FunctionReady");
    assert!(message.contains(&format!("{shown}:1.0 is a multi-architecture image index (amd64, arm64)")), "{message}");
    assert!(message.contains("spec.function.image to its arm64 image"), "{message}");
    let names = names_of(&bd);
    let functions = aws.lambda.get_function().function_name(&names.function).send().await;
    assert!(functions.is_err(), "no function was made from the index");

    // The function gets the single-architecture image; Fargate picks arm64 out of the index.
    push(&ecr, &repository, "1.0-arm64", &[]).await;
    let patch = json!({"spec": {"function": {"image": format!("{image}:1.0-arm64")}}});
    api.patch("img", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    wait_for(&api, "img", "Ready with the arm64 image", ready).await;

    // x86_64 tasks on an image not pushed yet: refused, then taken as soon as it is pushed.
    let patch = json!({"spec": {"container": {"architecture": "x86_64", "image": format!("{image}:amd")}}});
    api.patch("img", &PatchParams::default(), &Patch::Merge(patch)).await.expect("patch");
    let bd = wait_for(&api, "img", "ContainerReady ImageNotRunnable", |bd| {
        reason_of(bd, "ContainerReady").0 == "ImageNotRunnable"
    })
    .await;
    let (_, message) = reason_of(&bd, "ContainerReady");
    assert!(message.contains(&format!("{shown}:amd is not in ECR")), "{message}");
    push(&ecr, &repository, "amd", &["arm64"]).await;
    let bd = wait_for(&api, "img", "ContainerReady ImageNotRunnable (no amd64)", |bd| {
        reason_of(bd, "ContainerReady").1.contains("has no amd64 image (its index holds arm64)")
    })
    .await;
    assert!(!ready(&bd));
    // A push over the same tag: no spec change, the next look finds it.
    push(&ecr, &repository, "amd", &["amd64"]).await;
    wait_for(&api, "img", "Ready on x86_64 tasks", ready).await;
    let service = aws.ecs.describe_services().cluster(&names.cluster).services(&names.service).send().await;
    let revision = service.expect("service").services()[0].task_definition().expect("revision").to_owned();
    let definition = aws.ecs.describe_task_definition().task_definition(&revision).send().await.expect("definition");
    let platform = definition.task_definition().and_then(|d| d.runtime_platform()).and_then(|p| p.cpu_architecture());
    assert_eq!(platform.map(|a| a.as_str()), Some("X86_64"));

    api.delete("img", &DeleteParams::default()).await.expect("delete");
    wait_gone(&api, "img").await;
    operator.kill().await;
}
