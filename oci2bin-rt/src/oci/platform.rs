//! Platforms (`os/arch[/variant]`) and how a cargo target maps onto one.
//!
//! The image must match the binary being built, not the machine building it: an x86_64 host
//! cross-compiling for aarch64 needs the arm64 image.

use std::fmt;

/// An OCI platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// OCI architecture name: `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// `v8` for arm64, `v7` for arm, or none.
    pub variant: Option<String>,
}

/// A platform string or target triple this model cannot map.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A `--platform` value that is not `os/arch[/variant]`.
    #[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64/v8")]
    Syntax(String),
    /// A target triple whose architecture has no OCI name here.
    #[error("target {0:?} has no known OCI platform; pass --platform os/arch[/variant]")]
    UnknownTarget(String),
}

impl Platform {
    /// The platform for a Rust target triple (`TARGET` in a build script).
    ///
    /// ```
    /// use oci2bin_rt::oci::Platform;
    /// assert_eq!(Platform::for_target("aarch64-unknown-linux-musl").unwrap().to_string(), "linux/arm64/v8");
    /// assert_eq!(Platform::for_target("x86_64-unknown-linux-musl").unwrap().to_string(), "linux/amd64");
    /// ```
    pub fn for_target(triple: &str) -> Result<Self, PlatformError> {
        let arch = triple.split('-').next().unwrap_or("");
        let (architecture, variant) = match arch {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "armv7" => ("arm", Some("v7")),
            "arm" => ("arm", Some("v6")),
            "i686" | "i586" => ("386", None),
            "riscv64gc" | "riscv64" => ("riscv64", None),
            "powerpc64le" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            _ => return Err(PlatformError::UnknownTarget(triple.to_string())),
        };
        Ok(Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        })
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError::Syntax(s.to_string()));
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// Whether an image built for `os/architecture/variant` runs here. A missing variant on
    /// either side matches (most arm64 indexes omit `v8`).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && match (self.variant.as_deref(), variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}
