//! Edits of the image config (`Entrypoint`, `Cmd`, `Env`, ...) with docker's semantics.
//!
//! The config is edited as JSON, not through oci-spec's types, so fields oci2bin does not
//! know (`Healthcheck`, `OnBuild`, vendor extensions) survive unchanged. The rules are those
//! of `docker run` and Dockerfiles: a new `Entrypoint` resets `Cmd` unless a `Cmd` is given
//! too, an empty one clears it; `--env K=V` replaces an existing `K` where it stands;
//! ports are stored as `PORT/PROTO`.

use super::error::EditError;
use serde_json::{json, Map, Value};

/// Changes to the image config's `config` object. Empty (the default) changes nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigEdits {
    /// New `Entrypoint`; an empty list removes it. Resets `Cmd` unless [`Self::cmd`] is set.
    pub entrypoint: Option<Vec<String>>,
    /// New `Cmd`; an empty list removes it.
    pub cmd: Option<Vec<String>>,
    /// `(KEY, VALUE)` pairs: each replaces an existing `KEY` in place or is appended.
    pub env: Vec<(String, String)>,
    /// New `WorkingDir` (absolute).
    pub workdir: Option<String>,
    /// New `User` (`name`, `uid`, `uid:gid`, ...).
    pub user: Option<String>,
    /// `(KEY, VALUE)` labels, added or replaced.
    pub labels: Vec<(String, String)>,
    /// Ports to expose, as `PORT/PROTO` (see [`parse_port`]).
    pub expose: Vec<String>,
}

impl ConfigEdits {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == ConfigEdits::default()
    }

    /// A one-line description for the image history (`created_by`), like docker's.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let list = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        if let Some(e) = &self.entrypoint {
            parts.push(format!("--entrypoint {}", list(e)));
        }
        if let Some(c) = &self.cmd {
            parts.push(format!("--cmd {}", list(c)));
        }
        for (k, v) in &self.env {
            parts.push(format!("--env {k}={v}"));
        }
        if let Some(w) = &self.workdir {
            parts.push(format!("--workdir {w}"));
        }
        if let Some(u) = &self.user {
            parts.push(format!("--user {u}"));
        }
        for (k, v) in &self.labels {
            parts.push(format!("--label {k}={v}"));
        }
        for p in &self.expose {
            parts.push(format!("--expose {p}"));
        }
        format!("cargo oci2bin {}", parts.join(" "))
    }
}

/// Splits `KEY=VALUE` for `flag` (`--env`, `--label`): the first `=` separates, the key must
/// not be empty, the value may be.
///
/// ```
/// use oci2bin_build::edit::parse_key_value;
/// assert_eq!(parse_key_value("--env", "A=b=c").unwrap(), ("A".into(), "b=c".into()));
/// assert!(parse_key_value("--env", "A").is_err());
/// ```
pub fn parse_key_value(flag: &'static str, value: &str) -> Result<(String, String), EditError> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(EditError::KeyValue {
            flag,
            value: value.to_string(),
        }),
    }
}

/// Normalises an `--expose` value to docker's `PORT/PROTO` (`8080` is `8080/tcp`).
///
/// ```
/// use oci2bin_build::edit::parse_port;
/// assert_eq!(parse_port("53/UDP").unwrap(), "53/udp");
/// assert_eq!(parse_port("8080").unwrap(), "8080/tcp");
/// assert!(parse_port("0").is_err() && parse_port("80/icmp").is_err());
/// ```
pub fn parse_port(value: &str) -> Result<String, EditError> {
    let err = || EditError::Port {
        value: value.to_string(),
    };
    let (port, proto) = value.split_once('/').unwrap_or((value, "tcp"));
    let port: u16 = port.parse().map_err(|_| err())?;
    let proto = proto.to_ascii_lowercase();
    if port == 0 || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(err());
    }
    Ok(format!("{port}/{proto}"))
}

/// Checks a `--workdir` value: absolute, as docker's `WORKDIR` becomes at run time.
pub fn check_workdir(value: &str) -> Result<(), EditError> {
    if value.starts_with('/') {
        Ok(())
    } else {
        Err(EditError::ContainerPath {
            flag: "--workdir",
            value: value.to_string(),
            reason: format!("the working directory must be absolute, e.g. /{value}"),
        })
    }
}

/// The `config` object of an image config, created when missing.
fn config_object(image: &mut Value) -> Result<&mut Map<String, Value>, EditError> {
    let Some(top) = image.as_object_mut() else {
        return Err(EditError::Config {
            what: "is not a JSON object".into(),
        });
    };
    let config = top.entry("config").or_insert_with(|| json!({}));
    if config.is_null() {
        *config = json!({});
    }
    config.as_object_mut().ok_or_else(|| EditError::Config {
        what: "has a `config` that is not an object".into(),
    })
}

/// Sets `key` to a list of strings, or removes it for an empty list.
fn set_list(config: &mut Map<String, Value>, key: &str, list: &[String]) {
    if list.is_empty() {
        config.remove(key);
    } else {
        config.insert(key.into(), json!(list));
    }
}

/// The object under `key`, created (or replacing a `null`) when missing.
fn object_field<'a>(
    config: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, EditError> {
    let v = config.entry(key).or_insert_with(|| json!({}));
    if v.is_null() {
        *v = json!({});
    }
    v.as_object_mut().ok_or_else(|| EditError::Config {
        what: format!("has a `{key}` that is not an object"),
    })
}

