//! Pulls from a real registry: Debian's `docker-registry` on a free loopback port, filled with
//! `skopeo`, sometimes behind a small Python proxy that logs requests, corrupts a blob or
//! drops a connection mid-blob. Each test starts its own registry and stops it on drop.
//!
//! These need apt packages (docker-registry, skopeo, apache2-utils) and python3, so they are
//! ignored by default: `cargo test -p oci2bin-build --features registry --test registry --
//! --include-ignored`.
#![cfg(feature = "registry")]

mod common;
use common::{gzip, layer_tar};
use oci2bin_build::{BuildError, Builder};
use oci2bin_rt::oci::Digest;
use oci2bin_rt::payload::Payload;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const X86: &str = "x86_64-unknown-linux-musl";
const ARM: &str = "aarch64-unknown-linux-musl";

/// Credentials are looked up through HOME, DOCKER_CONFIG, PATH...: tests that set them must
/// not overlap, so every test holds this lock.
static ENV: Mutex<()> = Mutex::new(());

fn lock_env() -> std::sync::MutexGuard<'static, ()> {
    ENV.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something answers HTTP on `port`.
fn wait_http(port: u16, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("server on port {port} exited: {status}");
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing answered on port {port}");
}

/// A child process killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `docker-registry` with storage in `dir`, with htpasswd auth when `user` is given.
fn registry(dir: &Path, user: Option<(&str, &str)>) -> Server {
    let port = free_port();
    let storage = dir.join("storage");
    std::fs::create_dir_all(&storage).unwrap();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        storage.display()
    );
    if let Some((u, p)) = user {
        let out = Command::new("htpasswd")
            .args(["-Bbn", u, p])
            .output()
            .unwrap();
        assert!(out.status.success(), "htpasswd failed");
        let file = dir.join("htpasswd");
        std::fs::write(&file, out.stdout).unwrap();
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: oci2bin-test\n    path: {}\n",
            file.display()
        ));
    }
    let config_path = dir.join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (apt install docker-registry)");
    wait_http(port, &mut child);
    Server { child, port }
}

const PROXY: &str = r#"
import http.client, http.server, socket, sys, threading
upstream, log_path, flip, drop_after, port_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
lock = threading.Lock()
state = {"dropped": False}
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def forward(self):
        with lock, open(log_path, "a") as log:
            log.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Range", "-")))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        blob = self.command == "GET" and resp.status in (200, 206) and "/blobs/" in self.path
        if blob and flip != "-" and self.path.endswith(flip) and data:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with lock:
            drop = blob and drop_after > 0 and not state["dropped"] and len(data) > drop_after
            if drop:
                state["dropped"] = True
        if drop:
            self.wfile.write(data[:drop_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data)
    do_GET = do_HEAD = forward

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

/// The proxy in front of a registry: its port and its request log.
struct Proxy {
    server: Server,
    log: PathBuf,
}

impl Proxy {
    /// Starts a proxy to `upstream` that flips a byte of blob `flip` (if given) and drops the
    /// first blob response longer than `drop_after` bytes after that many bytes (if not 0).
    fn start(dir: &Path, upstream: u16, flip: Option<&Digest>, drop_after: usize) -> Proxy {
        std::fs::create_dir_all(dir).unwrap();
        let script = dir.join("proxy.py");
        std::fs::write(&script, PROXY).unwrap();
        let log = dir.join("proxy.log");
        std::fs::write(&log, "").unwrap();
        let port_file = dir.join("proxy.port");
        let flip = flip.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(upstream.to_string())
            .arg(&log)
            .arg(flip)
            .arg(drop_after.to_string())
            .arg(&port_file)
            .spawn()
            .expect("python3");
        let start = Instant::now();
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "proxy did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        wait_http(port, &mut child);
        std::fs::write(&log, "").unwrap();
        Proxy {
            server: Server { child, port },
            log,
        }
    }

    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn clear(&self) {
        std::fs::write(&self.log, "").unwrap();
    }
}

/// Bytes that do not compress, so a layer is as large on the wire as it is.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn put_blob(dir: &Path, bytes: &[u8]) -> (Digest, usize) {
    let d = Digest::of(bytes);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join(d.blob_path()), bytes).unwrap();
    (d, bytes.len())
}

