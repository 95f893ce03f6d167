//! The committed fixture data directories `testdata/fixtures/format-*` (see `testdata/fixtures/README.md`): each is
//! a data directory written by [`write_format_fixture`] with the build of its format generation, plus an
//! `expected.json` that describes what it holds. [`committed_fixtures_open_and_keep_working`] opens a copy of every
//! one with this build and checks everything `expected.json` says, restores its snapshot archive, writes to it,
//! rewrites its segments, reopens it and checks again.
//!
//! Regenerate (only when a format changes, into a NEW directory; the old ones stay):
//! `QUIVER_FIXTURE_OUT=testdata/fixtures/format-N cargo test -p quiver-engine --test it -- --ignored
//! write_format_fixture` (a relative path is taken from the workspace root).
//!
//! Time is frozen: the fixture is written under a [`ManualClock`] at [`GEN_MS`] and checked under one at
//! `expected.json`'s `check_clock_ms`, so which TTL'd points have expired does not depend on when the test runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quiver_engine::segment::Tier;
use quiver_engine::{
    CollectionConfig, Database, FieldType, Filter, IndexConfig, ManualClock, PointId, PointInput, SearchRequest,
    Selector, TextOptions, TieringConfig,
};
use quiver_index::{IndexKind, Metric};
use serde_json::{Value, json};

use crate::common::payload;

/// The generator's clock: 2026-01-01T00:00:00Z.
const GEN_MS: u64 = 1_767_225_600_000;
/// The checker's clock: 30 days later (short TTLs have passed, long ones have not).
const CHECK_AFTER_MS: u64 = 30 * 86_400_000;
const DIM: usize = 16;
const SHORT_TTL_SECS: u64 = 60;
const LONG_TTL_SECS: u64 = 100 * 365 * 86_400;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures_root() -> PathBuf {
    workspace_root().join("testdata/fixtures")
}

/// SplitMix64: a generator with no dependency, so the fixture's content never depends on a crate version.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Vector `i` of stream `seed`: components in [-1, 1), 1/1024 steps (exact in f32).
fn vector(seed: u64, i: u64, dim: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(1_000_003).wrapping_add(i);
    (0..dim).map(|_| (splitmix(&mut s) % 2048) as f32 / 1024.0 - 1.0).collect()
}

/// FNV-1a 64 of `bytes`, as 16 hex digits.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn vector_digest(v: &[f32]) -> String {
    fnv(v.iter().flat_map(|x| x.to_le_bytes()))
}

const WORDS: [&str; 12] =
    ["quick", "brown", "fox", "jumps", "over", "lazy", "dog", "river", "stone", "light", "running", "bridges"];

/// The payload of point `i` of collection `docs`: one value for every payload index type, plus unindexed keys.
fn doc_payload(i: u64) -> serde_json::Map<String, Value> {
    let title: Vec<&str> = (0..4).map(|k| WORDS[((i * 7 + k * 5 + i / 3) % WORDS.len() as u64) as usize]).collect();
    let tag = ["red", "green", "blue"][(i % 3) as usize];
    payload(json!({
        "tag": tag,
        "n": i,
        "price": (i * 37 % 1000) as f64 / 10.0 + 0.25,
        "active": !i.is_multiple_of(4),
        "at": format!("2025-{:02}-{:02}T{:02}:00:00Z", i % 12 + 1, i % 28 + 1, i % 24),
        "loc": {"lon": -10.0 + (i % 20) as f64 * 0.5, "lat": 40.0 + (i % 10) as f64 * 0.25},
        "title": title.join(" "),
        "meta": {"group": i % 5, "labels": ["x", if i.is_multiple_of(2) { "even" } else { "odd" }]},
    }))
}

fn uuid(i: u64) -> PointId {
    PointId::parse_uuid(&format!("6f1c2a3e-0000-4000-8000-{i:012x}")).unwrap()
}

fn flt(v: Value) -> Filter {
    serde_json::from_value(v).unwrap()
}

