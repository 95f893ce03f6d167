//! The change feed: ordering, completeness, retention, reopen, listeners, TTL purges.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use quiver_engine::ops::{Operation, PointWrite};
use quiver_engine::{
    CLOSED_SEQ, Change, Collection, CollectionConfig, Database, Error, FieldType, Filter, Payload, PointId, PointInput,
    Selector,
};
use quiver_index::Metric;
use serde_json::json;

use crate::common::{mem_collection, payload};

type Model = BTreeMap<PointId, (Vec<f32>, Payload)>;

fn dump(c: &Collection) -> Model {
    let page = c.scroll(None, None, 100_000, true, true).unwrap();
    page.points.into_iter().map(|r| (r.id, (r.vector.unwrap(), r.payload.unwrap()))).collect()
}

/// Applies a change to a model of the collection, as a follower would.
fn follow(m: &mut Model, ch: &Change) {
    match ch.op.as_ref() {
        Operation::Upsert(points) => {
            for p in points {
                m.insert(p.id, (p.vector.clone(), p.payload.clone()));
            }
        }
        Operation::Delete(ids) => {
            for id in ids {
                m.remove(id);
            }
        }
        Operation::CreateFieldIndex { .. } | Operation::DropFieldIndex { .. } => {}
    }
}

fn all_changes(c: &Collection, after: u64, page: usize) -> Vec<Change> {
    let mut out = Vec::new();
    let mut after = after;
    loop {
        let got = c.changes_since(after, page).unwrap();
        assert!(got.len() <= page);
        let Some(last) = got.last() else { return out };
        after = last.seq;
        out.extend(got);
    }
}

#[test]
fn every_write_is_in_the_feed_in_order_and_a_follower_converges() {
    let f = mem_collection(2, Metric::Euclidean, |c| c.optimizer.seal_points = 4);
    let c = &f.c;
    let mut seqs = Vec::new();
    seqs.push(c.create_field_index("color", FieldType::Keyword).unwrap());
    for i in 0..6u64 {
        seqs.push(
            c.upsert(vec![
                PointInput::new(i, vec![i as f32, 1.0]).with_payload(payload(json!({"color": "red", "i": i}))),
                PointInput::new(100 + i, vec![1.0, i as f32]),
            ])
            .unwrap(),
        );
    }
    seqs.push(c.delete(Selector::Ids(vec![PointId::Num(2), PointId::Num(999)])).unwrap());
    seqs.push(c.set_payload(Selector::Ids(vec![PointId::Num(3)]), payload(json!({"color": "blue"})), None).unwrap());
    // The optimizer's seal/merge rewrites are not operations: the feed only has writes.
    c.optimize().unwrap();
    let red: Filter = serde_json::from_value(json!({"must": [{"key": "color", "match": {"value": "red"}}]})).unwrap();
    seqs.push(c.delete(Selector::Filter(red)).unwrap());
    seqs.push(c.delete_payload_keys(Selector::Ids(vec![PointId::Num(3)]), &["i".to_owned()]).unwrap());
    seqs.push(c.drop_field_index("color").unwrap());
    assert_eq!(c.applied_seq(), *seqs.last().unwrap());

    let changes = all_changes(c, 0, 3);
    assert_eq!(changes.iter().map(|ch| ch.seq).collect::<Vec<_>>(), seqs);
    assert!(
        matches!(changes[0].op.as_ref(), Operation::CreateFieldIndex { key, ty: FieldType::Keyword } if key == "color")
    );
    // A delete by filter is logged as the ids it resolved to; a payload update as the full point.
    let Operation::Delete(ids) = changes[9].op.as_ref() else { panic!("{:?}", changes[9]) };
    let mut ids = ids.clone();
    ids.sort();
    assert_eq!(ids, [0u64, 1, 4, 5].map(PointId::Num));
    let Operation::Upsert(p) = changes[8].op.as_ref() else { panic!("{:?}", changes[8]) };
    assert_eq!(p[0].id, PointId::Num(3));
    assert_eq!(p[0].vector, vec![3.0, 1.0]);
    assert_eq!(p[0].payload, payload(json!({"color": "blue", "i": 3})));
    assert!(matches!(changes.last().unwrap().op.as_ref(), Operation::DropFieldIndex { key } if key == "color"));

    let mut model = Model::new();
    for ch in &changes {
        follow(&mut model, ch);
    }
    assert_eq!(model, dump(c));
    // From the middle, and the present.
    let tail = c.changes_since(seqs[7], 100).unwrap();
    assert_eq!(tail.iter().map(|ch| ch.seq).collect::<Vec<_>>(), &seqs[8..]);
    assert!(c.changes_since(c.applied_seq(), 10).unwrap().is_empty());
    let err = c.changes_since(c.applied_seq() + 1, 10).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument { field, .. } if field == "after"), "{err}");
    assert!(err.is_user_error());
    assert!(matches!(c.changes_since(0, 0), Err(Error::InvalidArgument { field, .. }) if field == "max"));
}

