//! Against vectors and token ids computed by the Python sentence-transformers package
//! (`testdata/make_reference.py`).

use quiver_embed::Embedder;
use serde::Deserialize;

use crate::{cosine, model};

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    dim: usize,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    token_ids: Vec<u32>,
    vector: Vec<f32>,
}

fn reference() -> Reference {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/reference_all-MiniLM-L6-v2.json");
    let bytes = std::fs::read(path).expect("reference vectors");
    serde_json::from_slice(&bytes).expect("reference JSON")
}

#[test]
fn token_ids_equal_the_reference_tokenizer() {
    let r = reference();
    let m = model();
    assert_eq!(m.max_tokens(), r.max_seq_length);
    for item in &r.items {
        let ids = m.tokenize(&item.text).expect("tokenize");
        assert_eq!(ids, item.token_ids, "token ids of {:?}", item.text);
    }
}

#[test]
fn embeddings_match_the_reference_with_cosine_at_least_0_9999() {
    let r = reference();
    let m = model();
    assert_eq!(m.dim(), r.dim);
    let texts: Vec<&str> = r.items.iter().map(|i| i.text.as_str()).collect();
    let got = m.embed(&texts).expect("embed");
    let mut worst = (f64::INFINITY, "");
    for (item, v) in r.items.iter().zip(&got) {
        let c = cosine(v, &item.vector);
        if c < worst.0 {
            worst = (c, &item.text);
        }
        assert!(c >= 0.9999, "cosine {c} < 0.9999 for {:?}", item.text);
        let max_abs = v.iter().zip(&item.vector).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max_abs < 1e-3, "largest coordinate difference {max_abs} for {:?}", item.text);
    }
    eprintln!("worst cosine 1 - {:.1e} for {:?}", 1.0 - worst.0, worst.1);
}

#[test]
fn one_at_a_time_equals_batched() {
    // Padding must not leak into the result: a text alone and in a batch of longer ones embed the same.
    let r = reference();
    let m = model();
    let texts: Vec<&str> = r.items.iter().map(|i| i.text.as_str()).collect();
    let batched = m.embed(&texts).expect("embed");
    for (text, b) in texts.iter().zip(&batched) {
        let alone = m.embed(&[text]).expect("embed one");
        let c = cosine(&alone[0], b);
        assert!(c >= 0.99999, "alone vs batched cosine {c} for {text:?}");
    }
}
