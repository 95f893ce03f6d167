//! The OpenAPI document as served: utoipa's (generated from the handlers' registrations), refined with what its
//! attributes cannot say — the filter language as a real schema, point ids' exact ranges, the server's configured
//! caps (`max_limit`, `max_batch_points`, …) as bounds, "points or filter, not both", bodies that may be empty —
//! so that a request valid under the document is one the server accepts (schemathesis checks both directions in
//! `scripts/api-fuzz.sh`). [`refine`] reports any place it expected and did not find, so a renamed schema fails
//! the test below instead of silently losing its refinement.

use serde_json::{Value, json};

use crate::state::ServerConfig;

/// A key: dot-separated segments, none empty and none `[]` alone (the engine's rule).
const KEY_PATTERN: &str = r"^(?:[^.]|[^.\[][^.]|\[[^.\]]|[^.]{3,})(?:\.(?:[^.]|[^.\[][^.]|\[[^.\]]|[^.]{3,}))*$";
/// An embedding model name: letters, digits, `.`, `_`, `-`, with at most one `/`, no part `.` or `..` (and at
/// most 200 characters, said by `maxLength`).
const MODEL_PATTERN: &str = r"^(?:[A-Za-z0-9_-]|[A-Za-z0-9_-][A-Za-z0-9._-]|\.[A-Za-z0-9_-]|[A-Za-z0-9._-]{3,})(?:/(?:[A-Za-z0-9_-]|[A-Za-z0-9_-][A-Za-z0-9._-]|\.[A-Za-z0-9_-]|[A-Za-z0-9._-]{3,}))?$";
/// A group key: dot-separated non-empty segments.
const GROUP_KEY_PATTERN: &str = r"^[^.]+(?:\.[^.]+)*$";
const UUID_PATTERN: &str =
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$";

/// The filter language's schemas, added to `components.schemas`.
fn filter_schemas() -> Value {
    let condition_list = json!({"oneOf": [
        {"type": "null"},
        {"$ref": "#/components/schemas/Condition"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}},
    ]});
    let int64 = json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX});
    let bounds = |t: Value| {
        json!({"type": "object", "additionalProperties": false, "minProperties": 1,
               "properties": {"gt": t, "gte": t, "lt": t, "lte": t},
               "anyOf": [{"required": ["gt"]}, {"required": ["gte"]}, {"required": ["lt"]}, {"required": ["lte"]}]})
    };
    let key =
        json!({"type": "string", "pattern": KEY_PATTERN, "description": "A dotted payload key (`a.b`, `tags[]`)."});
    json!({
        "Filter": {
            "type": "object", "additionalProperties": false,
            "description": "Conditions on payloads and ids: `must` (all hold), `should` (at least one holds), \
                `must_not` (none holds), `min_should` (at least `min_count` hold). Nested at most 16 deep.",
            "properties": {
                "must": condition_list, "should": condition_list, "must_not": condition_list,
                "min_should": {"oneOf": [{"type": "null"}, {
                    "type": "object", "additionalProperties": false, "required": ["conditions", "min_count"],
                    "properties": {
                        "conditions": {"type": "array", "items": {"$ref": "#/components/schemas/Condition"}},
                        "min_count": {"type": "integer", "minimum": 0},
                    },
                }]},
            },
        },
        "Condition": {
            "description": "A field condition, `is_empty`, `is_null`, `has_id`, or a nested filter.",
            "oneOf": [
                {"$ref": "#/components/schemas/FieldCondition"},
                {"type": "object", "additionalProperties": false, "required": ["is_empty"],
                 "properties": {"is_empty": {"type": "object", "additionalProperties": false, "required": ["key"], "properties": {"key": key}}}},
                {"type": "object", "additionalProperties": false, "required": ["is_null"],
                 "properties": {"is_null": {"type": "object", "additionalProperties": false, "required": ["key"], "properties": {"key": key}}}},
                {"type": "object", "additionalProperties": false, "required": ["has_id"],
                 "properties": {"has_id": {"type": "array", "items": {"$ref": "#/components/schemas/ExtendedPointId"}}}},
                {"$ref": "#/components/schemas/Filter"},
            ],
        },
        "FieldCondition": {
            "type": "object", "additionalProperties": false, "required": ["key"],
            "minProperties": 2, "maxProperties": 2,
            "description": "`key` and exactly one operator. The server also takes `geo_bounding_box` (`top_left`, \
                `bottom_right`, with `top_left.lat >= bottom_right.lat`) and `geo_polygon` (closed rings of at least \
                four points): see docs/server.md; their constraints are beyond this schema.",
            "properties": {
                "key": key,
                "match": {"$ref": "#/components/schemas/Match"},
                "range": {"oneOf": [
                    bounds(json!({"type": ["number", "null"]})),
                    bounds(json!({"type": ["string", "null"], "format": "date-time"})),
                ]},
                "values_count": bounds(json!({"type": ["integer", "null"], "minimum": 0})),
                "geo_radius": {"type": "object", "additionalProperties": false, "required": ["center", "radius"],
                    "properties": {
                        "center": {"$ref": "#/components/schemas/GeoPoint"},
                        "radius": {"type": "number", "minimum": 0, "description": "Metres."},
                    }},
            },
            "anyOf": [{"required": ["match"]}, {"required": ["range"]}, {"required": ["values_count"]}, {"required": ["geo_radius"]}],
        },
        "GeoPoint": {
            "type": "object", "additionalProperties": false, "required": ["lon", "lat"],
            "properties": {
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
            },
        },
        "Match": {
            "description": "Exactly one of `value` (a string, integer or bool), `any` / `except` (strings or \
                integers), `text` (full-text terms).",
            "oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["value"],
                 "properties": {"value": {"oneOf": [{"type": "string"}, int64, {"type": "boolean"}]}}},
                {"type": "object", "additionalProperties": false, "required": ["any"],
                 "properties": {"any": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "array", "items": int64}]}}},
                {"type": "object", "additionalProperties": false, "required": ["except"],
                 "properties": {"except": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "array", "items": int64}]}}},
                {"type": "object", "additionalProperties": false, "required": ["text"],
                 "properties": {"text": {"type": "string"}}},
            ],
        },
    })
}