/// One single-platform image written into layout `dir`: returns the manifest descriptor and
/// the layer tars and blob digests.
struct Image {
    descriptor: serde_json::Value,
    tars: Vec<Vec<u8>>,
    layer_digests: Vec<Digest>,
}

fn write_image(dir: &Path, arch: &str, tars: Vec<Vec<u8>>) -> Image {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_digests = Vec::new();
    for t in &tars {
        let (d, n) = put_blob(dir, &gzip(t));
        layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": n}));
        diff_ids.push(Digest::of(t).to_string());
        layer_digests.push(d);
    }
    let (arch, variant) = arch.split_once('/').unwrap_or((arch, ""));
    let mut config = json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let mut platform = json!({"architecture": arch, "os": "linux"});
    if !variant.is_empty() {
        config["variant"] = json!(variant);
        platform["variant"] = json!(variant);
    }
    let config = serde_json::to_vec(&config).unwrap();
    let (cd, cn) = put_blob(dir, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cn},
        "layers": layers,
    }))
    .unwrap();
    let (md, mn) = put_blob(dir, &manifest);
    Image {
        descriptor: json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md.to_string(), "size": mn,
            "platform": platform,
        }),
        tars,
        layer_digests,
    }
}

fn write_index_json(dir: &Path, mut top: serde_json::Value) {
    top["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
    let index = json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// A two-layer amd64 image in an OCI layout.
fn simple_layout(dir: &Path, big: bool) -> Image {
    let second: Vec<u8> = if big {
        noise(300_000, 7)
    } else {
        b"world\n".to_vec()
    };
    let img = write_image(
        dir,
        "amd64",
        vec![
            layer_tar(&[("etc/hello", b"hello\n")]),
            layer_tar(&[("etc/world", &second)]),
        ],
    );
    write_index_json(dir, img.descriptor.clone());
    img
}

/// Pushes layout `dir` to `dest` (`127.0.0.1:PORT/name:tag`) with skopeo.
fn push(dir: &Path, dest: &str, extra: &[&str]) {
    let status = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .args(extra)
        .arg(format!("oci:{}:latest", dir.display()))
        .arg(format!("docker://{dest}"))
        .status()
        .expect("skopeo (apt install skopeo)");
    assert!(status.success(), "skopeo copy to {dest} failed");
}

/// Points every credential lookup at `home` (nothing there unless a test writes it).
fn isolate_credentials(home: &Path) {
    std::env::set_var("HOME", home);
    std::env::set_var("DOCKER_CONFIG", home.join(".docker"));
    std::fs::create_dir_all(home.join("run")).unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", home.join("run"));
    std::env::set_var("XDG_CONFIG_HOME", home.join(".config"));
    std::env::remove_var("REGISTRY_AUTH_FILE");
}

fn pull(
    reference: &str,
    target: &str,
    cache: &Path,
    out: &Path,
) -> oci2bin_build::Result<oci2bin_build::Embedded> {
    Builder::new(reference)?
        .cache_dir(cache)
        .write_payload(target, out)
}

fn layer_contents(p: &Payload<'_>) -> Vec<Vec<u8>> {
    p.layers
        .iter()
        .map(|l| {
            let mut out = Vec::new();
            oci2bin_rt::decompress::decoder(l.compression, l.bytes)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            out
        })
        .collect()
}

fn blob_requests(proxy: &Proxy) -> Vec<String> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| r.contains("/blobs/"))
        .collect()
}

