//! Queries scored against several example vectors instead of one: recommendation by best score or by the sum of
//! scores, discovery (a target constrained by context pairs) and context search (pairs alone), as Qdrant's query
//! API names them.
//!
//! Each candidate point's score is computed exactly from its stored vector and every example; what varies is
//! which points are candidates:
//! - with `params.exact`, or inside a multi-stage query restricted to its prefetches' points, every admitted point
//!   (or prefetched point) is scored: exact answers;
//! - otherwise the points near the examples that pull (positives, the target) are: for each of them, the
//!   collection's index search returns `max(4 · (limit + offset), 64)` nearest admitted points, and their union is
//!   scored. A point far from every attracting example is not found, which is the approximation.
//!
//! Similarities are the metric's score where higher is closer (cosine, dot) and the negated Euclidean distance
//! otherwise, so every formula below reads "higher is more alike". Results rank by score, highest first, ties by id.

use std::sync::Arc;
use std::time::Duration;

use crate::collection::{Collection, MAX_LIMIT, live_rows_by_id, record};
use crate::error::{Error, Result};
use crate::filter::{DEFAULT_MAX_FILTER_DEPTH, Filter};
use crate::id::PointId;
use crate::query::restrict;
use crate::segment::Segment;
use quiver_index::Metric;
use quiver_index::SearchParams;

use crate::types::{ScoredPoint, SearchRequest};

/// How the examples score a point.
#[derive(Debug, Clone, PartialEq)]
pub enum ExampleQuery {
    /// `σ(best positive similarity)` when it beats the best negative one (so in (0, 1)), else
    /// `−σ(best negative similarity)` (in (−1, 0)): every point closer to some positive than to any negative ranks
    /// first, by its closest positive; the rest follow, farthest from the negatives first. `σ(x) = ½ + x / (2 (1 +
    /// |x|))`.
    BestScore {
        /// At least one.
        positive: Vec<Vec<f32>>,
        /// Any number.
        negative: Vec<Vec<f32>>,
    },
    /// `Σ similarity to the positives − Σ similarity to the negatives`.
    SumScores {
        /// At least one.
        positive: Vec<Vec<f32>>,
        /// Any number.
        negative: Vec<Vec<f32>>,
    },
    /// Discovery: `rank + σ(similarity to the target)`, where `rank` counts the pairs whose positive the point is
    /// closer to than their negative (+1) minus those the other way (−1). A point on the positive side of more
    /// pairs always ranks higher; among equals, the one nearer the target does.
    Discover {
        /// What to find.
        target: Vec<f32>,
        /// At least one (positive, negative) pair.
        pairs: Vec<(Vec<f32>, Vec<f32>)>,
    },
    /// Context search: `Σ min(0, similarity to the positive − similarity to the negative)` over the pairs: 0 for a
    /// point on the positive side of every pair, less the farther it strays to the negative sides.
    Context {
        /// At least one (positive, negative) pair.
        pairs: Vec<(Vec<f32>, Vec<f32>)>,
    },
}

impl ExampleQuery {
    /// Every example vector, with its field name for errors.
    fn vectors_mut(&mut self) -> Vec<(String, &mut Vec<f32>)> {
        let mut out = Vec::new();
        match self {
            ExampleQuery::BestScore { positive, negative } | ExampleQuery::SumScores { positive, negative } => {
                out.extend(positive.iter_mut().enumerate().map(|(i, v)| (format!("positive[{i}]"), v)));
                out.extend(negative.iter_mut().enumerate().map(|(i, v)| (format!("negative[{i}]"), v)));
            }
            ExampleQuery::Discover { target, pairs } => {
                out.push(("target".to_string(), target));
                for (i, (p, n)) in pairs.iter_mut().enumerate() {
                    out.push((format!("context[{i}].positive"), p));
                    out.push((format!("context[{i}].negative"), n));
                }
            }
            ExampleQuery::Context { pairs } => {
                for (i, (p, n)) in pairs.iter_mut().enumerate() {
                    out.push((format!("context[{i}].positive"), p));
                    out.push((format!("context[{i}].negative"), n));
                }
            }
        }
        out
    }

    /// The examples that pull: whose neighbourhoods hold the candidates.
    fn attractors(&self) -> Vec<&[f32]> {
        match self {
            ExampleQuery::BestScore { positive, .. } | ExampleQuery::SumScores { positive, .. } => {
                positive.iter().map(Vec::as_slice).collect()
            }
            ExampleQuery::Discover { target, pairs } => {
                std::iter::once(target.as_slice()).chain(pairs.iter().map(|(p, _)| p.as_slice())).collect()
            }
            ExampleQuery::Context { pairs } => pairs.iter().map(|(p, _)| p.as_slice()).collect(),
        }
    }