/// One refinement site: a JSON pointer into the document and what to do there.
struct Edit {
    at: String,
    apply: Box<dyn Fn(&mut Value)>,
}

fn set(key: &'static str, v: Value) -> Box<dyn Fn(&mut Value)> {
    Box::new(move |x: &mut Value| {
        if let Some(o) = x.as_object_mut() {
            o.insert(key.to_owned(), v.clone());
        }
    })
}

fn replace(v: Value) -> Box<dyn Fn(&mut Value)> {
    Box::new(move |x: &mut Value| *x = v.clone())
}

/// Refines `doc` (utoipa's document as JSON) for a server with `cfg`; returns the pointers it did not find.
pub fn refine(doc: &mut Value, cfg: &ServerConfig) -> Vec<String> {
    let s = "/components/schemas";
    let filter = json!({"oneOf": [{"$ref": "#/components/schemas/Filter"}, {"type": "null"}]});
    let limit = json!({"type": ["integer", "null"], "minimum": 1, "maximum": cfg.max_limit});
    let offset = json!({"type": ["integer", "null"], "minimum": 0, "maximum": cfg.max_limit.saturating_mul(10)});
    let error = json!({"description": "bad input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    let mut edits: Vec<Edit> = vec![
        // Point ids: any u64, or a UUID.
        Edit {
            at: "/components/schemas/ExtendedPointId".into(),
            apply: replace(json!({
            "description": "A point id: an unsigned 64-bit integer or a UUID string.",
            "oneOf": [
                {"type": "integer", "minimum": 0, "maximum": u64::MAX},
                {"type": "string", "pattern": UUID_PATTERN},
            ]})),
        },
        Edit {
            at: "/components/schemas/ScrollRequest/properties/offset".into(),
            apply: replace(json!({"oneOf": [{"$ref": "#/components/schemas/ExtendedPointId"}, {"type": "null"}],
                "description": "Start at this id (the previous page's `next_page_offset`)."})),
        },
        // Qdrant allows `scroll` and `count` without a body.
        Edit {
            at: "/paths/~1collections~1{collection_name}~1points~1scroll/post/requestBody".into(),
            apply: set("required", json!(false)),
        },
        Edit {
            at: "/paths/~1collections~1{collection_name}~1points~1count/post/requestBody".into(),
            apply: set("required", json!(false)),
        },
        // Caps from the configuration.
        Edit {
            at: "/components/schemas/SearchRequest/properties/limit".into(),
            apply: replace(json!({"type": "integer", "minimum": 1, "maximum": cfg.max_limit})),
        },
        Edit { at: "/components/schemas/SearchRequest/properties/offset".into(), apply: replace(offset.clone()) },
        Edit { at: "/components/schemas/QueryRequest/properties/limit".into(), apply: replace(limit.clone()) },
        Edit { at: "/components/schemas/QueryRequest/properties/offset".into(), apply: replace(offset) },
        Edit { at: "/components/schemas/ScrollRequest/properties/limit".into(), apply: replace(limit.clone()) },
        Edit { at: "/components/schemas/QueryGroupsRequest/properties/limit".into(), apply: replace(limit.clone()) },
        Edit { at: "/components/schemas/SearchGroupsRequest/properties/limit".into(), apply: replace(limit) },
        Edit {
            at: "/components/schemas/QueryGroupsRequest/properties/group_size".into(),
            apply: replace(json!({"type": ["integer", "null"], "minimum": 1, "maximum": 100})),
        },
        Edit {
            at: "/components/schemas/SearchGroupsRequest/properties/group_size".into(),
            apply: replace(json!({"type": ["integer", "null"], "minimum": 1, "maximum": 100})),
        },
        Edit {
            at: "/components/schemas/QueryGroupsRequest/properties/group_by".into(),
            apply: replace(json!({"type": "string", "pattern": GROUP_KEY_PATTERN})),
        },
        Edit {
            at: "/components/schemas/SearchGroupsRequest/properties/group_by".into(),
            apply: replace(json!({"type": "string", "pattern": GROUP_KEY_PATTERN})),
        },
        Edit { at: "/components/schemas/SearchBatch/properties/searches".into(), apply: set("minItems", json!(1)) },
        Edit {
            at: "/components/schemas/SearchBatch/properties/searches".into(),
            apply: set("maxItems", json!(cfg.max_search_batch)),
        },
        Edit { at: "/components/schemas/QueryBatch/properties/searches".into(), apply: set("minItems", json!(1)) },
        Edit {
            at: "/components/schemas/QueryBatch/properties/searches".into(),
            apply: set("maxItems", json!(cfg.max_search_batch)),
        },
        Edit {
            at: "/components/schemas/PointRequest/properties/ids".into(),
            apply: set("maxItems", json!(cfg.max_batch_points)),
        },
        Edit {
            at: "/components/schemas/UpsertDocuments/properties/documents".into(),
            apply: set("minItems", json!(1)),
        },
        Edit {
            at: "/components/schemas/UpsertDocuments/properties/documents".into(),
            apply: set("maxItems", json!(cfg.max_batch_points)),
        },
        // Names the server checks.
        Edit {
            at: "/components/schemas/SnapshotRecover/properties/location".into(),
            apply: set("pattern", json!(r"^snap-[0-9]{16}-[0-9]{4,10}\.qsnap$")),
        },
        Edit {
            at: "/components/schemas/CreateFieldIndex".into(),
            apply: set("required", json!(["field_name", "field_schema"])),
        },
        Edit {
            at: "/components/schemas/CreateFieldIndex/properties/field_name".into(),
            apply: set("pattern", json!(KEY_PATTERN)),
        },
        // Responses the routes give.
        Edit {
            at: "/paths/~1collections~1{collection_name}~1points~1{id}/get/responses".into(),
            apply: set("400", error.clone()),
        },
        Edit {
            at: "/paths/~1collections~1{collection_name}~1changes/get/responses".into(),
            apply: set("400", error.clone()),
        },
        Edit {
            at: "/paths/~1collections~1{collection_name}~1changes~1ws/get/responses".into(),
            apply: set(
                "400",
                json!({
                "description": "bad parameters (JSON), or not a WebSocket handshake (text)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
                            "text/plain": {"schema": {"type": "string"}}}}),
            ),
        },
        // Bodies: which fields go together, and their shapes.
        Edit {
            at: "/components/schemas/UpsertPoints".into(),
            apply: set(
                "oneOf",
                json!([
                    {"required": ["points"], "properties": {"points": {"type": "array", "minItems": 1, "maxItems": cfg.max_batch_points}}},
                    {"required": ["batch"], "properties": {"batch": {"$ref": "#/components/schemas/Batch"}}},
                ]),
            ),
        },
        Edit {
            at: "/components/schemas/CreateCollection/properties/embedding".into(),
            apply: replace(json!({
            "description": "QuiverDB: the text embedding model (`{\"model\": \"all-MiniLM-L6-v2\"}`, or an OpenAI-compatible \
                endpoint with `url` and `api_key_env`): points and searches may then carry `text` instead of a vector.",
            "oneOf": [{"type": "null"}, {"type": "object", "additionalProperties": false, "required": ["model"],
                "properties": {"model": {"type": "string", "maxLength": 200, "pattern": MODEL_PATTERN},
                               "url": {"type": ["string", "null"]}, "api_key_env": {"type": ["string", "null"]}}}]})),
        },
        Edit {
            at: "/components/schemas/CreateFieldIndex/properties/field_schema".into(),
            apply: replace(json!({"$ref": "#/components/schemas/FieldSchema"})),
        },
        Edit { at: "/components/schemas/QueryRequest".into(), apply: set("required", json!(["query"])) },
        Edit {
            at: "/components/schemas/QueryGroupsRequest".into(),
            apply: set("required", json!(["query", "group_by"])),
        },
        Edit {
            at: "/components/schemas/SearchRequest".into(),
            apply: set("anyOf", json!([{"required": ["vector"]}, {"required": ["text"]}])),
        },
        Edit {
            at: "/components/schemas/SearchGroupsRequest".into(),
            apply: set("anyOf", json!([{"required": ["vector"]}, {"required": ["text"]}])),
        },
        Edit {
            at: "/components/schemas/EmbeddingsRequest/properties/model".into(),
            apply: set("pattern", json!(MODEL_PATTERN)),
        },
        Edit {
            at: "/components/schemas/EmbeddingsRequest/properties/model".into(),
            apply: set("maxLength", json!(200)),
        },
        Edit {
            at: "/components/schemas/SetPayload/properties/key".into(),
            apply: replace(json!({"type": ["string", "null"], "pattern": KEY_PATTERN})),
        },
        Edit {
            at: "/components/schemas/ScrollRequest/properties/order_by".into(),
            apply: replace(json!({
            "description": "Order by a payload key instead of by id: `\"key\"` or `{\"key\", \"direction\": \"asc\"|\"desc\", \
                \"start_from\"}` (one page: no `offset`, no `next_page_offset`; continue with `start_from`).",
            "oneOf": [{"type": "null"}, {"type": "string", "pattern": KEY_PATTERN}, {
                "type": "object", "additionalProperties": false, "required": ["key"],
                "properties": {"key": {"type": "string", "pattern": KEY_PATTERN},
                               "direction": {"enum": ["asc", "desc", null]},
                               "start_from": {"type": ["number", "string", "null"]}}}]})),
        },
    ];
    // Points or a filter, exactly one (either may be written as null when the other is given).
    for name in ["PointsSelector", "SetPayload", "DeletePayload"] {
        edits.push(Edit { at: format!("/components/schemas/{name}/properties/points"), apply: replace(json!({
            "type": ["array", "null"], "items": {"$ref": "#/components/schemas/ExtendedPointId"}, "description": "Ids."})) });
        edits.push(Edit {
            at: format!("/components/schemas/{name}"),
            apply: set(
                "oneOf",
                json!([
                    {"required": ["points"], "properties": {"points": {"type": "array"}}},
                    {"required": ["filter"], "properties": {"filter": {"$ref": "#/components/schemas/Filter"}}},
                ]),
            ),
        });
    }
    for (path, method) in [
        ("/cluster/nodes/{id}", "delete"),
        ("/cluster/nodes/{id}/drain", "post"),
        ("/cluster/nodes/{id}/drain", "delete"),
    ] {
        let at = format!("/paths/{}/{method}/parameters/0/schema", path.replace('/', "~1"));
        edits.push(Edit { at, apply: replace(json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})) });
    }
    let mut missing = Vec::new();
    for e in &edits {
        match doc.pointer_mut(&e.at) {
            Some(v) => (e.apply)(v),
            None => missing.push(e.at.clone()),
        }
    }
    // Every `filter` property of a schema is the filter language (or null: no filter).
    let filters = filter_schemas();
    if let Some(schemas) = doc.pointer_mut(s).and_then(Value::as_object_mut) {
        for schema in schemas.values_mut() {
            if let Some(f) = schema.pointer_mut("/properties/filter") {
                *f = filter.clone();
            }
        }
        if let Some(o) = filters.as_object() {
            schemas.extend(o.clone());
        }
    } else {
        missing.push(s.to_owned());
    }
    // PUT (overwrite) takes no `key`: its own copy of the schema without it.
    match doc.pointer("/components/schemas/SetPayload").cloned() {
        Some(mut o) => {
            if let Some(p) = o.get_mut("properties").and_then(Value::as_object_mut) {
                p.remove("key");
            }
            o["description"] = json!("Replaces the payload of the selected points with `payload`.");
            if let Some(schemas) = doc.pointer_mut(s).and_then(Value::as_object_mut) {
                schemas.insert("OverwritePayload".into(), o);
            }
            let at = "/paths/~1collections~1{collection_name}~1points~1payload/put/requestBody/content/application~1json/schema";
            match doc.pointer_mut(at) {
                Some(v) => *v = json!({"$ref": "#/components/schemas/OverwritePayload"}),
                None => missing.push(at.to_owned()),
            }
        }
        None => missing.push("/components/schemas/SetPayload (for OverwritePayload)".into()),
    }
    // Reply properties utoipa gets wrong, wherever a schema (or an envelope inlining it) has them.
    let mut fixed = 0;
    fix_properties(doc, &mut fixed);
    if fixed < 2 {
        missing.push("properties optimizer_status / next_page_offset".into());
    }
    missing.extend(query_params(doc));
    missing
}

