//! `quiver inspect DIR`: an offline, read-only check of a data directory.
//!
//! Layout checked (`docs/format.md`): `DIR/collections/<name>/` holds `config.json`, `MANIFEST-<generation>`
//! files, `seg-<id>.qseg` segments and `wal-<seq>.log` files; `DIR/snapshots/<name>/*.qsnap` holds snapshot
//! archives. Every checksum is verified: each manifest generation, every block of every live segment
//! (`Segment::verify`, which also decompresses), every WAL record (`wal::scan`, which never truncates) and the
//! operation inside it, and every snapshot archive (`snapshot::verify`). Nothing is written: files are read or
//! mapped read-only, and the data directory's `LOCK` is only probed.
//!
//! Findings are *errors* (the engine would refuse to open the collection, or bytes on disk are damaged) or
//! *warnings* (something the next open repairs or removes — a torn WAL tail, a leftover temporary file — or
//! something the engine ignores). Exit status: 0 without errors, 1 with any, 2 when `DIR` is not a data
//! directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use quiver_engine::CollectionConfig;
use quiver_engine::ops::Operation;
use quiver_storage::dir::TEMP_SUFFIX;
use quiver_storage::{Directory, FsDirectory, Segment, manifest, segment, snapshot, wal};
use serde::Serialize;

use crate::usage;

/// Flags of `quiver inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The data directory (the one `quiver serve --data-dir` uses).
    pub dir: PathBuf,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Damage, or something that makes the engine refuse to open the collection.
    Error,
    /// Repaired or ignored by the next open; data is intact.
    Warning,
}

/// One finding, with the file and byte offset when there is one.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file (or directory) concerned.
    pub file: Option<PathBuf>,
    /// Byte offset in `file` of the first bad byte (or of the structure that failed its check).
    pub offset: Option<u64>,
    /// What was found.
    pub message: String,
}

impl Problem {
    fn error(file: Option<&Path>, offset: Option<u64>, message: impl Into<String>) -> Problem {
        Problem { severity: Severity::Error, file: file.map(Path::to_owned), offset, message: message.into() }
    }

    fn warning(file: Option<&Path>, offset: Option<u64>, message: impl Into<String>) -> Problem {
        Problem { severity: Severity::Warning, file: file.map(Path::to_owned), offset, message: message.into() }
    }

    fn from_storage(e: &quiver_storage::Error, fallback: &Path) -> Problem {
        use quiver_storage::Error as E;
        match e {
            E::Corrupt { file, offset, detail } => Problem::error(Some(file), Some(*offset), detail.clone()),
            E::Io { file, cause } => Problem::error(Some(file), None, format!("cannot read: {cause}")),
            E::UnsupportedVersion { file, .. } | E::NotFound { file } => {
                Problem::error(Some(file), None, e.to_string())
            }
            other => Problem::error(Some(fallback), None, other.to_string()),
        }
    }
}

/// The manifest in force.
#[derive(Debug, Serialize)]
pub struct ManifestReport {
    /// The newest generation's file.
    pub file: PathBuf,
    /// Its generation.
    pub generation: u64,
    /// Highest WAL sequence number whose effects are in the live segments.
    pub wal_checkpoint: u64,
    /// Live segment ids.
    pub segments: Vec<u64>,
}

/// One live segment.
#[derive(Debug, Serialize)]
pub struct SegmentReport {
    /// The file.
    pub file: PathBuf,
    /// Segment id.
    pub id: u64,
    /// Blocks in it.
    pub blocks: usize,
    /// File length.
    pub bytes: u64,
    /// Every block's checksum matched (and compressed blocks decoded).
    pub verified: bool,
    /// The engine's segment layout the file follows (`quiver_engine::segment::SEGMENT_LAYOUT` is this build's).
    pub layout: u8,
}

/// The WAL of one collection.
#[derive(Debug, Default, Serialize)]
pub struct WalReport {
    /// WAL files.
    pub files: usize,
    /// Valid records.
    pub records: u64,
    /// Bytes in all WAL files.
    pub bytes: u64,
    /// Lowest and highest sequence numbers found.
    pub first_seq: Option<u64>,
    /// Highest sequence number found.
    pub last_seq: Option<u64>,
}