#[test]
fn a_small_ring_drops_the_oldest_and_reports_the_gap() {
    let f = mem_collection(4, Metric::Euclidean, |c| c.change_feed_bytes = 2_000);
    let c = &f.c;
    // Each upsert of one 4-d point with a small payload encodes to well under 100 bytes (+64 overhead).
    for i in 0..100u64 {
        c.upsert(vec![PointInput::new(i, vec![i as f32; 4]).with_payload(payload(json!({"i": i})))]).unwrap();
    }
    let err = c.changes_since(0, 1000).unwrap_err();
    let Error::ChangesGone { requested: 0, oldest } = err else { panic!("{err}") };
    assert!(err.is_user_error());
    assert!(oldest > 50 && oldest <= 100, "{oldest}");
    assert_eq!(c.changes_oldest(), oldest);
    let info = c.info().unwrap();
    assert_eq!(info.change_feed_oldest, oldest);
    assert!(info.change_feed_bytes <= 2_000 && info.change_feed_bytes > 1_000, "{}", info.change_feed_bytes);
    assert!(matches!(c.changes_since(oldest - 2, 10), Err(Error::ChangesGone { .. })));
    // Everything from the oldest retained on is complete.
    let tail = all_changes(c, oldest - 1, 7);
    assert_eq!(tail.iter().map(|ch| ch.seq).collect::<Vec<_>>(), (oldest..=100).collect::<Vec<_>>());
    let Operation::Upsert(p) = tail.last().unwrap().op.as_ref() else { panic!() };
    assert_eq!(p[0].id, PointId::Num(99));
}

#[test]
fn a_disabled_feed_serves_only_the_present() {
    let f = mem_collection(2, Metric::Euclidean, |c| c.change_feed_bytes = 0);
    let s = f.c.upsert(vec![PointInput::new(1, vec![1.0, 0.0])]).unwrap();
    assert!(f.c.changes_since(s, 10).unwrap().is_empty());
    assert!(
        matches!(f.c.changes_since(s - 1, 10), Err(Error::ChangesGone { requested, oldest }) if requested == s - 1 && oldest == s + 1)
    );
}

#[test]
fn after_a_reopen_the_feed_holds_the_wal_tail_above_the_checkpoint() {
    let f = mem_collection(2, Metric::Euclidean, |_| {});
    let c = &f.c;
    for i in 0..5u64 {
        c.upsert(vec![PointInput::new(i, vec![i as f32, 0.0])]).unwrap();
    }
    assert!(c.seal().unwrap());
    let checkpoint = c.info().unwrap().wal_checkpoint;
    assert_eq!(checkpoint, 5);
    c.delete(Selector::Ids(vec![PointId::Num(1)])).unwrap();
    c.set_payload(Selector::Ids(vec![PointId::Num(2)]), payload(json!({"x": 1})), None).unwrap();
    c.upsert(vec![PointInput::new(7, vec![7.0, 0.0])]).unwrap();
    let before = c.changes_since(checkpoint, 100).unwrap();
    assert_eq!(before.len(), 3);
    c.flush().unwrap();
    let again = f.reopen().unwrap();
    let after = again.changes_since(checkpoint, 100).unwrap();
    assert_eq!(after, before);
    assert!(matches!(again.changes_since(0, 10), Err(Error::ChangesGone { requested: 0, oldest: 6 })));
    // New writes continue the feed.
    let s = again.upsert(vec![PointInput::new(8, vec![8.0, 0.0])]).unwrap();
    assert_eq!(s, 9);
    assert_eq!(again.changes_since(8, 10).unwrap().iter().map(|ch| ch.seq).collect::<Vec<_>>(), [9]);
}

