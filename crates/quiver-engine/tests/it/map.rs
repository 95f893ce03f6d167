//! Maps: the even sample, and the IVF cells placed among the points.

use quiver_engine::map::{LayoutMethod, MapRequest};
use quiver_engine::{IndexConfig, PointInput};
use quiver_index::{IndexKind, Metric};

use crate::common::{mem_collection, payload};

#[test]
fn sample_is_even_in_id_order_and_counts_what_the_filter_admits() {
    let f = mem_collection(4, Metric::Euclidean, |c| c.optimizer.seal_points = 40);
    let pts: Vec<PointInput> = (0..100u64)
        .map(|i| {
            let mut p = PointInput::new(i, vec![i as f32, 0.0, 1.0, 2.0]);
            p.payload = Some(payload(serde_json::json!({"odd": i % 2 == 1})));
            p
        })
        .collect();
    f.c.upsert(pts).unwrap();
    f.c.optimize().unwrap();
    // An overwrite lands in a newer segment: the sample holds the id once, with the new vector.
    f.c.upsert(vec![PointInput::new(50u64, vec![-1.0, 0.0, 0.0, 0.0])]).unwrap();
    let (total, rows) = f.c.sample(10, None, false, true).unwrap();
    assert_eq!(total, 100);
    let ids: Vec<String> = rows.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, ["0", "10", "20", "30", "40", "50", "60", "70", "80", "90"]);
    assert_eq!(rows[5].vector.as_deref(), Some(&[-1.0, 0.0, 0.0, 0.0][..]));
    let odd: quiver_engine::Filter =
        serde_json::from_value(serde_json::json!({"must": [{"key": "odd", "match": {"value": true}}]})).unwrap();
    let (total, rows) = f.c.sample(1000, Some(&odd), true, false).unwrap();
    assert_eq!((total, rows.len()), (50, 50));
    assert!(rows.iter().all(|r| r.payload.as_ref().unwrap()["odd"] == true && r.vector.is_none()));
}

#[test]
fn ivf_cells_sit_among_their_points() {
    let f = mem_collection(8, Metric::Euclidean, |c| {
        let mut params = std::collections::BTreeMap::new();
        params.insert("nlist".to_owned(), serde_json::Value::from(4));
        c.index = IndexConfig { kind: IndexKind::Ivf, params };
        c.optimizer.seal_points = 100;
    });
    // Four tight groups far apart.
    let pts: Vec<PointInput> = (0..400u64)
        .map(|i| {
            let g = (i % 4) as usize;
            let mut v = vec![0.0f32; 8];
            v[g] = 100.0;
            v[7] = (i / 4) as f32 * 0.01;
            PointInput::new(i, v)
        })
        .collect();
    f.c.upsert(pts).unwrap();
    f.c.seal().unwrap();
    f.c.optimize().unwrap();
    assert!(f.c.cell_centroids().is_some(), "the sealed segment has an IVF index");
    let req = MapRequest { sample: 400, method: LayoutMethod::Pca, ..MapRequest::default() };
    let m = f.c.map(&req).unwrap();
    assert_eq!(m.points.len(), 400);
    assert_eq!(m.cells.len(), 4);
    assert_eq!(m.cells.iter().map(|c| c.points).sum::<usize>(), 400);
    // Each cell sits on its group: the group's points are all within a hair of the cell's position.
    for c in &m.cells {
        let near = m.points.iter().filter(|p| (p.x - c.x).abs() < 0.05 && (p.y - c.y).abs() < 0.05).count();
        assert_eq!(near, 100, "cell at ({}, {})", c.x, c.y);
    }
    // Bad requests change nothing and name the field.
    let e = f.c.map(&MapRequest { sample: 0, ..MapRequest::default() }).unwrap_err().to_string();
    assert!(e.contains("sample"), "{e}");
    let e = f.c.map(&MapRequest { color_by: Some(String::new()), ..MapRequest::default() }).unwrap_err().to_string();
    assert!(e.contains("color_by"), "{e}");
}
