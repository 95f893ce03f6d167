//! Splitting a document into pieces small enough to embed, cut at sentence boundaries where possible.
//!
//! [`chunk_text`] works in three passes over the text:
//!
//! 1. **Sentences.** The text is cut into sentences. A sentence ends after a run of terminators (`.` `!` `?` `…`,
//!    possibly followed by closing quotes or brackets) when whitespace or the end of the text comes next, so
//!    `3.14` and `e.g.x` stay whole. The full-width terminators `。` `！` `？` end a sentence even with no space
//!    after them, since Chinese and Japanese put none. Line structure also cuts: a blank line (a paragraph break)
//!    ends the sentence before it, a Markdown heading line (`#`… then a space or the end of the line) is a sentence
//!    of its own, and a list item line (`- `, `* `, `+ `, `1. `, `1) `) starts a new one. A single line break
//!    inside a paragraph does not end a sentence. Abbreviations are not recognised: `Dr. Smith` is cut after `Dr.`
//!    (the two halves usually land in the same chunk anyway). Each sentence is trimmed of surrounding whitespace;
//!    empty ones are dropped.
//! 2. **Units.** Each sentence is counted once. One that fits in `max_tokens` is a unit. One that does not is
//!    broken into its whitespace-separated words, each counted and each a unit, so a long run of text without a
//!    full stop is still packed word by word (and overlaps word by word). A word that alone exceeds `max_tokens` is
//!    cut at character boundaries: the longest prefix that fits is found by doubling the prefix length and then
//!    bisecting, so the work is proportional to the piece and not to the rest of the word. A piece always holds at
//!    least one character, so the cut always advances.
//! 3. **Packing.** Units are packed greedily into chunks whose token count, the sum of their units' counts, stays
//!    within `max_tokens`. Each chunk after the first begins with the longest run of units at the end of the
//!    previous chunk whose counts add up to at most `overlap_tokens` (none if the last unit alone is larger). If the
//!    overlap and the first new unit together would not fit, overlap units are dropped from the front. Every chunk
//!    holds at least one unit the previous chunk did not, so both its start and its end move forward.
//!
//! A chunk's count is the sum of its units' counts, not a count of the chunk's whole text. For a tokenizer that
//! splits on whitespace before anything else (BERT's WordPiece) the two agree; for one that does not (byte-level
//! BPE) they can differ by a token or so per unit, so leave a little margin below the model's limit.
//!
//! The counter is called about once per sentence, once more per word of an over-long sentence, and a logarithmic
//! number of times per piece of an over-long word, always on text no longer than the sentence, word or a piece
//! twice the size of the result. Each chunk's text is a slice of the input, trimmed of whitespace at both ends.

use crate::error::{EmbedError, Result};

/// How [`chunk_text`] sizes its chunks. The default is 200 tokens per chunk with 32 tokens of overlap, which leaves
/// room under all-MiniLM-L6-v2's 256-token window for special tokens and tokenizer drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChunkOptions {
    /// The most tokens in one chunk (at least 1).
    pub max_tokens: usize,
    /// Tokens of the previous chunk's end repeated at the start of the next (smaller than `max_tokens`; 0 for none).
    pub overlap_tokens: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions { max_tokens: 200, overlap_tokens: 32 }
    }
}

impl ChunkOptions {
    /// Options from what a caller gave: `max_tokens` (default 200) and `overlap_tokens` (default 32, or half of
    /// `max_tokens` when that is smaller, so a small chunk size alone is never an invalid combination).
    pub fn from_parts(max_tokens: Option<usize>, overlap_tokens: Option<usize>) -> ChunkOptions {
        let d = ChunkOptions::default();
        let max_tokens = max_tokens.unwrap_or(d.max_tokens);
        ChunkOptions { max_tokens, overlap_tokens: overlap_tokens.unwrap_or(d.overlap_tokens.min(max_tokens / 2)) }
    }

