//! Input readers of `quiver import`: fvecs, JSONL and CSV, streamed record by record.
//!
//! Every reader checks what it reads and names the place in its errors: the record number (fvecs, 0-based as
//! the ids it gives) or the line (JSONL, CSV; 1-based, the CSV header is line 1), and the field or column.
//! Every vector of an input must have the dimension of the first one, and every component must be finite.

use std::collections::BTreeMap;
use std::io::{BufRead, ErrorKind, Read};
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use quiver_engine::{Payload, PointId};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::remote::kind;

/// Largest vector dimension read (the engine's limit).
pub const MAX_DIM: usize = quiver_engine::config::MAX_DIMENSION;

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// TEXMEX: per record a little-endian i32 dimension, then that many f32.
    Fvecs,
    /// One JSON object per line: {"id": …, "vector": […], "payload": {…}}.
    Jsonl,
    /// A header row; `id`, `vector` (a JSON array in a cell) or numbered columns `v0..vN`; other columns become
    /// payload keys.
    Csv,
}

impl Format {
    /// The format a file name's extension says (`.fvecs`, `.jsonl`/`.ndjson`, `.csv`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "fvecs" => Some(Format::Fvecs),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Fvecs => "fvecs",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// One point read from an input.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its id.
    pub id: PointId,
    /// Its vector (empty when the record has a text instead).
    pub vector: Vec<f32>,
    /// Its text, to embed with the collection's model (JSONL `"text"` instead of `"vector"`).
    pub text: Option<String>,
    /// Its payload, if the input had one.
    pub payload: Option<Payload>,
}

/// A stream of records.
pub trait Source: Send {
    /// The next record (`None` at the end). An error names the line or record and the field.
    fn next_record(&mut self) -> Result<Option<Record>>;
    /// Passes over up to `n` records without decoding them (only as much as needed to find where each ends);
    /// returns how many there were.
    fn skip(&mut self, n: u64) -> Result<u64>;
    /// Bytes of the input consumed so far (for progress).
    fn bytes_read(&self) -> u64;
}

/// Options shared by the readers.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// First id of inputs without ids (fvecs, CSV without an `id` column): record `i` gets `ids_from + i`.
    pub ids_from: Option<u64>,
    /// CSV: the name prefix of the numbered vector columns (`v` for `v0, v1, …`); found by itself when there is
    /// one candidate.
    pub vector_prefix: Option<String>,
}

/// Checks a vector against the dimension seen first (`dim`, set by the first record).
fn check_dim(dim: &mut Option<usize>, len: usize, at: &dyn Fn() -> String) -> Result<()> {
    if len == 0 {
        bail!("{}: the vector is empty", at());
    }
    if len > MAX_DIM {
        bail!("{}: the vector has {len} components, more than the limit of {MAX_DIM}", at());
    }
    match *dim {
        None => *dim = Some(len),
        Some(d) if d != len => bail!("{}: the vector has {len} components, earlier vectors have {d}", at()),
        Some(_) => {}
    }
    Ok(())
}

fn numbered_id(ids_from: u64, index: u64, at: &dyn Fn() -> String) -> Result<PointId> {
    ids_from.checked_add(index).map(PointId::Num).ok_or_else(|| anyhow!("{}: the id overflows u64", at()))
}

// ---------------------------------------------------------------------------------------------------------------
// fvecs

/// TEXMEX `.fvecs`: ids are `ids_from` + the 0-based record number.
#[derive(Debug)]
pub struct Fvecs<R> {
    r: R,
    index: u64,
    bytes: u64,
    dim: Option<usize>,
    ids_from: u64,
    buf: Vec<u8>,
}

impl<R: Read + Send> Fvecs<R> {
    /// Reads from `r`.
    pub fn new(r: R, opts: &ReadOptions) -> Self {
        Fvecs { r, index: 0, bytes: 0, dim: None, ids_from: opts.ids_from.unwrap_or(0), buf: Vec::new() }
    }

