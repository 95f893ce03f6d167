//! `quiver embed` (cargo feature `embed`): needs all-MiniLM-L6-v2 where `scripts/get-embed-model.sh` puts it (or
//! `QUIVER_MODEL_DIR`); `.ci/run` runs these with `--features embed`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn embed(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("embed")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A usage error exits before reading stdin, so the write may meet a closed pipe; the exit status tells.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn embeds_each_line_in_order_as_unit_vectors_that_rank_by_meaning() {
    let input = "A cat is sleeping on the mat.\r\nThe stock market fell sharply today.\nA kitten naps on a rug.\n";
    let out = embed(&["--vectors-only", "--batch", "2", "--chunk", "2"], input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vs: Vec<Vec<f32>> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(vs.len(), 3);
    for v in &vs {
        assert_eq!(v.len(), 384);
        assert!((cos(v, v) - 1.0).abs() < 1e-4);
    }
    // The two sentences about a sleeping cat are closer to each other than to the market.
    assert!(cos(&vs[0], &vs[2]) > cos(&vs[0], &vs[1]) + 0.2, "{} vs {}", cos(&vs[0], &vs[2]), cos(&vs[0], &vs[1]));

    let out = embed(&[], "hello world\n");
    assert!(out.status.success());
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row["text"], "hello world");
    assert_eq!(row["vector"].as_array().unwrap().len(), 384);
}

#[test]
fn bad_flags_and_missing_models_are_errors() {
    let out = embed(&["--batch", "0"], "x\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--batch"));
    let out = embed(&["--model", "/nonexistent/model-dir"], "x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model-dir"));
    assert!(out.stdout.is_empty());
}

// ------------------------------------------------------------------------------------------------ text import

fn write_docs(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("animals")).unwrap();
    std::fs::write(
        root.join("animals/bees.md"),
        "# Honeybees\n\nBees live in hives ruled by a queen. Workers gather nectar from flowers and make honey.\n\n\
         ## Dances\n\nA forager dances to tell the others where the flowers are.\n",
    )
    .unwrap();
    std::fs::write(
        root.join("glaciers.txt"),
        "Glaciers are rivers of ice.\nAs the climate warms they melt, and the sea rises.\n",
    )
    .unwrap();
    std::fs::write(root.join("notes.rs"), "fn main() {}").unwrap();
}

