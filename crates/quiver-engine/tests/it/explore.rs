//! Queries by examples (recommendation by best or summed score, discovery, context search) against a brute-force
//! evaluation of their formulas: exact mode equals it through growing and sealed segments, deletes, filters,
//! offsets and a reopen; the approximate mode scores what it returns exactly and finds most of the true top 10;
//! inside a multi-stage query they rank exactly the prefetched points; bad input names the field.

use quiver_engine::{
    Collection, ExampleQuery, ExampleSearch, Filter, PointId, PointInput, Ranking, SearchRequest, Selector, Stage,
};
use quiver_index::Metric;
use serde_json::json;

use crate::common::{mem_collection, payload, random_vectors};

const N: usize = 400;
const DIM: usize = 8;

fn num(id: PointId) -> u64 {
    match id {
        PointId::Num(n) => n,
        PointId::Uuid(_) => panic!("uuid"),
    }
}

fn sim(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    match metric {
        Metric::Cosine => dot / (norm(a) * norm(b)),
        Metric::Dot => dot,
        Metric::Euclidean => -a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>().sqrt(),
    }
}

fn sigmoid(x: f64) -> f64 {
    0.5 + x / (2.0 * (1.0 + x.abs()))
}

/// The documented score of `x` for `q`, in f64.
fn oracle_score(metric: Metric, q: &ExampleQuery, x: &[f32]) -> f64 {
    let s = |e: &Vec<f32>| sim(metric, x, e);
    let best = |l: &[Vec<f32>]| l.iter().map(s).fold(f64::NEG_INFINITY, f64::max);
    match q {
        ExampleQuery::BestScore { positive, negative } => {
            let (p, n) = (best(positive), best(negative));
            if p > n { sigmoid(p) } else { -sigmoid(n) }
        }
        ExampleQuery::SumScores { positive, negative } => {
            positive.iter().map(s).sum::<f64>() - negative.iter().map(s).sum::<f64>()
        }
        ExampleQuery::Discover { target, pairs } => {
            let rank: f64 = pairs.iter().map(|(p, n)| (s(p) - s(n)).signum()).sum();
            rank + sigmoid(s(target))
        }
        ExampleQuery::Context { pairs } => pairs.iter().map(|(p, n)| (s(p) - s(n)).min(0.0)).sum(),
    }
}

/// Every live point's score, best first (ties by id).
fn oracle(metric: Metric, live: &[(u64, Vec<f32>)], q: &ExampleQuery, keep: impl Fn(u64) -> bool) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, f64)> =
        live.iter().filter(|(i, _)| keep(*i)).map(|(i, v)| (*i, oracle_score(metric, q, v))).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

fn queries() -> Vec<(&'static str, ExampleQuery)> {
    let e = random_vectors(8, DIM, 77);
    vec![
        (
            "best_score",
            ExampleQuery::BestScore { positive: vec![e[0].clone(), e[1].clone()], negative: vec![e[2].clone()] },
        ),
        ("best_score, no negatives", ExampleQuery::BestScore { positive: vec![e[3].clone()], negative: vec![] }),
        (
            "sum_scores",
            ExampleQuery::SumScores {
                positive: vec![e[0].clone(), e[4].clone()],
                negative: vec![e[2].clone(), e[5].clone()],
            },
        ),
        (
            "discover",
            ExampleQuery::Discover {
                target: e[6].clone(),
                pairs: vec![(e[0].clone(), e[2].clone()), (e[4].clone(), e[5].clone())],
            },
        ),
        ("context", ExampleQuery::Context { pairs: vec![(e[0].clone(), e[2].clone()), (e[1].clone(), e[7].clone())] }),
    ]
}

fn even() -> Filter {
    serde_json::from_value(json!({"must": [{"key": "even", "match": {"value": true}}]})).unwrap()
}

/// The same scores in the same order, to float tolerance (so two near-equal points may trade places).
fn assert_matches(got: &[quiver_engine::ScoredPoint], want: &[(u64, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {} hits, expected {}", got.len(), want.len());
    for (i, (h, (id, score))) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(h.score) - score).abs() < 1e-4,
            "{what}: hit {i} is point {} scoring {}, expected point {id} scoring {score}",
            num(h.id),
            h.score
        );
    }
}

/// Exact and approximate queries of every kind, filtered and not, with an offset, against the oracle.
fn check(c: &Collection, metric: Metric, live: &[(u64, Vec<f32>)], what: &str) {
    let score_of = |q: &ExampleQuery, id: u64| {
        let v = &live.iter().find(|(i, _)| *i == id).expect("a live point").1;
        oracle_score(metric, q, v)
    };
    let mut found = 0;
    let mut wanted = 0;
    for (name, q) in queries() {
        for filtered in [false, true] {
            let keep = |i: u64| !filtered || i.is_multiple_of(2);
            let truth = oracle(metric, live, &q, keep);
            let mut req = ExampleSearch::new(q.clone(), 10);
            if filtered {
                req.filter = Some(even());
            }
            req.params.exact = true;
            let what = format!("{what}: {name}{}", if filtered { ", filtered" } else { "" });
            assert_matches(&c.example_search(&req).unwrap(), &truth[..10], &format!("{what}, exact"));
            req.offset = 5;
            assert_matches(&c.example_search(&req).unwrap(), &truth[5..15], &format!("{what}, exact, offset 5"));
            // Approximate: every hit scored exactly, admitted, best first; most of the true top 10 found.
            req.offset = 0;
            req.params.exact = false;
            let hits = c.example_search(&req).unwrap();
            assert_eq!(hits.len(), 10, "{what}: approximate");
            for w in hits.windows(2) {
                assert!(w[0].score >= w[1].score, "{what}: approximate hits out of order");
            }
            for h in &hits {
                let id = num(h.id);
                assert!(keep(id), "{what}: point {id} is not admitted by the filter");
                assert!((f64::from(h.score) - score_of(&q, id)).abs() < 1e-4, "{what}: point {id}'s score");
            }
            let top: Vec<u64> = truth[..10].iter().map(|(i, _)| *i).collect();
            found += hits.iter().filter(|h| top.contains(&num(h.id))).count();
            wanted += 10;
        }
    }
    let recall = found as f64 / wanted as f64;
    assert!(recall >= 0.8, "{what}: approximate queries found {found} of {wanted} true top-10 points");
}

