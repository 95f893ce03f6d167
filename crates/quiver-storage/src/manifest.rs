//! The manifest: the atomic commit point of the store — which segments are live and the WAL checkpoint (the
//! highest sequence number whose effects are durable in those segments), plus opaque bytes for the engine.
//!
//! Each commit writes a new generation `MANIFEST-<generation, 20 digits>` by write-temp + fsync + rename +
//! directory fsync. The newest generation is the current one; the previous generation is kept (and older ones
//! removed) only after the new one is durable. A newest manifest that fails its checks refuses the open
//! ([`Error::Corrupt`]): it was durable when committed, so falling back to the older one would silently undo a
//! commit.

use std::path::Path;
use std::sync::Arc;

use crate::dir::{Directory, TEMP_SUFFIX};
use crate::error::{Error, Result};
use crate::wal::record::{u32_at, u64_at};

/// Magic at the start of a manifest file.
pub const MAGIC: [u8; 4] = *b"QMAN";
/// Manifest format version written by this build.
pub const VERSION: u16 = 1;
/// Most live segments one manifest may list.
pub const MAX_SEGMENTS: usize = 1 << 24;
/// Largest engine metadata one manifest may hold.
pub const MAX_USER_BYTES: usize = 64 << 20;
const FIXED_LEN: usize = 36;

/// The committed state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Highest WAL sequence number whose effects are durable in the live segments (0: none).
    pub wal_checkpoint: u64,
    /// Ids of the live segments, strictly increasing.
    pub segments: Vec<u64>,
    /// Opaque engine metadata.
    pub user: Vec<u8>,
}

/// File name of manifest generation `generation`.
pub fn file_name(generation: u64) -> String {
    format!("MANIFEST-{generation:020}")
}

/// The generation a manifest file name stands for, or `None` if it is not a manifest file name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("MANIFEST-")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// Encodes `m` as generation `generation`.
pub fn encode(m: &Manifest, generation: u64) -> Result<Vec<u8>> {
    check(m)?;
    let mut out = Vec::with_capacity(FIXED_LEN + 8 * m.segments.len() + m.user.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&m.wal_checkpoint.to_le_bytes());
    out.extend_from_slice(&(m.segments.len() as u32).to_le_bytes());
    for id in &m.segments {
        out.extend_from_slice(&id.to_le_bytes());
    }
    out.extend_from_slice(&(m.user.len() as u32).to_le_bytes());
    out.extend_from_slice(&m.user);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn check(m: &Manifest) -> Result<()> {
    if m.segments.len() > MAX_SEGMENTS {
        return Err(Error::TooLarge {
            what: "manifest segment list",
            len: m.segments.len() as u64,
            max: MAX_SEGMENTS as u64,
        });
    }
    if m.user.len() > MAX_USER_BYTES {
        return Err(Error::TooLarge {
            what: "manifest user metadata",
            len: m.user.len() as u64,
            max: MAX_USER_BYTES as u64,
        });
    }
    if let Some(w) = m.segments.windows(2).find(|w| w[0] >= w[1]) {
        return Err(Error::InvalidArgument {
            name: "segments",
            detail: format!("segment ids must strictly increase, found {} then {}", w[0], w[1]),
        });
    }
    Ok(())
}

/// Decodes a manifest file (`path` names it in errors), returning it and its generation. Never panics.
pub fn decode(path: &Path, b: &[u8]) -> Result<(Manifest, u64)> {
    let bad = |offset: usize, detail: String| Error::corrupt(path, offset as u64, detail);
    if b.len() < FIXED_LEN {
        return Err(bad(0, format!("manifest needs at least {FIXED_LEN} bytes, has {}", b.len())));
    }
    if b[0..4] != MAGIC {
        return Err(bad(0, "not a manifest (bad magic)".into()));
    }
    let end = b.len() - 4;
    let (stored, actual) = (u32_at(b, end), crc32c::crc32c(&b[..end]));
    if stored != actual {
        return Err(bad(end, format!("manifest checksum {stored:#010x}, computed {actual:#010x}")));
    }
    let version = u16::from_le_bytes([b[4], b[5]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            file: path.to_owned(),
            what: "manifest",
            found: version,
            supported: VERSION,
        });
    }
    if b[6..8] != [0, 0] {
        return Err(bad(6, "unknown manifest flags".into()));
    }
    let generation = u64_at(b, 8);
    let wal_checkpoint = u64_at(b, 16);
    let n = u32_at(b, 24) as usize;
    let seg_end = 28usize.checked_add(n.saturating_mul(8)).filter(|&e| e + 8 <= b.len());
    let Some(seg_end) = seg_end else {
        return Err(bad(24, format!("segment count {n} does not fit in the file")));
    };
    let segments: Vec<u64> = (0..n).map(|i| u64_at(b, 28 + 8 * i)).collect();
    let user_len = u32_at(b, seg_end) as usize;
    if seg_end + 4 + user_len != end {
        return Err(bad(seg_end, format!("user metadata length {user_len} does not match the file length")));
    }
    let m = Manifest { wal_checkpoint, segments, user: b[seg_end + 4..end].to_vec() };
    check(&m).map_err(|e| bad(28, e.to_string()))?;
    Ok((m, generation))
}

