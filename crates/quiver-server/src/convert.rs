//! Wire shapes → engine requests, engine answers → wire shapes, with the server's caps checked on the way.

use quiver_engine::filter::Condition;
use quiver_engine::{Filter, Payload, PointId, PointInput, Selector};
use quiver_index::{Metric, SearchParams as EngineParams};

use crate::error::{ApiError, ApiResult};
use crate::state::ServerConfig;
use crate::wire::{
    Batch, BatchVector, BatchVectors, Distance, ImageInput, NamedVectorInput, PointStruct, SearchParams, SearchVector,
    TextInput, UpsertPoints, VectorInput, VectorOutput, VectorsConfig, WithPayload, WithVector,
};
pub use quiver_text::Content;

/// Qdrant's distance → the engine's metric; `field` names it in errors.
fn distance(d: Distance, field: &str) -> ApiResult<Metric> {
    Ok(match d {
        Distance::Cosine => Metric::Cosine,
        Distance::Dot => Metric::Dot,
        Distance::Euclid => Metric::Euclidean,
        Distance::Manhattan => {
            return Err(ApiError::invalid(field, "Cosine, Dot or Euclid", "Manhattan (not supported)"));
        }
    })
}

/// The vector spaces of Qdrant's `vectors`: one unnamed `(None, size, metric)`, or each named vector in name
/// order.
pub fn vector_spaces(vectors: &VectorsConfig) -> ApiResult<Vec<(Option<String>, usize, Metric)>> {
    match vectors {
        VectorsConfig::Single(p) if p.embedding.is_some() => Err(ApiError::invalid(
            "vectors.embedding",
            "absent for one unnamed vector (set the collection's `embedding`)",
            "a model",
        )),
        VectorsConfig::Single(p) => Ok(vec![(None, p.size, distance(p.distance, "vectors.distance")?)]),
        VectorsConfig::Named(m) if m.is_empty() => Err(ApiError::invalid(
            "vectors",
            "one vector {\"size\": N, \"distance\": \"Cosine\"} or named vectors",
            "{}",
        )),
        VectorsConfig::Named(m) => m
            .iter()
            .map(|(name, p)| {
                Ok((Some(name.clone()), p.size, distance(p.distance, &format!("vectors.{name}.distance"))?))
            })
            .collect(),
    }
}

/// The engine's metric → Qdrant's distance name.
pub fn distance_name(m: Metric) -> &'static str {
    match m {
        Metric::Cosine => "Cosine",
        Metric::Dot => "Dot",
        Metric::Euclidean => "Euclid",
    }
}

/// The numbers of a point's `vector`: an unnamed vector (a plain array or `{"": [...]}`), named and sparse
/// vectors, whose texts and images go to `pending` (for point `index`).
fn vector(v: VectorInput, index: usize, field: &str, pending: &mut Vec<PendingText>) -> ApiResult<PointVectors> {
    match v {
        VectorInput::Plain(v) => Ok(PointVectors { unnamed: Some(v), ..PointVectors::default() }),
        VectorInput::Named(m) => {
            let mut out = PointVectors::default();
            for (name, v) in m {
                let at = format!("{field}.{name}");
                let content = match v {
                    // `{"": [...]}` is Qdrant's spelling of the unnamed vector.
                    NamedVectorInput::Dense(v) if name.is_empty() => {
                        out.unnamed = Some(v);
                        continue;
                    }
                    NamedVectorInput::Dense(v) => {
                        out.named.insert(name, v);
                        continue;
                    }
                    NamedVectorInput::Sparse(v) => {
                        out.sparse.insert(name, v.into());
                        continue;
                    }
                    NamedVectorInput::Document(t) => {
                        let (text, model) = text_input(t, &at)?;
                        (Content::Text(text), model)
                    }
                    NamedVectorInput::Image(i) => {
                        let (bytes, model) = image_input(i, &at)?;
                        (Content::Image(bytes), model)
                    }
                };
                if name.is_empty() {
                    return Err(ApiError::invalid(
                        at,
                        "numbers (give a text as {\"text\": …} without a name)",
                        "a text or image",
                    ));
                }
                pending.push(PendingText {
                    index,
                    field: at,
                    content: content.0,
                    model: content.1,
                    vector: Some(name),
                });
            }
            Ok(out)
        }
        VectorInput::Document(_) | VectorInput::Image(_) => {
            Err(ApiError::internal("document and image vectors are taken apart by the caller"))
        }
    }
}

