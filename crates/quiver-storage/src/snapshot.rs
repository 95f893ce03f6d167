//! Snapshots: one archive file holding a consistent set of files (immutable segments, the manifest, a prefix of
//! each WAL file), with a checksum per entry and one over the whole archive.
//!
//! Consistency is the caller's: it passes files that do not change (segments, the current manifest) and, for
//! files still being appended to, the length to copy (see [`crate::Wal::durable_files`]), and must not delete
//! any of them until [`create`] returns. Archive names are generated (`snap-<millis>-<n>.qsnap`); [`restore`]
//! reads the whole archive and verifies every checksum and every entry name before it writes anything, then
//! writes each file under a temporary name, fsyncs, renames and syncs the directory. It restores only into a
//! directory without files (the engine restores into a fresh directory and switches over), so a failed or
//! interrupted restore never mixes old and new state.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::dir::{Directory, MAX_NAME_LEN, TEMP_SUFFIX, check_name, remove_temp_files};
use crate::error::{Error, Result};
use crate::wal::record::{u32_at, u64_at};

/// Magic at the start of an archive.
pub const MAGIC: [u8; 4] = *b"QSNP";
/// Magic at the very end of an archive.
pub const END_MAGIC: [u8; 4] = *b"QSNE";
/// Archive format version written by this build.
pub const VERSION: u16 = 1;
/// Most entries in one archive.
pub const MAX_ENTRIES: u32 = 1 << 20;
const HEADER_LEN: u64 = 16;
const TRAILER_LEN: u64 = 16;
const CHUNK: usize = 1 << 20;

/// One file to put in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Its name in the source directory (kept as the entry name).
    pub name: String,
    /// Copy only the first `len` bytes (for a file still being appended to); `None`: the whole file.
    pub len: Option<u64>,
}

impl SnapshotFile {
    /// The whole file `name`.
    pub fn whole(name: impl Into<String>) -> SnapshotFile {
        SnapshotFile { name: name.into(), len: None }
    }
}

/// One entry of a verified archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File name.
    pub name: String,
    /// Offset of the data in the archive.
    pub offset: u64,
    /// Data length.
    pub len: u64,
    /// CRC32C of the data.
    pub crc: u32,
}

