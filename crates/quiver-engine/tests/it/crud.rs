//! Points: upsert, get, delete, payload updates, scroll, count, validation.

use quiver_engine::{Error, PointId, PointInput, Selector};
use quiver_index::Metric;
use serde_json::json;

use crate::common::{mem_collection, payload, random_vectors};

#[test]
fn upsert_get_replace_delete() {
    let f = mem_collection(4, Metric::Cosine, |_| {});
    let c = &f.c;
    let s1 = c
        .upsert(vec![
            PointInput::new(1, vec![1.0, 0.0, 0.0, 0.0]).with_payload(payload(json!({"a": 1}))),
            PointInput::new(
                PointId::parse_uuid("550e8400-e29b-41d4-a716-446655440000").unwrap(),
                vec![0.0, 2.0, 0.0, 0.0],
            ),
        ])
        .unwrap();
    let got = c.get(&[PointId::Num(1), PointId::Num(9)], true, true).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload.as_ref().unwrap()["a"], json!(1));
    assert_eq!(got[0].vector.as_deref(), Some(&[1.0, 0.0, 0.0, 0.0][..]));
    // The UUID point's vector was normalised for cosine.
    let u = c.get(&["550e8400-e29b-41d4-a716-446655440000".parse().unwrap()], false, true).unwrap();
    assert_eq!(u[0].vector.as_deref(), Some(&[0.0, 1.0, 0.0, 0.0][..]));
    assert!(u[0].payload.is_none());
    // Replace: new vector and payload, still one point.
    let s2 = c.upsert(vec![PointInput::new(1, vec![0.0, 0.0, 1.0, 0.0])]).unwrap();
    assert!(s2 > s1);
    assert_eq!(c.count(None).unwrap(), 2);
    let got = c.get(&[PointId::Num(1)], true, true).unwrap();
    assert_eq!(got[0].payload.as_ref().unwrap().len(), 0);
    assert_eq!(got[0].vector.as_deref(), Some(&[0.0, 0.0, 1.0, 0.0][..]));
    c.delete(Selector::Ids(vec![PointId::Num(1), PointId::Num(77)])).unwrap();
    assert!(c.get(&[PointId::Num(1)], true, false).unwrap().is_empty());
    assert_eq!(c.count(None).unwrap(), 1);
}

#[test]
fn a_bad_point_rejects_the_whole_batch() {
    let f = mem_collection(3, Metric::Cosine, |c| c.max_payload_bytes = 100);
    let c = &f.c;
    let seq = c.applied_seq();
    let cases: Vec<(PointInput, &str)> = vec![
        (PointInput::new(5, vec![1.0, 2.0]), "vector"),
        (PointInput::new(5, vec![1.0, f32::NAN, 0.0]), "vector[1]"),
        (PointInput::new(5, vec![1.0, f32::INFINITY, 0.0]), "vector[1]"),
        (PointInput::new(5, vec![0.0, 0.0, 0.0]), "vector"),
        (PointInput::new(5, vec![1.0, 0.0, 0.0]).with_payload(payload(json!({"big": "x".repeat(200)}))), "payload"),
    ];
    for (bad, field) in cases {
        let batch = vec![PointInput::new(4, vec![1.0, 0.0, 0.0]), bad];
        match c.upsert(batch) {
            Err(Error::InvalidPoint { point, field: f, .. }) => {
                assert_eq!(point, "5");
                assert_eq!(f, field);
            }
            other => panic!("expected InvalidPoint for {field}, got {other:?}"),
        }
    }
    assert_eq!(c.applied_seq(), seq, "nothing was logged");
    assert_eq!(c.count(None).unwrap(), 0, "nothing was applied");
    assert!(c.upsert(vec![]).is_err());
}