/// One snapshot archive.
#[derive(Debug, Serialize)]
pub struct SnapshotReport {
    /// The archive.
    pub file: PathBuf,
    /// Files inside.
    pub entries: usize,
    /// Archive length.
    pub bytes: u64,
    /// Every checksum matched.
    pub verified: bool,
}

/// Everything found about one collection.
#[derive(Debug, Serialize)]
pub struct CollectionReport {
    /// The collection's name.
    pub name: String,
    /// `DIR/collections/<name>` (absent when only snapshots of the name exist).
    pub path: Option<PathBuf>,
    /// No errors.
    pub ok: bool,
    /// Vector dimension from `config.json`.
    pub dimension: Option<usize>,
    /// Distance metric from `config.json`.
    pub metric: Option<String>,
    /// Files in the collection directory.
    pub files: usize,
    /// Their total length.
    pub bytes: u64,
    /// The manifest in force (`None` for a collection that never committed one).
    pub manifest: Option<ManifestReport>,
    /// Live segments.
    pub segments: Vec<SegmentReport>,
    /// The WAL.
    pub wal: WalReport,
    /// Snapshot archives under `DIR/snapshots/<name>/`.
    pub snapshots: Vec<SnapshotReport>,
    /// Errors and warnings, in the order found.
    pub problems: Vec<Problem>,
}

