//! Bundles the exact sources of `oci2bin-rt` and `template/` into the `cargo-oci2bin` binary,
//! so an installed `cargo oci2bin` can generate and build the runtime with no checkout around
//! and always at the version it was built with; and those of `oci2bin-build`, which
//! `cargo oci2bin new` vendors into a crate of the user's own. Only the runtime's files count
//! in the bundle hash that keys compiled runtimes: a change to the build library does not
//! make every runtime compile again.
//!
//! Member manifests inherit from the workspace (`version.workspace = true`,
//! `dep.workspace = true`); the bundled copies must build on their own, so inheritance is
//! resolved here against the root `Cargo.toml`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Table, Value};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Replaces `x.workspace = true` with the workspace's value for `x`.
fn resolve_manifest(member: &str, text: &str, ws: &DocumentMut) -> String {
    let mut doc: DocumentMut = text.parse().expect("member Cargo.toml parses");
    let ws_pkg = ws["workspace"]["package"]
        .as_table()
        .expect("[workspace.package]");
    let ws_deps = ws["workspace"]["dependencies"]
        .as_table()
        .expect("[workspace.dependencies]");
    if let Some(pkg) = doc["package"].as_table_mut() {
        let keys: Vec<String> = pkg.iter().map(|(k, _)| k.to_string()).collect();
        for k in keys {
            let inherits = pkg[&k]
                .as_table_like()
                .and_then(|t| t.get("workspace"))
                .and_then(|w| w.as_bool())
                == Some(true);
            if inherits {
                pkg[&k] = ws_pkg[&k].clone();
            }
        }
    }
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        let Some(deps) = doc.get_mut(section).and_then(|d| d.as_table_like_mut()) else {
            continue;
        };
        let names: Vec<String> = deps.iter().map(|(k, _)| k.to_string()).collect();
        for name in names {
            let item = deps.get_mut(&name).expect("dep");
            let Some(t) = item.as_table_like() else {
                continue;
            };
            if t.get("workspace").and_then(|w| w.as_bool()) != Some(true) {
                continue;
            }
            let mut merged = Table::new();
            match &ws_deps[&name] {
                Item::Value(Value::String(v)) => {
                    merged.insert("version", toml_edit::value(v.value().clone()));
                }
                other => {
                    for (k, v) in other.as_table_like().expect("workspace dep table").iter() {
                        merged.insert(k, v.clone());
                    }
                }
            }
            for (k, v) in t.iter() {
                if k == "workspace" {
                    continue;
                }
                if k == "features" {
                    let mut feats = merged
                        .get("features")
                        .and_then(|f| f.as_array())
                        .cloned()
                        .unwrap_or_default();
                    for f in v.as_array().expect("features array") {
                        feats.push(f.clone());
                    }
                    merged.insert("features", toml_edit::value(feats));
                } else {
                    merged.insert(k, v.clone());
                }
            }
            // Path dependencies inside the bundle sit beside each other.
            if let Some(p) = merged.get("path").and_then(|p| p.as_str()) {
                let sibling = Path::new(p)
                    .file_name()
                    .expect("path dep has a name")
                    .to_string_lossy()
                    .to_string();
                merged.insert("path", toml_edit::value(format!("../{sibling}")));
            }
            *item = Item::Value(Value::InlineTable(merged.into_inline_table()));
        }
    }
    // Dev-dependencies are not needed to build the bundle and may not resolve.
    doc.remove("dev-dependencies");
    let _ = member;
    doc.to_string()
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let root = manifest_dir.parent().expect("workspace root").to_path_buf();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let ws_text = std::fs::read_to_string(root.join("Cargo.toml")).expect("root Cargo.toml");
    let ws: DocumentMut = ws_text.parse().expect("root Cargo.toml parses");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );

    // bundle path -> file on disk
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for member in ["oci2bin-rt", "oci2bin-build"] {
        let dir = root.join(member);
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        let mut srcs = Vec::new();
        walk(&dir.join("src"), &mut srcs);
        for p in srcs {
            let rel = p.strip_prefix(&root).expect("under root");
            files.insert(rel.to_string_lossy().into_owned(), p.clone());
        }
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).expect("member manifest");
        let resolved = resolve_manifest(member, &text, &ws);
        let gen = out_dir.join(format!("{member}.Cargo.toml"));
        std::fs::write(&gen, resolved).expect("write resolved manifest");
        files.insert(format!("{member}/Cargo.toml"), gen);
    }
    let template = root.join("template");
    println!("cargo:rerun-if-changed={}", template.display());
    let mut tfiles = Vec::new();
    walk(&template, &mut tfiles);
    for p in tfiles {
        let rel = p.strip_prefix(&root).expect("under root");
        files.insert(rel.to_string_lossy().into_owned(), p.clone());
    }
    if root.join("Cargo.lock").exists() {
        files.insert("Cargo.lock".into(), root.join("Cargo.lock"));
    }

    let mut hash: u64 = 0xcbf29ce484222325;
    let mut code = String::from("/// Files bundled from the oci2bin workspace: (path, contents).\npub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &files {
        let bytes = std::fs::read(path).expect("bundle file");
        if !rel.starts_with("oci2bin-build/") {
            for b in rel.bytes().chain(bytes.iter().copied()) {
                hash ^= b as u64;
                hash = hash.wrapping_mul(0x100000001b3);
            }
        }
        writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    writeln!(code, "/// FNV-1a hash of the bundle, to key where it is unpacked.\npub const HASH: &str = \"{hash:016x}\";").unwrap();
    std::fs::write(out_dir.join("bundle.rs"), code).expect("write bundle.rs");
}
