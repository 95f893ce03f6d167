//! `quiver import COLLECTION FOLDER`: every `.txt` / `.md` / `.markdown` file under a folder (hidden files and
//! folders skipped, in path order) becomes a document: id = its path relative to the folder (`/`-separated),
//! metadata `path`, `title` (the first Markdown heading, else the first line) and `format`. Documents are split
//! into chunks, embedded and stored as in `POST /collections/{c}/documents` — by the server, or here with
//! `--data`. Importing the folder again replaces each document in place (ids are paths), so an interrupted import
//! is finished by running it again.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use indicatif::ProgressBar;
use quiver_embed::ChunkOptions;
use quiver_engine::Database;
use quiver_text::documents::{self, Document};
use serde_json::{Value, json};

use super::{Dest, HttpSink, ImportArgs, LocalModels, progress_bar};
use crate::usage;

/// File extensions read as documents.
pub const EXTENSIONS: [&str; 4] = ["txt", "text", "md", "markdown"];
/// Text bytes per batch (one request, or one embedding + write).
const BATCH_BYTES: usize = 64 << 10;
/// Most documents per batch.
const BATCH_DOCS: usize = 64;

/// The files under `root` with one of `extensions` (any case), hidden files and folders skipped, sorted by path.
pub fn find_files(root: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).with_context(|| format!("reading the folder {}", dir.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("reading the folder {}", dir.display()))?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = e.path();
            let ty = e.file_type().with_context(|| path.display().to_string())?;
            if ty.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| extensions.iter().any(|ext| ext.eq_ignore_ascii_case(x)))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A file as a document (`root` gives its id); an error names the file.
pub fn read_document(root: &Path, path: &Path) -> Result<Document> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow!("{}: not UTF-8 text (invalid byte at offset {})", path.display(), e.utf8_error().valid_up_to())
    })?;
    let rel = path.strip_prefix(root).unwrap_or(path);
    let id = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    let markdown = path.extension().and_then(|x| x.to_str()).is_some_and(|x| x.starts_with(['m', 'M']));
    let mut metadata = serde_json::Map::new();
    metadata.insert("path".into(), Value::String(id.clone()));
    metadata.insert("title".into(), Value::String(title(&text, markdown)));
    metadata.insert("format".into(), json!(if markdown { "markdown" } else { "text" }));
    Ok(Document { id, text, metadata })
}

/// The first Markdown heading (for Markdown), else the first non-blank line, at most 200 characters.
pub fn title(text: &str, markdown: bool) -> String {
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
    let heading = markdown
        .then(|| lines().find(|l| l.starts_with('#')).map(|l| l.trim_start_matches('#').trim()))
        .flatten()
        .filter(|h| !h.is_empty());
    let t = heading.or_else(|| lines().next()).unwrap_or("");
    t.chars().take(200).collect()
}

/// Where batches of documents go.
enum DocSink {
    Server(Box<HttpSink>),
    Data { db: Database, col: quiver_engine::Collection, model: std::sync::Arc<dyn quiver_embed::Embedder> },
}

