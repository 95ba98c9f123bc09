//! Finding the credentials `docker login` and `podman login` stored for a registry.
//!
//! Users have already logged in with docker or podman; asking them to do it again for oci2bin
//! would be pointless, so the same files are read: `$REGISTRY_AUTH_FILE`, docker's
//! `config.json` (`$DOCKER_CONFIG` or `~/.docker`), and podman's `auth.json` under
//! `$XDG_RUNTIME_DIR/containers` and `$XDG_CONFIG_HOME/containers`. In each, a `credHelpers`
//! entry for the registry wins, then an `auths` entry (`auth` = base64 `user:password`, or
//! `username` and `password`), then the `credsStore` helper. Helpers are the
//! `docker-credential-<name> get` programs docker uses. Every place consulted is remembered so
//! that a refusal can say where credentials were looked for.

use super::Credentials;
use crate::error::{BuildError, Result};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The outcome of a lookup.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The credentials found, and where.
    pub found: Option<(Credentials, String)>,
    /// Every place consulted, with what it held ("~/.docker/config.json: not found").
    pub consulted: Vec<String>,
}

impl Lookup {
    /// Credentials given explicitly (`--username` and `--password-stdin`).
    pub fn explicit(credentials: Credentials) -> Self {
        Lookup {
            found: Some((credentials, "--username/--password-stdin".into())),
            consulted: Vec::new(),
        }
    }

    /// For error messages: which credentials were sent, or where none were found.
    pub fn describe(&self) -> String {
        match &self.found {
            Some((c, from)) => format!(
                "the credentials of user {:?} from {from} were sent",
                c.username
            ),
            None if self.consulted.is_empty() => {
                "no credentials were sent, and there was nowhere to look for any".into()
            }
            None => format!(
                "no credentials were sent; looked in: {}",
                self.consulted.join("; ")
            ),
        }
    }
}

/// The files to read, in order of precedence.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// Auth files (docker `config.json` and podman `auth.json` share the format).
    pub files: Vec<PathBuf>,
}

impl Places {
    /// The places docker and podman use, from the environment.
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = var("HOME");
        let mut files = Vec::new();
        if let Some(f) = var("REGISTRY_AUTH_FILE") {
            files.push(f);
        }
        match (var("DOCKER_CONFIG"), &home) {
            (Some(d), _) => files.push(d.join("config.json")),
            (None, Some(h)) => files.push(h.join(".docker/config.json")),
            (None, None) => {}
        }
        if let Some(d) = var("XDG_RUNTIME_DIR") {
            files.push(d.join("containers/auth.json"));
        }
        match (var("XDG_CONFIG_HOME"), &home) {
            (Some(d), _) => files.push(d.join("containers/auth.json")),
            (None, Some(h)) => files.push(h.join(".config/containers/auth.json")),
            (None, None) => {}
        }
        Places { files }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Docker Hub's many names, folded into the one references use.
fn canonical_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        h => h,
    }
}

/// How well an auth-file key matches `registry`/`repository`: `None` for not at all, else the
/// length of the matched repository prefix (podman allows `host/namespace` keys; the most
/// specific one wins). Keys with a scheme are URLs, of which only the host counts
/// (`https://index.docker.io/v1/`).
fn key_match(key: &str, registry: &str, repository: &str) -> Option<usize> {
    let (key, is_url) = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => (rest, true),
        None => (key, false),
    };
    let key = key.trim_end_matches('/');
    let (host, path) = key.split_once('/').unwrap_or((key, ""));
    if canonical_host(host) != canonical_host(registry) {
        return None;
    }
    if is_url || path.is_empty() || path == "v1" || path == "v2" {
        return Some(0);
    }
    let matches = repository == path
        || repository
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('/'));
    matches.then_some(path.len())
}

fn best<'a, T>(map: &'a HashMap<String, T>, registry: &str, repository: &str) -> Option<&'a T> {
    map.iter()
        .filter_map(|(k, v)| key_match(k, registry, repository).map(|score| (score, k, v)))
        // Highest score; ties broken by key so the choice does not depend on hash order.
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, _, v)| v)
}

