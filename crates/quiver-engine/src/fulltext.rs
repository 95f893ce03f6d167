//! Full-text search over payload strings: the analyzer that turns text into terms, a per-segment inverted index
//! over one payload key, and BM25 ranking.
//!
//! Like the other payload indexes, a text index is derived state: it is rebuilt from the segment's payloads when
//! the segment opens and kept current by the same insert/remove calls, so it is exactly as durable as the
//! payloads (nothing of its own is written to disk, nothing can disagree after a crash).
//!
//! **Analysis.** Text is split into words by the Unicode word-boundary rules (UAX #29), lower-cased, optionally
//! stripped of English stop words, and optionally stemmed with the English Snowball stemmer. Queries go through
//! the same analyzer as the indexed text. A row whose key holds several strings (an array) is indexed as their
//! concatenation.
//!
//! **BM25.** `score(q, d) = Σ_{t ∈ q} idf(t) · tf·(k1+1) / (tf + k1·(1 − b + b·|d|/avgdl))` with `k1 = 1.2`,
//! `b = 0.75` and `idf(t) = ln(1 + (N − df + 0.5)/(df + 0.5))` (Lucene's always-positive form). `N`, `df` and
//! `avgdl` count the live rows that hold at least one term of the key, across every segment of the collection
//! (see [`TextStats`]), so a score does not depend on how the rows are split into segments. A term repeated in
//! the query counts once per repetition.

use std::collections::HashMap;

use roaring::RoaringBitmap;
use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

/// BM25's term-frequency saturation.
pub const BM25_K1: f32 = 1.2;
/// BM25's document-length normalisation.
pub const BM25_B: f32 = 0.75;

/// How a text index analyzes text. Words are always split by Unicode rules and lower-cased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextOptions {
    /// English Snowball stemming ("running", "runs" → "run").
    #[serde(default)]
    pub stem: bool,
    /// Drop English stop words ("the", "of", "and", …).
    #[serde(default)]
    pub stopwords: bool,
}

impl TextOptions {
    pub(crate) fn flags(self) -> u8 {
        u8::from(self.stem) | (u8::from(self.stopwords) << 1)
    }

    pub(crate) fn from_flags(f: u8) -> Option<TextOptions> {
        (f < 4).then_some(TextOptions { stem: f & 1 != 0, stopwords: f & 2 != 0 })
    }
}

/// English stop words: articles, pronouns, auxiliaries, conjunctions and prepositions (sorted, for
/// binary search).
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Whether `w` (lower-case) is an English stop word.
pub fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// The terms of `text` under `opts`, in order (repeats kept).
pub fn analyze(opts: TextOptions, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    analyze_into(opts, text, &mut out);
    out
}

fn analyze_into(opts: TextOptions, text: &str, out: &mut Vec<String>) {
    let stemmer = opts.stem.then(|| Stemmer::create(Algorithm::English));
    for w in text.unicode_words() {
        let w = w.to_lowercase();
        if opts.stopwords && is_stop_word(&w) {
            continue;
        }
        match &stemmer {
            Some(s) => out.push(s.stem(&w).into_owned()),
            None => out.push(w),
        }
    }
}

/// Collection-wide figures BM25 needs, summed over segments (and, in a cluster, over shards).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextStats {
    /// Live rows holding at least one term of the key.
    pub docs: u64,
    /// Their total length in terms.
    pub total_len: u64,
    /// For each distinct query term (in [`Bm25Query::terms`] order), the live rows holding it.
    pub df: Vec<u64>,
}

impl TextStats {
    /// Adds another segment's figures.
    pub fn add(&mut self, other: &TextStats) {
        self.docs += other.docs;
        self.total_len += other.total_len;
        if self.df.len() < other.df.len() {
            self.df.resize(other.df.len(), 0);
        }
        for (a, b) in self.df.iter_mut().zip(&other.df) {
            *a += b;
        }
    }
}

/// An analyzed query: its distinct terms, each with how often it occurs in the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Bm25Query {
    /// Distinct terms, in first-occurrence order.
    pub terms: Vec<String>,
    /// Occurrences of each term in the query.
    pub counts: Vec<u32>,
}

