//! `cargo oci2bin`: turn an OCI/Docker image into one static Linux executable.
//!
//! Build: resolve and verify the image and recompress its layers (with progress), unpack the
//! bundled runtime sources, generate a tiny crate from the template, let cargo build it for a
//! static musl target with a shared target directory, and copy the binary out.

mod attach;
mod build_cmd;
mod bundle;
mod cache_cmd;
mod cargo_build;
mod cli;
mod edit_args;
mod elf;
mod generate;
mod inspect;
mod interrupt;
mod mapped;
mod new_cmd;
mod output;
mod pack_cmd;
mod polyglot;
mod polyglot_cmd;
mod progress;
mod pull_cmd;
mod pull_progress;
mod target_check;

fn main() {
    interrupt::install();
    let cli = cli::parse();
    let result = match cli.command {
        Some(cli::Command::Pack(p)) => pack_cmd::run(&p),
        Some(cli::Command::Build(b)) => build_cmd::run(&b),
        Some(cli::Command::Pull(p)) => pull_cmd::run(&p),
        Some(cli::Command::Inspect { file, json }) => inspect::run(&file, json),
        Some(cli::Command::New(n)) => new_cmd::run(&n),
        Some(cli::Command::Polyglot { file, output }) => {
            polyglot_cmd::run(&file, output.as_deref())
        }
        Some(cli::Command::Cache(c)) => cache_cmd::run(&c),
        Some(cli::Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut cli::command(),
                "cargo-oci2bin",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Some(cli::Command::Man) => clap_mangen::Man::new(cli::command())
            .render(&mut std::io::stdout())
            .map_err(Into::into),
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
