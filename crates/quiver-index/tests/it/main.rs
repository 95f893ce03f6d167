//! Integration tests of quiver-index (one binary, habit 13).

#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures by design

mod common;
mod dataset;
mod flat;
mod hnsw;
mod ivf;
mod kdlsh;
mod kdtree;
mod lsh;
mod params;
mod quant;
mod support;