/// Applies `edits` to the image config `image` (the whole document, as JSON).
pub(crate) fn apply(image: &mut Value, edits: &ConfigEdits) -> Result<(), EditError> {
    let config = config_object(image)?;
    if let Some(entrypoint) = &edits.entrypoint {
        set_list(config, "Entrypoint", entrypoint);
        if edits.cmd.is_none() {
            // docker: a new entrypoint discards the image's Cmd, which was written for the
            // old one.
            config.remove("Cmd");
        }
    }
    if let Some(cmd) = &edits.cmd {
        set_list(config, "Cmd", cmd);
    }
    if !edits.env.is_empty() {
        let mut env: Vec<String> = match config.get("Env") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|_| EditError::Config {
                what: "has an `Env` that is not a list of strings".into(),
            })?,
        };
        for (k, v) in &edits.env {
            let entry = format!("{k}={v}");
            let prefix = format!("{k}=");
            match env.iter_mut().find(|e| e.starts_with(&prefix) || *e == k) {
                Some(existing) => *existing = entry,
                None => env.push(entry),
            }
        }
        config.insert("Env".into(), json!(env));
    }
    if let Some(w) = &edits.workdir {
        config.insert("WorkingDir".into(), json!(w));
    }
    if let Some(u) = &edits.user {
        config.insert("User".into(), json!(u));
    }
    if !edits.labels.is_empty() {
        let labels = object_field(config, "Labels")?;
        for (k, v) in &edits.labels {
            labels.insert(k.clone(), json!(v));
        }
    }
    if !edits.expose.is_empty() {
        let ports = object_field(config, "ExposedPorts")?;
        for p in &edits.expose {
            ports.insert(p.clone(), json!({}));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Value {
        json!({
            "architecture": "amd64", "os": "linux",
            "config": {
                "Entrypoint": ["/docker-entrypoint.sh"],
                "Cmd": ["postgres"],
                "Env": ["PATH=/usr/bin:/bin", "PGDATA=/var/lib/postgresql/data", "LANG=C"],
                "Healthcheck": {"Test": ["CMD", "true"]},
            },
            "rootfs": {"type": "layers", "diff_ids": []},
        })
    }

    #[test]
    fn entrypoint_resets_cmd_unless_cmd_is_given() {
        let mut v = image();
        let e = ConfigEdits {
            entrypoint: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        };
        apply(&mut v, &e).unwrap();
        assert_eq!(v["config"]["Entrypoint"], json!(["/bin/sh"]));
        assert!(v["config"].get("Cmd").is_none());
        // Unknown fields survive.
        assert_eq!(v["config"]["Healthcheck"]["Test"], json!(["CMD", "true"]));

        let mut v = image();
        let e = ConfigEdits {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec!["echo hi".into()]),
            ..Default::default()
        };
        apply(&mut v, &e).unwrap();
        assert_eq!(v["config"]["Entrypoint"], json!(["/bin/sh", "-c"]));
        assert_eq!(v["config"]["Cmd"], json!(["echo hi"]));
    }

    #[test]
    fn empty_entrypoint_or_cmd_clears_the_field() {
        let mut v = image();
        let e = ConfigEdits {
            entrypoint: Some(vec![]),
            ..Default::default()
        };
        apply(&mut v, &e).unwrap();
        assert!(v["config"].get("Entrypoint").is_none());
        assert!(v["config"].get("Cmd").is_none());

        let mut v = image();
        let e = ConfigEdits {
            cmd: Some(vec![]),
            ..Default::default()
        };
        apply(&mut v, &e).unwrap();
        assert_eq!(v["config"]["Entrypoint"], json!(["/docker-entrypoint.sh"]));
        assert!(v["config"].get("Cmd").is_none());
    }

    #[test]
    fn env_replaces_in_place_and_appends_new_keys() {
        let mut v = image();
        let e = ConfigEdits {
            env: vec![
                ("LANG".into(), "C.UTF-8".into()),
                ("NEW".into(), "a=b".into()),
                ("PGDATA".into(), String::new()),
            ],
            ..Default::default()
        };
        apply(&mut v, &e).unwrap();
        assert_eq!(
            v["config"]["Env"],
            json!(["PATH=/usr/bin:/bin", "PGDATA=", "LANG=C.UTF-8", "NEW=a=b"])
        );
        // A key that is a prefix of another is not confused with it.
        let e = ConfigEdits {
            env: vec![("PG".into(), "1".into())],
            ..Default::default()
        };
        apply(&mut v, &e).unwrap();
        assert_eq!(v["config"]["Env"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn workdir_user_labels_ports_and_a_missing_config() {
        let mut v = json!({"architecture": "amd64", "os": "linux", "config": null});
        let e = ConfigEdits {
            workdir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            labels: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            expose: vec![parse_port("80").unwrap(), parse_port("53/udp").unwrap()],
            ..Default::default()
        };
        apply(&mut v, &e).unwrap();
        assert_eq!(
            v["config"],
            json!({
                "WorkingDir": "/srv", "User": "1000:1000", "Labels": {"a": "2"},
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            })
        );
        assert!(check_workdir("srv").is_err());
        assert!(apply(&mut json!([]), &e).is_err());
    }

    #[test]
    fn description_names_every_edit() {
        let e = ConfigEdits {
            entrypoint: Some(vec!["sh".into()]),
            env: vec![("A".into(), "1".into())],
            ..Default::default()
        };
        assert_eq!(
            e.describe(),
            r#"cargo oci2bin --entrypoint ["sh"] --env A=1"#
        );
        assert!(ConfigEdits::default().is_empty() && !e.is_empty());
    }
}
