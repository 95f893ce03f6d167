//! The disk seam: a [`Directory`] is one flat directory of named files. Everything this crate writes goes through
//! it, so tests can swap the real file system ([`FsDirectory`]) for the in-memory twin ([`crate::MemDirectory`])
//! that keeps live and durable bytes apart and can "crash".
//!
//! Durability contract (both implementations, and any new one, must honour it):
//! - bytes written through a [`WritableFile`] are durable only after [`WritableFile::sync`] returned `Ok`;
//! - a create, rename or remove is durable only after [`Directory::sync_dir`] returned `Ok`;
//! - [`Directory::rename`] atomically replaces the target;
//! - [`Directory::truncate`] makes the new length durable before it returns.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::mapped::Mapped;

/// Suffix of every temporary file this crate writes. A file with this suffix is never part of a committed state:
/// it is ignored by readers and removed by [`remove_temp_files`].
pub const TEMP_SUFFIX: &str = ".tmp";

/// Longest file name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A file open for appending. Every write goes to the end of the file.
pub trait WritableFile: Send + fmt::Debug {
    /// Appends `buf` (not yet durable).
    fn write_all(&mut self, buf: &[u8]) -> Result<()>;
    /// Makes every byte written so far durable (`fdatasync`). An error means nothing can be assumed about the
    /// bytes written since the last successful sync; callers must not retry and treat a later success as cover.
    fn sync(&mut self) -> Result<()>;
    /// Current length of the file in bytes (live, not necessarily durable).
    fn size(&self) -> u64;
    /// Cuts the file back to `len` bytes (at most [`WritableFile::size`]); later writes append from there. Rolls
    /// back a write that failed part-way (a full disk); not durable until the next [`WritableFile::sync`].
    fn truncate(&mut self, len: u64) -> Result<()>;
}

/// One flat directory of named files. Names are plain (see [`check_name`]).
pub trait Directory: Send + Sync + fmt::Debug {
    /// The directory's path (used to name files in errors; the in-memory twin returns a made-up one).
    fn root(&self) -> &Path;
    /// Names of all regular files, sorted.
    fn list(&self) -> Result<Vec<String>>;
    /// Whether `name` exists.
    fn exists(&self, name: &str) -> Result<bool>;
    /// Length of `name` in bytes.
    fn file_len(&self, name: &str) -> Result<u64>;
    /// The whole content of `name`.
    fn read(&self, name: &str) -> Result<Vec<u8>>;
    /// `len` bytes of `name` starting at `offset`; fewer only at end of file.
    fn read_range(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>>;
    /// Creates `name` empty (truncating an existing file) and opens it for appending.
    fn create(&self, name: &str) -> Result<Box<dyn WritableFile>>;
    /// Opens the existing `name` for appending at its end.
    fn open_append(&self, name: &str) -> Result<Box<dyn WritableFile>>;
    /// Renames `from` to `to`, atomically replacing `to`.
    fn rename(&self, from: &str, to: &str) -> Result<()>;
    /// Removes `name`.
    fn remove(&self, name: &str) -> Result<()>;
    /// Cuts `name` to `len` bytes and makes that durable.
    fn truncate(&self, name: &str, len: u64) -> Result<()>;
    /// Makes every create, rename and remove so far durable.
    fn sync_dir(&self) -> Result<()>;
    /// Maps `name` read-only (memory map on a real file system). The file must not change while mapped.
    fn map(&self, name: &str) -> Result<Mapped>;

    /// Full path of `name`, for error messages.
    fn file_path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }
}

/// Rejects names that are not a plain file name inside the directory: empty, `.` or `..`, containing `/`, `\` or
/// NUL, or longer than [`MAX_NAME_LEN`] bytes.
pub fn check_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "names a directory"
    } else if name.contains(['/', '\\']) {
        "contains a path separator"
    } else if name.contains('\0') {
        "contains a NUL byte"
    } else if name.len() > MAX_NAME_LEN {
        "longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName { name: name.to_owned(), reason })
}

/// Removes every `*.tmp` file (left by a write interrupted before its rename) and syncs the directory if any was
/// removed. Returns the names removed.
pub fn remove_temp_files(dir: &dyn Directory) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in dir.list()? {
        if name.ends_with(TEMP_SUFFIX) {
            dir.remove(&name)?;
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        dir.sync_dir()?;
    }
    Ok(removed)
}

/// The real file system.
#[derive(Debug, Clone)]
pub struct FsDirectory {
    root: PathBuf,
}

impl FsDirectory {
    /// Opens `root`, creating it (and its parents) if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<FsDirectory> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        Ok(FsDirectory { root })
    }

    /// Opens `root`, which must already be a directory; creates nothing (for read-only tools).
    pub fn open_existing(root: impl Into<PathBuf>) -> Result<FsDirectory> {
        let root = root.into();
        match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(FsDirectory { root }),
            Ok(_) => {
                Err(Error::InvalidArgument { name: "root", detail: format!("{} is not a directory", root.display()) })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound { file: root }),
            Err(e) => Err(Error::io(&root, e)),
        }
    }

    fn path_of(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.root.join(name))
    }
}

impl Directory for FsDirectory {
    fn root(&self) -> &Path {
        &self.root
    }

    fn list(&self) -> Result<Vec<String>> {
        let io = |e| Error::io(&self.root, e);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_type().map_err(io)?.is_file()
                && let Ok(name) = entry.file_name().into_string()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, name: &str) -> Result<bool> {
        let path = self.path_of(name)?;
        path.try_exists().map_err(|e| Error::io(&path, e))
    }

