//! The image-edit options of a build (`--entrypoint`, `--env`, `--add-file`, `--strip`,
//! `--squash`, ...) and their mapping onto [`oci2bin_build::ImageEdits`].
//!
//! Parsing and checking happen in the library (`oci2bin_build::edit`), so a build script
//! gets the same rules; here are only the flags and the mapping.

use anyhow::{Context, Result};
use clap::Args;
use oci2bin_build::edit::{
    check_workdir, parse_key_value, parse_port, AddPath, ConfigEdits, StripSpec,
};
use oci2bin_build::pack::exec_form;
use oci2bin_build::ImageEdits;

/// Changes to the image made at build time. The edited image has its own config digest.
#[derive(Args, Debug, Clone, Default)]
pub struct EditArgs {
    /// Set the image's Entrypoint: a JSON array ('["/bin/sh", "-c"]') or one word; '' clears
    /// it. As in docker, the image's Cmd is dropped unless --cmd is given too.
    #[arg(long, value_name = "JSON|WORD", help_heading = "Image edits")]
    pub entrypoint: Option<String>,
    /// Set the image's Cmd: a JSON array or one word, repeatable (the values are joined:
    /// --cmd sh --cmd '["-c", "echo hi"]' is ["sh", "-c", "echo hi"]); '[]' clears it.
    #[arg(
        long,
        value_name = "JSON|WORD",
        allow_hyphen_values = true,
        help_heading = "Image edits"
    )]
    pub cmd: Vec<String>,
    /// Set an environment variable (repeatable); replaces an existing KEY.
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Image edits")]
    pub env: Vec<String>,
    /// Set the working directory (absolute).
    #[arg(long, value_name = "DIR", help_heading = "Image edits")]
    pub workdir: Option<String>,
    /// Set the user the command runs as (name, uid, uid:gid).
    #[arg(long, value_name = "USER", help_heading = "Image edits")]
    pub user: Option<String>,
    /// Add or replace a label (repeatable).
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Image edits")]
    pub label: Vec<String>,
    /// Expose a port (repeatable): 8080, 8080/tcp, 53/udp.
    #[arg(long, value_name = "PORT[/PROTO]", help_heading = "Image edits")]
    pub expose: Vec<String>,
    /// Add a file of this machine at CONTAINER (absolute), mode MODE (octal; default 0755
    /// if executable, else 0644), owner root (repeatable). All --add-file and --add-dir go
    /// into one extra layer, reproducible (mtime $SOURCE_DATE_EPOCH or 0).
    #[arg(
        long,
        value_name = "HOST:CONTAINER[:MODE]",
        help_heading = "Image edits"
    )]
    pub add_file: Vec<String>,
    /// Add a directory of this machine and everything in it at CONTAINER (repeatable).
    #[arg(long, value_name = "HOST:CONTAINER", help_heading = "Image edits")]
    pub add_dir: Vec<String>,
    /// Leave out documentation, man and info pages, translations and package caches
    /// (/usr/share/doc, man, info, locale but locale.alias, /var/cache/apt,
    /// /var/lib/apt/lists, /var/cache/apk, ...); reports the bytes saved.
    #[arg(long, help_heading = "Image edits")]
    pub strip: bool,
    /// Also leave out paths matching this glob on absolute paths (repeatable): * stays in a
    /// path component, ** crosses them; a match removes the whole subtree.
    #[arg(long, value_name = "GLOB", help_heading = "Image edits")]
    pub strip_path: Vec<String>,
    /// Merge all layers into one (whiteouts applied, hardlinks kept correct).
    #[arg(long, help_heading = "Image edits")]
    pub squash: bool,
}

/// `SOURCE_DATE_EPOCH` as the reproducible-builds convention defines it (unset: 0).
fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v.trim().parse().with_context(|| {
            format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970")
        }),
        _ => Ok(0),
    }
}

impl EditArgs {
    /// The edits these options ask for (empty when none is given), all checked.
    pub fn to_edits(&self) -> Result<ImageEdits> {
        let entrypoint = self
            .entrypoint
            .as_deref()
            .map(exec_form)
            .transpose()
            .context("--entrypoint")?;
        let cmd = if self.cmd.is_empty() {
            None
        } else {
            let mut all = Vec::new();
            for c in &self.cmd {
                all.extend(exec_form(c).context("--cmd")?);
            }
            Some(all)
        };
        if let Some(w) = &self.workdir {
            check_workdir(w)?;
        }
        let config = ConfigEdits {
            entrypoint,
            cmd,
            env: self
                .env
                .iter()
                .map(|e| parse_key_value("--env", e))
                .collect::<Result<_, _>>()?,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            labels: self
                .label
                .iter()
                .map(|l| parse_key_value("--label", l))
                .collect::<Result<_, _>>()?,
            expose: self
                .expose
                .iter()
                .map(|p| parse_port(p))
                .collect::<Result<_, _>>()?,
        };
        let mut add = Vec::new();
        for f in &self.add_file {
            add.push(AddPath::parse_file(f)?);
        }
        for d in &self.add_dir {
            add.push(AddPath::parse_dir(d)?);
        }
        let strip = StripSpec {
            defaults: self.strip,
            patterns: self.strip_path.clone(),
        };
        strip.check()?;
        let edits = ImageEdits {
            config,
            add,
            strip,
            squash: self.squash,
            source_date_epoch: 0,
        };
        if edits.is_empty() {
            return Ok(edits);
        }
        Ok(ImageEdits {
            source_date_epoch: source_date_epoch()?,
            ..edits
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        e: EditArgs,
    }

    fn edits(args: &[&str]) -> Result<ImageEdits> {
        let mut all = vec!["t"];
        all.extend(args);
        T::try_parse_from(all).unwrap().e.to_edits()
    }

    #[test]
    fn flags_map_onto_the_edits() {
        assert!(edits(&[]).unwrap().is_empty());
        let e = edits(&[
            "--entrypoint",
            "/bin/sh",
            "--cmd",
            "-c",
            "--cmd",
            r#"["echo hi", "x"]"#,
            "--env",
            "A=1",
            "--expose",
            "80",
            "--strip",
            "--strip-path",
            "/opt/*",
            "--squash",
        ])
        .unwrap();
        assert_eq!(
            e.config.entrypoint.as_deref(),
            Some(&["/bin/sh".to_string()][..])
        );
        assert_eq!(e.config.cmd.as_ref().unwrap(), &["-c", "echo hi", "x"]);
        assert_eq!(e.config.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(e.config.expose, ["80/tcp"]);
        assert!(e.strip.defaults && e.squash);
        let cleared = edits(&["--entrypoint", ""]).unwrap();
        assert_eq!(cleared.config.entrypoint, Some(vec![]));
        for bad in [
            &["--env", "NOEQUALS"][..],
            &["--workdir", "rel"],
            &["--expose", "99999"],
            &["--strip-path", "relative/*"],
            &["--add-file", "x"],
            &["--entrypoint", "two words"],
        ] {
            assert!(edits(bad).is_err(), "{bad:?}");
        }
    }
}
