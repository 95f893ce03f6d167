//! Index parameters as `key=value` pairs (from the CLI, a config file or an API), turned into typed values by
//! each index, with a clear error for a bad value or a key nobody asked for.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Untyped `key=value` parameters. Indexes *take* the keys they know; [`Params::finish`] then reports any key
/// left over, so a typo is an error rather than a silently ignored setting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    entries: BTreeMap<String, String>,
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `key=value` strings. A string without `=`, an empty key or a repeated key is an error.
    pub fn parse<S: AsRef<str>>(pairs: impl IntoIterator<Item = S>) -> Result<Self> {
        let mut p = Self::new();
        for pair in pairs {
            let pair = pair.as_ref();
            let (k, v) = pair
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| Error::invalid("param", "key=value", pair))?;
            if p.entries.insert(k.trim().to_owned(), v.trim().to_owned()).is_some() {
                return Err(Error::invalid(k.trim(), "the key once", pair));
            }
        }
        Ok(p)
    }

    /// Sets a value, replacing any previous one.
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.entries.insert(key.to_owned(), value.to_string());
        self
    }

    /// The raw value of `key`, without taking it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// True when no key is left.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys present, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Splits off the keys in `names` into a new `Params`.
    pub fn split_off(&mut self, names: &[&str]) -> Params {
        let mut out = Params::new();
        for name in names {
            if let Some(v) = self.entries.remove(*name) {
                out.entries.insert((*name).to_owned(), v);
            }
        }
        out
    }

    /// Takes an integer in `min..=max`, or `None` if absent.
    pub fn take_usize(&mut self, key: &str, min: usize, max: usize) -> Result<Option<usize>> {
        let Some(raw) = self.entries.remove(key) else { return Ok(None) };
        match raw.parse::<usize>() {
            Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(Error::invalid(key, format!("an integer in {min}..={max}"), raw)),
        }
    }

    /// Takes a raw string value, or `None` if absent.
    pub fn take_str(&mut self, key: &str) -> Option<String> {
        self.entries.remove(key)
    }

    /// Takes any unsigned 64-bit integer (seeds), or `None` if absent.
    pub fn take_u64(&mut self, key: &str) -> Result<Option<u64>> {
        let Some(raw) = self.entries.remove(key) else { return Ok(None) };
        raw.parse::<u64>().map(Some).map_err(|_| Error::invalid(key, "an unsigned 64-bit integer", raw))
    }

    /// Takes a float in `min..=max`, or `None` if absent.
    pub fn take_f32(&mut self, key: &str, min: f32, max: f32) -> Result<Option<f32>> {
        let Some(raw) = self.entries.remove(key) else { return Ok(None) };
        match raw.parse::<f32>() {
            Ok(v) if v.is_finite() && v >= min && v <= max => Ok(Some(v)),
            _ => Err(Error::invalid(key, format!("a number in {min}..={max}"), raw)),
        }
    }

    /// Takes a boolean (`true`/`false`/`1`/`0`), or `None` if absent.
    pub fn take_bool(&mut self, key: &str) -> Result<Option<bool>> {
        let Some(raw) = self.entries.remove(key) else { return Ok(None) };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(Error::invalid(key, "true or false", raw)),
        }
    }

    /// Errors if any key was not taken. `context` names the receiver (e.g. `flat index (search)`), `known` the
    /// keys it accepts.
    pub fn finish(self, context: &str, known: &[&str]) -> Result<()> {
        match self.entries.into_keys().next() {
            None => Ok(()),
            Some(name) => Err(Error::UnknownParameter {
                name,
                context: context.to_owned(),
                known: if known.is_empty() { "(none)".to_owned() } else { known.join(", ") },
            }),
        }
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (k, v) in &self.entries {
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
            first = false;
        }
        Ok(())
    }
}

