//! `quiver import COLLECTION FOLDER` on a folder of images: every `.jpg` / `.jpeg` / `.png` / `.webp` / `.gif` /
//! `.bmp` file under the folder (hidden files and folders skipped, in path order) becomes one point whose vector is
//! the collection's image model's embedding of it (EfficientNet-Lite0 unless the collection says otherwise), with
//! the payload `path` (relative to the folder, `/`-separated), `format` and `bytes`. The point id is a UUID derived
//! from the path ([`quiver_text::documents::file_id`]), so importing the folder again replaces each image in place;
//! an interrupted import is finished by running it again. Embedding runs on the server, or here with `--data`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use quiver_engine::{Database, PointInput};
use quiver_text::Content;
use serde_json::{Value, json};

use super::{Dest, HttpSink, ImportArgs, LocalModels, progress_bar};

/// File extensions read as images.
pub const EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];
/// The model a collection made by --create gets when none is named.
pub const DEFAULT_IMAGE_MODEL: &str = "efficientnet-lite0";
/// Images per batch (one request, or one embedding + write).
const BATCH_IMAGES: usize = 32;
/// Image bytes per batch.
const BATCH_BYTES: u64 = 8 << 20;

/// One image file: its id and payload, and its bytes.
struct Image {
    rel: String,
    bytes: Vec<u8>,
}

fn read_image(root: &Path, path: &Path) -> Result<Image> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let rel = path.strip_prefix(root).unwrap_or(path);
    let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    Ok(Image { rel, bytes })
}

fn payload(img: &Image) -> serde_json::Map<String, Value> {
    let format = img.rel.rsplit_once('.').map(|(_, x)| x.to_ascii_lowercase()).unwrap_or_default();
    let format = if format == "jpg" { "jpeg".to_string() } else { format };
    let mut m = serde_json::Map::new();
    m.insert("path".into(), Value::String(img.rel.clone()));
    m.insert("format".into(), Value::String(format));
    m.insert("bytes".into(), json!(img.bytes.len()));
    m
}

/// Where batches of images go.
enum ImageSink {
    Server(Box<HttpSink>),
    Data { db: Database, col: quiver_engine::Collection, model: std::sync::Arc<dyn quiver_embed::Embedder> },
}

/// Runs `quiver import` on a folder of images (`files`, as [`super::documents::find_files`] lists them).
pub(super) fn run(args: &ImportArgs, dest: Dest, files: Vec<PathBuf>) -> Result<()> {
    super::refuse_file_flags(args, "images")?;
    let root = &args.input;
    let model_name = args.embedding_model.clone().unwrap_or_else(|| DEFAULT_IMAGE_MODEL.to_string());
    let total: u64 = files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    let pb = progress_bar(total, 0);
    let target;
    let mut sink = match dest {
        Dest::Server(client) => {
            target = client.url().to_owned();
            let mut s = HttpSink {
                client: *client,
                collection: args.collection.clone(),
                create: args.create.then_some(args.distance),
                retries: args.retries,
                model: model_name,
            };
            s.prepare_texts(&pb)?;
            ImageSink::Server(Box::new(s))
        }
        Dest::Data(dir) => {
            target = format!("data:{}", dir.display());
            let db = Database::open(&dir).with_context(|| format!("opening the data directory {}", dir.display()))?;
            let models = LocalModels::new(args.models_dir.clone(), model_name);
            let (col, model) = models.open_text_collection(&db, &args.collection, args.create, &pb)?;
            ImageSink::Data { db, col, model }
        }
    };

    let started = Instant::now();
    let (mut done, mut bytes_done) = (0usize, 0u64);
    let mut batch: Vec<Image> = Vec::new();
    let mut batch_bytes = 0u64;
    let outcome = (|| -> Result<()> {
        for (i, f) in files.iter().enumerate() {
            let img = read_image(root, f)?;
            batch_bytes += img.bytes.len() as u64;
            batch.push(img);
            if batch.len() >= BATCH_IMAGES || batch_bytes >= BATCH_BYTES || i + 1 == files.len() {
                let images = std::mem::take(&mut batch);
                let n = images.len();
                write_batch(&mut sink, images, &pb)?;
                done += n;
                bytes_done += batch_bytes;
                batch_bytes = 0;
                pb.set_position(bytes_done);
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!("{done} images, {:.1} images/s", done as f64 / secs));
            }
        }
        Ok(())
    })();
    pb.finish_and_clear();
    outcome.with_context(|| format!("{done} images were imported before the error"))?;
    let secs = started.elapsed().as_secs_f64();
    if let ImageSink::Data { db, .. } = sink {
        db.close().context("closing the data directory")?;
    }
    println!(
        "imported {done} images into {} ({target}) in {secs:.2} s: {:.1} images/s",
        args.collection,
        done as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// The file a server's error names as `points[k]`, if any.
fn file_named(message: &str, images: &[Image]) -> Option<String> {
    let k: usize = message.split("points[").nth(1)?.split(']').next()?.parse().ok()?;
    images.get(k).map(|i| i.rel.clone())
}

fn write_batch(sink: &mut ImageSink, images: Vec<Image>, pb: &indicatif::ProgressBar) -> Result<()> {
    let first = &images[0].rel;
    match sink {
        ImageSink::Server(s) => {
            let b64 = base64::engine::general_purpose::STANDARD;
            let points: Vec<Value> = images
                .iter()
                .map(|img| {
                    json!({
                        "id": quiver_text::documents::file_id(&img.rel),
                        "image": b64.encode(&img.bytes),
                        "payload": payload(img),
                    })
                })
                .collect();
            let body = json!({ "points": points });
            let path = format!("/collections/{}/points?wait=true", crate::client::segment(&s.collection));
            s.send_retrying(crate::client::Method::PUT, &path, &body, pb).map(drop).map_err(|e| {
                let msg = e.to_string();
                match file_named(&msg, &images) {
                    Some(file) => anyhow!("{file}: {msg}"),
                    None => e.context(format!("importing the images from {first} on")),
                }
            })
        }
        ImageSink::Data { col, model, .. } => {
            let mut points = Vec::with_capacity(images.len());
            let mut inputs = Vec::with_capacity(images.len());
            for (i, img) in images.into_iter().enumerate() {
                let id = quiver_text::documents::file_id(&img.rel);
                points.push(PointInput {
                    payload: Some(payload(&img)),
                    ttl_secs: None,
                    ..PointInput::new(id, Vec::new())
                });
                inputs.push((i, img.rel, Content::Image(img.bytes)));
            }
            quiver_text::fill(model.as_ref(), &mut points, inputs)?;
            col.upsert(points)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_servers_error_is_traced_to_its_file() {
        let images = [Image { rel: "a.jpg".into(), bytes: vec![] }, Image { rel: "b/c.png".into(), bytes: vec![] }];
        assert_eq!(file_named("invalid points[1].image: expected …", &images).as_deref(), Some("b/c.png"));
        assert_eq!(file_named("invalid points[7].image", &images), None);
        assert_eq!(file_named("something else", &images), None);
        let p = payload(&Image { rel: "x/Y.JPG".into(), bytes: vec![0; 5] });
        assert_eq!(Value::Object(p), json!({"path": "x/Y.JPG", "format": "jpeg", "bytes": 5}));
    }
}
