//! Multi-stage queries in `/points/query`: `prefetch` stages (nested, each with its own query, filter and
//! limit) whose hits a `fusion` / `rrf` query fuses or a nearest / `bm25` query re-ranks, and the BM25 query
//! itself. The request's top-level filter applies to every stage, as in Qdrant.

use quiver_engine::filter::Condition;
use quiver_engine::query::MAX_PREFETCH_DEPTH;
use quiver_engine::{Filter, Fusion, Ranking, SearchRequest as EngineSearch, Stage, TextSearchRequest};
use serde_json::Value;

use super::search::{
    GroupSpec, NearestQuery, Plan, Target, example_search, grouped_rounds, nearest_query, resolve_vector, wire_hit,
};
use crate::convert::{self, PayloadSel, VectorSel};
use crate::error::{ApiError, ApiResult};
use crate::state::ServerConfig;
use crate::wire::{FusionName, Prefetch, QueryInput, QueryRequest, ScoredPoint};

/// A stage whose query vectors may still need embedding or looking up.
pub(super) struct StagePlan {
    prefetch: Vec<StagePlan>,
    rank: RankPlan,
}

enum RankPlan {
    /// The search, and where its `using` is in the request (checked against the collection's vectors).
    Nearest(Box<Plan>, String),
    Text(TextSearchRequest),
    Fusion(Ranking),
}

/// A parsed multi-stage query.
pub(super) struct Staged {
    root: StagePlan,
    payload: PayloadSel,
    vectors: VectorSel,
    min_seq: Option<u64>,
}

/// Whether a query needs stages: it has a prefetch, or asks for fusion or BM25.
pub(super) fn is_staged(r: &QueryRequest) -> bool {
    r.prefetch.as_ref().is_some_and(|v| !v.is_null())
        || matches!(r.query, Some(QueryInput::Fusion { .. } | QueryInput::Rrf { .. } | QueryInput::Bm25 { .. }))
}

/// What one stage says, whether the request's top level or a prefetch.
struct StageInput {
    prefetch: Option<Value>,
    query: Option<QueryInput>,
    using: Option<String>,
    filter: Option<Filter>,
    params: Option<crate::wire::SearchParams>,
    score_threshold: Option<f32>,
    lookup_from: Option<crate::wire::LookupLocation>,
    limit: usize,
    offset: usize,
    with_payload: bool,
    with_vector: bool,
}

pub(super) fn plan(r: QueryRequest, cfg: &ServerConfig) -> ApiResult<Staged> {
    let payload = PayloadSel::from_wire(r.with_payload, false);
    let vectors = VectorSel::from_wire(r.with_vector);
    let min_seq = convert::min_seq(r.min_seq, r.read_token.as_deref())?;
    if r.explain == Some(true) {
        return Err(ApiError::invalid("explain", "false or absent with prefetch, fusion or bm25", "true"));
    }
    let input = StageInput {
        prefetch: r.prefetch,
        query: r.query,
        using: r.using,
        filter: r.filter,
        params: r.params,
        score_threshold: r.score_threshold,
        lookup_from: r.lookup_from,
        limit: r.limit.unwrap_or(10),
        offset: r.offset.unwrap_or(0),
        with_payload: payload.wanted(),
        with_vector: vectors.wanted(),
    };
    let root = plan_stage(input, None, "", 1, cfg)?;
    Ok(Staged { root, payload, vectors, min_seq })
}

/// Both filters (either may be absent).
fn and(a: Option<&Filter>, b: Option<Filter>) -> Option<Filter> {
    match (a, b) {
        (None, b) => b,
        (Some(a), None) => Some(a.clone()),
        (Some(a), Some(b)) => {
            let mut f = Filter::default();
            f.must.push(Condition::Filter(Box::new(a.clone())));
            f.must.push(Condition::Filter(Box::new(b)));
            Some(f)
        }
    }
}

fn at(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}

fn prefix(mut e: ApiError, path: &str) -> ApiError {
    if !path.is_empty() {
        e.message = format!("{path}: {}", e.message);
    }
    e
}

/// The prefetch value: one object or a list of them.
fn prefetches(v: Option<Value>, path: &str) -> ApiResult<Vec<Prefetch>> {
    let field = at(path, "prefetch");
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(o @ Value::Object(_)) => vec![o],
        Some(other) => return Err(ApiError::invalid(field, "a prefetch object or a list of them", other)),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value::<Prefetch>(v)
                .map_err(|e| ApiError::bad_request(format!("invalid {field}[{i}]: {e}")))
        })
        .collect()
}

