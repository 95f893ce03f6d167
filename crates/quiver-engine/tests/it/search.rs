//! Search: exactness against brute force across segments, pagination, thresholds, explain.

use quiver_engine::{IndexConfig, PointId, PointInput, SearchRequest};
use quiver_index::{IndexKind, Metric};

use crate::common::{mem_collection, random_vectors};

fn brute(vs: &[Vec<f32>], q: &[f32], k: usize) -> Vec<PointId> {
    let mut d: Vec<(f32, u64)> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(), i as u64))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().take(k).map(|(_, i)| PointId::Num(i)).collect()
}

#[test]
fn flat_collection_split_into_segments_is_exact() {
    let f = mem_collection(12, Metric::Euclidean, |c| {
        c.index = IndexConfig { kind: IndexKind::Flat, params: Default::default() };
        c.optimizer.seal_points = 70;
        c.optimizer.merge_below_points = 1;
        c.optimizer.max_segments = 100;
    });
    let vs = random_vectors(300, 12, 5);
    for (n, chunk) in vs.chunks(50).enumerate() {
        f.c.upsert(chunk.iter().enumerate().map(|(i, v)| PointInput::new((n * 50 + i) as u64, v.clone())).collect())
            .unwrap();
        f.c.optimize().unwrap();
    }
    assert!(f.c.info().unwrap().segments.len() >= 4);
    for q in random_vectors(20, 12, 77) {
        let hits = f.c.search(&SearchRequest::new(q.clone(), 10)).unwrap().hits;
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), brute(&vs, &q, 10));
        // Scores are Euclidean distances, ascending.
        assert!(hits.windows(2).all(|w| w[0].score <= w[1].score));
        // Offset pages continue the same ranking.
        let mut req = SearchRequest::new(q.clone(), 5);
        req.offset = 5;
        let page2 = f.c.search(&req).unwrap().hits;
        assert_eq!(page2.iter().map(|h| h.id).collect::<Vec<_>>(), brute(&vs, &q, 10)[5..]);
    }
}

#[test]
fn hnsw_segments_reach_high_recall_and_explain_shows_the_plan() {
    let f = mem_collection(16, Metric::Cosine, |c| {
        c.optimizer.seal_points = 500;
        c.optimizer.merge_below_points = 1;
        c.optimizer.max_segments = 100;
    });
    let vs = random_vectors(1200, 16, 8);
    f.c.upsert(vs[..1100].iter().enumerate().map(|(i, v)| PointInput::new(i as u64, v.clone())).collect()).unwrap();
    f.c.optimize().unwrap();
    f.c.upsert(vs[1100..].iter().enumerate().map(|(i, v)| PointInput::new(1100 + i as u64, v.clone())).collect())
        .unwrap();
    let info = f.c.info().unwrap();
    assert_eq!(info.segments.iter().filter(|s| s.index == "hnsw").count(), 1, "{:?}", info.segments);
    let mut req = SearchRequest::new(vs[3].clone(), 10);
    req.explain = true;
    let res = f.c.search(&req).unwrap();
    assert_eq!(res.hits[0].id, PointId::Num(3));
    assert!((res.hits[0].score - 1.0).abs() < 1e-5, "cosine similarity of a point with itself");
    let plans = res.explain.unwrap().segments;
    assert!(plans.iter().any(|p| p.plan == "index:hnsw"), "{plans:?}");
    assert!(plans.iter().any(|p| p.plan == "exact"), "{plans:?}");
    // recall@10 against brute force (cosine) over both segments
    let norm = |v: &[f32]| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    let normed: Vec<Vec<f32>> = vs.iter().map(|v| norm(v)).collect();
    let (mut hit, mut total) = (0, 0);
    for q in random_vectors(30, 16, 99) {
        let truth = brute(&normed, &norm(&q), 10);
        let got = f.c.search(&SearchRequest::new(q, 10)).unwrap().hits;
        hit += got.iter().filter(|h| truth.contains(&h.id)).count();
        total += 10;
    }
    assert!(hit as f64 / total as f64 >= 0.9, "recall {hit}/{total}");
}

