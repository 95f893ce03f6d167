use quiver_index::dataset::{
    ByteRows, Dataset, IntRows, read_bvecs, read_fvecs, read_ivecs, write_bvecs, write_fvecs, write_ivecs,
};
use quiver_index::{Error, VectorSet};

fn row_of(err: &Error) -> usize {
    match err {
        Error::Dataset { row, .. } => *row,
        other => panic!("expected a dataset error, got {other:?}"),
    }
}

#[test]
fn round_trips_all_three_formats() {
    let dir = tempfile::tempdir().unwrap();
    let v = VectorSet::from_flat(3, vec![1.0, 2.0, 3.0, -4.0, 5.5, 6.0]).unwrap();
    write_fvecs(dir.path().join("a.fvecs"), &v).unwrap();
    assert_eq!(read_fvecs(dir.path().join("a.fvecs")).unwrap(), v);
    let i = IntRows { dim: 2, data: vec![1, -2, 3, 4] };
    write_ivecs(dir.path().join("a.ivecs"), &i).unwrap();
    assert_eq!(read_ivecs(dir.path().join("a.ivecs")).unwrap(), i);
    let b = ByteRows { dim: 4, data: vec![0, 1, 254, 255, 9, 8, 7, 6] };
    write_bvecs(dir.path().join("a.bvecs"), &b).unwrap();
    assert_eq!(read_bvecs(dir.path().join("a.bvecs")).unwrap(), b);
}

#[test]
fn malformed_files_name_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.fvecs");
    let v = VectorSet::from_flat(4, (0..12).map(|x| x as f32).collect()).unwrap();
    write_fvecs(&path, &v).unwrap();
    let good = std::fs::read(&path).unwrap();

    // Truncated inside the last row, and inside a row header.
    for cut in [good.len() - 3, 2 * 20 + 2] {
        std::fs::write(&path, &good[..cut]).unwrap();
        let err = read_fvecs(&path).unwrap_err();
        assert_eq!(row_of(&err), 2, "cut at {cut}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("bad.fvecs") && msg.contains("truncated"), "{msg}");
    }

    // A row with another dimension.
    let mut wrong = good.clone();
    wrong[20..24].copy_from_slice(&3i32.to_le_bytes());
    std::fs::write(&path, &wrong).unwrap();
    let err = read_fvecs(&path).unwrap_err();
    assert_eq!(row_of(&err), 1);
    assert!(err.to_string().contains("differs"), "{err}");

    // Zero or negative dimension fields.
    for d in [0i32, -5] {
        let mut w = good.clone();
        w[0..4].copy_from_slice(&d.to_le_bytes());
        std::fs::write(&path, &w).unwrap();
        assert_eq!(row_of(&read_fvecs(&path).unwrap_err()), 0);
    }

    // A NaN component.
    let mut nan = good.clone();
    nan[44 + 8..44 + 12].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, &nan).unwrap();
    let err = read_fvecs(&path).unwrap_err();
    assert_eq!(row_of(&err), 2);
    assert!(err.to_string().contains("component 2"), "{err}");

    // Empty file and missing file.
    std::fs::write(&path, b"").unwrap();
    assert!(read_fvecs(&path).unwrap_err().to_string().contains("no rows"));
    let err = read_fvecs(dir.path().join("missing.fvecs")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }) && !err.is_user_error());
}

#[test]
fn loads_the_committed_real_set() {
    let set = crate::support::small_set();
    assert_eq!(set.base.dim(), 384);
    assert_eq!(set.base.len(), 3000);
    assert_eq!(set.queries.len(), 200);
    assert_eq!(set.groundtruth.dim, 100);
    // Unit-norm vectors, as make_dataset.py writes them.
    for v in set.base.iter().take(50) {
        let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-3, "norm {n}");
    }
    let limited = Dataset::load(crate::support::testdata_dir(), Some(10)).unwrap();
    assert_eq!(limited.queries.len(), 10);
    assert_eq!(limited.groundtruth.len(), 10);
}