fn plan_stage(
    mut s: StageInput,
    inherited: Option<&Filter>,
    path: &str,
    depth: usize,
    cfg: &ServerConfig,
) -> ApiResult<StagePlan> {
    if depth > MAX_PREFETCH_DEPTH {
        return Err(ApiError::invalid(
            at(path, "prefetch"),
            format!("at most {MAX_PREFETCH_DEPTH} nested levels"),
            depth,
        ));
    }
    convert::check_limit(s.limit, s.offset, cfg).map_err(|e| prefix(e, path))?;
    let filter = and(inherited, s.filter.take());
    let mut prefetch = Vec::new();
    for (i, p) in prefetches(s.prefetch.take(), path)?.into_iter().enumerate() {
        let sub = StageInput {
            prefetch: p.prefetch,
            query: p.query,
            using: p.using,
            filter: p.filter,
            params: p.params,
            score_threshold: p.score_threshold,
            lookup_from: p.lookup_from,
            limit: p.limit.unwrap_or(10),
            offset: 0,
            with_payload: false,
            with_vector: false,
        };
        prefetch.push(plan_stage(sub, filter.as_ref(), &format!("{}[{i}]", at(path, "prefetch")), depth + 1, cfg)?);
    }
    let query_field = at(path, "query");
    let rank = match s.query.take() {
        None => {
            return Err(ApiError::invalid(
                query_field,
                "a vector, a point id, {\"text\": …}, {\"bm25\": …} or {\"fusion\": …}",
                "nothing",
            ));
        }
        Some(QueryInput::Fusion { .. } | QueryInput::Rrf { .. }) if prefetch.is_empty() => {
            return Err(ApiError::invalid(at(path, "prefetch"), "at least one prefetch to fuse", "none"));
        }
        Some(QueryInput::Fusion { fusion }) => fusion_rank(fusion_method(fusion, None), Vec::new(), &s),
        Some(QueryInput::Rrf { rrf }) => {
            if rrf.k == Some(0) {
                return Err(ApiError::invalid(format!("{query_field}.rrf.k"), "a positive integer", 0));
            }
            let weights = rrf.weights.unwrap_or_default();
            quiver_engine::query::check_weights(&weights, prefetch.len())
                .map_err(|e| prefix(ApiError::from(e), &format!("{query_field}.rrf")))?;
            fusion_rank(fusion_method(FusionName::Rrf, rrf.k), weights, &s)
        }
        Some(QueryInput::Bm25 { bm25 }) => RankPlan::Text(TextSearchRequest {
            key: bm25.key,
            text: bm25.text,
            limit: s.limit,
            offset: s.offset,
            filter,
            with_payload: s.with_payload,
            with_vector: s.with_vector,
            score_threshold: s.score_threshold,
            min_seq: None,
            stats: bm25.stats.map(|st| quiver_engine::TextStats { docs: st.docs, total_len: st.total_len, df: st.df }),
        }),
        Some(q) => {
            let lookup = s.lookup_from.take();
            let NearestQuery { vector, sparse, by_id, text, examples, explore, filter } =
                nearest_query(q, filter, &query_field, lookup.is_some())?;
            let req = EngineSearch {
                vector,
                sparse,
                using: s.using.take().filter(|u| !u.is_empty()),
                limit: s.limit,
                offset: s.offset,
                filter,
                params: convert::search_params(s.params).map_err(|e| prefix(e, path))?,
                with_payload: s.with_payload,
                with_vector: s.with_vector,
                score_threshold: s.score_threshold,
                explain: false,
                min_seq: None,
            };
            let vectors = VectorSel::None;
            let plan = Plan { req, payload: PayloadSel::None, vectors, by_id, text, examples, explore, lookup };
            RankPlan::Nearest(Box::new(plan), at(path, "using"))
        }
    };
    if s.lookup_from.is_some() {
        // Taken by a nearest query; a fusion or BM25 stage has no ids to look up.
        return Err(ApiError::invalid(
            at(path, "lookup_from"),
            "absent unless the query names points (an id, recommend, discover or context)",
            "a collection",
        ));
    }
    Ok(StagePlan { prefetch, rank })
}

fn fusion_method(name: FusionName, k: Option<u32>) -> Fusion {
    match name {
        FusionName::Rrf => Fusion::Rrf { k: k.unwrap_or(quiver_engine::query::DEFAULT_RRF_K) },
        FusionName::Dbsf => Fusion::Dbsf,
    }
}

fn fusion_rank(method: Fusion, weights: Vec<f32>, s: &StageInput) -> RankPlan {
    RankPlan::Fusion(Ranking::Fusion {
        method,
        weights,
        limit: s.limit,
        offset: s.offset,
        score_threshold: s.score_threshold,
        with_payload: s.with_payload,
        with_vector: s.with_vector,
    })
}