/// The fixed queries of a collection: (name, query vector, filter). Vectors of stream 900 (no point's).
fn queries(name: &str) -> Vec<(String, Vec<f32>, Option<Value>)> {
    let filters: Vec<(&str, Value)> = match name {
        "docs" => vec![
            ("keyword", json!({"must": [{"key": "tag", "match": {"value": "red"}}]})),
            ("integer", json!({"must": [{"key": "n", "range": {"gte": 50, "lt": 150}}]})),
            ("float", json!({"must": [{"key": "price", "range": {"gt": 40.5}}]})),
            ("bool", json!({"must": [{"key": "active", "match": {"value": false}}]})),
            (
                "datetime",
                json!({"must": [{"key": "at", "range": {"gte": "2025-03-01T00:00:00Z", "lt": "2025-07-01T00:00:00Z"}}]}),
            ),
            (
                "geo",
                json!({"must": [{"key": "loc", "geo_radius": {"center": {"lon": -7.0, "lat": 41.0}, "radius": 150000.0}}]}),
            ),
            ("text", json!({"must": [{"key": "title", "match": {"text": "Fox rivers"}}]})),
            (
                "combined",
                json!({"must": [{"key": "active", "match": {"value": true}}],
                       "should": [{"key": "tag", "match": {"value": "blue"}}, {"key": "meta.group", "match": {"value": 2}}],
                       "must_not": [{"key": "n", "range": {"lt": 20}}]}),
            ),
            ("rank", json!({"must": [{"key": "rank", "range": {"gte": 1}}]})),
        ],
        "events" => vec![("kind", json!({"must": [{"key": "kind", "match": {"any": ["click", "view"]}}]}))],
        _ => vec![("shard", json!({"must": [{"key": "shard", "range": {"lte": 1}}]}))],
    };
    let mut out = Vec::new();
    for q in 0..3u64 {
        out.push((format!("q{q}"), vector(900, q, DIM), None));
    }
    for (k, (fname, f)) in filters.into_iter().enumerate() {
        out.push((format!("q{}-{fname}", k % 3), vector(900, k as u64 % 3, DIM), Some(f)));
    }
    out
}

fn config(dim: usize, metric: Metric, kind: IndexKind, params: Value) -> CollectionConfig {
    let mut cfg = CollectionConfig::new(dim, metric);
    cfg.index = IndexConfig { kind, params: params.as_object().unwrap().clone().into_iter().collect() };
    cfg.optimizer.interval_ms = 0;
    cfg.optimizer.seal_points = 100;
    cfg.optimizer.seal_idle_secs = 0;
    cfg.optimizer.merge_below_points = 10;
    cfg.optimizer.max_segments = 8;
    cfg
}

