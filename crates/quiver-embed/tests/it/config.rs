//! Reading a model directory's configuration files.

use quiver_embed::{Activation, EmbedError, ModelConfig, Pooling};

const BERT: &str = r#"{"model_type":"bert","vocab_size":100,"hidden_size":8,"num_hidden_layers":1,
    "num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":512}"#;

#[test]
fn the_default_model_reads_as_mean_pooling_normalised_256_tokens() {
    let c = ModelConfig::load(&crate::model_dir()).expect("config");
    assert_eq!(c.pooling, Pooling::Mean);
    assert!(c.normalize);
    assert_eq!(c.max_tokens, 256);
    assert_eq!(c.bert.hidden_size, 384);
    assert_eq!(c.bert.hidden_act, Activation::Gelu);
}

#[test]
fn cls_pooling_without_normalize_and_defaults() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::write(dir.join("config.json"), BERT).expect("write");
    // No modules.json, no pooling config, no sentence_bert_config.json: a plain Hugging Face BERT.
    let c = ModelConfig::load(dir).expect("config");
    assert_eq!((c.pooling, c.normalize, c.max_tokens), (Pooling::Mean, false, 512));

    std::fs::create_dir_all(dir.join("pool")).expect("mkdir");
    std::fs::write(dir.join("pool/config.json"), br#"{"pooling_mode_cls_token": true}"#).expect("write");
    std::fs::write(
        dir.join("modules.json"),
        br#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
             {"idx":1,"name":"1","path":"pool","type":"sentence_transformers.models.Pooling"}]"#,
    )
    .expect("write");
    std::fs::write(dir.join("sentence_bert_config.json"), br#"{"max_seq_length": 4096}"#).expect("write");
    let c = ModelConfig::load(dir).expect("config");
    assert_eq!(c.pooling, Pooling::Cls);
    assert!(!c.normalize);
    assert_eq!(c.max_tokens, 512, "capped at max_position_embeddings");
}

#[test]
fn a_dense_module_is_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::write(dir.join("config.json"), BERT).expect("write");
    std::fs::write(dir.join("modules.json"), br#"[{"path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#)
        .expect("write");
    let err = ModelConfig::load(dir).expect_err("dense");
    assert!(matches!(err, EmbedError::UnsupportedSetting { field: "type", .. }), "{err}");
    assert!(err.to_string().contains("modules.json") && err.to_string().contains("Dense"), "{err}");
}
