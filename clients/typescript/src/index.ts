/**
 * QuiverDB's TypeScript client: the REST API (Qdrant-shaped, plus QuiverDB's own fields) over `fetch`.
 * No runtime dependencies; runs in Node 18+ and browsers.
 *
 *   const db = new QuiverClient("http://127.0.0.1:6333", { apiKey });
 *   await db.createCollection("docs", { vectors: { size: 384, distance: "Cosine" } });
 *   const docs = db.collection("docs");
 *   await docs.upsert({ points: [{ id: 1, vector, payload: { tag: "a" } }] }, { wait: true });
 *   const hits = await docs.search({ vector, limit: 5, filter: { must: [{ key: "tag", match: { value: "a" } }] } });
 */

export type PointId = number | string;
export type Payload = Record<string, unknown>;
export type Distance = "Cosine" | "Dot" | "Euclid";

/** Qdrant's filter language: `must`, `should`, `must_not`, `min_should` over conditions. */
export interface Filter {
  must?: Condition[];
  should?: Condition[];
  must_not?: Condition[];
  min_should?: { conditions: Condition[]; min_count: number };
}

export type Condition =
  | Filter
  | { key: string; match: { value: unknown } | { any: unknown[] } | { except: unknown[] } | { text: string } }
  | { key: string; range: { gt?: number | string; gte?: number | string; lt?: number | string; lte?: number | string } }
  | { key: string; values_count: { gt?: number; gte?: number; lt?: number; lte?: number } }
  | { is_empty: { key: string } }
  | { is_null: { key: string } }
  | { has_id: PointId[] }
  | { nested: { key: string; filter: Filter } };

/** One vector of a collection; with named vectors, each may have its own embedding model (QuiverDB). */
export interface VectorParams {
  size: number;
  distance: Distance;
  on_disk?: boolean;
  embedding?: { model: string };
}

/** A text or image to embed with the (named) vector's model. */
export type EmbedInput = { text: string; model?: string } | { image: string; model?: string };

/** A sparse vector: distinct term ids and one weight each. */
export interface SparseVector {
  indices: number[];
  values: number[];
}

/** A stored vector as read: the unnamed vector, or the point's named (and sparse) vectors by name. */
export type VectorOutput = number[] | Record<string, number[] | SparseVector>;

export interface CreateCollection {
  /** One unnamed vector, or named vectors by name (`{ title: {...}, body: {...} }`). */
  vectors?: VectorParams | Record<string, VectorParams>;
  /** Sparse vectors by name (`{ terms: {} }`, or `{ terms: { modifier: "idf" } }`). */
  sparse_vectors?: Record<string, { modifier?: "none" | "idf"; index?: Record<string, unknown> }>;
  hnsw_config?: { m?: number; ef_construct?: number };
  shard_number?: number;
  replication_factor?: number;
  /** QuiverDB: `{ kind: "hnsw" | "ivf" | "kd-tree" | "lsh" | "kd-lsh" | "flat", params: {...} }`. */
  index?: { kind: string; params?: Record<string, unknown> };
  tiering?: Record<string, unknown>;
  durability?: unknown;
  optimizer?: Record<string, unknown>;
  max_payload_bytes?: number;
  change_feed_bytes?: number;
  /** QuiverDB: the recall@10 searches aim for when they name no width (each segment's `ef` from its measured
   * recall). */
  target_recall?: number;
  /** QuiverDB: the embedding model (a text model, or the image model `efficientnet-lite0`); points and searches
   * may then carry text (or images, base64). */
  embedding?: { model: string };
  sharding?: Record<string, unknown>;
}

export interface PointStruct {
  id: PointId;
  /** A vector, a text or image to embed, or named vectors by name (each numbers, a sparse vector, or a text or
   * image). */
  vector?: number[] | EmbedInput | Record<string, number[] | SparseVector | EmbedInput>;
  text?: string;
  /** An image file's bytes in base64 (or a `data:` URL), for a collection with an image model. */
  image?: string;
  payload?: Payload;
  ttl_secs?: number;
}

export interface Batch {
  ids: PointId[];
  /** One vector per id, or with named vectors one list per name (`{ title: [[...], ...] }`). */
  vectors?: number[][] | Record<string, number[][] | SparseVector[]>;
  texts?: string[];
  /** Images in base64, one per id, for a collection with an image model. */
  images?: string[];
  payloads?: (Payload | null)[];
}

