// The client against a real `quiver serve` (QUIVER_BIN, else $CARGO_TARGET_DIR/debug/quiver, else the repository's
// target/debug/quiver), with node's built-in test runner.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { QuiverClient, QuiverError, ROUTES, type Change } from "../src/index.js";

const repo = resolve(fileURLToPath(import.meta.url), "../../../../..");

function quiverBin(): string {
  const c = [process.env.QUIVER_BIN, process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug/quiver"),
    join(repo, "target/debug/quiver")].filter((x): x is string => !!x);
  const found = c.find((p) => existsSync(p));
  if (!found) throw new Error(`no quiver binary (looked at ${c.join(", ")}): run cargo build -p quiver-cli`);
  return found;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => ok(port));
    });
    s.on("error", fail);
  });
}

let proc: ChildProcess;
let dir: string;
let url: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "quiver-ts-"));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  proc = spawn(quiverBin(), ["serve", "--data-dir", join(dir, "data"), "--bind", `127.0.0.1:${port}`,
    "--log-level", "warn"], { stdio: "inherit" });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(url + "/readyz")).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error("quiver serve did not become ready in 60 s");
    await new Promise((r) => setTimeout(r, 50));
  }
});

after(() => {
  proc.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

function vectors(n: number, dim: number, seed = 1): number[][] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  return Array.from({ length: n }, () => Array.from({ length: dim }, rnd));
}

test("every route the client calls is in the server's OpenAPI document", async () => {
  const doc = (await (await fetch(url + "/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
  for (const r of ROUTES) {
    const [method, path] = r.split(" ") as [string, string];
    assert.ok(doc.paths[path], `${path} is not in /openapi.json`);
    assert.ok(doc.paths[path]![method.toLowerCase()], `${method} ${path} is not in /openapi.json`);
  }
});

test("collections, points, search with filters, payloads, scroll, count", async () => {
  const db = new QuiverClient(url);
  await db.createCollection("ts", { vectors: { size: 8, distance: "Cosine" } });
  assert.ok(await db.collectionExists("ts"));
  assert.ok((await db.listCollections()).collections.some((c) => c.name === "ts"));
  const col = db.collection("ts");
  const vs = vectors(50, 8);
  const r = await col.upsert({
    batch: { ids: vs.map((_, i) => i), vectors: vs, payloads: vs.map((_, i) => ({ tag: i % 2 ? "odd" : "even", i })) },
  }, { wait: true });
  assert.equal(r.status, "completed");
  assert.ok(r.operation_id >= 1);
  assert.equal(await col.count(), 50);
  assert.equal(await col.count({ must: [{ key: "tag", match: { value: "odd" } }] }), 25);

  const hits = await col.search({ vector: vs[7]!, limit: 3, with_payload: true });
  assert.equal(hits[0]!.id, 7);
  assert.ok(Math.abs(hits[0]!.score - 1) < 1e-5);
  assert.deepEqual(hits[0]!.payload, { tag: "odd", i: 7 });
  const even = await col.query({ query: vs[7]!, limit: 5, filter: { must: [{ key: "tag", match: { value: "even" } }] },
    with_payload: true, explain: true });
  assert.equal(even.points.length, 5);
  assert.ok(even.points.every((p) => (p.payload as { tag: string }).tag === "even"));
  assert.ok(even.explain && "segments" in even.explain);
  const byId = await col.query({ query: 7, limit: 2 });
  assert.ok(byId.points.every((p) => p.id !== 7)); // a query by id excludes the point itself
  const batch = await col.searchBatch([{ vector: vs[1]!, limit: 1 }, { vector: vs[2]!, limit: 1 }]);
  assert.deepEqual(batch.map((b) => b[0]!.id), [1, 2]);

  await col.setPayload({ payload: { flag: true }, points: [1, 2] });
  assert.equal((await col.get(1)).payload!.flag, true);
  await col.deletePayload({ keys: ["flag"], points: [1] });
  assert.equal((await col.retrieve([1, 2]))[0]!.payload!.flag, undefined);
  await col.overwritePayload({ payload: { only: 1 }, points: [3] });
  assert.deepEqual((await col.get(3)).payload, { only: 1 });
  await col.createIndex("tag", "keyword", { wait: true });
  await col.deleteIndex("tag");

  const seen: number[] = [];
  for await (const p of col.iterate({ limit: 7 })) seen.push(p.id as number);
  assert.deepEqual(seen, vs.map((_, i) => i));
  await col.delete({ filter: { must: [{ key: "tag", match: { value: "odd" } }] } });
  assert.equal(await col.count(), 26); // the 25 even points and point 3, whose payload was overwritten
  await db.deleteCollection("ts");
  assert.equal(await db.collectionExists("ts"), false);
});

test("target_recall: a collection's and a query's, validated by the server", async () => {
  const db = new QuiverClient(url);
  await db.createCollection("tstr", { vectors: { size: 8, distance: "Euclid" }, target_recall: 0.9 });
  const col = db.collection("tstr");
  const vs = vectors(40, 8);
  await col.upsert({ batch: { ids: vs.map((_, i) => i), vectors: vs } }, { wait: true });
  const info = await col.info();
  assert.equal((info.quiver.config as { target_recall: number }).target_recall, 0.9);
  const hits = await col.search({ vector: vs[3]!, limit: 1, params: { target_recall: 0.99 } });
  assert.equal(hits[0]!.id, 3);
  const q = await col.query({ query: vs[4]!, limit: 1, params: { target_recall: 1 } });
  assert.equal(q.points[0]!.id, 4);
  await assert.rejects(col.search({ vector: vs[3]!, limit: 1, params: { target_recall: 2 } }),
    (e: Error) => /params\.target_recall/.test(e.message));
  await db.deleteCollection("tstr");
});

test("errors carry the status and the server's message naming the field", async () => {
  const db = new QuiverClient(url);
  await assert.rejects(db.getCollection("nope"), (e: unknown) => e instanceof QuiverError && e.status === 404);
  await db.createCollection("errs", { vectors: { size: 4, distance: "Dot" } });
  const col = db.collection("errs");
  await assert.rejects(col.upsert({ points: [{ id: 1, vector: [1, 2, 3] }] }), (e: unknown) =>
    e instanceof QuiverError && e.status === 400 && /vector/.test(e.message) && /4/.test(e.message));
  await assert.rejects(col.search({ vector: [1, 0, 0, 0], limit: 1, params: { ef: 0 } }), (e: unknown) =>
    e instanceof QuiverError && e.status === 400 && /params\.ef/.test(e.message));
  assert.equal(await col.count(), 0);
  await assert.rejects(db.createCollection("errs", { vectors: { size: 4, distance: "Dot" } }),
    (e: unknown) => e instanceof QuiverError && e.status === 409);
  await assert.rejects(new QuiverClient("http://127.0.0.1:1", { timeoutMs: 2000 }).listCollections(),
    (e: unknown) => e instanceof QuiverError && e.status === 0);
  assert.throws(() => new QuiverClient("ftp://x"), QuiverError);
  await db.deleteCollection("errs");
});

test("snapshots: create, list, download, recover, delete", async () => {
  const db = new QuiverClient(url);
  await db.createCollection("snaps", { vectors: { size: 2, distance: "Euclid" } });
  const col = db.collection("snaps");
  await col.upsert({ points: [{ id: 1, vector: [0, 1] }, { id: 2, vector: [1, 0] }] }, { wait: true });
  const s = await col.createSnapshot();
  assert.ok((await col.listSnapshots()).some((x) => x.name === s.name));
  const bytes = await col.downloadSnapshot(s.name);
  assert.equal(bytes.byteLength, s.size);
  await col.delete({ points: [1] }, { wait: true });
  assert.equal(await col.count(), 1);
  await col.recoverSnapshot(s.name);
  assert.equal(await col.count(), 2);
  await col.deleteSnapshot(s.name);
  assert.equal((await col.listSnapshots()).length, 0);
  await db.deleteCollection("snaps");
});

test("the change feed is an async iterator of operations, in order", async () => {
  const db = new QuiverClient(url);
  await db.createCollection("feed", { vectors: { size: 2, distance: "Cosine" } });
  const col = db.collection("feed");
  const first = await col.upsert({ points: [{ id: 1, vector: [1, 0], payload: { a: 1 } }] }, { wait: true });
  const got: Change[] = [];
  const ctrl = new AbortController();
  const reading = (async () => {
    for await (const c of col.changes({ after: first.operation_id - 1, signal: ctrl.signal })) {
      got.push(c);
      if (got.length === 3) break;
    }
  })();
  await col.upsert({ points: [{ id: 2, vector: [0, 1] }] });
  await col.delete({ points: [1] });
  await reading;
  assert.deepEqual(got.map((c) => c.op), ["upsert", "upsert", "delete"]);
  assert.deepEqual(got.map((c) => c.seq), [first.operation_id, first.operation_id + 1, first.operation_id + 2]);
  const up = got[0] as { points: { id: number; payload?: unknown }[] };
  assert.deepEqual(up.points[0], { id: 1, payload: { a: 1 } });
  await db.deleteCollection("feed");
});

test("text index, BM25, hybrid fusion, recommend, discover, context, lookup_from and ordered scroll", async () => {
  const db = new QuiverClient(url);
  await db.createCollection("tsh", { vectors: { size: 2, distance: "Euclid" } });
  const col = db.collection("tsh");
  const rows: [number, number[], string][] = [[1, [9, 9], "Dogs are barking loudly"], [2, [8, 8], "a cat"],
    [3, [0.1, 0], "the dog barked"], [4, [0, 0.3], "foxes run"]];
  await col.upsert({ points: rows.map(([id, vector, body]) => ({ id, vector, payload: { body, n: id } })) },
    { wait: true });
  await col.createIndex("body", { type: "text", stemmer: { type: "snowball", language: "english" },
    stopwords: "english" }, { wait: true });
  const bm25 = await col.textSearch("body", "barking dog", 5);
  assert.deepEqual(bm25.map((h) => h.id), [3, 1]);
  for (const fusion of ["rrf", "dbsf"] as const) {
    const hits = await col.hybridSearch("body", "dog", { vector: [0, 0], candidates: 3, limit: 2, fusion });
    assert.equal(hits[0]!.id, 3, fusion);
  }
  const byVector = await col.hybridSearch("body", "dog", { vector: [9, 9], candidates: 4, limit: 4, weights: [0, 1] });
  assert.deepEqual(byVector.map((h) => h.id), [1, 2, 4, 3]);
  const rec = await col.query({ query: { recommend: { positive: [3], negative: [1] } }, limit: 1 });
  assert.equal(rec.points[0]!.id, 4);
  // Scored against every example: 4 is nearest the positive, 2 nearest the negative.
  const best = await col.query({ query: { recommend: { positive: [3], negative: [1], strategy: "best_score" } } });
  assert.deepEqual(best.points.map((p) => p.id), [4, 2]);
  const disc = await col.query({ query: { discover: { target: [9, 9], context: { positive: 3, negative: 2 } } } });
  assert.deepEqual(disc.points.map((p) => p.id), [4, 1]);
  const ctx = await col.query({ query: { context: [{ positive: 4, negative: 1 }] }, limit: 2 });
  assert.deepEqual(ctx.points.map((p) => p.id), [3, 2]);
  assert.equal(ctx.points[0]!.score, 0);
  await db.createCollection("tsh2", { vectors: { size: 2, distance: "Euclid" } });
  await db.collection("tsh2").upsert({ points: [{ id: 7, vector: [8.8, 8.8] }] }, { wait: true });
  const looked = await col.query({ query: 7, lookup_from: { collection: "tsh2" }, limit: 2 });
  assert.deepEqual(looked.points.map((p) => p.id), [1, 2]);
  const ordered = await col.scroll({ order_by: { key: "n", direction: "desc" }, limit: 2 });
  assert.deepEqual(ordered.points.map((p) => p.id), [4, 3]);
  assert.deepEqual(ordered.points.map((p) => p.order_value), [4, 3]);
  await assert.rejects(col.query({ query: { fusion: "rrf" } }), (e: unknown) =>
    e instanceof QuiverError && e.status === 400 && /prefetch/.test(e.message));
});

test("images: a collection with the image model takes base64 images in upserts, searches and queries", async () => {
  // EfficientNet-Lite0 from ~/.cache/quiver-models (bash scripts/get-embed-model.sh efficientnet-lite0).
  const { readFileSync } = await import("node:fs");
  const image = (f: string) => readFileSync(join(repo, "crates/quiver-embed/testdata/images", f)).toString("base64");
  const db = new QuiverClient(url);
  await db.createCollection("tsimg", { embedding: { model: "efficientnet-lite0" } });
  const col = db.collection("tsimg");
  await col.upsert({ points: [{ id: 1, image: image("cat.jpg"), payload: { f: "cat" } },
    { id: 2, vector: { image: image("coffee.jpg") }, payload: { f: "coffee" } }] }, { wait: true });
  await col.upsert({ batch: { ids: [3], images: [image("rocket.jpg")] } }, { wait: true });
  const cat = image("cat-mirrored.png");
  assert.equal((await col.search({ image: cat, limit: 1 }))[0]!.id, 1);
  assert.equal((await col.query({ query: { image: cat }, limit: 1 })).points[0]!.id, 1);
  await assert.rejects(col.upsert({ points: [{ id: 9, image: "bm90IGFuIGltYWdl" }] }),
    (e: unknown) => e instanceof QuiverError && e.status === 400 && /points\[0\]\.image/.test(e.message));
});

test("named vectors: created as a map, written by name, searched with `using`, read back by name", async () => {
  const db = new QuiverClient(url);
  await db.createCollection("tsnamed", { vectors: {
    title: { size: 2, distance: "Euclid" }, body: { size: 3, distance: "Cosine" } } });
  const col = db.collection("tsnamed");
  await col.upsert({ points: [
    { id: 1, vector: { title: [1, 0], body: [1, 0, 0] } },
    { id: 2, vector: { title: [2, 0], body: [0, 1, 0] } },
    { id: 3, vector: { title: [3, 0] } }] }, { wait: true });
  const byTitle = await col.query({ query: [2.9, 0], using: "title", limit: 2 });
  assert.deepEqual(byTitle.points.map((p) => p.id), [3, 2]);
  const byBody = await col.query({ query: [0, 1, 0], using: "body", limit: 5, with_vector: ["body"] });
  assert.deepEqual(byBody.points.map((p) => p.id), [2, 1]);
  assert.deepEqual(byBody.points[0]!.vector, { body: [0, 1, 0] });
  assert.equal((await col.search({ vector: { name: "title", vector: [1, 0] }, limit: 1 }))[0]!.id, 1);
  const [rec] = await col.retrieve([3], { with_vector: true });
  assert.deepEqual(rec!.vector, { title: [3, 0] });
  await assert.rejects(col.query({ query: [1, 0], limit: 1 }),
    (e: unknown) => e instanceof QuiverError && e.status === 400 && /using/.test(e.message));
  await db.createCollection("tssparse", { vectors: { size: 1, distance: "Dot" }, sparse_vectors: { t: {} } });
  const sp = db.collection("tssparse");
  await sp.upsert({ points: [{ id: 1, vector: { "": [1], t: { indices: [4], values: [2] } } },
    { id: 2, vector: { "": [1], t: { indices: [5], values: [1] } } }] }, { wait: true });
  const hits = await sp.query({ query: { indices: [4], values: [1] }, using: "t", limit: 5, with_vector: true });
  assert.deepEqual(hits.points.map((p) => p.id), [1]);
  assert.deepEqual(hits.points[0]!.vector, { "": [1], t: { indices: [4], values: [2] } });
});