/// Writes the fixture into `$QUIVER_FIXTURE_OUT` (a new directory). Ignored: run it by hand with the build whose
/// format generation it captures (module docs).
#[test]
#[ignore = "writes a fixture data directory; run by hand (see the module docs)"]
fn write_format_fixture() {
    let out = PathBuf::from(std::env::var("QUIVER_FIXTURE_OUT").expect("QUIVER_FIXTURE_OUT"));
    let out = if out.is_absolute() { out } else { workspace_root().join(out) };
    assert!(!out.exists(), "{} exists: a fixture is never rewritten, add a new one", out.display());
    let clock = Arc::new(ManualClock::new(GEN_MS));
    let db = Database::open_with_clock(&out, clock.clone()).unwrap();
    let tick = || clock.advance(1000);

    // docs: cosine, HNSW + SQ8, every payload index type, two sealed segments (a deletion recorded in the
    // manifest), then a WAL tail of every operation kind, TTL'd points, UUID ids.
    let c = db
        .create_collection("docs", config(DIM, Metric::Cosine, IndexKind::Hnsw, json!({"m": 8, "quantization": "sq8"})))
        .unwrap();
    c.create_field_index("tag", FieldType::Keyword).unwrap();
    c.create_field_index("n", FieldType::Integer).unwrap();
    c.create_field_index("price", FieldType::Float).unwrap();
    c.create_field_index("active", FieldType::Bool).unwrap();
    c.create_field_index("at", FieldType::Datetime).unwrap();
    c.create_field_index("loc", FieldType::Geo).unwrap();
    c.create_field_index("title", FieldType::Text(TextOptions { stem: true, stopwords: true })).unwrap();
    let doc = |i: u64| PointInput::new(i, vector(1, i, DIM)).with_payload(doc_payload(i));
    let mut first: Vec<PointInput> = (0..100).map(doc).collect();
    first[98].ttl_secs = Some(LONG_TTL_SECS);
    first[99].ttl_secs = Some(SHORT_TTL_SECS);
    first.push(PointInput::new(uuid(1), vector(1, 10_001, DIM)).with_payload(doc_payload(10_001)));
    c.upsert(first).unwrap();
    tick();
    assert!(c.seal().unwrap());
    c.delete(Selector::Ids(vec![PointId::Num(5)])).unwrap(); // in sealed segment 1: its bitmap, next manifest
    tick();
    c.upsert((100..200).map(doc).collect()).unwrap();
    tick();
    assert!(c.seal().unwrap());
    // The WAL tail (after the last manifest commit).
    tick();
    let mut tail: Vec<PointInput> = (200..240).map(doc).collect();
    tail.push(PointInput::new(uuid(2), vector(1, 10_002, DIM)).with_payload(doc_payload(10_002)));
    let mut short = doc(1000);
    short.ttl_secs = Some(SHORT_TTL_SECS);
    let mut long = doc(1001);
    long.ttl_secs = Some(LONG_TTL_SECS);
    tail.extend([short, long]);
    c.upsert(tail).unwrap();
    tick();
    // Replace a sealed point (new vector and payload), delete one sealed and one growing point.
    c.upsert(vec![
        PointInput::new(10u64, vector(2, 10, DIM))
            .with_payload(payload(json!({"tag": "red", "n": 10, "replaced": true}))),
    ])
    .unwrap();
    c.delete(Selector::Ids(vec![PointId::Num(150), PointId::Num(210), uuid(1)])).unwrap();
    tick();
    c.set_payload(Selector::Ids(vec![PointId::Num(30)]), payload(json!({"note": "set in the tail", "n": 3030})), None)
        .unwrap();
    c.set_payload(Selector::Ids(vec![PointId::Num(31)]), payload(json!({"group": 9})), Some("meta")).unwrap();
    c.delete_payload_keys(Selector::Ids(vec![PointId::Num(32)]), &["title".to_owned()]).unwrap();
    c.overwrite_payload(Selector::Ids(vec![PointId::Num(33)]), payload(json!({"tag": "blue"}))).unwrap();
    c.clear_payload(Selector::Ids(vec![PointId::Num(34)])).unwrap();
    c.create_field_index("rank", FieldType::Integer).unwrap();
    c.set_payload(Selector::Ids((40..45).map(PointId::Num).collect()), payload(json!({"rank": 1})), None).unwrap();
    c.create_field_index("scratch", FieldType::Keyword).unwrap();
    c.drop_field_index("scratch").unwrap();
    c.delete(Selector::Filter(flt(json!({"must": [{"key": "n", "range": {"gte": 235, "lt": 238}}]})))).unwrap();
    c.flush().unwrap();

    // events: euclidean IVF, two sealed segments and a tail.
    let e =
        db.create_collection("events", config(DIM, Metric::Euclidean, IndexKind::Ivf, json!({"nlist": 4}))).unwrap();
    e.create_field_index("kind", FieldType::Keyword).unwrap();
    let ev = |i: u64| {
        let kind = ["click", "view", "buy", "share"][(i % 4) as usize];
        PointInput::new(i, vector(3, i, DIM)).with_payload(payload(json!({"kind": kind, "seq": i})))
    };
    for chunk in [0..100u64, 100..200] {
        e.upsert(chunk.map(ev).collect()).unwrap();
        tick();
        e.optimize().unwrap();
    }
    e.upsert((200..230).map(ev).collect()).unwrap();
    e.delete(Selector::Filter(flt(json!({"must": [{"key": "seq", "range": {"gte": 95, "lt": 105}}]})))).unwrap();
    e.flush().unwrap();

    // archive: dot product, flat hot index, tiered: one cold IVF segment (migrated), one hot one, a tail.
    let mut cfg = config(DIM, Metric::Dot, IndexKind::Flat, json!({}));
    cfg.tiering = Some(TieringConfig {
        hot_age_secs: 3600,
        cold_index: IndexConfig {
            kind: IndexKind::Ivf,
            params: [("nlist".to_owned(), json!(2))].into_iter().collect(),
        },
    });
    let a = db.create_collection("archive", cfg).unwrap();
    let ar = |i: u64| PointInput::new(i, vector(4, i, DIM)).with_payload(payload(json!({"shard": i % 4})));
    a.upsert((0..100).map(ar).collect()).unwrap();
    a.optimize().unwrap();
    clock.advance(2 * 3600 * 1000);
    a.optimize().unwrap(); // migrates the sealed segment to the cold tier
    a.upsert((100..200).map(ar).collect()).unwrap();
    a.optimize().unwrap();
    a.upsert((200..210).map(ar).collect()).unwrap();
    a.delete(Selector::Ids(vec![PointId::Num(3), PointId::Num(150), PointId::Num(205)])).unwrap();
    a.flush().unwrap();
    let tiers: BTreeSet<String> = a.info().unwrap().segments.iter().map(|s| format!("{:?}", s.tier)).collect();
    assert!(tiers.len() >= 2, "archive has hot and cold segments: {:?}", a.info().unwrap().segments);

    // A snapshot archive of docs.
    let snap = db.create_snapshot("docs").unwrap();

    // expected.json, computed by the exact path at the checker's time.
    let mut collections = serde_json::Map::new();
    let check_ms = GEN_MS + CHECK_AFTER_MS;
    let now = quiver_engine::Clock::now_ms(&*clock);
    clock.advance(check_ms - now);
    for name in ["docs", "events", "archive"] {
        let c = db.collection(name).unwrap();
        let info = c.info().unwrap();
        assert!(info.segments.iter().filter(|s| s.rows > 0).count() >= 3, "{name}: {:?}", info.segments);
        assert!(info.applied_seq > info.wal_checkpoint, "{name}: a WAL tail");
        collections.insert(name.to_owned(), describe(&c));
    }
    let hidden: Vec<Value> = [5u64, 99, 150, 210, 235, 236, 237, 1000]
        .iter()
        .map(|&i| json!(PointId::Num(i)))
        .chain([json!(uuid(1))])
        .collect();
    collections["docs"]["hidden"] = json!(hidden);
    collections["events"]["hidden"] = json!((95..105).collect::<Vec<u64>>());
    collections["archive"]["hidden"] = json!([3, 150, 205]);
    let expected = json!({
        "written_by": format!("quiver-engine {} (write_format_fixture, crates/quiver-engine/tests/it/fixture.rs)", env!("CARGO_PKG_VERSION")),
        "formats": formats(),
        "written_clock_ms": GEN_MS,
        "check_clock_ms": check_ms,
        "snapshot": {"collection": "docs", "name": snap.name, "applied_seq": snap.applied_seq.unwrap()},
        "collections": collections,
    });
    db.close().unwrap();
    drop(db);
    std::fs::write(out.join("expected.json"), serde_json::to_string_pretty(&expected).unwrap() + "\n").unwrap();
}

