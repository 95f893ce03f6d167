//! Ranked queries beyond one nearest-vector search: BM25 full-text search over a text-indexed payload key, and
//! multi-stage queries whose `prefetch` stages feed a fusion (reciprocal rank fusion, distribution-based score
//! fusion) or a re-ranking by another query.
//!
//! A [`Stage`] is a tree: each stage runs its prefetches first (each with its own query, filter and limit), then
//! either fuses their hit lists or restricts its own query to the points they found. Prefetches carry no
//! payloads; the final page is read once at the end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use quiver_index::Neighbor;
use rayon::prelude::*;
use serde::Serialize;

use crate::collection::{Collection, MAX_LIMIT, Page, merge_hits};
use crate::error::{Error, Result};
use crate::filter::{Condition, DEFAULT_MAX_FILTER_DEPTH, Filter};
use crate::fulltext::{Bm25Query, TextStats};
use crate::id::PointId;
use crate::payload_index::FieldType;
use crate::segment::Segment;
use crate::types::{ScoredPoint, SearchRequest};

/// Deepest nesting of prefetch stages.
pub const MAX_PREFETCH_DEPTH: usize = 8;
/// Reciprocal rank fusion's default `k` (the value of Cormack et al., and Qdrant's).
pub const DEFAULT_RRF_K: u32 = 60;

/// A BM25 full-text query over one payload key that has a text index.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSearchRequest {
    /// The text-indexed payload key.
    pub key: String,
    /// The query text (analyzed like the indexed text).
    pub text: String,
    /// How many results.
    pub limit: usize,
    /// Results to skip.
    pub offset: usize,
    /// Only points this filter admits (BM25's statistics still count every live point).
    pub filter: Option<Filter>,
    /// Attach payloads.
    pub with_payload: bool,
    /// Attach vectors.
    pub with_vector: bool,
    /// Drop hits scoring below this.
    pub score_threshold: Option<f32>,
    /// Wait until the operation with this sequence number is applied.
    pub min_seq: Option<u64>,
    /// Statistics to score with instead of this collection's own: a cluster sums every shard's
    /// ([`Collection::text_stats`]) so that each shard scores as one collection would. `df` has one count per
    /// distinct query term, in the order the query's analysis gives them.
    pub stats: Option<TextStats>,
}

impl TextSearchRequest {
    /// The `limit` best BM25 matches of `text` in `key`, with payloads.
    pub fn new(key: impl Into<String>, text: impl Into<String>, limit: usize) -> TextSearchRequest {
        TextSearchRequest {
            key: key.into(),
            text: text.into(),
            limit,
            offset: 0,
            filter: None,
            with_payload: true,
            with_vector: false,
            score_threshold: None,
            min_seq: None,
            stats: None,
        }
    }
}

/// `order_by` of a scroll: points ordered by the value at a payload key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// The payload key: numbers, or RFC 3339 datetimes when the key has a datetime index.
    pub key: String,
    /// Largest first.
    pub descending: bool,
    /// Only values at or after this one in the order (a number, or a datetime string for a datetime key).
    pub start_from: Option<serde_json::Value>,
}

/// How a fusion stage combines its prefetches' hit lists.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Fusion {
    /// Reciprocal rank fusion: a point scores `Σ 1 / (k + rank)` over the lists holding it (rank from 1).
    Rrf {
        /// The rank constant (default [`DEFAULT_RRF_K`]).
        k: u32,
    },
    /// Distribution-based score fusion: each list's scores are mapped to `[0, 1]` over `mean ± 3σ` of that
    /// list (flipped for distances), then summed per point.
    Dbsf,
}

/// What a stage ranks by.
#[derive(Debug, Clone, PartialEq)]
pub enum Ranking {
    /// Nearest neighbours of a vector (the request's `limit`, `offset`, `filter`, ... apply).
    Nearest(SearchRequest),
    /// BM25 over a text-indexed key.
    Text(TextSearchRequest),
    /// Scored against several examples (recommendation by best or summed score, discovery, context); with
    /// prefetches, exactly over the points they found.
    Examples(crate::explore::ExampleSearch),
    /// Fuse the prefetches' lists.
    Fusion {
        /// How.
        method: Fusion,
        /// One weight per prefetch (finite, ≥ 0): a list's contributions are multiplied by its weight. Empty:
        /// all 1.
        weights: Vec<f32>,
        /// How many results.
        limit: usize,
        /// Results to skip.
        offset: usize,
        /// Drop hits whose fused score is below this.
        score_threshold: Option<f32>,
        /// Attach payloads.
        with_payload: bool,
        /// Attach vectors.
        with_vector: bool,
    },
}