    /// Reads the next record's dimension: `None` at a clean end of input.
    fn header(&mut self) -> Result<Option<usize>> {
        let mut h = [0u8; 4];
        let got = read_full(&mut self.r, &mut h)?;
        if got == 0 {
            return Ok(None);
        }
        let at = || format!("record {} (byte {})", self.index, self.bytes);
        if got < 4 {
            bail!("{}: truncated: the input ends inside the dimension field", at());
        }
        let d = i32::from_le_bytes(h);
        if d <= 0 || d as usize > MAX_DIM {
            bail!("{}: dimension field is {d}; expected 1..={MAX_DIM} (is this really an fvecs file?)", at());
        }
        let d = d as usize;
        let mut dim = self.dim;
        check_dim(&mut dim, d, &at)?;
        self.dim = dim;
        Ok(Some(d))
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

impl<R: Read + Send> Source for Fvecs<R> {
    fn next_record(&mut self) -> Result<Option<Record>> {
        let Some(d) = self.header()? else { return Ok(None) };
        self.buf.resize(4 * d, 0);
        let got = read_full(&mut self.r, &mut self.buf)?;
        let at = || format!("record {} (byte {})", self.index, self.bytes);
        if got < 4 * d {
            bail!("{}: truncated: {d} components announced, the input ends after {}", at(), got / 4);
        }
        let mut vector = Vec::with_capacity(d);
        for (j, c) in self.buf.chunks_exact(4).enumerate() {
            let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if !x.is_finite() {
                bail!("{}: component {j} is {x}", at());
            }
            vector.push(x);
        }
        let id = numbered_id(self.ids_from, self.index, &at)?;
        self.index += 1;
        self.bytes += 4 + 4 * d as u64;
        Ok(Some(Record { id, vector, text: None, payload: None }))
    }

    fn skip(&mut self, n: u64) -> Result<u64> {
        let mut done = 0;
        while done < n {
            let Some(d) = self.header()? else { break };
            let want = 4 * d as u64;
            let got = std::io::copy(&mut (&mut self.r).take(want), &mut std::io::sink())?;
            if got < want {
                bail!("record {} (byte {}): truncated", self.index, self.bytes);
            }
            self.index += 1;
            self.bytes += 4 + want;
            done += 1;
        }
        Ok(done)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

// ---------------------------------------------------------------------------------------------------------------
// JSONL

/// One object per line: `{"id": …, "vector": […], "payload": {…}}` (`payload` optional). Blank lines are
/// skipped; any other key is an error.
#[derive(Debug)]
pub struct Jsonl<R> {
    r: R,
    line: u64,
    bytes: u64,
    dim: Option<usize>,
    /// Whether the lines carry texts (set by the first line; every line must agree).
    texts: Option<bool>,
    buf: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonlLine {
    id: PointId,
    #[serde(default)]
    vector: Option<Vec<f32>>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    payload: Option<Map<String, Value>>,
}

impl<R: BufRead + Send> Jsonl<R> {
    /// Reads from `r`.
    pub fn new(r: R) -> Self {
        Jsonl { r, line: 0, bytes: 0, dim: None, texts: None, buf: String::new() }
    }

    /// The next non-blank line into `self.buf`; `false` at the end.
    fn next_line(&mut self) -> Result<bool> {
        loop {
            self.buf.clear();
            let n = match self.r.read_line(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::InvalidData => {
                    bail!("line {}: not UTF-8 text", self.line + 1)
                }
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Ok(false);
            }
            self.line += 1;
            self.bytes += n as u64;
            if !self.buf.trim().is_empty() {
                return Ok(true);
            }
        }
    }
}

/// Says precisely what is wrong with a JSONL line that did not decode.
fn diagnose_jsonl(text: &str, serde_err: serde_json::Error) -> String {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return format!("not JSON: {e}"),
    };
    let Value::Object(m) = v else { return format!("expected a JSON object, got {}", kind(&v)) };
    for k in m.keys() {
        if !matches!(k.as_str(), "id" | "vector" | "text" | "payload") {
            return format!("unknown field {k:?} (expected id, vector or text, and optionally payload)");
        }
    }
    match m.get("id") {
        None => return "missing field \"id\"".into(),
        Some(id) => {
            if let Err(e) = serde_json::from_value::<PointId>(id.clone()) {
                return format!("field \"id\": {e} (got {id})");
            }
        }
    }
    match m.get("vector") {
        None if m.get("text").is_some_and(Value::is_string) => {}
        None if m.contains_key("text") => return "field \"text\": expected a string".into(),
        None => return "missing field \"vector\" (or \"text\")".into(),
        Some(Value::Array(items)) => {
            for (i, x) in items.iter().enumerate() {
                if !x.is_number() {
                    return format!("field \"vector\"[{i}]: expected a number, got {}", kind(x));
                }
            }
        }
        Some(other) => return format!("field \"vector\": expected an array of numbers, got {}", kind(other)),
    }
    match m.get("payload") {
        Some(p) if !p.is_object() && !p.is_null() => {
            format!("field \"payload\": expected an object, got {}", kind(p))
        }
        _ => serde_err.to_string(),
    }
}

impl<R: BufRead + Send> Source for Jsonl<R> {
    fn next_record(&mut self) -> Result<Option<Record>> {
        if !self.next_line()? {
            return Ok(None);
        }
        let line = self.line;
        let at = || format!("line {line}");
        let rec: JsonlLine =
            serde_json::from_str(&self.buf).map_err(|e| anyhow!("{}: {}", at(), diagnose_jsonl(&self.buf, e)))?;
        let (vector, text) = match (rec.vector, rec.text) {
            (Some(v), None) => (v, None),
            (None, Some(t)) => (Vec::new(), Some(t)),
            (Some(_), Some(_)) => bail!("{}: give \"vector\" or \"text\", not both", at()),
            (None, None) => bail!("{}: missing field \"vector\" (or \"text\")", at()),
        };
        let is_text = text.is_some();
        match self.texts {
            None => self.texts = Some(is_text),
            Some(t) if t != is_text => {
                let (had, got) = if t { ("texts", "a vector") } else { ("vectors", "a text") };
                bail!("{}: earlier lines have {had}, this one has {got}; one input holds one or the other", at());
            }
            Some(_) => {}
        }
        if !is_text {
            check_dim(&mut self.dim, vector.len(), &at)?;
        }
        if let Some(j) = vector.iter().position(|x| !x.is_finite()) {
            bail!("{}: field \"vector\"[{j}] is out of the f32 range", at());
        }
        Ok(Some(Record { id: rec.id, vector, text, payload: rec.payload }))
    }

    fn skip(&mut self, n: u64) -> Result<u64> {
        let mut done = 0;
        while done < n && self.next_line()? {
            done += 1;
        }
        Ok(done)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

// ---------------------------------------------------------------------------------------------------------------
// CSV

/// Where a CSV row's vector is.
#[derive(Debug, Clone)]
enum VectorColumns {
    /// One cell holding a JSON array.
    Json(usize),
    /// Numbered columns, in component order.
    Numbered(Vec<usize>),
}

/// CSV with a header row. `id` (optional: without it, ids are `ids_from` + the 0-based row number), the vector
/// as a `vector` column holding a JSON array or as numbered columns (`v0, v1, …`), and every other column a payload
/// key: a cell that reads as a finite number becomes a number, any other non-empty cell a string, and an empty cell
/// is left out.
#[derive(Debug)]
pub struct Csv<R> {
    r: csv::Reader<R>,
    header: Vec<String>,
    id_col: Option<usize>,
    vector: VectorColumns,
    payload_cols: Vec<usize>,
    dim: Option<usize>,
    index: u64,
    ids_from: u64,
    row: csv::StringRecord,
}

/// Splits `v12` into (`v`, 12).
fn numbered(name: &str) -> Option<(&str, usize)> {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 6 {
        return None;
    }
    let (prefix, num) = name.split_at(name.len() - digits);
    // `v01` is not a component number.
    if num.len() > 1 && num.starts_with('0') {
        return None;
    }
    Some((prefix, num.parse().ok()?))
}

/// The numbered column groups of a header: prefix → column per component, when the numbers are exactly
/// `0..n` with no gap or repetition.
fn numbered_groups(header: &[String], skip: &[usize]) -> BTreeMap<String, Vec<usize>> {
    let mut groups: BTreeMap<&str, BTreeMap<usize, Vec<usize>>> = BTreeMap::new();
    for (col, name) in header.iter().enumerate() {
        if skip.contains(&col) {
            continue;
        }
        if let Some((prefix, n)) = numbered(name) {
            groups.entry(prefix).or_default().entry(n).or_default().push(col);
        }
    }
    groups
        .into_iter()
        .filter(|(_, nums)| nums.values().all(|c| c.len() == 1) && nums.keys().copied().eq(0..nums.len()))
        .map(|(p, nums)| (p.to_owned(), nums.into_values().map(|c| c[0]).collect()))
        .collect()
}

impl<R: Read + Send> Csv<R> {
    /// Reads the header from `r` and works out the columns.
    pub fn new(r: R, opts: &ReadOptions) -> Result<Self> {
        let mut r = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(r);
        let header: Vec<String> = r
            .headers()
            .map_err(|e| anyhow!("line 1 (the header): {}", csv_error(&e)))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        if header.iter().all(String::is_empty) {
            bail!("line 1: no header row (an empty input?)");
        }
        let find = |name: &str| -> Result<Option<usize>> {
            let cols: Vec<usize> = header.iter().enumerate().filter(|(_, h)| *h == name).map(|(i, _)| i).collect();
            match cols.as_slice() {
                [] => Ok(None),
                [c] => Ok(Some(*c)),
                _ => bail!("line 1: column {name:?} appears {} times", cols.len()),
            }
        };
        let id_col = find("id")?;
        if id_col.is_some() && opts.ids_from.is_some() {
            bail!("--ids-from applies to CSV without an `id` column; this one has one");
        }
        let skip: Vec<usize> = id_col.into_iter().collect();
        let vector = match (find("vector")?, &opts.vector_prefix) {
            (Some(c), None) => VectorColumns::Json(c),
            (_, Some(prefix)) => {
                let groups = numbered_groups(&header, &skip);
                match groups.get(prefix) {
                    Some(cols) => VectorColumns::Numbered(cols.clone()),
                    None => bail!(
                        "line 1: no columns {prefix}0, {prefix}1, … numbered from 0 without gaps (--vector-prefix {prefix:?})"
                    ),
                }
            }
            (None, None) => {
                let groups: Vec<(String, Vec<usize>)> =
                    numbered_groups(&header, &skip).into_iter().filter(|(_, c)| c.len() >= 2).collect();
                match groups.as_slice() {
                    [(_, cols)] => VectorColumns::Numbered(cols.clone()),
                    [] => bail!(
                        "line 1: no vector columns: expected a `vector` column (a JSON array per cell) or numbered \
                         columns such as v0, v1, …"
                    ),
                    many => {
                        let names: Vec<String> =
                            many.iter().map(|(p, c)| format!("{p}0..{p}{}", c.len() - 1)).collect();
                        bail!(
                            "line 1: several groups of numbered columns ({}); choose one with --vector-prefix",
                            names.join(", ")
                        )
                    }
                }
            }
        };
        let used: Vec<usize> = match &vector {
            VectorColumns::Json(c) => vec![*c],
            VectorColumns::Numbered(cols) => cols.clone(),
        };
        let payload_cols =
            (0..header.len()).filter(|c| Some(*c) != id_col && !used.contains(c) && !header[*c].is_empty()).collect();
        Ok(Csv {
            r,
            header,
            id_col,
            vector,
            payload_cols,
            dim: None,
            index: 0,
            ids_from: opts.ids_from.unwrap_or(0),
            row: csv::StringRecord::new(),
        })
    }

    /// Reads the next row into `self.row`; `false` at the end.
    fn next_row(&mut self) -> Result<bool> {
        match self.r.read_record(&mut self.row) {
            Ok(more) => Ok(more),
            Err(e) => bail!("{}", csv_error(&e)),
        }
    }
}

/// A CSV error with its line first.
fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            let line = pos.as_ref().map_or_else(|| "a row".to_owned(), |p| format!("line {}", p.line()));
            format!("{line}: {len} fields, the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { pos, err } => {
            let line = pos.as_ref().map_or_else(|| "a row".to_owned(), |p| format!("line {}", p.line()));
            format!("{line}: field {} is not UTF-8 text", err.field() + 1)
        }
        _ => e.to_string(),
    }
}

/// A CSV payload cell: a finite number when it reads as one, otherwise the text.
fn cell_value(s: &str) -> Value {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = t.parse::<u64>() {
        return Value::from(u);
    }
    let looks_numeric = t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && t.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric
        && let Ok(f) = t.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(s.to_owned())
}

impl<R: Read + Send> Source for Csv<R> {
    fn next_record(&mut self) -> Result<Option<Record>> {
        if !self.next_row()? {
            return Ok(None);
        }
        let line = self.row.position().map_or(0, |p| p.line());
        let at = || format!("line {line}");
        let cell = |c: usize| self.row.get(c).unwrap_or("");
        let id = match self.id_col {
            Some(c) => {
                let raw = cell(c).trim();
                raw.parse::<PointId>().map_err(|_| {
                    anyhow!("{}: column \"id\": expected an unsigned integer or a UUID, got {raw:?}", at())
                })?
            }
            None => numbered_id(self.ids_from, self.index, &at)?,
        };
        let vector = match &self.vector {
            VectorColumns::Json(c) => {
                let raw = cell(*c);
                let name = &self.header[*c];
                let v: Value = serde_json::from_str(raw)
                    .map_err(|e| anyhow!("{}: column {name:?}: not a JSON array ({e}): {raw:?}", at()))?;
                let Value::Array(items) = v else {
                    bail!("{}: column {name:?}: expected a JSON array of numbers, got {}", at(), kind(&v));
                };
                let mut out = Vec::with_capacity(items.len());
                for (j, x) in items.iter().enumerate() {
                    match x.as_f64().map(|f| f as f32) {
                        Some(f) if f.is_finite() => out.push(f),
                        _ => bail!("{}: column {name:?}[{j}]: expected a finite number, got {x}", at()),
                    }
                }
                out
            }
            VectorColumns::Numbered(cols) => {
                let mut out = Vec::with_capacity(cols.len());
                for &c in cols {
                    let raw = cell(c).trim();
                    match raw.parse::<f32>() {
                        Ok(f) if f.is_finite() => out.push(f),
                        _ => bail!("{}: column {:?}: expected a finite number, got {raw:?}", at(), self.header[c]),
                    }
                }
                out
            }
        };
        check_dim(&mut self.dim, vector.len(), &at)?;
        let mut payload = Payload::new();
        for &c in &self.payload_cols {
            let raw = cell(c);
            if !raw.trim().is_empty() {
                payload.insert(self.header[c].clone(), cell_value(raw));
            }
        }
        self.index += 1;
        Ok(Some(Record { id, vector, text: None, payload: (!self.payload_cols.is_empty()).then_some(payload) }))
    }

    fn skip(&mut self, n: u64) -> Result<u64> {
        let mut done = 0;
        while done < n && self.next_row()? {
            done += 1;
            self.index += 1;
        }
        Ok(done)
    }

    fn bytes_read(&self) -> u64 {
        self.r.position().byte()
    }
}

/// Opens `path` as `format`.
pub fn open(path: &Path, format: Format, opts: &ReadOptions) -> Result<Box<dyn Source>> {
    let file = std::fs::File::open(path).map_err(|e| anyhow!("opening {}: {e}", path.display()))?;
    let r = std::io::BufReader::with_capacity(1 << 20, file);
    Ok(match format {
        Format::Fvecs => Box::new(Fvecs::new(r, opts)),
        Format::Jsonl => {
            if opts.ids_from.is_some() {
                bail!("--ids-from applies to fvecs and to CSV without an `id` column; JSONL lines carry their ids");
            }
            Box::new(Jsonl::new(r))
        }
        Format::Csv => Box::new(Csv::new(r, opts)?),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn all(src: &mut dyn Source) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        while let Some(r) = src.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    fn fvecs_bytes(rows: &[&[f32]]) -> Vec<u8> {
        let mut b = Vec::new();
        for r in rows {
            b.extend_from_slice(&(r.len() as i32).to_le_bytes());
            for x in *r {
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
        b
    }

    fn err(r: Result<impl std::fmt::Debug>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    #[test]
    fn fvecs_reads_numbers_ids_and_skips() {
        let b = fvecs_bytes(&[&[1.0, 2.0], &[3.0, 4.0], &[5.0, 6.0]]);
        let got = all(&mut Fvecs::new(&b[..], &ReadOptions::default())).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!((got[2].id, got[2].vector.clone(), got[2].payload.clone()), (PointId::Num(2), vec![5.0, 6.0], None));
        let opts = ReadOptions { ids_from: Some(100), ..Default::default() };
        let mut src = Fvecs::new(&b[..], &opts);
        assert_eq!(src.skip(2).unwrap(), 2);
        assert_eq!(src.bytes_read(), 24);
        let r = src.next_record().unwrap().unwrap();
        assert_eq!((r.id, r.vector), (PointId::Num(102), vec![5.0, 6.0]));
        assert!(src.next_record().unwrap().is_none());
        assert_eq!(src.skip(5).unwrap(), 0);
    }

    #[test]
    fn fvecs_errors_name_the_record() {
        let b = fvecs_bytes(&[&[1.0, 2.0], &[3.0, 4.0]]);
        let e = err(all(&mut Fvecs::new(&b[..b.len() - 2], &ReadOptions::default())));
        assert!(e.contains("record 1") && e.contains("truncated"), "{e}");
        let b2 = fvecs_bytes(&[&[1.0, 2.0], &[3.0, 4.0, 5.0]]);
        let e = err(all(&mut Fvecs::new(&b2[..], &ReadOptions::default())));
        assert!(e.contains("record 1") && e.contains("3 components") && e.contains("have 2"), "{e}");
        let b3 = fvecs_bytes(&[&[1.0, f32::NAN]]);
        let e = err(all(&mut Fvecs::new(&b3[..], &ReadOptions::default())));
        assert!(e.contains("record 0") && e.contains("component 1"), "{e}");
        let e = err(all(&mut Fvecs::new(&[0xffu8, 0xff, 0xff, 0xff][..], &ReadOptions::default())));
        assert!(e.contains("record 0") && e.contains("dimension field is -1"), "{e}");
        let e = err(all(&mut Fvecs::new(&[2u8, 0][..], &ReadOptions::default())));
        assert!(e.contains("record 0") && e.contains("truncated"), "{e}");
    }

    #[test]
    fn jsonl_reads_ids_vectors_payloads_and_skips_blank_lines() {
        let text = concat!(
            "{\"id\": 1, \"vector\": [1, 2.5], \"payload\": {\"tag\": \"a\"}}\n",
            "\n",
            "{\"id\": \"550e8400-e29b-41d4-a716-446655440000\", \"vector\": [3, 4]}\n",
            "{\"id\": 3, \"vector\": [5, 6], \"payload\": null}",
        );
        let got = all(&mut Jsonl::new(text.as_bytes())).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].payload.as_ref().unwrap()["tag"], "a");
        assert_eq!(got[1].id.to_string(), "550e8400-e29b-41d4-a716-446655440000");
        assert_eq!(got[2].payload, None);
        let mut src = Jsonl::new(text.as_bytes());
        assert_eq!(src.skip(2).unwrap(), 2);
        assert_eq!(src.next_record().unwrap().unwrap().id, PointId::Num(3));
    }

    #[test]
    fn jsonl_errors_name_line_and_field() {
        let good = "{\"id\": 1, \"vector\": [1, 2]}\n";
        let cases = [
            ("{\"id\": 2, \"vector\": [1, \"x\"]}", "field \"vector\"[1]: expected a number, got a string"),
            ("{\"id\": -2, \"vector\": [1, 2]}", "field \"id\""),
            ("{\"id\": \"nope\", \"vector\": [1, 2]}", "field \"id\""),
            ("{\"vector\": [1, 2]}", "missing field \"id\""),
            ("{\"id\": 2}", "missing field \"vector\""),
            ("{\"id\": 2, \"vector\": [1, 2], \"extra\": 1}", "unknown field \"extra\""),
            ("{\"id\": 2, \"vector\": [1, 2], \"payload\": 5}", "field \"payload\": expected an object"),
            ("{\"id\": 2, \"vector\": [1, 2, 3]}", "3 components, earlier vectors have 2"),
            ("{\"id\": 2, \"vector\": []}", "the vector is empty"),
            ("{\"id\": 2, \"vector\": [1e300, 2]}", "out of the f32 range"),
            ("{\"id\": 2, \"vector\": [1, 2]", "not JSON"),
            ("[1, 2]", "expected a JSON object, got an array"),
        ];
        for (bad, want) in cases {
            let text = format!("{good}\n{bad}\n{good}");
            let e = err(all(&mut Jsonl::new(text.as_bytes())));
            assert!(e.starts_with("line 3: ") && e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn csv_with_json_vector_column_and_typed_payload() {
        let text = "id,vector,title,year,score,empty\n\
                    7,\"[1, 2, 3]\",hello,1999,0.5,\n\
                    550e8400-e29b-41d4-a716-446655440000,\"[4,5,6]\",\"a, b\",-3,1e3,x\n";
        let got = all(&mut Csv::new(text.as_bytes(), &ReadOptions::default()).unwrap()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].id, got[0].vector.clone()), (PointId::Num(7), vec![1.0, 2.0, 3.0]));
        let p = got[0].payload.as_ref().unwrap();
        assert_eq!(p["title"], "hello");
        assert_eq!(p["year"], 1999);
        assert_eq!(p["score"], 0.5);
        assert!(!p.contains_key("empty"), "empty cells are left out");
        let p = got[1].payload.as_ref().unwrap();
        assert_eq!(
            (&p["title"], &p["year"], &p["score"], &p["empty"]),
            (&"a, b".into(), &(-3).into(), &1000.0.into(), &"x".into())
        );
        assert!(matches!(got[1].id, PointId::Uuid(_)));
    }

    #[test]
    fn csv_with_numbered_columns_and_no_id() {
        let text = "v0,v1,v2,label,x2\n1,2,3,a,9\n4,5,6,b,nan\n";
        let opts = ReadOptions { ids_from: Some(10), ..Default::default() };
        let mut src = Csv::new(text.as_bytes(), &opts).unwrap();
        let got = all(&mut src).unwrap();
        assert_eq!(got[1].id, PointId::Num(11));
        assert_eq!(got[1].vector, vec![4.0, 5.0, 6.0]);
        // `x2` alone is not a numbered group (no x0, x1): payload. "nan" stays text.
        assert_eq!(got[0].payload.as_ref().unwrap()["x2"], 9);
        assert_eq!(got[1].payload.as_ref().unwrap()["x2"], "nan");
        // Skipping keeps the numbering.
        let mut src = Csv::new(text.as_bytes(), &opts).unwrap();
        assert_eq!(src.skip(1).unwrap(), 1);
        assert_eq!(src.next_record().unwrap().unwrap().id, PointId::Num(11));
    }

    #[test]
    fn csv_column_choice_errors() {
        let e = err(Csv::new("a,b\n1,2\n".as_bytes(), &ReadOptions::default()));
        assert!(e.contains("line 1: no vector columns"), "{e}");
        let e = err(Csv::new("v0,v1,w0,w1\n1,2,3,4\n".as_bytes(), &ReadOptions::default()));
        assert!(e.contains("several groups") && e.contains("v0..v1") && e.contains("--vector-prefix"), "{e}");
        let opts = ReadOptions { vector_prefix: Some("w".into()), ..Default::default() };
        let got = all(&mut Csv::new("v0,v1,w0,w1\n1,2,3,4\n".as_bytes(), &opts).unwrap()).unwrap();
        assert_eq!(got[0].vector, vec![3.0, 4.0]);
        assert_eq!(got[0].payload.as_ref().unwrap()["v1"], 2);
        let e = err(Csv::new("id,id,vector\n".as_bytes(), &ReadOptions::default()));
        assert!(e.contains("\"id\" appears 2 times"), "{e}");
        let opts = ReadOptions { ids_from: Some(1), ..Default::default() };
        let e = err(Csv::new("id,vector\n".as_bytes(), &opts));
        assert!(e.contains("--ids-from"), "{e}");
    }

    #[test]
    fn csv_malformed_rows_name_the_line_and_column() {
        let head = "id,vector,tag\n1,\"[1,2]\",a\n";
        let cases = [
            ("x,\"[1,2]\",a", "line 3: column \"id\": expected an unsigned integer or a UUID, got \"x\""),
            ("2,\"[1,\"\"a\"\"]\",a", "line 3: column \"vector\"[1]: expected a finite number"),
            ("2,[1;2],a", "line 3: column \"vector\": not a JSON array"),
            ("2,\"{}\",a", "line 3: column \"vector\": expected a JSON array of numbers, got an object"),
            ("2,\"[1,2,3]\",a", "line 3: the vector has 3 components, earlier vectors have 2"),
            ("2,\"[1,2]\"", "line 3: 2 fields, the header has 3"),
        ];
        for (bad, want) in cases {
            let text = format!("{head}{bad}\n");
            let e = err(all(&mut Csv::new(text.as_bytes(), &ReadOptions::default()).unwrap()));
            assert!(e.contains(want), "{bad}: {e}");
        }
        let e = err(all(&mut Csv::new("v0,v1\n1,2\n3,abc\n".as_bytes(), &ReadOptions::default()).unwrap()));
        assert!(e.contains("line 3: column \"v1\": expected a finite number, got \"abc\""), "{e}");
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.fvecs")), Some(Format::Fvecs));
        assert_eq!(Format::from_path(Path::new("b.JSONL")), Some(Format::Jsonl));
        assert_eq!(Format::from_path(Path::new("b.ndjson")), Some(Format::Jsonl));
        assert_eq!(Format::from_path(Path::new("b.csv")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("b.txt")), None);
    }
}
