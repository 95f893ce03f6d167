//! Readers, writers and the optimizer at once, checked against each writer's model, with a watchdog.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quiver_engine::{PointId, PointInput, SearchRequest, Selector};
use quiver_index::Metric;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common::{mem_collection, payload};

#[test]
fn readers_writers_and_optimizer_agree_with_the_model() {
    let f = mem_collection(8, Metric::Euclidean, |c| {
        c.optimizer.seal_points = 150;
        c.optimizer.merge_below_points = 400;
        c.optimizer.vacuum_deleted_ratio = 0.2;
        c.index.params.insert("m".into(), json!(6));
    });
    let c = f.c.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let writers = 3;
    let mut handles = Vec::new();
    for w in 0..writers {
        let (c, progress) = (c.clone(), progress.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = ChaCha8Rng::seed_from_u64(w);
            // id -> version; ids are w*10_000 + i, so writers never touch each other's points.
            let mut model: BTreeMap<u64, u64> = BTreeMap::new();
            let mut deleted: Vec<u64> = Vec::new();
            for step in 0..300u64 {
                let id = w * 10_000 + rng.random_range(0..120u64);
                if rng.random_bool(0.2) && model.contains_key(&id) {
                    c.delete(Selector::Ids(vec![PointId::Num(id)])).unwrap();
                    model.remove(&id);
                    deleted.push(id);
                    // Read-your-writes: gone from get and from search around its old position.
                    assert!(c.get(&[PointId::Num(id)], false, false).unwrap().is_empty());
                } else {
                    let v: Vec<f32> = (0..8).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                    c.upsert(vec![PointInput::new(id, v.clone()).with_payload(payload(json!({"version": step})))])
                        .unwrap();
                    model.insert(id, step);
                    deleted.retain(|d| *d != id);
                    let got = c.get(&[PointId::Num(id)], true, false).unwrap();
                    assert_eq!(got.len(), 1, "writer {w} lost its point {id}");
                    assert_eq!(got[0].payload.as_ref().unwrap()["version"], json!(step), "stale read of {id}");
                    let hits = c.search(&SearchRequest::new(v, 3)).unwrap().hits;
                    assert_eq!(hits[0].id, PointId::Num(id), "writer {w}: own point not nearest to itself");
                }
                // A deleted id is never returned.
                if let Some(d) = deleted.last() {
                    let hits = c.search(&SearchRequest::new(vec![0.0; 8], 50)).unwrap().hits;
                    assert!(hits.iter().all(|h| h.id != PointId::Num(*d)), "deleted {d} returned");
                }
                progress.fetch_add(1, Ordering::Relaxed);
            }
            model
        }));
    }
    let mut readers = Vec::new();
    for r in 0..2 {
        let (c, stop, progress) = (c.clone(), stop.clone(), progress.clone());
        readers.push(std::thread::spawn(move || {
            let mut rng = ChaCha8Rng::seed_from_u64(100 + r);
            while !stop.load(Ordering::Relaxed) {
                let q: Vec<f32> = (0..8).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                let hits = c.search(&SearchRequest::new(q, 10)).unwrap().hits;
                let mut ids: Vec<_> = hits.iter().map(|h| h.id).collect();
                ids.sort();
                ids.dedup();
                assert_eq!(ids.len(), hits.len(), "a point returned twice");
                c.count(None).unwrap();
                progress.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let optimizer = {
        let (c, stop) = (c.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut jobs = 0;
            while !stop.load(Ordering::Relaxed) {
                jobs += c.optimize().unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            jobs
        })
    };
    // Watchdog: progress must move at least every 20 s.
    let mut last = (0, Instant::now());
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        let p = progress.load(Ordering::Relaxed);
        if p != last.0 {
            last = (p, Instant::now());
        }
        assert!(last.1.elapsed() < Duration::from_secs(20), "stalled at progress {p}");
    }
    let models: Vec<BTreeMap<u64, u64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let jobs = optimizer.join().unwrap();
    c.optimize().unwrap();
    assert!(jobs > 0, "the optimizer never ran a job");
    // Final state equals the union of the writers' models, also after a reopen.
    let expected: BTreeMap<u64, u64> = models.into_iter().flatten().collect();
    for coll in [c.clone(), f.reopen().unwrap()] {
        let page = coll.scroll(None, None, 10_000, true, false).unwrap();
        let got: BTreeMap<u64, u64> = page
            .points
            .iter()
            .map(|r| match r.id {
                PointId::Num(n) => (n, r.payload.as_ref().unwrap()["version"].as_u64().unwrap()),
                PointId::Uuid(_) => unreachable!(),
            })
            .collect();
        assert_eq!(got, expected);
    }
}
