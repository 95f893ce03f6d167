//! Full-text indexes and BM25 through the collection: scores against a brute-force reference over the live
//! points across segments, writes, deletes, reopen and crashes; `match.text` on a text index; multi-stage queries.

use std::collections::BTreeMap;

use quiver_engine::fulltext::{BM25_B, BM25_K1, analyze};
use quiver_engine::query::fuse;
use quiver_engine::{
    Collection, FieldType, Filter, Fusion, Payload, PointId, PointInput, Ranking, SearchRequest, Selector, Stage,
    TextOptions, TextSearchRequest,
};
use quiver_index::Metric;
use quiver_storage::CrashMode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common::{mem_collection, payload};

const ENGLISH: TextOptions = TextOptions { stem: true, stopwords: true };
const WORDS: &[&str] =
    &["the", "dog", "dogs", "barking", "cat", "cats", "runs", "running", "fox", "of", "quick", "brown", "lazy", "a"];

fn sentence(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(0..9);
    (0..n).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect::<Vec<_>>().join(" ")
}

/// Every live point's payload.
fn payloads(c: &Collection) -> BTreeMap<PointId, Payload> {
    let mut out = BTreeMap::new();
    let mut offset = None;
    loop {
        let page = c.scroll(None, offset, 1000, true, false).unwrap();
        for r in page.points {
            out.insert(r.id, r.payload.unwrap());
        }
        match page.next_offset {
            Some(o) => offset = Some(o),
            None => return out,
        }
    }
}