    fn file_len(&self, name: &str) -> Result<u64> {
        let path = self.path_of(name)?;
        Ok(std::fs::metadata(&path).map_err(|e| fs_err(&path, e))?.len())
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.path_of(name)?;
        std::fs::read(&path).map_err(|e| fs_err(&path, e))
    }

    fn read_range(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let path = self.path_of(name)?;
        let io = |e| fs_err(&path, e);
        let mut file = File::open(&path).map_err(io)?;
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut buf = Vec::with_capacity(len.min(1 << 24));
        file.take(len as u64).read_to_end(&mut buf).map_err(io)?;
        Ok(buf)
    }

    fn create(&self, name: &str) -> Result<Box<dyn WritableFile>> {
        let path = self.path_of(name)?;
        let file =
            OpenOptions::new().write(true).create(true).truncate(true).open(&path).map_err(|e| fs_err(&path, e))?;
        Ok(Box::new(FsFile { file, path, len: 0 }))
    }

    fn open_append(&self, name: &str) -> Result<Box<dyn WritableFile>> {
        let path = self.path_of(name)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(|e| fs_err(&path, e))?;
        let len = file.metadata().map_err(|e| fs_err(&path, e))?.len();
        Ok(Box::new(FsFile { file, path, len }))
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (src, dst) = (self.path_of(from)?, self.path_of(to)?);
        std::fs::rename(&src, &dst).map_err(|e| fs_err(&src, e))
    }

    fn remove(&self, name: &str) -> Result<()> {
        let path = self.path_of(name)?;
        std::fs::remove_file(&path).map_err(|e| fs_err(&path, e))
    }

    fn truncate(&self, name: &str, len: u64) -> Result<()> {
        let path = self.path_of(name)?;
        let io = |e| fs_err(&path, e);
        let file = OpenOptions::new().write(true).open(&path).map_err(io)?;
        file.set_len(len).map_err(io)?;
        file.sync_all().map_err(io)
    }

    fn sync_dir(&self) -> Result<()> {
        let io = |e| Error::io(&self.root, e);
        File::open(&self.root).map_err(io)?.sync_all().map_err(io)
    }

    fn map(&self, name: &str) -> Result<Mapped> {
        let path = self.path_of(name)?;
        let file = File::open(&path).map_err(|e| fs_err(&path, e))?;
        crate::mapped::map_file(&file).map_err(|e| Error::io(&path, e))
    }
}

fn fs_err(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotFound { file: path.to_owned() }
    } else {
        Error::io(path, e)
    }
}

#[derive(Debug)]
struct FsFile {
    file: File,
    path: PathBuf,
    len: u64,
}

impl WritableFile for FsFile {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.file.write_all(buf).map_err(|e| Error::io(&self.path, e))?;
        self.len += buf.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    fn size(&self) -> u64 {
        self.len
    }

    fn truncate(&mut self, len: u64) -> Result<()> {
        let len = len.min(self.len);
        self.file.set_len(len).map_err(|e| Error::io(&self.path, e))?;
        self.file.seek(SeekFrom::Start(len)).map_err(|e| Error::io(&self.path, e))?;
        self.len = len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_rejected() {
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "a\0b", &"x".repeat(256)] {
            let err = check_name(bad).unwrap_err();
            assert!(err.is_user_error(), "{bad:?}: {err}");
        }
        for good in ["MANIFEST-1", "wal-00000000000000000001.log", "a.tmp", "..x"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn open_existing_creates_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing");
        assert!(matches!(FsDirectory::open_existing(&missing), Err(Error::NotFound { .. })));
        assert!(!missing.exists());
        std::fs::write(tmp.path().join("file"), b"x").unwrap();
        assert!(FsDirectory::open_existing(tmp.path().join("file")).unwrap_err().is_user_error());
        let d = FsDirectory::open_existing(tmp.path()).unwrap();
        assert_eq!(d.list().unwrap(), vec!["file".to_owned()]);
    }

    #[test]
    fn fs_directory_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = FsDirectory::open(tmp.path().join("d")).unwrap();
        let mut f = dir.create("a.tmp").unwrap();
        f.write_all(b"hello ").unwrap();
        f.write_all(b"world").unwrap();
        f.sync().unwrap();
        assert_eq!(f.size(), 11);
        drop(f);
        dir.rename("a.tmp", "a").unwrap();
        dir.sync_dir().unwrap();
        assert_eq!(dir.list().unwrap(), vec!["a".to_owned()]);
        assert_eq!(dir.read("a").unwrap(), b"hello world");
        assert_eq!(dir.read_range("a", 6, 100).unwrap(), b"world");
        let mut f = dir.open_append("a").unwrap();
        assert_eq!(f.size(), 11);
        f.write_all(b"!").unwrap();
        drop(f);
        dir.truncate("a", 5).unwrap();
        assert_eq!(dir.read("a").unwrap(), b"hello");
        assert_eq!(&dir.map("a").unwrap()[..], b"hello");
        assert!(matches!(dir.read("missing"), Err(Error::NotFound { .. })));
        dir.create("b.tmp").unwrap();
        assert_eq!(remove_temp_files(&dir).unwrap(), vec!["b.tmp".to_owned()]);
        dir.remove("a").unwrap();
        assert!(!dir.exists("a").unwrap());
    }
}