/// The format versions this build writes, by file kind (the names `quiver inspect` uses).
fn formats() -> Value {
    json!({
        "wal": quiver_storage::wal::record::FILE_VERSION,
        "manifest": quiver_storage::manifest::VERSION,
        "segment container": quiver_storage::segment::VERSION,
        "segment layout": quiver_engine::segment::SEGMENT_LAYOUT,
        "snapshot": quiver_storage::snapshot::VERSION,
    })
}

/// Every live point, in id order.
fn all_points(c: &quiver_engine::Collection) -> Vec<quiver_engine::Record> {
    let mut out = Vec::new();
    let mut offset = None;
    loop {
        let page = c.scroll(None, offset, 1000, true, true).unwrap();
        out.extend(page.points);
        match page.next_offset {
            Some(o) => offset = Some(o),
            None => return out,
        }
    }
}

fn exact(
    c: &quiver_engine::Collection,
    v: &[f32],
    filter: Option<&Value>,
    k: usize,
) -> Vec<quiver_engine::ScoredPoint> {
    let mut req = SearchRequest::new(v.to_vec(), k);
    req.params.exact = true;
    req.filter = filter.map(|f| flt(f.clone()));
    c.search(&req).unwrap().hits
}

/// What the generator records of a collection.
fn describe(c: &quiver_engine::Collection) -> Value {
    let points: Vec<Value> = all_points(c)
        .iter()
        .map(|r| json!({"id": r.id, "payload": r.payload, "vector": vector_digest(r.vector.as_ref().unwrap())}))
        .collect();
    let mut qs = Vec::new();
    for (name, v, filter) in queries(c.name()) {
        let hits = exact(c, &v, filter.as_ref(), 6);
        assert!(hits.len() >= 5, "{}: {name}: {hits:?}", c.name());
        // Stable order: no near-tie anywhere in the top 5 or at its edge.
        for w in hits.windows(2) {
            assert!((w[0].score - w[1].score).abs() > 1e-4, "{}: {name}: near tie {hits:?}", c.name());
        }
        let count = c.count(filter.as_ref().map(|f| flt(f.clone())).as_ref()).unwrap();
        let top: Vec<&PointId> = hits.iter().take(5).map(|h| &h.id).collect();
        qs.push(json!({"name": name, "vector": v, "filter": filter, "count": count, "top5": top}));
    }
    let info = c.info().unwrap();
    json!({
        "config": c.config(),
        "count": c.count(None).unwrap(),
        "payload_indexes": info.payload_indexes,
        "sealed_segments": info.segments.iter().filter(|s| s.rows > 0 && s.tier != Tier::Growing).count(),
        "points": points,
        "queries": qs,
    })
}