#[test]
fn replicated_operations_are_in_the_feed_with_their_sequence_numbers() {
    let f = mem_collection(2, Metric::Euclidean, |_| {});
    let op = Operation::Upsert(vec![PointWrite {
        id: PointId::Num(1),
        vector: vec![1.0, 2.0],
        more: Vec::new(),
        sparse: Vec::new(),
        payload: Payload::new(),
        created_ms: 1,
        expires_ms: 0,
    }]);
    assert!(f.c.apply_replicated(10, &op).unwrap());
    assert!(f.c.apply_replicated(20, &Operation::Delete(vec![PointId::Num(1)])).unwrap());
    assert!(!f.c.apply_replicated(20, &op).unwrap());
    let got = f.c.changes_since(0, 10).unwrap();
    assert_eq!(got.iter().map(|ch| ch.seq).collect::<Vec<_>>(), [10, 20]);
    assert_eq!(*got[0].op, op);
    // Sequence numbers that never existed are not a gap.
    assert_eq!(f.c.changes_since(15, 10).unwrap().len(), 1);
}

#[test]
fn listeners_hear_every_applied_operation_and_the_close() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Database::open(tmp.path()).unwrap();
    let mut cfg = CollectionConfig::new(2, Metric::Euclidean);
    cfg.optimizer.interval_ms = 0;
    let c = db.create_collection("c", cfg).unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    let id = c.subscribe(Arc::new(move |seq| h.lock().unwrap().push(seq)));
    let count = Arc::new(AtomicU64::new(0));
    let n = count.clone();
    let other = c.subscribe(Arc::new(move |_| {
        n.fetch_add(1, Ordering::Relaxed);
    }));
    assert_ne!(id, other);
    let s1 = c.upsert(vec![PointInput::new(1, vec![1.0, 0.0])]).unwrap();
    let s2 = c.delete(Selector::Ids(vec![PointId::Num(1)])).unwrap();
    // A write that changes nothing (a delete of no ids) is no operation: nobody is called.
    c.delete(Selector::Ids(vec![])).unwrap();
    assert_eq!(*heard.lock().unwrap(), [s1, s2]);
    assert!(c.unsubscribe(other));
    assert!(!c.unsubscribe(other));
    let s3 = c.upsert(vec![PointInput::new(2, vec![1.0, 0.0])]).unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 2);
    // Concurrent writers: every sequence number is heard once.
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let c = c.clone();
            s.spawn(move || {
                for i in 0..25u64 {
                    c.upsert(vec![PointInput::new(1000 + t * 100 + i, vec![1.0, 1.0])]).unwrap();
                }
            });
        }
    });
    let mut got = heard.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, (s1..=s3 + 100).collect::<Vec<_>>());
    db.drop_collection("c").unwrap();
    assert_eq!(*heard.lock().unwrap().last().unwrap(), CLOSED_SEQ);
    assert_eq!(heard.lock().unwrap().iter().filter(|s| **s == CLOSED_SEQ).count(), 1);
    assert!(matches!(c.changes_since(0, 1), Err(Error::Closed { .. })));
    // A listener subscribing after the close hears it at once.
    let late = Arc::new(AtomicU64::new(0));
    let l = late.clone();
    c.subscribe(Arc::new(move |seq| l.store(seq, Ordering::Relaxed)));
    assert_eq!(late.load(Ordering::Relaxed), CLOSED_SEQ);
}

#[test]
fn a_ttl_purge_is_in_the_feed_as_a_delete() {
    let f = mem_collection(2, Metric::Euclidean, |_| {});
    let c = &f.c;
    let mut p = PointInput::new(5, vec![1.0, 0.0]);
    p.ttl_secs = Some(10);
    let s = c.upsert(vec![p, PointInput::new(6, vec![0.0, 1.0])]).unwrap();
    let Operation::Upsert(w) = c.changes_since(s - 1, 1).unwrap()[0].op.as_ref().clone() else { panic!() };
    assert_eq!(w[0].expires_ms, 1_700_000_000_000 + 10_000);
    f.clock.advance(10_001);
    c.optimize().unwrap();
    let after = c.changes_since(s, 10).unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].seq, s + 1);
    assert_eq!(*after[0].op, Operation::Delete(vec![PointId::Num(5)]));
    assert_eq!(c.info().unwrap().optimizer.expired_purged, 1);
}