#[test]
fn payload_updates_by_id_and_filter() {
    let f = mem_collection(2, Metric::Euclidean, |_| {});
    let c = &f.c;
    let pts = (0..10u64)
        .map(|i| PointInput::new(i, vec![i as f32, 0.0]).with_payload(payload(json!({"n": i, "meta": {"k": "v"}}))))
        .collect();
    c.upsert(pts).unwrap();
    c.set_payload(Selector::Ids(vec![PointId::Num(1)]), payload(json!({"color": "red"})), None).unwrap();
    c.set_payload(Selector::Ids(vec![PointId::Num(1)]), payload(json!({"x": 1})), Some("meta")).unwrap();
    for bad in ["", "a..b", ".a", "meta.", "[]"] {
        let e = c.set_payload(Selector::Ids(vec![PointId::Num(1)]), payload(json!({"y": 1})), Some(bad)).unwrap_err();
        assert!(e.to_string().contains("key"), "{bad:?}: {e}");
    }
    let p = c.get(&[PointId::Num(1)], true, true).unwrap().remove(0);
    assert_eq!(
        serde_json::Value::Object(p.payload.unwrap()),
        json!({"n": 1, "color": "red", "meta": {"k": "v", "x": 1}})
    );
    assert_eq!(p.vector.unwrap(), vec![1.0, 0.0], "payload updates keep the vector");
    c.delete_payload_keys(Selector::Ids(vec![PointId::Num(1)]), &["meta.k".to_owned(), "color".to_owned()]).unwrap();
    let p = c.get(&[PointId::Num(1)], true, false).unwrap().remove(0);
    assert_eq!(serde_json::Value::Object(p.payload.unwrap()), json!({"n": 1, "meta": {"x": 1}}));
    c.overwrite_payload(Selector::Ids(vec![PointId::Num(2)]), payload(json!({"only": true}))).unwrap();
    c.clear_payload(Selector::Ids(vec![PointId::Num(3)])).unwrap();
    assert_eq!(c.get(&[PointId::Num(2)], true, false).unwrap()[0].payload.as_ref().unwrap().len(), 1);
    assert!(c.get(&[PointId::Num(3)], true, false).unwrap()[0].payload.as_ref().unwrap().is_empty());
    match c.set_payload(Selector::Ids(vec![PointId::Num(99)]), payload(json!({"a": 1})), None) {
        Err(Error::PointNotFound { id }) => assert_eq!(id, "99"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.count(None).unwrap(), 10);
}

#[test]
fn scroll_pages_through_every_point_in_id_order() {
    let f = mem_collection(3, Metric::Dot, |_| {});
    let c = &f.c;
    let vs = random_vectors(57, 3, 1);
    let mut ids: Vec<u64> = (0..57).map(|i| i * 7 % 101).collect();
    c.upsert(ids.iter().zip(&vs).map(|(i, v)| PointInput::new(*i, v.clone())).collect()).unwrap();
    ids.sort();
    let mut seen = Vec::new();
    let mut offset = None;
    loop {
        let page = c.scroll(None, offset, 10, false, false).unwrap();
        seen.extend(page.points.iter().map(|r| r.id));
        match page.next_offset {
            Some(o) => offset = Some(o),
            None => break,
        }
    }
    assert_eq!(seen, ids.iter().map(|i| PointId::Num(*i)).collect::<Vec<_>>());
    assert!(c.scroll(None, None, 0, false, false).is_err());
}

/// Scroll merges the segments' rows in id order: against a model, over many segments (sealed, growing), points
/// replaced and deleted across them, UUIDs beside numbers, with and without a filter, pages of every size.
#[test]
fn scroll_merges_segments_in_id_order_against_a_model() {
    use rand::{Rng, SeedableRng};
    let f = mem_collection(4, Metric::Euclidean, |c| {
        c.index = quiver_engine::IndexConfig { kind: quiver_index::IndexKind::Flat, params: Default::default() };
        c.optimizer.merge_below_points = 0;
        c.optimizer.max_segments = 1000;
    });
    let c = &f.c;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(77);
    let mut model: std::collections::BTreeMap<PointId, bool> = Default::default(); // id -> even tag
    let uuid = |i: u64| PointId::parse_uuid(&format!("00000000-0000-4000-8000-{i:012x}")).unwrap();
    for round in 0..12 {
        let mut batch = Vec::new();
        for _ in 0..40 {
            let n = rng.random_range(0..150u64);
            let id = if n % 5 == 0 { uuid(n) } else { PointId::Num(n) };
            let even = rng.random_bool(0.5);
            let v: Vec<f32> = (0..4).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            batch.retain(|p: &PointInput| p.id != id);
            batch.push(PointInput { payload: Some(payload(json!({"even": even}))), ..PointInput::new(id, v) });
            model.insert(id, even);
        }
        c.upsert(batch).unwrap();
        let gone: Vec<PointId> = model.keys().copied().filter(|_| rng.random_bool(0.1)).collect();
        for id in &gone {
            model.remove(id);
        }
        if !gone.is_empty() {
            c.delete(Selector::Ids(gone)).unwrap();
        }
        if round % 3 != 2 {
            c.seal().unwrap();
        }
    }
    assert!(c.info().unwrap().segments.len() >= 8, "{:?}", c.info().unwrap().segments);
    let even: quiver_engine::Filter =
        serde_json::from_value(json!({"must": [{"key": "even", "match": {"value": true}}]})).unwrap();
    for filter in [None, Some(&even)] {
        let want: Vec<PointId> = model.iter().filter(|(_, e)| filter.is_none() || **e).map(|(id, _)| *id).collect();
        for limit in [1, 3, 7, 50, 1000] {
            let (mut seen, mut offset) = (Vec::new(), None);
            loop {
                let page = c.scroll(filter, offset, limit, true, false).unwrap();
                assert!(page.points.len() <= limit);
                seen.extend(page.points.iter().map(|r| r.id));
                match page.next_offset {
                    Some(o) => offset = Some(o),
                    None => break,
                }
            }
            assert_eq!(seen, want, "filter {}, limit {limit}", filter.is_some());
        }
    }
}

#[test]
fn ttl_hides_points_from_the_moment_they_expire() {
    let f = mem_collection(2, Metric::Euclidean, |_| {});
    let c = &f.c;
    let mut p = PointInput::new(1, vec![0.0, 0.0]);
    p.ttl_secs = Some(10);
    c.upsert(vec![p, PointInput::new(2, vec![1.0, 0.0])]).unwrap();
    assert_eq!(c.count(None).unwrap(), 2);
    f.clock.advance(9_999);
    assert_eq!(c.get(&[PointId::Num(1)], false, false).unwrap().len(), 1);
    f.clock.advance(1);
    assert!(c.get(&[PointId::Num(1)], false, false).unwrap().is_empty());
    assert_eq!(c.count(None).unwrap(), 1);
    let hits = c.search(&quiver_engine::SearchRequest::new(vec![0.0, 0.0], 5)).unwrap().hits;
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![PointId::Num(2)]);
    // The optimizer purges it through a logged delete.
    c.optimize().unwrap();
    assert_eq!(c.info().unwrap().optimizer.expired_purged, 1);
}

