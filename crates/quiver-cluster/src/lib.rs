//! QuiverDB's cluster mode on NATS JetStream. Nothing here is a consensus or replication protocol of its own:
//! JetStream (a Raft-replicated log, KV store) holds every shard's write log and the shard map, and QuiverDB nodes
//! are replaceable processes on top of it.
//!
//! | module | what |
//! |---|---|
//! | [`map`] | collections, shards, replica assignment and members; compare-and-set transitions over a [`map::MapStore`] |
//! | [`plan`] | failover and rebalancing as a pure function of a collection's spec and the live members: which nodes copy which shards |
//! | [`route`] | the shard of a point (hash of the id, a payload key's value, the nearest centroid) and the shards a search probes |
//! | [`nats`] | the NATS side: connection and its safety check, the KV shard map, shard streams, node-to-node requests |
//! | [`replica`] | a node's replica of a shard: consumes the shard's stream in order and applies it to a local collection |
//!
//! The HTTP side (routing requests, merging shard answers) is in `quiver-server`'s `cluster` module.

pub mod error;
pub mod map;
pub mod nats;
pub mod plan;
pub mod replica;
pub mod route;

pub use error::{Error, Result};
pub use map::{CollectionSpec, NodeId, NodeInfo, ShardMap, Sharding};
pub use nats::{Nats, RpcReply, RpcRequest};
