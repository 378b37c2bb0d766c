//! Settings read once from the environment, with the defaults a container and a Lambda need.

use std::path::PathBuf;
use std::time::Duration;

/// How the service runs; see the README for every variable. Its `Debug` leaves the token out.
#[derive(Clone)]
pub struct Config {
    /// `PORT`: where the container server listens (default 8080).
    pub port: u16,
    /// `TABLE_NAME`: DynamoDB table; when unset, the embedded store is used.
    pub table_name: Option<String>,
    /// `TABLE_WRITE_REGION`: the region whose table (of the same name, a global table's replica)
    /// takes the writes; reads stay in the service's own region.
    pub table_write_region: Option<String>,
    /// `DATA_DIR`: the embedded store's folder (default `./data`, `/tmp/blog-data` in Lambda).
    pub data_dir: PathBuf,
    /// `WRITE_TOKEN`: when set, writes need `Authorization: Bearer <token>`.
    pub write_token: Option<String>,
    /// `WRITE_TOKEN_SECRET_ARN`: a Secrets Manager secret holding the write token, read once at
    /// start (the function variant; the container variant gets `WRITE_TOKEN` from ECS `secrets`).
    pub write_token_secret_arn: Option<String>,
    /// `FUNCTIONS_URL` / `CONTAINERS_URL`: the two variants' APIs, offered by the HTML page.
    pub functions_url: Option<String>,
    pub containers_url: Option<String>,
    /// Origins allowed by CORS: those of the two URLs above plus `CORS_ALLOWED_ORIGINS` (comma-separated).
    pub cors_origins: Vec<String>,
    /// `CORS_ALLOWED_ORIGINS=*` allows every origin.
    pub cors_any_origin: bool,
    /// `REQUEST_TIMEOUT_SECS` (default 10).
    pub request_timeout: Duration,
    /// `MAX_REQUEST_BYTES` (default 1 MiB: a body of 64 Ki characters even when each is a
    /// JSON-escaped surrogate pair, 12 bytes).
    pub max_request_bytes: usize,
    /// `LOG_FORMAT=text` for human-readable logs; JSON otherwise.
    pub json_logs: bool,
    /// Set when `AWS_LAMBDA_RUNTIME_API` says we run inside Lambda.
    pub in_lambda: bool,
    /// Readers' beacons, when a placement decides from them (`READERS_NAMESPACE` and
    /// `READER_CANDIDATES` both set).
    pub readers: Option<Readers>,
    /// `BEACONS_PER_SECOND`: beacons this process takes a second (default 20, bursts of twice as
    /// many); more are answered 429.
    pub beacons_per_second: u32,
    /// `BEACON_FLUSH_SECS`: how long beacons are added up before they are written (default 60).
    pub beacon_flush: Duration,
}

/// Where readers' pages time their round trips and where the service writes what they measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readers {
    /// `READERS_NAMESPACE`: the CloudWatch namespace of the aggregates.
    pub namespace: String,
    /// `READERS_REGION`: the region whose CloudWatch takes them (the placement's home).
    pub region: Option<String>,
    /// `READER_CANDIDATES`: the candidate regions, comma-separated.
    pub candidates: Vec<String>,
    /// `READER_PROBE_URL`: what the page times in each candidate, `{region}` standing for it.
    pub probe_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

