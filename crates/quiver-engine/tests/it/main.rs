//! Integration tests of `quiver-engine` (one binary, as the habits doc asks).
#![allow(clippy::unwrap_used)]

mod common;
mod crud;
mod durability;
mod optimizer;
mod search;