impl Bm25Query {
    /// Analyzes `text` with `opts`.
    pub fn new(opts: TextOptions, text: &str) -> Bm25Query {
        let mut terms: Vec<String> = Vec::new();
        let mut counts = Vec::new();
        for t in analyze(opts, text) {
            match terms.iter().position(|x| *x == t) {
                Some(i) => counts[i] += 1,
                None => {
                    terms.push(t);
                    counts.push(1);
                }
            }
        }
        Bm25Query { terms, counts }
    }

    /// The per-term weights (query count × idf) under collection-wide `stats`, and the average row length.
    pub fn weights(&self, stats: &TextStats) -> (Vec<f32>, f32) {
        let n = stats.docs as f64;
        let w = self
            .terms
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let df = stats.df.get(i).copied().unwrap_or(0) as f64;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                (idf * f64::from(self.counts[i])) as f32
            })
            .collect();
        let avgdl = if stats.docs == 0 { 1.0 } else { (stats.total_len as f64 / n) as f32 };
        (w, avgdl.max(f32::MIN_POSITIVE))
    }
}

/// The inverted index of one payload key in one segment.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextIndex {
    opts: TextOptions,
    /// Term → term id.
    terms: HashMap<Box<str>, u32>,
    /// Term id → rows holding it.
    postings: Vec<RoaringBitmap>,
    /// Term id → the term's frequency in each of those rows, in row order (aligned with `postings`).
    freqs: Vec<Vec<u32>>,
    /// Row → (term id, frequency), sorted by term id; empty for rows without terms.
    docs: Vec<Box<[(u32, u32)]>>,
    /// Row → number of terms (with repeats).
    lens: Vec<u32>,
    /// Rows with at least one term.
    rows: RoaringBitmap,
    /// Sum of `lens`.
    total_len: u64,
}

impl PartialEq for TextIndex {
    /// Equal when both map the same terms to the same rows with the same frequencies (term ids may differ).
    fn eq(&self, other: &Self) -> bool {
        self.opts == other.opts
            && self.rows == other.rows
            && self.total_len == other.total_len
            && self.rows.iter().all(|r| self.row_terms(r) == other.row_terms(r))
            && self.live_terms() == other.live_terms()
    }
}

impl TextIndex {
    pub(crate) fn new(opts: TextOptions) -> TextIndex {
        TextIndex { opts, ..TextIndex::default() }
    }

    pub(crate) fn options(&self) -> TextOptions {
        self.opts
    }

    fn row_terms(&self, row: u32) -> Vec<(&str, u32)> {
        let names: HashMap<u32, &str> = self.terms.iter().map(|(k, v)| (*v, &**k)).collect();
        let mut out: Vec<(&str, u32)> =
            self.docs.get(row as usize).map(|d| d.iter().map(|&(t, f)| (names[&t], f)).collect()).unwrap_or_default();
        out.sort_unstable();
        out
    }

    fn live_terms(&self) -> std::collections::BTreeMap<&str, &RoaringBitmap> {
        self.terms.iter().map(|(k, &id)| (&**k, &self.postings[id as usize])).filter(|(_, b)| !b.is_empty()).collect()
    }