impl CollectionReport {
    fn new(name: &str, path: Option<PathBuf>) -> CollectionReport {
        CollectionReport {
            name: name.to_owned(),
            path,
            ok: true,
            dimension: None,
            metric: None,
            files: 0,
            bytes: 0,
            manifest: None,
            segments: Vec::new(),
            wal: WalReport::default(),
            snapshots: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The data directory.
    pub data_dir: PathBuf,
    /// No errors anywhere.
    pub ok: bool,
    /// Errors found.
    pub errors: usize,
    /// Warnings found.
    pub warnings: usize,
    /// Findings about the directory itself (not one collection).
    pub problems: Vec<Problem>,
    /// Per collection, by name.
    pub collections: Vec<CollectionReport>,
    /// The format versions this build writes (and the newest it reads), by file kind.
    pub formats: Vec<(&'static str, u32)>,
}

/// The format versions this build writes, by file kind.
pub fn formats() -> Vec<(&'static str, u32)> {
    vec![
        ("wal", u32::from(quiver_storage::wal::record::FILE_VERSION)),
        ("manifest", u32::from(quiver_storage::manifest::VERSION)),
        ("segment container", u32::from(quiver_storage::segment::VERSION)),
        ("segment layout", u32::from(quiver_engine::segment::SEGMENT_LAYOUT)),
        ("snapshot", u32::from(quiver_storage::snapshot::VERSION)),
    ]
}

/// Runs `quiver inspect`.
pub fn run(args: InspectArgs) -> Result<ExitCode> {
    let report = inspect(&args.dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Checks the data directory `dir`, reading only. Fails (a [`crate::UsageError`]) only when `dir` is not a data
/// directory; everything found inside is in the report.
pub fn inspect(dir: &Path) -> Result<Report> {
    if !dir.is_dir() {
        return usage(format!("{} is not a directory", dir.display()));
    }
    let cdir = dir.join("collections");
    if !cdir.is_dir() {
        return usage(format!("{} is not a QuiverDB data directory: it has no collections/ directory", dir.display()));
    }
    let mut top = Vec::new();
    probe_lock(dir, &mut top);
    let mut collections: Vec<CollectionReport> = Vec::new();
    for (name, path, is_dir) in entries(&cdir, &mut top) {
        if !is_dir {
            top.push(Problem::warning(Some(&path), None, "unexpected file in collections/ (ignored by the engine)"));
        } else if name.starts_with(".tmp-") || name.starts_with(".dropped-") {
            top.push(Problem::warning(
                Some(&path),
                None,
                "left over by an interrupted create, drop or restore; the next open removes it",
            ));
        } else if name.starts_with(".replaced-") {
            top.push(Problem::warning(
                Some(&path),
                None,
                "a collection being replaced by an interrupted restore; the next open puts it back (if the restored \
                 one is missing) or removes it",
            ));
        } else if quiver_engine::database::validate_name(&name).is_err() {
            top.push(Problem::warning(Some(&path), None, "not a valid collection name (ignored by the engine)"));
        } else {
            collections.push(check_collection(&name, &path));
        }
    }
    let sdir = dir.join("snapshots");
    if sdir.is_dir() {
        for (name, path, is_dir) in entries(&sdir, &mut top) {
            if !is_dir {
                top.push(Problem::warning(Some(&path), None, "unexpected file in snapshots/"));
                continue;
            }
            let idx = match collections.iter().position(|c| c.name == name) {
                Some(i) => i,
                None => {
                    collections.push(CollectionReport::new(&name, None));
                    collections.len() - 1
                }
            };
            check_snapshots(&path, &mut collections[idx]);
        }
    }
    collections.sort_by(|a, b| a.name.cmp(&b.name));
    for c in &mut collections {
        c.ok = !c.problems.iter().any(|p| p.severity == Severity::Error);
    }
    let all = || top.iter().chain(collections.iter().flat_map(|c| c.problems.iter()));
    let errors = all().filter(|p| p.severity == Severity::Error).count();
    let warnings = all().filter(|p| p.severity == Severity::Warning).count();
    Ok(Report {
        data_dir: dir.to_owned(),
        ok: errors == 0,
        errors,
        warnings,
        problems: top,
        collections,
        formats: formats(),
    })
}

/// The entries of `dir` as (name, path, is a directory), sorted; unreadable entries become errors.
fn entries(dir: &Path, problems: &mut Vec<Problem>) -> Vec<(String, PathBuf, bool)> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            problems.push(Problem::error(Some(dir), None, format!("cannot list: {e}")));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        match entry.and_then(|e| Ok((e.file_name(), e.path(), e.file_type()?.is_dir()))) {
            Ok((name, path, is_dir)) => match name.into_string() {
                Ok(name) => out.push((name, path, is_dir)),
                Err(_) => problems.push(Problem::warning(Some(&path), None, "name is not UTF-8 (ignored)")),
            },
            Err(e) => problems.push(Problem::error(Some(dir), None, format!("cannot list: {e}"))),
        }
    }
    out.sort();
    out
}

/// Warns when another process holds the data directory's lock (a running server): files may change while they
/// are read. Takes a shared lock for an instant only, and never creates `LOCK`.
fn probe_lock(dir: &Path, problems: &mut Vec<Problem>) {
    let path = dir.join("LOCK");
    let Ok(file) = std::fs::File::open(&path) else { return };
    if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock_shared() {
        problems.push(Problem::warning(
            Some(&path),
            None,
            "the database is open in another process (a running server?): files may change while they are \
             checked; stop it for an exact check",
        ));
    }
    // Dropping the file releases the shared lock if it was taken.
}

fn check_collection(name: &str, path: &Path) -> CollectionReport {
    let mut r = CollectionReport::new(name, Some(path.to_owned()));
    let dir = match FsDirectory::open_existing(path) {
        Ok(d) => d,
        Err(e) => {
            r.problems.push(Problem::from_storage(&e, path));
            return r;
        }
    };
    let files = match dir.list() {
        Ok(f) => f,
        Err(e) => {
            r.problems.push(Problem::from_storage(&e, path));
            return r;
        }
    };
    r.files = files.len();
    for f in &files {
        r.bytes += dir.file_len(f).unwrap_or(0);
    }
    for f in &files {
        let known = f == quiver_engine::collection::CONFIG_FILE
            || manifest::parse_file_name(f).is_some()
            || segment::parse_file_name(f).is_some()
            || wal::parse_file_name(f).is_some();
        if f.ends_with(TEMP_SUFFIX) {
            r.problems.push(Problem::warning(
                Some(&dir.file_path(f)),
                None,
                "temporary file of an interrupted write; the next open removes it",
            ));
        } else if !known {
            r.problems.push(Problem::warning(Some(&dir.file_path(f)), None, "unexpected file (ignored by the engine)"));
        }
    }
    check_config(&dir, &mut r);
    let live = check_manifests(&dir, &files, &mut r);
    check_segments(&dir, &files, &live, &mut r);
    check_wal(&dir, &mut r);
    r
}

fn check_config(dir: &FsDirectory, r: &mut CollectionReport) {
    let name = quiver_engine::collection::CONFIG_FILE;
    let path = dir.file_path(name);
    let bytes = match dir.read(name) {
        Ok(b) => b,
        Err(quiver_storage::Error::NotFound { .. }) => {
            r.problems.push(Problem::error(Some(&path), None, "missing: the collection cannot be opened"));
            return;
        }
        Err(e) => {
            r.problems.push(Problem::from_storage(&e, &path));
            return;
        }
    };
    match serde_json::from_slice::<CollectionConfig>(&bytes) {
        Ok(c) => {
            if let Err(e) = c.validate() {
                r.problems.push(Problem::error(Some(&path), None, format!("configuration is not valid: {e}")));
            }
            r.dimension = Some(c.dimension);
            r.metric = Some(format!("{:?}", c.metric).to_lowercase());
        }
        Err(e) => r.problems.push(Problem::error(
            Some(&path),
            Some(0),
            format!("configuration does not parse (line {}, column {}): {e}", e.line(), e.column()),
        )),
    }
}

/// Checks every manifest generation; returns the live segment ids of the newest.
fn check_manifests(dir: &FsDirectory, files: &[String], r: &mut CollectionReport) -> Vec<u64> {
    let mut gens: Vec<(u64, &String)> =
        files.iter().filter_map(|f| manifest::parse_file_name(f).map(|g| (g, f))).collect();
    gens.sort();
    let newest = gens.last().map(|(g, _)| *g);
    let mut live = Vec::new();
    for (generation, name) in gens.iter().rev() {
        let path = dir.file_path(name);
        let is_newest = Some(*generation) == newest;
        let which = if is_newest { "" } else { " (the previous generation, kept as a spare; not read on open)" };
        let decoded = dir.read(name).and_then(|b| manifest::decode(&path, &b));
        match decoded {
            Ok((m, stored)) => {
                if stored != *generation {
                    r.problems.push(Problem::error(
                        Some(&path),
                        Some(8),
                        format!("holds generation {stored}, the file name says {generation}{which}"),
                    ));
                }
                if is_newest {
                    live = m.segments.clone();
                    r.manifest = Some(ManifestReport {
                        file: path,
                        generation: *generation,
                        wal_checkpoint: m.wal_checkpoint,
                        segments: m.segments,
                    });
                }
            }
            Err(e) => {
                let mut p = Problem::from_storage(&e, &path);
                p.message.push_str(which);
                if is_newest {
                    p.message.push_str("; the engine refuses to open the collection");
                }
                r.problems.push(p);
            }
        }
    }
    live
}

fn check_segments(dir: &FsDirectory, files: &[String], live: &[u64], r: &mut CollectionReport) {
    for &id in live {
        let name = segment::file_name(id);
        let path = dir.file_path(&name);
        if !files.contains(&name) {
            r.problems.push(Problem::error(Some(&path), None, "listed in the manifest but missing"));
            continue;
        }
        let bytes = dir.file_len(&name).unwrap_or(0);
        match Segment::open(dir, id) {
            Ok(seg) => {
                let verified = seg.verify();
                if let Err(e) = &verified {
                    r.problems.push(Problem::from_storage(e, &path));
                }
                r.segments.push(SegmentReport {
                    file: path,
                    id,
                    blocks: seg.blocks().len(),
                    bytes,
                    verified: verified.is_ok(),
                    layout: quiver_engine::segment::layout_of(seg.blocks()),
                });
            }
            Err(e) => {
                r.problems.push(Problem::from_storage(&e, &path));
                r.segments.push(SegmentReport { file: path, id, blocks: 0, bytes, verified: false, layout: 0 });
            }
        }
    }
    for f in files {
        if let Some(id) = segment::parse_file_name(f)
            && !live.contains(&id)
        {
            r.problems.push(Problem::warning(
                Some(&dir.file_path(f)),
                None,
                "segment not in the manifest (left by an interrupted optimizer job); the next open removes it",
            ));
        }
    }
}

fn check_wal(dir: &FsDirectory, r: &mut CollectionReport) {
    let mut op_errors = Vec::new();
    let mut first_seq = None;
    let scanned = wal::scan(dir, |rec| {
        first_seq.get_or_insert(rec.seq);
        if let Err(e) = Operation::decode(rec.payload, rec.file, rec.offset) {
            // The record's checksum matched, so these bytes are what was written: an operation this build cannot
            // read (or a bug). Name the record, not the offset inside it.
            let detail = match &e {
                quiver_engine::Error::Corrupt { detail, .. } => detail.clone(),
                other => other.to_string(),
            };
            op_errors.push(Problem::error(
                Some(rec.file),
                Some(rec.offset),
                format!("record {} (checksum fine) does not hold a readable operation: {detail}", rec.seq),
            ));
        }
    });
    let report = match scanned {
        Ok(s) => s,
        Err(e) => {
            r.problems.push(Problem::from_storage(&e, dir.root()));
            return;
        }
    };
    r.wal = WalReport {
        files: report.files.len(),
        records: report.records(),
        bytes: report.bytes(),
        first_seq,
        last_seq: (report.records() > 0).then(|| report.last_seq()),
    };
    for f in &report.files {
        if let Some(e) = &f.error {
            let mut p = Problem::from_storage(e, &f.file);
            if f.records > 0 {
                p.message.push_str(&format!(" ({} valid records before it)", f.records));
            }
            r.problems.push(p);
        }
        if let Some(t) = &f.torn_tail {
            r.problems.push(Problem::warning(
                Some(&t.file),
                Some(t.offset),
                format!(
                    "torn tail of {} bytes ({}): never acknowledged; the next open truncates it",
                    t.bytes_dropped, t.detail
                ),
            ));
        }
        if f.header_torn {
            r.problems.push(Problem::warning(
                Some(&f.file),
                Some(0),
                "torn file header with nothing behind it (a crash while starting the file); the next open removes it",
            ));
        }
    }
    r.problems.extend(op_errors);
}

fn check_snapshots(path: &Path, r: &mut CollectionReport) {
    let dir = match FsDirectory::open_existing(path).and_then(|d| d.list().map(|l| (d, l))) {
        Ok(x) => x,
        Err(e) => {
            r.problems.push(Problem::from_storage(&e, path));
            return;
        }
    };
    let (dir, files) = dir;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let msg = if e.file_name().to_string_lossy().starts_with(".upload-") {
                    "an upload being verified, or left by an interrupted one; the next open removes it"
                } else {
                    "unexpected directory (ignored)"
                };
                r.problems.push(Problem::warning(Some(&e.path()), None, msg));
            }
        }
    }
    for f in &files {
        let fpath = dir.file_path(f);
        if f.ends_with(TEMP_SUFFIX) {
            r.problems.push(Problem::warning(Some(&fpath), None, "temporary file of an interrupted snapshot"));
            continue;
        }
        if !f.ends_with(".qsnap") {
            r.problems.push(Problem::warning(Some(&fpath), None, "not a snapshot archive (ignored)"));
            continue;
        }
        let bytes = dir.file_len(f).unwrap_or(0);
        match snapshot::verify(&dir, f) {
            Ok(entries) => {
                r.snapshots.push(SnapshotReport { file: fpath, entries: entries.len(), bytes, verified: true })
            }
            Err(e @ quiver_storage::Error::InvalidName { .. }) => {
                r.problems.push(Problem::warning(Some(&fpath), None, format!("not checked: {e}")));
            }
            Err(e) => {
                r.problems.push(Problem::from_storage(&e, &fpath));
                r.snapshots.push(SnapshotReport { file: fpath, entries: 0, bytes, verified: false });
            }
        }
    }
}