export interface UpdateResult {
  operation_id: number;
  status: "completed" | "acknowledged";
  /** Each shard's log position the write reached (`"0:17,2:40"`): pass it as `read_token` to read this write
   * through any node of a cluster. */
  read_token?: string;
}

export type WithPayload = boolean | string[] | { include?: string[]; exclude?: string[] };

export interface SearchParams {
  hnsw_ef?: number;
  exact?: boolean;
  quantization?: { ignore?: boolean; rescore?: boolean; oversampling?: number };
  indexed_only?: boolean;
  ef?: number;
  nprobe?: number;
  rerank?: number;
  max_leaves?: number;
  probes?: number;
  /** The recall@10 wanted, in (0, 1], instead of a width: each segment picks its `ef`/`nprobe` from its measured
   * recall (a named `hnsw_ef`/`nprobe` wins; 1 searches exactly). */
  target_recall?: number;
}

export interface SearchRequest {
  /** A vector, or `{ name, vector }` to search a named vector. */
  vector?: number[] | { name: string; vector: number[] };
  text?: string;
  /** An image in base64, for a collection with an image model. */
  image?: string;
  filter?: Filter;
  params?: SearchParams;
  limit: number;
  offset?: number;
  with_payload?: WithPayload;
  with_vector?: boolean | string[];
  score_threshold?: number;
  min_seq?: number;
  /** A write's `read_token`: wait until every shard has applied that far. */
  read_token?: string;
  shards_to_search?: number;
}

type Example = number[] | PointId | { text: string } | { image: string };

/** A positive and a negative example: wanted points are closer to the first. */
export interface ContextPair {
  positive: Example;
  negative: Example;
}

/** `lookup_from`: the query's point ids name points of another collection (its vector `vector`). */
export interface LookupLocation {
  collection: string;
  vector?: string;
}

export type QueryInput =
  | number[]
  | PointId
  | { nearest: Example }
  | { text: string }
  /** An image in base64, embedded by the collection's image model. */
  | { image: string; model?: string }
  /** Points like the positive examples and unlike the negative ones (the example points are left out):
   * `average_vector` (default) searches near 2·mean(positive) − mean(negative); `best_score` and `sum_scores`
   * score each point against every example. */
  | { recommend: { positive: Example[]; negative?: Example[]; strategy?: "average_vector" | "best_score" | "sum_scores" } }
  /** Points like `target`, on the positive side of each context pair first. */
  | { discover: { target: Example; context: ContextPair | ContextPair[] } }
  /** Points on the positive side of every pair (score 0), then the rest, less the farther they stray. */
  | { context: ContextPair | ContextPair[] }
  /** BM25 over a payload key with a `text` index. */
  | { bm25: { key: string; text: string } }
  /** A sparse query, for the sparse vector `using` names. */
  | SparseVector
  /** Fuse the `prefetch` stages' hits. */
  | { fusion: "rrf" | "dbsf" }
  | { rrf: { k?: number; weights?: number[] } };

/** A stage run before the query: its hits are fused, or are the only points the query ranks. */
export interface Prefetch {
  prefetch?: Prefetch | Prefetch[];
  query?: QueryInput;
  lookup_from?: LookupLocation;
  /** Which named vector this stage searches. */
  using?: string;
  filter?: Filter;
  params?: SearchParams;
  score_threshold?: number;
  /** Default 10. */
  limit?: number;
}

/** A payload index type, or Qdrant's text-index settings. */
export type FieldSchema =
  | "keyword" | "integer" | "float" | "bool" | "datetime" | "uuid" | "text" | "geo"
  | {
    type: "text";
    tokenizer?: "word";
    lowercase?: true;
    stemmer?: { type: "snowball"; language: "english" };
    stopwords?: "english";
  };

export interface QueryRequest {
  query?: QueryInput;
  /** Take the query's point ids from another collection. */
  lookup_from?: LookupLocation;
  prefetch?: Prefetch | Prefetch[];
  filter?: Filter;
  params?: SearchParams;
  limit?: number;
  offset?: number;
  with_payload?: WithPayload;
  /** Which named vector the query searches (required with named vectors). */
  using?: string;
  with_vector?: boolean | string[];
  score_threshold?: number;
  explain?: boolean;
  min_seq?: number;
  /** A write's `read_token`: wait until every shard has applied that far. */
  read_token?: string;
  shards_to_search?: number;
}

