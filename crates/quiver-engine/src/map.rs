//! A 2-D map of a collection: an evenly spaced sample of its points laid out by
//! [`quiver_index::layout`] (PCA or UMAP), each with the payload values a picture needs (a colour key, a text to
//! show on hover), and where the IVF cells sit on it. The REST route, the console and `quiver demo --map` all
//! draw from [`Collection::map`].

use std::time::Instant;

pub use quiver_index::layout::LayoutMethod;
use quiver_index::layout::{self, LayoutParams};
use serde::Serialize;
use serde_json::Value;

use crate::collection::Collection;
use crate::error::{Error, Result};
use crate::filter::{DEFAULT_MAX_FILTER_DEPTH, Filter};
use crate::id::PointId;
use crate::payload::{Payload, values_at};
use crate::types::Record;

/// Most points a map samples.
pub const MAX_MAP_SAMPLE: usize = 50_000;
/// Points sampled when the request does not say.
pub const DEFAULT_MAP_SAMPLE: usize = 5_000;
/// Characters of a point's text kept for the hover label.
pub const MAP_TEXT_CHARS: usize = 240;

/// What to map.
#[derive(Clone, Debug)]
pub struct MapRequest {
    /// Points to sample (1 to [`MAX_MAP_SAMPLE`]).
    pub sample: usize,
    /// The layout.
    pub method: LayoutMethod,
    /// UMAP's neighbours per point.
    pub neighbors: usize,
    /// Seed of every random draw (same data, request and seed → the same map).
    pub seed: u64,
    /// Payload key whose value colours each point.
    pub color_by: Option<String>,
    /// Payload key holding the text shown for a point (`text` when not given and the points have it).
    pub text_field: Option<String>,
    /// Only points this filter admits.
    pub filter: Option<Filter>,
}

impl Default for MapRequest {
    fn default() -> Self {
        let p = LayoutParams::default();
        Self {
            sample: DEFAULT_MAP_SAMPLE,
            method: p.method,
            neighbors: p.neighbors,
            seed: p.seed,
            color_by: None,
            text_field: None,
            filter: None,
        }
    }
}

/// One point on the map.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MapPoint {
    /// The point's id.
    pub id: PointId,
    /// Position in `[0, 1]`.
    pub x: f32,
    /// Position in `[0, 1]`.
    pub y: f32,
    /// The value at `color_by` (the first one, when the path holds several); absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<Value>,
    /// The start of the point's text; absent when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Where an IVF cell sits on the map: the mean position of the sampled points nearest its centroid.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MapCell {
    /// Position in `[0, 1]`.
    pub x: f32,
    /// Position in `[0, 1]`.
    pub y: f32,
    /// Sampled points in the cell.
    pub points: usize,
}

/// A collection's map.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CollectionMap {
    /// `pca` or `umap`.
    pub method: &'static str,
    /// Points the filter admits (all live points without one).
    pub total: u64,
    /// The sampled points, in id order; both axes share one scale (distances are comparable across them).
    pub points: Vec<MapPoint>,
    /// The cells: of the IVF index of the largest segment that has one, or a cluster's shard centroids.
    pub cells: Vec<MapCell>,
    /// Share of the variance along the first two principal components.
    pub explained_variance: [f64; 2],
    /// The payload key the text came from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_field: Option<String>,
    /// Milliseconds spent.
    pub took_ms: u64,
}

impl Collection {
    /// `n` of the points `filter` admits, evenly spaced in id order (all of them when there are no more than
    /// `n`), and how many it admits in all.
    pub fn sample(
        &self,
        n: usize,
        filter: Option<&Filter>,
        with_payload: bool,
        with_vector: bool,
    ) -> Result<(u64, Vec<Record>)> {
        self.check_open()?;
        if let Some(f) = filter {
            f.validate(DEFAULT_MAX_FILTER_DEPTH)?;
        }
        let segs = self.snapshot();
        let rows = crate::collection::live_rows_by_id(&segs, filter, self.now_ms());
        let total = rows.len();
        let picks: Vec<usize> = if total <= n {
            (0..total).collect()
        } else {
            (0..n).map(|i| (i as u128 * total as u128 / n as u128) as usize).collect()
        };
        let records = picks
            .into_iter()
            .map(|i| {
                let (_, si, row) = rows[i];
                crate::collection::record(&segs[si].data.read(), row, with_payload, with_vector)
            })
            .collect();
        Ok((total as u64, records))
    }