fn succeed(out: &Output) -> String {
    assert!(out.status.success(), "quiver failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The closest point to `query` in collection `c` of a data directory, by the collection's model.
fn nearest_payload(data: &std::path::Path, c: &str, query: &str) -> serde_json::Value {
    let db = quiver_engine::Database::open(data).unwrap();
    let col = db.collection(c).unwrap();
    let model = col.config().embedding.clone().expect("the collection names its model").model;
    assert_eq!(model, "all-MiniLM-L6-v2");
    let dir = quiver_embed::find_model_dir(None).unwrap();
    let m = quiver_embed::load_model(&dir, &Default::default()).unwrap();
    let v = m.embed(&[query]).unwrap().pop().unwrap();
    let hits = col.search(&quiver_engine::SearchRequest::new(v, 1)).unwrap().hits;
    let p = serde_json::Value::Object(hits[0].payload.clone().unwrap());
    db.close().unwrap();
    p
}

#[test]
fn a_folder_of_documents_imports_into_a_data_directory_and_again_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    write_docs(&docs);
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let args = ["import", "kb", docs.to_str().unwrap(), "--data", data_s, "--create", "--chunk-tokens", "24"];
    let out = succeed(&crate::quiver(&args));
    assert!(out.contains("imported 2 documents ("), "{out}");

    let p = nearest_payload(&data, "kb", "melting ice and rising seas");
    assert_eq!(p["doc_id"], "glaciers.txt", "{p}");
    assert_eq!(p["format"], "text");
    assert_eq!(p["title"], "Glaciers are rivers of ice.");
    let p = nearest_payload(&data, "kb", "a forager dancing to show the way");
    assert_eq!(p["doc_id"], "animals/bees.md", "{p}");
    assert_eq!(p["title"], "Honeybees");
    assert!(p["text"].as_str().unwrap().contains("dances"), "{p}");

    // Again, after an edit: the edited document's chunks are replaced, nothing is duplicated.
    let count = || {
        let db = quiver_engine::Database::open(&data).unwrap();
        let n = db.collection("kb").unwrap().count(None).unwrap();
        db.close().unwrap();
        n
    };
    let before = count();
    std::fs::write(docs.join("animals/bees.md"), "# Bees\n\nBees make honey.\n").unwrap();
    succeed(&crate::quiver(&args));
    let p = nearest_payload(&data, "kb", "bees");
    assert_eq!((p["doc_id"].as_str(), p["chunk_count"].as_u64()), (Some("animals/bees.md"), Some(1)), "{p}");
    assert!(count() < before, "the longer version's chunks are gone: {} vs {before}", count());

    // Errors: a collection without a model, overlap ≥ chunk size, flags that do not apply to a folder.
    let out = crate::quiver(&["import", "kb", docs.to_str().unwrap(), "--data", data_s, "--overlap-tokens", "200"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("overlap_tokens"));
    let out = crate::quiver(&["import", "kb", docs.to_str().unwrap(), "--data", data_s, "--resume"]);
    assert_eq!(out.status.code(), Some(2));
    let vecs = crate::testdata().with_file_name("wordnet-minilm-3k_base.fvecs");
    let state = dir.path().join("state.json");
    let st = state.to_str().unwrap();
    succeed(&crate::quiver(&["import", "vecs", vecs.to_str().unwrap(), "--data", data_s, "--create", "--state", st]));
    let out = crate::quiver(&["import", "vecs", docs.to_str().unwrap(), "--data", data_s]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no embedding model"), "{:?}", out);
}

#[test]
fn jsonl_lines_with_text_are_embedded_locally_and_by_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("texts.jsonl");
    let lines = [
        r#"{"id": 1, "text": "A cat sleeps on the mat.", "payload": {"kind": "pet"}}"#,
        r#"{"id": 2, "text": "Interest rates rose and shares fell."}"#,
        r#"{"id": 3, "text": "Bake the cake for forty minutes."}"#,
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let data = dir.path().join("data");
    let i = input.to_str().unwrap();
    succeed(&crate::quiver(&["import", "t", i, "--data", data.to_str().unwrap(), "--create", "--batch", "2"]));
    let p = nearest_payload(&data, "t", "a kitten napping");
    assert_eq!((p["kind"].as_str(), p["text"].as_str()), (Some("pet"), Some("A cat sleeps on the mat.")), "{p}");

    // Mixing vectors and texts in one input is refused at the line that breaks the pattern.
    let mixed = dir.path().join("mixed.jsonl");
    std::fs::write(&mixed, format!("{}\n{{\"id\": 9, \"vector\": [1.0]}}\n", lines[0])).unwrap();
    let out = crate::quiver(&["import", "t", mixed.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: earlier lines have texts"), "{out:?}");

    // Through a server: the server embeds; the folder import goes through POST /documents.
    let served = dir.path().join("served");
    let mut server = crate::serve::start(&served);
    let url = format!("http://{}", server.addr);
    // The server says at startup that it can embed, and with which model directory.
    let said = (0..50).find_map(|_| {
        server
            .log
            .recv_timeout(std::time::Duration::from_millis(100))
            .ok()
            .filter(|l| l.contains("text embedding available"))
    });
    assert!(said.is_some_and(|l| l.contains("all-MiniLM-L6-v2")), "no startup line about text embedding");
    succeed(&crate::run_quiver(&["import", "t", i, "--url", &url, "--create"], &[]));
    let hits = crate::serve::ok(
        &server.addr,
        "POST",
        "/collections/t/points/search",
        Some(&serde_json::json!({"text": "baking", "limit": 1, "with_payload": true})),
    );
    assert_eq!(hits[0]["id"], 3, "{hits}");
    // `quiver query --text`: the server embeds the query with the collection's model.
    let out = succeed(&crate::run_quiver(&["query", "t", "--text", "baking", "--limit", "1", "--url", &url], &[]));
    assert!(out.trim_start().starts_with("1  3 "), "{out}");
    let out = succeed(&crate::run_quiver(
        &["query", "t", "--text", "baking", "--limit", "1", "--fields", "text", "--url", &url],
        &[],
    ));
    assert!(out.trim_end().ends_with(r#"{"text":"Bake the cake for forty minutes."}"#), "{out}");
    for (args, needle) in [
        (vec!["query", "t", "--text", " ", "--url", &url], "--text: the text is empty"),
        (vec!["query", "t", "--text", "x", "--vector", "[1]", "--url", &url], "cannot be used with"),
        (vec!["query", "t", "--url", &url], "required"),
        (vec!["query", "t", "--text", "x", "--fields", "a,,b", "--url", &url], "--fields"),
    ] {
        let out = crate::run_quiver(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{args:?}: {out:?}");
    }
    let docs = dir.path().join("docs");
    write_docs(&docs);
    succeed(&crate::run_quiver(&["import", "kb", docs.to_str().unwrap(), "--url", &url, "--create"], &[]));
    let r = crate::serve::ok(
        &server.addr,
        "POST",
        "/collections/kb/points/search/groups",
        Some(&serde_json::json!({"text": "glaciers melting", "group_by": "doc_id", "limit": 2})),
    );
    assert_eq!(r["groups"][0]["id"], "glaciers.txt", "{r}");
    assert_eq!(r["groups"].as_array().unwrap().len(), 2, "{r}");
    let _ = server.child.kill();
    let _ = server.child.wait();
}

// ------------------------------------------------------------------------------------------------ quiver demo

#[test]
fn demo_builds_the_shipped_corpus_and_answers_queries_with_and_without_a_filter() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let q = "an animal that lives in the ocean";
    let out = succeed(&crate::run_quiver(&["demo", "--limit", "400", "--data", data_s, "-q", q, "--top", "4"], &[]));
    assert!(out.contains("embedded and stored 400 texts"), "{out}");
    assert!(out.contains(&format!("query: {q:?}")), "{out}");
    let ranked: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())).collect();
    assert_eq!(ranked.len(), 4, "{out}");
    assert!(ranked[0].contains("[animal]"), "the best answer is an animal: {out}");
    // Scores are printed best first.
    let scores: Vec<f32> = ranked.iter().map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // The same data directory again: the collection is reused, and a filter keeps to its topic.
    let out = succeed(&crate::run_quiver(&["demo", "--data", data_s, "-q", q, "--topic", "food", "--top", "3"], &[]));
    assert!(out.contains("using the existing collection demo"), "{out}");
    assert!(out.contains("(filter: topic = food)"), "{out}");
    let ranked: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())).collect();
    assert_eq!(ranked.len(), 3, "{out}");
    assert!(ranked.iter().all(|l| l.contains("[food]")), "{out}");

    for (args, needle) in [
        (vec!["demo", "--top", "0"], "--top"),
        (vec!["demo", "--topic", "cars", "-q", "x"], "--topic must be one of"),
        (vec!["demo", "--topic", "food"], "give one"),
        (vec!["demo", "--limit", "0"], "--limit"),
    ] {
        let out = crate::run_quiver(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{args:?}: {out:?}");
    }
}

#[test]
fn demo_on_a_running_server_leaves_a_text_collection_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = crate::serve::start(&dir.path().join("served"));
    let url = format!("http://{}", server.addr);
    let q = "an animal that lives in the ocean";
    let args = ["demo", "--url", &url, "--limit", "300", "-q", q, "--top", "2"];
    let out = succeed(&crate::run_quiver(&args, &[]));
    assert!(out.contains("created demo and upserted 300 texts"), "{out}");
    let ranked: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())).collect();
    assert_eq!(ranked.len(), 2, "{out}");
    assert!(ranked[0].contains("[animal]"), "{out}");
    // Again: reused; filtered by topic.
    let args = ["demo", "--url", &url, "-q", q, "--topic", "plant", "--top", "2"];
    let out = succeed(&crate::run_quiver(&args, &[]));
    assert!(out.contains("using the existing collection demo (300 points)"), "{out}");
    assert!(out.lines().filter(|l| l.contains(". 0.")).all(|l| l.contains("[plant]")), "{out}");
    // The collection is the server's: a text search over HTTP finds the same kind of thing.
    let hits = crate::serve::ok(
        &server.addr,
        "POST",
        "/collections/demo/points/search",
        Some(&serde_json::json!({"text": q, "limit": 1, "with_payload": true})),
    );
    assert_eq!(hits[0]["payload"]["topic"], "animal", "{hits}");
    let out = crate::run_quiver(&["demo", "--url", &url, "--data", "/tmp/x"], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// Copies quiver-embed's test images into `dir` (one in a subfolder).
fn write_images(dir: &std::path::Path) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../quiver-embed/testdata/images");
    std::fs::create_dir_all(dir.join("space")).unwrap();
    for (from, to) in [
        ("cat.jpg", "cat.jpg"),
        ("coffee.jpg", "coffee.jpg"),
        ("astronaut.webp", "space/astronaut.webp"),
        ("rocket.jpg", "space/rocket.jpg"),
    ] {
        std::fs::copy(src.join(from), dir.join(to)).unwrap();
    }
}

#[test]
fn a_folder_of_images_imports_locally_and_through_a_server() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let pics = dir.path().join("pics");
    write_images(&pics);
    let data = dir.path().join("data");
    let (p, d) = (pics.to_str().unwrap(), data.to_str().unwrap());
    let out = succeed(&crate::quiver(&["import", "pics", p, "--data", d, "--create"]));
    assert!(out.contains("imported 4 images into pics"), "{out}");
    // Again: each image replaced in place (ids come from paths).
    succeed(&crate::quiver(&["import", "pics", p, "--data", d]));
    let query = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../quiver-embed/testdata/images/cat-mirrored.png"),
    )
    .unwrap();
    {
        let db = quiver_engine::Database::open(&data).unwrap();
        let col = db.collection("pics").unwrap();
        assert_eq!(col.count(None).unwrap(), 4);
        assert_eq!(col.config().embedding.as_ref().unwrap().model, "efficientnet-lite0");
        assert_eq!(col.config().dimension, 1280);
        let m = quiver_text::Models::new(None).get("efficientnet-lite0").unwrap();
        let v = m.embed_images(&[&query]).unwrap().pop().unwrap();
        let hits = col.search(&quiver_engine::SearchRequest::new(v, 4)).unwrap().hits;
        let p = hits[0].payload.clone().unwrap();
        assert_eq!((p["path"].as_str(), p["format"].as_str()), (Some("cat.jpg"), Some("jpeg")), "{p:?}");
        db.close().unwrap();
    }

    // A broken image stops the import naming the file; a folder with documents and images is refused.
    std::fs::write(pics.join("space/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = crate::quiver(&["import", "pics", p, "--data", d]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("space/broken.png"), "{err}");
    std::fs::remove_file(pics.join("space/broken.png")).unwrap();
    std::fs::write(pics.join("notes.txt"), "a note").unwrap();
    let out = crate::quiver(&["import", "pics", p, "--data", d]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds both documents (1) and images (4)"), "{out:?}");
    std::fs::remove_file(pics.join("notes.txt")).unwrap();

    // Through a server: it embeds the images; search by image over HTTP finds the cat.
    let served = dir.path().join("served");
    let mut server = crate::serve::start(&served);
    let url = format!("http://{}", server.addr);
    let out = succeed(&crate::run_quiver(&["import", "pics", p, "--url", &url, "--create"], &[]));
    assert!(out.contains("imported 4 images"), "{out}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&query);
    let hits = crate::serve::ok(
        &server.addr,
        "POST",
        "/collections/pics/points/query",
        Some(&serde_json::json!({"query": {"image": b64}, "limit": 2, "with_payload": true})),
    );
    assert_eq!(hits["points"][0]["payload"]["path"], "cat.jpg", "{hits}");
    let _ = server.child.kill();
    let _ = server.child.wait();
}
