//! Integration tests of `quiver-storage`, one binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz;
mod manifest;
mod segment;
mod sigkill;
mod snapshot;
mod support;
mod wal;