/// Per-query search settings. Each index reads the fields that apply to it and ignores the rest, so one
/// request type serves every index kind.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct SearchParams {
    /// Candidate-list size for graph search (HNSW `ef`).
    pub ef: Option<usize>,
    /// Inverted lists to probe (IVF `nprobe`) or regions to probe (KD-LSH).
    pub nprobe: Option<usize>,
    /// Rerank factor: how many `k`-multiples of candidates found on quantized codes are rescored exactly.
    pub rerank: Option<usize>,
    /// Force an exact scan (bypasses the index; the oracle path).
    pub exact: bool,
    /// Most leaves a KD-tree search visits (approximate best-bin-first); `None` searches exactly.
    pub max_leaves: Option<usize>,
    /// Buckets probed per LSH table (multi-probe: the home bucket, then the least-confident bit flips).
    pub probes: Option<usize>,
    /// The recall@10 wanted instead of a search width: the database picks each segment's `ef` or `nprobe` from
    /// its measured recall (see `quiver-engine`'s `recall` module). Indexes ignore it.
    pub target_recall: Option<f64>,
}

impl SearchParams {
    /// Names of the search parameters [`SearchParams::from_params`] understands.
    pub const NAMES: [&'static str; 7] = ["ef", "nprobe", "rerank", "exact", "max_leaves", "probes", "target_recall"];

    /// Default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `ef`.
    pub fn with_ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Sets `nprobe`.
    pub fn with_nprobe(mut self, nprobe: usize) -> Self {
        self.nprobe = Some(nprobe);
        self
    }

    /// Sets `rerank`.
    pub fn with_rerank(mut self, rerank: usize) -> Self {
        self.rerank = Some(rerank);
        self
    }

    /// Sets `max_leaves`.
    pub fn with_max_leaves(mut self, max_leaves: usize) -> Self {
        self.max_leaves = Some(max_leaves);
        self
    }

    /// Sets `probes`.
    pub fn with_probes(mut self, probes: usize) -> Self {
        self.probes = Some(probes);
        self
    }

    /// Sets `exact`.
    pub fn with_exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }

    /// Sets `target_recall`.
    pub fn with_target_recall(mut self, target: f64) -> Self {
        self.target_recall = Some(target);
        self
    }

    /// The accepted range of each numeric parameter (`name`, least, most).
    pub const RANGES: [(&'static str, usize, usize); 5] = [
        ("ef", 1, 1 << 20),
        ("nprobe", 1, 1 << 24),
        ("rerank", 1, 1 << 10),
        ("max_leaves", 1, 1 << 30),
        ("probes", 1, 1 << 16),
    ];

    /// Checks typed values against [`SearchParams::RANGES`] (for parameters that did not come through
    /// [`SearchParams::from_params`], e.g. from JSON); the error names the parameter.
    pub fn validate(&self) -> Result<()> {
        let values = [self.ef, self.nprobe, self.rerank, self.max_leaves, self.probes];
        for ((name, lo, hi), v) in Self::RANGES.iter().zip(values) {
            if let Some(v) = v
                && !(*lo..=*hi).contains(&v)
            {
                return Err(Error::invalid(name, format!("an integer in {lo}..={hi}"), v));
            }
        }
        if let Some(t) = self.target_recall
            && !(t > 0.0 && t <= 1.0)
        {
            return Err(Error::invalid("target_recall", "a number in (0, 1]", t));
        }
        Ok(())
    }

    /// Takes the search parameters named in `accepted` (a subset of [`SearchParams::NAMES`]) from `params`;
    /// any other key is an error naming `context`.
    pub fn from_params(mut params: Params, context: &str, accepted: &[&str]) -> Result<Self> {
        let mut sp = SearchParams::new();
        let mut mine = params.split_off(accepted);
        let range = |name: &str| Self::RANGES.iter().find(|r| r.0 == name).map_or((1, usize::MAX), |r| (r.1, r.2));
        let mut take = |name: &str| {
            let (lo, hi) = range(name);
            mine.take_usize(name, lo, hi)
        };
        sp.ef = take("ef")?;
        sp.nprobe = take("nprobe")?;
        sp.rerank = take("rerank")?;
        sp.max_leaves = take("max_leaves")?;
        sp.probes = take("probes")?;
        sp.exact = mine.take_bool("exact")?.unwrap_or(false);
        sp.target_recall = match mine.take_str("target_recall") {
            None => None,
            Some(raw) => match raw.parse::<f64>() {
                Ok(t) if t > 0.0 && t <= 1.0 => Some(t),
                _ => return Err(Error::invalid("target_recall", "a number in (0, 1]", raw)),
            },
        };
        mine.finish(context, accepted)?;
        params.finish(context, accepted)?;
        Ok(sp)
    }
}