    /// Indexes `row` as the concatenation of `texts`. The row must not be indexed already.
    pub(crate) fn insert<'a>(&mut self, row: u32, texts: impl IntoIterator<Item = &'a str>) {
        let mut words = Vec::new();
        for t in texts {
            analyze_into(self.opts, t, &mut words);
        }
        if words.is_empty() {
            return;
        }
        let mut freq: HashMap<u32, u32> = HashMap::new();
        for w in &words {
            let next = self.postings.len() as u32;
            let id = *self.terms.entry(w.as_str().into()).or_insert(next);
            if id == next {
                self.postings.push(RoaringBitmap::new());
                self.freqs.push(Vec::new());
            }
            *freq.entry(id).or_default() += 1;
        }
        let mut doc: Vec<(u32, u32)> = freq.into_iter().collect();
        doc.sort_unstable();
        for &(t, f) in &doc {
            let (rows, freqs) = (&mut self.postings[t as usize], &mut self.freqs[t as usize]);
            rows.insert(row);
            if rows.max() == Some(row) {
                freqs.push(f); // the usual case: rows arrive in order
            } else {
                freqs.insert(rows.rank(row) as usize - 1, f);
            }
        }
        let r = row as usize;
        if self.docs.len() <= r {
            self.docs.resize_with(r + 1, Default::default);
            self.lens.resize(r + 1, 0);
        }
        self.docs[r] = doc.into_boxed_slice();
        self.lens[r] = words.len() as u32;
        self.rows.insert(row);
        self.total_len += words.len() as u64;
    }

    /// Un-indexes `row` (no-op when it holds no terms).
    pub(crate) fn remove(&mut self, row: u32) {
        let r = row as usize;
        if !self.rows.remove(row) {
            return;
        }
        for &(t, _) in self.docs[r].iter() {
            let (rows, freqs) = (&mut self.postings[t as usize], &mut self.freqs[t as usize]);
            freqs.remove(rows.rank(row) as usize - 1);
            rows.remove(row);
        }
        self.docs[r] = Box::default();
        self.total_len -= u64::from(self.lens[r]);
        self.lens[r] = 0;
    }

    fn postings_of(&self, term: &str) -> Option<&RoaringBitmap> {
        self.terms.get(term).map(|&id| &self.postings[id as usize])
    }

    /// Rows holding every term of `text` (none when `text` has no terms): `match: {"text": …}` on this key.
    pub(crate) fn matching_all(&self, text: &str) -> RoaringBitmap {
        let q = Bm25Query::new(self.opts, text);
        let mut out: Option<RoaringBitmap> = None;
        for t in &q.terms {
            let Some(b) = self.postings_of(t) else { return RoaringBitmap::new() };
            out = Some(match out {
                None => b.clone(),
                Some(acc) => acc & b,
            });
        }
        out.unwrap_or_default()
    }

    /// This segment's figures for `q`, leaving out the `excluded` rows.
    pub(crate) fn stats(&self, q: &Bm25Query, excluded: &RoaringBitmap) -> TextStats {
        let gone = &self.rows & excluded;
        let gone_len: u64 = gone.iter().map(|r| u64::from(self.lens[r as usize])).sum();
        let df =
            q.terms.iter().map(|t| self.postings_of(t).map_or(0, |b| b.len() - b.intersection_len(excluded))).collect();
        TextStats { docs: self.rows.len() - gone.len(), total_len: self.total_len - gone_len, df }
    }

    /// The `k` best BM25 scores among the rows holding a query term that `allowed` admits (all rows when
    /// `None`) and that are not `excluded`, as (row, score), best first (ties by row). `weights` and `avgdl` come
    /// from [`Bm25Query::weights`].
    ///
    /// Term at a time: each term's rows and frequencies are read in order from two aligned arrays, and scores
    /// add up in a dense accumulator over the segment's rows (reused by the thread), remembering which rows it
    /// touched.
    pub(crate) fn top(
        &self,
        q: &Bm25Query,
        weights: &[f32],
        avgdl: f32,
        allowed: Option<&RoaringBitmap>,
        excluded: &RoaringBitmap,
        k: usize,
    ) -> Vec<(u32, f32)> {
        thread_local! {
            static ACC: std::cell::RefCell<(Vec<f32>, Vec<u32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
        }
        ACC.with_borrow_mut(|(acc, touched)| {
            if acc.len() < self.lens.len() {
                acc.resize(self.lens.len(), 0.0);
            }
            touched.clear();
            let everything = excluded.is_empty() && allowed.is_none();
            let keep = |r: u32| everything || (!excluded.contains(r) && allowed.is_none_or(|a| a.contains(r)));
            for (i, t) in q.terms.iter().enumerate() {
                let Some(&id) = self.terms.get(t.as_str()) else { continue };
                let (rows, freqs) = (&self.postings[id as usize], &self.freqs[id as usize]);
                let w = weights[i] * (BM25_K1 + 1.0);
                for (r, &f) in rows.iter().zip(freqs) {
                    if keep(r) {
                        let f = f as f32;
                        // k1·(1 − b + b·len/avgdl): the length part of BM25's denominator.
                        let norm = BM25_K1 * (1.0 - BM25_B + BM25_B * self.lens[r as usize] as f32 / avgdl);
                        let slot = &mut acc[r as usize];
                        if *slot == 0.0 {
                            touched.push(r);
                        }
                        *slot += w * f / (f + norm);
                    }
                }
            }
            let mut top = quiver_index::TopK::new(k);
            for &r in touched.iter() {
                top.push(quiver_index::Neighbor::new(u64::from(r), -acc[r as usize]));
                acc[r as usize] = 0.0;
            }
            top.into_sorted_vec().into_iter().map(|n| (n.id as u32, -n.distance)).collect()
        })
    }

    /// Approximate heap bytes.
    pub(crate) fn memory_bytes(&self) -> usize {
        let terms: usize = self.terms.keys().map(|k| k.len() + 48).sum();
        let postings: usize = self.postings.iter().map(RoaringBitmap::serialized_size).sum::<usize>()
            + self.freqs.iter().map(|f| 24 + f.capacity() * 4).sum::<usize>();
        let docs: usize = self.docs.iter().map(|d| 16 + d.len() * 8).sum();
        terms + postings + docs + self.lens.len() * 4 + self.rows.serialized_size()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const PLAIN: TextOptions = TextOptions { stem: false, stopwords: false };
    const ENGLISH: TextOptions = TextOptions { stem: true, stopwords: true };

    #[test]
    fn the_stop_word_list_is_sorted_so_binary_search_finds_every_entry() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(STOP_WORDS.iter().all(|w| is_stop_word(w)));
        assert!(!is_stop_word("dog"));
    }

    #[test]
    fn analysis_splits_unicode_words_lowercases_and_optionally_stems_and_drops_stop_words() {
        assert_eq!(
            analyze(PLAIN, "The Dogs' running-fast, naïve CAFÉ 3.5 東京"),
            ["the", "dogs", "running", "fast", "naïve", "café", "3.5", "東", "京"]
        );
        assert_eq!(analyze(ENGLISH, "The dogs are running in the parks"), ["dog", "run", "park"]);
        assert_eq!(analyze(TextOptions { stem: false, stopwords: true }, "the running of"), ["running"]);
        assert!(analyze(ENGLISH, "  ,,; -- ").is_empty());
        assert_eq!(TextOptions::from_flags(ENGLISH.flags()), Some(ENGLISH));
        assert_eq!(TextOptions::from_flags(4), None);
    }

    #[test]
    fn matching_all_needs_every_query_term() {
        let mut ix = TextIndex::new(ENGLISH);
        ix.insert(0, ["a dog barks at the mailman"]);
        ix.insert(1, ["dogs and cats", "barking loudly"]);
        ix.insert(3, ["a cat"]);
        let rows = |ix: &TextIndex, q: &str| ix.matching_all(q).iter().collect::<Vec<_>>();
        assert_eq!(rows(&ix, "dog"), [0, 1]);
        assert_eq!(rows(&ix, "barking dogs"), [0, 1]);
        assert_eq!(rows(&ix, "Cats"), [1, 3]);
        assert_eq!(rows(&ix, "dog cat"), [1]);
        assert_eq!(rows(&ix, "unicorn dog"), Vec::<u32>::new());
        assert_eq!(rows(&ix, "the of"), Vec::<u32>::new(), "a query of stop words only matches nothing");
        ix.remove(1);
        assert_eq!(rows(&ix, "dog"), [0]);
        ix.remove(2); // never indexed: no-op
        assert_eq!(ix.stats(&Bm25Query::new(ENGLISH, "cat"), &RoaringBitmap::new()).docs, 2);
    }

    /// Plain BM25 over whole documents, written from the formula.
    fn reference(docs: &[Option<Vec<String>>], live: &[bool], query: &[String]) -> Vec<(u32, f64)> {
        let live_docs: Vec<(usize, &Vec<String>)> = docs
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_ref().filter(|d| live[i] && !d.is_empty()).map(|d| (i, d)))
            .collect();
        let n = live_docs.len() as f64;
        let avgdl = live_docs.iter().map(|(_, d)| d.len() as f64).sum::<f64>() / n.max(1.0);
        let mut out = Vec::new();
        for (i, d) in &live_docs {
            let mut score = 0.0;
            let mut any = false;
            for t in query {
                let tf = d.iter().filter(|w| *w == t).count() as f64;
                if tf == 0.0 {
                    continue;
                }
                any = true;
                let df = live_docs.iter().filter(|(_, d)| d.contains(t)).count() as f64;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                let k1 = f64::from(BM25_K1);
                let b = f64::from(BM25_B);
                score += idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * d.len() as f64 / avgdl));
            }
            if any {
                out.push((*i as u32, score));
            }
        }
        out
    }

    fn doc_strategy() -> impl Strategy<Value = Option<Vec<String>>> {
        let word = prop::sample::select(vec!["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"]);
        prop::option::weighted(0.9, prop::collection::vec(word.prop_map(str::to_owned), 0..12))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Scores across two "segments" (stats summed) equal the brute-force formula over the live documents;
        /// an index after inserts and removes equals one built from the final state.
        #[test]
        fn bm25_matches_a_brute_force_reference(
            docs in prop::collection::vec(doc_strategy(), 1..40),
            live in prop::collection::vec(any::<bool>(), 40),
            removed in prop::collection::vec(any::<bool>(), 40),
            split in 0usize..40,
            query in prop::collection::vec(prop::sample::select(vec!["ant", "cat", "fox", "yak"]), 1..4),
        ) {
            let split = split.min(docs.len());
            // Every row is inserted, then some are removed (a delete) or removed and re-indexed with other words
            // (a payload update in place, out of row order).
            let mut parts = [TextIndex::new(PLAIN), TextIndex::new(PLAIN)];
            let mut excluded = [RoaringBitmap::new(), RoaringBitmap::new()];
            let mut effective = docs.clone();
            let at = |i: usize| if i < split { (0, i) } else { (1, i - split) };
            for (i, d) in docs.iter().enumerate() {
                let (p, row) = at(i);
                if let Some(words) = d {
                    parts[p].insert(row as u32, [words.join(" ").as_str()]);
                }
                if !live[i] {
                    excluded[p].insert(row as u32);
                }
            }
            for (i, d) in docs.iter().enumerate() {
                let (p, row) = at(i);
                if removed[i] {
                    parts[p].remove(row as u32);
                    effective[i] = None;
                    if i % 2 == 0 {
                        let mut other: Vec<String> = d.clone().unwrap_or_default();
                        other.reverse();
                        other.push("cat".to_owned());
                        parts[p].insert(row as u32, [other.join(" ").as_str()]);
                        effective[i] = Some(other);
                    }
                }
            }
            // Index == rebuild.
            for (p, part) in parts.iter().enumerate() {
                let mut rebuilt = TextIndex::new(PLAIN);
                for (i, d) in effective.iter().enumerate() {
                    let (q, row) = if i < split { (0, i) } else { (1, i - split) };
                    if let (true, Some(words)) = (q == p, d) {
                        rebuilt.insert(row as u32, [words.join(" ").as_str()]);
                    }
                }
                prop_assert_eq!(part, &rebuilt);
            }
            let text = query.join(" ");
            let q = Bm25Query::new(PLAIN, &text);
            let mut stats = TextStats::default();
            for (part, ex) in parts.iter().zip(&excluded) {
                stats.add(&part.stats(&q, ex));
            }
            let (w, avgdl) = q.weights(&stats);
            let mut got: Vec<(u32, f32)> = parts[0].top(&q, &w, avgdl, None, &excluded[0], 100);
            got.extend(parts[1].top(&q, &w, avgdl, None, &excluded[1], 100).into_iter().map(|(r, s)| (r + split as u32, s)));
            got.sort_by_key(|&(r, _)| r);
            let words: Vec<String> = query.iter().map(|s| (*s).to_owned()).collect();
            let want = reference(&effective, &live, &words);
            prop_assert_eq!(got.len(), want.len(), "{:?} vs {:?}", got, want);
            for ((gr, gs), (wr, ws)) in got.iter().zip(&want) {
                prop_assert_eq!(gr, wr);
                prop_assert!((f64::from(*gs) - ws).abs() <= 1e-4 * ws.abs().max(1.0), "row {}: {} vs {}", gr, gs, ws);
            }
        }
    }
}
