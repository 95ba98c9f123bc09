//! Whole-layer tests: the merged tree of several layers ([`merge`]) and a corpus of hostile
//! layers that must stay inside the root ([`hostile`]), each run with both resolvers.

mod hostile;
mod merge;
mod tar_builder;

use super::{apply_layer, ApplyOptions, ApplyReport, LayerError, ResolveMode};
use std::os::fd::AsFd;
use std::path::Path;

/// Both resolvers; every layer test runs once with each.
const MODES: [ResolveMode; 2] = [ResolveMode::Openat2, ResolveMode::Walk];

/// Applies `layers` in order to the directory `root`, with one report for all of them.
fn apply_all(
    root: &Path,
    layers: &[Vec<u8>],
    mode: ResolveMode,
) -> Result<ApplyReport, LayerError> {
    let dir = std::fs::File::open(root).expect("open root");
    let opts = ApplyOptions { resolve: mode };
    let mut report = ApplyReport::default();
    for layer in layers {
        apply_layer(dir.as_fd(), &layer[..], &opts, &mut report)?;
    }
    Ok(report)
}
