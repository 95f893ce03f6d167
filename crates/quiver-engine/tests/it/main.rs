//! Integration tests of `quiver-engine` (one binary, as the habits doc asks).
#![allow(clippy::unwrap_used)]

mod common;
mod concurrency;
mod crud;
mod database;
mod disk_full;
mod durability;
mod explore;
mod feed;
mod fixture;
mod fulltext;
mod geo;
mod map;
mod memory;
mod named;
mod optimizer;
mod process;
mod recall;
mod search;
mod snapshot;
mod sparse;
mod upgrade;