/// BM25 from the formula over the live points' `key` strings (arrays concatenated), best first, ties by id.
fn reference(points: &BTreeMap<PointId, Payload>, key: &str, text: &str) -> Vec<(PointId, f64)> {
    let docs: Vec<(PointId, Vec<String>)> = points
        .iter()
        .map(|(id, p)| {
            let strings: Vec<&str> = match p.get(key) {
                Some(serde_json::Value::String(s)) => vec![s.as_str()],
                Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
                _ => vec![],
            };
            (*id, strings.iter().flat_map(|s| analyze(ENGLISH, s)).collect::<Vec<_>>())
        })
        .filter(|(_, t)| !t.is_empty())
        .collect();
    let n = docs.len() as f64;
    let avgdl = docs.iter().map(|(_, d)| d.len() as f64).sum::<f64>() / n.max(1.0);
    let (k1, b) = (f64::from(BM25_K1), f64::from(BM25_B));
    let query = analyze(ENGLISH, text);
    let mut out: Vec<(PointId, f64)> = docs
        .iter()
        .filter(|(_, d)| query.iter().any(|t| d.contains(t)))
        .map(|(id, d)| {
            let s: f64 = query
                .iter()
                .map(|t| {
                    let tf = d.iter().filter(|w| *w == t).count() as f64;
                    let df = docs.iter().filter(|(_, d)| d.contains(t)).count() as f64;
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * d.len() as f64 / avgdl))
                })
                .sum();
            (*id, s)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The collection's BM25 answer equals the reference (same ids in order where scores differ; same scores).
fn check(c: &Collection, text: &str, limit: usize) {
    let got = c.text_search(&TextSearchRequest::new("body", text, limit)).unwrap();
    let want = reference(&payloads(c), "body", text);
    let want = &want[..want.len().min(limit)];
    assert_eq!(got.len(), want.len(), "{text:?}: {got:?} vs {want:?}");
    for (g, (wid, ws)) in got.iter().zip(want) {
        assert!((f64::from(g.score) - ws).abs() <= 1e-4 * ws.max(1.0), "{text:?}: {} vs {ws}", g.score);
        // Equal scores may come in either segment's order; otherwise the ids agree.
        if want.iter().filter(|(_, s)| (s - ws).abs() < 1e-5).count() == 1 {
            assert_eq!(g.id, *wid, "{text:?}");
        }
    }
}

const QUERIES: &[&str] = &["dog", "barking dogs", "the quick brown fox", "cat runs", "unicorn", "lazy lazy dog"];

#[test]
fn bm25_over_segments_writes_deletes_and_reopen_matches_the_reference() {
    let f = mem_collection(2, Metric::Euclidean, |cfg| {
        cfg.optimizer.seal_points = 40;
        cfg.optimizer.merge_below_points = 70;
    });
    let c = &f.c;
    c.create_field_index("body", FieldType::Text(ENGLISH)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for round in 0..6u64 {
        let points: Vec<PointInput> = (0..50)
            .map(|i| {
                let id = round * 37 + i;
                let body = if i % 9 == 0 {
                    json!([sentence(&mut rng), sentence(&mut rng)])
                } else {
                    json!(sentence(&mut rng))
                };
                PointInput::new(id, vec![id as f32, 0.0]).with_payload(payload(json!({"body": body, "round": round})))
            })
            .collect();
        c.upsert(points).unwrap();
        c.delete(Selector::Ids((0..10).map(|i| PointId::Num(round * 31 + i * 3)).collect())).unwrap();
        c.set_payload(Selector::Ids(vec![PointId::Num(round * 37 + 1)]), payload(json!({"body": "dog dog dog"})), None)
            .unwrap();
        if round % 2 == 1 {
            c.seal().unwrap();
            c.optimize().unwrap();
        }
        for q in QUERIES {
            check(c, q, 10);
        }
    }
    assert!(c.info().unwrap().segments.len() >= 2, "the test must span segments");
    // A filter narrows the hits; the statistics stay collection-wide.
    let filtered = TextSearchRequest {
        filter: Some(serde_json::from_value(json!({"must": [{"key": "round", "match": {"value": 2}}]})).unwrap()),
        ..TextSearchRequest::new("body", "dog", 100)
    };
    let hits = c.text_search(&filtered).unwrap();
    assert!(!hits.is_empty());
    let all = reference(&payloads(c), "body", "dog");
    for h in &hits {
        assert_eq!(h.payload.as_ref().unwrap()["round"], json!(2));
        let (_, s) = all.iter().find(|(id, _)| *id == h.id).unwrap();
        assert!((f64::from(h.score) - s).abs() < 1e-4);
    }
    // Paging and thresholds.
    let page2 = c.text_search(&TextSearchRequest { offset: 3, ..TextSearchRequest::new("body", "dog", 3) }).unwrap();
    let top6 = c.text_search(&TextSearchRequest::new("body", "dog", 6)).unwrap();
    assert_eq!(page2, top6[3..]);
    let t = top6[2].score;
    let above = c
        .text_search(&TextSearchRequest { score_threshold: Some(t), ..TextSearchRequest::new("body", "dog", 50) })
        .unwrap();
    assert!(above.len() >= 3 && above.iter().all(|h| h.score >= t));
    // The index is rebuilt from the payloads on reopen: same answers.
    let before: Vec<_> =
        QUERIES.iter().map(|q| c.text_search(&TextSearchRequest::new("body", *q, 20)).unwrap()).collect();
    c.flush().unwrap();
    let r = f.reopen().unwrap();
    let after: Vec<_> =
        QUERIES.iter().map(|q| r.text_search(&TextSearchRequest::new("body", *q, 20)).unwrap()).collect();
    assert_eq!(before, after);
    assert_eq!(r.payload_indexes(), vec![("body".to_owned(), FieldType::Text(ENGLISH))]);
}

#[test]
fn text_search_refuses_keys_without_a_text_index_and_bad_limits() {
    let f = mem_collection(2, Metric::Dot, |_| {});
    f.c.create_field_index("tag", FieldType::Keyword).unwrap();
    let e = f.c.text_search(&TextSearchRequest::new("body", "x", 5)).unwrap_err().to_string();
    assert!(e.contains("key") && e.contains("no index"), "{e}");
    let e = f.c.text_search(&TextSearchRequest::new("tag", "x", 5)).unwrap_err().to_string();
    assert!(e.contains("indexed as keyword"), "{e}");
    f.c.create_field_index("body", FieldType::Text(TextOptions::default())).unwrap();
    let e = f.c.text_search(&TextSearchRequest::new("body", "x", 0)).unwrap_err().to_string();
    assert!(e.contains("limit"), "{e}");
    // No terms: no hits (not an error).
    assert!(f.c.text_search(&TextSearchRequest::new("body", " ,; ", 5)).unwrap().is_empty());
}

/// A corpus split over two collections (as a cluster's shards hold it) scores exactly as one collection of all
/// of it once each part is given the parts' summed statistics.
#[test]
fn summed_statistics_of_parts_score_as_the_whole_collection() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (whole, a, b) = (
        mem_collection(2, Metric::Dot, |_| {}),
        mem_collection(2, Metric::Dot, |_| {}),
        mem_collection(2, Metric::Dot, |_| {}),
    );
    for f in [&whole, &a, &b] {
        f.c.create_field_index("body", FieldType::Text(ENGLISH)).unwrap();
    }
    for i in 0..300u64 {
        let p = PointInput::new(i, vec![1.0, 0.0]).with_payload(payload(json!({"body": sentence(&mut rng)})));
        whole.c.upsert(vec![p.clone()]).unwrap();
        (if i % 3 == 0 { &a } else { &b }).c.upsert(vec![p]).unwrap();
        if i == 150 {
            a.c.seal().unwrap();
        }
    }
    for text in ["dog", "the quick brown fox", "cats running dogs", "lazy lazy cat", "zebra dog"] {
        let mut sum = a.c.text_stats("body", text).unwrap();
        sum.add(&b.c.text_stats("body", text).unwrap());
        assert_eq!(sum, whole.c.text_stats("body", text).unwrap(), "{text}");
        let want = whole.c.text_search(&TextSearchRequest::new("body", text, 300)).unwrap();
        let mut found = 0;
        for part in [&a, &b] {
            let req = TextSearchRequest { stats: Some(sum.clone()), ..TextSearchRequest::new("body", text, 300) };
            for h in part.c.text_search(&req).unwrap() {
                let w = want.iter().find(|w| w.id == h.id).unwrap();
                assert!((h.score - w.score).abs() <= 1e-6 * w.score.abs().max(1.0), "{text}: {h:?} vs {w:?}");
                found += 1;
            }
        }
        assert!(!want.is_empty() && found == want.len(), "{text}: {found} of {}", want.len());
    }
    // No part holds "zebra": its count is still there (0), one per term.
    assert_eq!(a.c.text_stats("body", "zebra dog").unwrap().df.len(), 2);
    let empty = mem_collection(2, Metric::Dot, |_| {});
    empty.c.create_field_index("body", FieldType::Text(ENGLISH)).unwrap();
    assert_eq!(empty.c.text_stats("body", "quick fox").unwrap().df, vec![0, 0]);
    // Statistics for another query (a count per term missing) are refused, naming the field.
    let mut wrong = a.c.text_stats("body", "dog").unwrap();
    wrong.df.clear();
    let req = TextSearchRequest { stats: Some(wrong), ..TextSearchRequest::new("body", "dog", 5) };
    let e = a.c.text_search(&req).unwrap_err().to_string();
    assert!(e.contains("bm25.stats.df"), "{e}");
    assert!(a.c.text_stats("nope", "dog").unwrap_err().to_string().contains("no index"));
}

#[test]
fn match_text_means_every_term_with_a_text_index_and_a_substring_without() {
    let f = mem_collection(2, Metric::Dot, |_| {});
    let c = &f.c;
    let texts = ["Dogs are barking", "a barking dog", "hotdog stand", "cats"];
    c.upsert(
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| PointInput::new(i as u64, vec![1.0, i as f32]).with_payload(payload(json!({"t": t, "u": t}))))
            .collect(),
    )
    .unwrap();
    c.create_field_index("t", FieldType::Text(ENGLISH)).unwrap();
    let count = |key: &str, q: &str| {
        let f: Filter = serde_json::from_value(json!({"must": [{"key": key, "match": {"text": q}}]})).unwrap();
        let mut ids: Vec<PointId> = c
            .search(&SearchRequest::new(vec![1.0, 0.0], 10).with_filter(f))
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect();
        ids.sort();
        ids
    };
    let n = |v: &[u64]| v.iter().map(|&i| PointId::Num(i)).collect::<Vec<_>>();
    // Text index: stemmed terms, all required, any order.
    assert_eq!(count("t", "dog"), n(&[0, 1]));
    assert_eq!(count("t", "DOG barks"), n(&[0, 1]));
    assert_eq!(count("t", "barking cat"), n(&[]));
    // No index: case-sensitive substring.
    assert_eq!(count("u", "dog"), n(&[1, 2]));
    assert_eq!(count("u", "Dog"), n(&[0]));
    c.seal().unwrap();
    assert_eq!(count("t", "dog"), n(&[0, 1]), "sealed segments answer the same");
}

