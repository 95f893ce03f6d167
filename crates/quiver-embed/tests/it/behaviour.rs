//! Behaviour that needs no reference: shapes, norms, order, truncation, edge inputs.

use quiver_embed::{EmbedError, EmbedOptions, Embedder, SentenceEmbedder};

use crate::{cosine, model, model_dir, norm};

#[test]
fn dimension_is_384_and_vectors_have_unit_norm() {
    let m = model();
    assert_eq!(m.dim(), 384);
    assert_eq!(m.max_tokens(), 256);
    let v = m.embed(&["hello world", "a second, longer sentence about something else"]).expect("embed");
    assert_eq!(v.len(), 2);
    for x in &v {
        assert_eq!(x.len(), 384);
        assert!((norm(x) - 1.0).abs() < 1e-5, "norm {}", norm(x));
        assert!(x.iter().all(|f| f.is_finite()));
    }
}

#[test]
fn empty_batch_gives_no_vectors() {
    let m = model();
    assert!(m.embed(&[]).expect("embed").is_empty());
    assert!(m.embed_flat(&[]).expect("embed").is_empty());
}

#[test]
fn empty_and_blank_texts_embed_like_cls_sep() {
    let m = model();
    assert_eq!(m.tokenize("").expect("tokenize"), vec![101, 102]);
    let v = m.embed(&["", "   \t\n "]).expect("embed");
    assert!((norm(&v[0]) - 1.0).abs() < 1e-5);
    // Whitespace alone tokenises to nothing, so it is the same input as "".
    assert!(cosine(&v[0], &v[1]) > 0.99999);
}

#[test]
fn long_texts_are_truncated_to_max_tokens() {
    let m = model();
    let long = "lorem ipsum dolor sit amet ".repeat(200);
    let ids = m.tokenize(&long).expect("tokenize");
    assert_eq!(ids.len(), 256);
    assert_eq!(ids[0], 101);
    assert_eq!(*ids.last().expect("ids"), 102);
    // What lies past the limit does not change the vector.
    let other = format!("{long} and then something completely different about rockets and volcanoes");
    let v = m.embed(&[&long, &other]).expect("embed");
    assert!(cosine(&v[0], &v[1]) > 0.999999);
}

#[test]
fn huge_text_is_cheap_and_equals_its_head() {
    // 4 MB of text: clipped before tokenising, so this takes milliseconds, and the vector is that of its head.
    let m = model();
    let head = "vectors are points in a space where distance means something. ".repeat(60);
    let huge = head.repeat(1000);
    let start = std::time::Instant::now();
    let v = m.embed(&[&huge, &head]).expect("embed");
    assert!(start.elapsed().as_secs_f64() < 20.0, "took {:?}", start.elapsed());
    assert!(cosine(&v[0], &v[1]) > 0.999999);
    assert_eq!(m.tokenize(&huge).expect("tokenize"), m.tokenize(&head).expect("tokenize"));
}

#[test]
fn a_huge_text_without_whitespace_does_not_panic() {
    let m = model();
    let word = "x".repeat(200_000);
    let v = m.embed(&[&word]).expect("embed");
    assert!((norm(&v[0]) - 1.0).abs() < 1e-5);
}

#[test]
fn order_is_preserved_when_batches_are_sorted_by_length() {
    // Varied lengths, more texts than one batch, batch size 3 so sorting moves texts across batches.
    let dir = model_dir();
    let m = SentenceEmbedder::load(&dir, &EmbedOptions { batch_size: 3, ..EmbedOptions::default() }).expect("load");
    let texts: Vec<String> =
        (0..11).map(|i| format!("text {i}: {}", "some words about topic number ".repeat((i * 7) % 11))).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let all = m.embed(&refs).expect("embed");
    for (i, t) in refs.iter().enumerate() {
        let alone = m.embed(&[t]).expect("embed one");
        assert!(cosine(&all[i], &alone[0]) > 0.99999, "text {i} came back out of place");
    }
    // The flat form is the same numbers.
    let flat = m.embed_flat(&refs).expect("embed flat");
    assert_eq!(flat.len(), refs.len() * m.dim());
    assert_eq!(&flat[..m.dim()], &all[0][..]);
}

#[test]
fn similar_sentences_are_closer_than_unrelated_ones() {
    let m = model();
    let v = m
        .embed(&["A cat sits on the mat.", "A kitten is resting on a rug.", "Stock markets fell sharply."])
        .expect("embed");
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
}

#[test]
fn batch_size_zero_is_an_invalid_option() {
    let err = SentenceEmbedder::load(&model_dir(), &EmbedOptions { batch_size: 0, ..EmbedOptions::default() })
        .expect_err("batch 0");
    assert!(matches!(err, EmbedError::InvalidOption { name: "batch_size", .. }), "{err}");
    assert!(err.is_user_error());
}

#[test]
fn the_embedder_is_shared_across_threads() {
    let m = model();
    let expected = m.embed(&["thread safety"]).expect("embed");
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let got = m.embed(&["thread safety"]).expect("embed");
                assert!(cosine(&got[0], &expected[0]) > 0.999999);
            });
        }
    });
}

#[test]
fn count_tokens_counts_word_pieces_without_special_tokens_or_truncation() {
    let m = model();
    assert_eq!(m.count_tokens("").expect("count"), 0);
    // `tokenize` adds [CLS] and [SEP]; `count_tokens` does not.
    let text = "The quick brown fox jumps over the lazy dog.";
    let with_specials = m.tokenize(text).expect("tokenize").len();
    assert_eq!(m.count_tokens(text).expect("count"), with_specials - 2);
    // Past the model's 256-token window nothing is cut off.
    let long = "word ".repeat(1000);
    assert_eq!(m.count_tokens(&long).expect("count"), 1000);
}

#[test]
fn load_model_gives_the_same_vectors_as_the_concrete_type() {
    let dyn_model = quiver_embed::load_model(&model_dir(), &crate::f32_options()).expect("load");
    assert_eq!(dyn_model.dim(), 384);
    let a = dyn_model.embed(&["a cat on a mat"]).expect("embed");
    let b = model().embed(&["a cat on a mat"]).expect("embed");
    assert!(cosine(&a[0], &b[0]) > 1.0 - 1e-9);
}

#[test]
fn int8_is_the_default_exactly_where_a_fast_kernel_runs() {
    if std::env::var_os(quiver_embed::INT8_ENV).is_some() {
        return; // the variable overrides the CPU's choice; nothing to check
    }
    let kernel = quiver_embed::int8::kernel();
    assert!(["amx", "vnni", "portable"].contains(&kernel), "{kernel}");
    assert_eq!(EmbedOptions::default().int8, kernel != "portable", "kernel {kernel}");
    assert_eq!(quiver_embed::int8_is_fast(), kernel != "portable");
    // Whatever the default, a text's int8 vector does not depend on the batch it is embedded in.
    let m =
        SentenceEmbedder::load(&model_dir(), &EmbedOptions { int8: true, batch_size: 4, ..EmbedOptions::default() })
            .expect("load int8");
    let texts = ["a cat on a mat", "dogs bark at night", "the stock market fell sharply on Tuesday", "tea", "x y z"];
    let all = m.embed(&texts).expect("embed");
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(m.embed(&[t]).expect("embed one")[0], all[i], "text {i}");
    }
}