/// A point's vectors as sent: the unnamed one, named ones, sparse ones.
#[derive(Default)]
struct PointVectors {
    unnamed: Option<Vec<f32>>,
    named: std::collections::BTreeMap<String, Vec<f32>>,
    sparse: std::collections::BTreeMap<String, quiver_engine::SparseVector>,
}

impl PointVectors {
    fn unnamed(v: Vec<f32>) -> PointVectors {
        PointVectors { unnamed: Some(v), ..PointVectors::default() }
    }

    fn into_point(self, id: PointId) -> PointInput {
        let mut p = PointInput::new(id, self.unnamed.unwrap_or_default());
        p.named = self.named;
        p.sparse = self.sparse;
        p
    }
}

/// A text or image the upsert must embed before writing: point `index` of the batch gets its vector.
#[derive(Debug)]
pub struct PendingText {
    /// Which point.
    pub index: usize,
    /// Where it came from, for error messages (`points[3].text`).
    pub field: String,
    /// The text or image.
    pub content: Content,
    /// The model the client named, if any (must be the collection's).
    pub model: Option<String>,
    /// The named vector it becomes (`None`: the unnamed vector, or the first named one).
    pub vector: Option<String>,
}

/// An upsert body taken apart: the points (those in `texts` still without a vector) and the texts and images to
/// embed.
#[derive(Debug)]
pub struct Upsert {
    /// The points, in request order.
    pub points: Vec<PointInput>,
    /// Texts and images to embed, in request order.
    pub texts: Vec<PendingText>,
}

/// An image argument: its bytes (from base64 or a `data:` URL) and the model the client named; `options` must be
/// absent or empty.
pub fn image_input(i: ImageInput, field: &str) -> ApiResult<(Vec<u8>, Option<String>)> {
    check_no_options(i.options.as_ref(), field)?;
    Ok((image_bytes(&i.image, &format!("{field}.image"))?, i.model))
}

/// The bytes of an image sent as base64 or as a `data:…;base64,` URL. Other URLs are refused: the server fetches
/// nothing on a client's behalf.
pub fn image_bytes(s: &str, field: &str) -> ApiResult<Vec<u8>> {
    use base64::Engine as _;
    const EXPECTED: &str = "an image file's bytes in base64, or a data:image/…;base64, URL";
    let data = if let Some(rest) = s.strip_prefix("data:") {
        match rest.split_once(',') {
            Some((meta, data)) if meta.ends_with(";base64") => data,
            _ => return Err(ApiError::invalid(field, EXPECTED, "a data: URL that is not base64")),
        }
    } else if s.starts_with("http://") || s.starts_with("https://") || s.starts_with("file:") {
        return Err(ApiError::invalid(field, EXPECTED, "a URL (images are not fetched; send their bytes)"));
    } else {
        s
    };
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    // Either alphabet, padded or not.
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STANDARD
        .decode(clean.as_bytes())
        .or_else(|_| URL_SAFE.decode(clean.as_bytes()))
        .map_err(|e| ApiError::invalid(field, EXPECTED, format!("text that is not base64 ({e})")))?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(field, EXPECTED, "an empty string"));
    }
    Ok(bytes)
}

