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
