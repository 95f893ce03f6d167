//! Shared fixtures.

use std::sync::Arc;

use quiver_engine::{Clock, Collection, CollectionConfig, ManualClock, Payload};
use quiver_index::Metric;
use quiver_storage::{Directory, MemDirectory};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A collection in an in-memory crash-simulating directory, a manual clock, no background optimizer.
pub fn mem_collection(dim: usize, metric: Metric, tweak: impl FnOnce(&mut CollectionConfig)) -> Fixture {
    let dir = MemDirectory::new(11);
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let mut cfg = CollectionConfig::new(dim, metric);
    cfg.optimizer.interval_ms = 0;
    tweak(&mut cfg);
    let c = Collection::create("test", Arc::new(dir.clone()), cfg, clock.clone()).unwrap();
    Fixture { dir, clock, c }
}

pub struct Fixture {
    pub dir: MemDirectory,
    pub clock: Arc<ManualClock>,
    pub c: Collection,
}

impl Fixture {
    /// Reopens the collection over the same directory (what survived).
    pub fn reopen(&self) -> quiver_engine::Result<Collection> {
        let clock: Arc<dyn Clock> = self.clock.clone();
        Collection::open("test", Arc::new(self.dir.clone()) as Arc<dyn Directory>, clock)
    }
}

pub fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect()
}

/// Vector `i` of `random_vectors(_, dim, seed)`, without keeping the others.
pub fn random_vector_at(i: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(dim);
    for _ in 0..=i {
        v.clear();
        v.extend((0..dim).map(|_| rng.random_range(-1.0f32..1.0)));
    }
    v
}

pub fn payload(v: serde_json::Value) -> Payload {
    v.as_object().unwrap().clone()
}

/// Copies a directory tree (a committed fixture into a temporary directory, never opened in place).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