/// Checks collection `c` against its `expected.json` entry `want`. `new`: ids written by this test (ignored in
/// query comparisons, which must otherwise equal the recorded ones in order); `gone`: recorded ids deleted since.
fn check(c: &quiver_engine::Collection, want: &Value, new: &[PointId], gone: &[PointId], what: &str) {
    let cfg: CollectionConfig = serde_json::from_value(want["config"].clone()).unwrap();
    assert_eq!(c.config(), &cfg, "{what}: config");
    let info = c.info().unwrap();
    assert_eq!(
        serde_json::to_value(&info.payload_indexes).unwrap(),
        want["payload_indexes"],
        "{what}: payload indexes"
    );

    // Every recorded point (but those deleted since) with its payload and vector; nothing else but the new ones.
    let recorded: BTreeMap<PointId, &Value> = want["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (serde_json::from_value(p["id"].clone()).unwrap(), p))
        .filter(|(id, _)| !gone.contains(id))
        .collect();
    let got = all_points(c);
    let got_ids: BTreeSet<&PointId> = got.iter().map(|r| &r.id).filter(|id| !new.contains(id)).collect();
    assert_eq!(got_ids, recorded.keys().collect::<BTreeSet<_>>(), "{what}: ids");
    assert_eq!(c.count(None).unwrap(), (recorded.len() + new.len()) as u64, "{what}: count");
    let ids: Vec<PointId> = recorded.keys().cloned().collect();
    let records = c.get(&ids, true, true).unwrap();
    assert_eq!(records.len(), ids.len(), "{what}: get");
    for r in records {
        let p = recorded[&r.id];
        assert_eq!(json!(r.payload), p["payload"], "{what}: payload of {}", r.id);
        assert_eq!(json!(vector_digest(r.vector.as_ref().unwrap())), p["vector"], "{what}: vector of {}", r.id);
    }
    // Deleted and expired points stay invisible.
    let hidden: Vec<PointId> = serde_json::from_value(want["hidden"].clone()).unwrap();
    assert!(c.get(&hidden, true, false).unwrap().is_empty(), "{what}: hidden points");

    // The recorded queries, exactly, then through the index.
    for q in want["queries"].as_array().unwrap() {
        let name = q["name"].as_str().unwrap();
        let v: Vec<f32> = serde_json::from_value(q["vector"].clone()).unwrap();
        let filter = q["filter"].as_object().map(|_| q["filter"].clone());
        let top: Vec<PointId> = serde_json::from_value(q["top5"].clone()).unwrap();
        let hits: Vec<PointId> = exact(c, &v, filter.as_ref(), 5 + new.len())
            .into_iter()
            .map(|h| h.id)
            .filter(|id| !new.contains(id))
            .collect();
        assert_eq!(hits[..5], top[..], "{what}: query {name}");
        let count = c.count(filter.as_ref().map(|f| flt(f.clone())).as_ref()).unwrap();
        if new.is_empty() {
            assert_eq!(json!(count), q["count"], "{what}: count of {name}");
        }
        // Through the index, wide enough to answer exactly on a few hundred points: checks the index was read.
        let mut req = SearchRequest::new(v.clone(), 5 + new.len());
        req.params.ef = Some(512);
        req.params.nprobe = Some(64);
        req.filter = filter.as_ref().map(|f| flt(f.clone()));
        let approx: Vec<PointId> =
            c.search(&req).unwrap().hits.into_iter().map(|h| h.id).filter(|id| !new.contains(id)).collect();
        assert_eq!(approx.first(), top.first(), "{what}: query {name} through the index: {approx:?}");
    }
}

/// Checks one fixture directory: as written, its snapshot restored, after writes, after a rewrite and a reopen.
fn check_fixture(from: &Path) {
    let label = from.display().to_string();
    let want: Value = serde_json::from_slice(&std::fs::read(from.join("expected.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    crate::common::copy_dir(from, &root);
    let clock = Arc::new(ManualClock::new(want["check_clock_ms"].as_u64().unwrap()));
    let names: Vec<String> = want["collections"].as_object().unwrap().keys().cloned().collect();

    let db = Database::open_with_clock(&root, clock.clone()).unwrap();
    let mut listed: Vec<String> = db.list().into_iter().map(|s| s.name).collect();
    listed.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "{label}: collections");
    for name in &names {
        let c = db.collection(name).unwrap();
        let info = c.info().unwrap();
        assert!(info.applied_seq > info.wal_checkpoint, "{label}: {name}: the WAL tail was replayed: {info:?}");
        let sealed = info.segments.iter().filter(|s| s.rows > 0 && s.tier != Tier::Growing).count();
        assert_eq!(json!(sealed), want["collections"][name]["sealed_segments"], "{label}: {name}: {:?}", info.segments);
        check(&c, &want["collections"][name], &[], &[], &format!("{label}: {name}, as written"));
    }

    // The snapshot archive restores into a new collection holding the same.
    let snap = &want["snapshot"];
    let of = snap["collection"].as_str().unwrap();
    let listed = db.list_snapshots(of).unwrap();
    let name = snap["name"].as_str().unwrap();
    assert!(listed.iter().any(|s| s.name == name), "{label}: snapshot {name} listed: {listed:?}");
    let restored = db.restore_snapshot("restored", &db.snapshot_path(of, name).unwrap()).unwrap();
    assert_eq!(json!(restored.applied_seq()), snap["applied_seq"], "{label}: restored snapshot");
    check(&restored, &want["collections"][of], &[], &[], &format!("{label}: snapshot of {of} restored"));
    db.drop_collection("restored").unwrap();

    // Writes: a new point, a recorded point deleted (one in no recorded top 5), an optimizer pass.
    let mut changes: BTreeMap<String, (Vec<PointId>, Vec<PointId>)> = BTreeMap::new();
    for name in &names {
        let w = &want["collections"][name];
        let c = db.collection(name).unwrap();
        let dim = w["config"]["dimension"].as_u64().unwrap() as usize;
        let in_tops: BTreeSet<PointId> = w["queries"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|q| serde_json::from_value::<Vec<PointId>>(q["top5"].clone()).unwrap())
            .collect();
        let victim: PointId = w["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| serde_json::from_value::<PointId>(p["id"].clone()).unwrap())
            .find(|id| !in_tops.contains(id))
            .unwrap();
        let fresh = PointId::Num(7_000_000);
        c.upsert(vec![PointInput::new(fresh, vector(77, 0, dim)).with_payload(payload(json!({"fresh": true})))])
            .unwrap();
        c.delete(Selector::Ids(vec![victim])).unwrap();
        let what = format!("{label}: {name}, after writes");
        check(&c, w, std::slice::from_ref(&fresh), std::slice::from_ref(&victim), &what);
        let got = c.get(std::slice::from_ref(&fresh), true, false).unwrap();
        assert_eq!(json!(got[0].payload), json!({"fresh": true}), "{what}");
        changes.insert(name.clone(), (vec![fresh], vec![victim]));
    }
    drop(db);

    // Reopen, rewrite every segment in this build's format (seal the tail, merge everything), reopen, check.
    let db = Database::open_with_clock(&root, clock.clone()).unwrap();
    for name in &names {
        let (new, gone) = &changes[name];
        let c = db.collection(name).unwrap();
        check(&c, &want["collections"][name], new, gone, &format!("{label}: {name}, reopened"));
    }
    drop(db);
    for name in &names {
        let path = root.join("collections").join(name).join("config.json");
        let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        cfg["optimizer"]["merge_below_points"] = json!(1_000_000);
        std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    }
    let db = Database::open_with_clock(&root, clock.clone()).unwrap();
    for name in &names {
        let c = db.collection(name).unwrap();
        c.seal().unwrap();
        c.optimize().unwrap();
        c.flush().unwrap();
    }
    drop(db);
    let db = Database::open_with_clock(&root, clock).unwrap();
    for name in &names {
        let (new, gone) = &changes[name];
        let c = db.collection(name).unwrap();
        let mut w = want["collections"][name].clone();
        w["config"]["optimizer"]["merge_below_points"] = json!(1_000_000);
        let what = format!("{label}: {name}, rewritten and reopened");
        let info = c.info().unwrap();
        let dim = w["config"]["dimension"].as_u64().unwrap();
        for s in &info.segments {
            match s.tier {
                Tier::Growing => assert_eq!(s.rows, 0, "{what}: everything sealed: {:?}", info.segments),
                // Rewritten in this build's layout: vectors read in place from the file.
                _ => assert_eq!(s.mapped_bytes, s.rows * dim * 4, "{what}: {:?}", info.segments),
            }
        }
        check(&c, &w, new, gone, &what);
    }
}

/// Every committed fixture directory opens with this build, its snapshot restores, and it keeps working after
/// writes, a rewrite and reopens.
#[test]
fn committed_fixtures_open_and_keep_working() {
    let mut found = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_root()).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    for d in dirs {
        if d.file_name().unwrap().to_string_lossy().starts_with("format-") && d.join("expected.json").is_file() {
            check_fixture(&d);
            found += 1;
        }
    }
    assert!(found >= 1, "no fixtures under {}", fixtures_root().display());
}