#[test]
fn scroll_ordered_by_a_payload_value() {
    use quiver_engine::FieldType;
    use quiver_engine::query::OrderBy;
    let f = mem_collection(2, Metric::Dot, |_| {});
    let c = &f.c;
    let rows = [
        (1, json!({"n": 5, "t": "2024-01-03T00:00:00Z"})),
        (2, json!({"n": [9, 1], "t": "2024-01-01T00:00:00Z"})),
        (3, json!({"n": 3.5, "t": "2024-01-02T00:00:00Z"})),
        (4, json!({"n": "7"})),
        (5, json!({})),
        (6, json!({"n": 7, "t": "2023-12-31T23:00:00-02:00"})),
    ];
    let pts = |rows: &[(u64, serde_json::Value)]| {
        rows.iter().map(|(id, p)| PointInput::new(*id, vec![1.0, 0.0]).with_payload(payload(p.clone()))).collect()
    };
    c.upsert(pts(&rows[..3])).unwrap();
    c.seal().unwrap();
    c.upsert(pts(&rows[3..])).unwrap();
    c.upsert(pts(&[(7, json!({"n": 0}))])).unwrap();
    c.delete(Selector::Ids(vec![PointId::Num(7)])).unwrap();
    let order = |key: &str, descending: bool, start: Option<serde_json::Value>| OrderBy {
        key: key.into(),
        descending,
        start_from: start,
    };
    let ids = |o: &OrderBy, limit: usize| -> Vec<u64> {
        c.scroll_ordered(None, o, limit, false, false)
            .unwrap()
            .into_iter()
            .map(|r| match r.record.id {
                PointId::Num(n) => n,
                PointId::Uuid(_) => unreachable!(),
            })
            .collect()
    };
    // Ascending by the smallest number (2 holds 1 and 9); strings and missing keys left out.
    assert_eq!(ids(&order("n", false, None), 10), [2, 3, 1, 6]);
    assert_eq!(ids(&order("n", true, None), 10), [2, 6, 1, 3]);
    assert_eq!(ids(&order("n", false, None), 2), [2, 3]);
    assert_eq!(ids(&order("n", false, Some(json!(4))), 10), [1, 6, 2]);
    assert_eq!(ids(&order("n", true, Some(json!(6))), 10), [1, 3, 2]);
    let f: quiver_engine::Filter = serde_json::from_value(json!({"must_not": [{"has_id": [1]}]})).unwrap();
    let filtered = c.scroll_ordered(Some(&f), &order("n", false, None), 10, true, false).unwrap();
    assert_eq!(filtered.len(), 3);
    assert!(filtered[0].record.payload.is_some());
    // Each point carries the value it was ordered by (2 holds 1 and 9: its smallest ascending).
    let values: Vec<f64> = filtered.iter().map(|r| r.order_value).collect();
    assert_eq!(values, [1.0, 3.5, 7.0], "{filtered:?}");
    let desc = c.scroll_ordered(None, &order("n", true, None), 1, false, false).unwrap();
    assert_eq!(desc[0].order_value, 9.0);
    // Datetimes once the key has a datetime index (instants compared, offsets honoured).
    assert_eq!(ids(&order("t", false, None), 10), Vec::<u64>::new());
    c.create_field_index("t", FieldType::Datetime).unwrap();
    assert_eq!(ids(&order("t", false, None), 10), [2, 6, 3, 1]);
    assert_eq!(ids(&order("t", false, Some(json!("2024-01-01T00:30:00Z"))), 10), [6, 3, 1]);
    let e = c.scroll_ordered(None, &order("t", false, Some(json!(3))), 10, false, false).unwrap_err().to_string();
    assert!(e.contains("order_by.start_from") && e.contains("datetime"), "{e}");
    let e = c.scroll_ordered(None, &order("n", false, None), 0, false, false).unwrap_err().to_string();
    assert!(e.contains("limit"), "{e}");
}