    fn check_counts(&self) -> Result<()> {
        match self {
            ExampleQuery::BestScore { positive, .. } | ExampleQuery::SumScores { positive, .. }
                if positive.is_empty() =>
            {
                Err(Error::invalid("positive", "at least one example", "none"))
            }
            ExampleQuery::Discover { pairs, .. } | ExampleQuery::Context { pairs } if pairs.is_empty() => {
                Err(Error::invalid("context", "at least one (positive, negative) pair", "none"))
            }
            _ => Ok(()),
        }
    }

    /// The score of a point, given `sim(example)`.
    fn score(&self, sim: impl Fn(&[f32]) -> f32) -> f32 {
        let best = |list: &[Vec<f32>]| list.iter().map(|v| sim(v)).fold(f32::NEG_INFINITY, f32::max);
        match self {
            ExampleQuery::BestScore { positive, negative } => {
                let (p, n) = (best(positive), best(negative));
                if p > n { sigmoid(p) } else { -sigmoid(n) }
            }
            ExampleQuery::SumScores { positive, negative } => {
                positive.iter().map(|v| sim(v)).sum::<f32>() - negative.iter().map(|v| sim(v)).sum::<f32>()
            }
            ExampleQuery::Discover { target, pairs } => {
                let rank: i32 = pairs
                    .iter()
                    .map(|(p, n)| match sim(p).total_cmp(&sim(n)) {
                        std::cmp::Ordering::Greater => 1,
                        std::cmp::Ordering::Less => -1,
                        std::cmp::Ordering::Equal => 0,
                    })
                    .sum();
                rank as f32 + sigmoid(sim(target))
            }
            ExampleQuery::Context { pairs } => pairs.iter().map(|(p, n)| (sim(p) - sim(n)).min(0.0)).sum(),
        }
    }
}

/// Maps any real number into (0, 1), increasing: `½ + x / (2 (1 + |x|))`.
fn sigmoid(x: f32) -> f32 {
    0.5 + x / (2.0 * (1.0 + x.abs()))
}

/// A query by examples; see [`ExampleQuery`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleSearch {
    /// The examples and how they score.
    pub query: ExampleQuery,
    /// Which named vector (`None`: the unnamed one).
    pub using: Option<String>,
    /// How many results.
    pub limit: usize,
    /// Results to skip.
    pub offset: usize,
    /// Only points this filter admits.
    pub filter: Option<Filter>,
    /// `exact` scores every admitted point; the others tune the candidate searches.
    pub params: SearchParams,
    /// Attach payloads.
    pub with_payload: bool,
    /// Attach vectors.
    pub with_vector: bool,
    /// Drop hits scoring below this.
    pub score_threshold: Option<f32>,
    /// Wait until the operation with this sequence number is applied.
    pub min_seq: Option<u64>,
}

impl ExampleSearch {
    /// The `limit` best points for `query`, with payloads, default parameters.
    pub fn new(query: ExampleQuery, limit: usize) -> ExampleSearch {
        ExampleSearch {
            query,
            using: None,
            limit,
            offset: 0,
            filter: None,
            params: SearchParams::default(),
            with_payload: true,
            with_vector: false,
            score_threshold: None,
            min_seq: None,
        }
    }
}

impl Collection {
    /// Runs a query by examples; see [`ExampleSearch`] and the module documentation.
    pub fn example_search(&self, req: &ExampleSearch) -> Result<Vec<ScoredPoint>> {
        self.example_search_in(req, None)
    }

    /// [`Collection::example_search`], scoring exactly the points `only` lists when given (a multi-stage query's
    /// prefetched points) instead of searching for candidates.
    pub(crate) fn example_search_in(
        &self,
        req: &ExampleSearch,
        only: Option<Vec<PointId>>,
    ) -> Result<Vec<ScoredPoint>> {
        self.check_open()?;
        if req.limit == 0 || req.limit.saturating_add(req.offset) > MAX_LIMIT {
            return Err(Error::invalid("limit", format!("1..={MAX_LIMIT} (with offset)"), req.limit));
        }
        if let Some(f) = &req.filter {
            f.validate(DEFAULT_MAX_FILTER_DEPTH)?;
        }
        let cfg = self.config();
        if req.using.as_deref().is_some_and(|u| cfg.sparse_of(u).is_some()) || !cfg.has_dense() {
            return Err(Error::invalid(
                "using",
                "a dense vector (examples are not supported on sparse vectors)",
                "a sparse vector",
            ));
        }
        let space_no = cfg.space_of(req.using.as_deref(), "using")?;
        let space = &cfg.spaces()[space_no];
        let metric = space.metric;
        let mut query = req.query.clone();
        query.check_counts()?;
        for (field, v) in query.vectors_mut() {
            if v.len() != space.dimension {
                return Err(Error::invalid(
                    field,
                    format!("{} numbers", space.dimension),
                    format!("{} numbers", v.len()),
                ));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid(field, "finite numbers", "NaN or infinity"));
            }
            metric.prepare(v).map_err(|_| Error::invalid(field, "a vector with a non-zero length", "a zero vector"))?;
        }
        if let Some(seq) = req.min_seq {
            self.wait_for(seq, Duration::from_secs(10))?;
        }

