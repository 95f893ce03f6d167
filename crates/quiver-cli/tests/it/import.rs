//! `quiver import`: the committed 3k set into a local data directory (count, nearest neighbours, resume), and
//! over HTTP against the fake server (request shapes, batching, resume after a failed batch, retries, errors).

use std::path::{Path, PathBuf};
use std::process::Output;

use quiver_engine::{Database, PointId, SearchRequest, Selector};
use serde_json::{Value, json};

use crate::fake::{Fake, error, ok};
use crate::{run_quiver, testdata};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn base() -> PathBuf {
    PathBuf::from(format!("{}_base.fvecs", testdata().display()))
}

fn read_state(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_state(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

#[test]
fn embedded_import_of_the_3k_set_finds_true_neighbours_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("wn.state.json");
    let base = base();
    let (data_s, state_s, base_s) = (data.to_str().unwrap(), state.to_str().unwrap(), base.to_str().unwrap());
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "wn", base_s, "--data", data_s, "--state", state_s, "--batch", "500"];
        args.extend_from_slice(extra);
        run_quiver(&args, &[])
    };

    // Without --create a missing collection is an error that says what to do.
    let out = import(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pass --create"), "{}", stderr(&out));

    let out = import(&["--create", "--distance", "cosine"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("imported 3000 points into wn"), "{}", stdout(&out));
    assert!(stdout(&out).contains("points/s"), "{}", stdout(&out));
    let st = read_state(&state);
    assert_eq!((st["acknowledged"].clone(), st["complete"].clone()), (json!(3000), json!(true)));

    // Count and nearest neighbours against the exact ground truth (ids are record numbers).
    {
        let db = Database::open(&data).unwrap();
        let c = db.collection("wn").unwrap();
        assert_eq!(c.count(None).unwrap(), 3000);
        assert_eq!(c.config().dimension, 384);
        let prefix = testdata().display().to_string();
        let queries = quiver_index::dataset::read_fvecs(format!("{prefix}_query.fvecs")).unwrap();
        let truth = quiver_index::dataset::read_ivecs(format!("{prefix}_groundtruth.ivecs")).unwrap();
        let mut found = 0;
        for q in 0..20 {
            let hits = c.search(&SearchRequest::new(queries.get(q).to_vec(), 10)).unwrap().hits;
            assert_eq!(hits.len(), 10);
            assert_eq!(hits[0].id, PointId::Num(truth.row(q)[0] as u64), "query {q}");
            let want: Vec<PointId> = truth.row(q)[..10].iter().map(|&i| PointId::Num(i as u64)).collect();
            found += hits.iter().filter(|h| want.contains(&h.id)).count();
        }
        assert!(found >= 198, "recall@10 {}/200", found);
        db.close().unwrap();
    }
    // The result verifies.
    let out = run_quiver(&["inspect", data_s], &[]);
    assert!(out.status.success(), "{}", stdout(&out));

    // While another process (here: this one) has the data directory open, --data refuses.
    {
        let db = Database::open(&data).unwrap();
        let out = import(&[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("in use by another process"), "{}", stderr(&out));
        db.close().unwrap();
    }

    // Run again with --resume: nothing to do.
    let out = import(&["--resume"]);
    assert!(out.status.success() && stdout(&out).starts_with("nothing to do"), "{}", stdout(&out));

    // Pretend the import stopped after 2500 records, and remove points 0..10 and 2500..3000: a resume sends only
    // records 2500.. (points 0..10 stay missing, which shows they were skipped).
    {
        let db = Database::open(&data).unwrap();
        let c = db.collection("wn").unwrap();
        let ids: Vec<PointId> = (0..10).chain(2500..3000).map(PointId::Num).collect();
        c.delete(Selector::Ids(ids)).unwrap();
        assert_eq!(c.count(None).unwrap(), 2490);
        db.close().unwrap();
    }
    let mut st = read_state(&state);
    st["acknowledged"] = json!(2500);
    st["complete"] = json!(false);
    write_state(&state, &st);
    let out = import(&["--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("imported 500 points") && stdout(&out).contains("resumed after 2500"),
        "{}",
        stdout(&out)
    );
    {
        let db = Database::open(&data).unwrap();
        assert_eq!(db.collection("wn").unwrap().count(None).unwrap(), 2990);
        db.close().unwrap();
    }

    // A state file of a different import (here: the input size differs) refuses --resume, saying why.
    let mut st = read_state(&state);
    st["fingerprint"]["size"] = json!(12345);
    st["complete"] = json!(false);
    write_state(&state, &st);
    let out = import(&["--resume"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("different import") && stderr(&out).contains("input size 12345 vs 4620000"),
        "{}",
        stderr(&out)
    );
    // Without --resume it starts over (idempotent upserts): everything is back.
    let out = import(&[]);
    assert!(out.status.success() && stdout(&out).contains("imported 3000 points"), "{}", stderr(&out));
    let db = Database::open(&data).unwrap();
    assert_eq!(db.collection("wn").unwrap().count(None).unwrap(), 3000);
    db.close().unwrap();
}

fn updated(op: u64) -> crate::fake::Reply {
    ok(json!({"operation_id": op, "status": "completed"}))
}

fn info(dim: usize) -> crate::fake::Reply {
    ok(
        json!({"points_count": 0, "segments_count": 0, "config": {"params": {"vectors": {"size": dim, "distance": "Dot"}}}}),
    )
}

#[test]
fn http_import_of_jsonl_creates_batches_and_records_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("points.jsonl");
    let lines: Vec<String> = (0..5)
        .map(|i| json!({"id": i + 10, "vector": [i as f32, 1.0, 2.0], "payload": {"n": i}}).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let fake = Fake::start(vec![
        error(404, "collection \"pts\" does not exist"),
        ok(json!(true)),
        updated(1),
        updated(2),
        updated(3),
    ]);
    let url = fake.url.clone();
    let out = run_quiver(
        &["import", "pts", input.to_str().unwrap(), "--batch", "2", "--create", "--distance", "dot", "--url", &url],
        &[("QUIVER_API_KEY", "k")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("imported 5 points into pts"), "{}", stdout(&out));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 5);
    assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("GET", "/collections/pts"));
    assert_eq!((reqs[1].method.as_str(), reqs[1].path.as_str()), ("PUT", "/collections/pts"));
    assert_eq!(reqs[1].json(), json!({"vectors": {"size": 3, "distance": "Dot"}}));
    let mut ids = Vec::new();
    for r in &reqs[2..] {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("PUT", "/collections/pts/points?wait=true"));
        assert_eq!(r.headers.get("api-key").map(String::as_str), Some("k"));
        for p in r.json()["points"].as_array().unwrap() {
            ids.push(p["id"].as_u64().unwrap());
            assert_eq!(p["payload"]["n"].as_u64().unwrap() + 10, p["id"].as_u64().unwrap());
            assert_eq!(p["vector"].as_array().unwrap().len(), 3);
        }
    }
    assert_eq!(ids, vec![10, 11, 12, 13, 14]);
    assert_eq!(reqs[2].json()["points"][1], json!({"id": 11, "vector": [1.0, 1.0, 2.0], "payload": {"n": 1}}));
    let st = read_state(&PathBuf::from(format!("{}.quiver-import.json", input.display())));
    assert_eq!((st["acknowledged"].clone(), st["complete"].clone()), (json!(5), json!(true)));
    assert_eq!(st["fingerprint"]["target"], json!(url));
}

#[test]
fn http_import_resumes_after_a_failed_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("points.csv");
    let mut csv = String::from("id,v0,v1,v2,tag\n");
    for i in 0..5 {
        csv.push_str(&format!("{i},{i},0.5,1,t{i}\n"));
    }
    std::fs::write(&input, csv).unwrap();
    let state = tmp.path().join("s.json");
    let args = |url: &str| -> Vec<String> {
        ["import", "c", input.to_str().unwrap(), "--batch", "2", "--state", state.to_str().unwrap(), "--url", url]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    // The second batch is refused: the first stays imported and recorded.
    let fake = Fake::start(vec![info(3), updated(1), error(400, "point 3: invalid vector: boom")]);
    let a = args(&fake.url);
    let out = run_quiver(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("importing records 2..4") && e.contains("400 Bad Request: point 3: invalid vector: boom"),
        "{e}"
    );
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(read_state(&state)["acknowledged"], 2);

    // --resume (to the same server address: it is part of the import's fingerprint) sends the rest only.
    let fake = Fake::start_on(a[a.len() - 1].trim_start_matches("http://"), vec![info(3), updated(2), updated(3)]);
    let mut a = args(&fake.url);
    a.push("--resume".into());
    let out = run_quiver(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("imported 3 points") && stdout(&out).contains("resumed after 2"), "{}", stdout(&out));
    let reqs = fake.requests();
    let ids: Vec<Value> = reqs[1..]
        .iter()
        .flat_map(|r| r.json()["points"].as_array().unwrap().clone())
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(2), json!(3), json!(4)]);
    assert_eq!(reqs[1].json()["points"][0], json!({"id": 2, "vector": [2.0, 0.5, 1.0], "payload": {"tag": "t2"}}));
    assert_eq!(read_state(&state)["complete"], true);
}

