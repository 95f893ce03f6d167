//! Nearest-neighbour search: Qdrant's `search`, `search/batch`, `query` / `query/batch` (multi-stage queries in
//! [`super::stages`]) and grouped searches.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use quiver_engine::{Collection, ExampleQuery, ExampleSearch, SearchRequest as EngineSearch};

use super::CollectionPath;
use super::points::MIN_SEQ_WAIT;
use super::stages;
use crate::access::Access;
use crate::convert::{self, Content, PayloadSel, VectorSel};
use crate::embedding;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Reply, Started};
use crate::state::{AppState, ServerConfig, blocking};
use crate::wire::{
    ContextPair, Envelope, ErrorBody, GroupsResult, LookupLocation, NearestInput, PointGroup, QueryBatch,
    QueryGroupsRequest, QueryInput, QueryRequest, QueryResponse, ScoredPoint, SearchBatch, SearchGroupsRequest,
    SearchRequest,
};

/// A parsed search, ready for the engine.
pub(super) struct Plan {
    pub(super) req: EngineSearch,
    pub(super) payload: PayloadSel,
    pub(super) vectors: VectorSel,
    /// Query by a stored point: look its vector up first.
    pub(super) by_id: Option<quiver_engine::PointId>,
    /// Query by text: embed it with the collection's model first.
    pub(super) text: Option<QueryText>,
    /// Recommend: the query vector comes from these examples.
    pub(super) examples: Option<Examples>,
    /// Scored against several examples (best_score, sum_scores, discover, context): run by the engine's
    /// [`quiver_engine::ExampleSearch`] instead of one nearest search.
    pub(super) explore: Option<Explore>,
    /// `lookup_from`: the query's point ids name points of another collection.
    pub(super) lookup: Option<LookupLocation>,
}

/// A query by examples as parsed: the examples are resolved to vectors (stored points looked up, texts embedded)
/// when it runs.
pub(super) struct Explore {
    kind: ExploreKind,
    /// Where the query is in the request, for errors.
    field: String,
}

enum ExploreKind {
    BestScore { positive: Vec<NearestInput>, negative: Vec<NearestInput> },
    SumScores { positive: Vec<NearestInput>, negative: Vec<NearestInput> },
    Discover { target: NearestInput, pairs: Vec<ContextPair> },
    Context { pairs: Vec<ContextPair> },
}

/// A nearest-vector query as parsed: the vector (empty until a text, a stored point or examples resolve it) and
/// the filter, which leaves out the stored point or the example points queried by.
pub(super) struct NearestQuery {
    pub(super) vector: Vec<f32>,
    pub(super) sparse: Option<quiver_engine::SparseVector>,
    pub(super) by_id: Option<quiver_engine::PointId>,
    pub(super) text: Option<QueryText>,
    pub(super) examples: Option<Examples>,
    pub(super) explore: Option<Explore>,
    pub(super) filter: Option<quiver_engine::Filter>,
}

/// Parses the query of a nearest-vector stage (`field` names it in errors): a vector, a stored point's id, a
/// text, `{"nearest": …}` or `{"recommend": …}`.
pub(super) fn nearest_query(
    q: QueryInput,
    filter: Option<quiver_engine::Filter>,
    field: &str,
    lookup: bool,
) -> ApiResult<NearestQuery> {
    // With lookup_from the ids name another collection's points: nothing here to leave out, so the filter stays
    // as given (cloned only then).
    let original = if lookup { filter.clone() } else { None };
    let mut out = nearest_query_in(q, filter, field)?;
    if lookup {
        out.filter = original;
    }
    Ok(out)
}