    /// The centroids of the IVF index of the largest segment that has one (row-major), if any.
    pub fn cell_centroids(&self) -> Option<Vec<f32>> {
        let segs = self.snapshot();
        segs.iter()
            .filter_map(|s| {
                let d = s.data.read();
                let c = d.index.as_ref()?.cell_centroids()?.to_vec();
                Some((d.len(), c))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, c)| c)
    }

    /// A 2-D map of (a sample of) the collection. See the module docs.
    pub fn map(&self, req: &MapRequest) -> Result<CollectionMap> {
        let t = Instant::now();
        req.validate()?;
        if !self.config().has_dense() {
            return Err(Error::invalid(
                "collection",
                "a collection with a dense vector (the map lays one out)",
                "a collection of sparse vectors only",
            ));
        }
        let (total, mut records) = self.sample(req.sample, req.filter.as_ref(), true, true)?;
        let cfg = self.config();
        // Named vectors: the map lays out the first one (points without it are left out).
        if let Some(first) = &cfg.vector_name {
            records.retain_mut(|r| {
                r.vector = r.vectors.take().and_then(|mut v| v.remove(first));
                r.vector.is_some()
            });
        }
        let mut map = map_records(&records, total, cfg.dimension, cfg.metric, self.cell_centroids().as_deref(), req)?;
        map.took_ms = t.elapsed().as_millis() as u64;
        Ok(map)
    }
}

impl MapRequest {
    /// Checks the request's own fields (the filter is checked where it is evaluated).
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_MAP_SAMPLE).contains(&self.sample) {
            return Err(Error::invalid("sample", format!("1..={MAX_MAP_SAMPLE}"), self.sample));
        }
        for (field, key) in [("color_by", &self.color_by), ("text_field", &self.text_field)] {
            if let Some(k) = key
                && (k.is_empty() || k.len() > 256)
            {
                return Err(Error::invalid(field, "a payload key of 1-256 bytes", format!("{} bytes", k.len())));
            }
        }
        Ok(())
    }
}

/// The map of `records` (sampled with payloads and vectors from `total` points): laid out, coloured, labelled,
/// with `centroids` (row-major, if any: IVF cells, or a cluster's shard centroids) placed among them.
pub fn map_records(
    records: &[Record],
    total: u64,
    dim: usize,
    metric: quiver_index::Metric,
    centroids: Option<&[f32]>,
    req: &MapRequest,
) -> Result<CollectionMap> {
    let t = Instant::now();
    req.validate()?;
    let data: Vec<f32> = records.iter().flat_map(|r| r.vector.as_deref().unwrap_or(&[]).iter().copied()).collect();
    let params = LayoutParams { method: req.method, neighbors: req.neighbors, epochs: None, seed: req.seed };
    let laid = layout::layout(&data, dim, metric, &params)?;
    let coords = normalise(&laid.coords);
    let text_field = req.text_field.clone().or_else(|| {
        let has_text = records.iter().any(|r| r.payload.as_ref().is_some_and(|p| text_at(p, "text").is_some()));
        has_text.then(|| "text".to_owned())
    });
    let points: Vec<MapPoint> = records
        .iter()
        .zip(&coords)
        .map(|(r, c)| {
            let p = r.payload.as_ref();
            MapPoint {
                id: r.id,
                x: c[0],
                y: c[1],
                color: req
                    .color_by
                    .as_deref()
                    .and_then(|k| p.and_then(|p| values_at(p, k).first().map(|v| (*v).clone()))),
                text: text_field.as_deref().and_then(|k| p.and_then(|p| text_at(p, k))),
            }
        })
        .collect();
    let cells = match centroids {
        Some(c) if !points.is_empty() && !c.is_empty() && c.len().is_multiple_of(dim) => {
            cells_on_map(&data, dim, c, &coords)
        }
        _ => Vec::new(),
    };
    Ok(CollectionMap {
        method: req.method.name(),
        total,
        points,
        cells,
        explained_variance: laid.explained,
        text_field,
        took_ms: t.elapsed().as_millis() as u64,
    })
}