    /// Checks that `max_tokens` is at least 1 and `overlap_tokens` is smaller than it.
    pub fn validate(&self) -> Result<()> {
        if self.max_tokens == 0 {
            return Err(EmbedError::InvalidOption {
                name: "max_tokens",
                value: self.max_tokens.to_string(),
                reason: "must be at least 1",
            });
        }
        if self.overlap_tokens >= self.max_tokens {
            return Err(EmbedError::InvalidOption {
                name: "overlap_tokens",
                value: self.overlap_tokens.to_string(),
                reason: "must be smaller than max_tokens",
            });
        }
        Ok(())
    }
}

/// One piece of a document, as returned by [`chunk_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position among the document's chunks: 0, 1, 2, …
    pub index: usize,
    /// Byte offset of the chunk's first character in the document.
    pub start: usize,
    /// Byte offset just past the chunk's last character; `text == document[start..end]`.
    pub end: usize,
    /// The chunk's text: a slice of the document, with no whitespace at either end.
    pub text: String,
    /// The chunk's token count: the sum of the counts of the sentences (or words, or pieces of a word) in it.
    pub tokens: usize,
}

/// Splits `text` into chunks of at most `options.max_tokens` tokens, cut at sentence boundaries where possible,
/// each chunk after the first repeating up to `options.overlap_tokens` tokens from the end of the one before (see
/// the [module documentation](self) for the rules).
///
/// `count_tokens` counts the model's tokens in a piece of text, special tokens excluded. It should never count
/// fewer tokens for a text than for a prefix of it; the limit can only be broken by a single character that alone
/// counts more than `max_tokens`. Empty or whitespace-only text gives no chunks. Fails only when the options are
/// invalid ([`ChunkOptions::validate`]).
pub fn chunk_text(
    text: &str,
    options: &ChunkOptions,
    count_tokens: &mut dyn FnMut(&str) -> usize,
) -> Result<Vec<Chunk>> {
    options.validate()?;
    let units = units(text, options.max_tokens, count_tokens);
    Ok(pack(text, &units, options))
}

/// A run of text that goes into a chunk whole: a sentence, a word of an over-long sentence, or a piece of an
/// over-long word. `start..end` is trimmed and non-empty.
#[derive(Debug, Clone, Copy)]
struct Unit {
    start: usize,
    end: usize,
    tokens: usize,
}

/// Terminators that end a sentence only when whitespace (or the end of the text) follows.
fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？' | '｡')
}

/// Chinese and Japanese terminators, which end a sentence whatever follows them (those languages put no space
/// between sentences).
fn is_cjk_terminator(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '｡')
}

/// Closing quotes and brackets that may follow a terminator and belong to its sentence.
fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | ')' | ']' | '}' | '»' | '›' | '」' | '』' | '）' | '】' | '》' | '〉' | '〕')
}

/// A Markdown ATX heading: one or more `#`, then whitespace or the end of the line.
fn is_heading(line: &str) -> bool {
    let rest = line.trim_start_matches('#');
    rest.len() < line.len() && rest.chars().next().is_none_or(char::is_whitespace)
}

/// A Markdown list item: `-`, `*` or `+`, or up to nine digits then `.` or `)`, followed by whitespace. Returns
/// the length in bytes of the marker (without the whitespace).
fn list_marker(line: &str) -> Option<usize> {
    let marker = if line.starts_with(['-', '*', '+']) {
        1
    } else {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 || !line[digits..].starts_with(['.', ')']) {
            return None;
        }
        digits + 1
    };
    line[marker..].chars().next().is_some_and(char::is_whitespace).then_some(marker)
}