fn check_no_options(options: Option<&serde_json::Value>, field: &str) -> ApiResult<()> {
    if options.is_some_and(|o| !o.is_null() && o.as_object().is_none_or(|m| !m.is_empty())) {
        return Err(ApiError::invalid(
            format!("{field}.options"),
            "absent (no inference options are supported)",
            "a value",
        ));
    }
    Ok(())
}

/// A text argument: the text and the model the client named; `options` must be absent or empty.
pub fn text_input(t: TextInput, field: &str) -> ApiResult<(String, Option<String>)> {
    check_no_options(t.options.as_ref(), field)?;
    Ok((t.text, t.model))
}

const VECTOR_OR_TEXT: &str = "a vector (or `text` / `image` for a collection with an embedding model)";

/// The points of an upsert body, capped at `max_batch_points`.
pub fn points(body: UpsertPoints, cfg: &ServerConfig) -> ApiResult<Upsert> {
    let mut texts = Vec::new();
    let points = match (body.points, body.batch) {
        (Some(points), None) => {
            check_batch("points", points.len(), cfg)?;
            let mut out = Vec::with_capacity(points.len());
            for (i, PointStruct { id, vector: v, text, image, payload, ttl_secs }) in points.into_iter().enumerate() {
                let field = format!("points[{i}]");
                let v = match (v, text, image) {
                    (Some(VectorInput::Document(t)), None, None) => {
                        let field = format!("{field}.vector");
                        let (text, model) = text_input(t, &field)?;
                        texts.push(PendingText { index: i, field, content: Content::Text(text), model, vector: None });
                        PointVectors::unnamed(Vec::new())
                    }
                    (Some(VectorInput::Image(img)), None, None) => {
                        let field = format!("{field}.vector");
                        let (bytes, model) = image_input(img, &field)?;
                        texts.push(PendingText {
                            index: i,
                            field,
                            content: Content::Image(bytes),
                            model,
                            vector: None,
                        });
                        PointVectors::unnamed(Vec::new())
                    }
                    (Some(v), None, None) => vector(v, i, &format!("{field}.vector"), &mut texts)?,
                    (None, Some(text), None) => {
                        let field = format!("{field}.text");
                        let content = Content::Text(text);
                        texts.push(PendingText { index: i, field, content, model: None, vector: None });
                        PointVectors::unnamed(Vec::new())
                    }
                    (None, None, Some(image)) => {
                        let field = format!("{field}.image");
                        let content = Content::Image(image_bytes(&image, &field)?);
                        texts.push(PendingText { index: i, field, content, model: None, vector: None });
                        PointVectors::unnamed(Vec::new())
                    }
                    (None, None, None) => {
                        return Err(ApiError::invalid(format!("{field}.vector"), VECTOR_OR_TEXT, "nothing"));
                    }
                    _ => {
                        return Err(ApiError::invalid(field, "one of `vector`, `text` or `image`", "more than one"));
                    }
                };
                let mut p = v.into_point(id);
                p.payload = payload;
                p.ttl_secs = ttl_secs;
                out.push(p);
            }
            out
        }
        (None, Some(Batch { ids, vectors, texts: batch_texts, images: batch_images, payloads })) => {
            check_batch("batch.ids", ids.len(), cfg)?;
            let n = ids.len();
            let per_id = |field: &str, len: usize| {
                if len != n {
                    return Err(ApiError::invalid(field, format!("one entry per id ({n})"), len));
                }
                Ok(())
            };
            let vectors: Vec<PointVectors> = match (vectors, batch_texts, batch_images) {
                (Some(BatchVectors::Plain(v)), None, None) => {
                    per_id("batch.vectors", v.len())?;
                    v.into_iter().map(PointVectors::unnamed).collect()
                }
                (Some(BatchVectors::Named(m)), None, None) => {
                    let mut per_point: Vec<PointVectors> = (0..n).map(|_| PointVectors::default()).collect();
                    for (name, list) in m {
                        per_id(&format!("batch.vectors.{name}"), list.len())?;
                        for (p, v) in per_point.iter_mut().zip(list) {
                            match v {
                                BatchVector::Dense(v) if name.is_empty() => p.unnamed = Some(v),
                                BatchVector::Dense(v) => {
                                    p.named.insert(name.clone(), v);
                                }
                                BatchVector::Sparse(v) => {
                                    p.sparse.insert(name.clone(), v.into());
                                }
                            }
                        }
                    }
                    per_point
                }
                (None, Some(t), None) => {
                    per_id("batch.texts", t.len())?;
                    for (i, text) in t.into_iter().enumerate() {
                        let field = format!("batch.texts[{i}]");
                        let content = Content::Text(text);
                        texts.push(PendingText { index: i, field, content, model: None, vector: None });
                    }
                    (0..n).map(|_| PointVectors::unnamed(Vec::new())).collect()
                }
                (None, None, Some(images)) => {
                    per_id("batch.images", images.len())?;
                    for (i, image) in images.iter().enumerate() {
                        let field = format!("batch.images[{i}]");
                        let content = Content::Image(image_bytes(image, &field)?);
                        texts.push(PendingText { index: i, field, content, model: None, vector: None });
                    }
                    (0..n).map(|_| PointVectors::unnamed(Vec::new())).collect()
                }
                (None, None, None) => return Err(ApiError::invalid("batch.vectors", VECTOR_OR_TEXT, "nothing")),
                _ => {
                    return Err(ApiError::invalid("batch", "one of `vectors`, `texts` or `images`", "more than one"));
                }
            };
            if let Some(p) = &payloads {
                per_id("batch.payloads", p.len())?;
            }
            let mut payloads = payloads.map(|p| p.into_iter());
            ids.into_iter()
                .zip(vectors)
                .map(|(id, v)| {
                    let mut p = v.into_point(id);
                    p.payload = payloads.as_mut().and_then(|p| p.next()).flatten();
                    p
                })
                .collect()
        }
        (Some(_), Some(_)) => return Err(ApiError::bad_request("invalid body: give `points` or `batch`, not both")),
        (None, None) => return Err(ApiError::bad_request("invalid body: expected `points` or `batch`")),
    };
    if points.is_empty() {
        return Err(ApiError::invalid("points", "at least one point", 0));
    }
    Ok(Upsert { points, texts })
}

