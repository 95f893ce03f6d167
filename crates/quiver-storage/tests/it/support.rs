//! Helpers shared by the integration tests.

use std::sync::Arc;

use quiver_storage::{Directory, MemDirectory};

/// A directory holding exactly `files`, all durable.
pub fn mem_with(seed: u64, files: &[(&str, &[u8])]) -> MemDirectory {
    let dir = MemDirectory::new(seed);
    for (name, bytes) in files {
        let mut f = dir.create(name).unwrap();
        f.write_all(bytes).unwrap();
        f.sync().unwrap();
    }
    dir.sync_dir().unwrap();
    dir
}

/// `dir` as the trait object the WAL takes.
pub fn arc(dir: &MemDirectory) -> Arc<dyn Directory> {
    Arc::new(dir.clone())
}

/// A payload that names its sequence number and has a length depending on it.
pub fn payload(seq: u64) -> Vec<u8> {
    let len = 1 + (seq as usize * 37) % 300;
    (0..len).map(|i| (seq as usize + i) as u8).collect()
}
