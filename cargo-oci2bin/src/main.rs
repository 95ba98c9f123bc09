//! `cargo oci2bin`: turn an OCI/Docker image into one static Linux executable.
//!
//! Build: resolve and verify the image and recompress its layers (with progress), unpack the
//! bundled runtime sources, generate a tiny crate from the template, let cargo build it for a
//! static musl target with a shared target directory, and copy the binary out.

mod attach;
mod build_cmd;
mod bundle;
mod cargo_build;
mod cli;
mod elf;
mod generate;
mod inspect;
mod mapped;
mod pack_cmd;
mod polyglot;
mod progress;
mod pull_cmd;
mod pull_progress;

fn main() {
    let cli = cli::parse();
    let result = match cli.command {
        Some(cli::Command::Pack(p)) => pack_cmd::run(&p),
        Some(cli::Command::Build(b)) => build_cmd::run(&b),
        Some(cli::Command::Pull(p)) => pull_cmd::run(&p),
        Some(cli::Command::Inspect { file, json }) => inspect::run(&file, json),
        None => build_cmd::run(&cli.build),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}