/// One stage of a multi-stage query.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Run first. A nearest or text stage then only ranks the points they found; a fusion stage fuses them.
    pub prefetch: Vec<Stage>,
    /// What this stage ranks by.
    pub ranking: Ranking,
}

impl Stage {
    /// A stage with no prefetch.
    pub fn new(ranking: Ranking) -> Stage {
        Stage { prefetch: Vec::new(), ranking }
    }

    fn depth(&self) -> usize {
        1 + self.prefetch.iter().map(Stage::depth).max().unwrap_or(0)
    }
}

/// Fuses ranked hit lists (each best first). `higher_is_better[i]` says whether list `i`'s scores grow with
/// relevance (false for Euclidean distances). The result is best first, ties by id.
pub fn fuse(method: Fusion, lists: &[Vec<(PointId, f32)>], higher_is_better: &[bool]) -> Vec<(PointId, f32)> {
    fuse_weighted(method, lists, higher_is_better, &[])
}

/// [`fuse`] with a weight per list (missing weights are 1): list `i`'s contributions are multiplied by
/// `weights[i]` (weighted RRF: `Σ wᵢ / (k + rankᵢ)`).
pub fn fuse_weighted(
    method: Fusion,
    lists: &[Vec<(PointId, f32)>],
    higher_is_better: &[bool],
    weights: &[f32],
) -> Vec<(PointId, f32)> {
    let mut acc: HashMap<PointId, f32> = HashMap::new();
    for (i, list) in lists.iter().enumerate() {
        let w = weights.get(i).copied().unwrap_or(1.0);
        match method {
            Fusion::Rrf { k } => {
                for (rank, (id, _)) in list.iter().enumerate() {
                    *acc.entry(*id).or_default() += w / (k as f32 + rank as f32 + 1.0);
                }
            }
            Fusion::Dbsf => {
                let sign = if higher_is_better.get(i).copied().unwrap_or(true) { 1.0 } else { -1.0 };
                let n = list.len() as f64;
                let mean = list.iter().map(|(_, s)| f64::from(sign * s)).sum::<f64>() / n.max(1.0);
                let var = list.iter().map(|(_, s)| (f64::from(sign * s) - mean).powi(2)).sum::<f64>() / n.max(1.0);
                let (lo, hi) = (mean - 3.0 * var.sqrt(), mean + 3.0 * var.sqrt());
                for (id, s) in list {
                    let x = f64::from(sign * s);
                    // One score (or all equal): σ = 0, every hit sits at the middle.
                    let norm = if hi > lo { ((x - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.5 };
                    *acc.entry(*id).or_default() += w * norm as f32;
                }
            }
        }
    }
    let mut out: Vec<(PointId, f32)> = acc.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// No weights, or one finite non-negative weight per prefetch.
pub fn check_weights(weights: &[f32], prefetches: usize) -> Result<()> {
    if weights.is_empty() {
        return Ok(());
    }
    if weights.len() != prefetches {
        return Err(Error::invalid(
            "weights",
            format!("one weight per prefetch ({prefetches})"),
            format!("{} weights", weights.len()),
        ));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        return Err(Error::invalid("weights", "finite numbers >= 0", w));
    }
    Ok(())
}

fn check_limit(limit: usize, offset: usize) -> Result<()> {
    if limit == 0 || limit.saturating_add(offset) > MAX_LIMIT {
        return Err(Error::invalid("limit", format!("1..={MAX_LIMIT} (with offset)"), limit));
    }
    Ok(())
}

/// `filter` narrowed to these ids.
pub(crate) fn restrict(filter: Option<&Filter>, ids: Vec<PointId>) -> Filter {
    let mut f = Filter::default();
    f.must.push(Condition::HasId(ids));
    if let Some(inner) = filter {
        f.must.push(Condition::Filter(Box::new(inner.clone())));
    }
    f
}

/// The BM25 statistics of `segs` for query `q` on `key` (live points only).
fn own_text_stats(segs: &[Arc<Segment>], key: &str, q: &Bm25Query, now: u64) -> TextStats {
    let mut stats = TextStats::default();
    for s in segs {
        let d = s.data.read();
        if let Some(st) = d.payload_index.text_stats(key, q, &d.excluded(now)) {
            stats.add(&st);
        }
    }
    // One count per query term, also where no segment holds the key (an empty shard's share of a sum).
    stats.df.resize(q.terms.len(), 0);
    stats
}

/// A point of an ordered scroll and the value it was ordered by: the number, or for a datetime key the instant
/// in microseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedRecord {
    /// The point.
    pub record: crate::types::Record,
    /// The value it was ordered by.
    pub order_value: f64,
}

impl Collection {
    /// Up to `limit` live points that `filter` admits and that hold a value at `order.key`, ordered by it (then by
    /// id): by their smallest value ascending, or their largest descending. Values are numbers, or datetimes
    /// when the key has a datetime index (then numbers are ignored, and the other way round). Points without
    /// such a value are left out. Reads every admitted point's payload: a full scan, like Qdrant's without an
    /// index. Each point comes with the value it was ordered by, so pages of several shards merge.
    pub fn scroll_ordered(
        &self,
        filter: Option<&Filter>,
        order: &OrderBy,
        limit: usize,
        with_payload: bool,
        with_vector: bool,
    ) -> Result<Vec<OrderedRecord>> {
        self.check_open()?;
        check_limit(limit, 0)?;
        if let Some(f) = filter {
            f.validate(DEFAULT_MAX_FILTER_DEPTH)?;
        }
        let datetime = self.payload_indexes().iter().any(|(k, t)| *k == order.key && *t == FieldType::Datetime);
        let of = |v: &serde_json::Value| -> Option<f64> {
            if datetime { v.as_str().and_then(crate::datetime::parse_datetime).map(|t| t as f64) } else { v.as_f64() }
        };
        let start = match &order.start_from {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(of(v).ok_or_else(|| {
                Error::invalid(
                    "order_by.start_from",
                    if datetime { "an RFC 3339 datetime (the key has a datetime index)" } else { "a number" },
                    v,
                )
            })?),
        };
        let now = self.now_ms();
        let segs = self.snapshot();
        let mut keyed: Vec<(f64, PointId, usize, u32)> = Vec::new();
        for (id, si, row) in crate::collection::live_rows_by_id(&segs, filter, now) {
            let d = segs[si].data.read();
            let Some(p) = d.payloads.get(row) else { continue };
            let values = crate::payload::values_at(&p, &order.key);
            let pick = values.iter().filter_map(|v| of(v)).filter(|x| match start {
                Some(s) if order.descending => *x <= s,
                Some(s) => *x >= s,
                None => true,
            });
            let best = if order.descending { pick.reduce(f64::max) } else { pick.reduce(f64::min) };
            if let Some(x) = best {
                keyed.push((x, id, si, row));
            }
        }
        keyed.sort_by(|a, b| {
            let by_value = if order.descending { b.0.total_cmp(&a.0) } else { a.0.total_cmp(&b.0) };
            by_value.then(a.1.cmp(&b.1))
        });
        Ok(keyed
            .into_iter()
            .take(limit)
            .map(|(order_value, _, si, row)| OrderedRecord {
                record: crate::collection::record(&segs[si].data.read(), row, with_payload, with_vector),
                order_value,
            })
            .collect())
    }

    /// The best BM25 matches of a text in a text-indexed payload key; see [`TextSearchRequest`]. Scores use
    /// collection-wide statistics (every live point holding the key), whatever the filter.
    pub fn text_search(&self, req: &TextSearchRequest) -> Result<Vec<ScoredPoint>> {
        self.check_open()?;
        check_limit(req.limit, req.offset)?;
        let opts = self.text_options(&req.key)?;
        if let Some(f) = &req.filter {
            f.validate(DEFAULT_MAX_FILTER_DEPTH)?;
        }
        if let Some(seq) = req.min_seq {
            self.wait_for(seq, Duration::from_secs(10))?;
        }
        let q = Bm25Query::new(opts, &req.text);
        if q.terms.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let segs: Vec<Arc<Segment>> = self.snapshot().into_iter().filter(|s| s.data.read().len() > 0).collect();
        let own;
        let stats = match &req.stats {
            Some(given) if given.df.len() != q.terms.len() => {
                return Err(Error::invalid(
                    "bm25.stats.df",
                    format!("{} counts (one per distinct term of the analyzed query)", q.terms.len()),
                    given.df.len(),
                ));
            }
            Some(given) => given,
            None => {
                own = own_text_stats(&segs, &req.key, &q, now);
                &own
            }
        };
        let (weights, avgdl) = q.weights(stats);
        let k = req.limit + req.offset;
        let run = |s: &Arc<Segment>| {
            let d = s.data.read();
            let excluded = d.excluded(now);
            let allowed = req.filter.as_ref().map(|f| d.payload_index.evaluate(f, &*d).rows);
            let top = d.payload_index.text_top(&req.key, &q, (&weights, avgdl), allowed.as_ref(), &excluded, k);
            top.into_iter().map(|(row, score)| Neighbor::new(u64::from(row), -score)).collect()
        };
        let per_segment: Vec<Vec<Neighbor>> =
            if segs.len() > 1 { segs.par_iter().map(run).collect() } else { segs.iter().map(run).collect() };
        let page =
            Page { offset: req.offset, limit: req.limit, with_payload: req.with_payload, with_vector: req.with_vector };
        let keep = |score: f32| req.score_threshold.is_none_or(|t| score >= t);
        Ok(merge_hits(&segs, per_segment, page, |d| -d, keep))
    }

    /// This collection's BM25 statistics for `text` in the text-indexed key `key`: live points holding the key,
    /// their total length, and for each distinct term of the analyzed text the points holding it. A cluster sums
    /// them over its shards and passes the sum as [`TextSearchRequest::stats`].
    pub fn text_stats(&self, key: &str, text: &str) -> Result<TextStats> {
        self.check_open()?;
        let q = Bm25Query::new(self.text_options(key)?, text);
        let segs: Vec<Arc<Segment>> = self.snapshot().into_iter().filter(|s| s.data.read().len() > 0).collect();
        Ok(own_text_stats(&segs, key, &q, self.now_ms()))
    }

    /// The analysis settings of the text index on `key` (400 naming `key` when it has none).
    fn text_options(&self, key: &str) -> Result<crate::fulltext::TextOptions> {
        match self.payload_indexes().into_iter().find(|(k, _)| *k == key) {
            Some((_, FieldType::Text(o))) => Ok(o),
            Some((_, other)) => {
                Err(Error::invalid("key", "a payload key with a text index", format!("{key:?}, indexed as {other}")))
            }
            None => Err(Error::invalid(
                "key",
                "a payload key with a text index (create one with type text)",
                format!("{key:?}, which has no index"),
            )),
        }
    }

    /// Runs a multi-stage query; see [`Stage`].
    pub fn query(&self, stage: &Stage) -> Result<Vec<ScoredPoint>> {
        self.check_open()?;
        if stage.depth() > MAX_PREFETCH_DEPTH {
            return Err(Error::invalid(
                "prefetch",
                format!("at most {MAX_PREFETCH_DEPTH} nested levels"),
                format!("{} levels", stage.depth()),
            ));
        }
        self.run_stage(stage, false).map(|(hits, _)| hits)
    }

    /// Runs `stage`; `lean` (inside a prefetch) drops payloads and vectors. Returns the hits and whether their
    /// scores grow with relevance.
    fn run_stage(&self, stage: &Stage, lean: bool) -> Result<(Vec<ScoredPoint>, bool)> {
        let strip = |mut r: SearchRequest| {
            if lean {
                r.with_payload = false;
                r.with_vector = false;
            }
            r
        };
        let mut lists = Vec::with_capacity(stage.prefetch.len());
        let mut directions = Vec::with_capacity(stage.prefetch.len());
        for p in &stage.prefetch {
            let (hits, higher) = self.run_stage(p, true)?;
            lists.push(hits.into_iter().map(|h| (h.id, h.score)).collect::<Vec<_>>());
            directions.push(higher);
        }
        let candidates = || {
            let mut ids: Vec<PointId> = lists.iter().flatten().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        match &stage.ranking {
            Ranking::Nearest(req) => {
                let mut req = strip(req.clone());
                if !stage.prefetch.is_empty() {
                    req.filter = Some(restrict(req.filter.as_ref(), candidates()));
                }
                let cfg = self.config();
                let higher = match req.using.as_deref().and_then(|u| cfg.sparse_of(u)) {
                    Some(_) => true,
                    None => cfg.spaces()[cfg.space_of(req.using.as_deref(), "using")?].metric.higher_score_is_closer(),
                };
                Ok((self.search(&req)?.hits, higher))
            }
            Ranking::Text(req) => {
                let mut req = req.clone();
                if lean {
                    req.with_payload = false;
                    req.with_vector = false;
                }
                if !stage.prefetch.is_empty() {
                    req.filter = Some(restrict(req.filter.as_ref(), candidates()));
                }
                Ok((self.text_search(&req)?, true))
            }
            Ranking::Examples(req) => {
                let mut req = req.clone();
                if lean {
                    req.with_payload = false;
                    req.with_vector = false;
                }
                let only = (!stage.prefetch.is_empty()).then(candidates);
                Ok((self.example_search_in(&req, only)?, true))
            }
            Ranking::Fusion { method, weights, limit, offset, score_threshold, with_payload, with_vector } => {
                check_limit(*limit, *offset)?;
                if stage.prefetch.is_empty() {
                    return Err(Error::invalid("prefetch", "at least one prefetch to fuse", "none"));
                }
                check_weights(weights, stage.prefetch.len())?;
                if let Fusion::Rrf { k: 0 } = method {
                    return Err(Error::invalid("rrf.k", "a positive integer", 0));
                }
                let fused: Vec<(PointId, f32)> = fuse_weighted(*method, &lists, &directions, weights)
                    .into_iter()
                    .take_while(|(_, s)| score_threshold.is_none_or(|t| *s >= t))
                    .skip(*offset)
                    .take(*limit)
                    .collect();
                let (wp, wv) = if lean { (false, false) } else { (*with_payload, *with_vector) };
                let ids: Vec<PointId> = fused.iter().map(|(id, _)| *id).collect();
                let records: HashMap<PointId, _> = if wp || wv {
                    self.get(&ids, wp, wv)?.into_iter().map(|r| (r.id, r)).collect()
                } else {
                    HashMap::new()
                };
                let hits = fused
                    .into_iter()
                    .map(|(id, score)| {
                        let r = records.get(&id);
                        ScoredPoint {
                            id,
                            score,
                            payload: r.and_then(|r| r.payload.clone()),
                            vector: r.and_then(|r| r.vector.clone()),
                            vectors: r.and_then(|r| r.vectors.clone()),
                            sparse: r.and_then(|r| r.sparse.clone()),
                        }
                    })
                    .collect();
                Ok((hits, true))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ids(l: &[(PointId, f32)]) -> Vec<u64> {
        l.iter()
            .map(|(id, _)| match id {
                PointId::Num(n) => *n,
                PointId::Uuid(_) => u64::MAX,
            })
            .collect()
    }

    fn list(xs: &[(u64, f32)]) -> Vec<(PointId, f32)> {
        xs.iter().map(|&(i, s)| (PointId::Num(i), s)).collect()
    }

    #[test]
    fn rrf_rewards_points_ranked_well_in_several_lists() {
        let a = list(&[(1, 9.0), (2, 8.0), (3, 7.0)]);
        let b = list(&[(3, 0.9), (1, 0.8), (4, 0.7)]);
        let fused = fuse(Fusion::Rrf { k: 60 }, &[a, b], &[true, true]);
        assert_eq!(ids(&fused), [1, 3, 2, 4]);
        let want1 = 1.0 / 61.0 + 1.0 / 62.0;
        assert!((fused[0].1 - want1).abs() < 1e-6);
        assert!((fused[3].1 - 1.0 / 63.0).abs() < 1e-6);
    }

    #[test]
    fn dbsf_normalises_each_list_and_flips_distances() {
        // Distances (lower is better): 5 is best.
        let d = list(&[(5, 0.1), (6, 0.5), (7, 0.9)]);
        let s = list(&[(7, 3.0), (8, 2.0)]);
        let fused = fuse(Fusion::Dbsf, &[d, s], &[false, true]);
        // 5 best of the first list; 7 worst of the first but best of the second.
        assert_eq!(ids(&fused)[0], 7);
        assert!(fused.iter().all(|(_, x)| (0.0..=2.0).contains(x)));
        let one = fuse(Fusion::Dbsf, &[list(&[(1, 4.0)])], &[true]);
        assert_eq!(one, list(&[(1, 0.5)]));
    }

    #[test]
    fn weights_scale_each_lists_contribution() {
        let a = list(&[(1, 9.0), (2, 8.0)]);
        let b = list(&[(2, 0.9), (1, 0.8)]);
        // Equal weights tie 1 and 2 (ties by id); weighting the second list puts its best first.
        assert_eq!(ids(&fuse(Fusion::Rrf { k: 60 }, &[a.clone(), b.clone()], &[true, true])), [1, 2]);
        let w = fuse_weighted(Fusion::Rrf { k: 60 }, &[a.clone(), b.clone()], &[true, true], &[1.0, 3.0]);
        assert_eq!(ids(&w), [2, 1]);
        assert!((w[0].1 - (1.0 / 62.0 + 3.0 / 61.0)).abs() < 1e-6);
        let zero = fuse_weighted(Fusion::Dbsf, &[a, b], &[true, true], &[0.0, 1.0]);
        assert_eq!(ids(&zero), [2, 1]);
        assert!(check_weights(&[1.0], 2).unwrap_err().to_string().contains("one weight per prefetch"));
        assert!(check_weights(&[1.0, -1.0], 2).unwrap_err().to_string().contains(">= 0"));
        assert!(check_weights(&[], 2).is_ok() && check_weights(&[0.5, 2.0], 2).is_ok());
    }
}
