use crate::support::{random_vectors, small_set};
use proptest::prelude::*;
use quiver_index::{FlatIndex, HnswIndex, Metric, Params, SearchParams, Sq8, VectorIndex, VectorSet};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Inside the trained range every component decodes within half a step; the asymmetric distance equals
    /// the distance to the decoded vector.
    #[test]
    fn sq8_round_trip_error_is_bounded(seed in any::<u64>(), dim in 1usize..80, n in 1usize..40) {
        let data = random_vectors(seed, n, dim);
        let q = Sq8::train(&data);
        let mut code = vec![0u8; dim];
        let mut back = vec![0f32; dim];
        for v in data.iter() {
            q.encode_into(v, &mut code);
            q.decode_into(&code, &mut back);
            for d in 0..dim {
                prop_assert!((back[d] - v[d]).abs() <= q.max_error(d) * 1.0001 + 1e-6, "seed {seed} dim {d}: {} vs {}", back[d], v[d]);
            }
            let query = data.get(0);
            let prepared = q.query(query);
            let exact_to_decoded: f32 = query.iter().zip(&back).map(|(a, b)| a * b).sum();
            let got = -Sq8::distance(Metric::Dot, &prepared, &code, q.decoded_norm2(&code));
            prop_assert!((got - exact_to_decoded).abs() <= 1e-3 * (1.0 + exact_to_decoded.abs()), "seed {seed}: {got} vs {exact_to_decoded}");
            let l2: f32 = query.iter().zip(&back).map(|(a, b)| (a - b) * (a - b)).sum();
            let got = Sq8::distance(Metric::Euclidean, &prepared, &code, q.decoded_norm2(&code));
            prop_assert!((got - l2).abs() <= 1e-3 * (1.0 + l2), "seed {seed}: l2 {got} vs {l2}");
        }
    }
}

#[test]
fn sq8_clamps_values_outside_the_trained_range() {
    let q = Sq8::train(&VectorSet::from_rows(2, [[0.0, -1.0], [1.0, 1.0]]).unwrap());
    let mut code = [0u8; 2];
    q.encode_into(&[5.0, -9.0], &mut code);
    assert_eq!(code, [255, 0]);
}

fn recall(index: &dyn VectorIndex, oracle: &FlatIndex, queries: &VectorSet, sp: &SearchParams) -> f64 {
    let mut total = 0.0;
    for q in queries.iter() {
        let got = index.search(q, 10, sp, None).unwrap();
        let want = oracle.search(q, 10, &SearchParams::new(), None).unwrap();
        let limit = want[9].distance + 1e-5;
        total += got.iter().filter(|n| n.distance <= limit).count() as f64 / 10.0;
    }
    total / queries.len() as f64
}

#[test]
fn hnsw_sq8_with_rerank_loses_at_most_a_hundredth_of_recall() {
    let set = small_set();
    let ids: Vec<u64> = (0..set.base.len() as u64).collect();
    let oracle = FlatIndex::build(Metric::Cosine, set.base.clone(), ids.clone(), Params::new()).unwrap();
    let f32_graph = HnswIndex::build(Metric::Cosine, set.base.clone(), ids.clone(), Params::new()).unwrap();
    let sq8 =
        HnswIndex::build(Metric::Cosine, set.base.clone(), ids, Params::parse(["quantization=sq8"]).unwrap()).unwrap();
    for ef in [16usize, 32, 64] {
        let sp = SearchParams::new().with_ef(ef);
        let (a, b) = (recall(&f32_graph, &oracle, &set.queries, &sp), recall(&sq8, &oracle, &set.queries, &sp));
        eprintln!("ef {ef}: f32 {a:.4} sq8 {b:.4}");
        assert!(b >= a - 0.01, "ef {ef}: sq8 recall {b:.4} vs f32 {a:.4}");
    }
    // Reported distances are exact (rescored), and the codes survive serialisation.
    let back = HnswIndex::from_bytes(&sq8.to_bytes()).unwrap();
    for q in set.queries.iter().take(20) {
        let got = back.search(q, 5, &SearchParams::new(), None).unwrap();
        assert_eq!(got, sq8.search(q, 5, &SearchParams::new(), None).unwrap());
        let exact = oracle.search(q, 1, &SearchParams::new(), None).unwrap();
        assert!((got[0].distance - exact[0].distance).abs() < 1e-5);
    }
    assert!(sq8.memory_bytes() > f32_graph.memory_bytes(), "codes are held beside the f32 vectors");
}
