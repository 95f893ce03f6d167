//! gRPC, wire-compatible with Qdrant's public interface for the common calls (`qdrant-client(prefer_grpc=True)`
//! works): `Qdrant.HealthCheck`; `Collections` Get, List, Create, Delete, CollectionExists; `Points` Upsert,
//! Delete, Get, SetPayload, OverwritePayload, DeletePayload, ClearPayload, CreateFieldIndex, DeleteFieldIndex,
//! Search, Scroll, Count, Query, QueryBatch, QueryGroups.
//!
//! Each call becomes the REST request it mirrors and goes through the same router in-process ([`crate::app`]):
//! the same key and token checks (the `api-key` or `authorization` metadata is passed on as the header), the same
//! parsing, limits, engine calls and error messages. The HTTP status becomes the gRPC code ([`code_for`]).
//! Served on its own port (`--grpc-port`), plain HTTP/2; see `docs/server.md#grpc`.

pub mod convert;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Map, Value, json};
use tonic::{Code, Response, Status};
use tower::ServiceExt as _;

use convert::{Put as _, Res};

/// The generated messages and service traits of `proto/qdrant.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod pb {
    tonic::include_proto!("qdrant");
}

/// The compiled `proto/qdrant.proto` (a `FileDescriptorSet`), for checking it against Qdrant's own clients.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/qdrant_descriptor.bin"));

/// The gRPC code for an HTTP status of the REST route.
pub fn code_for(status: StatusCode) -> Code {
    match status.as_u16() {
        400 | 405 | 413 | 415 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        408 => Code::DeadlineExceeded,
        409 => Code::AlreadyExists,
        429 | 507 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        501 => Code::Unimplemented,
        _ => Code::Internal,
    }
}

/// The services, over the application router.
#[derive(Clone)]
pub struct Grpc {
    router: Router,
}

impl std::fmt::Debug for Grpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grpc").finish_non_exhaustive()
    }
}

/// A REST reply's `result` and `time`.
struct Reply {
    result: Value,
    time: f64,
}

fn wait_query(wait: Option<bool>) -> &'static str {
    if wait == Some(true) { "?wait=true" } else { "" }
}

impl Grpc {
    /// Services answering through `router` (from [`crate::app`]).
    pub fn new(router: Router) -> Self {
        Grpc { router }
    }

    /// The tonic routes of the three services, as an axum router to serve on the gRPC port.
    pub fn into_router(self) -> Router {
        tonic::service::Routes::new(pb::qdrant_server::QdrantServer::new(self.clone()))
            .add_service(pb::collections_server::CollectionsServer::new(self.clone()))
            .add_service(pb::points_server::PointsServer::new(self))
            .into_axum_router()
    }

    /// `method path` with a JSON body through the router, with the caller's credential.
    async fn call<T>(&self, req: &tonic::Request<T>, method: Method, path: String, body: Option<Value>) -> Res<Reply> {
        let mut http = Request::builder().method(method).uri(path);
        for name in ["api-key", "authorization"] {
            if let Some(v) = req.metadata().get(name).and_then(|v| v.to_str().ok()) {
                http = http.header(name, v);
            }
        }
        let http = match body {
            Some(b) => http.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => http.body(Body::empty()),
        }
        .map_err(|e| Status::invalid_argument(format!("building the request: {e}")))?;
        let resp = self.router.clone().oneshot(http).await.map_err(|e| Status::internal(e.to_string()))?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .map_err(|e| Status::internal(format!("reading the reply: {e}")))?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
        if !status.is_success() {
            let msg = v
                .pointer("/status/error")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            return Err(Status::new(code_for(status), msg));
        }
        Ok(Reply { time: v["time"].as_f64().unwrap_or(0.0), result: v.get("result").cloned().unwrap_or(v) })
    }

    async fn points_op<T>(
        &self,
        req: &tonic::Request<T>,
        method: Method,
        path: String,
        body: Value,
    ) -> Res<Response<pb::PointsOperationResponse>> {
        let r = self.call(req, method, path, Some(body)).await?;
        Ok(Response::new(pb::PointsOperationResponse { result: Some(convert::update_result(&r.result)), time: r.time }))
    }
}

fn col(name: &str) -> String {
    format!("/collections/{}", crate::wire::segment(name))
}

#[tonic::async_trait]
impl pb::qdrant_server::Qdrant for Grpc {
    async fn health_check(&self, req: tonic::Request<pb::HealthCheckRequest>) -> Res<Response<pb::HealthCheckReply>> {
        let r = self.call(&req, Method::GET, "/".into(), None).await?;
        Ok(Response::new(pb::HealthCheckReply {
            title: r.result["title"].as_str().unwrap_or("quiverdb").to_owned(),
            version: r.result["version"].as_str().unwrap_or_default().to_owned(),
            commit: None,
        }))
    }
}

