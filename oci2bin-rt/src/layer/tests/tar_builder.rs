//! Building layer tars in memory for the tests, with raw name bytes.
//!
//! `tar::Header::set_path` refuses `..` and absolute names, which are exactly what the
//! hostile tests need, so names and link targets are copied into the header fields as raw
//! bytes, with GNU `L`/`K` records or PAX `x` records for long names.

use tar::{EntryType, Header};

/// The mtime entries get unless a test sets one.
pub(crate) const MTIME: u64 = 1_600_000_000;

/// One layer tar under construction.
pub(crate) struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Layer {
    /// An empty layer.
    pub(crate) fn new() -> Self {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// A header owned by the running user (so no chown is attempted), mode `mode`.
    pub(crate) fn header(kind: EntryType, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(MTIME);
        h.set_uid(u64::from(nix::unistd::geteuid().as_raw()));
        h.set_gid(u64::from(nix::unistd::getegid().as_raw()));
        h
    }

    /// Appends an entry with raw `name` and `link` bytes; names longer than the header
    /// field get a GNU long-name (or long-link) record first.
    pub(crate) fn raw(
        &mut self,
        mut h: Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: &[u8],
    ) -> &mut Self {
        if let Some(link) = link {
            if link.len() > 100 {
                self.gnu_long(EntryType::GNULongLink, link);
            }
            let field = &mut h.as_old_mut().linkname;
            let n = link.len().min(100);
            field[..n].copy_from_slice(&link[..n]);
        }
        if name.len() > 100 {
            self.gnu_long(EntryType::GNULongName, name);
        }
        let field = &mut h.as_old_mut().name;
        let n = name.len().min(100);
        field.fill(0);
        field[..n].copy_from_slice(&name[..n]);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.builder
            .append(&h, data)
            .expect("append to in-memory tar");
        self
    }

    /// A GNU `././@LongLink` record carrying `value` for the next entry.
    fn gnu_long(&mut self, kind: EntryType, value: &[u8]) {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        let mut data = value.to_vec();
        data.push(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.builder.append(&h, &data[..]).expect("append");
    }

    /// Appends a PAX `x` record set for the next entry.
    pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (key, value) in records {
            // "LEN key=value\n", where LEN counts its own digits too.
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.as_old_mut().name[..10].copy_from_slice(b"PaxHeaders");
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.builder.append(&h, &data[..]).expect("append");
        self
    }

    /// A regular file.
    pub(crate) fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(
            Self::header(EntryType::Regular, mode),
            name.as_bytes(),
            None,
            data,
        )
    }

    /// A regular file with an mtime.
    pub(crate) fn file_at(&mut self, name: &str, mode: u32, mtime: u64, data: &[u8]) -> &mut Self {
        let mut h = Self::header(EntryType::Regular, mode);
        h.set_mtime(mtime);
        self.raw(h, name.as_bytes(), None, data)
    }

    /// A regular file with a numeric owner.
    pub(crate) fn owned_file(&mut self, name: &str, uid: u64, gid: u64) -> &mut Self {
        let mut h = Self::header(EntryType::Regular, 0o640);
        h.set_uid(uid);
        h.set_gid(gid);
        self.raw(h, name.as_bytes(), None, b"owned")
    }

    /// A directory.
    pub(crate) fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(
            Self::header(EntryType::Directory, mode),
            name.as_bytes(),
            None,
            b"",
        )
    }

    /// A directory with an mtime.
    pub(crate) fn dir_at(&mut self, name: &str, mode: u32, mtime: u64) -> &mut Self {
        let mut h = Self::header(EntryType::Directory, mode);
        h.set_mtime(mtime);
        self.raw(h, name.as_bytes(), None, b"")
    }

    /// A symlink; the target is stored as given.
    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(EntryType::Symlink, 0o777);
        self.raw(h, name.as_bytes(), Some(target.as_bytes()), b"")
    }

    /// A symlink with an mtime.
    pub(crate) fn symlink_at(&mut self, name: &str, target: &str, mtime: u64) -> &mut Self {
        let mut h = Self::header(EntryType::Symlink, 0o777);
        h.set_mtime(mtime);
        self.raw(h, name.as_bytes(), Some(target.as_bytes()), b"")
    }

    /// A hardlink to an earlier entry; mode 0755 like the files the tests link to.
    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(EntryType::Link, 0o755);
        self.raw(h, name.as_bytes(), Some(target.as_bytes()), b"")
    }

    /// A named pipe.
    pub(crate) fn fifo(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(
            Self::header(EntryType::Fifo, mode),
            name.as_bytes(),
            None,
            b"",
        )
    }

    /// A character device (1, 3), like `/dev/null`.
    pub(crate) fn chardev(&mut self, name: &str) -> &mut Self {
        let mut h = Self::header(EntryType::Char, 0o666);
        h.set_device_major(1).expect("gnu header");
        h.set_device_minor(3).expect("gnu header");
        self.raw(h, name.as_bytes(), None, b"")
    }

    /// An empty regular file, the form whiteouts take.
    pub(crate) fn whiteout(&mut self, name: &str) -> &mut Self {
        self.file(name, 0o600, b"")
    }

    /// The finished tar bytes.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().expect("finish in-memory tar")
    }
}

#[test]
fn raw_names_long_names_and_pax_records_round_trip() {
    let long = format!("long/{}", "a".repeat(150));
    let bytes = Layer::new()
        .file("../raw", 0o644, b"x")
        .file(&long, 0o644, b"y")
        .pax(&[("path", b"pax/name"), ("mtime", b"1.5")])
        .file("ignored", 0o644, b"z")
        .finish();
    let mut archive = tar::Archive::new(&bytes[..]);
    let names: Vec<Vec<u8>> = archive
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry").path_bytes().into_owned())
        .collect();
    assert_eq!(
        names,
        [b"../raw".to_vec(), long.into_bytes(), b"pax/name".to_vec()]
    );
}
