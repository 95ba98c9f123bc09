//! A connection to one repository of one registry: protocol, credentials, retries, errors.
//!
//! oci-client does the distribution protocol and the bearer-token dance; this module decides
//! what it cannot: plain HTTP only where docker allows it (loopback, or registries the user
//! names), Docker Hub's API host, the credentials docker or podman stored, which failures are
//! worth retrying, and errors that say which registry refused and where credentials were
//! looked for.

use super::credentials::{self, Lookup, Places};
use super::RegistryOptions;
use crate::error::{BuildError, Result};
use oci2bin_rt::oci::{media, Digest, Reference};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use std::future::Future;
use std::time::Duration;

/// Every manifest type accepted, OCI and Docker: registries return 404 for an OCI manifest
/// when the request does not list its type.
pub const ACCEPT: &[&str] = &[
    media::OCI_INDEX,
    media::OCI_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
    media::DOCKER_MANIFEST,
];

/// Total attempts for a request that fails transiently.
pub const ATTEMPTS: u32 = 5;

/// The delay before attempt `attempt` (2, 3, ...): 0.5 s, doubling.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << attempt.saturating_sub(2).min(6))
}

/// Whether `registry` (`host[:port]`) is spoken to over plain HTTP: loopback addresses always
/// (docker's default insecure range), other hosts only when listed in `insecure` as `HOST:PORT`
/// or `HOST`.
pub fn plain_http(registry: &str, insecure: &[String]) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    let loopback = host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback
        || insecure.iter().any(|i| {
            let i = i.trim_start_matches("http://").trim_end_matches('/');
            i == registry || i == host
        })
}

/// The host that serves the API of `registry`: Docker Hub's is not `docker.io`.
pub fn api_host(registry: &str) -> &str {
    if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// Whether an error is worth retrying: the network, a server error, rate limiting.
pub fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => {
            r.is_timeout() || r.is_connect() || r.is_request() || r.is_body() || r.is_decode()
        }
        OciDistributionError::IoError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == OciErrorCode::Toomanyrequests),
        _ => false,
    }
}

/// Whether an error means the registry cannot be reached (no such host, nothing listening,
/// TLS refused) rather than a request that failed on the way.
fn is_unreachable(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => r.is_connect(),
        _ => false,
    }
}

/// The innermost cause of `e`, which names the actual problem ("Name or service not known").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Whether an error is the registry refusing access.
fn is_refusal(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        _ => false,
    }
}

/// Whether an error is the registry not knowing the repository, tag or manifest.
fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown
            )
        }),
        _ => false,
    }
}

/// A client for one repository.
pub struct Connection {
    runtime: tokio::runtime::Runtime,
    client: oci_client::Client,
    /// The repository, as oci-client names it (tag or digest are replaced per request).
    repo: oci_client::Reference,
    auth: RegistryAuth,
    lookup: Lookup,
    logged_in: bool,
    registry: String,
    reference: String,
}