fn nearest_query_in(q: QueryInput, filter: Option<quiver_engine::Filter>, field: &str) -> ApiResult<NearestQuery> {
    let mut out = NearestQuery {
        vector: Vec::new(),
        sparse: None,
        by_id: None,
        text: None,
        examples: None,
        explore: None,
        filter,
    };
    match q {
        QueryInput::Vector(v) | QueryInput::Nearest { nearest: NearestInput::Vector(v) } => out.vector = v,
        QueryInput::Id(id) | QueryInput::Nearest { nearest: NearestInput::Id(id) } => {
            out.by_id = Some(id.0);
            out.filter = Some(convert::exclude_id(out.filter, id.0));
        }
        QueryInput::Text(t) | QueryInput::Nearest { nearest: NearestInput::Text(t) } => {
            let (t, model) = convert::text_input(t, field)?;
            out.text = Some(QueryText { content: Content::Text(t), model, field: field.to_string() });
        }
        QueryInput::Image(i) | QueryInput::Nearest { nearest: NearestInput::Image(i) } => {
            let (bytes, model) = convert::image_input(i, field)?;
            out.text = Some(QueryText { content: Content::Image(bytes), model, field: format!("{field}.image") });
        }
        QueryInput::Sparse(v) | QueryInput::Nearest { nearest: NearestInput::Sparse(v) } => out.sparse = Some(v.into()),
        QueryInput::Recommend { recommend: rec } => match rec.strategy.as_deref() {
            Some(s @ ("best_score" | "sum_scores")) => {
                let best = s == "best_score";
                if rec.positive.is_empty() {
                    return Err(ApiError::invalid(
                        format!("{field}.recommend.positive"),
                        "at least one example",
                        "none",
                    ));
                }
                out.filter = exclude_examples(out.filter.take(), rec.positive.iter().chain(&rec.negative));
                let (positive, negative) = (rec.positive, rec.negative);
                let kind = if best {
                    ExploreKind::BestScore { positive, negative }
                } else {
                    ExploreKind::SumScores { positive, negative }
                };
                out.explore = Some(Explore { kind, field: format!("{field}.recommend") });
            }
            _ => {
                let (ex, f) = recommend(rec, out.filter.take(), field)?;
                out.examples = Some(ex);
                out.filter = f;
            }
        },
        QueryInput::Discover { discover } => {
            let pairs = discover.context.into_pairs();
            if pairs.is_empty() {
                return Err(ApiError::invalid(
                    format!("{field}.discover.context"),
                    "at least one {\"positive\", \"negative\"} pair",
                    "none",
                ));
            }
            let examples =
                std::iter::once(&discover.target).chain(pairs.iter().flat_map(|p| [&p.positive, &p.negative]));
            out.filter = exclude_examples(out.filter.take(), examples);
            out.explore = Some(Explore {
                kind: ExploreKind::Discover { target: discover.target, pairs },
                field: format!("{field}.discover"),
            });
        }
        QueryInput::Context { context } => {
            let pairs = context.into_pairs();
            if pairs.is_empty() {
                return Err(ApiError::invalid(
                    format!("{field}.context"),
                    "at least one {\"positive\", \"negative\"} pair",
                    "none",
                ));
            }
            out.filter = exclude_examples(out.filter.take(), pairs.iter().flat_map(|p| [&p.positive, &p.negative]));
            out.explore = Some(Explore { kind: ExploreKind::Context { pairs }, field: field.to_string() });
        }
        QueryInput::Fusion { .. } | QueryInput::Rrf { .. } | QueryInput::Bm25 { .. } => {
            return Err(ApiError::invalid(field, "a nearest-vector query here", "a fusion or bm25 query"));
        }
    }
    Ok(out)
}

/// `filter`, leaving out the stored points among `examples` (a query by examples never returns its own examples).
fn exclude_examples<'a>(
    filter: Option<quiver_engine::Filter>,
    examples: impl Iterator<Item = &'a NearestInput>,
) -> Option<quiver_engine::Filter> {
    let mut filter = filter;
    for e in examples {
        if let NearestInput::Id(id) = e {
            filter = Some(convert::exclude_id(filter, id.0));
        }
    }
    filter
}

/// A recommendation's examples, each a vector, a stored point or a text.
pub(super) struct Examples {
    positive: Vec<NearestInput>,
    negative: Vec<NearestInput>,
    field: String,
}

/// The examples of `{"recommend": …}` (checked), and the filter leaving out the example points.
pub(super) fn recommend(
    r: crate::wire::RecommendInput,
    filter: Option<quiver_engine::Filter>,
    field: &str,
) -> ApiResult<(Examples, Option<quiver_engine::Filter>)> {
    if let Some(s) = r.strategy.as_deref().filter(|s| *s != "average_vector") {
        return Err(ApiError::invalid(
            format!("{field}.recommend.strategy"),
            "average_vector, best_score or sum_scores",
            format!("{s:?}"),
        ));
    }
    if r.positive.is_empty() {
        return Err(ApiError::invalid(format!("{field}.recommend.positive"), "at least one example", "none"));
    }
    let filter = exclude_examples(filter, r.positive.iter().chain(&r.negative));
    Ok((Examples { positive: r.positive, negative: r.negative, field: format!("{field}.recommend") }, filter))
}

/// `2·mean(positive) − mean(negative)` (just the mean of the positives without negatives), after looking up
/// stored points and embedding texts.
fn example_vector(
    t: &Target,
    ex: Examples,
    using: Option<&str>,
    lookup: Option<&LookupLocation>,
) -> ApiResult<Vec<f32>> {
    let cfg = t.col.config();
    let dim = cfg.spaces()[cfg.space_of(using, "using")?].dimension;
    let mut sides = Vec::new();
    for (side, list) in [("positive", ex.positive), ("negative", ex.negative)] {
        let mut sum = vec![0.0f64; dim];
        let n = list.len();
        for (i, e) in list.into_iter().enumerate() {
            let v = example(t, e, using, lookup, dim, &format!("{}.{side}[{i}]", ex.field))?;
            for (s, x) in sum.iter_mut().zip(&v) {
                *s += f64::from(*x);
            }
        }
        sides.push((n, sum));
    }
    let (np, pos) = &sides[0];
    let (nn, neg) = &sides[1];
    let mean = |s: f64, n: usize| s / n.max(1) as f64;
    Ok(pos
        .iter()
        .zip(neg)
        .map(|(p, q)| if *nn == 0 { mean(*p, *np) } else { 2.0 * mean(*p, *np) - mean(*q, *nn) } as f32)
        .collect())
}