#[test]
fn bad_queries_are_clear_errors() {
    let f = mem_collection(3, Metric::Cosine, |_| {});
    f.c.upsert(vec![PointInput::new(1, vec![1.0, 0.0, 0.0])]).unwrap();
    let cases = [
        (SearchRequest::new(vec![1.0, 0.0], 3), "vector"),
        (SearchRequest::new(vec![f32::NAN, 0.0, 0.0], 3), "vector"),
        (SearchRequest::new(vec![1.0, 0.0, 0.0], 0), "limit"),
        (SearchRequest::new(vec![1.0, 0.0, 0.0], 1_000_000), "limit"),
    ];
    for (req, field) in cases {
        match f.c.search(&req) {
            Err(quiver_engine::Error::InvalidArgument { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut req = SearchRequest::new(vec![1.0, 0.0, 0.0], 3);
    req.score_threshold = Some(1.1);
    assert!(f.c.search(&req).unwrap().hits.is_empty());
    req.min_seq = Some(1);
    assert_eq!(f.c.search(&SearchRequest { score_threshold: None, ..req }).unwrap().hits.len(), 1);
}

fn filter(json: serde_json::Value) -> quiver_engine::Filter {
    serde_json::from_value(json).unwrap()
}

/// The planner returns exactly min(k, matches) hits, all admitted, across selectivities 50% … 0.01% — with and
/// without a payload index on the key, on sealed HNSW segments and the growing segment.
#[test]
fn filtered_search_returns_min_k_matches_at_every_selectivity() {
    let n = 10_000u64;
    let f = mem_collection(8, Metric::Euclidean, |c| {
        c.optimizer.seal_points = 4000;
        c.optimizer.merge_below_points = 1;
        c.optimizer.max_segments = 100;
        c.optimizer.exact_below = 300;
        c.index.params.insert("m".into(), serde_json::json!(8));
    });
    let vs = random_vectors(n as usize, 8, 21);
    for chunk in (0..n).collect::<Vec<_>>().chunks(2500) {
        f.c.upsert(
            chunk
                .iter()
                .map(|&i| {
                    PointInput::new(i, vs[i as usize].clone())
                        .with_payload(crate::common::payload(serde_json::json!({"n": i, "tag": format!("t{}", i % 7)})))
                })
                .collect(),
        )
        .unwrap();
        f.c.optimize().unwrap();
    }
    assert!(f.c.info().unwrap().segments.len() >= 3);
    for indexed in [false, true] {
        if indexed {
            f.c.create_field_index("n", quiver_engine::FieldType::Integer).unwrap();
        }
        for matches in [5000u64, 1000, 100, 10, 1, 0] {
            let flt = filter(serde_json::json!({"must": [{"key": "n", "range": {"lt": matches}}]}));
            assert_eq!(f.c.count(Some(&flt)).unwrap(), matches);
            for q in random_vectors(5, 8, matches + 1) {
                let mut req = SearchRequest::new(q.clone(), 10).with_filter(flt.clone());
                req.explain = true;
                let res = f.c.search(&req).unwrap();
                assert_eq!(res.hits.len() as u64, matches.min(10), "matches {matches} indexed {indexed}");
                assert!(res.hits.iter().all(|h| matches!(h.id, PointId::Num(i) if i < matches)));
                let ex = res.explain.unwrap();
                assert_eq!(ex.matched, Some(matches));
                assert_eq!(ex.unindexed_keys.is_empty(), indexed, "{ex:?}");
                if matches <= 1000 {
                    // Selective filters are answered exactly: equal to brute force over the matching points.
                    let sub: Vec<Vec<f32>> = vs[..matches as usize].to_vec();
                    assert_eq!(res.hits.iter().map(|h| h.id).collect::<Vec<_>>(), brute(&sub, &q, 10));
                }
            }
        }
    }
    // Delete by filter removes exactly the admitted points.
    f.c.delete(quiver_engine::Selector::Filter(filter(
        serde_json::json!({"must": {"key": "tag", "match": {"value": "t3"}}}),
    )))
    .unwrap();
    assert_eq!(f.c.count(None).unwrap(), n - (0..n).filter(|i| i % 7 == 3).count() as u64);
    let none = filter(serde_json::json!({"must": {"key": "tag", "match": {"value": "t3"}}}));
    assert_eq!(f.c.count(Some(&none)).unwrap(), 0);
}

#[test]
fn the_result_cache_answers_repeats_until_a_write_or_an_expiry() {
    let f = mem_collection(2, Metric::Euclidean, |c| c.query_cache_entries = 8);
    let c = &f.c;
    let mut expiring = PointInput::new(1u64, vec![0.1, 0.0]);
    expiring.ttl_secs = Some(10);
    c.upsert(vec![expiring, PointInput::new(2u64, vec![1.0, 0.0]), PointInput::new(3u64, vec![2.0, 0.0])]).unwrap();
    let req = SearchRequest::new(vec![0.0, 0.0], 2);
    let first = c.search(&req).unwrap();
    assert_eq!(first.hits.iter().map(|h| h.id).collect::<Vec<_>>(), [PointId::Num(1), PointId::Num(2)]);
    assert_eq!(c.search(&req).unwrap(), first);
    let q = c.query_cache().unwrap();
    assert_eq!((q.hits, q.misses, q.entries, q.capacity), (1, 1, 1, 8));
    // A write: the next answer is searched again and sees it.
    c.upsert(vec![PointInput::new(4u64, vec![0.05, 0.0])]).unwrap();
    let after_write = c.search(&req).unwrap();
    assert_eq!(after_write.hits[0].id, PointId::Num(4));
    assert_eq!(c.query_cache().unwrap().misses, 2);
    assert_eq!(c.search(&req).unwrap(), after_write);
    // A point reaching its TTL: the cached answer that holds it is not served.
    f.clock.advance(10_000);
    let after_expiry = c.search(&req).unwrap();
    assert_eq!(after_expiry.hits.iter().map(|h| h.id).collect::<Vec<_>>(), [PointId::Num(4), PointId::Num(2)]);
    // Explain is never cached; other parameters are other entries.
    let mut explained = req.clone();
    explained.explain = true;
    assert!(c.search(&explained).unwrap().explain.is_some());
    assert!(c.search(&explained).unwrap().explain.is_some());
    let before = c.query_cache().unwrap();
    let mut wider = req.clone();
    wider.limit = 3;
    assert_eq!(c.search(&wider).unwrap().hits.len(), 3);
    let q = c.query_cache().unwrap();
    assert_eq!((q.hits, q.misses), (before.hits, before.misses + 1));
    // Off by default, and bounded.
    assert!(mem_collection(2, Metric::Euclidean, |_| {}).c.query_cache().is_none());
    let mut cfg = quiver_engine::CollectionConfig::new(2, Metric::Euclidean);
    cfg.query_cache_entries = quiver_engine::cache::MAX_QUERY_CACHE_ENTRIES + 1;
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("query_cache_entries"), "{e}");
}