impl Config {
    /// Reads the process environment.
    #[must_use]
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any name → value lookup (tests pass a map). Empty values
    /// count as unset; unparsable numbers fall back to the default with a warning.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let number = |name: &str, default: u64| match var(name) {
            None => default,
            Some(text) => text.parse().unwrap_or_else(|_| {
                tracing::warn!(variable = name, value = %text, default, "not a number; using the default");
                default
            }),
        };
        let in_lambda = var("AWS_LAMBDA_RUNTIME_API").is_some();
        let functions_url = var("FUNCTIONS_URL");
        let containers_url = var("CONTAINERS_URL");
        let extra_origins = var("CORS_ALLOWED_ORIGINS").unwrap_or_default();
        let cors_any_origin = extra_origins.split(',').any(|o| o.trim() == "*");
        let cors_origins = [functions_url.as_deref(), containers_url.as_deref()]
            .into_iter()
            .flatten()
            .chain(extra_origins.split(','))
            .filter_map(origin_of)
            .collect();
        let default_dir = if in_lambda { "/tmp/blog-data" } else { "data" };
        Self {
            port: u16::try_from(number("PORT", 8080)).unwrap_or(8080),
            table_name: var("TABLE_NAME"),
            table_write_region: var("TABLE_WRITE_REGION"),
            data_dir: PathBuf::from(var("DATA_DIR").unwrap_or_else(|| default_dir.to_owned())),
            write_token: var("WRITE_TOKEN"),
            write_token_secret_arn: var(blog_aws::WRITE_TOKEN_SECRET_ARN),
            functions_url,
            containers_url,
            cors_origins,
            cors_any_origin,
            request_timeout: Duration::from_secs(number("REQUEST_TIMEOUT_SECS", 10)),
            max_request_bytes: usize::try_from(number("MAX_REQUEST_BYTES", 1024 * 1024)).unwrap_or(1024 * 1024),
            json_logs: var("LOG_FORMAT").is_none_or(|f| f != "text"),
            in_lambda,
            readers: readers(&var),
            beacons_per_second: u32::try_from(number("BEACONS_PER_SECOND", 20)).unwrap_or(20),
            beacon_flush: Duration::from_secs(number("BEACON_FLUSH_SECS", 60)),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("table_name", &self.table_name)
            .field("table_write_region", &self.table_write_region)
            .field("data_dir", &self.data_dir)
            .field("write_token", &self.write_token.as_ref().map(|_| "<redacted>"))
            .field("write_token_secret_arn", &self.write_token_secret_arn)
            .field("functions_url", &self.functions_url)
            .field("containers_url", &self.containers_url)
            .field("cors_origins", &self.cors_origins)
            .field("cors_any_origin", &self.cors_any_origin)
            .field("request_timeout", &self.request_timeout)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("json_logs", &self.json_logs)
            .field("in_lambda", &self.in_lambda)
            .field("readers", &self.readers)
            .field("beacons_per_second", &self.beacons_per_second)
            .field("beacon_flush", &self.beacon_flush)
            .finish()
    }
}

/// Readers' beacons from the environment: on when a namespace and at least one candidate are set.
fn readers(var: &dyn Fn(&str) -> Option<String>) -> Option<Readers> {
    let namespace = var("READERS_NAMESPACE")?;
    let candidates: Vec<String> =
        var("READER_CANDIDATES")?.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect();
    let probe_url =
        var("READER_PROBE_URL").unwrap_or_else(|| "https://dynamodb.{region}.amazonaws.com/ping".to_owned());
    (!candidates.is_empty()).then(|| Readers { namespace, region: var("READERS_REGION"), candidates, probe_url })
}

/// The origin (`scheme://host[:port]`) of a URL, as browsers send it in `Origin`.
fn origin_of(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    if host.is_empty() || !matches!(scheme, "http" | "https") {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn cors_origins_come_from_both_urls_and_the_extra_list() {
        let c = config(&[
            ("FUNCTIONS_URL", "https://abc.execute-api.us-west-1.amazonaws.com/"),
            ("CONTAINERS_URL", "http://demo-1.us-west-1.elb.amazonaws.com/blogs"),
            ("CORS_ALLOWED_ORIGINS", "http://localhost:3000, not a url"),
        ]);
        assert_eq!(
            c.cors_origins,
            [
                "https://abc.execute-api.us-west-1.amazonaws.com",
                "http://demo-1.us-west-1.elb.amazonaws.com",
                "http://localhost:3000"
            ]
        );
        assert!(!c.cors_any_origin);
        assert!(config(&[("CORS_ALLOWED_ORIGINS", "*")]).cors_any_origin);
    }

    #[test]
    fn defaults_differ_inside_lambda() {
        let container = config(&[]);
        assert_eq!((container.port, container.data_dir.as_path()), (8080, std::path::Path::new("data")));
        let lambda = config(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"), ("PORT", "nope")]);
        assert!(lambda.in_lambda);
        assert_eq!(lambda.data_dir, PathBuf::from("/tmp/blog-data"));
        assert_eq!(lambda.port, 8080);
    }

    #[test]
    fn beacons_are_on_with_a_namespace_and_candidates() {
        assert_eq!(config(&[("READERS_NAMESPACE", "BlogReaders/x")]).readers, None);
        let on = config(&[("READERS_NAMESPACE", "BlogReaders/x"), ("READER_CANDIDATES", "us-west-1, eu-central-1,")]);
        let readers = on.readers.expect("on");
        assert_eq!(readers.candidates, ["us-west-1", "eu-central-1"]);
        assert_eq!(readers.probe_url, "https://dynamodb.{region}.amazonaws.com/ping");
        assert_eq!((on.beacons_per_second, on.beacon_flush), (20, Duration::from_secs(60)));
    }
}
