//! Geographic filters: a point is a payload value `{"lon": x, "lat": y}` (degrees; arrays of them are several
//! points), and a condition asks whether one of a key's points lies within a radius (metres, great-circle
//! distance on a sphere of the Earth's mean radius), a bounding box (which may cross the antimeridian) or a
//! polygon with holes (edges straight in longitude/latitude, as GeoJSON draws them). A `geo` payload index
//! keeps each row under the 1° × 1° cells of its points and answers with the rows of the cells a shape's bounds
//! overlap, which the evaluator then checks one by one.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The Earth's mean radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point on the Earth, degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    /// Longitude, −180..=180.
    pub lon: f64,
    /// Latitude, −90..=90.
    pub lat: f64,
}

impl GeoPoint {
    /// A payload value that is a point: an object with numeric `lon` and `lat` in range (other keys ignored).
    pub fn from_value(v: &Value) -> Option<GeoPoint> {
        let o = v.as_object()?;
        let p = GeoPoint { lon: o.get("lon")?.as_f64()?, lat: o.get("lat")?.as_f64()? };
        p.in_range().then_some(p)
    }

    fn in_range(&self) -> bool {
        (-180.0..=180.0).contains(&self.lon) && (-90.0..=90.0).contains(&self.lat)
    }

    fn check(&self, at: &str) -> Result<(), String> {
        if self.in_range() {
            Ok(())
        } else {
            Err(format!("{at}: expected lon in -180..=180 and lat in -90..=90, got lon {} lat {}", self.lon, self.lat))
        }
    }
}

/// Great-circle distance in metres (haversine).
pub fn haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la, lb) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lb - la;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la.cos() * lb.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// `geo_radius`: within `radius` metres of `center`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRadius {
    /// The centre.
    pub center: GeoPoint,
    /// Metres.
    pub radius: f64,
}

/// `geo_bounding_box`: latitudes between the corners, longitudes from `top_left` eastwards to `bottom_right`
/// (across the antimeridian when `top_left.lon > bottom_right.lon`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoBoundingBox {
    /// North-west corner.
    pub top_left: GeoPoint,
    /// South-east corner.
    pub bottom_right: GeoPoint,
}

/// A closed ring of points (the first equals the last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoLineString {
    /// At least 4 points, the last equal to the first.
    pub points: Vec<GeoPoint>,
}

/// `geo_polygon`: inside `exterior` and outside every ring of `interiors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPolygon {
    /// The outline.
    pub exterior: GeoLineString,
    /// Holes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interiors: Vec<GeoLineString>,
}

/// A geographic condition.
#[derive(Debug, Clone, PartialEq)]
pub enum GeoShape {
    /// `geo_radius`.
    Radius(GeoRadius),
    /// `geo_bounding_box`.
    BoundingBox(GeoBoundingBox),
    /// `geo_polygon`.
    Polygon(GeoPolygon),
}

/// Whether `p` is inside the ring (crossing number; planar in lon/lat).
fn in_ring(ring: &[GeoPoint], p: GeoPoint) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a.lat > p.lat) != (b.lat > p.lat) {
            let x = a.lon + (p.lat - a.lat) / (b.lat - a.lat) * (b.lon - a.lon);
            if p.lon < x {
                inside = !inside;
            }
        }
    }
    inside
}

fn check_ring(r: &GeoLineString, at: &str) -> Result<(), String> {
    if r.points.len() < 4 {
        return Err(format!("{at}.points: expected at least 4 points (a closed ring), got {}", r.points.len()));
    }
    for (i, p) in r.points.iter().enumerate() {
        p.check(&format!("{at}.points[{i}]"))?;
    }
    if r.points.first() != r.points.last() {
        return Err(format!("{at}.points: expected the last point to equal the first (a closed ring)"));
    }
    Ok(())
}

