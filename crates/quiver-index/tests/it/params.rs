use quiver_index::{Error, Params, SearchParams};

#[test]
fn parses_pairs_and_rejects_malformed_ones() {
    let p = Params::parse(["ef=10", " m = 16 "]).unwrap();
    assert_eq!(p.get("ef"), Some("10"));
    assert_eq!(p.get("m"), Some("16"));
    for bad in ["ef", "=3"] {
        assert!(matches!(Params::parse([bad]), Err(Error::InvalidParameter { .. })), "{bad}");
    }
    assert!(Params::parse(["ef=1", "ef=2"]).is_err(), "repeated key");
}

#[test]
fn typed_takes_check_range_and_unknown_keys_are_errors() {
    let mut p = Params::parse(["n=5", "x=abc"]).unwrap();
    assert_eq!(p.take_usize("n", 1, 10).unwrap(), Some(5));
    let err = p.take_usize("x", 1, 10).unwrap_err().to_string();
    assert!(err.contains("`x`") && err.contains("abc"), "{err}");
    let p = Params::parse(["efx=3"]).unwrap();
    let err = p.finish("hnsw index (search)", &["ef"]).unwrap_err();
    assert!(matches!(&err, Error::UnknownParameter { name, .. } if name == "efx"), "{err}");
    assert!(err.to_string().contains("known: ef"), "{err}");
}

#[test]
fn search_params_take_only_accepted_names() {
    let sp = SearchParams::from_params(Params::parse(["ef=40"]).unwrap(), "test", &["ef"]).unwrap();
    assert_eq!(sp.ef, Some(40));
    let err = SearchParams::from_params(Params::parse(["nprobe=4"]).unwrap(), "flat index (search)", &[]).unwrap_err();
    assert!(err.is_user_error());
    assert!(err.to_string().contains("nprobe"), "{err}");
}