#[test]
#[ignore = "needs docker-registry, skopeo (apt); run with --include-ignored"]
fn pulls_oci_and_docker_schema2_images() {
    let _env = lock_env();
    let t = tempfile::tempdir().unwrap();
    isolate_credentials(&t.path().join("home"));
    let reg = registry(&t.path().join("reg"), None);
    let layout = t.path().join("layout");
    let img = simple_layout(&layout, false);
    let oci = format!("127.0.0.1:{}/test/oci:latest", reg.port);
    let docker = format!("127.0.0.1:{}/test/docker:v1", reg.port);
    push(&layout, &oci, &["--preserve-digests"]);
    push(&layout, &docker, &["--format", "v2s2"]);

    for (reference, media_type) in [
        (oci.as_str(), "application/vnd.oci.image.manifest.v1+json"),
        (
            docker.as_str(),
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
    ] {
        let cache = t.path().join(format!("cache-{}", reference.len()));
        let out = t.path().join("payload.tar");
        let e = pull(reference, X86, &cache, &out).unwrap();
        assert_eq!(e.image.platform.to_string(), "linux/amd64");
        assert_eq!(e.image.index_digest, None);
        let manifest_digest = e.image.manifest_digest.clone().unwrap();
        let manifest = std::fs::read(cache.join(manifest_digest.blob_path())).unwrap();
        assert_eq!(Digest::of(&manifest), manifest_digest);
        let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(m["mediaType"], media_type, "{reference}");
        // The layers went through diff_id verification and recompression like any source.
        let bytes = std::fs::read(&out).unwrap();
        let p = Payload::parse(&bytes).unwrap();
        assert_eq!(layer_contents(&p), img.tars, "{reference}");
        assert_eq!(
            p.metadata.source_manifest_digest,
            Some(manifest_digest.to_string())
        );
        assert_eq!(p.metadata.source, reference);
        // The original blobs are cached by digest; the tag is recorded.
        for l in &e.image.layers {
            assert!(l.location.path.starts_with(&cache));
        }
        assert_eq!(std::fs::read_dir(cache.join("refs")).unwrap().count(), 1);
    }
    // The OCI push kept the layout's digests.
    let e = pull(
        &oci,
        X86,
        &t.path().join("cache-again"),
        &t.path().join("p.tar"),
    )
    .unwrap();
    assert_eq!(
        e.image.layers[1].digest.as_ref(),
        Some(&img.layer_digests[1])
    );
}

#[test]
#[ignore = "needs docker-registry, skopeo (apt); run with --include-ignored"]
fn picks_the_cargo_targets_platform_from_an_index() {
    let _env = lock_env();
    let t = tempfile::tempdir().unwrap();
    isolate_credentials(&t.path().join("home"));
    let reg = registry(&t.path().join("reg"), None);
    let layout = t.path().join("layout");
    let amd = write_image(&layout, "amd64", vec![layer_tar(&[("arch", b"amd64\n")])]);
    let arm = write_image(
        &layout,
        "arm64/v8",
        vec![layer_tar(&[("arch", b"arm64\n")])],
    );
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [amd.descriptor, arm.descriptor],
    }))
    .unwrap();
    let (id, n) = put_blob(&layout, &index);
    write_index_json(
        &layout,
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": id.to_string(), "size": n}),
    );
    let reference = format!("127.0.0.1:{}/multi:latest", reg.port);
    push(&layout, &reference, &["--all", "--preserve-digests"]);

    let cache = t.path().join("cache");
    for (target, img, platform) in [(X86, &amd, "linux/amd64"), (ARM, &arm, "linux/arm64/v8")] {
        let out = t.path().join("payload.tar");
        let e = pull(&reference, target, &cache, &out).unwrap();
        assert_eq!(e.image.platform.to_string(), platform);
        assert_eq!(e.image.index_digest.as_ref(), Some(&id));
        assert_eq!(
            e.image.manifest_digest.as_ref().map(|d| d.to_string()),
            img.descriptor["digest"].as_str().map(String::from)
        );
        let bytes = std::fs::read(&out).unwrap();
        let p = Payload::parse(&bytes).unwrap();
        assert_eq!(layer_contents(&p), img.tars);
        assert_eq!(p.metadata.source_index_digest, Some(id.to_string()));
    }
    // Only the selected platform's layers were downloaded for each target.
    for d in amd.layer_digests.iter().chain(&arm.layer_digests) {
        assert!(cache.join(d.blob_path()).is_file());
    }
    let e = pull(
        &reference,
        "s390x-unknown-linux-gnu",
        &cache,
        &t.path().join("x.tar"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("linux/s390x") && e.contains("linux/arm64/v8"),
        "{e}"
    );
}