export interface ScoredPoint {
  id: PointId;
  version: number;
  score: number;
  payload?: Payload;
  vector?: VectorOutput;
}

export interface QueryResponse {
  points: ScoredPoint[];
  explain?: Record<string, unknown>;
}

export interface Record_ {
  id: PointId;
  payload?: Payload;
  vector?: VectorOutput;
  /** A scroll with `order_by`: the value the point was ordered by (microseconds since 1970 for a datetime key). */
  order_value?: number;
}

export interface ScrollRequest {
  offset?: PointId;
  /** Order by a payload value instead of by id (one page; continue with `start_from`, not `offset`). */
  order_by?: string | { key: string; direction?: "asc" | "desc"; start_from?: number | string };
  limit?: number;
  filter?: Filter;
  with_payload?: WithPayload;
  with_vector?: boolean | string[];
  min_seq?: number;
  /** A write's `read_token`: wait until every shard has applied that far. */
  read_token?: string;
}

export interface ScrollResult {
  points: Record_[];
  next_page_offset: PointId | null;
}

export interface GroupsRequest extends Omit<QueryRequest, "explain"> {
  vector?: number[];
  text?: string;
  group_by: string;
  group_size?: number;
}

export interface GroupsResult {
  groups: { id: unknown; hits: ScoredPoint[] }[];
}

export interface DocumentInput {
  id: string | number;
  text: string;
  metadata?: Payload;
}

export interface DocumentsResult extends UpdateResult {
  documents: { id: string; chunks: number }[];
}

export interface SnapshotDescription {
  name: string;
  creation_time: string;
  size: number;
}

/** One change of a collection, from the change feed. */
export type Change =
  | { seq: number; op: "upsert"; points: { id: PointId; payload?: Payload; vector?: number[]; expires_ms?: number }[] }
  | { seq: number; op: "delete"; ids: PointId[] }
  | { seq: number; op: "create_field_index"; key: string; type: string }
  | { seq: number; op: "drop_field_index"; key: string }
  | { seq: number; op: string; [k: string]: unknown };

/** An error reply (or a failed request): `status` is the HTTP status (0 when no reply came). */
export class QuiverError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "QuiverError";
    this.status = status;
  }
}

export interface ClientOptions {
  /** Sent as `api-key`. */
  apiKey?: string;
  /** Per request, milliseconds (default 60 s; the change feed has none). */
  timeoutMs?: number;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
}

/**
 * Every route the client calls, as `METHOD /path/{param}` — a test checks each against the server's
 * `/openapi.json`, so the client cannot call a route the server does not have.
 */
export const ROUTES = [
  "GET /collections",
  "PUT /collections/{collection_name}",
  "GET /collections/{collection_name}",
  "DELETE /collections/{collection_name}",
  "GET /collections/{collection_name}/exists",
  "PUT /collections/{collection_name}/index",
  "DELETE /collections/{collection_name}/index/{field_name}",
  "PUT /collections/{collection_name}/points",
  "POST /collections/{collection_name}/points",
  "GET /collections/{collection_name}/points/{id}",
  "POST /collections/{collection_name}/points/delete",
  "POST /collections/{collection_name}/points/payload",
  "PUT /collections/{collection_name}/points/payload",
  "POST /collections/{collection_name}/points/payload/delete",
  "POST /collections/{collection_name}/points/payload/clear",
  "POST /collections/{collection_name}/points/scroll",
  "POST /collections/{collection_name}/points/count",
  "POST /collections/{collection_name}/points/search",
  "POST /collections/{collection_name}/points/search/batch",
  "POST /collections/{collection_name}/points/query",
  "POST /collections/{collection_name}/points/query/batch",
  "POST /collections/{collection_name}/points/search/groups",
  "POST /collections/{collection_name}/points/query/groups",
  "POST /collections/{collection_name}/documents",
  "DELETE /collections/{collection_name}/documents/{doc_id}",
  "POST /collections/{collection_name}/snapshots",
  "GET /collections/{collection_name}/snapshots",
  "GET /collections/{collection_name}/snapshots/{snapshot_name}",
  "DELETE /collections/{collection_name}/snapshots/{snapshot_name}",
  "PUT /collections/{collection_name}/snapshots/recover",
  "GET /collections/{collection_name}/changes",
  "GET /cluster",
] as const;

