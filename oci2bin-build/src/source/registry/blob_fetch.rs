//! Downloading blobs into the build cache: streamed, verified, retried, resumed, a few at once.
//!
//! A layer can be gigabytes, so it is never held in memory: each chunk is hashed and appended
//! to a temporary file in the cache as it arrives. A transfer that breaks (connection reset,
//! timeout, 5xx) is retried with backoff and resumed with a Range request for the bytes still
//! missing; the hash runs over the whole file, so a resumed blob is verified as a whole. Only a
//! blob whose size and digest match is renamed to `blobs/sha256/<hex>`: a corrupt download
//! leaves nothing under any digest.

use super::client::{backoff, is_transient, Connection, ATTEMPTS};
use super::progress::DownloadEvent;
use super::resolve::WantedBlob;
use super::store::Store;
use crate::error::{BuildError, Result};
use futures_util::{StreamExt, TryStreamExt};
use oci2bin_rt::oci::Sha256Writer;
use oci_client::client::BlobResponse;
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};

/// Why one attempt at a transfer stopped.
enum Stop {
    /// Worth another attempt: the network or the server failed.
    Transient(String),
    /// Not worth retrying.
    Fatal(BuildError),
}

/// The partial download: a temporary file and the hash of what it holds.
struct Partial {
    file: BufWriter<File>,
    hash: Sha256Writer<std::io::Sink>,
}

impl Partial {
    fn written(&self) -> u64 {
        self.hash.len()
    }

    /// Drops what was received, for a registry that answers a Range request with the whole
    /// blob.
    fn restart(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.get_mut().set_len(0)?;
        self.file.get_mut().seek(SeekFrom::Start(0))?;
        self.hash = Sha256Writer::sink();
        Ok(())
    }
}

/// One attempt: requests the blob (the rest of it when `part` holds some) and appends what
/// arrives until the expected size is reached.
async fn attempt(
    conn: &Connection,
    want: &WantedBlob,
    part: &mut Partial,
    tries: u32,
    tmp: &std::path::Path,
    report: &dyn Fn(DownloadEvent<'_>),
) -> std::result::Result<(), Stop> {
    let digest = want.digest.to_string();
    let action = format!("downloading {} {} of", want.what, want.digest);
    let classify = |e: oci_client::errors::OciDistributionError| {
        if is_transient(&e) {
            Stop::Transient(e.to_string())
        } else {
            Stop::Fatal(conn.error(&action, e))
        }
    };
    let write_err = |e| Stop::Fatal(BuildError::io("writing", tmp)(e));
    let mut stream = if part.written() == 0 {
        conn.client()
            .pull_blob_stream(conn.repo(), digest.as_str())
            .await
            .map_err(classify)?
            .stream
    } else {
        let from = part.written();
        match conn
            .client()
            .pull_blob_stream_partial(conn.repo(), digest.as_str(), from, None)
            .await
            .map_err(classify)?
        {
            BlobResponse::Partial(s) => s.stream,
            BlobResponse::Full(s) => {
                part.restart().map_err(write_err)?;
                report(DownloadEvent::Retry {
                    digest: &want.digest,
                    attempt: tries,
                    resume_from: 0,
                    error: "the registry ignored the Range request: downloading from the start",
                });
                s.stream
            }
        }
    };
    while part.written() < want.size {
        let chunk = match stream.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(Stop::Transient(e.to_string())),
            None => {
                return Err(Stop::Transient(format!(
                    "the connection ended after {} of {} bytes",
                    part.written(),
                    want.size
                )))
            }
        };
        if chunk.len() as u64 > want.size - part.written() {
            return Err(Stop::Fatal(BuildError::Mismatch {
                what: format!("{} {} (blob size)", want.what, want.digest),
                expected: format!("{} bytes", want.size),
                actual: "more bytes from the registry".into(),
            }));
        }
        part.file.write_all(&chunk).map_err(write_err)?;
        part.hash.update(&chunk);
        report(DownloadEvent::Bytes {
            digest: &want.digest,
            bytes: chunk.len() as u64,
        });
    }
    // Not polled to its end: oci-client's own check of the digest would then fail the stream
    // with an error that looks like a network one. The digest is checked by the caller.
    Ok(())
}

/// Downloads one blob into the store, unless it is there already.
async fn fetch_one(
    conn: &Connection,
    store: Store<'_>,
    want: &WantedBlob,
    report: &dyn Fn(DownloadEvent<'_>),
) -> Result<()> {
    if store.has_blob(&want.digest, Some(want.size)) {
        return Ok(());
    }
    report(DownloadEvent::Start {
        digest: &want.digest,
        what: &want.what,
        size: want.size,
    });
    let tmp = tempfile::Builder::new()
        .prefix("download-")
        .tempfile_in(store.tmp_dir())
        .map_err(BuildError::io(
            "creating a temporary file in",
            store.tmp_dir(),
        ))?;
    let file = tmp
        .reopen()
        .map_err(BuildError::io("opening", tmp.path()))?;
    let mut part = Partial {
        file: BufWriter::with_capacity(1 << 20, file),
        hash: Sha256Writer::sink(),
    };
    let mut tries = 1;
    loop {
        match attempt(conn, want, &mut part, tries, tmp.path(), report).await {
            Ok(()) => break,
            Err(Stop::Fatal(e)) => return Err(e),
            Err(Stop::Transient(why)) if tries < ATTEMPTS => {
                tries += 1;
                report(DownloadEvent::Retry {
                    digest: &want.digest,
                    attempt: tries,
                    resume_from: part.written(),
                    error: &why,
                });
                tokio::time::sleep(backoff(tries)).await;
            }
            Err(Stop::Transient(why)) => {
                return Err(conn.other_error(
                    &format!(
                        "downloading {} {} ({ATTEMPTS} attempts) of",
                        want.what, want.digest
                    ),
                    why,
                ))
            }
        }
    }
    let Partial { mut file, hash } = part;
    file.flush()
        .map_err(BuildError::io("writing", tmp.path()))?;
    let (actual, size, _) = hash.finish();
    if actual != want.digest {
        return Err(BuildError::Mismatch {
            what: format!("{} {} as downloaded", want.what, want.digest),
            expected: want.digest.to_string(),
            actual: format!("{actual} ({size} bytes)"),
        });
    }
    file.get_ref()
        .sync_all()
        .map_err(BuildError::io("writing", tmp.path()))?;
    drop(file);
    let dest = store.blob_path(&want.digest);
    tmp.persist(&dest)
        .map_err(|e| BuildError::io("renaming into", &dest)(e.error))?;
    report(DownloadEvent::Done {
        digest: &want.digest,
        size: want.size,
    });
    Ok(())
}

/// Downloads the blobs missing from the store, `parallel` at a time. The first failure stops
/// the others (their temporary files are removed).
pub fn fetch_all(
    conn: &Connection,
    store: Store<'_>,
    blobs: &[WantedBlob],
    parallel: usize,
    on_event: &mut dyn FnMut(DownloadEvent<'_>),
) -> Result<()> {
    // All downloads run on this thread, so one callback can be shared through a RefCell.
    let on_event = RefCell::new(on_event);
    let report = |e: DownloadEvent<'_>| (on_event.borrow_mut())(e);
    let report: &dyn Fn(DownloadEvent<'_>) = &report;
    conn.block_on(
        futures_util::stream::iter(blobs.iter().map(|b| fetch_one(conn, store, b, report)))
            .buffer_unordered(parallel.max(1))
            .try_for_each(|()| std::future::ready(Ok(()))),
    )
}