/// One example as a dense vector of `dim` numbers: given, a stored point's (its vector `using`), or a text or an
/// image embedded by that vector's model. `at` names it in errors.
fn example(
    t: &Target,
    e: NearestInput,
    using: Option<&str>,
    lookup: Option<&LookupLocation>,
    dim: usize,
    at: &str,
) -> ApiResult<Vec<f32>> {
    let v = match e {
        NearestInput::Vector(v) => v,
        NearestInput::Id(id) => {
            let (col, name) = t.source(lookup, using)?;
            stored_vector(&col, id.0, name, at)?
        }
        NearestInput::Sparse(_) => {
            return Err(ApiError::invalid(at, "a dense vector, a point id or a text", "a sparse vector"));
        }
        NearestInput::Text(text) => {
            let (text, model) = convert::text_input(text, at)?;
            let m = t.state.embedders().for_vector(&t.name, &t.col, using)?;
            embedding::check_named_model(model.as_deref(), m.model_name(), "query")?;
            embedding::embed_content(m.as_ref(), &Content::Text(text), at)?
        }
        NearestInput::Image(image) => {
            let (bytes, model) = convert::image_input(image, at)?;
            let m = t.state.embedders().for_vector(&t.name, &t.col, using)?;
            embedding::check_named_model(model.as_deref(), m.model_name(), "query")?;
            embedding::embed_content(m.as_ref(), &Content::Image(bytes), &format!("{at}.image"))?
        }
    };
    if v.len() != dim {
        return Err(ApiError::invalid(at, format!("{dim} numbers"), format!("{} numbers", v.len())));
    }
    Ok(v)
}

/// The engine's query by examples for `explore`, its examples resolved (blocking), with the rest of `req`
/// (`using`, limit, filter, parameters, ...).
pub(super) fn example_search(
    t: &Target,
    explore: Explore,
    req: &EngineSearch,
    lookup: Option<&LookupLocation>,
) -> ApiResult<ExampleSearch> {
    t.source(lookup, None)?;
    let cfg = t.col.config();
    let using = req.using.as_deref();
    if using.is_some_and(|u| cfg.sparse_of(u).is_some()) {
        return Err(ApiError::invalid("using", "a dense vector for a query by examples", "a sparse vector"));
    }
    let dim = cfg.spaces()[cfg.space_of(using, "using")?].dimension;
    let f = &explore.field;
    let one = |e: NearestInput, at: String| example(t, e, using, lookup, dim, &at);
    let list = |l: Vec<NearestInput>, side: &str| -> ApiResult<Vec<Vec<f32>>> {
        l.into_iter().enumerate().map(|(i, e)| one(e, format!("{f}.{side}[{i}]"))).collect()
    };
    let pairs = |ps: Vec<ContextPair>, at: &str| -> ApiResult<Vec<(Vec<f32>, Vec<f32>)>> {
        ps.into_iter()
            .enumerate()
            .map(|(i, p)| {
                Ok((one(p.positive, format!("{at}[{i}].positive"))?, one(p.negative, format!("{at}[{i}].negative"))?))
            })
            .collect()
    };
    let query = match explore.kind {
        ExploreKind::BestScore { positive, negative } => {
            ExampleQuery::BestScore { positive: list(positive, "positive")?, negative: list(negative, "negative")? }
        }
        ExploreKind::SumScores { positive, negative } => {
            ExampleQuery::SumScores { positive: list(positive, "positive")?, negative: list(negative, "negative")? }
        }
        ExploreKind::Discover { target, pairs: ps } => ExampleQuery::Discover {
            target: one(target, format!("{f}.target"))?,
            pairs: pairs(ps, &format!("{f}.context"))?,
        },
        ExploreKind::Context { pairs: ps } => ExampleQuery::Context { pairs: pairs(ps, &format!("{f}.context"))? },
    };
    Ok(ExampleSearch {
        query,
        using: req.using.clone(),
        limit: req.limit,
        offset: req.offset,
        filter: req.filter.clone(),
        params: req.params.clone(),
        with_payload: req.with_payload,
        with_vector: req.with_vector,
        score_threshold: req.score_threshold,
        min_seq: None,
    })
}