/// Checks a list length against `max_batch_points`.
pub fn check_batch(field: &str, n: usize, cfg: &ServerConfig) -> ApiResult<()> {
    if n > cfg.max_batch_points {
        return Err(ApiError::invalid(field, format!("at most {} entries", cfg.max_batch_points), n));
    }
    Ok(())
}

/// `points` or `filter`, exactly one.
pub fn selector(points: Option<Vec<PointId>>, filter: Option<Filter>, cfg: &ServerConfig) -> ApiResult<Selector> {
    match (points, filter) {
        (Some(ids), None) => {
            check_batch("points", ids.len(), cfg)?;
            Ok(Selector::Ids(ids))
        }
        (None, Some(f)) => Ok(Selector::Filter(f)),
        (Some(_), Some(_)) => Err(ApiError::bad_request("invalid body: give `points` or `filter`, not both")),
        (None, None) => Err(ApiError::bad_request("invalid body: expected `points` (ids) or `filter`")),
    }
}

/// A read's `min_seq` with its `read_token` folded in: one node is shard 0, so a token naming another shard (one
/// from a cluster) is refused.
pub fn min_seq(min_seq: Option<u64>, read_token: Option<&str>) -> ApiResult<Option<u64>> {
    let Some(t) = read_token else { return Ok(min_seq) };
    let token = crate::wire::ReadToken::parse(t).map_err(|e| ApiError::invalid("read_token", e, format!("{t:?}")))?;
    if let Some(s) = token.0.keys().find(|&&s| s != 0) {
        return Err(ApiError::invalid(
            "read_token",
            "a token of this node (shard 0 only: a token naming other shards comes from a cluster)",
            format!("shard {s}"),
        ));
    }
    Ok(match (min_seq, token.0.get(&0).copied()) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    })
}