impl GeoShape {
    /// The operator's name in a field condition.
    pub fn name(&self) -> &'static str {
        match self {
            GeoShape::Radius(_) => "geo_radius",
            GeoShape::BoundingBox(_) => "geo_bounding_box",
            GeoShape::Polygon(_) => "geo_polygon",
        }
    }

    /// Points in range, a finite non-negative radius, corners in order, closed rings.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            GeoShape::Radius(r) => {
                r.center.check("geo_radius.center")?;
                if !(r.radius.is_finite() && r.radius >= 0.0) {
                    return Err(format!("geo_radius.radius: expected metres >= 0, got {}", r.radius));
                }
            }
            GeoShape::BoundingBox(b) => {
                b.top_left.check("geo_bounding_box.top_left")?;
                b.bottom_right.check("geo_bounding_box.bottom_right")?;
                if b.top_left.lat < b.bottom_right.lat {
                    return Err(format!(
                        "geo_bounding_box: expected top_left.lat >= bottom_right.lat, got {} < {}",
                        b.top_left.lat, b.bottom_right.lat
                    ));
                }
            }
            GeoShape::Polygon(p) => {
                check_ring(&p.exterior, "geo_polygon.exterior")?;
                for (i, r) in p.interiors.iter().enumerate() {
                    check_ring(r, &format!("geo_polygon.interiors[{i}]"))?;
                }
            }
        }
        Ok(())
    }

    /// Whether the shape holds `p`.
    pub fn contains(&self, p: GeoPoint) -> bool {
        match self {
            GeoShape::Radius(r) => haversine_m(r.center, p) <= r.radius,
            GeoShape::BoundingBox(b) => {
                let lat = (b.bottom_right.lat..=b.top_left.lat).contains(&p.lat);
                let lon = if b.top_left.lon <= b.bottom_right.lon {
                    (b.top_left.lon..=b.bottom_right.lon).contains(&p.lon)
                } else {
                    p.lon >= b.top_left.lon || p.lon <= b.bottom_right.lon
                };
                lat && lon
            }
            GeoShape::Polygon(g) => {
                in_ring(&g.exterior.points, p) && !g.interiors.iter().any(|r| in_ring(&r.points, p))
            }
        }
    }

    /// Whether one of the values (flattened payload values at the key) is a point the shape holds.
    pub fn matches_values(&self, values: &[&Value]) -> bool {
        values.iter().any(|v| GeoPoint::from_value(v).is_some_and(|p| self.contains(p)))
    }

    /// A latitude interval and longitude intervals that hold every point of the shape (wider is fine).
    fn bounds(&self) -> ((f64, f64), Vec<(f64, f64)>) {
        const ALL_LON: (f64, f64) = (-180.0, 180.0);
        const SLACK: f64 = 1e-6;
        let wrap = |lo: f64, hi: f64| -> Vec<(f64, f64)> {
            if hi - lo >= 360.0 {
                vec![ALL_LON]
            } else if lo < -180.0 {
                vec![(lo + 360.0, 180.0), (-180.0, hi)]
            } else if hi > 180.0 {
                vec![(lo, 180.0), (-180.0, hi - 360.0)]
            } else {
                vec![(lo, hi)]
            }
        };
        match self {
            GeoShape::Radius(r) => {
                let theta = (r.radius / EARTH_RADIUS_M).to_degrees() + SLACK;
                let (lo, hi) = (r.center.lat - theta, r.center.lat + theta);
                if lo <= -90.0 || hi >= 90.0 || theta >= 90.0 {
                    return ((lo.max(-90.0), hi.min(90.0)), vec![ALL_LON]);
                }
                // The widest longitude offset of a spherical cap: asin(sin θ / cos φ).
                let s = theta.to_radians().sin() / r.center.lat.to_radians().cos();
                if s >= 1.0 {
                    return ((lo, hi), vec![ALL_LON]);
                }
                let d = s.asin().to_degrees() + SLACK;
                ((lo, hi), wrap(r.center.lon - d, r.center.lon + d))
            }
            GeoShape::BoundingBox(b) => {
                let lat = (b.bottom_right.lat, b.top_left.lat);
                if b.top_left.lon <= b.bottom_right.lon {
                    (lat, vec![(b.top_left.lon, b.bottom_right.lon)])
                } else {
                    (lat, vec![(b.top_left.lon, 180.0), (-180.0, b.bottom_right.lon)])
                }
            }
            GeoShape::Polygon(g) => {
                let pts = &g.exterior.points;
                let fold = |f: fn(&GeoPoint) -> f64| {
                    pts.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)))
                };
                (fold(|p| p.lat), vec![fold(|p| p.lon)])
            }
        }
    }
}

/// A geo payload index: the rows holding a point in each 1° × 1° cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct GeoIndex {
    cells: BTreeMap<(i16, i16), RoaringBitmap>,
}

fn cell(p: GeoPoint) -> (i16, i16) {
    let lat = (p.lat.floor() as i16).clamp(-90, 89);
    let lon = (p.lon.floor() as i16).clamp(-180, 179);
    (lat, lon)
}

impl GeoIndex {
    /// Adds (`add`) or removes `row` under the cell of `p`.
    pub(crate) fn update(&mut self, p: GeoPoint, row: u32, add: bool) {
        let c = cell(p);
        if add {
            self.cells.entry(c).or_default().insert(row);
        } else if let Some(b) = self.cells.get_mut(&c) {
            b.remove(row);
            if b.is_empty() {
                self.cells.remove(&c);
            }
        }
    }

    /// The rows with a point in a cell that the shape's bounds overlap: every row the shape can hold.
    pub(crate) fn candidates(&self, shape: &GeoShape) -> RoaringBitmap {
        let ((lat_lo, lat_hi), lons) = shape.bounds();
        let mut out = RoaringBitmap::new();
        if lat_lo > lat_hi {
            return out;
        }
        let (lat_lo, lat_hi) = (cell_lat(lat_lo), cell_lat(lat_hi));
        for (lon_lo, lon_hi) in lons {
            let (lon_lo, lon_hi) = (cell_lon(lon_lo), cell_lon(lon_hi));
            for lat in lat_lo..=lat_hi {
                for (_, b) in self.cells.range((lat, lon_lo)..=(lat, lon_hi)) {
                    out |= b;
                }
            }
        }
        out
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.cells.values().map(|b| 48 + b.serialized_size()).sum()
    }
}