/// Runs `quiver import` on a folder.
pub(super) fn run(args: &ImportArgs, dest: Dest) -> Result<()> {
    super::refuse_file_flags(args, "documents")?;
    let options = ChunkOptions::from_parts(Some(args.chunk_tokens), args.overlap_tokens);
    if let Err(e) = options.validate() {
        return usage(format!("--chunk-tokens / --overlap-tokens: {e}"));
    }
    let root = &args.input;
    let files = find_files(root, &EXTENSIONS)?;
    if files.is_empty() {
        return usage(format!("{} holds no {} files", root.display(), EXTENSIONS.map(|e| format!(".{e}")).join(", ")));
    }
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
                model: args.text_model(),
            };
            s.prepare_texts(&pb)?;
            DocSink::Server(Box::new(s))
        }
        Dest::Data(dir) => {
            target = format!("data:{}", dir.display());
            let db = Database::open(&dir).with_context(|| format!("opening the data directory {}", dir.display()))?;
            let models = LocalModels::new(args.models_dir.clone(), args.text_model());
            let (col, model) = models.open_text_collection(&db, &args.collection, args.create, &pb)?;
            DocSink::Data { db, col, model }
        }
    };

    let started = Instant::now();
    let (mut docs_done, mut chunks_done, mut bytes_done) = (0usize, 0usize, 0u64);
    let mut batch: Vec<Document> = Vec::new();
    let mut batch_bytes = 0usize;
    let outcome = (|| -> Result<()> {
        for (i, f) in files.iter().enumerate() {
            let doc = read_document(root, f)?;
            batch_bytes += doc.text.len();
            batch.push(doc);
            let last = i + 1 == files.len();
            if batch.len() >= BATCH_DOCS || batch_bytes >= BATCH_BYTES || last {
                let docs = std::mem::take(&mut batch);
                let first = docs[0].id.clone();
                let chunks = write_batch(&mut sink, &docs, &options, &pb)
                    .with_context(|| format!("importing the documents from {first} on"))?;
                docs_done += docs.len();
                chunks_done += chunks;
                bytes_done += batch_bytes as u64;
                batch_bytes = 0;
                pb.set_position(bytes_done);
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!(
                    "{docs_done} documents, {chunks_done} chunks, {:.0} chunks/s",
                    chunks_done as f64 / secs
                ));
            }
        }
        Ok(())
    })();
    pb.finish_and_clear();
    outcome.with_context(|| format!("{docs_done} documents were imported before the error"))?;
    let secs = started.elapsed().as_secs_f64();
    if let DocSink::Data { db, .. } = sink {
        db.close().context("closing the data directory")?;
    }
    println!(
        "imported {docs_done} documents ({chunks_done} chunks) into {} ({target}) in {secs:.2} s: {:.0} chunks/s",
        args.collection,
        chunks_done as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Writes one batch; the number of chunks it made.
fn write_batch(sink: &mut DocSink, docs: &[Document], options: &ChunkOptions, pb: &ProgressBar) -> Result<usize> {
    match sink {
        DocSink::Server(s) => {
            let body = json!({
                "documents": docs.iter().map(|d| json!({"id": d.id, "text": d.text, "metadata": d.metadata}))
                    .collect::<Vec<_>>(),
                "chunking": {"max_tokens": options.max_tokens, "overlap_tokens": options.overlap_tokens},
            });
            let path = format!("/collections/{}/documents?wait=true", crate::client::segment(&s.collection));
            let v = s.send_retrying(crate::client::Method::POST, &path, &body, pb)?;
            let counts =
                v["documents"].as_array().ok_or_else(|| anyhow!("the server's reply lacks `documents`: {v}"))?;
            Ok(counts.iter().filter_map(|c| c["chunks"].as_u64()).sum::<u64>() as usize)
        }
        DocSink::Data { col, model, .. } => {
            let (points, counts) = documents::document_points(model.as_ref(), docs, options)?;
            let n = points.len();
            documents::write_points(col, points, &counts)?;
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_first_heading_or_line() {
        assert_eq!(title("\n\n# Intro\ntext", true), "Intro");
        assert_eq!(title("preface\n## Part one", true), "Part one");
        assert_eq!(title("first line\nsecond", false), "first line");
        assert_eq!(title("# not a heading in text", false), "# not a heading in text");
        assert_eq!(title("   \n", true), "");
        assert_eq!(title(&"é".repeat(500), false).chars().count(), 200);
    }

    #[test]
    fn files_are_found_recursively_in_order_without_hidden_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/c")).expect("mkdir");
        std::fs::create_dir_all(root.join(".git")).expect("mkdir");
        for f in ["a.md", "b/c/d.txt", "b/e.MARKDOWN", "b/skip.rs", ".hidden.md", ".git/x.md"] {
            std::fs::write(root.join(f), "text").expect("write");
        }
        let found: Vec<String> = find_files(root, &EXTENSIONS)
            .expect("find")
            .iter()
            .map(|p| read_document(root, p).expect("read").id)
            .collect();
        assert_eq!(found, ["a.md", "b/c/d.txt", "b/e.MARKDOWN"]);
        std::fs::write(root.join("bad.txt"), [0x66, 0xff, 0x66]).expect("write");
        let e = read_document(root, &root.join("bad.txt")).expect_err("not UTF-8");
        assert!(e.to_string().contains("bad.txt: not UTF-8 text (invalid byte at offset 1)"), "{e}");
    }
}