/// Checks `limit` and `offset` against the server's caps.
pub fn check_limit(limit: usize, offset: usize, cfg: &ServerConfig) -> ApiResult<()> {
    if limit == 0 || limit > cfg.max_limit {
        return Err(ApiError::invalid("limit", format!("1..={}", cfg.max_limit), limit));
    }
    let cap = cfg.max_limit.saturating_mul(10);
    if offset > cap {
        return Err(ApiError::invalid("offset", format!("0..={cap}"), offset));
    }
    Ok(())
}

/// Qdrant's + QuiverDB's search parameters → the engine's.
pub fn search_params(p: Option<SearchParams>) -> ApiResult<EngineParams> {
    let mut out = EngineParams::default();
    let Some(p) = p else { return Ok(out) };
    if p.hnsw_ef.is_some() && p.ef.is_some() && p.hnsw_ef != p.ef {
        return Err(ApiError::bad_request("invalid params: `hnsw_ef` and `ef` disagree; give one"));
    }
    out.ef = p.ef.or(p.hnsw_ef);
    out.exact = p.exact.unwrap_or(false);
    out.nprobe = p.nprobe;
    out.max_leaves = p.max_leaves;
    out.probes = p.probes;
    out.rerank = p.rerank;
    out.target_recall = p.target_recall;
    if let Some(q) = p.quantization {
        if let Some(o) = q.oversampling {
            if !(o.is_finite() && (1.0..=1024.0).contains(&o)) {
                return Err(ApiError::invalid("params.quantization.oversampling", "a number in 1..=1024", o));
            }
            out.rerank = out.rerank.or(Some(o.ceil() as usize));
        }
        if q.rescore == Some(false) {
            out.rerank = None;
        }
    }
    out.validate().map_err(|e| match e {
        quiver_index::Error::InvalidParameter { name, expected, got } => {
            ApiError::invalid(format!("params.{name}"), expected, got)
        }
        other => ApiError::bad_request(format!("invalid params: {other}")),
    })?;
    Ok(out)
}

/// The query of a search request: a dense vector or a sparse one, and the named vector it searches (`None`: the
/// unnamed one).
pub fn search_vector(v: SearchVector) -> (Vec<f32>, Option<quiver_engine::SparseVector>, Option<String>) {
    match v {
        SearchVector::Plain(v) => (v, None, None),
        SearchVector::Named { name, vector } => (vector, None, Some(name).filter(|n| !n.is_empty())),
        SearchVector::NamedSparse { name, vector } => (Vec::new(), Some(vector.into()), Some(name)),
    }
}

/// How payloads are attached.
#[derive(Debug, Clone)]
pub enum PayloadSel {
    /// None.
    None,
    /// All keys.
    All,
    /// Only these top-level/dotted keys.
    Include(Vec<String>),
    /// All but these.
    Exclude(Vec<String>),
}

impl PayloadSel {
    /// From the wire value with a default.
    pub fn from_wire(w: Option<WithPayload>, default: bool) -> PayloadSel {
        match w {
            None => {
                if default {
                    PayloadSel::All
                } else {
                    PayloadSel::None
                }
            }
            Some(WithPayload::Bool(true)) => PayloadSel::All,
            Some(WithPayload::Bool(false)) => PayloadSel::None,
            Some(WithPayload::Keys(k)) => PayloadSel::Include(k),
            Some(WithPayload::Selector { include: Some(k), .. }) => PayloadSel::Include(k),
            Some(WithPayload::Selector { include: None, exclude: Some(k) }) => PayloadSel::Exclude(k),
            Some(WithPayload::Selector { include: None, exclude: None }) => PayloadSel::All,
        }
    }