fn cell_lat(x: f64) -> i16 {
    (x.clamp(-90.0, 90.0).floor() as i16).clamp(-90, 89)
}

fn cell_lon(x: f64) -> i16 {
    (x.clamp(-180.0, 180.0).floor() as i16).clamp(-180, 179)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn pt(lon: f64, lat: f64) -> GeoPoint {
        GeoPoint { lon, lat }
    }

    /// Distance by the spherical law of cosines (a second formula, to check haversine against).
    fn cosine_law_m(a: GeoPoint, b: GeoPoint) -> f64 {
        let (la, lb) = (a.lat.to_radians(), b.lat.to_radians());
        let c = la.sin() * lb.sin() + la.cos() * lb.cos() * (b.lon - a.lon).to_radians().cos();
        EARTH_RADIUS_M * c.clamp(-1.0, 1.0).acos()
    }

    #[test]
    fn known_distances_and_points() {
        // Berlin to Paris: about 878 km.
        let d = haversine_m(pt(13.405, 52.52), pt(2.3522, 48.8566));
        assert!((d - 877_500.0).abs() < 2_000.0, "{d}");
        assert_eq!(GeoPoint::from_value(&json!({"lon": 1, "lat": 2.5, "name": "x"})), Some(pt(1.0, 2.5)));
        assert_eq!(GeoPoint::from_value(&json!({"lon": 181, "lat": 0})), None);
        assert_eq!(GeoPoint::from_value(&json!({"lon": "1", "lat": 0})), None);
        assert_eq!(GeoPoint::from_value(&json!([1, 2])), None);
    }

    #[test]
    fn boxes_cross_the_antimeridian_and_polygons_have_holes() {
        let b = GeoShape::BoundingBox(GeoBoundingBox { top_left: pt(170.0, 10.0), bottom_right: pt(-170.0, -10.0) });
        assert!(b.contains(pt(179.0, 0.0)) && b.contains(pt(-175.0, 5.0)));
        assert!(!b.contains(pt(0.0, 0.0)) && !b.contains(pt(175.0, 11.0)));
        let square = |lo: f64, hi: f64| GeoLineString {
            points: vec![pt(lo, lo), pt(hi, lo), pt(hi, hi), pt(lo, hi), pt(lo, lo)],
        };
        let p = GeoShape::Polygon(GeoPolygon { exterior: square(0.0, 10.0), interiors: vec![square(4.0, 6.0)] });
        assert!(p.validate().is_ok());
        assert!(p.contains(pt(2.0, 2.0)) && !p.contains(pt(5.0, 5.0)) && !p.contains(pt(11.0, 5.0)));
        let open = GeoShape::Polygon(GeoPolygon {
            exterior: GeoLineString { points: vec![pt(0.0, 0.0), pt(1.0, 0.0), pt(1.0, 1.0), pt(0.0, 1.0)] },
            interiors: vec![],
        });
        assert!(open.validate().unwrap_err().contains("closed"));
        let r = GeoShape::Radius(GeoRadius { center: pt(0.0, 0.0), radius: -1.0 });
        assert!(r.validate().unwrap_err().contains("radius"));
        let upside = GeoShape::BoundingBox(GeoBoundingBox { top_left: pt(0.0, -5.0), bottom_right: pt(1.0, 5.0) });
        assert!(upside.validate().unwrap_err().contains("top_left.lat"));
    }

    fn point() -> impl Strategy<Value = GeoPoint> {
        (-180.0f64..=180.0, -90.0f64..=90.0).prop_map(|(lon, lat)| pt(lon, lat))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The index's candidates hold every point a radius or box holds (it narrows, never drops), and haversine
        /// agrees with the law of cosines.
        #[test]
        fn candidates_never_miss_a_point(
            points in prop::collection::vec(point(), 1..60),
            center in point(),
            radius in prop_oneof![0.0f64..50_000.0, 0.0f64..3_000_000.0, 0.0f64..25_000_000.0],
            corner in point(),
            w in 0.0f64..90.0,
            h in 0.0f64..40.0,
        ) {
            let mut ix = GeoIndex::default();
            for (i, p) in points.iter().enumerate() {
                ix.update(*p, i as u32, true);
            }
            let bl = pt(if corner.lon + w > 180.0 { corner.lon + w - 360.0 } else { corner.lon + w }, (corner.lat - h).max(-90.0));
            let shapes = [
                GeoShape::Radius(GeoRadius { center, radius }),
                GeoShape::BoundingBox(GeoBoundingBox { top_left: corner, bottom_right: bl }),
            ];
            for s in &shapes {
                prop_assert!(s.validate().is_ok());
                let cand = ix.candidates(s);
                for (i, p) in points.iter().enumerate() {
                    if s.contains(*p) {
                        prop_assert!(cand.contains(i as u32), "{:?} holds {:?} but the index missed it", s, p);
                    }
                }
            }
            for p in &points {
                let (a, b) = (haversine_m(center, *p), cosine_law_m(center, *p));
                prop_assert!((a - b).abs() < 1.0 + 1e-6 * a, "{} vs {}", a, b);
            }
        }
    }
}
