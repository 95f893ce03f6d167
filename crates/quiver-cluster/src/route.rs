//! Which shard a point belongs to, and which shards a search probes. Pure functions of the collection's spec: every
//! node computes the same answer, and the hashes are fixed here (not `std`'s, which may change between releases),
//! because a point written through one build must be found through another.

use quiver_engine::{PointId, PointInput};
use quiver_index::Metric;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::map::{CollectionSpec, Sharding};

/// A 64-bit mix (SplitMix64's finaliser): every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The shards that can hold `ids`, each with the ids to ask it for: under hash sharding every id's own shard,
/// under the other methods (where the id does not decide the shard) every shard with all of them.
pub fn ids_by_shard(spec: &CollectionSpec, ids: &[PointId]) -> std::collections::BTreeMap<u32, Vec<PointId>> {
    let mut out: std::collections::BTreeMap<u32, Vec<PointId>> = std::collections::BTreeMap::new();
    if spec.sharding.routes_by_id() {
        for id in ids {
            out.entry(shard_for_id(id, spec.shard_number)).or_default().push(*id);
        }
    } else {
        for s in 0..spec.shard_number {
            out.insert(s, ids.to_vec());
        }
    }
    out
}

/// FNV-1a over bytes, then mixed.
fn hash_bytes(tag: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(tag);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// Maps a hash onto `0..n` without the bias of `%` (Lemire's multiply-shift).
fn bucket(h: u64, n: u32) -> u32 {
    ((u128::from(h) * u128::from(n)) >> 64) as u32
}

/// The shard of point `id` under hash sharding with `n` shards.
pub fn shard_for_id(id: &PointId, n: u32) -> u32 {
    let h = match id {
        PointId::Num(x) => mix(*x),
        PointId::Uuid(u) => mix((*u as u64) ^ mix((*u >> 64) as u64)),
    };
    bucket(h, n)
}

/// The shard of a payload value under payload-key sharding with `n` shards: strings and integers (an integer and
/// its float spelling `3.0` are the same key); anything else is `None`.
pub fn shard_for_value(v: &Value, n: u32) -> Option<u32> {
    let h = match v {
        Value::String(s) => hash_bytes(1, s.as_bytes()),
        Value::Number(x) => {
            let i =
                x.as_i64().or_else(|| x.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))?;
            hash_bytes(2, &i.to_le_bytes())
        }
        Value::Bool(b) => hash_bytes(3, &[u8::from(*b)]),
        _ => return None,
    };
    Some(bucket(h, n))
}

/// The shards ordered by their centroid's distance to `vector` (prepared for `metric`), nearest first.
pub fn nearest_centroids(centroids: &[Vec<f32>], metric: Metric, vector: &[f32]) -> Vec<u32> {
    let mut d: Vec<(f32, u32)> =
        centroids.iter().enumerate().map(|(i, c)| (metric.distance(c, vector), i as u32)).collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().map(|(_, i)| i).collect()
}

/// The shard a point goes to. `vector` is the point's vector prepared for the metric (centroid sharding); `at`
/// names the point in errors (`points[3]`).
pub fn shard_for_point(spec: &CollectionSpec, p: &PointInput, vector: &[f32], at: &str) -> Result<u32> {
    let n = spec.shard_number;
    match &spec.sharding {
        Sharding::Hash => Ok(shard_for_id(&p.id, n)),
        Sharding::PayloadKey { key } => {
            let v = p.payload.as_ref().and_then(|pl| lookup(pl, key));
            match v {
                Some(v) => shard_for_value(v, n).ok_or_else(|| {
                    Error::invalid(
                        format!("{at}.payload.{key}"),
                        "a string, an integer or a bool (the collection is sharded by it)",
                        v,
                    )
                }),
                None => Err(Error::invalid(
                    format!("{at}.payload.{key}"),
                    "a value (the collection is sharded by this payload key)",
                    "nothing",
                )),
            }
        }
        // Not trained yet: by id, until the first centroids move every point to its nearest.
        Sharding::Centroid { centroids, .. } if centroids.is_empty() => Ok(shard_for_id(&p.id, n)),
        Sharding::Centroid { centroids, .. } => Ok(nearest_shard(centroids, spec.config.metric, vector)),
    }
}

/// The shard whose centroid is nearest `vector` (prepared for `metric`).
pub fn nearest_shard(centroids: &[Vec<f32>], metric: Metric, vector: &[f32]) -> u32 {
    let mut best = (f32::INFINITY, 0u32);
    for (i, c) in centroids.iter().enumerate() {
        let d = metric.distance(c, vector);
        if d.total_cmp(&best.0).is_lt() {
            best = (d, i as u32);
        }
    }
    best.1
}

/// The value at a dotted key (objects only).
pub fn lookup<'a>(payload: &'a quiver_engine::Payload, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let mut cur = payload.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// The shards a search probes: all, or under centroid sharding the `shards_to_search` nearest the query.
pub fn shards_to_search(spec: &CollectionSpec, query: Option<&[f32]>, wanted: Option<usize>) -> Result<Vec<u32>> {
    let all: Vec<u32> = (0..spec.shard_number).collect();
    let Some(k) = wanted else { return Ok(all) };
    if k == 0 {
        return Err(Error::invalid("shards_to_search", format!("1 to {}", spec.shard_number), 0));
    }
    match (spec.sharding.settled_centroids(), query) {
        (Some(centroids), Some(q)) if k < all.len() => {
            let mut order = nearest_centroids(centroids, spec.config.metric, q);
            order.truncate(k);
            Ok(order)
        }
        _ => Ok(all),
    }
}
