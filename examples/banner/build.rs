//! Embeds the image named by `BANNER_IMAGE` (default: the project's busybox test image) with
//! xz compression: this example trades start-up time for a smaller file.
use oci2bin_build::{Builder, CompressSpec};

fn main() {
    println!("cargo:rerun-if-env-changed=BANNER_IMAGE");
    let image = std::env::var("BANNER_IMAGE").unwrap_or_else(|_| {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
        format!("oci:{dir}/../../target/test-images/busybox:latest")
    });
    let result = Builder::new(&image)
        .and_then(|b| Ok(b.compression(CompressSpec::parse("xz:6")?)))
        .and_then(|b| b.embed());
    match result {
        Ok(e) => println!(
            "cargo:rustc-env=BANNER_IMAGE_NAME={}",
            e.image.reference
        ),
        Err(e) => {
            eprintln!("banner: cannot embed {image}: {e}");
            eprintln!("banner: build the test images first (scripts/build-test-images.sh target/test-images) or set BANNER_IMAGE");
            std::process::exit(1);
        }
    }
}