/// The byte offsets at which sentences end, in increasing order (possibly repeated). Everything between two
/// consecutive cuts, trimmed, is one sentence.
fn sentence_cuts(text: &str) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut line_start = 0;
    for line in text.split('\n') {
        let line_end = line_start + line.len();
        let content = line.trim_start();
        if content.is_empty() {
            // A blank line: a paragraph break.
            cuts.push(line_start);
        } else if is_heading(content) {
            cuts.push(line_start);
            cuts.push(line_end);
        } else {
            // A list item starts a new sentence, and its marker (`1.`) does not end one.
            let mut skip = line.len() - content.len();
            if let Some(marker) = list_marker(content) {
                cuts.push(line_start);
                skip += marker;
            }
            let mut chars = line[skip..].char_indices().map(|(i, c)| (skip + i, c)).peekable();
            while let Some((_, c)) = chars.next() {
                if !is_terminator(c) {
                    continue;
                }
                let mut cjk = is_cjk_terminator(c);
                while let Some((_, next)) = chars.next_if(|&(_, next)| is_terminator(next)) {
                    cjk |= is_cjk_terminator(next);
                }
                while chars.next_if(|&(_, next)| is_closer(next)).is_some() {}
                // The end of a line is followed by the line break (or the end of the text): whitespace.
                let (after, followed_by_space) = match chars.peek() {
                    Some(&(i, next)) => (line_start + i, next.is_whitespace()),
                    None => (line_end, true),
                };
                if followed_by_space || cjk {
                    cuts.push(after);
                }
            }
        }
        line_start = line_end + 1;
    }
    cuts
}

/// `text[start..end]` trimmed, as offsets into `text`; `None` when only whitespace is left.
fn trimmed(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let slice = &text[start..end];
    let head = slice.trim_start();
    if head.is_empty() {
        return None;
    }
    let start = start + (slice.len() - head.len());
    Some((start, start + head.trim_end().len()))
}

