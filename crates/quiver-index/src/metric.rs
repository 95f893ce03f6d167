//! Distance metrics and the one ordering convention every index follows.

use crate::error::{Error, Result};

/// How similarity is measured.
///
/// **Convention:** inside QuiverDB every index ranks by a *distance* where **smaller is closer**, for every
/// metric:
///
/// | metric      | distance                     | user-facing score ([`Metric::score`]) |
/// |-------------|------------------------------|----------------------------------------|
/// | `Cosine`    | `1 - cos(a, b)`              | `cos(a, b)` (higher is closer)         |
/// | `Dot`       | `-(a · b)`                   | `a · b` (higher is closer)             |
/// | `Euclidean` | `‖a - b‖²` (squared)         | `‖a - b‖` (lower is closer)            |
///
/// Cosine vectors are normalised to unit length once, when they enter an index, so a cosine distance is
/// `1 - a · b` at query time.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Angle between vectors.
    Cosine,
    /// Inner product (maximum inner product search).
    Dot,
    /// Straight-line distance.
    Euclidean,
}

impl Metric {
    /// Every metric, in wire-tag order.
    pub const ALL: [Metric; 3] = [Metric::Cosine, Metric::Dot, Metric::Euclidean];

    /// Canonical lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::Euclidean => "euclidean",
        }
    }

    /// Parses a name: `cosine`, `dot` (or `ip`), `euclidean` (or `l2`); case-insensitive.
    pub fn parse(s: &str) -> Result<Metric> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cosine" | "cos" => Ok(Metric::Cosine),
            "dot" | "ip" | "inner_product" => Ok(Metric::Dot),
            "euclidean" | "euclid" | "l2" => Ok(Metric::Euclidean),
            _ => Err(Error::UnknownName { what: "metric", got: s.to_owned(), known: "cosine, dot, euclidean".into() }),
        }
    }

    /// One-byte tag used in serialised indexes.
    pub(crate) fn tag(self) -> u8 {
        match self {
            Metric::Cosine => 0,
            Metric::Dot => 1,
            Metric::Euclidean => 2,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Metric> {
        Metric::ALL.get(usize::from(tag)).copied()
    }

    /// Whether vectors are normalised when they enter an index.
    pub fn normalises(self) -> bool {
        matches!(self, Metric::Cosine)
    }

    /// Brings a validated vector into the index's space: unit length for cosine, unchanged otherwise.
    pub fn prepare(self, v: &mut [f32]) -> Result<()> {
        if self.normalises() {
            let norm = quiver_kernels::norm(v);
            if norm == 0.0 || !norm.is_finite() {
                return Err(Error::ZeroVector);
            }
            let inv = 1.0 / norm;
            v.iter_mut().for_each(|x| *x *= inv);
        }
        Ok(())
    }

    /// Distance between two prepared vectors (see the table above).
    #[inline]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine => 1.0 - quiver_kernels::dot(a, b),
            Metric::Dot => -quiver_kernels::dot(a, b),
            Metric::Euclidean => quiver_kernels::l2sq(a, b),
        }
    }

    /// Whether this metric's distance is computed from an inner product (so tiled dot kernels apply).
    #[inline]
    pub(crate) fn uses_dot(self) -> bool {
        match self {
            Metric::Cosine | Metric::Dot => true,
            Metric::Euclidean => false,
        }
    }

    /// `(offset, sign)` with `distance_from_raw(raw) == offset + sign * raw` exactly (the sign is ±1), for loops
    /// that test many raw values at once.
    pub(crate) fn raw_to_distance(self) -> (f32, f32) {
        match self {
            Metric::Cosine => (1.0, -1.0),
            Metric::Dot => (0.0, -1.0),
            Metric::Euclidean => (0.0, 1.0),
        }
    }

    /// Converts the raw kernel output (an inner product, or a squared L2 for Euclidean) to a distance.
    #[inline]
    pub(crate) fn distance_from_raw(self, raw: f32) -> f32 {
        match self {
            Metric::Cosine => 1.0 - raw,
            Metric::Dot => -raw,
            Metric::Euclidean => raw,
        }
    }

    /// The user-facing score of a distance: cosine similarity, inner product, or Euclidean distance.
    pub fn score(self, distance: f32) -> f32 {
        match self {
            Metric::Cosine => 1.0 - distance,
            Metric::Dot => -distance,
            Metric::Euclidean => distance.max(0.0).sqrt(),
        }
    }

    /// Whether a higher [`Metric::score`] means closer.
    pub fn higher_score_is_closer(self) -> bool {
        !matches!(self, Metric::Euclidean)
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Metric::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Metric;

    #[test]
    fn raw_to_distance_is_distance_from_raw() {
        // The flat scan skips runs with `offset + sign * raw` and then keeps candidates with `distance_from_raw`:
        // the two must agree exactly, or a run holding a candidate could be skipped.
        for metric in Metric::ALL {
            let (offset, sign) = metric.raw_to_distance();
            for raw in [-2.5f32, -1.0, -1e-7, 0.0, 1e-7, 0.3, 0.999_999_9, 1.0, 7.25, 1e30] {
                assert_eq!(offset + sign * raw, metric.distance_from_raw(raw), "{metric} raw {raw}");
            }
        }
    }
}
