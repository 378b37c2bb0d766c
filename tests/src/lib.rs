//! Test support: the AWS emulator and the local stack (kube-apiserver + etcd + moto), unique names
//! and namespaces per test, and log tails when a test fails.
//!
//! Servers are started once per test process and stop when that process ends (a watchdog follows
//! the process id), so a crashed or killed test run leaves nothing behind. A stack already up — say
//! from `make test`, which exports `BLOG_STACK_DIR` — is joined instead of started.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod dashboard;

/// The workspace's root folder: the nearest folder above the running test's package that holds
/// `Cargo.lock`. Looked up at run time (cargo sets `CARGO_MANIFEST_DIR` for the test process), not
/// baked in at compile time: CI shares one target folder between clones, and a compiled-in path
/// would point the tests at another clone's files.
#[must_use]
pub fn workspace_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    package.ancestors().find(|dir| dir.join("Cargo.lock").is_file()).map_or(package.clone(), Path::to_path_buf)
}

fn local_stack_script() -> PathBuf {
    workspace_root().join("scripts/local-stack.sh")
}

/// The path of a tool from `scripts/tools.sh` (`kubectl`, `helm`, `lua`): PATH first, otherwise the
/// cached copy. Never installs: the set-up step (`scripts/tools.sh install`, run by `make test`) did.
///
/// # Panics
/// When the tool cannot be had; the message says why.
#[must_use]
pub fn tool(name: &str) -> String {
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/tools.sh"))
        .arg(format!("{name}-path"))
        .output()
        .expect("run scripts/tools.sh");
    assert!(out.status.success(), "scripts/tools.sh {name}-path failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A free TCP port on loopback (the OS picks it).
///
/// # Panics
/// When no port can be bound on 127.0.0.1.
#[must_use]
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("bound address").port()
}

/// A name no other test (or earlier run) uses: `prefix-` and 8 random hex digits.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

/// A throwaway folder under `target/test-state`, kept after the run so logs can be read.
fn state_folder(kind: &str) -> PathBuf {
    let dir = workspace_root().join("target/test-state").join(format!("{kind}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create test state folder");
    dir
}

/// Whether `GET http://{addr}{path}` answers 200 within `timeout`, asking every 200 ms.
#[must_use]
pub fn answers_ok_within(addr: &str, path: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if http_status(addr, path) == Some(200) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The status code of `GET http://{addr}{path}`, over a plain socket: readiness probes need no client.
#[must_use]
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The last `lines` lines of a log file, or a note that it is missing.
#[must_use]
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("({}: {err})", path.display()),
    }
}

/// The moto AWS emulator on a free loopback port, one per test process.
pub struct Moto {
    pub endpoint: String,
    pub log: PathBuf,
}

impl Moto {
    /// The process's emulator: the local stack's when one is joined (`BLOG_STACK_DIR`), otherwise
    /// one started now.
    ///
    /// # Panics
    /// When moto cannot be installed or started: tests that need it fail loudly, never skip.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(|| {
            if let Some(stack) = Stack::joined() {
                return Moto { endpoint: stack.aws_endpoint.clone(), log: stack.dir.join("aws.log") };
            }
            Moto::start().unwrap_or_else(|err| panic!("cannot start the moto AWS emulator: {err:#}"))
        })
    }

    fn start() -> anyhow::Result<Moto> {
        let out = Command::new("bash").arg(local_stack_script()).arg("moto-path").stderr(Stdio::inherit()).output()?;
        if !out.status.success() {
            bail!("scripts/local-stack.sh moto-path failed");
        }
        let moto_server = PathBuf::from(String::from_utf8(out.stdout)?.trim());
        // moto_server's own python, running it with its EC2 tags looked up by id (the script says why).
        let python = moto_server.with_file_name("python");
        let launcher = workspace_root().join("scripts/moto-server.py");
        let dir = state_folder("moto");
        let log = dir.join("moto.log");
        for _ in 0..3 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            // A shell watchdog stops moto when this test process exits, however it exits.
            let script = format!(
                "\"$0\" \"$2\" -H 127.0.0.1 -p {port} >\"$1\" 2>&1 & m=$!; \
                 while kill -0 {owner} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null",
                owner = std::process::id()
            );
            Command::new("sh")
                .arg("-c")
                .arg(&script)
                .arg(&python)
                .arg(&log)
                .arg(&launcher)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("spawn moto_server")?;
            if answers_ok_within(&addr, "/moto-api/data.json", Duration::from_secs(60)) {
                return Ok(Moto { endpoint: format!("http://{addr}"), log });
            }
        }
        bail!("moto_server did not answer; its log:\n{}", tail(&log, 30))
    }

    /// An AWS configuration pointed at this emulator, with fake credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_for(&self.endpoint).await
    }
}