/// What a map needs of payload `p`: the first value at each of `keys`, at the same (dotted) path, strings cut
/// to one character over [`MAP_TEXT_CHARS`] (so a cut text still reads as cut). A cluster's shards send this
/// instead of whole payloads.
pub fn map_payload(p: &Payload, keys: &[String]) -> Payload {
    let mut out = Payload::new();
    for k in keys {
        if let Some(v) = values_at(p, k).first() {
            let v = match v {
                Value::String(s) if s.chars().count() > MAP_TEXT_CHARS + 1 => {
                    Value::String(s.chars().take(MAP_TEXT_CHARS + 1).collect())
                }
                other => (*other).clone(),
            };
            crate::payload::set_at(&mut out, k, v);
        }
    }
    out
}

/// The first string at `key`, cut to [`MAP_TEXT_CHARS`] characters.
fn text_at(p: &Payload, key: &str) -> Option<String> {
    values_at(p, key).into_iter().find_map(|v| v.as_str()).map(|s| {
        let mut t: String = s.chars().take(MAP_TEXT_CHARS).collect();
        if t.len() < s.len() {
            t.push('…');
        }
        t
    })
}

/// Coordinates scaled into `[0, 1]` with one scale for both axes (the shorter one centred).
fn normalise(coords: &[[f32; 2]]) -> Vec<[f32; 2]> {
    if coords.is_empty() {
        return Vec::new();
    }
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for c in coords {
        for a in 0..2 {
            lo[a] = lo[a].min(c[a]);
            hi[a] = hi[a].max(c[a]);
        }
    }
    let span = (hi[0] - lo[0]).max(hi[1] - lo[1]);
    let s = if span > 0.0 { 1.0 / span } else { 0.0 };
    let pad = [(1.0 - (hi[0] - lo[0]) * s) / 2.0, (1.0 - (hi[1] - lo[1]) * s) / 2.0];
    coords.iter().map(|c| [(c[0] - lo[0]) * s + pad[0], (c[1] - lo[1]) * s + pad[1]]).collect()
}

/// Each cell's position: the mean map position of the sampled points whose nearest centroid it is (a UMAP map
/// has no projection to put a centroid through). Cells without a sampled point are left out. Points are assigned
/// by Euclidean distance with the tiled kernel (rows are unit length under cosine, so that is the angle's order
/// up to the centroids' norms — close enough to place a marker, and fast for thousands of cells).
fn cells_on_map(data: &[f32], dim: usize, centroids: &[f32], coords: &[[f32; 2]]) -> Vec<MapCell> {
    let k = centroids.len() / dim.max(1);
    let mut sums = vec![(0f64, 0f64, 0usize); k];
    for (cell, c) in quiver_index::kmeans::nearest_centroids(data, centroids, dim).into_iter().zip(coords) {
        let s = &mut sums[cell];
        s.0 += c[0] as f64;
        s.1 += c[1] as f64;
        s.2 += 1;
    }
    sums.into_iter()
        .filter(|s| s.2 > 0)
        .map(|(x, y, n)| MapCell { x: (x / n as f64) as f32, y: (y / n as f64) as f32, points: n })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_payload_keeps_the_first_value_at_each_path() {
        let p: Payload = serde_json::from_value(serde_json::json!({
            "a": {"b": [3, 4]}, "text": "x".repeat(500), "other": 1
        }))
        .unwrap();
        let m = map_payload(&p, &["a.b".into(), "text".into(), "missing".into()]);
        assert_eq!(values_at(&m, "a.b"), [&Value::from(3)]);
        assert_eq!(m["text"].as_str().unwrap().chars().count(), MAP_TEXT_CHARS + 1);
        assert!(!m.contains_key("other") && !m.contains_key("missing"));
        assert!(text_at(&m, "text").unwrap().ends_with('…'));
    }

    #[test]
    fn normalise_keeps_the_aspect_and_fits_the_unit_square() {
        let n = normalise(&[[0.0, 0.0], [4.0, 2.0], [2.0, 1.0]]);
        assert_eq!(n[0], [0.0, 0.25]);
        assert_eq!(n[1], [1.0, 0.75]);
        assert_eq!(n[2], [0.5, 0.5]);
        assert_eq!(normalise(&[[3.0, 3.0]]), vec![[0.5, 0.5]]);
    }
}