/// The stored vector `using` (`None`: the unnamed one) of point `id`: 404 naming `at` when the point does not
/// exist, 400 when it has no such vector.
pub(super) fn stored_vector(
    col: &Collection,
    id: quiver_engine::PointId,
    using: Option<&str>,
    at: &str,
) -> ApiResult<Vec<f32>> {
    let Some(rec) = col.get(&[id], false, true)?.pop() else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("{at}: point {id} does not exist")));
    };
    match (rec.vector, rec.vectors) {
        (Some(v), _) => Ok(v),
        (None, Some(mut named)) => {
            let name = using.unwrap_or("");
            named.remove(name).ok_or_else(|| {
                ApiError::invalid(at, format!("a point with a {name:?} vector"), format!("point {id}, which has none"))
            })
        }
        (None, None) => Err(ApiError::internal("a read with vectors returned none")),
    }
}

/// The stored sparse vector `name` of point `id` (404 when the point does not exist, 400 when it has none).
fn stored_sparse(
    col: &Collection,
    id: quiver_engine::PointId,
    name: &str,
    at: &str,
) -> ApiResult<quiver_engine::SparseVector> {
    let Some(rec) = col.get(&[id], false, true)?.pop() else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("{at}: point {id} does not exist")));
    };
    rec.sparse.and_then(|mut m| m.remove(name)).ok_or_else(|| {
        ApiError::invalid(at, format!("a point with a {name:?} vector"), format!("point {id}, which has none"))
    })
}

/// A query text or image, the model the client named, and where it was in the request.
pub(super) struct QueryText {
    pub(super) content: Content,
    pub(super) model: Option<String>,
    pub(super) field: String,
}

fn plan_search(r: SearchRequest, cfg: &ServerConfig) -> ApiResult<Plan> {
    let offset = r.offset.unwrap_or(0);
    convert::check_limit(r.limit, offset, cfg)?;
    let payload = PayloadSel::from_wire(r.with_payload, false);
    let vectors = VectorSel::from_wire(r.with_vector);
    let ((vector, sparse, using), text) = match (r.vector, r.text, r.image) {
        (Some(v), None, None) => (convert::search_vector(v), None),
        (None, Some(text), None) => {
            let text = QueryText { content: Content::Text(text), model: None, field: "text".into() };
            ((Vec::new(), None, None), Some(text))
        }
        (None, None, Some(image)) => {
            let content = Content::Image(convert::image_bytes(&image, "image")?);
            ((Vec::new(), None, None), Some(QueryText { content, model: None, field: "image".into() }))
        }
        (None, None, None) => {
            return Err(ApiError::invalid(
                "vector",
                "a vector (or `text` / `image` for a collection with an embedding model)",
                "nothing",
            ));
        }
        _ => return Err(ApiError::invalid("vector", "one of `vector`, `text` or `image`", "more than one")),
    };
    let req = EngineSearch {
        vector,
        using,
        sparse,
        limit: r.limit,
        offset,
        filter: r.filter,
        params: convert::search_params(r.params)?,
        with_payload: payload.wanted(),
        with_vector: vectors.wanted(),
        score_threshold: r.score_threshold,
        explain: false,
        min_seq: convert::min_seq(r.min_seq, r.read_token.as_deref())?,
    };
    Ok(Plan { req, payload, vectors, by_id: None, text, examples: None, explore: None, lookup: None })
}

fn plan_query(mut r: QueryRequest, cfg: &ServerConfig) -> ApiResult<Plan> {
    if stages::is_staged(&r) {
        return Err(ApiError::invalid(
            "query",
            "a nearest-vector query without prefetch (fusion and bm25 are not supported in grouped queries)",
            "a staged query",
        ));
    }
    let limit = r.limit.unwrap_or(10);
    let offset = r.offset.unwrap_or(0);
    convert::check_limit(limit, offset, cfg)?;
    let Some(q) = r.query.take() else {
        return Err(ApiError::invalid(
            "query",
            "a vector, a point id, {\"nearest\": …} or {\"recommend\": …} (use /points/scroll to list points)",
            "nothing",
        ));
    };
    let lookup = r.lookup_from.take();
    let NearestQuery { vector, sparse, by_id, text, examples, explore, filter } =
        nearest_query(q, r.filter.take(), "query", lookup.is_some())?;
    let payload = PayloadSel::from_wire(r.with_payload, false);
    let vectors = VectorSel::from_wire(r.with_vector);
    let req = EngineSearch {
        vector,
        sparse,
        using: r.using.filter(|u| !u.is_empty()),
        limit,
        offset,
        filter,
        params: convert::search_params(r.params)?,
        with_payload: payload.wanted(),
        with_vector: vectors.wanted(),
        score_threshold: r.score_threshold,
        explain: r.explain.unwrap_or(false),
        min_seq: convert::min_seq(r.min_seq, r.read_token.as_deref())?,
    };
    Ok(Plan { req, payload, vectors, by_id, text, examples, explore, lookup })
}