#[test]
fn queries_by_examples_equal_their_formulas_in_every_segment_state() {
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let f = mem_collection(DIM, metric, |cfg| cfg.optimizer.seal_points = 1_000_000);
        let vectors = random_vectors(N, DIM, 3);
        let points = |range: std::ops::Range<usize>| -> Vec<PointInput> {
            range
                .map(|i| {
                    let mut p = PointInput::new(i as u64, vectors[i].clone());
                    p.payload = Some(payload(json!({"even": i % 2 == 0})));
                    p
                })
                .collect()
        };
        f.c.upsert(points(0..N / 2)).unwrap();
        assert!(f.c.seal().unwrap());
        f.c.upsert(points(N / 2..N)).unwrap(); // a sealed segment and a growing one
        let gone: Vec<PointId> = (0..N as u64).filter(|i| i.is_multiple_of(11)).map(PointId::Num).collect();
        f.c.delete(Selector::Ids(gone)).unwrap();
        let live: Vec<(u64, Vec<f32>)> =
            (0..N).filter(|i| !i.is_multiple_of(11)).map(|i| (i as u64, vectors[i].clone())).collect();
        check(&f.c, metric, &live, &format!("{metric}, sealed + growing"));
        assert!(f.c.seal().unwrap());
        check(&f.c, metric, &live, &format!("{metric}, sealed"));
        let reopened = f.reopen().unwrap();
        check(&reopened, metric, &live, &format!("{metric}, reopened"));
    }
}

#[test]
fn inside_a_staged_query_examples_rank_exactly_the_prefetched_points() {
    let f = mem_collection(DIM, Metric::Cosine, |_| {});
    let vectors = random_vectors(N, DIM, 4);
    f.c.upsert((0..N).map(|i| PointInput::new(i as u64, vectors[i].clone())).collect()).unwrap();
    let live: Vec<(u64, Vec<f32>)> = (0..N).map(|i| (i as u64, vectors[i].clone())).collect();
    let anchor = random_vectors(1, DIM, 5).remove(0);
    let mut near = SearchRequest::new(anchor, 30);
    near.params.exact = true;
    let prefetched: Vec<u64> = f.c.search(&near).unwrap().hits.iter().map(|h| num(h.id)).collect();
    for (name, q) in queries() {
        let stage = Stage {
            prefetch: vec![Stage::new(Ranking::Nearest(near.clone()))],
            ranking: Ranking::Examples(ExampleSearch::new(q.clone(), 10)),
        };
        let truth = oracle(Metric::Cosine, &live, &q, |i| prefetched.contains(&i));
        assert_matches(&f.c.query(&stage).unwrap(), &truth[..10], &format!("staged {name}"));
    }
}

#[test]
fn bad_examples_are_refused_naming_the_field() {
    let f = mem_collection(DIM, Metric::Cosine, |_| {});
    f.c.upsert(random_vectors(20, DIM, 6).into_iter().enumerate().map(|(i, v)| PointInput::new(i as u64, v)).collect())
        .unwrap();
    let v = random_vectors(2, DIM, 7);
    let err = |q: ExampleQuery, limit: usize| {
        f.c.example_search(&ExampleSearch::new(q, limit)).expect_err("accepted").to_string()
    };
    let e = err(ExampleQuery::BestScore { positive: vec![], negative: vec![v[0].clone()] }, 5);
    assert!(e.contains("positive") && e.contains("at least one"), "{e}");
    let e = err(ExampleQuery::SumScores { positive: vec![v[0].clone()], negative: vec![vec![1.0; 3]] }, 5);
    assert!(e.contains("negative[0]") && e.contains("8 numbers") && e.contains("3 numbers"), "{e}");
    let e = err(ExampleQuery::Discover { target: v[0].clone(), pairs: vec![] }, 5);
    assert!(e.contains("context") && e.contains("pair"), "{e}");
    let e = err(ExampleQuery::Context { pairs: vec![(v[0].clone(), vec![0.0; DIM])] }, 5);
    assert!(e.contains("context[0].negative") && e.contains("zero"), "{e}");
    let e = err(ExampleQuery::Context { pairs: vec![(v[0].clone(), vec![f32::NAN; DIM])] }, 5);
    assert!(e.contains("context[0].negative") && e.contains("finite"), "{e}");
    let e = err(ExampleQuery::BestScore { positive: vec![v[0].clone()], negative: vec![] }, 0);
    assert!(e.contains("limit"), "{e}");
    let mut named = ExampleSearch::new(ExampleQuery::BestScore { positive: vec![v[0].clone()], negative: vec![] }, 5);
    named.using = Some("title".into());
    let e = f.c.example_search(&named).expect_err("unknown vector").to_string();
    assert!(e.contains("using"), "{e}");
}