        // Which points to score.
        let filter = match only {
            Some(ids) => Some(restrict(req.filter.as_ref(), ids)),
            None if req.params.exact => req.filter.clone(),
            None => {
                let k = (4 * (req.limit + req.offset)).clamp(64, MAX_LIMIT);
                let mut ids = Vec::new();
                for v in query.attractors() {
                    let mut search = SearchRequest::new(v.to_vec(), k);
                    search.using = req.using.clone();
                    search.filter = req.filter.clone();
                    search.params = req.params.clone();
                    search.with_payload = false;
                    ids.extend(self.search(&search)?.hits.into_iter().map(|h| h.id));
                }
                ids.sort_unstable();
                ids.dedup();
                Some(restrict(req.filter.as_ref(), ids))
            }
        };
        let segs: Vec<Arc<Segment>> = self.snapshot();
        let now = self.now_ms();
        let mut scored: Vec<(f32, PointId, usize, u32)> = Vec::new();
        for (id, si, row) in live_rows_by_id(&segs, filter.as_ref(), now) {
            let d = segs[si].data.read();
            let Some(x) = d.vector_in(space_no, row) else { continue };
            let score = query.score(|e| similarity(metric, x, e));
            if req.score_threshold.is_none_or(|t| score >= t) {
                scored.push((score, id, si, row));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(scored
            .into_iter()
            .skip(req.offset)
            .take(req.limit)
            .map(|(score, _, si, row)| {
                let r = record(&segs[si].data.read(), row, req.with_payload, req.with_vector);
                ScoredPoint {
                    id: r.id,
                    score,
                    payload: r.payload,
                    vector: r.vector,
                    vectors: r.vectors,
                    sparse: r.sparse,
                }
            })
            .collect())
    }
}

/// The similarity of two prepared vectors: the metric's score where higher is closer, the negated Euclidean
/// distance otherwise.
fn similarity(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    let score = metric.score(metric.distance(a, b));
    if metric.higher_score_is_closer() { score } else { -score }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_their_definitions() {
        let v = |x: f32| vec![x];
        // sim(e) is the example's single coordinate here.
        let sim = |e: &[f32]| e[0];
        let best = ExampleQuery::BestScore { positive: vec![v(0.2), v(0.7)], negative: vec![v(0.5)] };
        assert!((best.score(sim) - sigmoid(0.7)).abs() < 1e-7);
        let loses = ExampleQuery::BestScore { positive: vec![v(0.2)], negative: vec![v(0.5), v(0.9)] };
        assert!((loses.score(sim) + sigmoid(0.9)).abs() < 1e-7);
        assert!(best.score(sim) > 0.0 && loses.score(sim) < 0.0);
        let no_negatives = ExampleQuery::BestScore { positive: vec![v(-3.0)], negative: vec![] };
        assert!(no_negatives.score(sim) > 0.0);
        let sum = ExampleQuery::SumScores { positive: vec![v(0.2), v(0.7)], negative: vec![v(0.5)] };
        assert!((sum.score(sim) - 0.4).abs() < 1e-6);
        let discover = ExampleQuery::Discover {
            target: v(0.3),
            pairs: vec![(v(0.9), v(0.1)), (v(0.2), v(0.8)), (v(0.6), v(0.4))],
        };
        assert!((discover.score(sim) - (1.0 + sigmoid(0.3))).abs() < 1e-6);
        let context = ExampleQuery::Context { pairs: vec![(v(0.9), v(0.1)), (v(0.2), v(0.8))] };
        assert!((context.score(sim) + 0.6).abs() < 1e-6);
        // σ is increasing and inside (0, 1).
        let xs = [-1e6f32, -3.0, -0.5, 0.0, 0.5, 3.0, 1e6];
        assert!(xs.windows(2).all(|w| sigmoid(w[0]) < sigmoid(w[1])));
        assert!(xs.iter().all(|&x| (0.0..=1.0).contains(&sigmoid(x))));
    }
}