fn fix_properties(v: &mut Value, fixed: &mut usize) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(props)) = o.get_mut("properties") {
                if let Some(p) = props.get_mut("optimizer_status") {
                    *p = json!({"description": "`\"ok\"` or `{\"error\": \"…\"}`.",
                        "oneOf": [{"type": "string", "enum": ["ok"]},
                                  {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}]});
                    *fixed += 1;
                }
                if let Some(p) = props.get_mut("next_page_offset") {
                    *p = json!({"oneOf": [{"$ref": "#/components/schemas/ExtendedPointId"}, {"type": "null"}],
                        "description": "The next page's `offset`; null on the last page."});
                    *fixed += 1;
                }
            }
            for x in o.values_mut() {
                fix_properties(x, fixed);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fix_properties(x, fixed)),
        _ => {}
    }
}

/// Query and header parameters: the map's JSON filter and seed, the change feed's `Last-Event-ID`.
fn query_params(doc: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    let mut param = |path: &str, name: &str, f: &dyn Fn(&mut Value)| {
        let at = format!("/paths/{}/get/parameters", path.replace('/', "~1"));
        let found = doc
            .pointer_mut(&at)
            .and_then(Value::as_array_mut)
            .and_then(|ps| ps.iter_mut().find(|p| p["name"] == name))
            .map(f)
            .is_some();
        if !found {
            missing.push(format!("{at} {name}"));
        }
    };
    param("/collections/{collection_name}/map", "filter", &|p| {
        if let Some(o) = p.as_object_mut() {
            o.remove("schema");
            o.insert(
                "content".into(),
                json!({"application/json": {"schema": {"$ref": "#/components/schemas/Filter"}}}),
            );
        }
    });
    param("/collections/{collection_name}/map", "seed", &|p| {
        p["schema"] = json!({"type": "integer", "minimum": 0, "maximum": u64::MAX});
    });
    param("/collections/{collection_name}/changes", "Last-Event-ID", &|p| {
        p["schema"] = json!({"type": "string", "pattern": "^[0-9]{1,19}$"});
    });
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refinement_finds_its_place() {
        let mut doc = serde_json::to_value(crate::openapi()).unwrap_or_default();
        let missing = refine(&mut doc, &ServerConfig::default());
        assert!(missing.is_empty(), "refinements that found nothing: {missing:?}");
        assert_eq!(
            doc["components"]["schemas"]["CountRequest"]["properties"]["filter"]["oneOf"][0]["$ref"],
            "#/components/schemas/Filter"
        );
    }

    #[test]
    fn key_patterns_agree_with_the_engine() {
        let re = |p: &str| regex::Regex::new(p).unwrap_or_else(|e| panic!("{e}"));
        let key = re(KEY_PATTERN);
        for ok in ["a", "a.b", "tags[]", "a.b[]", "x[", "[x", "[]a", "a.[]b", "ab"] {
            assert!(key.is_match(ok), "{ok}");
        }
        for bad in ["", ".", "a.", ".a", "a..b", "[]", "a.[]", "[].a"] {
            assert!(!key.is_match(bad), "{bad}");
        }
        let group = re(GROUP_KEY_PATTERN);
        assert!(group.is_match("doc_id") && group.is_match("a.b") && !group.is_match("a..b") && !group.is_match(""));
        let model = re(MODEL_PATTERN);
        for ok in ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "a", ".x", "a..b"] {
            assert!(model.is_match(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b/c", "a/..", "a b", "a/"] {
            assert!(!model.is_match(bad), "{bad}");
        }
        let uuid = re(UUID_PATTERN);
        assert!(uuid.is_match("550e8400-e29b-41d4-a716-446655440000") && !uuid.is_match("550e8400"));
    }
}
