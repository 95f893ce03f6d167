//! `GET /collections/{collection_name}/map`: a 2-D map of a sample of the collection (see
//! [`quiver_engine::map`]).

use axum::extract::{Path, State};
use quiver_engine::map::{LayoutMethod, MapRequest};
use serde::Deserialize;
use utoipa::IntoParams;

use super::CollectionPath;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Reply, Started};
use crate::state::{AppState, blocking};
use crate::wire::{CollectionMap, Envelope, ErrorBody};

/// Query parameters of the map.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MapParams {
    /// Points to sample, evenly spaced in id order: 1 to 50,000 (default 5,000).
    #[param(minimum = 1, maximum = 50_000)]
    pub sample: Option<usize>,
    /// `umap` (default: neighbours stay neighbours) or `pca` (the first two principal components; fast).
    #[param(pattern = "^(umap|pca)$")]
    pub method: Option<String>,
    /// UMAP's neighbours per point, 2 to 100 (default 15).
    #[param(minimum = 2, maximum = 100)]
    pub neighbors: Option<usize>,
    /// Seed of every random draw (default 42): same data, parameters and seed give the same map.
    pub seed: Option<u64>,
    /// Payload key whose value colours each point.
    pub color_by: Option<String>,
    /// Payload key of the text shown for a point (default `text`, when the points have one).
    pub text_field: Option<String>,
    /// Only points this filter admits: a filter as JSON (URL-encoded).
    pub filter: Option<String>,
}

impl MapParams {
    /// The engine's request (what only the query string can get wrong checked here).
    pub fn request(self) -> ApiResult<MapRequest> {
        let d = MapRequest::default();
        let method = match self.method.as_deref() {
            None => d.method,
            Some(m) => LayoutMethod::parse(m).map_err(|_| {
                ApiError::bad_request(format!("invalid method: expected \"umap\" or \"pca\", got {m:?}"))
            })?,
        };
        let filter = match self.filter.as_deref() {
            None | Some("") => None,
            Some(f) => {
                Some(serde_json::from_str(f).map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?)
            }
        };
        // Ranges (sample, neighbours, keys) are checked in one place, by the engine.
        Ok(MapRequest {
            sample: self.sample.unwrap_or(d.sample),
            method,
            neighbors: self.neighbors.unwrap_or(d.neighbors),
            seed: self.seed.unwrap_or(d.seed),
            color_by: self.color_by.filter(|k| !k.is_empty()),
            text_field: self.text_field.filter(|k| !k.is_empty()),
            filter,
        })
    }
}

/// A 2-D map of a sample of the collection's points (PCA or UMAP), coloured by a payload key, with each
/// point's text and the IVF cells' positions. Computed on request: about a second for 5,000 points, under ten
/// for 50,000.
#[utoipa::path(get, path = "/collections/{collection_name}/map", tag = "collections",
    params(CollectionPath, MapParams),
    responses((status = 200, body = Envelope<CollectionMap>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn map(
    State(s): State<AppState>,
    Path(p): Path<CollectionPath>,
    ApiQuery(q): ApiQuery<MapParams>,
    t: Started,
) -> ApiResult<Reply<CollectionMap>> {
    let req = q.request()?;
    let col = s.collection(&p.collection_name)?;
    let map = blocking(move || Ok(col.map(&req)?)).await?;
    Ok(Reply(map.into(), t))
}