/// Embeds texts and looks up stored points' vectors, turning the plan into the engine's stage (blocking).
fn resolve(t: &Target, p: StagePlan) -> ApiResult<Stage> {
    let prefetch = p.prefetch.into_iter().map(|s| resolve(t, s)).collect::<ApiResult<Vec<_>>>()?;
    let ranking = match p.rank {
        RankPlan::Nearest(mut plan, using_field) => {
            let cfg = t.col.config();
            if plan.req.using.as_deref().and_then(|u| cfg.sparse_of(u)).is_none() {
                cfg.space_of(plan.req.using.as_deref(), &using_field)?;
            }
            match plan.explore.take() {
                Some(explore) => Ranking::Examples(example_search(t, explore, &plan.req, plan.lookup.as_ref())?),
                None => {
                    resolve_vector(t, &mut plan)?;
                    Ranking::Nearest(plan.req)
                }
            }
        }
        RankPlan::Text(r) => Ranking::Text(r),
        RankPlan::Fusion(r) => r,
    };
    Ok(Stage { prefetch, ranking })
}

/// A group's value and its hits, best first.
pub(super) type HitGroup = (Value, Vec<quiver_engine::ScoredPoint>);

/// The number of results a stage's ranking asks for.
fn limit_of(r: &mut Ranking) -> &mut usize {
    match r {
        Ranking::Nearest(req) => &mut req.limit,
        Ranking::Text(req) => &mut req.limit,
        Ranking::Examples(x) => &mut x.limit,
        Ranking::Fusion { limit, .. } => limit,
    }
}

/// A grouped multi-stage query (blocking): resolved once, then run with a growing final limit (the prefetches
/// keep theirs) until `spec.limit` groups are found or the candidates run out; the groups, best first, with the
/// hits as the engine gives them (with payloads) and the vectors the request selected.
pub(super) fn groups(t: &Target, q: Staged, spec: &GroupSpec) -> ApiResult<(Vec<HitGroup>, VectorSel)> {
    super::points::check_min_seq(&t.state, &t.col, q.min_seq)?;
    if let Some(seq) = q.min_seq {
        t.col.wait_for(seq, super::points::MIN_SEQ_WAIT)?;
    }
    let mut stage = resolve(t, q.root)?;
    let groups = grouped_rounds(spec, spec.first_fetch(), |limit| {
        *limit_of(&mut stage.ranking) = limit;
        Ok(t.col.query(&stage)?)
    })?;
    Ok((groups, q.vectors))
}

/// Runs a multi-stage query (blocking).
pub(super) fn run(t: &Target, q: Staged) -> ApiResult<Vec<ScoredPoint>> {
    super::points::check_min_seq(&t.state, &t.col, q.min_seq)?;
    if let Some(seq) = q.min_seq {
        t.col.wait_for(seq, super::points::MIN_SEQ_WAIT)?;
    }
    let stage = resolve(t, q.root)?;
    let hits = t.col.query(&stage)?;
    Ok(hits.into_iter().map(|h| wire_hit(h, &q.payload, &q.vectors)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(v: Value) -> QueryRequest {
        serde_json::from_value(v).unwrap()
    }

    fn err(v: Value) -> String {
        match plan(req(v), &ServerConfig::default()) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn staged_queries_are_recognised_and_bad_ones_refused_naming_the_field() {
        use serde_json::json;
        assert!(is_staged(&req(json!({"query": {"fusion": "rrf"}, "prefetch": []}))));
        assert!(is_staged(&req(json!({"query": {"bm25": {"key": "b", "text": "x"}}}))));
        assert!(!is_staged(&req(json!({"query": [1.0, 2.0]}))));
        assert!(err(json!({"query": {"fusion": "rrf"}})).contains("prefetch"));
        assert!(err(json!({"query": {"rrf": {"k": 0}}, "prefetch": {"query": [1.0]}})).contains("query.rrf.k"));
        let e = err(json!({"query": {"rrf": {"weights": [1.0, 2.0]}}, "prefetch": {"query": [1.0]}}));
        assert!(e.contains("query.rrf") && e.contains("one weight per prefetch"), "{e}");
        let e = err(json!({"query": {"fusion": "rrf"}, "prefetch": [{"query": [1.0], "limit": 0}]}));
        assert!(e.contains("prefetch[0]") && e.contains("limit"), "{e}");
        let e = err(json!({"query": {"fusion": "rrf"}, "prefetch": [{"query": [1.0], "bogus": 1}]}));
        assert!(e.contains("prefetch[0]") && e.contains("bogus"), "{e}");
        let e = err(json!({"query": {"fusion": "rrf"}, "prefetch": 3}));
        assert!(e.contains("prefetch"), "{e}");
        let e = err(json!({"prefetch": {"query": [1.0]}}));
        assert!(e.contains("query"), "{e}");
        let mut deep = json!({"query": [1.0]});
        for _ in 0..9 {
            deep = json!({"query": {"fusion": "rrf"}, "prefetch": deep});
        }
        assert!(err(deep).contains("nested"));
    }
}