fn is_archive_name(name: &str) -> bool {
    name.strip_prefix("snap-")
        .and_then(|r| r.strip_suffix(".qsnap"))
        .is_some_and(|mid| !mid.is_empty() && mid.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
}

/// Longest entry name, in bytes: restore first writes `<name>.tmp`, which must itself be a valid name.
pub const MAX_ENTRY_NAME_LEN: usize = MAX_NAME_LEN - TEMP_SUFFIX.len();

/// Rejects a name that cannot be an entry: not a plain file name ([`check_name`]), a temporary file name, or too
/// long for restore's temporary name ([`MAX_ENTRY_NAME_LEN`]).
fn check_entry_name(name: &str) -> Result<()> {
    check_name(name)?;
    let reason = if name.ends_with(TEMP_SUFFIX) {
        "temporary files are never snapshotted"
    } else if name.len() > MAX_ENTRY_NAME_LEN {
        "longer than 251 bytes (restore writes it as <name>.tmp first)"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName { name: name.to_owned(), reason })
}

/// Writes an archive of `files` from `src` into `dest` under a generated name, which it returns.
pub fn create(src: &dyn Directory, files: &[SnapshotFile], dest: &dyn Directory) -> Result<String> {
    let mut seen = BTreeSet::new();
    for f in files {
        check_entry_name(&f.name)?;
        if !seen.insert(f.name.as_str()) {
            return Err(Error::InvalidArgument { name: "files", detail: format!("{} is listed twice", f.name) });
        }
    }
    if files.len() > MAX_ENTRIES as usize {
        return Err(Error::TooLarge { what: "snapshot file list", len: files.len() as u64, max: MAX_ENTRIES.into() });
    }
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let existing: BTreeSet<String> = dest.list()?.into_iter().collect();
    let name = (0u32..)
        .map(|n| format!("snap-{millis:016}-{n:04}.qsnap"))
        .find(|n| !existing.contains(n) && !existing.contains(&format!("{n}{TEMP_SUFFIX}")))
        .unwrap_or_default();
    let tmp = format!("{name}{TEMP_SUFFIX}");
    if let Err(e) = write_archive(src, files, dest, &tmp) {
        // Best effort: a leftover temporary file is ignored and cleaned like any other.
        let _ = dest.remove(&tmp);
        return Err(e);
    }
    dest.rename(&tmp, &name)?;
    dest.sync_dir()?;
    Ok(name)
}

fn write_archive(src: &dyn Directory, files: &[SnapshotFile], dest: &dyn Directory, tmp: &str) -> Result<()> {
    let mut out = dest.create(tmp)?;
    let mut crc = 0u32;
    let mut put = |out: &mut Box<dyn crate::WritableFile>, bytes: &[u8]| -> Result<()> {
        crc = crc32c::crc32c_append(crc, bytes);
        out.write_all(bytes)
    };
    let mut header = [0u8; HEADER_LEN as usize];
    header[0..4].copy_from_slice(&MAGIC);
    header[4..6].copy_from_slice(&VERSION.to_le_bytes());
    header[8..12].copy_from_slice(&(files.len() as u32).to_le_bytes());
    put(&mut out, &header)?;
    for f in files {
        let available = src.file_len(&f.name)?;
        let len = f.len.unwrap_or(available);
        if len > available {
            return Err(Error::InvalidArgument {
                name: "len",
                detail: format!("{}: asked for {len} bytes, file has {available}", f.name),
            });
        }
        // The entry checksum is computed in a first pass so the header can precede the data.
        let mut data_crc = 0u32;
        copy_range(src, &f.name, len, |chunk| {
            data_crc = crc32c::crc32c_append(data_crc, chunk);
            Ok(())
        })?;
        let mut eh = Vec::with_capacity(2 + f.name.len() + 12);
        eh.extend_from_slice(&(f.name.len() as u16).to_le_bytes());
        eh.extend_from_slice(f.name.as_bytes());
        eh.extend_from_slice(&len.to_le_bytes());
        eh.extend_from_slice(&data_crc.to_le_bytes());
        put(&mut out, &eh)?;
        let mut again = 0u32;
        copy_range(src, &f.name, len, |chunk| {
            again = crc32c::crc32c_append(again, chunk);
            put(&mut out, chunk)
        })?;
        if again != data_crc {
            return Err(Error::InvalidArgument {
                name: "files",
                detail: format!("{} changed while being snapshotted", f.name),
            });
        }
    }
    let total = out.size();
    let mut trailer = [0u8; TRAILER_LEN as usize];
    trailer[0..8].copy_from_slice(&total.to_le_bytes());
    trailer[8..12].copy_from_slice(&crc.to_le_bytes());
    trailer[12..16].copy_from_slice(&END_MAGIC);
    out.write_all(&trailer)?;
    out.sync()
}

/// Calls `f` with consecutive chunks of the first `len` bytes of `name`.
fn copy_range(dir: &dyn Directory, name: &str, len: u64, mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let mut pos = 0u64;
    while pos < len {
        let want = (len - pos).min(CHUNK as u64) as usize;
        let chunk = dir.read_range(name, pos, want)?;
        if chunk.len() != want {
            return Err(Error::corrupt(dir.file_path(name), pos + chunk.len() as u64, "file ended early"));
        }
        f(&chunk)?;
        pos += want as u64;
    }
    Ok(())
}

/// Reads archive `name` in `dir` and checks its structure, every entry name and every checksum. Returns the
/// entries. Never panics; allocates at most one chunk beyond the entry list.
pub fn verify(dir: &dyn Directory, name: &str) -> Result<Vec<Entry>> {
    check_name(name)?;
    if !is_archive_name(name) {
        return Err(Error::InvalidName { name: name.to_owned(), reason: "not a snapshot name (snap-<digits>.qsnap)" });
    }
    let path = dir.file_path(name);
    let bad = |offset: u64, detail: String| Error::corrupt(&path, offset, detail);
    let size = dir.file_len(name)?;
    if size < HEADER_LEN + TRAILER_LEN {
        return Err(bad(0, format!("archive needs at least {} bytes, has {size}", HEADER_LEN + TRAILER_LEN)));
    }
    let body = size - TRAILER_LEN;
    let trailer = dir.read_range(name, body, TRAILER_LEN as usize)?;
    if trailer[12..16] != END_MAGIC || u64_at(&trailer, 0) != body {
        return Err(bad(body, "archive trailer missing or misplaced (incomplete archive)".into()));
    }
    // Whole-archive checksum first: nothing is interpreted before the bytes are known to be intact.
    let mut crc = 0u32;
    copy_range(dir, name, body, |c| {
        crc = crc32c::crc32c_append(crc, c);
        Ok(())
    })?;
    let stored = u32_at(&trailer, 8);
    if stored != crc {
        return Err(bad(body + 8, format!("archive checksum {stored:#010x}, computed {crc:#010x}")));
    }
    let header = dir.read_range(name, 0, HEADER_LEN as usize)?;
    if header[0..4] != MAGIC {
        return Err(bad(0, "not a snapshot archive (bad magic)".into()));
    }
    let version = u16::from_le_bytes([header[4], header[5]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            file: path.clone(),
            what: "snapshot archive",
            found: version,
            supported: VERSION,
        });
    }
    if header[6..8] != [0, 0] {
        return Err(bad(6, "unknown snapshot archive flags".into()));
    }
    if let Some(i) = header[12..16].iter().position(|&x| x != 0) {
        return Err(bad(12 + i as u64, "reserved header bytes are not zero".into()));
    }
    let count = u32_at(&header, 8);
    if count > MAX_ENTRIES {
        return Err(bad(8, format!("{count} entries exceed the limit {MAX_ENTRIES}")));
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut names = BTreeSet::new();
    let mut pos = HEADER_LEN;
    for i in 0..count {
        let fixed = dir.read_range(name, pos, 2)?;
        if fixed.len() < 2 || pos + 2 > body {
            return Err(bad(pos, format!("entry {i} header runs past the end")));
        }
        let name_len = u64::from(u16::from_le_bytes([fixed[0], fixed[1]]));
        if pos + 2 + name_len + 12 > body {
            return Err(bad(pos, format!("entry {i} header runs past the end")));
        }
        let eh = dir.read_range(name, pos + 2, name_len as usize + 12)?;
        let n = name_len as usize;
        let entry_name =
            std::str::from_utf8(&eh[..n]).map_err(|_| bad(pos + 2, format!("entry {i}: name is not UTF-8")))?;
        check_entry_name(entry_name).map_err(|e| bad(pos + 2, format!("entry {i}: {e}")))?;
        if !names.insert(entry_name.to_owned()) {
            return Err(bad(pos + 2, format!("entry {i}: {entry_name:?} appears twice")));
        }
        let len = u64_at(&eh, n);
        let data_crc = u32_at(&eh, n + 8);
        let offset = pos + 2 + name_len + 12;
        if len > body - offset {
            return Err(bad(pos + 2 + name_len, format!("entry {i}: {len} data bytes run past the end")));
        }
        let mut actual = 0u32;
        read_slice(dir, name, offset, len, |c| {
            actual = crc32c::crc32c_append(actual, c);
            Ok(())
        })?;
        if actual != data_crc {
            return Err(bad(
                offset,
                format!("entry {i} ({entry_name}): checksum {data_crc:#010x}, computed {actual:#010x}"),
            ));
        }
        entries.push(Entry { name: entry_name.to_owned(), offset, len, crc: data_crc });
        pos = offset + len;
    }
    if pos != body {
        return Err(bad(pos, format!("{} unexpected bytes after the last entry", body - pos)));
    }
    Ok(entries)
}

/// Calls `f` with consecutive chunks of `len` bytes of `name` from `offset`.
fn read_slice(
    dir: &dyn Directory,
    name: &str,
    offset: u64,
    len: u64,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut pos = 0u64;
    while pos < len {
        let want = (len - pos).min(CHUNK as u64) as usize;
        let chunk = dir.read_range(name, offset + pos, want)?;
        if chunk.len() != want {
            return Err(Error::corrupt(dir.file_path(name), offset + pos + chunk.len() as u64, "archive ended early"));
        }
        f(&chunk)?;
        pos += want as u64;
    }
    Ok(())
}

/// Restores archive `name` from `archive_dir` into `target`, which must hold no files (leftover temporary files
/// are removed first). Verifies everything before writing anything. Returns the restored file names.
pub fn restore(archive_dir: &dyn Directory, name: &str, target: &dyn Directory) -> Result<Vec<String>> {
    let entries = verify(archive_dir, name)?;
    remove_temp_files(target)?;
    let existing = target.list()?;
    if let Some(first) = existing.first() {
        return Err(Error::InvalidArgument {
            name: "target",
            detail: format!("{} is not empty (holds {first}); restore into a new directory", target.root().display()),
        });
    }
    for e in &entries {
        let tmp = format!("{}{TEMP_SUFFIX}", e.name);
        let mut out = target.create(&tmp)?;
        let mut crc = 0u32;
        read_slice(archive_dir, name, e.offset, e.len, |c| {
            crc = crc32c::crc32c_append(crc, c);
            out.write_all(c)
        })?;
        if crc != e.crc {
            // The archive changed between verification and copy.
            return Err(Error::corrupt(
                archive_dir.file_path(name),
                e.offset,
                format!("entry {} changed during restore", e.name),
            ));
        }
        out.sync()?;
    }
    for e in &entries {
        target.rename(&format!("{}{TEMP_SUFFIX}", e.name), &e.name)?;
    }
    target.sync_dir()?;
    Ok(entries.into_iter().map(|e| e.name).collect())
}