/// The server name docker passes to credential helpers.
fn helper_server(registry: &str) -> &str {
    if canonical_host(registry) == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperReply {
    username: String,
    secret: String,
}

/// Asks `docker-credential-<helper> get`: `Ok(None)` when the helper has nothing for the
/// registry, `Err` with a note when it cannot be run at all.
fn ask_helper(
    helper: &str,
    registry: &str,
) -> std::result::Result<Option<Credentials>, HelperError> {
    let program = format!("docker-credential-{helper}");
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HelperError::NotInstalled(format!(
                "{program} is not on PATH"
            )))
        }
        Err(e) => return Err(HelperError::Failed(format!("cannot run {program}: {e}"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is handled through its status.
        let _ = stdin.write_all(helper_server(registry).as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| HelperError::Failed(format!("waiting for {program}: {e}")))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    if !out.status.success() {
        let said = format!("{} {}", text(&out.stdout), text(&out.stderr));
        // The helper protocol's answer for "nothing stored for this server".
        if said.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(HelperError::Failed(format!(
            "{program} get failed ({}): {}",
            out.status,
            said.trim()
        )));
    }
    let reply: HelperReply = serde_json::from_slice(&out.stdout).map_err(|e| {
        HelperError::Failed(format!(
            "{program} get printed something that is not its JSON reply: {e}"
        ))
    })?;
    if reply.username == "<token>" {
        return Err(HelperError::NotInstalled(format!(
            "{program} holds an identity token, which oci2bin cannot use; pass --username and --password-stdin"
        )));
    }
    Ok(Some(Credentials {
        username: reply.username,
        password: reply.secret,
    }))
}

enum HelperError {
    /// The helper cannot be used here; the lookup goes on.
    NotInstalled(String),
    /// The helper ran and failed: the user must fix it.
    Failed(String),
}

/// Runs a helper, noting the outcome in `consulted`.
fn from_helper(
    helper: &str,
    registry: &str,
    why: &str,
    file: &Path,
    consulted: &mut Vec<String>,
) -> Result<Option<(Credentials, String)>> {
    let label = format!("docker-credential-{helper} ({why} in {})", file.display());
    match ask_helper(helper, registry) {
        Ok(Some(c)) => Ok(Some((c, label))),
        Ok(None) => {
            consulted.push(format!("{label}: nothing stored for {registry}"));
            Ok(None)
        }
        Err(HelperError::NotInstalled(note)) => {
            consulted.push(format!("{label}: {note}"));
            Ok(None)
        }
        Err(HelperError::Failed(detail)) => Err(BuildError::Credentials {
            registry: registry.into(),
            place: label,
            detail,
        }),
    }
}

fn from_entry(entry: &AuthEntry, file: &Path, registry: &str) -> Result<Option<Credentials>> {
    let bad = |detail: String| BuildError::Credentials {
        registry: registry.into(),
        place: file.display().to_string(),
        detail,
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| bad(format!("the \"auth\" value is not base64: {e}")))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| bad("the \"auth\" value does not decode to text".into()))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| bad("the \"auth\" value does not decode to user:password".into()))?;
        return Ok(Some(Credentials {
            username: user.into(),
            password: pass.into(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// Looks up credentials for `registry` (as in the reference: `docker.io`, `host:5000`) and
/// `repository` in `places`.
pub fn lookup(registry: &str, repository: &str, places: &Places) -> Result<Lookup> {
    let mut consulted = Vec::new();
    for file in &places.files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                consulted.push(format!("{}: not found", file.display()));
                continue;
            }
            Err(e) => return Err(BuildError::io("reading credentials from", file)(e)),
        };
        let parsed: AuthFile = serde_json::from_slice(&bytes).map_err(BuildError::json(
            format!("credentials file {}", file.display()),
        ))?;
        if let Some(helper) = best(&parsed.cred_helpers, registry, repository) {
            if let Some(found) = from_helper(helper, registry, "credHelpers", file, &mut consulted)?
            {
                return Ok(Lookup {
                    found: Some(found),
                    consulted,
                });
            }
            continue;
        }
        if let Some(entry) = best(&parsed.auths, registry, repository) {
            if let Some(c) = from_entry(entry, file, registry)? {
                return Ok(Lookup {
                    found: Some((c, file.display().to_string())),
                    consulted,
                });
            }
            if entry.identitytoken.is_some() && parsed.creds_store.is_none() {
                consulted.push(format!(
                    "{}: only an identity token for {registry}, which oci2bin cannot use",
                    file.display()
                ));
                continue;
            }
        }
        if let Some(store) = parsed.creds_store.as_deref().filter(|s| !s.is_empty()) {
            if let Some(found) = from_helper(store, registry, "credsStore", file, &mut consulted)? {
                return Ok(Lookup {
                    found: Some(found),
                    consulted,
                });
            }
            continue;
        }
        consulted.push(format!("{}: no entry for {registry}", file.display()));
    }
    Ok(Lookup {
        found: None,
        consulted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, json: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, json).unwrap();
        p
    }

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn matches_keys_like_docker_and_podman() {
        assert_eq!(
            key_match("https://index.docker.io/v1/", "docker.io", "library/nginx"),
            Some(0)
        );
        assert_eq!(
            key_match("docker.io", "docker.io", "library/nginx"),
            Some(0)
        );
        assert_eq!(
            key_match("registry-1.docker.io", "docker.io", "a/b"),
            Some(0)
        );
        assert_eq!(key_match("127.0.0.1:5000", "127.0.0.1:5000", "x"), Some(0));
        assert_eq!(
            key_match("http://127.0.0.1:5000", "127.0.0.1:5000", "x"),
            Some(0)
        );
        assert_eq!(key_match("127.0.0.1:5001", "127.0.0.1:5000", "x"), None);
        assert_eq!(key_match("quay.io/org", "quay.io", "org/app"), Some(3));
        assert_eq!(
            key_match("quay.io/org", "quay.io", "organisation/app"),
            None
        );
        assert_eq!(key_match("quay.io/org/app", "quay.io", "org/app"), Some(7));
    }

    #[test]
    fn reads_auth_username_password_and_prefers_specific_keys() {
        let dir = tempfile::tempdir().unwrap();
        // "alice:s3cr:et" in base64: the password may contain ':'.
        let a = write(
            dir.path(),
            "a.json",
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YWxpY2U6czNjcjpldA=="},
                 "quay.io":{"username":"bob","password":"pw"},
                 "quay.io/team":{"username":"carol","password":"pw2"}}}"#,
        );
        let places = Places {
            files: vec![a.clone()],
        };
        let l = lookup("docker.io", "library/nginx", &places).unwrap();
        assert_eq!(
            l.found,
            Some((creds("alice", "s3cr:et"), a.display().to_string()))
        );
        let l = lookup("quay.io", "other/x", &places).unwrap();
        assert_eq!(l.found.unwrap().0, creds("bob", "pw"));
        let l = lookup("quay.io", "team/x", &places).unwrap();
        assert_eq!(l.found.unwrap().0, creds("carol", "pw2"));
        let l = lookup("ghcr.io", "x/y", &places).unwrap();
        assert!(l.found.is_none());
        assert!(
            l.describe().contains("no entry for ghcr.io"),
            "{}",
            l.describe()
        );
    }

    #[test]
    fn earlier_files_win_and_missing_ones_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(
            dir.path(),
            "first.json",
            r#"{"auths":{"h:1":{"username":"u1","password":"p1"}}}"#,
        );
        let second = write(
            dir.path(),
            "second.json",
            r#"{"auths":{"h:1":{"username":"u2","password":"p2"}}}"#,
        );
        let absent = dir.path().join("absent.json");
        let places = Places {
            files: vec![absent.clone(), first, second],
        };
        let l = lookup("h:1", "r", &places).unwrap();
        assert_eq!(l.found.unwrap().0, creds("u1", "p1"));
        assert_eq!(
            l.consulted,
            vec![format!("{}: not found", absent.display())]
        );
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "bad.json", r#"{"auths":{"h":{"auth":"!!!"}}}"#);
        let e = lookup(
            "h",
            "r",
            &Places {
                files: vec![f.clone()],
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad.json") && e.contains("base64"), "{e}");
        let f = write(dir.path(), "broken.json", "{");
        let e = lookup("h", "r", &Places { files: vec![f] })
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken.json"), "{e}");
    }

    #[test]
    fn a_missing_helper_is_noted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "c.json",
            r#"{"credsStore":"oci2bin-test-no-such-helper","credHelpers":{"other.io":"x"}}"#,
        );
        let l = lookup("h:1", "r", &Places { files: vec![f] }).unwrap();
        assert!(l.found.is_none());
        let d = l.describe();
        assert!(
            d.contains("docker-credential-oci2bin-test-no-such-helper (credsStore in"),
            "{d}"
        );
        assert!(d.contains("not on PATH"), "{d}");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let s = format!("{:?}", creds("u", "hunter2"));
        assert!(s.contains("\"u\"") && !s.contains("hunter2"), "{s}");
    }
}