#[tonic::async_trait]
impl pb::collections_server::Collections for Grpc {
    async fn get(
        &self,
        req: tonic::Request<pb::GetCollectionInfoRequest>,
    ) -> Res<Response<pb::GetCollectionInfoResponse>> {
        let path = col(&req.get_ref().collection_name);
        let r = self.call(&req, Method::GET, path, None).await?;
        Ok(Response::new(pb::GetCollectionInfoResponse {
            result: Some(convert::collection_info(&r.result)),
            time: r.time,
        }))
    }

    async fn list(
        &self,
        req: tonic::Request<pb::ListCollectionsRequest>,
    ) -> Res<Response<pb::ListCollectionsResponse>> {
        let r = self.call(&req, Method::GET, "/collections".into(), None).await?;
        let collections = r.result["collections"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| pb::CollectionDescription { name: c["name"].as_str().unwrap_or_default().to_owned() })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Response::new(pb::ListCollectionsResponse { collections, time: r.time }))
    }

    async fn create(
        &self,
        req: tonic::Request<pb::CreateCollection>,
    ) -> Res<Response<pb::CollectionOperationResponse>> {
        let body = convert::create_body(req.get_ref())?;
        let path = col(&req.get_ref().collection_name);
        let r = self.call(&req, Method::PUT, path, Some(body)).await?;
        Ok(Response::new(pb::CollectionOperationResponse { result: r.result.as_bool().unwrap_or(true), time: r.time }))
    }

    async fn delete(
        &self,
        req: tonic::Request<pb::DeleteCollection>,
    ) -> Res<Response<pb::CollectionOperationResponse>> {
        let path = col(&req.get_ref().collection_name);
        let r = self.call(&req, Method::DELETE, path, None).await?;
        Ok(Response::new(pb::CollectionOperationResponse { result: r.result.as_bool().unwrap_or(true), time: r.time }))
    }

    async fn collection_exists(
        &self,
        req: tonic::Request<pb::CollectionExistsRequest>,
    ) -> Res<Response<pb::CollectionExistsResponse>> {
        let path = format!("{}/exists", col(&req.get_ref().collection_name));
        let r = self.call(&req, Method::GET, path, None).await?;
        Ok(Response::new(pb::CollectionExistsResponse {
            result: Some(pb::CollectionExists { exists: r.result["exists"].as_bool().unwrap_or(false) }),
            time: r.time,
        }))
    }
}

#[tonic::async_trait]
impl pb::points_server::Points for Grpc {
    async fn upsert(&self, req: tonic::Request<pb::UpsertPoints>) -> Res<Response<pb::PointsOperationResponse>> {
        let r = req.get_ref();
        if r.shard_key_selector.is_some() {
            return Err(convert::unsupported("shard_key_selector"));
        }
        if r.update_filter.is_some() {
            return Err(convert::unsupported("update_filter"));
        }
        let mut points = Vec::with_capacity(r.points.len());
        for (i, p) in r.points.iter().enumerate() {
            let path = format!("points[{i}]");
            let id =
                p.id.as_ref()
                    .ok_or_else(|| Status::invalid_argument(format!("{path}.id: expected a point id, got none")))?;
            let mut o = Map::new();
            o.insert("id".into(), convert::point_id_json(id, &format!("{path}.id"))?);
            if let Some(v) = &p.vectors {
                o.insert("vector".into(), convert::vectors_json(v, &format!("{path}.vectors"))?);
            }
            o.insert("payload".into(), convert::payload_json(&p.payload));
            points.push(Value::Object(o));
        }
        let path = format!("{}/points{}", col(&r.collection_name), wait_query(r.wait));
        self.points_op(&req, Method::PUT, path, json!({"points": points})).await
    }

    async fn delete(&self, req: tonic::Request<pb::DeletePoints>) -> Res<Response<pb::PointsOperationResponse>> {
        let r = req.get_ref();
        let mut body = Map::new();
        convert::selector_fields(r.points.as_ref(), "points", &mut body)?;
        let path = format!("{}/points/delete{}", col(&r.collection_name), wait_query(r.wait));
        self.points_op(&req, Method::POST, path, Value::Object(body)).await
    }