impl Connection {
    /// Prepares a connection for `reference`: finds credentials, picks the protocol. Makes no
    /// request yet.
    pub fn new(reference: &Reference, options: &RegistryOptions) -> Result<Self> {
        let lookup = match &options.credentials {
            Some(c) => Lookup::explicit(c.clone()),
            None => credentials::lookup(
                &reference.registry,
                &reference.repository,
                &Places::from_env(),
            )?,
        };
        let auth = match &lookup.found {
            Some((c, _)) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        };
        let host = api_host(&reference.registry).to_string();
        let protocol = if plain_http(&reference.registry, &options.insecure) {
            ClientProtocol::HttpsExcept(vec![host.clone()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            // Index selection is ours (for the cargo target, not this host).
            platform_resolver: None,
            // Name lookup and TCP connect: a registry that does not answer in 5 s is reported
            // as unreachable rather than waited for.
            connect_timeout: Some(Duration::from_secs(5)),
            // A stalled transfer becomes an error, which is retried and resumed.
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("oci2bin/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| BuildError::Registry {
            action: "setting up an HTTP client for".into(),
            registry: reference.registry.clone(),
            reference: reference.to_string(),
            source: Box::new(e),
        })?;
        // Named by its API host (not as a "mirror", which would add an `ns` query parameter).
        let repo = oci_client::Reference::with_tag(
            host,
            reference.repository.clone(),
            reference.tag.clone().unwrap_or_else(|| "latest".into()),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BuildError::Registry {
                action: "starting the async runtime to pull".into(),
                registry: reference.registry.clone(),
                reference: reference.to_string(),
                source: Box::new(e),
            })?;
        Ok(Connection {
            runtime,
            client,
            repo,
            auth,
            lookup,
            logged_in: false,
            registry: reference.registry.clone(),
            reference: reference.to_string(),
        })
    }

    /// Runs a future on this connection's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The repository as oci-client names it (blob requests only use its repository).
    pub fn repo(&self) -> &oci_client::Reference {
        &self.repo
    }

    /// The oci-client client.
    pub fn client(&self) -> &oci_client::Client {
        &self.client
    }

    /// Authenticates once, before the first request (anonymously when no credentials were
    /// found), so that refused credentials are reported as such rather than as a 401 on
    /// whatever request came first.
    pub fn login(&mut self) -> Result<()> {
        if self.logged_in {
            return Ok(());
        }
        // The first request: a registry that cannot be reached at all is reported at once.
        let r = self.block_on(
            self.client
                .auth(&self.repo, &self.auth, RegistryOperation::Pull),
        );
        match r {
            Err(e) if is_unreachable(&e) => return Err(self.unreachable(&e)),
            Err(_) => {
                self.block_on(self.retrying("authenticating for", || {
                    self.client
                        .auth(&self.repo, &self.auth, RegistryOperation::Pull)
                }))?;
            }
            Ok(_) => {}
        }
        self.logged_in = true;
        Ok(())
    }

    /// The digest the reference's tag points to now (a HEAD request; a GET when the registry
    /// sends no digest header).
    pub fn tag_digest(&self) -> Result<Digest> {
        let tag = self.repo.tag().unwrap_or("latest");
        let action = format!("resolving tag {tag:?} of");
        let digest = self.block_on(self.retrying(&action, || {
            self.client.fetch_manifest_digest(&self.repo, &self.auth)
        }))?;
        Digest::parse(&digest).map_err(BuildError::digest(format!(
            "the digest registry {} gave for tag {tag:?}",
            self.registry
        )))
    }

    /// Fetches manifest or index `digest` (verified against it by oci-client and again by the
    /// caller when storing).
    pub fn manifest(&self, digest: &Digest) -> Result<Vec<u8>> {
        let r = self.repo.clone_with_digest(digest.to_string());
        let action = format!("fetching manifest {digest} of");
        let (bytes, _) = self.block_on(self.retrying(&action, || {
            self.client.pull_manifest_raw(&r, &self.auth, ACCEPT)
        }))?;
        Ok(bytes.to_vec())
    }

    /// Runs `op` until it succeeds, fails for good, or has failed transiently [`ATTEMPTS`]
    /// times, waiting [`backoff`] in between.
    pub async fn retrying<T, F, Fut>(&self, action: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if is_transient(&e) && attempt < ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(self.error(action, e)),
            }
        }
    }

    /// Turns a client error into a build error naming the registry and reference; refusals
    /// say which credentials were sent or where none were found.
    pub fn error(&self, action: &str, e: OciDistributionError) -> BuildError {
        if is_refusal(&e) {
            return BuildError::RegistryAuth {
                registry: self.registry.clone(),
                reference: self.reference.clone(),
                detail: e.to_string(),
                credentials: self.lookup.describe(),
            };
        }
        if is_not_found(&e) {
            return BuildError::RegistryNotFound {
                registry: self.registry.clone(),
                reference: self.reference.clone(),
                detail: format!("{action} it: {e}"),
            };
        }
        BuildError::Registry {
            action: action.to_string(),
            registry: self.registry.clone(),
            reference: self.reference.clone(),
            source: Box::new(e),
        }
    }

    /// The error for a registry that cannot be reached.
    fn unreachable(&self, e: &OciDistributionError) -> BuildError {
        BuildError::RegistryUnreachable {
            registry: self.registry.clone(),
            reference: self.reference.clone(),
            detail: root_cause(e),
        }
    }

    /// An error for a failure that is not the client's (a stream that broke, a bad blob).
    pub fn other_error(&self, action: &str, detail: String) -> BuildError {
        BuildError::Registry {
            action: action.to_string(),
            registry: self.registry.clone(),
            reference: self.reference.clone(),
            source: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_listed_registries() {
        for r in [
            "localhost:5000",
            "localhost",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(plain_http(r, &[]), "{r}");
        }
        for r in [
            "docker.io",
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com:5000",
        ] {
            assert!(!plain_http(r, &[]), "{r}");
        }
        let insecure = vec!["reg.lan:5000".to_string(), "10.0.0.1".to_string()];
        assert!(plain_http("reg.lan:5000", &insecure));
        assert!(!plain_http("reg.lan:5001", &insecure));
        assert!(plain_http("10.0.0.1:5000", &insecure));
    }

    #[test]
    fn docker_hub_is_served_from_registry_1() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn retries_server_errors_not_refusals() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: "m".into(),
        };
        assert!(is_transient(&server(503)));
        assert!(is_transient(&server(429)));
        assert!(!is_transient(&server(404)));
        assert!(!is_transient(&server(401)));
        assert!(is_refusal(&server(403)));
        assert!(is_not_found(&server(404)) && !is_transient(&server(404)));
        let unauthorized = OciDistributionError::UnauthorizedError { url: "u".into() };
        assert!(is_refusal(&unauthorized) && !is_transient(&unauthorized));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_secs(2));
    }
}
