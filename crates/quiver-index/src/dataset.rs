//! TEXMEX vector files — the interchange format of ANN benchmarks:
//! `fvecs` (f32), `ivecs` (i32) and `bvecs` (u8). Each row is a little-endian i32 dimension followed by that many
//! values; every row of a file has the same dimension. A truncated file, a row of another dimension or a
//! non-finite float is an error naming the file and the row, never a panic.

use crate::error::{Error, Result};
use crate::vectors::VectorSet;
use quiver_kernels::MAX_DIM;
use std::path::{Path, PathBuf};

/// Rows of i32 values (ground-truth ids in `ivecs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntRows {
    /// Values per row.
    pub dim: usize,
    /// Row-major values.
    pub data: Vec<i32>,
}

impl IntRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }
    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[i32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Rows of u8 values (`bvecs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteRows {
    /// Values per row.
    pub dim: usize,
    /// Row-major values.
    pub data: Vec<u8>,
}

impl ByteRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }
    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[u8] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

fn read_all(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|cause| Error::Io { file: path.to_owned(), cause })
}

fn bad(file: &Path, row: usize, detail: impl Into<String>) -> Error {
    Error::Dataset { file: PathBuf::from(file), row, detail: detail.into() }
}

/// Walks the rows of a TEXMEX file with `elem` bytes per value, calling `f(row, bytes)` for each; stops after
/// `limit` rows. Returns the common dimension.
fn parse_rows(
    file: &Path,
    bytes: &[u8],
    elem: usize,
    limit: Option<usize>,
    mut f: impl FnMut(usize, &[u8]) -> Result<()>,
) -> Result<usize> {
    let mut pos = 0usize;
    let mut row = 0usize;
    let mut dim = None;
    while pos < bytes.len() && limit.is_none_or(|l| row < l) {
        let Some(head) = bytes.get(pos..pos + 4) else {
            return Err(bad(file, row, format!("truncated: {} bytes left, a row header needs 4", bytes.len() - pos)));
        };
        let d = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if d <= 0 || d as usize > MAX_DIM {
            return Err(bad(file, row, format!("dimension field is {d}: expected 1..={MAX_DIM}")));
        }
        let d = d as usize;
        match dim {
            None => dim = Some(d),
            Some(expected) if expected != d => {
                return Err(bad(file, row, format!("dimension {d} differs from the file's dimension {expected}")));
            }
            Some(_) => {}
        }
        let need = d * elem;
        let Some(body) = bytes.get(pos + 4..pos + 4 + need) else {
            return Err(bad(
                file,
                row,
                format!("truncated: row needs {need} bytes of values, {} left", bytes.len() - pos - 4),
            ));
        };
        f(row, body)?;
        pos += 4 + need;
        row += 1;
    }
    dim.ok_or_else(|| bad(file, 0, "file holds no rows"))
}

/// Reads an `fvecs` file.
pub fn read_fvecs(path: impl AsRef<Path>) -> Result<VectorSet> {
    read_fvecs_limit(path, None)
}

/// Reads at most `limit` rows of an `fvecs` file.
pub fn read_fvecs_limit(path: impl AsRef<Path>, limit: Option<usize>) -> Result<VectorSet> {
    let path = path.as_ref();
    let bytes = read_all(path)?;
    let mut data = Vec::with_capacity(bytes.len() / 4);
    let dim = parse_rows(path, &bytes, 4, limit, |row, body| {
        for (j, c) in body.chunks_exact(4).enumerate() {
            let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if !v.is_finite() {
                return Err(bad(path, row, format!("component {j} is {v}: expected a finite number")));
            }
            data.push(v);
        }
        Ok(())
    })?;
    VectorSet::from_flat(dim, data)
}

/// Reads an `ivecs` file.
pub fn read_ivecs(path: impl AsRef<Path>) -> Result<IntRows> {
    read_ivecs_limit(path, None)
}

/// Reads at most `limit` rows of an `ivecs` file.
pub fn read_ivecs_limit(path: impl AsRef<Path>, limit: Option<usize>) -> Result<IntRows> {
    let path = path.as_ref();
    let bytes = read_all(path)?;
    let mut data = Vec::with_capacity(bytes.len() / 4);
    let dim = parse_rows(path, &bytes, 4, limit, |_, body| {
        data.extend(body.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        Ok(())
    })?;
    Ok(IntRows { dim, data })
}

/// Reads a `bvecs` file.
pub fn read_bvecs(path: impl AsRef<Path>) -> Result<ByteRows> {
    let path = path.as_ref();
    let bytes = read_all(path)?;
    let mut data = Vec::with_capacity(bytes.len());
    let dim = parse_rows(path, &bytes, 1, None, |_, body| {
        data.extend_from_slice(body);
        Ok(())
    })?;
    Ok(ByteRows { dim, data })
}

fn write_rows<'a>(path: &Path, dim: usize, rows: impl Iterator<Item = &'a [u8]>) -> Result<()> {
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(&(dim as i32).to_le_bytes());
        out.extend_from_slice(r);
    }
    std::fs::write(path, out).map_err(|cause| Error::Io { file: path.to_owned(), cause })
}

/// Writes an `fvecs` file.
pub fn write_fvecs(path: impl AsRef<Path>, vectors: &VectorSet) -> Result<()> {
    let bytes: Vec<Vec<u8>> = vectors.iter().map(|r| r.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    write_rows(path.as_ref(), vectors.dim(), bytes.iter().map(Vec::as_slice))
}

/// Writes an `ivecs` file.
pub fn write_ivecs(path: impl AsRef<Path>, rows: &IntRows) -> Result<()> {
    let bytes: Vec<Vec<u8>> =
        rows.data.chunks_exact(rows.dim.max(1)).map(|r| r.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    write_rows(path.as_ref(), rows.dim, bytes.iter().map(Vec::as_slice))
}

/// Writes a `bvecs` file.
pub fn write_bvecs(path: impl AsRef<Path>, rows: &ByteRows) -> Result<()> {
    write_rows(path.as_ref(), rows.dim, rows.data.chunks_exact(rows.dim.max(1)))
}

/// The files of one benchmark set as `../shared/data/make_dataset.py` writes them: `NAME_base.fvecs`,
/// `NAME_query.fvecs`, `NAME_groundtruth.ivecs`, `NAME_groundtruth_dist.fvecs`, named by the prefix `DIR/NAME`.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Base vectors (ids are row numbers).
    pub base: VectorSet,
    /// Query vectors.
    pub queries: VectorSet,
    /// Top-k ids per query.
    pub groundtruth: IntRows,
    /// Distances of those ids (cosine distance for the WordNet sets), for tie-aware recall.
    pub groundtruth_dist: VectorSet,
}

impl Dataset {
    /// Loads the set named by `prefix` (`DIR/NAME`); `max_queries` keeps only the first queries.
    /// A directory holding exactly one set may be given instead of the prefix.
    pub fn load(prefix: impl AsRef<Path>, max_queries: Option<usize>) -> Result<Self> {
        let prefix = resolve_prefix(prefix.as_ref());
        let file = |suffix: &str| {
            let mut s = prefix.clone().into_os_string();
            s.push(suffix);
            PathBuf::from(s)
        };
        let base = read_fvecs(file("_base.fvecs"))?;
        let queries = read_fvecs_limit(file("_query.fvecs"), max_queries)?;
        let groundtruth = read_ivecs_limit(file("_groundtruth.ivecs"), max_queries)?;
        let groundtruth_dist = read_fvecs_limit(file("_groundtruth_dist.fvecs"), max_queries)?;
        let gt_file = file("_groundtruth.ivecs");
        if queries.dim() != base.dim() {
            return Err(bad(
                &file("_query.fvecs"),
                0,
                format!("dimension {} but base has {}", queries.dim(), base.dim()),
            ));
        }
        if groundtruth.len() < queries.len() || groundtruth_dist.len() < queries.len() {
            return Err(bad(
                &gt_file,
                groundtruth.len(),
                format!("ground truth for fewer than {} queries", queries.len()),
            ));
        }
        if groundtruth.dim != groundtruth_dist.dim() {
            return Err(bad(&file("_groundtruth_dist.fvecs"), 0, "row length differs from the ground-truth ids"));
        }
        if let Some(i) = groundtruth.data.iter().position(|&id| id < 0 || id as usize >= base.len()) {
            return Err(bad(&gt_file, i / groundtruth.dim, format!("id {} outside the base", groundtruth.data[i])));
        }
        Ok(Self { base, queries, groundtruth, groundtruth_dist })
    }
}

/// `DIR/NAME` as given, or `DIR/DIRNAME` when a set's directory was given.
fn resolve_prefix(p: &Path) -> PathBuf {
    if p.is_dir()
        && let Some(name) = p.file_name()
    {
        return p.join(name);
    }
    p.to_owned()
}
