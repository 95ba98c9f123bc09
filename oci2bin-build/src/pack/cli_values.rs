//! Turning the pack command line's strings into [`PackOptions`](super::PackOptions) values.
//!
//! Kept in the library, next to the options they produce, so the CLI and the tests parse
//! `--entrypoint`, `--cmd` and `--arch` the same way.

use super::error::PackError;
use oci2bin_rt::oci::Platform;

/// Parses an `--entrypoint` or `--cmd` value, as Dockerfiles accept them: a JSON array of
/// strings (exec form, for arguments with spaces) or a single word (one program, no
/// arguments). An empty string gives an empty list, which clears the field as in docker.
///
/// ```
/// use oci2bin_build::pack::exec_form;
/// assert_eq!(exec_form("sh").unwrap(), ["sh"]);
/// assert_eq!(exec_form(r#"["nginx", "-g", "daemon off;"]"#).unwrap(), ["nginx", "-g", "daemon off;"]);
/// assert!(exec_form("[1, 2]").is_err());
/// ```
pub fn exec_form(value: &str) -> Result<Vec<String>, PackError> {
    let err = |reason: String| PackError::InvalidExecForm {
        value: value.to_string(),
        reason,
    };
    let trimmed = value.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(trimmed).map_err(|e| err(e.to_string()));
    }
    if value.is_empty() {
        return Ok(Vec::new());
    }
    if value.chars().any(char::is_whitespace) {
        return Err(err(
            "a word cannot contain spaces (it is not split like a shell command)".into(),
        ));
    }
    Ok(vec![value.to_string()])
}

/// The platform for `--arch`: `amd64`/`x86_64`, `arm64`/`aarch64` (as `linux/arm64/v8`, the
/// platform cargo targets map to), or a full `os/arch[/variant]`.
///
/// ```
/// use oci2bin_build::pack::platform_for_arch;
/// assert_eq!(platform_for_arch("arm64").unwrap().to_string(), "linux/arm64/v8");
/// assert_eq!(platform_for_arch("linux/arm/v7").unwrap().to_string(), "linux/arm/v7");
/// ```
pub fn platform_for_arch(arch: &str) -> Result<Platform, PackError> {
    let err = || PackError::InvalidArch {
        arch: arch.to_string(),
    };
    let triple = match arch {
        "amd64" | "x86_64" => "x86_64-unknown-linux-musl",
        "arm64" | "aarch64" => "aarch64-unknown-linux-musl",
        other if other.contains('/') => return Platform::parse(other).map_err(|_| err()),
        _ => return Err(err()),
    };
    Platform::for_target(triple).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_forms() {
        assert_eq!(exec_form("redis-server").unwrap(), ["redis-server"]);
        assert_eq!(exec_form("").unwrap(), Vec::<String>::new());
        assert_eq!(exec_form("[]").unwrap(), Vec::<String>::new());
        assert_eq!(exec_form(r#" ["a b", "c"]"#).unwrap(), ["a b", "c"]);
        for bad in ["[\"unterminated", "[1]", "two words", "[\"a\"] trailing"] {
            assert!(exec_form(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn arches() {
        assert_eq!(
            platform_for_arch("amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            platform_for_arch("x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            platform_for_arch("aarch64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!(platform_for_arch("sparc").is_err());
        assert!(platform_for_arch("linux/").is_err());
    }
}