/// Byte ranges of the whitespace-separated words of `text[start..end]`, as offsets into `text`.
fn words(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut words = Vec::new();
    let mut word_start = None;
    for (i, c) in text[start..end].char_indices() {
        match (c.is_whitespace(), word_start) {
            (true, Some(s)) => {
                words.push((start + s, start + i));
                word_start = None;
            }
            (false, None) => word_start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = word_start {
        words.push((start + s, end));
    }
    words
}

/// The text's units, in order (see the module documentation).
fn units(text: &str, max_tokens: usize, count: &mut dyn FnMut(&str) -> usize) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut from = 0;
    for cut in sentence_cuts(text).into_iter().chain([text.len()]) {
        if cut <= from {
            continue;
        }
        if let Some((start, end)) = trimmed(text, from, cut) {
            let tokens = count(&text[start..end]);
            if tokens <= max_tokens {
                units.push(Unit { start, end, tokens });
            } else {
                for (word_start, word_end) in words(text, start, end) {
                    let tokens = count(&text[word_start..word_end]);
                    if tokens <= max_tokens {
                        units.push(Unit { start: word_start, end: word_end, tokens });
                    } else {
                        split_word(text, word_start, word_end, max_tokens, count, &mut units);
                    }
                }
            }
        }
        from = cut;
    }
    units
}

/// Cuts the word `text[start..end]` into pieces of at most `max_tokens` tokens (each at least one character),
/// pushing each onto `units`.
fn split_word(
    text: &str,
    start: usize,
    end: usize,
    max_tokens: usize,
    count: &mut dyn FnMut(&str) -> usize,
    units: &mut Vec<Unit>,
) {
    let word = &text[start..end];
    // ends[k] is the byte offset (in `word`) just past character k.
    let ends: Vec<usize> = word.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
    let mut first = 0; // index of the piece's first character
    while first < ends.len() {
        let piece_start = if first == 0 { 0 } else { ends[first - 1] };
        let remaining = ends.len() - first;
        let mut count_chars = |n: usize| count(&word[piece_start..ends[first + n - 1]]);
        // `good` characters fit (or are the one character a piece must hold); `bad`, if any, do not.
        let mut good = 1;
        let mut good_tokens = count_chars(1);
        let mut bad = None;
        while good < remaining {
            let n = (good * 2).min(remaining);
            let tokens = count_chars(n);
            if tokens <= max_tokens {
                good = n;
                good_tokens = tokens;
            } else {
                bad = Some(n);
                break;
            }
        }
        if let Some(mut bad) = bad {
            while bad - good > 1 {
                let mid = good + (bad - good) / 2;
                let tokens = count_chars(mid);
                if tokens <= max_tokens {
                    good = mid;
                    good_tokens = tokens;
                } else {
                    bad = mid;
                }
            }
        }
        let piece_end = ends[first + good - 1];
        units.push(Unit { start: start + piece_start, end: start + piece_end, tokens: good_tokens });
        first += good;
    }
}

/// Packs `units` greedily into chunks with overlap (see the module documentation).
fn pack(text: &str, units: &[Unit], options: &ChunkOptions) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    // The current chunk is units[first..next] so far; units[first..fresh] are its overlap from the previous chunk.
    let mut first = 0;
    let mut fresh = 0;
    let mut overlap_tokens = 0usize;
    while fresh < units.len() {
        let mut tokens = overlap_tokens;
        while first < fresh && tokens.saturating_add(units[fresh].tokens) > options.max_tokens {
            tokens -= units[first].tokens;
            first += 1;
        }
        // The first fresh unit goes in whatever its size, so every chunk moves forward.
        tokens = tokens.saturating_add(units[fresh].tokens);
        let mut next = fresh + 1;
        while next < units.len() && tokens.saturating_add(units[next].tokens) <= options.max_tokens {
            tokens += units[next].tokens;
            next += 1;
        }
        let (start, end) = (units[first].start, units[next - 1].end);
        chunks.push(Chunk { index: chunks.len(), start, end, text: text[start..end].to_string(), tokens });

        // The next chunk's overlap: the longest tail of this one within overlap_tokens.
        let chunk_first = first;
        fresh = next;
        first = next;
        overlap_tokens = 0;
        while first > chunk_first {
            let candidate = overlap_tokens.saturating_add(units[first - 1].tokens);
            if candidate > options.overlap_tokens {
                break;
            }
            overlap_tokens = candidate;
            first -= 1;
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn word_count(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn char_count(s: &str) -> usize {
        s.chars().count()
    }

    fn options(max_tokens: usize, overlap_tokens: usize) -> ChunkOptions {
        ChunkOptions { max_tokens, overlap_tokens }
    }

    /// Chunks `text` and checks the invariants every result must hold.
    fn chunk(text: &str, opts: ChunkOptions, counter: fn(&str) -> usize) -> Vec<Chunk> {
        let chunks = chunk_text(text, &opts, &mut |s| counter(s)).unwrap();
        check(text, &opts, &chunks);
        chunks
    }

    fn texts(chunks: &[Chunk]) -> Vec<&str> {
        chunks.iter().map(|c| c.text.as_str()).collect()
    }

    /// The sentences the first pass finds (every sentence fits when the limit is unbounded).
    fn sentences(text: &str) -> Vec<&str> {
        units(text, usize::MAX, &mut word_count).iter().map(|u| &text[u.start..u.end]).collect()
    }

    fn check(text: &str, opts: &ChunkOptions, chunks: &[Chunk]) {
        let mut covered = vec![false; text.len()];
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.index, i);
            assert!(c.start < c.end && c.end <= text.len(), "{c:?}");
            assert!(text.is_char_boundary(c.start) && text.is_char_boundary(c.end), "{c:?}");
            assert_eq!(c.text, &text[c.start..c.end]);
            assert_eq!(c.text.trim(), c.text, "chunk {i} is not trimmed");
            assert!(c.tokens <= opts.max_tokens, "chunk {i} has {} tokens > {}", c.tokens, opts.max_tokens);
            if i > 0 {
                let prev = &chunks[i - 1];
                assert!(c.start > prev.start, "chunk {i} does not start after chunk {}", i - 1);
                assert!(c.end > prev.end, "chunk {i} does not end after chunk {}", i - 1);
            }
            covered[c.start..c.end].iter_mut().for_each(|b| *b = true);
        }
        for (i, ch) in text.char_indices() {
            assert!(ch.is_whitespace() || covered[i], "{ch:?} at byte {i} is in no chunk");
        }
    }

    #[test]
    fn packs_whole_sentences_up_to_the_limit() {
        let text = "One two three. Four five. Six seven eight nine. Ten.";
        let chunks = chunk(text, options(5, 0), word_count);
        assert_eq!(texts(&chunks), ["One two three. Four five.", "Six seven eight nine. Ten."]);
        assert_eq!(chunks.iter().map(|c| c.tokens).collect::<Vec<_>>(), [5, 5]);
        assert_eq!((chunks[1].start, chunks[1].end), (26, text.len()));

        // One sentence per chunk when no two fit together.
        let chunks = chunk(text, options(4, 0), word_count);
        assert_eq!(texts(&chunks), ["One two three.", "Four five.", "Six seven eight nine.", "Ten."]);

        // Everything in one chunk when it all fits.
        let chunks = chunk(text, options(100, 10), word_count);
        assert_eq!(texts(&chunks), [text]);
        assert_eq!(chunks[0].tokens, 10);
    }

    #[test]
    fn overlap_repeats_the_previous_chunks_last_sentences() {
        let text = "One two three. Four five. Six seven eight nine. Ten.";
        let chunks = chunk(text, options(6, 2), word_count);
        assert_eq!(
            texts(&chunks),
            ["One two three. Four five.", "Four five. Six seven eight nine.", "Ten."],
            "the second chunk starts with the first's last sentence; the third gets none (4 > 2 tokens)"
        );

        // Two trailing sentences when both fit in the overlap.
        let text = "A b c d. E. F. G h i.";
        let chunks = chunk(text, options(6, 2), word_count);
        assert_eq!(texts(&chunks), ["A b c d. E. F.", "E. F. G h i."]);

        // The overlap fits in overlap_tokens but not with the next sentence: it is dropped, not the limit broken.
        let text = "One two three. Four five. Six seven eight nine. Ten.";
        let chunks = chunk(text, options(5, 3), word_count);
        assert_eq!(texts(&chunks), ["One two three. Four five.", "Six seven eight nine. Ten."]);
    }

    #[test]
    fn no_overlap_when_zero() {
        let text = "Alpha beta. Gamma delta. Epsilon zeta. Eta theta. Iota kappa.";
        let chunks = chunk(text, options(4, 0), word_count);
        assert_eq!(chunks.len(), 3);
        for pair in chunks.windows(2) {
            assert!(pair[1].start > pair[0].end, "{pair:?}");
        }
        let joined = texts(&chunks).join(" ");
        assert_eq!(joined, text);
    }

    #[test]
    fn sentence_ends() {
        assert_eq!(sentences("Hi! How are you? Fine… Thanks."), ["Hi!", "How are you?", "Fine…", "Thanks."]);
        // Closing quotes and brackets stay with their sentence; runs of terminators are one end.
        assert_eq!(
            sentences(r#"He said "stop." (Really.) Wait?! Yes... "Done!" ’Tis."#),
            [r#"He said "stop.""#, "(Really.)", "Wait?!", "Yes...", r#""Done!""#, "’Tis."]
        );
        // No whitespace after the dot: not an end.
        assert_eq!(
            sentences("Pi is 3.14 or so. Use e.g.x here. Version 1.2.3 out"),
            ["Pi is 3.14 or so.", "Use e.g.x here.", "Version 1.2.3 out"]
        );
        // Abbreviations are not special.
        assert_eq!(sentences("Ask Dr. Smith."), ["Ask Dr.", "Smith."]);
        // A single line break does not end a sentence; a blank line does.
        assert_eq!(sentences("one\ntwo\n\nthree\n \t\nfour"), ["one\ntwo", "three", "four"]);
        assert_eq!(sentences("...!!!???"), ["...!!!???"]);
        assert_eq!(sentences("."), ["."]);
    }

    #[test]
    fn markdown_headings_and_list_items() {
        let text = "# Title\nIntro text without a stop\n## Section two\n- item one\n- item two\n  continued\n* star\n+ plus\n1. first. Still first\n2) second\n10. tenth\n\nAfter the list\n#hashtag is not a heading\n-not an item";
        assert_eq!(
            sentences(text),
            [
                "# Title",
                "Intro text without a stop",
                "## Section two",
                "- item one",
                "- item two\n  continued",
                "* star",
                "+ plus",
                "1. first.",
                "Still first",
                "2) second",
                "10. tenth",
                "After the list\n#hashtag is not a heading\n-not an item",
            ]
        );
        // A heading is a sentence of its own, so it can carry into the next chunk as overlap.
        let chunks = chunk("# Cats\nCats sleep a lot. They purr.\n# Dogs\nDogs bark.", options(5, 2), word_count);
        assert_eq!(texts(&chunks), ["# Cats", "Cats sleep a lot.", "They purr.\n# Dogs", "# Dogs\nDogs bark."]);
        assert_eq!(sentences("#\n#"), ["#", "#"]);
    }

    #[test]
    fn unicode() {
        // Full-width terminators end a sentence with no space after them.
        let cjk = "今日は晴れです。明日は雨でしょう！本当？「はい。」そうです";
        assert_eq!(sentences(cjk), ["今日は晴れです。", "明日は雨でしょう！", "本当？", "「はい。」", "そうです"]);
        let chunks = chunk(cjk, options(10, 5), char_count);
        assert_eq!(
            texts(&chunks),
            ["今日は晴れです。", "明日は雨でしょう！", "本当？「はい。」", "「はい。」そうです"]
        );
        // A sentence longer than the limit with no spaces is cut at character boundaries.
        chunk(cjk, options(3, 1), char_count);

        let emoji = "I love 🦀! So much 😀😀😀. 👩‍👩‍👧 family… ok";
        assert_eq!(sentences(emoji), ["I love 🦀!", "So much 😀😀😀.", "👩‍👩‍👧 family…", "ok"]);
        for max in 1..8 {
            for overlap in 0..max {
                chunk(emoji, options(max, overlap), char_count);
                chunk(emoji, options(max, overlap), word_count);
            }
        }

        let combining = "Cafe\u{301} noir. Voila\u{300}! Z\u{335}\u{327}\u{30c}a\u{337}l\u{336}g\u{338}o\u{334}.";
        assert_eq!(sentences(combining).len(), 3);
        for max in 1..6 {
            chunk(combining, options(max, max - 1), char_count);
        }
        // Unicode whitespace (ideographic space, no-break space) separates words and is trimmed.
        let chunks = chunk("\u{3000}alpha.\u{a0}beta\u{3000}", options(1, 0), word_count);
        assert_eq!(texts(&chunks), ["alpha.", "beta"]);
    }

    #[test]
    fn crlf_line_ends() {
        let text = "First line.\r\nSecond line\r\ngoes on.\r\n\r\nNew para\r\n# Head\r\n- item\r\n";
        assert_eq!(sentences(text), ["First line.", "Second line\r\ngoes on.", "New para", "# Head", "- item"]);
        let chunks = chunk(text, options(4, 2), word_count);
        assert!(chunks.iter().all(|c| !c.text.ends_with('\r')));
        assert_eq!(chunks[0].text, "First line.");
    }

    #[test]
    fn empty_and_whitespace_only() {
        for text in ["", " ", "\n\n\n", "  \t\r\n  \r\n", "\u{3000}\u{a0}\u{2003}"] {
            assert!(chunk(text, ChunkOptions::default(), word_count).is_empty(), "{text:?}");
        }
        let chunks = chunk("  \n  word  \n", ChunkOptions::default(), word_count);
        assert_eq!(chunks, [Chunk { index: 0, start: 5, end: 9, text: "word".into(), tokens: 1 }]);
    }

    #[test]
    fn huge_input_without_sentence_ends() {
        let text: Vec<String> = (0..200_000).map(|i| format!("w{}", i % 997)).collect();
        let text = text.join(" ");
        let opts = ChunkOptions::default();
        let mut counted = 0;
        let started = std::time::Instant::now();
        let chunks = chunk_text(&text, &opts, &mut |s| {
            counted += s.len();
            word_count(s)
        })
        .unwrap();
        let elapsed = started.elapsed();
        check(&text, &opts, &chunks);
        // Word by word: 200 words a chunk, the last 32 repeated in the next.
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c.tokens == 200 && word_count(&c.text) == 200));
        assert!(chunks.windows(2).all(|p| word_count(&p[0].text[p[1].start - p[0].start..]) == 32));
        assert_eq!(chunks.len(), (200_000 - 32_usize).div_ceil(168));
        // The whole text once as a sentence, then each word once.
        assert!(counted <= 2 * text.len(), "counted {counted} bytes of a {}-byte text", text.len());
        eprintln!("{} bytes, {} chunks in {elapsed:?}", text.len(), chunks.len());
    }

    #[test]
    fn megabyte_of_prose_counts_each_sentence_once() {
        let sentence = "The quick brown fox jumps over the lazy dog, again. ";
        let text = sentence.repeat(1_000_000 / sentence.len());
        let opts = ChunkOptions { max_tokens: 128, overlap_tokens: 20 };
        let mut counted = 0;
        let started = std::time::Instant::now();
        let chunks = chunk_text(&text, &opts, &mut |s| {
            counted += s.len();
            word_count(s)
        })
        .unwrap();
        let elapsed = started.elapsed();
        check(&text, &opts, &chunks);
        assert!(counted <= text.len());
        // 12 sentences of 10 words, 2 of which carry over to the next chunk.
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c.tokens == 120));
        assert!(chunks[1..].iter().all(|c| c.text.starts_with(sentence.trim())));
        eprintln!("{} bytes, {} chunks in {elapsed:?}", text.len(), chunks.len());
    }

    #[test]
    fn single_huge_word() {
        let word = "x".repeat(100_000);
        let mut counted = 0;
        let chunks = chunk_text(&word, &ChunkOptions::default(), &mut |s| {
            counted += s.len();
            char_count(s)
        })
        .unwrap();
        check(&word, &ChunkOptions::default(), &chunks);
        assert_eq!(chunks.len(), 500);
        assert!(chunks.iter().all(|c| c.tokens == 200 && c.text.len() == 200));
        assert_eq!(texts(&chunks).concat(), word, "pieces of 200 > 32 tokens: no overlap");
        // Doubling then bisecting: a few times each piece, not the rest of the word per piece.
        assert!(counted < 20 * word.len(), "counted {counted} bytes");

        // Multi-byte characters, with words on either side.
        let text = format!("Before. {} after", "é".repeat(1000));
        let chunks = chunk(&text, options(7, 3), char_count);
        assert_eq!(chunks[0].text, "Before.");
        assert!(chunks.iter().all(|c| c.tokens <= 7));

        // A word counter sees one token in any piece of a word: the whole word fits.
        let chunks = chunk(&word, options(1, 0), word_count);
        assert_eq!(chunks.len(), 1);
    }

    #[test]
    fn long_sentence_is_split_at_whitespace() {
        let text = "Short one. a b c d e f g h i j k. Short two.";
        let chunks = chunk(text, options(4, 1), word_count);
        assert_eq!(texts(&chunks), ["Short one. a b", "b c d e", "e f g h", "h i j k.", "k. Short two."]);
    }

    #[test]
    fn option_validation() {
        assert_eq!(ChunkOptions::default(), options(200, 32));
        assert!(ChunkOptions::default().validate().is_ok());
        assert!(options(1, 0).validate().is_ok());

        let err = chunk_text("text", &options(0, 0), &mut word_count).unwrap_err();
        assert!(matches!(err, EmbedError::InvalidOption { name: "max_tokens", ref value, .. } if value == "0"));
        assert!(err.is_user_error());
        let err = options(5, 5).validate().unwrap_err();
        assert!(matches!(
            err,
            EmbedError::InvalidOption { name: "overlap_tokens", ref value, reason: "must be smaller than max_tokens" }
                if value == "5"
        ));
        assert!(options(5, 9).validate().is_err());
        assert!(chunk_text("", &options(5, 9), &mut word_count).is_err(), "validated even for empty text");

        // Serde: missing fields take the defaults, unknown ones are refused.
        let opts: ChunkOptions = serde_json::from_str(r#"{"max_tokens": 50}"#).unwrap();
        assert_eq!(opts, options(50, 32));
        assert_eq!(serde_json::from_str::<ChunkOptions>("{}").unwrap(), ChunkOptions::default());
        assert!(serde_json::from_str::<ChunkOptions>(r#"{"max_token": 50}"#).is_err());
        let json = serde_json::to_string(&options(7, 3)).unwrap();
        assert_eq!(serde_json::from_str::<ChunkOptions>(&json).unwrap(), options(7, 3));
    }

    const FRAGMENTS: &[&str] = &[
        "a",
        "bb",
        "word",
        "longerword",
        "3.14",
        "e.g.x",
        "日本語",
        "😀",
        "e\u{301}",
        "ß",
        " ",
        " ",
        " ",
        "  ",
        "\n",
        "\r\n",
        "\n\n",
        "\t",
        "\u{3000}",
        ".",
        ". ",
        "! ",
        "? ",
        "…",
        "。",
        "！",
        "\"",
        "”",
        ")",
        "# ",
        "\n# ",
        "\n- ",
        "\n1. ",
        "-",
        "#",
    ];

    fn document() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..300).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn random_documents_hold_the_invariants(
            text in document(),
            max in 1usize..40,
            overlap_share in 0.0f64..1.0,
            by_chars: bool,
        ) {
            let opts = options(max, ((max as f64) * overlap_share) as usize);
            let counter = if by_chars { char_count } else { word_count };
            let chunks = chunk(&text, opts, counter);
            if !by_chars {
                // Each unit's words are counted at least once, so the real count is within the limit too.
                prop_assert!(chunks.iter().all(|c| word_count(&c.text) <= max));
            }
            prop_assert_eq!(chunks.is_empty(), text.trim().is_empty());
        }

        #[test]
        fn arbitrary_strings_hold_the_invariants(text in any::<String>(), max in 1usize..10, by_chars: bool) {
            let counter = if by_chars { char_count } else { word_count };
            chunk(&text, options(max, max / 2), counter);
        }
    }

    #[test]
    fn from_parts_fills_defaults_and_keeps_small_sizes_valid() {
        assert_eq!(ChunkOptions::from_parts(None, None), ChunkOptions::default());
        assert_eq!(ChunkOptions::from_parts(Some(24), None), ChunkOptions { max_tokens: 24, overlap_tokens: 12 });
        assert_eq!(ChunkOptions::from_parts(Some(500), None).overlap_tokens, 32);
        assert_eq!(ChunkOptions::from_parts(None, Some(0)).overlap_tokens, 0);
        assert!(ChunkOptions::from_parts(Some(1), None).validate().is_ok());
        // Given explicitly, an overlap that does not fit is still the caller's error.
        assert!(ChunkOptions::from_parts(Some(10), Some(10)).validate().is_err());
    }
}