#[test]
fn http_import_retries_transient_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("points.jsonl");
    std::fs::write(&input, "{\"id\": 1, \"vector\": [1, 2]}\n").unwrap();
    let fake = Fake::start(vec![info(2), error(503, "the server is starting"), updated(1)]);
    let url = fake.url.clone();
    let out = run_quiver(&["import", "c", input.to_str().unwrap(), "--retries", "2", "--url", &url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("retry 1 of 2"), "{}", stderr(&out));
    assert_eq!(fake.requests().len(), 3);
}

#[test]
fn http_import_errors_name_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("points.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"vector\": [1, 2]}\n{\"id\": 2, \"vector\": [1, 2]}\n{\"id\": 3, \"vector\": [1, 2]}\n{\"id\": 4, \"vector\": [1, \"x\"]}\n",
    )
    .unwrap();
    let inp = input.to_str().unwrap();

    // Malformed line 4: the first batch (lines 1-2) is imported, then the error names line and field.
    let fake = Fake::start(vec![info(2), updated(1)]);
    let out = run_quiver(&["import", "c", inp, "--batch", "2", "--url", &fake.url], &[]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains("line 4: field \"vector\"[1]: expected a number, got a string"), "{e}");
    assert!(e.contains("the first 2 records are imported, none after them"), "{e}");
    assert_eq!(fake.requests().len(), 2);

    // The collection's dimension differs from the input's.
    let good = tmp.path().join("good.jsonl");
    std::fs::write(&good, "{\"id\": 1, \"vector\": [1, 2]}\n").unwrap();
    let good = good.to_str().unwrap();
    let fake = Fake::start(vec![info(8)]);
    let out = run_quiver(&["import", "c", good, "--url", &fake.url], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("collection c has dimension 8; the input's vectors have 2"), "{}", stderr(&out));
    fake.requests();

    // Missing collection without --create.
    let fake = Fake::start(vec![error(404, "collection \"c\" does not exist")]);
    let out = run_quiver(&["import", "c", good, "--url", &fake.url], &[]);
    assert!(stderr(&out).contains("does not exist on") && stderr(&out).contains("--create"), "{}", stderr(&out));
    fake.requests();

    // Usage errors, before any request.
    let txt = tmp.path().join("points.txt");
    std::fs::write(&txt, "x").unwrap();
    for (args, want) in [
        (vec!["import", "c", txt.to_str().unwrap()], "--format"),
        (vec!["import", "c", inp, "--ids-from", "5"], "--ids-from"),
        (vec!["import", "c", inp, "--batch", "0"], "--batch"),
        (vec!["import", "c", "/nonexistent/x.fvecs"], "is not a file"),
        (vec!["import", "c", inp, "--vector-prefix", "v"], "CSV input only"),
        (vec!["import", "c", inp, "--data", tmp.path().to_str().unwrap()], "exclude each other"),
    ] {
        let mut a = args.clone();
        a.extend(["--url", "http://127.0.0.1:9"]);
        let out = run_quiver(&a, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}
