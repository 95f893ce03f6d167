//! The API's operations, written once: the macro makes each an `async fn` on [`crate::Client`] and a blocking
//! twin on [`crate::blocking::Client`].

use http::Method;
use serde_json::Value;

use crate::wire::{
    CollectionExistence, CollectionInfo, CollectionsResponse, CountRequest, CountResult, CreateCollection,
    CreateFieldIndex, DeletePayload, DocumentsResult, GroupsResult, PointRequest, PointsSelector, QueryBatch,
    QueryGroupsRequest, QueryRequest, QueryResponse, Record, ScoredPoint, ScrollRequest, ScrollResult, SearchBatch,
    SearchGroupsRequest, SearchRequest, SetPayload, SnapshotDescription, SnapshotRecover, UpdateResult,
    UpsertDocuments, UpsertPoints,
};
use crate::{Error, PointId, Result, segment};

macro_rules! api {
    ($( $(#[$doc:meta])* fn $name:ident(&$self:ident $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty $body:block )*) => {
        impl crate::Client {
            $( $(#[$doc])* pub async fn $name(&$self $(, $arg: $ty)*) -> Result<$ret> $body )*
        }
        impl crate::blocking::Client {
            $( $(#[$doc])* pub fn $name(&$self $(, $arg: $ty)*) -> Result<$ret> {
                $self.block_on($self.inner().$name($($arg),*))
            } )*
        }
    };
}

fn col(name: &str) -> String {
    format!("/collections/{}", segment(name))
}

fn wait_q(wait: bool) -> &'static str {
    if wait { "?wait=true" } else { "" }
}

/// `result` must be `true`.
fn expect_true(method: &str, path: &str, ok: bool) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::BadReply { request: format!("{method} {path}"), detail: "result false, expected true".into() })
    }
}