#[test]
fn fusion_and_prefetch_rank_through_the_engine() {
    let f = mem_collection(2, Metric::Euclidean, |_| {});
    let c = &f.c;
    c.create_field_index("t", FieldType::Text(ENGLISH)).unwrap();
    // Point 3 is nearest to the query vector and also a text match; 1 matches text best; 5 is only near.
    let rows = [(1, [9.0, 9.0], "dog dog dog"), (2, [8.0, 8.0], "cat"), (3, [0.1, 0.0], "dog"), (5, [0.0, 0.2], "fox")];
    c.upsert(
        rows.iter().map(|(id, v, t)| PointInput::new(*id, v.to_vec()).with_payload(payload(json!({"t": t})))).collect(),
    )
    .unwrap();
    let nearest = Stage::new(Ranking::Nearest(SearchRequest::new(vec![0.0, 0.0], 3)));
    let text = Stage::new(Ranking::Text(TextSearchRequest::new("t", "dog", 3)));
    let fusion = |method| Stage {
        prefetch: vec![nearest.clone(), text.clone()],
        ranking: Ranking::Fusion {
            weights: Vec::new(),
            method,
            limit: 2,
            offset: 0,
            score_threshold: None,
            with_payload: true,
            with_vector: false,
        },
    };
    let hits = c.query(&fusion(Fusion::Rrf { k: 60 })).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [PointId::Num(3), PointId::Num(1)]);
    assert_eq!(hits[0].payload.as_ref().unwrap()["t"], json!("dog"));
    // The same lists fused by hand give the same scores.
    let lists: Vec<Vec<(PointId, f32)>> =
        [&nearest, &text].iter().map(|s| c.query(s).unwrap().into_iter().map(|h| (h.id, h.score)).collect()).collect();
    let by_hand = fuse(Fusion::Dbsf, &lists, &[false, true]);
    let dbsf = c.query(&fusion(Fusion::Dbsf)).unwrap();
    assert_eq!(dbsf.iter().map(|h| (h.id, h.score)).collect::<Vec<_>>(), by_hand[..2]);
    // A nearest stage over a prefetch only ranks what the prefetch found.
    let rescored = c
        .query(&Stage {
            prefetch: vec![Stage::new(Ranking::Text(TextSearchRequest::new("t", "dog", 10)))],
            ranking: Ranking::Nearest(SearchRequest::new(vec![9.0, 9.0], 5)),
        })
        .unwrap();
    assert_eq!(rescored.iter().map(|h| h.id).collect::<Vec<_>>(), [PointId::Num(1), PointId::Num(3)]);
    // Bad stages are refused.
    let e = c
        .query(&Stage::new(Ranking::Fusion {
            weights: Vec::new(),
            method: Fusion::Rrf { k: 60 },
            limit: 5,
            offset: 0,
            score_threshold: None,
            with_payload: false,
            with_vector: false,
        }))
        .unwrap_err();
    assert!(e.to_string().contains("prefetch"), "{e}");
    let mut deep = text.clone();
    for _ in 0..9 {
        deep = Stage { prefetch: vec![deep], ranking: Ranking::Text(TextSearchRequest::new("t", "dog", 3)) };
    }
    assert!(c.query(&deep).unwrap_err().to_string().contains("nested"));
}

