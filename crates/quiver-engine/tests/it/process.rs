//! A real process ingesting (upserts, deletes, payload updates) with a background optimizer sealing, merging and
//! migrating, killed with SIGKILL at random moments, round after round on the same data directory. After each
//! kill the reopened collection must equal the model of acknowledged operations (plus, at most, the one in
//! flight), and the next round continues from there.
//!
//! The child is this test binary re-run with `QUIVER_CRASH_CHILD` set; it prints `ACK <step>` after each
//! acknowledged step.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use quiver_engine::{CollectionConfig, Database, IndexConfig, PointId, PointInput, Selector, TieringConfig};
use quiver_index::{IndexKind, Metric};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common::payload;

const DIM: usize = 8;
const STEPS: usize = 100_000;

#[derive(Debug, Clone)]
enum Step {
    Upsert(Vec<(u64, Vec<f32>)>),
    Delete(u64),
    SetPayload(u64, u64),
}

/// Step `i` of the endless deterministic workload.
fn step(i: usize) -> Step {
    let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
    match rng.random_range(0..10) {
        0 => Step::Delete(rng.random_range(0..400)),
        1 => Step::SetPayload(rng.random_range(0..400), i as u64),
        _ => Step::Upsert(
            (0..rng.random_range(1..20))
                .map(|_| (rng.random_range(0..400), (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()))
                .collect(),
        ),
    }
}

/// id -> (vector, payload "v")
type Model = BTreeMap<u64, (Vec<f32>, Option<u64>)>;

fn model_apply(m: &mut Model, s: &Step) {
    match s {
        Step::Upsert(pts) => {
            for (id, v) in pts {
                m.insert(*id, (v.clone(), None));
            }
        }
        Step::Delete(id) => {
            m.remove(id);
        }
        Step::SetPayload(id, v) => {
            if let Some(e) = m.get_mut(id) {
                e.1 = Some(*v);
            }
        }
    }
}

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::new(DIM, Metric::Euclidean);
    c.optimizer.interval_ms = 5;
    c.optimizer.seal_points = 60;
    c.optimizer.merge_below_points = 150;
    c.index.params.insert("m".into(), json!(4));
    c.tiering = Some(TieringConfig {
        hot_age_secs: 1,
        cold_index: IndexConfig { kind: IndexKind::Flat, params: Default::default() },
    });
    c
}

#[test]
fn child_process_entry() {
    // Only does something when re-run by `sigkill_rounds_keep_every_acknowledged_write`.
    let (Ok(dir), Ok(start)) = (std::env::var("QUIVER_CRASH_CHILD"), std::env::var("QUIVER_CRASH_START")) else {
        return;
    };
    let start: usize = start.parse().unwrap();
    let db = Database::open(&dir).unwrap();
    let c = match db.collection("c") {
        Ok(c) => c,
        Err(_) => db.create_collection("c", config()).unwrap(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    for i in start..STEPS {
        match step(i) {
            Step::Upsert(pts) => {
                c.upsert(pts.into_iter().map(|(id, v)| PointInput::new(id, v)).collect()).unwrap();
            }
            Step::Delete(id) => {
                c.delete(Selector::Ids(vec![PointId::Num(id)])).unwrap();
            }
            Step::SetPayload(id, v) => {
                // A payload update of a missing point is an error and changes nothing: fine for the model.
                let _ = c.set_payload(Selector::Ids(vec![PointId::Num(id)]), payload(json!({"v": v})), None);
            }
        }
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
    }
}

fn dump(dir: &std::path::Path) -> Model {
    let db = Database::open(dir).unwrap();
    let c = db.collection("c").unwrap();
    let page = c.scroll(None, None, 100_000, true, true).unwrap();
    let out = page
        .points
        .into_iter()
        .map(|r| {
            let PointId::Num(id) = r.id else { unreachable!() };
            (id, (r.vector.unwrap(), r.payload.unwrap().get("v").and_then(|v| v.as_u64())))
        })
        .collect();
    db.close().unwrap();
    out
}

#[test]
fn sigkill_rounds_keep_every_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut model = Model::new();
    let mut next = 0usize;
    let rounds = 12;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--exact", "process::child_process_entry", "--nocapture", "--test-threads=1"])
            .env("QUIVER_CRASH_CHILD", tmp.path())
            .env("QUIVER_CRASH_START", next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kill_after = rng.random_range(20..400usize);
        let mut acked = next;
        let mut ready = false;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.ends_with("READY") {
                ready = true;
            } else if let Some(n) = line.strip_prefix("ACK ") {
                let n: usize = n.parse().unwrap();
                assert_eq!(n, acked, "acks arrive in order");
                acked = n + 1;
                if acked - next >= kill_after {
                    break;
                }
            }
        }
        assert!(ready, "round {round}: the child did not start");
        child.kill().unwrap();
        child.wait().unwrap();
        // Steps the child acknowledged between our last read and the kill are still in the pipe.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ACK ") {
                let n: usize = n.parse().unwrap();
                assert_eq!(n, acked, "acks arrive in order");
                acked = n + 1;
            }
        }
        for s in next..acked {
            model_apply(&mut model, &step(s));
        }
        let got = dump(tmp.path());
        let mut with_in_flight = model.clone();
        model_apply(&mut with_in_flight, &step(acked));
        if got == model {
            next = acked;
        } else if got == with_in_flight {
            model = with_in_flight;
            next = acked + 1;
        } else {
            let missing: Vec<_> = model.keys().filter(|k| !got.contains_key(k)).collect();
            let extra: Vec<_> = got.keys().filter(|k| !model.contains_key(k)).collect();
            let changed: Vec<_> =
                model.keys().filter(|k| got.get(k).is_some_and(|g| Some(g) != model.get(k))).collect();
            panic!(
                "round {round}: state differs from the acknowledged model after SIGKILL \
                 (missing {missing:?}, extra {extra:?}, changed {changed:?})"
            );
        }
    }
    assert!(next > rounds, "the children made progress");
    // The optimizer did its work between the kills: sealed (and migrated) segments exist.
    let db = Database::open(tmp.path()).unwrap();
    let info = db.collection("c").unwrap().info().unwrap();
    let sealed = info.segments.iter().filter(|s| s.tier != quiver_engine::segment::Tier::Growing).count();
    assert!(sealed >= 1, "{:?}", info.segments);
}