/// Bytes as a short human figure.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

fn render_problem(p: &Problem) -> String {
    let sev = match p.severity {
        Severity::Error => "ERROR",
        Severity::Warning => "warning",
    };
    match (&p.file, p.offset) {
        (Some(f), Some(o)) => format!("{sev}: {} at offset {o}: {}", f.display(), p.message),
        (Some(f), None) => format!("{sev}: {}: {}", f.display(), p.message),
        (None, _) => format!("{sev}: {}", p.message),
    }
}

/// The text form of the report.
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "data directory {}: {}",
        r.data_dir.display(),
        plural(r.collections.len() as u64, "collection", "collections")
    );
    let formats: Vec<String> = r.formats.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "  this build writes: {}", formats.join(", "));
    for p in &r.problems {
        let _ = writeln!(s, "  {}", render_problem(p));
    }
    for c in &r.collections {
        let status = if c.ok { "OK" } else { "CORRUPT" };
        let _ = writeln!(s, "collection {}: {status}", c.name);
        match (&c.path, c.dimension) {
            (None, _) => {
                let _ = writeln!(s, "  (no collections/{} directory: snapshots only)", c.name);
            }
            (Some(_), Some(d)) => {
                let metric = c.metric.as_deref().unwrap_or("?");
                let _ = writeln!(s, "  config     dimension {d}, {metric}");
            }
            (Some(_), None) => {}
        }
        if c.path.is_some() {
            let _ = writeln!(s, "  files      {}, {}", c.files, human_bytes(c.bytes));
            match &c.manifest {
                Some(m) => {
                    let _ = writeln!(
                        s,
                        "  manifest   generation {}, WAL checkpoint {}, {}",
                        m.generation,
                        m.wal_checkpoint,
                        plural(m.segments.len() as u64, "live segment", "live segments")
                    );
                }
                None => {
                    let _ = writeln!(s, "  manifest   none yet (nothing sealed)");
                }
            }
            if !c.segments.is_empty() {
                let ok = c.segments.iter().filter(|x| x.verified).count();
                let blocks: usize = c.segments.iter().map(|x| x.blocks).sum();
                let bytes: u64 = c.segments.iter().map(|x| x.bytes).sum();
                let current = quiver_engine::segment::SEGMENT_LAYOUT;
                let older = c.segments.iter().filter(|x| x.layout != 0 && x.layout < current).count();
                let layout = match older {
                    0 => format!("layout {current}"),
                    n => format!("layout {current}, {n} in an older layout (read as is, rewritten by the next merge)"),
                };
                let _ = writeln!(
                    s,
                    "  segments   {}, {blocks} blocks, {}: {ok} verified; {layout}",
                    plural(c.segments.len() as u64, "file", "files"),
                    human_bytes(bytes)
                );
            }
            let w = &c.wal;
            let range = match (w.first_seq, w.last_seq) {
                (Some(a), Some(b)) => format!(" (sequence {a}..={b})"),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  wal        {}, {}{range}, {}",
                plural(w.files as u64, "file", "files"),
                plural(w.records, "record", "records"),
                human_bytes(w.bytes)
            );
        }
        if !c.snapshots.is_empty() {
            let ok = c.snapshots.iter().filter(|x| x.verified).count();
            let bytes: u64 = c.snapshots.iter().map(|x| x.bytes).sum();
            let _ = writeln!(
                s,
                "  snapshots  {}, {}: {ok} verified",
                plural(c.snapshots.len() as u64, "archive", "archives"),
                human_bytes(bytes)
            );
        }
        for p in &c.problems {
            let _ = writeln!(s, "  {}", render_problem(p));
        }
    }
    let verdict = if r.ok { "OK" } else { "CORRUPTION FOUND" };
    let _ = writeln!(
        s,
        "{verdict}: {}, {}",
        plural(r.errors as u64, "error", "errors"),
        plural(r.warnings as u64, "warning", "warnings")
    );
    s
}
