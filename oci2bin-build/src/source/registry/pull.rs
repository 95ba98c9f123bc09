//! The online [`Fetch`]: whatever the build cache lacks comes from the registry.
//!
//! The connection (credential lookup, HTTP client, login) is only set up when something is
//! actually missing, so an image pinned by digest and already cached costs no request at all,
//! and one named by tag costs a single manifest HEAD to re-resolve the tag.

use super::blob_fetch;
use super::client::Connection;
use super::progress::DownloadEvent;
use super::resolve::{Fetch, WantedBlob};
use super::store::Store;
use super::{RegistryOptions, DEFAULT_PARALLEL};
use crate::error::Result;
use oci2bin_rt::oci::{Digest, Reference};

/// Pulls into a store.
pub struct Pull<'a> {
    store: Store<'a>,
    reference: &'a Reference,
    options: &'a RegistryOptions,
    on_event: &'a mut dyn FnMut(DownloadEvent<'_>),
    conn: Option<Connection>,
}

impl<'a> Pull<'a> {
    /// A pull of `reference` into `store`, reporting downloads to `on_event`.
    pub fn new(
        store: Store<'a>,
        reference: &'a Reference,
        options: &'a RegistryOptions,
        on_event: &'a mut dyn FnMut(DownloadEvent<'_>),
    ) -> Self {
        Pull {
            store,
            reference,
            options,
            on_event,
            conn: None,
        }
    }

    /// The connection, set up and logged in on first use.
    fn conn(&mut self) -> Result<&Connection> {
        if self.conn.is_none() {
            let mut conn = Connection::new(self.reference, self.options)?;
            conn.login()?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_ref().expect("connection set up above"))
    }
}

impl Fetch for Pull<'_> {
    fn resolve_tag(&mut self, reference: &Reference) -> Result<Digest> {
        let digest = self.conn()?.tag_digest()?;
        self.store.write_tag(reference, &digest)?;
        Ok(digest)
    }

    fn manifest(&mut self, digest: &Digest, what: &str) -> Result<()> {
        if self.store.has_blob(digest, None) {
            return Ok(());
        }
        let bytes = self.conn()?.manifest(digest)?;
        self.store.put_small(digest, &bytes, what)
    }

    fn blobs(&mut self, blobs: &[WantedBlob]) -> Result<()> {
        let missing: Vec<WantedBlob> = blobs
            .iter()
            .filter(|b| !self.store.has_blob(&b.digest, Some(b.size)))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let parallel = match self.options.parallel {
            0 => DEFAULT_PARALLEL,
            n => n,
        };
        let store = self.store;
        self.conn()?;
        let conn = self.conn.as_ref().expect("connection set up above");
        blob_fetch::fetch_all(conn, store, &missing, parallel, &mut *self.on_event)
    }
}