/// Crash at every step of a workload of text-indexed writes: after reopen, BM25 answers equal the reference over
/// what survived (the index is rebuilt from the recovered payloads, so it cannot disagree with them).
#[test]
fn crashes_during_text_index_updates_leave_a_consistent_index() {
    let run = |c: &Collection, rng: &mut ChaCha8Rng, round: u64| -> quiver_engine::Result<()> {
        if round == 0 {
            c.create_field_index("body", FieldType::Text(ENGLISH))?;
        }
        let pts = (0..8)
            .map(|i| {
                PointInput::new(round * 5 + i, vec![i as f32, 1.0])
                    .with_payload(payload(json!({"body": sentence(rng)})))
            })
            .collect();
        c.upsert(pts)?;
        c.delete(Selector::Ids(vec![PointId::Num(round * 3)]))?;
        c.set_payload(Selector::Ids(vec![PointId::Num(round * 5 + 2)]), payload(json!({"body": "lazy dog"})), None)?;
        if round % 2 == 1 {
            c.seal()?;
            c.optimize()?;
        }
        Ok(())
    };
    let tune = |cfg: &mut quiver_engine::CollectionConfig| {
        cfg.optimizer.seal_points = 10;
        cfg.optimizer.merge_below_points = 25;
    };
    let total = {
        let f = mem_collection(2, Metric::Euclidean, tune);
        let start = f.dir.ops();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for round in 0..5 {
            run(&f.c, &mut rng, round).unwrap();
        }
        f.dir.ops() - start
    };
    let stride = (total / 40).max(1);
    let mut checked = 0;
    for (n, halt) in (0..total).step_by(stride as usize).enumerate() {
        let mode = [CrashMode::DropUnsynced, CrashMode::KeepRandomPrefix, CrashMode::TearLastSector][n % 3];
        let f = mem_collection(2, Metric::Euclidean, tune);
        f.dir.halt_after(halt);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for round in 0..5 {
            if run(&f.c, &mut rng, round).is_err() {
                break;
            }
        }
        f.dir.crash(mode);
        let r = f.reopen().unwrap_or_else(|e| panic!("halt {halt}: {e}"));
        if r.payload_indexes().is_empty() {
            continue; // crashed before the index was created
        }
        for q in QUERIES {
            check(&r, q, 10);
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} crash points had a text index");
}