fn write_script(dir: &Path, name: &str, body: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
#[ignore = "needs docker-registry, skopeo (apt); run with --include-ignored"]
fn authenticates_with_docker_config_and_credential_helpers() {
    let _env = lock_env();
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    isolate_credentials(&home);
    let reg = registry(&t.path().join("reg"), Some(("alice", "s3cret")));
    let layout = t.path().join("layout");
    simple_layout(&layout, false);
    let host = format!("127.0.0.1:{}", reg.port);
    let reference = format!("{host}/private:latest");
    push(
        &layout,
        &reference,
        &["--preserve-digests", "--dest-creds", "alice:s3cret"],
    );
    let out = t.path().join("payload.tar");

    // No credentials anywhere: refused, and the error says where it looked.
    let e = pull(&reference, X86, &t.path().join("c0"), &out).unwrap_err();
    assert!(matches!(e, BuildError::RegistryAuth { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("registry {host} refused")), "{msg}");
    assert!(
        msg.contains(&format!(
            "{}: not found",
            home.join(".docker/config.json").display()
        )),
        "{msg}"
    );
    assert!(msg.contains("containers/auth.json"), "{msg}");

    // docker login's config.json ("alice:s3cret" in base64).
    let docker = home.join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#),
    )
    .unwrap();
    pull(&reference, X86, &t.path().join("c1"), &out).unwrap();

    // A wrong password is reported as refused credentials, naming their source.
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"username":"alice","password":"wrong"}}}}}}"#),
    )
    .unwrap();
    let msg = pull(&reference, X86, &t.path().join("c2"), &out)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("\"alice\"") && msg.contains("config.json were sent"),
        "{msg}"
    );

    // A credential helper, named in credHelpers and found on PATH, asked with the registry
    // on stdin.
    let bin = t.path().join("bin");
    write_script(
        &bin,
        "docker-credential-test",
        &format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = \"{host}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\necho '{{\"ServerURL\":\"{host}\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}}'\n"
        ),
    );
    let old_path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(&old_path));
    std::env::set_var("PATH", std::env::join_paths(paths).unwrap());
    let mut helped = Vec::new();
    for (i, config) in [
        format!(r#"{{"credHelpers":{{"{host}":"test"}}}}"#),
        // The same helper as the default store, with docker's placeholder entry.
        format!(r#"{{"auths":{{"{host}":{{}}}},"credsStore":"test"}}"#),
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(docker.join("config.json"), config).unwrap();
        helped.push(pull(&reference, X86, &t.path().join(format!("h{i}")), &out));
    }
    std::env::set_var("PATH", &old_path);
    for h in helped {
        h.unwrap();
    }

    // podman's auth.json is read when docker's has nothing for the registry.
    std::fs::write(docker.join("config.json"), "{}").unwrap();
    let run = home.join("run/containers");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("auth.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#),
    )
    .unwrap();
    pull(&reference, X86, &t.path().join("c4"), &out).unwrap();
}

#[test]
#[ignore = "needs docker-registry, skopeo (apt); run with --include-ignored"]
fn a_corrupt_blob_fails_and_is_not_cached() {
    let _env = lock_env();
    let t = tempfile::tempdir().unwrap();
    isolate_credentials(&t.path().join("home"));
    let reg = registry(&t.path().join("reg"), None);
    let layout = t.path().join("layout");
    let img = simple_layout(&layout, true);
    push(
        &layout,
        &format!("127.0.0.1:{}/corrupt:latest", reg.port),
        &["--preserve-digests"],
    );
    let bad = &img.layer_digests[1];
    let proxy = Proxy::start(&t.path().join("proxy"), reg.port, Some(bad), 0);
    let reference = format!("127.0.0.1:{}/corrupt:latest", proxy.server.port);
    let cache = t.path().join("cache");
    let e = pull(&reference, X86, &cache, &t.path().join("p.tar")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, BuildError::Mismatch { .. }), "{msg}");
    assert!(msg.contains(&bad.to_string()), "{msg}");
    assert!(!cache.join(bad.blob_path()).exists());
    // Nothing half-written is left behind either.
    assert_eq!(std::fs::read_dir(cache.join("tmp")).unwrap().count(), 0);
    // Fetched once: a mismatch is not retried as if it were a network error.
    let fetched = blob_requests(&proxy)
        .iter()
        .filter(|r| r.contains(&bad.to_string()))
        .count();
    assert_eq!(fetched, 1, "{:?}", proxy.requests());
}