/// An AWS configuration for an emulator endpoint: fake static credentials, region us-west-1.
pub async fn sdk_config_for(endpoint: &str) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-west-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// A local stack: kube-apiserver + etcd + an AWS emulator, from `scripts/local-stack.sh`.
pub struct Stack {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub aws_endpoint: String,
    /// Where CloudWatch is served: the stack's realism proxy in front of moto (which cannot compute
    /// percentiles), else `aws_endpoint`.
    pub cloudwatch_endpoint: String,
    /// Which emulator serves `aws_endpoint`: `moto` (the default) or `fakecloud`
    /// (`BLOG_AWS_EMULATOR=fakecloud` when the stack came up).
    pub emulator: String,
}

impl Stack {
    /// The process's stack: the one named by `BLOG_STACK_DIR` when it is up, otherwise one started
    /// now in a fresh folder and stopped when this process exits.
    ///
    /// # Panics
    /// When the stack cannot be brought up; the message carries the script's output.
    pub fn shared() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| {
            Stack::joined().unwrap_or_else(|| Stack::start().unwrap_or_else(|err| panic!("local stack: {err:#}")))
        })
    }

    /// The stack `BLOG_STACK_DIR` names, if its processes are alive.
    fn joined() -> Option<Stack> {
        let dir = PathBuf::from(std::env::var_os("BLOG_STACK_DIR")?);
        let alive = Command::new("bash")
            .arg(local_stack_script())
            .arg("status")
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !alive {
            return None;
        }
        Stack::read(dir).ok()
    }

    fn start() -> anyhow::Result<Stack> {
        let dir = state_folder("stack");
        let status = Command::new("bash")
            .arg(local_stack_script())
            .arg("up")
            .arg(&dir)
            .arg("--owner-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("scripts/local-stack.sh up {} failed (see its messages above)", dir.display());
        }
        Stack::read(dir)
    }

    fn read(dir: PathBuf) -> anyhow::Result<Stack> {
        let port = std::fs::read_to_string(dir.join("aws.port")).context("aws.port")?;
        let emulator = std::fs::read_to_string(dir.join("aws.kind")).context("aws.kind")?.trim().to_owned();
        let aws_endpoint = format!("http://127.0.0.1:{}", port.trim());
        let cloudwatch_endpoint = std::fs::read_to_string(dir.join("cloudwatch.port"))
            .map_or_else(|_| aws_endpoint.clone(), |port| format!("http://127.0.0.1:{}", port.trim()));
        Ok(Stack { kubeconfig: dir.join("kubeconfig"), aws_endpoint, cloudwatch_endpoint, emulator, dir })
    }

    /// A client for this stack's kube-apiserver, as the admin. Make one per test: a client belongs
    /// to the tokio runtime that made it.
    ///
    /// # Errors
    /// When the kubeconfig cannot be read.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// An AWS configuration pointed at this stack's emulator.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_for(&self.aws_endpoint).await
    }

    /// `kubectl` (PATH or `scripts/tools.sh`, looked up once) pointed at this stack as the admin.
    #[must_use]
    pub fn kubectl(&self) -> Command {
        static KUBECTL: OnceLock<String> = OnceLock::new();
        let mut command = Command::new(KUBECTL.get_or_init(|| tool("kubectl")));
        command.env("KUBECONFIG", &self.kubeconfig);
        command
    }

    /// The tails of the stack's logs, for a failing test's output. (Each operator process a test
    /// starts writes its own log, which that test's guard prints.)
    #[must_use]
    pub fn log_tails(&self, lines: usize) -> String {
        ["kube-apiserver.log", "aws.log", "etcd.log"]
            .iter()
            .map(|name| format!("----- {name} (last {lines} lines) -----\n{}", tail(&self.dir.join(name), lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A guard that prints the log tails if the test panics while it is alive.
    #[must_use]
    pub fn logs_on_failure(&self) -> LogsOnFailure<'_> {
        LogsOnFailure(self)
    }
}

/// Prints the stack's log tails when dropped during a panic (a failing assertion).
pub struct LogsOnFailure<'a>(&'a Stack);

impl Drop for LogsOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed; stack state in {}\n{}", self.0.dir.display(), self.0.log_tails(40));
        }
    }
}

