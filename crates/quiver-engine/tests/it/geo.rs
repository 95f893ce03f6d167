//! Geo filters through a collection, with and without a `geo` index, against a brute-force evaluator written
//! here from other formulas (law of cosines for distances, winding numbers for polygons).

use quiver_engine::{FieldType, Filter, PointId, PointInput};
use quiver_index::Metric;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::common::{mem_collection, payload};

const R: f64 = 6_371_008.8;

/// Whether (lon, lat) is inside a case's shape.
type Inside = Box<dyn Fn(f64, f64) -> bool>;

fn distance_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (a, b) = (lat1.to_radians(), lat2.to_radians());
    let c = a.sin() * b.sin() + a.cos() * b.cos() * (lon2 - lon1).to_radians().cos();
    R * c.clamp(-1.0, 1.0).acos()
}

/// Winding number of the closed ring around (x, y) (non-zero: inside).
fn winding(ring: &[(f64, f64)], x: f64, y: f64) -> i32 {
    let mut w = 0;
    for s in ring.windows(2) {
        let ((x0, y0), (x1, y1)) = (s[0], s[1]);
        let side = (x1 - x0) * (y - y0) - (x - x0) * (y1 - y0);
        if y0 <= y && y1 > y && side > 0.0 {
            w += 1;
        } else if y0 > y && y1 <= y && side < 0.0 {
            w -= 1;
        }
    }
    w
}

#[test]
fn geo_filters_match_a_brute_force_evaluator_with_and_without_an_index() {
    let f = mem_collection(2, Metric::Euclidean, |cfg| cfg.optimizer.seal_points = 300);
    let c = &f.c;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut pts: Vec<(u64, Vec<(f64, f64)>)> = Vec::new();
    let mut inputs = Vec::new();
    for id in 0..1000u64 {
        // Mostly around Europe, some anywhere, some near the antimeridian; some points hold two locations.
        let one = |rng: &mut ChaCha8Rng| match rng.random_range(0..10) {
            0..=5 => (rng.random_range(-10.0..30.0), rng.random_range(35.0..60.0)),
            6 | 7 => (rng.random_range(-180.0..180.0), rng.random_range(-90.0..90.0)),
            _ => (
                rng.random_range(175.0..180.0) * if rng.random_bool(0.5) { 1.0 } else { -1.0 },
                rng.random_range(-5.0..5.0),
            ),
        };
        let locs: Vec<(f64, f64)> = (0..if id % 7 == 0 { 2 } else { 1 }).map(|_| one(&mut rng)).collect();
        let value: Value = if locs.len() == 1 {
            json!({"lon": locs[0].0, "lat": locs[0].1})
        } else {
            Value::Array(locs.iter().map(|(lon, lat)| json!({"lon": lon, "lat": lat})).collect())
        };
        let loc = if id % 50 == 0 { json!("not a point") } else { value };
        if id % 50 != 0 {
            pts.push((id, locs));
        }
        inputs.push(PointInput::new(id, vec![id as f32, 0.0]).with_payload(payload(json!({"loc": loc}))));
    }
    c.upsert(inputs).unwrap();
    c.seal().unwrap();
    let square = |lon: f64, lat: f64, d: f64| {
        vec![(lon - d, lat - d), (lon + d, lat - d), (lon + d, lat + d), (lon - d, lat + d), (lon - d, lat - d)]
    };
    let ring_json = |r: &[(f64, f64)]| json!({"points": r.iter().map(|(lon, lat)| json!({"lon": lon, "lat": lat})).collect::<Vec<_>>()});
    let mut cases: Vec<(Value, Inside)> = Vec::new();
    for (lon, lat, radius) in [
        (13.4, 52.5, 500_000.0),
        (179.5, 0.0, 300_000.0),
        (0.0, 89.0, 400_000.0),
        (5.0, 45.0, 0.0),
        (10.0, 50.0, 3_000_000.0),
    ] {
        cases.push((
            json!({"geo_radius": {"center": {"lon": lon, "lat": lat}, "radius": radius}}),
            Box::new(move |x, y| distance_m(lon, lat, x, y) <= radius),
        ));
    }
    for (l, t, r, b) in [(0.0, 55.0, 20.0, 40.0), (170.0, 5.0, -170.0, -5.0), (-180.0, 90.0, 180.0, -90.0)] {
        cases.push((
            json!({"geo_bounding_box": {"top_left": {"lon": l, "lat": t}, "bottom_right": {"lon": r, "lat": b}}}),
            Box::new(move |x, y| (b..=t).contains(&y) && if l <= r { (l..=r).contains(&x) } else { x >= l || x <= r }),
        ));
    }
    let (outer, hole) = (square(10.0, 48.0, 8.0), square(10.0, 48.0, 3.0));
    let (o2, h2) = (outer.clone(), hole.clone());
    cases.push((
        json!({"geo_polygon": {"exterior": ring_json(&outer), "interiors": [ring_json(&hole)]}}),
        Box::new(move |x, y| winding(&o2, x, y) != 0 && winding(&h2, x, y) == 0),
    ));
    let mut matched = 0;
    for indexed in [false, true] {
        if indexed {
            c.create_field_index("loc", FieldType::Geo).unwrap();
        }
        for (cond, inside) in &cases {
            let mut cond = cond.clone();
            cond["key"] = json!("loc");
            let filter: Filter = serde_json::from_value(json!({"must": [cond]})).unwrap();
            let mut want: Vec<u64> =
                pts.iter().filter(|(_, locs)| locs.iter().any(|&(x, y)| inside(x, y))).map(|(id, _)| *id).collect();
            want.sort_unstable();
            let got = c.count(Some(&filter)).unwrap();
            assert_eq!(got, want.len() as u64, "indexed {indexed}: {cond}");
            let mut ids: Vec<u64> = c
                .scroll(Some(&filter), None, 2000, false, false)
                .unwrap()
                .points
                .into_iter()
                .map(|r| match r.id {
                    PointId::Num(n) => n,
                    PointId::Uuid(_) => unreachable!(),
                })
                .collect();
            ids.sort_unstable();
            assert_eq!(ids, want, "indexed {indexed}: {cond}");
            matched += want.len();
        }
    }
    assert!(matched > 1000, "the shapes must hold points to be a test: {matched}");
}

#[test]
fn bad_geo_conditions_name_what_is_wrong() {
    for (cond, needle) in [
        (json!({"key": "l", "geo_radius": {"center": {"lon": 0, "lat": 91}, "radius": 1}}), "geo_radius.center"),
        (json!({"key": "l", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": -5}}), "geo_radius.radius"),
        (json!({"key": "l", "geo_radius": {"center": {"lon": 0, "lat": 0}}}), "radius"),
        (
            json!({"key": "l", "geo_bounding_box": {"top_left": {"lon": 0, "lat": 0}, "bottom_right": {"lon": 1, "lat": 5}}}),
            "top_left.lat",
        ),
        (
            json!({"key": "l", "geo_polygon": {"exterior": {"points": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 0, "lat": 0}]}}}),
            "at least 4",
        ),
        (
            json!({"key": "l", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 1}, "match": {"value": 1}}),
            "one operator",
        ),
    ] {
        let msg = match serde_json::from_value::<Filter>(json!({"must": [cond.clone()]})) {
            Err(e) => e.to_string(),
            Ok(f) => f.validate(16).unwrap_err().to_string(),
        };
        assert!(msg.contains(needle), "{cond}: {msg:?} lacks {needle:?}");
    }
}