#[test]
#[ignore = "needs docker-registry, skopeo (apt); run with --include-ignored"]
fn a_dropped_connection_is_resumed_and_a_second_build_downloads_nothing() {
    let _env = lock_env();
    let t = tempfile::tempdir().unwrap();
    isolate_credentials(&t.path().join("home"));
    let reg = registry(&t.path().join("reg"), None);
    let layout = t.path().join("layout");
    let img = simple_layout(&layout, true);
    push(
        &layout,
        &format!("127.0.0.1:{}/resume:latest", reg.port),
        &["--preserve-digests"],
    );
    let proxy = Proxy::start(&t.path().join("proxy"), reg.port, None, 100_000);
    let reference = format!("127.0.0.1:{}/resume:latest", proxy.server.port);
    let cache = t.path().join("cache");
    let out = t.path().join("p.tar");
    let e = pull(&reference, X86, &cache, &out).unwrap();
    let big = &img.layer_digests[1];
    let gets: Vec<String> = blob_requests(&proxy)
        .into_iter()
        .filter(|r| r.contains(&big.to_string()))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(gets[0].ends_with(" -"), "{gets:?}");
    assert!(
        gets[1].ends_with(" bytes=100000-"),
        "the retry resumes: {gets:?}"
    );
    assert_eq!(
        layer_contents(&Payload::parse(&std::fs::read(&out).unwrap()).unwrap()),
        img.tars
    );

    // Again by tag: one HEAD re-resolves the tag (after the /v2/ probe), no blob requests.
    proxy.clear();
    pull(&reference, X86, &cache, &out).unwrap();
    let requests = proxy.requests();
    assert!(blob_requests(&proxy).is_empty(), "{requests:?}");
    let manifests: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("/manifests/"))
        .collect();
    assert_eq!(manifests.len(), 1, "{requests:?}");
    assert!(manifests[0].starts_with("HEAD "), "{requests:?}");

    // Pinned by digest: no request at all.
    proxy.clear();
    let manifest = e.image.manifest_digest.unwrap();
    let pinned = format!("127.0.0.1:{}/resume@{manifest}", proxy.server.port);
    pull(&pinned, X86, &cache, &out).unwrap();
    assert_eq!(proxy.requests(), Vec::<String>::new());

    // Offline: from the cache alone, even with the registry gone; and a precise error for
    // what was never pulled.
    drop(proxy);
    Builder::new(&reference)
        .unwrap()
        .cache_dir(&cache)
        .offline(true)
        .write_payload(X86, &out)
        .unwrap();
    let other = format!("127.0.0.1:{}/never:pulled", reg.port);
    let e = Builder::new(&other)
        .unwrap()
        .cache_dir(&cache)
        .offline(true)
        .write_payload(X86, &out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not in the build cache") && e.contains("tag \"pulled\""),
        "{e}"
    );
    assert!(e.contains("without --offline"), "{e}");
}
