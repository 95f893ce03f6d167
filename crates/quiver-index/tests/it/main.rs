//! Integration tests of quiver-index (one binary, habit 13).

#![allow(clippy::unwrap_used)] // test helpers panic on broken fixtures by design

mod dataset;
mod flat;
mod hnsw;
mod ivf;
mod params;
mod quant;
mod support;
