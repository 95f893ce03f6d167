//! Shared by the fuzz targets and the seed generator (`examples/make_seeds.rs`): how one fuzz input is cut into
//! files, and the checksum repairs that let mutated inputs reach the structural checks behind each CRC32C.
//!
//! Every input starts with one flags byte. With [`FIX_CHECKSUMS`] set, the target recomputes every checksum (and
//! the few length fields that must agree with the file's size) before handing the bytes to the reader: a random
//! mutation almost never keeps a CRC32C valid, so without this the fuzzer would mostly exercise "checksum
//! mismatch". With the bit clear the bytes go in exactly as given, which covers the checksum paths themselves.

use quiver_storage::{Directory, MemDirectory};

/// Flags bit: repair checksums before reading (see the crate docs).
pub const FIX_CHECKSUMS: u8 = 1;

/// `wal_scan` file selector: name the file after the first sequence number in its own header.
pub const NAME_FROM_HEADER: u8 = 0xFF;

/// Most WAL files one `wal_scan` input is cut into.
pub const MAX_WAL_FILES: usize = 4;

/// The flags byte and the rest of an input (flags 0 for an empty input).
pub fn split_flags(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&flags, rest)) => (flags, rest),
        None => (0, &[]),
    }
}

/// Cuts the body of a `wal_scan` input into WAL files: repeated `selector (u8), length (u16 LE), bytes`, at most
/// [`MAX_WAL_FILES`], a length past the end taking what is left. Returns `(sequence number the file is named for,
/// bytes)`: the selector itself, or with [`NAME_FROM_HEADER`] the header's first sequence number (so the name
/// usually agrees with the header and the fuzzer gets past that check).
pub fn wal_files(mut rest: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut files = Vec::new();
    while let Some((&selector, tail)) = rest.split_first() {
        if files.len() == MAX_WAL_FILES {
            break;
        }
        let len = match tail {
            [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
            _ => 0,
        };
        let tail = tail.get(2..).unwrap_or_default();
        let (bytes, next) = tail.split_at(len.min(tail.len()));
        let seq = if selector == NAME_FROM_HEADER { u64_at(bytes, 8).unwrap_or(1) } else { u64::from(selector) };
        files.push((seq, bytes.to_vec()));
        rest = next;
    }
    files
}

/// The inverse of [`wal_files`]: frames `(selector, bytes)` pairs (the seed generator's side).
pub fn encode_wal_files(files: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (selector, bytes) in files {
        out.push(*selector);
        let len = u16::try_from(bytes.len()).expect("a seed WAL file fits in 64 KiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Writes `name` into `dir` and makes it durable (file and directory entry).
pub fn put(dir: &MemDirectory, name: &str, bytes: &[u8]) {
    let mut f = dir.create(name).expect("create in a MemDirectory");
    f.write_all(bytes).expect("write to a MemDirectory");
    f.sync().expect("sync in a MemDirectory");
    dir.sync_dir().expect("sync_dir of a MemDirectory");
}

/// Every file of `dir` with its bytes, sorted by name.
pub fn contents(dir: &MemDirectory) -> Vec<(String, Vec<u8>)> {
    let names = dir.list().expect("list a MemDirectory");
    names.into_iter().map(|n| (n.clone(), dir.read(&n).expect("read a listed file"))).collect()
}

/// Little-endian u32 at `at`, if the bytes reach that far.
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Little-endian u64 at `at`, if the bytes reach that far.
pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes a WAL file's header checksum and the checksum of every record whose length fits in the file
/// (stopping at the first that does not).
pub fn fix_wal(b: &mut [u8]) {
    const HEADER: usize = 20;
    if b.len() < HEADER {
        return;
    }
    let crc = crc32c::crc32c(&b[0..16]);
    put_u32(b, 16, crc);
    let mut pos = HEADER;
    while let Some(len) = u32_at(b, pos) {
        let Some(end) = pos.checked_add(HEADER).and_then(|e| e.checked_add(len as usize)).filter(|&e| e <= b.len())
        else {
            break;
        };
        let crc = crc32c::crc32c_append(crc32c::crc32c(&b[pos..pos + 4]), &b[pos + 8..end]);
        put_u32(b, pos + 4, crc);
        pos = end;
    }
}

/// Recomputes a manifest's trailing checksum.
pub fn fix_manifest(b: &mut [u8]) {
    if b.len() >= 4 {
        let end = b.len() - 4;
        let crc = crc32c::crc32c(&b[..end]);
        put_u32(b, end, crc);
    }
}

/// Repairs a segment image: header checksum; footer offset (made to end at the trailer for the trailer's block
/// count, when that fits); every block checksum whose range lies in the file; footer checksum; trailer checksum.
pub fn fix_segment(b: &mut [u8]) {
    const HEADER: usize = 64;
    const TRAILER: usize = 32;
    const ENTRY: usize = 40;
    if b.len() < HEADER + TRAILER {
        return;
    }
    let crc = crc32c::crc32c(&b[0..60]);
    put_u32(b, 60, crc);
    let t = b.len() - TRAILER;
    let count = u32_at(b, t + 8).unwrap_or(0) as usize;
    if let Some(f) = count.checked_mul(ENTRY).and_then(|n| t.checked_sub(n)).filter(|&f| f >= HEADER) {
        put_u64(b, t, f as u64);
        for i in 0..count {
            let e = f + i * ENTRY;
            let (offset, stored) = (u64_at(b, e + 8).unwrap_or(0), u64_at(b, e + 16).unwrap_or(0));
            let range = usize::try_from(offset).ok().zip(usize::try_from(stored).ok());
            if let Some((start, end)) = range.and_then(|(o, s)| Some((o, o.checked_add(s)?))).filter(|&(_, e)| e <= f) {
                let crc = crc32c::crc32c(&b[start..end]);
                put_u32(b, e + 32, crc);
            }
        }
        let crc = crc32c::crc32c(&b[f..t]);
        put_u32(b, t + 12, crc);
    }
    let crc = crc32c::crc32c(&b[t..t + 24]);
    put_u32(b, t + 24, crc);
}

/// Repairs a snapshot archive: every entry's data checksum (while the entries fit), then the trailer's length and
/// whole-archive checksum.
pub fn fix_snapshot(b: &mut [u8]) {
    const HEADER: usize = 16;
    const TRAILER: usize = 16;
    if b.len() < HEADER + TRAILER {
        return;
    }
    let body = b.len() - TRAILER;
    let count = u32_at(b, 8).unwrap_or(0);
    let mut pos = HEADER;
    for _ in 0..count {
        let Some(name_len) = b.get(pos..pos + 2).map(|n| usize::from(u16::from_le_bytes([n[0], n[1]]))) else {
            break;
        };
        let len_at = pos + 2 + name_len;
        let Some(data_len) = u64_at(b, len_at).and_then(|l| usize::try_from(l).ok()) else { break };
        let data = len_at + 12;
        let Some(end) = data.checked_add(data_len).filter(|&e| e <= body) else { break };
        let crc = crc32c::crc32c(&b[data..end]);
        put_u32(b, len_at + 8, crc);
        pos = end;
    }
    put_u64(b, body, body as u64);
    let crc = crc32c::crc32c(&b[..body]);
    put_u32(b, body + 8, crc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_framing_round_trips() {
        let a = [1u8; 30];
        let b = [2u8; 5];
        let files = wal_files(&encode_wal_files(&[(3, &a), (NAME_FROM_HEADER, &b)]));
        assert_eq!(files, vec![(3, a.to_vec()), (1, b.to_vec())]);
        assert_eq!(wal_files(&[7, 9]), vec![(7, vec![])]);
        assert!(wal_files(&[]).is_empty());
    }
}