    /// Whether any payload is needed from the engine.
    pub fn wanted(&self) -> bool {
        !matches!(self, PayloadSel::None)
    }

    /// Trims a payload to the selection.
    pub fn apply(&self, p: Option<Payload>) -> Option<Payload> {
        let p = p?;
        match self {
            PayloadSel::None => None,
            PayloadSel::All => Some(p),
            PayloadSel::Include(keys) => {
                let mut out = Payload::new();
                for k in keys {
                    let vals = quiver_engine::payload::values_at(&p, k);
                    if let Some(v) = vals.first() {
                        let v = if vals.len() == 1 {
                            (*v).clone()
                        } else {
                            serde_json::Value::Array(vals.into_iter().cloned().collect())
                        };
                        quiver_engine::payload::set_at(&mut out, k, v);
                    }
                }
                Some(out)
            }
            PayloadSel::Exclude(keys) => {
                let mut p = p;
                for k in keys {
                    quiver_engine::payload::remove_at(&mut p, k);
                }
                Some(p)
            }
        }
    }
}

/// Whether the vector is asked for.
pub fn with_vector(w: Option<&WithVector>) -> bool {
    match w {
        None | Some(WithVector::Bool(false)) => false,
        Some(WithVector::Bool(true)) => true,
        Some(WithVector::Names(n)) => !n.is_empty(),
    }
}

/// Which vectors a reply attaches: none, all, or the named ones listed (Qdrant's `with_vector`).
#[derive(Debug, Clone, Default)]
pub enum VectorSel {
    /// None.
    #[default]
    None,
    /// Every vector the point has.
    All,
    /// Only these named vectors (`""`: the unnamed one).
    Names(Vec<String>),
}

impl VectorSel {
    /// From the wire value (absent: none).
    pub fn from_wire(w: Option<WithVector>) -> VectorSel {
        match w {
            None | Some(WithVector::Bool(false)) => VectorSel::None,
            Some(WithVector::Bool(true)) => VectorSel::All,
            Some(WithVector::Names(n)) if n.is_empty() => VectorSel::None,
            Some(WithVector::Names(n)) => VectorSel::Names(n),
        }
    }

    /// Whether the engine must read vectors.
    pub fn wanted(&self) -> bool {
        !matches!(self, VectorSel::None)
    }

    /// A read's vectors in Qdrant's shape: the unnamed vector as an array, named ones as an object of the selected
    /// names the point has.
    pub fn apply(
        &self,
        vector: Option<Vec<f32>>,
        vectors: Option<std::collections::BTreeMap<String, Vec<f32>>>,
        sparse: Option<std::collections::BTreeMap<String, quiver_engine::SparseVector>>,
    ) -> Option<VectorOutput> {
        use crate::wire::NamedVectorOutput;
        if !self.wanted() {
            return None;
        }
        if vectors.is_none() && sparse.is_none() {
            return vector.map(VectorOutput::Plain);
        }
        // Named or sparse vectors: one object by name (the unnamed vector under "").
        let mut named: std::collections::BTreeMap<String, NamedVectorOutput> = Default::default();
        if let Some(v) = vector {
            named.insert(String::new(), NamedVectorOutput::Dense(v));
        }
        for (k, v) in vectors.into_iter().flatten() {
            named.insert(k, NamedVectorOutput::Dense(v));
        }
        for (k, v) in sparse.into_iter().flatten() {
            named.insert(k, NamedVectorOutput::Sparse(v.into()));
        }
        if let VectorSel::Names(keep) = self {
            named.retain(|k, _| keep.contains(k));
        }
        Some(VectorOutput::Named(named))
    }
}

/// `filter` AND "not this id" (a query by a stored point's id does not return the point itself).
pub fn exclude_id(filter: Option<Filter>, id: PointId) -> Filter {
    let mut f = filter.unwrap_or_default();
    f.must_not.push(Condition::HasId(vec![id]));
    f
}
