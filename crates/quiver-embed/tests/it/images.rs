//! EfficientNet-Lite0 image embeddings against PyTorch running the original weights file
//! (`testdata/make_image_reference.py`, images in `testdata/images/`).

use std::path::PathBuf;
use std::sync::OnceLock;

use quiver_embed::vision::{decode_image, pixels_to_input};
use quiver_embed::{EmbedError, EmbedOptions, Embedder, ImageEmbedder, Modality};
use serde::Deserialize;

use crate::cosine;

#[derive(Deserialize)]
struct Reference {
    dim: usize,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    file: String,
    exact_input: bool,
    vector: Vec<f32>,
}

fn reference() -> Reference {
    let path = format!("{}/testdata/reference_efficientnet-lite0.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}")))
        .expect("reference JSON")
}

fn image(file: &str) -> Vec<u8> {
    let path = format!("{}/testdata/images/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// EfficientNet-Lite0, loaded once: from `QUIVER_IMAGE_MODEL_DIR`, else `~/.cache/quiver-models/efficientnet-lite0`
/// (where `bash scripts/get-embed-model.sh efficientnet-lite0` puts it and `.ci/run` installs it).
pub fn lite0() -> &'static ImageEmbedder {
    static MODEL: OnceLock<ImageEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = std::env::var_os("QUIVER_IMAGE_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/quiver-models/efficientnet-lite0")
        });
        ImageEmbedder::load(&dir, &EmbedOptions::default()).unwrap_or_else(|e| {
            panic!(
                "these tests need efficientnet-lite0 in {}: run `bash scripts/get-embed-model.sh efficientnet-lite0` \
                 (or set QUIVER_IMAGE_MODEL_DIR). {e}",
                dir.display()
            )
        })
    })
}

#[test]
fn the_network_matches_pytorch_on_the_same_pixels() {
    let r = reference();
    let m = lite0();
    assert_eq!((m.dim(), m.modality()), (r.dim, Modality::Image));
    let exact: Vec<&Item> = r.items.iter().filter(|i| i.exact_input).collect();
    assert!(exact.len() >= 2);
    let inputs = exact
        .iter()
        .map(|i| {
            let img = decode_image(&image(&i.file)).expect("decode");
            assert_eq!(img.dimensions(), (224, 224));
            pixels_to_input(img.as_raw(), 224, m.config())
        })
        .collect();
    let got = m.embed_prepared(inputs).expect("embed");
    for (item, v) in exact.iter().zip(got.chunks_exact(m.dim())) {
        let c = cosine(v, &item.vector);
        let diff = v.iter().zip(&item.vector).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        eprintln!("{}: cosine 1 - {:.1e}, largest difference {diff:.1e}", item.file, 1.0 - c);
        assert!(c >= 1.0 - 1e-5, "{}: cosine {c}", item.file);
        assert!(diff < 1e-3, "{}: largest coordinate difference {diff}", item.file);
    }
}

#[test]
fn the_whole_pipeline_is_close_to_pil_and_pytorch() {
    // Decoders (JPEG's IDCT, WebP) and bicubic resamplers differ a little between the image crate and PIL, so the
    // bound is looser than the network's; a wrong crop, channel order or scaling lands far below it.
    let r = reference();
    let m = lite0();
    let files: Vec<&Item> = r.items.iter().filter(|i| !i.exact_input).collect();
    let bytes: Vec<Vec<u8>> = files.iter().map(|i| image(&i.file)).collect();
    let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let got = m.embed_images(&refs).expect("embed");
    for (item, v) in files.iter().zip(&got) {
        let c = cosine(v, &item.vector);
        eprintln!("{}: cosine {c:.4}", item.file);
        assert!(c >= 0.995, "{}: cosine {c}", item.file);
        assert!((crate::norm(v) - 1.0).abs() < 1e-5);
    }
    // One at a time gives what a batch gives.
    let alone = m.embed_images(&refs[..1]).expect("embed");
    assert!(cosine(&alone[0], &got[0]) > 1.0 - 1e-6);
}

#[test]
fn the_mirrored_cat_finds_the_cat_first() {
    let m = lite0();
    let names = ["cat.jpg", "coffee.jpg", "astronaut.webp", "rocket.jpg", "cat-mirrored.png"];
    let bytes: Vec<Vec<u8>> = names.iter().map(|n| image(n)).collect();
    let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let v = m.embed_images(&refs).expect("embed");
    let query = &v[4];
    let mut ranked: Vec<(f64, &str)> = (0..4).map(|i| (cosine(query, &v[i]), names[i])).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!("{ranked:?}");
    assert_eq!(ranked[0].1, "cat.jpg");
    assert!(ranked[0].0 > ranked[1].0 + 0.1, "{ranked:?}");
}

#[test]
fn text_and_bad_images_are_refused_naming_the_fault() {
    let m = lite0();
    let e = m.embed(&["a cat"]).unwrap_err();
    assert!(matches!(e, EmbedError::WrongInput { .. }) && e.is_user_error(), "{e}");
    assert!(e.to_string().contains("embeds images, not text"), "{e}");
    assert!(m.embed(&[]).expect("embed").is_empty());
    // A PNG cut short (a JPEG cut short decodes, its missing rows grey, as browsers show it).
    let good = image("cat-mirrored.png");
    let truncated = &good[..good.len() / 2];
    let e = m.embed_images(&[&good, truncated]).unwrap_err();
    assert!(matches!(e, EmbedError::BadImage { index: 1, .. }) && e.is_user_error(), "{e:?}");
    assert!(e.to_string().contains("cannot decode the Png image"), "{e}");
    let e = m.embed_images(&[b"GIF89a-but-not-really" as &[u8]]).unwrap_err();
    assert!(e.is_user_error(), "{e}");
}

#[test]
fn a_text_model_refuses_images() {
    let e = crate::model().embed_images(&[&image("cat.jpg")]).unwrap_err();
    assert!(e.to_string().contains("embeds text, not images"), "{e}");
    assert!(e.is_user_error());
}
