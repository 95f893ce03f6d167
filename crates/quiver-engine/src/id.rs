//! Point ids: an unsigned 64-bit integer or a UUID, as in Qdrant's API. On the wire a number or a UUID string
//! (any case, hyphenated `8-4-4-4-12` or 32 plain hex digits); always displayed hyphenated in lower case.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The id of a point. Numbers order before UUIDs; within a kind, by value (the scroll order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointId {
    /// An unsigned integer id.
    Num(u64),
    /// A UUID, as its 128-bit big-endian value.
    Uuid(u128),
}

impl PointId {
    /// Parses a UUID string (hyphenated or 32 hex digits).
    pub fn parse_uuid(s: &str) -> Result<PointId> {
        let bad = || Error::invalid("id", "an unsigned integer or a UUID string", format!("{s:?}"));
        let hex: String = if s.len() == 36 {
            let b = s.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return Err(bad());
            }
            s.chars().filter(|&c| c != '-').collect()
        } else if s.len() == 32 {
            s.to_owned()
        } else {
            return Err(bad());
        };
        if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u128::from_str_radix(&hex, 16).map(PointId::Uuid).map_err(|_| bad())
    }

    /// Appends the binary form: tag 0 + u64 LE, or tag 1 + u128 BE.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            PointId::Num(n) => {
                out.push(0);
                out.extend_from_slice(&n.to_le_bytes());
            }
            PointId::Uuid(u) => {
                out.push(1);
                out.extend_from_slice(&u.to_be_bytes());
            }
        }
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => {
                let h = format!("{u:032x}");
                write!(f, "{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
            }
        }
    }
}

impl FromStr for PointId {
    type Err = Error;

    /// A decimal number or a UUID.
    fn from_str(s: &str) -> Result<PointId> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<u64>()
                .map(PointId::Num)
                .map_err(|_| Error::invalid("id", "an unsigned 64-bit integer or a UUID string", format!("{s:?}")));
        }
        PointId::parse_uuid(s)
    }
}

impl From<u64> for PointId {
    fn from(n: u64) -> Self {
        PointId::Num(n)
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match *self {
            PointId::Num(n) => s.serialize_u64(n),
            PointId::Uuid(_) => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<PointId, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PointId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned integer or a UUID string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<PointId, E> {
                Ok(PointId::Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<PointId, E> {
                u64::try_from(v).map(PointId::Num).map_err(|_| E::custom(format!("point id {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<PointId, E> {
                PointId::parse_uuid(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn uuid_round_trips_in_both_spellings() {
        let a = PointId::parse_uuid("550E8400-e29b-41d4-a716-446655440000").unwrap();
        let b = PointId::parse_uuid("550e8400e29b41d4a716446655440000").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "550e8400-e29b-41d4-a716-446655440000");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<PointId>(&json).unwrap(), a);
        assert_eq!(serde_json::from_str::<PointId>("42").unwrap(), PointId::Num(42));
        assert_eq!("42".parse::<PointId>().unwrap(), PointId::Num(42));
    }

    #[test]
    fn bad_ids_are_errors() {
        for bad in ["550e8400-e29b-41d4-a716-44665544000", "zz0e8400-e29b-41d4-a716-446655440000", "", "-1"] {
            assert!(bad.parse::<PointId>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<PointId>("-3").is_err());
        assert!(serde_json::from_str::<PointId>("1.5").is_err());
        assert!("99999999999999999999999".parse::<PointId>().is_err());
    }
}