/// A query's plan: one nearest search, or stages.
enum QueryPlan {
    Nearest(Box<Plan>),
    Staged(Box<stages::Staged>),
}

fn plan_any_query(r: QueryRequest, cfg: &ServerConfig) -> ApiResult<QueryPlan> {
    if stages::is_staged(&r) {
        stages::plan(r, cfg).map(|q| QueryPlan::Staged(Box::new(q)))
    } else {
        plan_query(r, cfg).map(|p| QueryPlan::Nearest(Box::new(p)))
    }
}

fn run_query(t: &Target, plan: QueryPlan) -> ApiResult<QueryResponse> {
    match plan {
        QueryPlan::Nearest(p) => run(t, *p).map(|(points, explain)| QueryResponse { points, explain }),
        QueryPlan::Staged(q) => stages::run(t, *q).map(|points| QueryResponse { points, explain: None }),
    }
}

/// What a plan runs against.
pub(super) struct Target {
    pub(super) state: AppState,
    name: String,
    pub(super) col: Collection,
    /// The caller's access, where a query may read another collection (`lookup_from`); `None` on routes without it.
    access: Option<Access>,
}

impl Target {
    fn new(s: &AppState, name: String) -> ApiResult<Target> {
        Ok(Target { col: s.collection(&name)?, state: s.clone(), name, access: None })
    }

    fn with_access(s: &AppState, name: String, access: Access) -> ApiResult<Target> {
        Ok(Target { access: Some(access), ..Target::new(s, name)? })
    }

    /// Where the point ids of a query are looked up: `lookup` (checked: readable by the caller, existing, no shard
    /// key) with its vector name, or this collection with `using`.
    fn source<'a>(
        &self,
        lookup: Option<&'a LookupLocation>,
        using: Option<&'a str>,
    ) -> ApiResult<(Collection, Option<&'a str>)> {
        let Some(l) = lookup else { return Ok((self.col.clone(), using)) };
        if l.shard_key.as_ref().is_some_and(|k| !k.is_null()) {
            return Err(ApiError::invalid("lookup_from.shard_key", "absent (not supported)", "a value"));
        }
        let Some(access) = &self.access else {
            return Err(ApiError::invalid("lookup_from", "absent here", "a collection"));
        };
        if !access.can_read(&l.collection) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("lookup_from.collection: {} may not read collection {:?}", access.describe(), l.collection),
            ));
        }
        let col = self.state.collection(&l.collection).map_err(|mut e| {
            e.message = format!("lookup_from.collection: {}", e.message);
            e
        })?;
        Ok((col, l.vector.as_deref().filter(|v| !v.is_empty())))
    }
}

/// Turns a plan's text or point id into its query vector (blocking).
pub(super) fn resolve_vector(t: &Target, plan: &mut Plan) -> ApiResult<()> {
    let col = &t.col;
    // A lookup_from is checked (readable, existing) whether or not the query names points.
    t.source(plan.lookup.as_ref(), None)?;
    super::points::check_min_seq(&t.state, col, plan.req.min_seq)?;
    if let Some(ex) = plan.examples.take() {
        if let Some(seq) = plan.req.min_seq {
            col.wait_for(seq, MIN_SEQ_WAIT)?;
        }
        plan.req.vector = example_vector(t, ex, plan.req.using.as_deref(), plan.lookup.as_ref())?;
    }
    if let Some(q) = plan.text.take() {
        let model = t.state.embedders().for_vector(&t.name, col, plan.req.using.as_deref())?;
        embedding::check_named_model(q.model.as_deref(), model.model_name(), &q.field)?;
        plan.req.vector = embedding::embed_content(model.as_ref(), &q.content, &q.field)?;
    }
    if let Some(id) = plan.by_id {
        if let Some(seq) = plan.req.min_seq {
            col.wait_for(seq, MIN_SEQ_WAIT)?;
        }
        let using = plan.req.using.as_deref();
        let (source, name) = t.source(plan.lookup.as_ref(), using)?;
        if let Some(u) = using.filter(|u| col.config().sparse_of(u).is_some()) {
            plan.req.sparse = Some(stored_sparse(&source, id, name.unwrap_or(u), "query")?);
        } else {
            plan.req.vector = stored_vector(&source, id, name, "query")?;
        }
    }
    Ok(())
}

/// An engine hit in Qdrant's shape, its payload trimmed to the selection.
pub(super) fn wire_hit(h: quiver_engine::ScoredPoint, payload: &PayloadSel, vectors: &VectorSel) -> ScoredPoint {
    let vector = vectors.apply(h.vector, h.vectors, h.sparse);
    ScoredPoint { id: h.id, version: 0, score: h.score, payload: payload.apply(h.payload), vector }
}