    async fn get(&self, req: tonic::Request<pb::GetPoints>) -> Res<Response<pb::GetResponse>> {
        let r = req.get_ref();
        let ids = r
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| convert::point_id_json(id, &format!("ids[{i}]")))
            .collect::<Res<Vec<_>>>()?;
        let mut body = Map::new();
        body.insert("ids".into(), Value::Array(ids));
        convert::selectors(&mut body, r.with_payload.as_ref(), r.with_vectors.as_ref());
        let path = format!("{}/points", col(&r.collection_name));
        let reply = self.call(&req, Method::POST, path, Some(Value::Object(body))).await?;
        let result =
            reply.result.as_array().map(|a| a.iter().map(convert::retrieved_point).collect()).unwrap_or_default();
        Ok(Response::new(pb::GetResponse { result, time: reply.time }))
    }

    async fn set_payload(
        &self,
        req: tonic::Request<pb::SetPayloadPoints>,
    ) -> Res<Response<pb::PointsOperationResponse>> {
        let (path, body) = payload_body(req.get_ref())?;
        self.points_op(&req, Method::POST, path, body).await
    }

    async fn overwrite_payload(
        &self,
        req: tonic::Request<pb::SetPayloadPoints>,
    ) -> Res<Response<pb::PointsOperationResponse>> {
        let (path, body) = payload_body(req.get_ref())?;
        self.points_op(&req, Method::PUT, path, body).await
    }

    async fn delete_payload(
        &self,
        req: tonic::Request<pb::DeletePayloadPoints>,
    ) -> Res<Response<pb::PointsOperationResponse>> {
        let r = req.get_ref();
        let mut body = Map::new();
        body.insert("keys".into(), json!(r.keys));
        convert::selector_fields(r.points_selector.as_ref(), "points_selector", &mut body)?;
        let path = format!("{}/points/payload/delete{}", col(&r.collection_name), wait_query(r.wait));
        self.points_op(&req, Method::POST, path, Value::Object(body)).await
    }

    async fn clear_payload(
        &self,
        req: tonic::Request<pb::ClearPayloadPoints>,
    ) -> Res<Response<pb::PointsOperationResponse>> {
        let r = req.get_ref();
        let mut body = Map::new();
        convert::selector_fields(r.points.as_ref(), "points", &mut body)?;
        let path = format!("{}/points/payload/clear{}", col(&r.collection_name), wait_query(r.wait));
        self.points_op(&req, Method::POST, path, Value::Object(body)).await
    }

    async fn create_field_index(
        &self,
        req: tonic::Request<pb::CreateFieldIndexCollection>,
    ) -> Res<Response<pb::PointsOperationResponse>> {
        let r = req.get_ref();
        let schema = convert::field_schema(r.field_type, r.field_index_params.as_ref())?;
        let body = json!({"field_name": r.field_name, "field_schema": schema});
        let path = format!("{}/index{}", col(&r.collection_name), wait_query(r.wait));
        self.points_op(&req, Method::PUT, path, body).await
    }

    async fn delete_field_index(
        &self,
        req: tonic::Request<pb::DeleteFieldIndexCollection>,
    ) -> Res<Response<pb::PointsOperationResponse>> {
        let r = req.get_ref();
        let path =
            format!("{}/index/{}{}", col(&r.collection_name), crate::wire::segment(&r.field_name), wait_query(r.wait));
        let reply = self.call(&req, Method::DELETE, path, None).await?;
        Ok(Response::new(pb::PointsOperationResponse {
            result: Some(convert::update_result(&reply.result)),
            time: reply.time,
        }))
    }

    async fn search(&self, req: tonic::Request<pb::SearchPoints>) -> Res<Response<pb::SearchResponse>> {
        let body = convert::search_body(req.get_ref())?;
        let path = format!("{}/points/search", col(&req.get_ref().collection_name));
        let r = self.call(&req, Method::POST, path, Some(body)).await?;
        Ok(Response::new(pb::SearchResponse { result: convert::scored_points(&r.result), time: r.time }))
    }

    async fn scroll(&self, req: tonic::Request<pb::ScrollPoints>) -> Res<Response<pb::ScrollResponse>> {
        let r = req.get_ref();
        if r.shard_key_selector.is_some() {
            return Err(convert::unsupported("shard_key_selector"));
        }
        let mut body = Map::new();
        if let Some(f) = &r.filter {
            body.insert("filter".into(), convert::filter_json(f, "filter")?);
        }
        if let Some(o) = &r.offset {
            body.insert("offset".into(), convert::point_id_json(o, "offset")?);
        }
        body.put("limit", r.limit);
        if let Some(o) = &r.order_by {
            body.insert("order_by".into(), convert::order_by_body(o)?);
        }
        convert::selectors(&mut body, r.with_payload.as_ref(), r.with_vectors.as_ref());
        let path = format!("{}/points/scroll", col(&r.collection_name));
        let reply = self.call(&req, Method::POST, path, Some(Value::Object(body))).await?;
        let res = &reply.result;
        Ok(Response::new(pb::ScrollResponse {
            next_page_offset: res.get("next_page_offset").filter(|v| !v.is_null()).map(convert::json_point_id),
            result: res["points"]
                .as_array()
                .map(|a| a.iter().map(convert::retrieved_point).collect())
                .unwrap_or_default(),
            time: reply.time,
        }))
    }

    async fn count(&self, req: tonic::Request<pb::CountPoints>) -> Res<Response<pb::CountResponse>> {
        let r = req.get_ref();
        let mut body = Map::new();
        if let Some(f) = &r.filter {
            body.insert("filter".into(), convert::filter_json(f, "filter")?);
        }
        body.put("exact", r.exact);
        let path = format!("{}/points/count", col(&r.collection_name));
        let reply = self.call(&req, Method::POST, path, Some(Value::Object(body))).await?;
        Ok(Response::new(pb::CountResponse {
            result: Some(pb::CountResult { count: reply.result["count"].as_u64().unwrap_or(0) }),
            time: reply.time,
        }))
    }

    async fn query(&self, req: tonic::Request<pb::QueryPoints>) -> Res<Response<pb::QueryResponse>> {
        let body = convert::query_body(req.get_ref())?;
        let path = format!("{}/points/query", col(&req.get_ref().collection_name));
        let r = self.call(&req, Method::POST, path, Some(body)).await?;
        Ok(Response::new(pb::QueryResponse { result: convert::scored_points(&r.result["points"]), time: r.time }))
    }

    async fn query_batch(&self, req: tonic::Request<pb::QueryBatchPoints>) -> Res<Response<pb::QueryBatchResponse>> {
        let searches = req
            .get_ref()
            .query_points
            .iter()
            .enumerate()
            .map(|(i, q)| {
                convert::query_body(q).map_err(|s| Status::new(s.code(), format!("query_points[{i}]: {}", s.message())))
            })
            .collect::<Res<Vec<_>>>()?;
        let path = format!("{}/points/query/batch", col(&req.get_ref().collection_name));
        let r = self.call(&req, Method::POST, path, Some(json!({"searches": searches}))).await?;
        let result = r
            .result
            .as_array()
            .map(|a| a.iter().map(|x| pb::BatchResult { result: convert::scored_points(&x["points"]) }).collect())
            .unwrap_or_default();
        Ok(Response::new(pb::QueryBatchResponse { result, time: r.time }))
    }

    async fn query_groups(&self, req: tonic::Request<pb::QueryPointGroups>) -> Res<Response<pb::QueryGroupsResponse>> {
        let body = convert::query_groups_body(req.get_ref())?;
        let path = format!("{}/points/query/groups", col(&req.get_ref().collection_name));
        let r = self.call(&req, Method::POST, path, Some(body)).await?;
        let groups = r.result["groups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|g| pb::PointGroup {
                        id: Some(convert::group_id(&g["id"])),
                        hits: convert::scored_points(&g["hits"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Response::new(pb::QueryGroupsResponse { result: Some(pb::GroupsResult { groups }), time: r.time }))
    }
}

/// Path and body of set/overwrite payload.
fn payload_body(r: &pb::SetPayloadPoints) -> Res<(String, Value)> {
    if r.shard_key_selector.is_some() {
        return Err(convert::unsupported("shard_key_selector"));
    }
    let mut body = Map::new();
    body.insert("payload".into(), convert::payload_json(&r.payload));
    convert::selector_fields(r.points_selector.as_ref(), "points_selector", &mut body)?;
    body.put("key", r.key.as_ref());
    Ok((format!("{}/points/payload{}", col(&r.collection_name), wait_query(r.wait)), Value::Object(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_codes() {
        assert_eq!(code_for(StatusCode::BAD_REQUEST), Code::InvalidArgument);
        assert_eq!(code_for(StatusCode::UNAUTHORIZED), Code::Unauthenticated);
        assert_eq!(code_for(StatusCode::FORBIDDEN), Code::PermissionDenied);
        assert_eq!(code_for(StatusCode::NOT_FOUND), Code::NotFound);
        assert_eq!(code_for(StatusCode::SERVICE_UNAVAILABLE), Code::Unavailable);
        assert_eq!(code_for(StatusCode::INSUFFICIENT_STORAGE), Code::ResourceExhausted);
        assert_eq!(code_for(StatusCode::INTERNAL_SERVER_ERROR), Code::Internal);
    }
}