/// A namespace of its own for one test, labelled so leftovers are easy to find.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    /// Creates `prefix-xxxxxxxx`.
    ///
    /// # Errors
    /// When the API server refuses the namespace.
    pub async fn create(client: &kube::Client, prefix: &str) -> anyhow::Result<Self> {
        use k8s_openapi::api::core::v1::Namespace;
        let name = unique_name(prefix);
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"blogs.serverless.dev/test": "true"}}
        }))?;
        kube::Api::<Namespace>::all(client.clone()).create(&Default::default(), &namespace).await?;
        Ok(Self { name })
    }

    /// Deletes the namespace (the stack has no namespace controller, so its objects stay in etcd
    /// until the stack stops; names are unique, so that is harmless).
    ///
    /// # Errors
    /// When the API server refuses the deletion.
    pub async fn delete(self, client: &kube::Client) -> anyhow::Result<()> {
        use k8s_openapi::api::core::v1::Namespace;
        kube::Api::<Namespace>::all(client.clone()).delete(&self.name, &Default::default()).await?;
        Ok(())
    }
}

/// The realism and fault layer (`tests/aws-realism.py`, Python's standard library only) in front of
/// an emulator: one per test, so each test chooses its own faults and seed. Stopped when dropped.
pub struct Realism {
    /// What the operator uses as `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    child: std::process::Child,
}

impl Realism {
    /// Starts the proxy before `upstream` with `config` (see the script's header for the keys).
    ///
    /// # Errors
    /// When python3 cannot start the script or it does not come up within 10 s.
    pub fn start(upstream: &str, config: &serde_json::Value) -> anyhow::Result<Self> {
        let port_file = state_folder("realism").join(unique_name("port"));
        let child = Command::new("python3")
            .arg(workspace_root().join("tests/aws-realism.py"))
            .args([upstream, &config.to_string(), &port_file.display().to_string()])
            .stdin(Stdio::null())
            .spawn()
            .context("start tests/aws-realism.py")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                break port.trim().to_owned();
            }
            if Instant::now() > deadline {
                bail!("tests/aws-realism.py did not start in 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Ok(Self { endpoint: format!("http://127.0.0.1:{port}"), child })
    }

    /// Requests seen by operation and faults injected, from the proxy's own counts (not the
    /// operator's): `{"requests": {op: n}, "faults": {"kind op": n}, "uptime": seconds}`.
    ///
    /// # Panics
    /// When the proxy does not answer.
    #[must_use]
    pub fn stats(&self) -> serde_json::Value {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).expect("connect to the realism proxy");
        let request = format!("GET /__realism/stats HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("ask for stats");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read stats");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        serde_json::from_str(body).expect("stats are JSON")
    }
}

impl Drop for Realism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