/// Runs one plan (blocking).
fn run(t: &Target, mut plan: Plan) -> ApiResult<(Vec<ScoredPoint>, Option<serde_json::Value>)> {
    if let Some(explore) = plan.explore.take() {
        if plan.req.explain {
            return Err(ApiError::invalid("explain", "false or absent for a query by examples", "true"));
        }
        super::points::check_min_seq(&t.state, &t.col, plan.req.min_seq)?;
        if let Some(seq) = plan.req.min_seq {
            t.col.wait_for(seq, MIN_SEQ_WAIT)?;
        }
        let req = example_search(t, explore, &plan.req, plan.lookup.as_ref())?;
        let hits = t.col.example_search(&req)?;
        return Ok((hits.into_iter().map(|h| wire_hit(h, &plan.payload, &plan.vectors)).collect(), None));
    }
    resolve_vector(t, &mut plan)?;
    let resp = t.col.search(&plan.req)?;
    let hits = resp.hits.into_iter().map(|h| wire_hit(h, &plan.payload, &plan.vectors)).collect();
    let explain = match resp.explain {
        Some(e) => Some(serde_json::to_value(e).map_err(|e| ApiError::internal(e.to_string()))?),
        None => None,
    };
    Ok((hits, explain))
}

/// The `limit` nearest points to a vector, best first.
#[utoipa::path(post, path = "/collections/{collection_name}/points/search", tag = "search", params(CollectionPath),
    request_body = SearchRequest,
    responses((status = 200, body = Envelope<Vec<ScoredPoint>>), (status = "4XX", body = ErrorBody)))]
pub async fn search(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    ApiJson(body): ApiJson<SearchRequest>,
) -> ApiResult<Reply<Vec<ScoredPoint>>> {
    let plan = plan_search(body, s.config())?;
    let target = Target::new(&s, p.collection_name)?;
    let (hits, _) = blocking(move || run(&target, plan)).await?;
    Ok(Reply(hits, t))
}

/// Several searches in one request (answers in the same order).
#[utoipa::path(post, path = "/collections/{collection_name}/points/search/batch", tag = "search",
    params(CollectionPath), request_body = SearchBatch,
    responses((status = 200, body = Envelope<Vec<Vec<ScoredPoint>>>), (status = "4XX", body = ErrorBody)))]
pub async fn search_batch(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    ApiJson(body): ApiJson<SearchBatch>,
) -> ApiResult<Reply<Vec<Vec<ScoredPoint>>>> {
    check_batch_len(body.searches.len(), s.config())?;
    let plans = body
        .searches
        .into_iter()
        .enumerate()
        .map(|(i, r)| plan_search(r, s.config()).map_err(|e| prefix(e, &format!("searches[{i}]"))))
        .collect::<ApiResult<Vec<_>>>()?;
    let target = Target::new(&s, p.collection_name)?;
    let out = blocking(move || plans.into_iter().map(|pl| run(&target, pl).map(|r| r.0)).collect()).await?;
    Ok(Reply(out, t))
}

/// The nearest points to a vector or to a stored point (Qdrant's universal query, nearest case).
#[utoipa::path(post, path = "/collections/{collection_name}/points/query", tag = "search", params(CollectionPath),
    request_body = QueryRequest,
    responses((status = 200, body = Envelope<QueryResponse>), (status = "4XX", body = ErrorBody)))]
pub async fn query(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    Extension(access): Extension<Access>,
    t: Started,
    ApiJson(body): ApiJson<QueryRequest>,
) -> ApiResult<Reply<QueryResponse>> {
    let plan = plan_any_query(body, s.config())?;
    let target = Target::with_access(&s, p.collection_name, access)?;
    let out = blocking(move || run_query(&target, plan)).await?;
    Ok(Reply(out, t))
}

/// Several queries in one request.
#[utoipa::path(post, path = "/collections/{collection_name}/points/query/batch", tag = "search",
    params(CollectionPath), request_body = QueryBatch,
    responses((status = 200, body = Envelope<Vec<QueryResponse>>), (status = "4XX", body = ErrorBody)))]
pub async fn query_batch(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    Extension(access): Extension<Access>,
    t: Started,
    ApiJson(body): ApiJson<QueryBatch>,
) -> ApiResult<Reply<Vec<QueryResponse>>> {
    check_batch_len(body.searches.len(), s.config())?;
    let plans = body
        .searches
        .into_iter()
        .enumerate()
        .map(|(i, r)| plan_any_query(r, s.config()).map_err(|e| prefix(e, &format!("searches[{i}]"))))
        .collect::<ApiResult<Vec<_>>>()?;
    let target = Target::with_access(&s, p.collection_name, access)?;
    let out = blocking(move || plans.into_iter().map(|pl| run_query(&target, pl)).collect()).await?;
    Ok(Reply(out, t))
}

fn check_batch_len(n: usize, cfg: &ServerConfig) -> ApiResult<()> {
    if n == 0 || n > cfg.max_search_batch {
        return Err(ApiError::invalid("searches", format!("1..={} searches", cfg.max_search_batch), n));
    }
    Ok(())
}