/// The manifest files of one directory.
#[derive(Debug)]
pub struct ManifestStore {
    dir: Arc<dyn Directory>,
    generation: u64,
    failed: Option<String>,
}

impl ManifestStore {
    /// Opens the manifests in `dir`: removes leftover `MANIFEST-*.tmp` files and returns the newest manifest
    /// (`None` in a new directory). A newest manifest that fails its checks is an error, never skipped.
    pub fn open(dir: Arc<dyn Directory>) -> Result<(ManifestStore, Option<Manifest>)> {
        let mut newest: Option<(u64, String)> = None;
        let mut removed = false;
        for name in dir.list()? {
            if name.starts_with("MANIFEST-") && name.ends_with(TEMP_SUFFIX) {
                dir.remove(&name)?;
                removed = true;
            } else if let Some(g) = parse_file_name(&name)
                && newest.as_ref().is_none_or(|(n, _)| g > *n)
            {
                newest = Some((g, name));
            }
        }
        if removed {
            dir.sync_dir()?;
        }
        let Some((generation, name)) = newest else {
            return Ok((ManifestStore { dir, generation: 0, failed: None }, None));
        };
        let path = dir.file_path(&name);
        let (m, stored_gen) = decode(&path, &dir.read(&name)?)?;
        if stored_gen != generation {
            return Err(Error::corrupt(
                &path,
                8,
                format!("holds generation {stored_gen}, file name says {generation}"),
            ));
        }
        Ok((ManifestStore { dir, generation, failed: None }, Some(m)))
    }

    /// Generation of the current manifest (0: none yet).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Makes `m` the current manifest. When this returns `Ok`, `m` is durable and a crash at any point before left
    /// the previous manifest current. An error after which the outcome is unknown (a failed fsync or rename)
    /// stops this store: later commits fail with [`Error::Poisoned`]; reopen to learn which manifest is current.
    pub fn commit(&mut self, m: &Manifest) -> Result<u64> {
        if let Some(cause) = &self.failed {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        let generation = self.generation + 1;
        let bytes = encode(m, generation)?;
        let res = self.write_generation(generation, &bytes);
        match &res {
            // Nothing was renamed into place: the previous manifest is current, and the next commit may succeed.
            Err(e) if e.is_storage_full() => {}
            Err(e) => self.failed = Some(e.to_string()),
            Ok(()) => {}
        }
        res?;
        self.generation = generation;
        // The new generation is durable: the one before it stays as a spare, older ones go.
        for name in self.dir.list()? {
            if parse_file_name(&name).is_some_and(|g| g + 1 < generation) {
                self.dir.remove(&name)?;
            }
        }
        Ok(generation)
    }

    /// Writes, fsyncs and renames generation `generation` into place. Returns [`Error::StorageFull`] only when the
    /// disk filled before the rename (the temporary file is removed); a failure from the fsync on is reported as a
    /// plain I/O error, whatever its cause.
    fn write_generation(&self, generation: u64, bytes: &[u8]) -> Result<()> {
        let name = file_name(generation);
        let tmp = format!("{name}{TEMP_SUFFIX}");
        let written = self.dir.create(&tmp).and_then(|mut file| file.write_all(bytes).map(|()| file));
        let mut file = match written {
            Ok(file) => file,
            Err(e) => {
                let _ = self.dir.remove(&tmp);
                return Err(e);
            }
        };
        file.sync().map_err(Error::fatal)?;
        drop(file);
        self.dir.rename(&tmp, &name).map_err(Error::fatal)?;
        self.dir.sync_dir().map_err(Error::fatal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(cp in any::<u64>(), segs in proptest::collection::btree_set(any::<u64>(), 0..50),
                      user in proptest::collection::vec(any::<u8>(), 0..300), generation in any::<u64>()) {
            let m = Manifest { wal_checkpoint: cp, segments: segs.into_iter().collect(), user };
            let bytes = encode(&m, generation).unwrap();
            prop_assert_eq!(decode(Path::new("m"), &bytes).unwrap(), (m, generation));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(Path::new("m"), &bytes);
        }
    }

    #[test]
    fn unsorted_segments_are_a_user_error() {
        let e = encode(&Manifest { segments: vec![3, 2], ..Manifest::default() }, 1).unwrap_err();
        assert!(e.is_user_error());
    }
}
