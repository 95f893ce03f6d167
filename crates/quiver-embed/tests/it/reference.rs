//! Against vectors and token ids computed by the Python sentence-transformers package
//! (`testdata/make_reference.py`), for each model the project ships a script for: all-MiniLM-L6-v2 (BERT, 384-d)
//! and all-mpnet-base-v2 (MPNet, 768-d).

use quiver_embed::{Embedder, SentenceEmbedder};
use serde::Deserialize;

use crate::{cosine, model, mpnet};

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

fn reference(model: &str) -> Reference {
    let path = format!("{}/testdata/reference_{model}.json", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_slice(&bytes).expect("reference JSON")
}

fn check_token_ids(r: &Reference, m: &SentenceEmbedder) {
    assert_eq!(m.max_tokens(), r.max_seq_length);
    for item in &r.items {
        let ids = m.tokenize(&item.text).expect("tokenize");
        assert_eq!(ids, item.token_ids, "token ids of {:?}", item.text);
    }
}

/// Every reference vector within `min_cosine` of ours, and no coordinate off by `max_abs` or more.
fn check_vectors(r: &Reference, m: &SentenceEmbedder, min_cosine: f64, max_abs: f32) {
    assert_eq!(m.dim(), r.dim);
    let texts: Vec<&str> = r.items.iter().map(|i| i.text.as_str()).collect();
    let got = m.embed(&texts).expect("embed");
    let mut worst = (f64::INFINITY, "");
    for (item, v) in r.items.iter().zip(&got) {
        let c = cosine(v, &item.vector);
        if c < worst.0 {
            worst = (c, &item.text);
        }
        assert!(c >= min_cosine, "cosine {c} < {min_cosine} for {:?}", item.text);
        let diff = v.iter().zip(&item.vector).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < max_abs, "largest coordinate difference {diff} for {:?}", item.text);
    }
    eprintln!("worst cosine 1 - {:.1e} for {:?}", 1.0 - worst.0, worst.1);
}

fn check_alone_equals_batched(r: &Reference, m: &SentenceEmbedder) {
    // Padding must not leak into the result: a text alone and in a batch of longer ones embed the same.
    let texts: Vec<&str> = r.items.iter().map(|i| i.text.as_str()).collect();
    let batched = m.embed(&texts).expect("embed");
    for (text, b) in texts.iter().zip(&batched) {
        let alone = m.embed(&[text]).expect("embed one");
        let c = cosine(&alone[0], b);
        assert!(c >= 0.99999, "alone vs batched cosine {c} for {text:?}");
    }
}

#[test]
fn token_ids_equal_the_reference_tokenizer() {
    check_token_ids(&reference("all-MiniLM-L6-v2"), model());
}

#[test]
fn embeddings_match_the_reference_with_cosine_at_least_0_9999() {
    check_vectors(&reference("all-MiniLM-L6-v2"), model(), 0.9999, 1e-3);
}

#[test]
fn one_at_a_time_equals_batched() {
    check_alone_equals_batched(&reference("all-MiniLM-L6-v2"), model());
}

#[test]
fn mpnet_token_ids_equal_the_reference_tokenizer() {
    // `<s> … </s>` around WordPiece ids, truncated at 384 tokens (the long text is cut).
    let r = reference("all-mpnet-base-v2");
    assert!(r.items.iter().any(|i| i.token_ids.len() == r.max_seq_length), "the reference has a truncated text");
    check_token_ids(&r, mpnet());
}

#[test]
fn mpnet_embeddings_match_the_reference_with_cosine_at_least_1_minus_1e5() {
    // The truncated 384-token text reaches every relative-position bucket, the log-spaced ones included.
    check_vectors(&reference("all-mpnet-base-v2"), mpnet(), 1.0 - 1e-5, 1e-3);
}

#[test]
fn mpnet_one_at_a_time_equals_batched() {
    check_alone_equals_batched(&reference("all-mpnet-base-v2"), mpnet());
}

/// A model loaded with int8 projections.
fn int8(dir: std::path::PathBuf) -> SentenceEmbedder {
    let options = quiver_embed::EmbedOptions { int8: true, ..Default::default() };
    SentenceEmbedder::load(&dir, &options).expect("load with int8")
}

#[test]
fn int8_embeddings_stay_within_cosine_0_995_of_the_reference() {
    // The accuracy gate of the int8 path (scales per group of 64 inputs, for weights and activations): every
    // reference sentence, both models, within 0.995 of sentence-transformers' f32 vectors.
    check_vectors(&reference("all-MiniLM-L6-v2"), &int8(crate::model_dir()), 0.995, 0.05);
    let mpnet_dir = std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME"))
        .join(".cache/quiver-models/all-mpnet-base-v2");
    check_vectors(&reference("all-mpnet-base-v2"), &int8(mpnet_dir), 0.995, 0.05);
}