fn prefix(mut e: ApiError, at: &str) -> ApiError {
    e.message = format!("{at}: {}", e.message);
    e
}

/// Default hits per group.
const DEFAULT_GROUP_SIZE: usize = 3;
/// Most hits per group.
const MAX_GROUP_SIZE: usize = 100;

/// The best `limit` groups of points sharing the value of payload key `group_by` (e.g. the chunks of one
/// document: `group_by: "doc_id"`), up to `group_size` hits each, best group first. Candidates are fetched in
/// growing rounds until enough groups are found or the collection (or the candidate cap, 10 × `max_limit`) is
/// exhausted. An array value puts the point in one group per element; points without the key are skipped.
#[utoipa::path(post, path = "/collections/{collection_name}/points/search/groups", tag = "search",
    params(CollectionPath), request_body = SearchGroupsRequest,
    responses((status = 200, body = Envelope<GroupsResult>), (status = "4XX", body = ErrorBody)))]
pub async fn search_groups(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    t: Started,
    ApiJson(body): ApiJson<SearchGroupsRequest>,
) -> ApiResult<Reply<GroupsResult>> {
    let spec = GroupSpec::new(&body.group_by, body.group_size, body.limit, s.config())?;
    let user_payload = PayloadSel::from_wire(body.with_payload.clone(), false);
    let first = SearchRequest {
        vector: body.vector,
        text: body.text,
        image: None,
        filter: body.filter,
        params: body.params,
        limit: spec.first_fetch(),
        offset: None,
        with_payload: Some(crate::wire::WithPayload::Bool(true)),
        with_vector: body.with_vector,
        score_threshold: body.score_threshold,
        min_seq: body.min_seq,
        read_token: body.read_token,
        shards_to_search: None,
    };
    let plan = plan_search(first, &unlimited())?;
    let groups = run_groups(Target::new(&s, p.collection_name)?, plan, spec, user_payload).await?;
    Ok(Reply(groups, t))
}

/// [`search_groups`] for a query: `"query"` is a vector, `{"text"}`, a stored point's id or `{"nearest": …}`.
#[utoipa::path(post, path = "/collections/{collection_name}/points/query/groups", tag = "search",
    params(CollectionPath), request_body = QueryGroupsRequest,
    responses((status = 200, body = Envelope<GroupsResult>), (status = "4XX", body = ErrorBody)))]
pub async fn query_groups(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    Extension(access): Extension<Access>,
    t: Started,
    ApiJson(body): ApiJson<QueryGroupsRequest>,
) -> ApiResult<Reply<GroupsResult>> {
    let spec = GroupSpec::new(&body.group_by, body.group_size, body.limit, s.config())?;
    let user_payload = PayloadSel::from_wire(body.with_payload.clone(), false);
    let first = QueryRequest {
        query: body.query,
        using: body.using,
        prefetch: body.prefetch,
        filter: body.filter,
        params: body.params,
        limit: Some(spec.first_fetch()),
        offset: None,
        with_payload: Some(crate::wire::WithPayload::Bool(true)),
        with_vector: body.with_vector,
        score_threshold: body.score_threshold,
        lookup_from: body.lookup_from,
        explain: None,
        min_seq: body.min_seq,
        read_token: body.read_token,
        shards_to_search: None,
    };
    let target = Target::with_access(&s, p.collection_name, access)?;
    if stages::is_staged(&first) {
        // Prefetch, fusion or bm25: the final stage's limit grows round by round.
        let staged = stages::plan(first, &unlimited())?;
        let (groups, vectors) = blocking(move || stages::groups(&target, staged, &spec)).await?;
        return Ok(Reply(wire_groups(groups, &user_payload, &vectors), t));
    }
    let plan = plan_query(first, &unlimited())?;
    let groups = run_groups(target, plan, spec, user_payload).await?;
    Ok(Reply(groups, t))
}

/// What a grouped search asks for, checked.
pub(crate) struct GroupSpec {
    pub(crate) group_by: String,
    pub(crate) group_size: usize,
    pub(crate) limit: usize,
    /// Most candidates looked at.
    pub(crate) cap: usize,
}

impl GroupSpec {
    pub(crate) fn new(
        group_by: &str,
        group_size: Option<usize>,
        limit: Option<usize>,
        cfg: &ServerConfig,
    ) -> ApiResult<Self> {
        let limit = limit.unwrap_or(10);
        let group_size = group_size.unwrap_or(DEFAULT_GROUP_SIZE);
        if group_by.is_empty() || group_by.split('.').any(str::is_empty) {
            return Err(ApiError::invalid("group_by", "a dotted payload key like `doc_id`", format!("{group_by:?}")));
        }
        if !(1..=MAX_GROUP_SIZE).contains(&group_size) {
            return Err(ApiError::invalid("group_size", format!("1..={MAX_GROUP_SIZE}"), group_size));
        }
        convert::check_limit(limit, 0, cfg)?;
        Ok(GroupSpec { group_by: group_by.to_string(), group_size, limit, cap: cfg.max_limit.saturating_mul(10) })
    }

