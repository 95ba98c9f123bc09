//! Docker-style image references: `nginx`, `ghcr.io/o/i:tag`, `host:5000/i@sha256:...`.
//!
//! Users type references the way docker taught them, so normalisation follows docker's rules:
//! no registry means `docker.io`, a single-component Docker Hub name gets `library/`, and no
//! tag or digest means `:latest`.

use crate::oci::Digest;
use std::fmt;

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/nginx`).
    pub repository: String,
    /// Tag, if given or defaulted (`latest`).
    pub tag: Option<String>,
    /// Pinned digest, if given.
    pub digest: Option<Digest>,
}

/// A reference that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Reference {
    /// Parses and normalises a reference; a `docker://` prefix is accepted.
    ///
    /// ```
    /// use oci2bin_rt::oci::Reference;
    /// let r = Reference::parse("nginx").unwrap();
    /// assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
    /// let r = Reference::parse("127.0.0.1:5000/tools/busybox:1.36").unwrap();
    /// assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", "tools/busybox", Some("1.36")));
    /// ```
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let err = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.strip_prefix("docker://").unwrap_or(input);
        if s.is_empty() {
            return Err(err("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|e| err(&e.to_string()))?)),
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(err(
                    "tags are up to 128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        for comp in repository.split('/') {
            let ok = !comp.is_empty()
                && comp
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && comp.as_bytes()[0].is_ascii_alphanumeric();
            if !ok {
                return Err(err(
                    "repository components are lowercase letters, digits and . _ - (starting with a letter or digit)",
                ));
            }
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The last path component and tag joined by `_`: a file name (`busybox_latest`).
    pub fn file_stem(&self) -> String {
        let name = self.repository.rsplit('/').next().unwrap_or("image");
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{name}_{t}"),
            (None, Some(d)) => format!("{name}_{}", d.short()),
            (None, None) => name.to_string(),
        }
    }

    /// `repository:tag` as docker shows it in `RepoTags` (Docker Hub names shortened).
    pub fn repo_tag(&self) -> String {
        let repo = if self.registry == "docker.io" {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        };
        format!("{}:{}", repo, self.tag.as_deref().unwrap_or("latest"))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("nginx", "docker.io/library/nginx:latest"),
            ("docker://redis:7", "docker.io/library/redis:7"),
            ("bitnami/redis", "docker.io/bitnami/redis:latest"),
            ("ghcr.io/o/i:tag", "ghcr.io/o/i:tag"),
            ("localhost/x", "localhost/x:latest"),
            ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Reference::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(&format!("host:5000/i@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.unwrap().to_string(), d);
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "",
            "UPPER",
            "a//b",
            "nginx:",
            "nginx:-x",
            "nginx@sha256:zz",
            "a/../b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn stems_and_repo_tags() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.file_stem(), "busybox_latest");
        assert_eq!(r.repo_tag(), "busybox:latest");
        let r = Reference::parse("127.0.0.1:5000/t/redis:7").unwrap();
        assert_eq!(r.repo_tag(), "127.0.0.1:5000/t/redis:7");
    }
}