api! {
    /// `GET /collections`: every collection's name.
    fn list_collections(&self) -> Vec<String> {
        let r: CollectionsResponse = self.get("/collections").await?;
        Ok(r.collections.into_iter().map(|c| c.name).collect())
    }

    /// `GET /collections/{c}/exists`.
    fn collection_exists(&self, name: &str) -> bool {
        let r: CollectionExistence = self.get(&format!("{}/exists", col(name))).await?;
        Ok(r.exists)
    }

    /// `GET /collections/{c}`: counts, configuration and the engine's report.
    fn collection_info(&self, name: &str) -> CollectionInfo {
        self.get(&col(name)).await
    }

    /// `PUT /collections/{c}`.
    fn create_collection(&self, name: &str, config: &CreateCollection) -> () {
        let path = col(name);
        let ok: bool = self.send_json(Method::PUT, &path, config).await?;
        expect_true("PUT", &path, ok)
    }

    /// `DELETE /collections/{c}`: `true` when it existed.
    fn delete_collection(&self, name: &str) -> bool {
        self.delete(&col(name)).await
    }

    /// `PUT /collections/{c}/points`: insert or replace points. With `wait`, the reply comes once the write is
    /// durable.
    fn upsert(&self, name: &str, points: &UpsertPoints, wait: bool) -> UpdateResult {
        self.send_json(Method::PUT, &format!("{}/points{}", col(name), wait_q(wait)), points).await
    }

    /// `PUT /collections/{c}/points` with a body already encoded (see [`crate::encode_points`]).
    fn upsert_encoded(&self, name: &str, body: Vec<u8>, wait: bool) -> UpdateResult {
        self.send_encoded(Method::PUT, &format!("{}/points{}", col(name), wait_q(wait)), body).await
    }

    /// `POST /collections/{c}/points`: points by id (missing ids are left out).
    fn get_points(&self, name: &str, request: &PointRequest) -> Vec<Record> {
        self.send_json(Method::POST, &format!("{}/points", col(name)), request).await
    }

    /// `GET /collections/{c}/points/{id}`.
    fn get_point(&self, name: &str, id: &PointId) -> Record {
        self.get(&format!("{}/points/{}", col(name), segment(&id.to_string()))).await
    }

    /// `POST /collections/{c}/points/delete`: by ids or by filter.
    fn delete_points(&self, name: &str, selector: &PointsSelector, wait: bool) -> UpdateResult {
        self.send_json(Method::POST, &format!("{}/points/delete{}", col(name), wait_q(wait)), selector).await
    }

    /// `POST /collections/{c}/points/payload`: merge keys into the payloads.
    fn set_payload(&self, name: &str, request: &SetPayload, wait: bool) -> UpdateResult {
        self.send_json(Method::POST, &format!("{}/points/payload{}", col(name), wait_q(wait)), request).await
    }

    /// `PUT /collections/{c}/points/payload`: replace the payloads.
    fn overwrite_payload(&self, name: &str, request: &SetPayload, wait: bool) -> UpdateResult {
        self.send_json(Method::PUT, &format!("{}/points/payload{}", col(name), wait_q(wait)), request).await
    }

    /// `POST /collections/{c}/points/payload/delete`: remove keys.
    fn delete_payload(&self, name: &str, request: &DeletePayload, wait: bool) -> UpdateResult {
        let path = format!("{}/points/payload/delete{}", col(name), wait_q(wait));
        self.send_json(Method::POST, &path, request).await
    }

    /// `POST /collections/{c}/points/payload/clear`: empty the payloads.
    fn clear_payload(&self, name: &str, selector: &PointsSelector, wait: bool) -> UpdateResult {
        let path = format!("{}/points/payload/clear{}", col(name), wait_q(wait));
        self.send_json(Method::POST, &path, selector).await
    }

    /// `POST /collections/{c}/points/search`: the `limit` nearest points.
    fn search(&self, name: &str, request: &SearchRequest) -> Vec<ScoredPoint> {
        self.send_json(Method::POST, &format!("{}/points/search", col(name)), request).await
    }

    /// `POST /collections/{c}/points/search/batch`: one list of hits per search, in order.
    fn search_batch(&self, name: &str, batch: &SearchBatch) -> Vec<Vec<ScoredPoint>> {
        self.send_json(Method::POST, &format!("{}/points/search/batch", col(name)), batch).await
    }

    /// `POST /collections/{c}/points/query`: by vector, stored point or text; with `explain`, the plan.
    fn query(&self, name: &str, request: &QueryRequest) -> QueryResponse {
        self.send_json(Method::POST, &format!("{}/points/query", col(name)), request).await
    }

    /// `POST /collections/{c}/points/query/batch`.
    fn query_batch(&self, name: &str, batch: &QueryBatch) -> Vec<QueryResponse> {
        self.send_json(Method::POST, &format!("{}/points/query/batch", col(name)), batch).await
    }

    /// `POST /collections/{c}/points/search/groups`: the best groups of hits sharing a payload value.
    fn search_groups(&self, name: &str, request: &SearchGroupsRequest) -> GroupsResult {
        self.send_json(Method::POST, &format!("{}/points/search/groups", col(name)), request).await
    }

    /// `POST /collections/{c}/points/query/groups`.
    fn query_groups(&self, name: &str, request: &QueryGroupsRequest) -> GroupsResult {
        self.send_json(Method::POST, &format!("{}/points/query/groups", col(name)), request).await
    }

    /// `POST /collections/{c}/points/scroll`: a page of points in id order.
    fn scroll(&self, name: &str, request: &ScrollRequest) -> ScrollResult {
        self.send_json(Method::POST, &format!("{}/points/scroll", col(name)), request).await
    }

    /// `POST /collections/{c}/points/count`.
    fn count(&self, name: &str, request: &CountRequest) -> u64 {
        let r: CountResult = self.send_json(Method::POST, &format!("{}/points/count", col(name)), request).await?;
        Ok(r.count)
    }

    /// `PUT /collections/{c}/index`: index a payload field.
    fn create_field_index(&self, name: &str, request: &CreateFieldIndex, wait: bool) -> UpdateResult {
        self.send_json(Method::PUT, &format!("{}/index{}", col(name), wait_q(wait)), request).await
    }

    /// `DELETE /collections/{c}/index/{field}`.
    fn delete_field_index(&self, name: &str, field: &str, wait: bool) -> UpdateResult {
        self.delete(&format!("{}/index/{}{}", col(name), segment(field), wait_q(wait))).await
    }

    /// `POST /collections/{c}/documents`: texts cut into chunks and embedded by the collection's model.
    fn upsert_documents(&self, name: &str, request: &UpsertDocuments, wait: bool) -> DocumentsResult {
        self.send_json(Method::POST, &format!("{}/documents{}", col(name), wait_q(wait)), request).await
    }

    /// `DELETE /collections/{c}/documents/{doc_id}`: every chunk of the document.
    fn delete_document(&self, name: &str, doc_id: &str, wait: bool) -> UpdateResult {
        self.delete(&format!("{}/documents/{}{}", col(name), segment(doc_id), wait_q(wait))).await
    }

    /// `POST /collections/{c}/snapshots`: archive the collection on the server.
    fn create_snapshot(&self, name: &str) -> SnapshotDescription {
        let path = format!("{}/snapshots", col(name));
        self.exchange(Method::POST, &path, crate::empty(), None).await
    }

    /// `GET /collections/{c}/snapshots`.
    fn list_snapshots(&self, name: &str) -> Vec<SnapshotDescription> {
        self.get(&format!("{}/snapshots", col(name))).await
    }

    /// `DELETE /collections/{c}/snapshots/{snapshot}`.
    fn delete_snapshot(&self, name: &str, snapshot: &str) -> () {
        let path = format!("{}/snapshots/{}", col(name), segment(snapshot));
        let ok: bool = self.delete(&path).await?;
        expect_true("DELETE", &path, ok)
    }

    /// `PUT /collections/{c}/snapshots/recover`: restore from an archive in the collection's snapshot list.
    fn recover_snapshot(&self, name: &str, request: &SnapshotRecover) -> () {
        let path = format!("{}/snapshots/recover", col(name));
        let ok: bool = self.send_json(Method::PUT, &path, request).await?;
        expect_true("PUT", &path, ok)
    }

    /// `GET /cluster`: the shard map, nodes and leases (cluster mode; a single node answers 400).
    fn cluster_status(&self) -> Value {
        self.get("/cluster").await
    }
}