    /// Candidates of the first round.
    pub(crate) fn first_fetch(&self) -> usize {
        (self.limit * self.group_size * 2).clamp(16, self.cap.max(16))
    }
}

/// Fetches candidates in growing rounds until `spec.limit` groups are found or there are no more (blocking work
/// on the pool).
async fn run_groups(
    target: Target,
    mut plan: Plan,
    spec: GroupSpec,
    user_payload: PayloadSel,
) -> ApiResult<GroupsResult> {
    let vectors = plan.vectors.clone();
    let groups = blocking(move || {
        // A query by examples is resolved once; its limit grows with the nearest search's.
        let mut examples = match plan.explore.take() {
            Some(e) => Some(example_search(&target, e, &plan.req, plan.lookup.as_ref())?),
            None => {
                resolve_vector(&target, &mut plan)?;
                None
            }
        };
        grouped_rounds(&spec, plan.req.limit, |limit| match examples.as_mut() {
            Some(x) => {
                x.limit = limit;
                Ok(target.col.example_search(x)?)
            }
            None => {
                plan.req.limit = limit;
                Ok(target.col.search(&plan.req)?.hits)
            }
        })
    })
    .await?;
    Ok(wire_groups(groups, &user_payload, &vectors))
}

/// Fetches candidates (`fetch(limit)`: the best `limit`, best first, with payloads) in rounds growing from
/// `first` until `spec.limit` groups are found or the candidates (or `spec.cap`) run out; the groups.
pub(super) fn grouped_rounds(
    spec: &GroupSpec,
    first: usize,
    mut fetch: impl FnMut(usize) -> ApiResult<Vec<quiver_engine::ScoredPoint>>,
) -> ApiResult<Vec<stages::HitGroup>> {
    let mut limit = first;
    loop {
        let hits = fetch(limit)?;
        let exhausted = hits.len() < limit || limit >= spec.cap;
        let groups = group_hits(hits, |h| h.payload.as_ref(), &spec.group_by, spec.group_size, spec.limit);
        if groups.len() >= spec.limit || exhausted {
            return Ok(groups);
        }
        limit = limit.saturating_mul(4).min(spec.cap);
    }
}

/// Groups in the reply's shape: each hit with the payload and vectors the caller selected.
fn wire_groups(groups: Vec<stages::HitGroup>, payload: &PayloadSel, vectors: &VectorSel) -> GroupsResult {
    let groups = groups
        .into_iter()
        .map(|(id, hits)| PointGroup { id, hits: hits.into_iter().map(|h| wire_hit(h, payload, vectors)).collect() })
        .collect();
    GroupsResult { groups }
}

/// Limits for the candidate searches of a grouped search, which may look at more than `max_limit` points.
fn unlimited() -> ServerConfig {
    ServerConfig { max_limit: usize::MAX / 16, ..ServerConfig::default() }
}

/// Groups hits (best first) by the value at `key`: at most `limit` groups in order of their best hit, each with
/// at most `size` hits.
pub(crate) fn group_hits<H: Clone>(
    hits: Vec<H>,
    payload: impl Fn(&H) -> Option<&quiver_engine::Payload>,
    key: &str,
    size: usize,
    limit: usize,
) -> Vec<(serde_json::Value, Vec<H>)> {
    let mut groups: Vec<(serde_json::Value, Vec<H>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for h in hits {
        let values: Vec<serde_json::Value> = match payload(&h).and_then(|p| lookup(p, key)) {
            Some(serde_json::Value::Array(items)) => items.iter().filter(|v| is_group_value(v)).cloned().collect(),
            Some(v) if is_group_value(v) => vec![v.clone()],
            _ => continue,
        };
        for v in values {
            let k = v.to_string();
            let at = match index.get(&k) {
                Some(&i) => i,
                None if groups.len() < limit => {
                    groups.push((v, Vec::new()));
                    index.insert(k, groups.len() - 1);
                    groups.len() - 1
                }
                None => continue,
            };
            if groups[at].1.len() < size {
                groups[at].1.push(h.clone());
            }
        }
    }
    groups
}

fn is_group_value(v: &serde_json::Value) -> bool {
    matches!(v, serde_json::Value::String(_) | serde_json::Value::Number(_) | serde_json::Value::Bool(_))
}

/// The value at dotted `key`.
fn lookup<'a>(p: &'a quiver_engine::Payload, key: &str) -> Option<&'a serde_json::Value> {
    let mut parts = key.split('.');
    let mut v = p.get(parts.next()?)?;
    for part in parts {
        v = v.as_object()?.get(part)?;
    }
    Some(v)
}