type Query = Record<string, string | number | boolean | undefined>;
const enc = encodeURIComponent;

/** A QuiverDB server. */
export class QuiverClient {
  readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(url = "http://127.0.0.1:6333", options: ClientOptions = {}) {
    if (!/^https?:\/\/[^/]+/.test(url)) {
      throw new QuiverError(0, `invalid url: expected http://host:port or https://host:port, got ${JSON.stringify(url)}`);
    }
    this.url = url.replace(/\/+$/, "");
    this.headers = { "content-type": "application/json", accept: "application/json" };
    if (options.apiKey) this.headers["api-key"] = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new QuiverError(0, "no fetch: pass options.fetch (Node 18+ has one)");
    this.fetchFn = f.bind(globalThis);
  }

  private target(path: string, query?: Query): string {
    let t = this.url + path;
    if (query) {
      const q = Object.entries(query)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${enc(k)}=${enc(String(v))}`);
      if (q.length) t += "?" + q.join("&");
    }
    return t;
  }

  /** One call: the reply's `result`; an error reply throws a {@link QuiverError} with the server's message. */
  async request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    const resp = await this.send(method, path, body, query, this.timeoutMs);
    const ctype = resp.headers.get("content-type") ?? "";
    if (!ctype.includes("json")) return (await resp.arrayBuffer()) as T;
    const doc = (await resp.json()) as { result?: T };
    return (doc && typeof doc === "object" && "result" in doc ? doc.result : doc) as T;
  }

  private async send(method: string, path: string, body: unknown, query: Query | undefined, timeoutMs: number,
                     signal?: AbortSignal, extraHeaders?: Record<string, string>): Promise<Response> {
    const ctrl = new AbortController();
    const timer = timeoutMs > 0 ? setTimeout(() => ctrl.abort(), timeoutMs) : undefined;
    const onAbort = () => ctrl.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    let resp: Response;
    try {
      resp = await this.fetchFn(this.target(path, query), {
        method,
        headers: { ...this.headers, ...extraHeaders },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctrl.signal,
      });
    } catch (e) {
      if (timer) clearTimeout(timer);
      const why = ctrl.signal.aborted && !signal?.aborted ? `timed out after ${timeoutMs} ms` : String(e);
      throw new QuiverError(0, `${method} ${this.url}${path}: ${why}`);
    }
    if (timer && !(resp.headers.get("content-type") ?? "").includes("event-stream")) clearTimeout(timer);
    if (!resp.ok) {
      const text = await resp.text();
      let message = text;
      try {
        const doc = JSON.parse(text) as { status?: { error?: string } };
        message = doc.status?.error ?? text;
      } catch {
        /* not JSON: keep the text */
      }
      throw new QuiverError(resp.status, message || `${resp.status} ${resp.statusText}`);
    }
    return resp;
  }

  listCollections(): Promise<{ collections: { name: string; unavailable?: string }[] }> {
    return this.request("GET", "/collections");
  }

  createCollection(name: string, config: CreateCollection): Promise<boolean> {
    return this.request("PUT", `/collections/${enc(name)}`, config);
  }

  getCollection(name: string): Promise<Record<string, unknown> & { points_count: number; quiver: Record<string, unknown> }> {
    return this.request("GET", `/collections/${enc(name)}`);
  }

  async collectionExists(name: string): Promise<boolean> {
    return (await this.request<{ exists: boolean }>("GET", `/collections/${enc(name)}/exists`)).exists;
  }

  deleteCollection(name: string): Promise<boolean> {
    return this.request("DELETE", `/collections/${enc(name)}`);
  }

  /** The cluster's shard map and nodes (cluster mode only). */
  clusterStatus(): Promise<Record<string, unknown>> {
    return this.request("GET", "/cluster");
  }

  /** A handle on one collection's points, searches, documents, snapshots and change feed. */
  collection(name: string): Collection {
    return new Collection(this, name);
  }

  /** @internal the change feed's raw stream. */
  async openStream(path: string, query: Query, signal?: AbortSignal, lastEventId?: number): Promise<Response> {
    const extra: Record<string, string> = { accept: "text/event-stream" };
    if (lastEventId !== undefined) extra["last-event-id"] = String(lastEventId);
    return this.send("GET", path, undefined, query, 0, signal, extra);
  }
}

export interface WriteOptions {
  /** Durable when the call returns (the server fsyncs). */
  wait?: boolean;
}

/** One collection. */
export class Collection {
  constructor(private readonly client: QuiverClient, readonly name: string) {}

  private get base(): string {
    return `/collections/${enc(this.name)}`;
  }

  private write<T = UpdateResult>(method: string, path: string, body: unknown, o?: WriteOptions): Promise<T> {
    return this.client.request(method, this.base + path, body, o?.wait ? { wait: true } : undefined);
  }

  info() {
    return this.client.getCollection(this.name);
  }

  upsert(points: { points: PointStruct[] } | { batch: Batch }, o?: WriteOptions): Promise<UpdateResult> {
    return this.write("PUT", "/points", points, o);
  }

  retrieve(ids: PointId[], opts: { with_payload?: WithPayload; with_vector?: boolean | string[] } = {}): Promise<Record_[]> {
    return this.client.request("POST", this.base + "/points", { ids, ...opts });
  }

  get(id: PointId): Promise<Record_> {
    return this.client.request("GET", `${this.base}/points/${enc(String(id))}`);
  }

  delete(selector: { points: PointId[] } | { filter: Filter }, o?: WriteOptions): Promise<UpdateResult> {
    return this.write("POST", "/points/delete", selector, o);
  }

  setPayload(req: { payload: Payload; points?: PointId[]; filter?: Filter; key?: string }, o?: WriteOptions) {
    return this.write("POST", "/points/payload", req, o);
  }

  overwritePayload(req: { payload: Payload; points?: PointId[]; filter?: Filter }, o?: WriteOptions) {
    return this.write("PUT", "/points/payload", req, o);
  }

  deletePayload(req: { keys: string[]; points?: PointId[]; filter?: Filter }, o?: WriteOptions) {
    return this.write("POST", "/points/payload/delete", req, o);
  }

  clearPayload(selector: { points: PointId[] } | { filter: Filter }, o?: WriteOptions) {
    return this.write("POST", "/points/payload/clear", selector, o);
  }

  createIndex(field_name: string, field_schema: FieldSchema, o?: WriteOptions) {
    return this.write("PUT", "/index", { field_name, field_schema }, o);
  }

  deleteIndex(field_name: string, o?: WriteOptions) {
    return this.write("DELETE", `/index/${enc(field_name)}`, undefined, o);
  }

  scroll(req: ScrollRequest = {}): Promise<ScrollResult> {
    return this.client.request("POST", this.base + "/points/scroll", req);
  }

  /** Every point the filter admits, in id order, a page at a time. */
  async *iterate(req: Omit<ScrollRequest, "offset"> = {}): AsyncGenerator<Record_> {
    let offset: PointId | undefined;
    for (;;) {
      const page = await this.scroll({ ...req, offset });
      yield* page.points;
      if (page.next_page_offset === null || page.next_page_offset === undefined) return;
      offset = page.next_page_offset;
    }
  }

  async count(filter?: Filter): Promise<number> {
    return (await this.client.request<{ count: number }>("POST", this.base + "/points/count", filter ? { filter } : {}))
      .count;
  }

  search(req: SearchRequest): Promise<ScoredPoint[]> {
    return this.client.request("POST", this.base + "/points/search", req);
  }

  searchBatch(searches: SearchRequest[]): Promise<ScoredPoint[][]> {
    return this.client.request("POST", this.base + "/points/search/batch", { searches });
  }

  query(req: QueryRequest): Promise<QueryResponse> {
    return this.client.request("POST", this.base + "/points/query", req);
  }

  /** The best BM25 matches of `text` in a payload key with a `text` index. */
  async textSearch(key: string, text: string, limit = 10, req: Omit<QueryRequest, "query" | "prefetch"> = {}) {
    return (await this.query({ ...req, query: { bm25: { key, text } }, limit })).points;
  }

  /** Keywords and meaning: BM25 on `text` and the nearest points to `vector` (default: `text` embedded by the
   * collection's model), `candidates` each, fused (`rrf` with constant `k`, or `dbsf`). */
  async hybridSearch(
    key: string,
    text: string,
    opts: { vector?: number[]; limit?: number; candidates?: number; fusion?: "rrf" | "dbsf"; k?: number;
      /** [keywords, vector]: each list's share of RRF (default equal). */
      weights?: [number, number]; filter?: Filter; with_payload?: WithPayload } = {},
  ): Promise<ScoredPoint[]> {
    const n = opts.candidates ?? 50;
    const dense: QueryInput = opts.vector ?? { text };
    const query: QueryInput = opts.fusion === "dbsf" ? { fusion: "dbsf" }
      : { rrf: { k: opts.k ?? 60, ...(opts.weights ? { weights: opts.weights } : {}) } };
    return (await this.query({
      prefetch: [{ query: { bm25: { key, text } }, limit: n }, { query: dense, limit: n }],
      query, limit: opts.limit ?? 10, filter: opts.filter, with_payload: opts.with_payload ?? true,
    })).points;
  }

  queryBatch(searches: QueryRequest[]): Promise<QueryResponse[]> {
    return this.client.request("POST", this.base + "/points/query/batch", { searches });
  }

  searchGroups(req: GroupsRequest): Promise<GroupsResult> {
    return this.client.request("POST", this.base + "/points/search/groups", req);
  }

  queryGroups(req: GroupsRequest): Promise<GroupsResult> {
    return this.client.request("POST", this.base + "/points/query/groups", req);
  }

  upsertDocuments(
    documents: DocumentInput[],
    chunking?: { max_tokens?: number; overlap_tokens?: number },
    o?: WriteOptions,
  ): Promise<DocumentsResult> {
    return this.write("POST", "/documents", chunking ? { documents, chunking } : { documents }, o);
  }

  deleteDocument(docId: string | number, o?: WriteOptions): Promise<UpdateResult> {
    return this.write("DELETE", `/documents/${enc(String(docId))}`, undefined, o);
  }

  createSnapshot(): Promise<SnapshotDescription> {
    return this.client.request("POST", this.base + "/snapshots");
  }

  listSnapshots(): Promise<SnapshotDescription[]> {
    return this.client.request("GET", this.base + "/snapshots");
  }

  /** The archive's bytes. */
  downloadSnapshot(name: string): Promise<ArrayBuffer> {
    return this.client.request("GET", `${this.base}/snapshots/${enc(name)}`);
  }

  deleteSnapshot(name: string): Promise<boolean> {
    return this.client.request("DELETE", `${this.base}/snapshots/${enc(name)}`);
  }

  /** Replaces the collection from one of its snapshots on the server (by name). */
  recoverSnapshot(name: string): Promise<boolean> {
    return this.client.request("PUT", this.base + "/snapshots/recover", { location: name });
  }

  /**
   * The change feed (Server-Sent Events) as an async iterator: every operation after `after` (default: from now
   * on), in order. Breaking out of the loop, or aborting `signal`, closes the stream. A feed that can no longer
   * resume (`410`) throws a {@link QuiverError}.
   */
  async *changes(
    opts: { after?: number; with_payload?: boolean; with_vector?: boolean; signal?: AbortSignal } = {},
  ): AsyncGenerator<Change> {
    const { signal, ...q } = opts;
    const resp = await this.client.openStream(this.base + "/changes", q, signal);
    const body = resp.body;
    if (!body) throw new QuiverError(resp.status, "the change feed reply has no body");
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let event = "message";
    let data: string[] = [];
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += decoder.decode(value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, "");
          buf = buf.slice(nl + 1);
          if (line === "") {
            if (data.length) {
              const payload = JSON.parse(data.join("\n")) as Record<string, unknown>;
              if (event === "closed") return;
              if (event === "error") throw new QuiverError(0, String(payload.error ?? JSON.stringify(payload)));
              yield payload as Change;
            }
            event = "message";
            data = [];
          } else if (line.startsWith(":")) {
            // keep-alive comment
          } else {
            const i = line.indexOf(":");
            const field = i < 0 ? line : line.slice(0, i);
            const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
            if (field === "event") event = val;
            else if (field === "data") data.push(val);
          }
        }
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }
}
