//! Little-endian binary writer/reader for the engine's own records (operations, segment metadata, the manifest's
//! engine part). Every read is bounds-checked and reports the offset of the structure that failed; lengths are
//! checked against the bytes left before anything is allocated.

use std::path::{Path, PathBuf};

use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::id::PointId;

/// Appends little-endian values to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    pub fn id(&mut self, id: &PointId) {
        id.encode(&mut self.buf);
    }
    pub fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    pub fn bitmap(&mut self, b: &RoaringBitmap) {
        let mut out = Vec::with_capacity(b.serialized_size());
        // Writing into a Vec cannot fail.
        let _ = b.serialize_into(&mut out);
        self.bytes(&out);
    }
}

/// Reads what [`Writer`] wrote; errors name `file` and the offset.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    file: &'a Path,
    base: u64,
}

impl<'a> Reader<'a> {
    /// Reads `buf`, which starts at byte `base` of `file` (both only for error messages).
    pub fn new(buf: &'a [u8], file: &'a Path, base: u64) -> Self {
        Reader { buf, pos: 0, file, base }
    }

    pub fn corrupt(&self, detail: impl Into<String>) -> Error {
        Error::Corrupt { file: PathBuf::from(self.file), offset: self.base + self.pos as u64, detail: detail.into() }
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(self.corrupt(format!("{what}: needs {n} bytes, {} left", self.buf.len() - self.pos)));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A length that must fit in the bytes left, `unit` bytes per element.
    pub fn len(&mut self, unit: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(unit.max(1) as u64) > left {
            return Err(self.corrupt(format!("{what}: length {n} exceeds the {left} bytes left")));
        }
        Ok(n as usize)
    }
    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.len(1, what)?;
        self.take(n, what)
    }
    pub fn string(&mut self, what: &str) -> Result<String> {
        let b = self.bytes(what)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt(format!("{what}: not UTF-8")))
    }
    pub fn id(&mut self, what: &str) -> Result<PointId> {
        match self.u8(what)? {
            0 => Ok(PointId::Num(self.u64(what)?)),
            1 => {
                let b = self.take(16, what)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Ok(PointId::Uuid(u128::from_be_bytes(a)))
            }
            t => Err(self.corrupt(format!("{what}: unknown id tag {t}"))),
        }
    }
    pub fn f32s(&mut self, what: &str) -> Result<Vec<f32>> {
        let n = self.len(4, what)?;
        let b = self.take(n * 4, what)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
    pub fn bitmap(&mut self, what: &str) -> Result<RoaringBitmap> {
        let b = self.bytes(what)?;
        RoaringBitmap::deserialize_from(b).map_err(|e| self.corrupt(format!("{what}: {e}")))
    }
}
