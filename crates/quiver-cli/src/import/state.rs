//! The resume state of `quiver import`: a small JSON file recording how many records of an input the target has
//! acknowledged, and a fingerprint of the import it belongs to.
//!
//! The fingerprint is the input (canonical path, size, modification time), the target (server URL or data
//! directory), the collection, the format and the first id of numbered inputs. `--resume` continues only when
//! the fingerprint matches exactly; when it does not, it refuses with a message naming what differs, rather than
//! silently starting over or skipping records of a different input. Written atomically (temporary file + rename)
//! after every acknowledged batch; not fsynced, since losing the latest update only re-sends batches whose upserts
//! are idempotent.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::input::Format;

/// Version of the state file layout.
pub const STATE_VERSION: u32 = 1;

/// What identifies one import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// The input file, canonical.
    pub input: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
    /// `http://…` for a server, `data:<dir>` for a local data directory.
    pub target: String,
    /// The collection.
    pub collection: String,
    /// The input format.
    pub format: Format,
    /// First id of numbered inputs (`--ids-from`).
    pub ids_from: Option<u64>,
}

impl Fingerprint {
    /// The fingerprint of importing `input` (which must exist) as described.
    pub fn of(input: &Path, target: String, collection: &str, format: Format, ids_from: Option<u64>) -> Result<Self> {
        let input = std::fs::canonicalize(input).with_context(|| format!("reading {}", input.display()))?;
        let meta = std::fs::metadata(&input).with_context(|| format!("reading {}", input.display()))?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Ok(Fingerprint {
            input,
            size: meta.len(),
            mtime_ns,
            target,
            collection: collection.to_owned(),
            format,
            ids_from,
        })
    }

    /// What differs from `other`, in words (empty when nothing does).
    pub fn differences(&self, other: &Fingerprint) -> Vec<String> {
        let mut d = Vec::new();
        if self.input != other.input {
            d.push(format!("input {} vs {}", other.input.display(), self.input.display()));
        }
        if self.size != other.size {
            d.push(format!("input size {} vs {} bytes now", other.size, self.size));
        }
        if self.mtime_ns != other.mtime_ns {
            d.push("input modification time changed".into());
        }
        if self.target != other.target {
            d.push(format!("target {} vs {}", other.target, self.target));
        }
        if self.collection != other.collection {
            d.push(format!("collection {} vs {}", other.collection, self.collection));
        }
        if self.format != other.format {
            d.push(format!("format {} vs {}", other.format.name(), self.format.name()));
        }
        if self.ids_from != other.ids_from {
            d.push(format!("--ids-from {:?} vs {:?}", other.ids_from, self.ids_from));
        }
        d
    }
}

/// The content of a state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The import it belongs to.
    pub fingerprint: Fingerprint,
    /// Records (from the start of the input) the target has acknowledged.
    pub acknowledged: u64,
    /// The whole input was imported.
    pub complete: bool,
}

/// The default state file of `input`: `<input>.quiver-import.json`.
pub fn default_path(input: &Path) -> PathBuf {
    let mut s = input.as_os_str().to_owned();
    s.push(".quiver-import.json");
    PathBuf::from(s)
}

/// Reads a state file; `None` when it does not exist.
pub fn load(path: &Path) -> Result<Option<State>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading the state file {}", path.display())),
    };
    let state: State = serde_json::from_slice(&bytes).with_context(|| {
        format!("the state file {} is not a quiver import state; delete it to start over", path.display())
    })?;
    if state.version != STATE_VERSION {
        bail!(
            "the state file {} has version {}, this build reads {STATE_VERSION}; delete it to start over",
            path.display(),
            state.version
        );
    }
    Ok(Some(state))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Checks that the state file can be written (creating and removing `<path>.tmp`), so that an import whose
/// progress could not be recorded stops before it sends anything, without leaving a state file behind.
pub fn check_writable(path: &Path) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, b"").with_context(|| {
        format!("cannot write the state file {} (choose another place with --state)", path.display())
    })?;
    std::fs::remove_file(&tmp).with_context(|| format!("removing {}", tmp.display()))
}

/// Writes a state file atomically (`<path>.tmp`, then rename).
pub fn save(path: &Path, state: &State) -> Result<()> {
    let tmp = tmp_path(path);
    let mut bytes = serde_json::to_vec_pretty(state)?;
    bytes.push(b'\n');
    std::fs::write(&tmp, bytes).with_context(|| format!("writing the state file {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing the state file {}", path.display()))
}

/// Where to start, given what the state file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// From the first record.
    Fresh {
        /// Why, for the user (`None` when there is nothing to say).
        note: Option<String>,
    },
    /// After this many records, already acknowledged.
    Resume(u64),
    /// Nothing to do: the state file says this exact import completed.
    Done(u64),
}

/// Decides where an import starts. With `resume`, a matching state continues it, a different one is an error
/// (naming what differs), and no state starts fresh; without `resume`, it always starts fresh (noting any
/// progress that is being discarded).
pub fn decide(path: &Path, existing: Option<&State>, now: &Fingerprint, resume: bool) -> Result<Start> {
    let Some(s) = existing else {
        let note = resume.then(|| format!("no state file at {}: starting from the first record", path.display()));
        return Ok(Start::Fresh { note });
    };
    let diffs = now.differences(&s.fingerprint);
    if !resume {
        let note = (diffs.is_empty() && !s.complete && s.acknowledged > 0).then(|| {
            format!(
                "{} says {} records were already imported; starting over (pass --resume to continue instead)",
                path.display(),
                s.acknowledged
            )
        });
        return Ok(Start::Fresh { note });
    }
    if !diffs.is_empty() {
        bail!(
            "cannot resume: the state file {} belongs to a different import ({}); delete it (or drop --resume) to \
             start over, or pass --state to keep it",
            path.display(),
            diffs.join("; ")
        );
    }
    Ok(if s.complete { Start::Done(s.acknowledged) } else { Start::Resume(s.acknowledged) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fp(size: u64) -> Fingerprint {
        Fingerprint {
            input: "/data/in.fvecs".into(),
            size,
            mtime_ns: 5,
            target: "http://127.0.0.1:6333".into(),
            collection: "c".into(),
            format: Format::Fvecs,
            ids_from: None,
        }
    }

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        assert_eq!(load(&path).unwrap(), None);
        check_writable(&path).unwrap();
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the check leaves nothing");
        let e = format!("{:#}", check_writable(&dir.path().join("missing/s.json")).unwrap_err());
        assert!(e.contains("--state"), "{e}");
        let s = State { version: STATE_VERSION, fingerprint: fp(10), acknowledged: 512, complete: false };
        save(&path, &s).unwrap();
        assert_eq!(load(&path).unwrap(), Some(s));
        assert!(!dir.path().join("s.json.tmp").exists());
        std::fs::write(&path, b"{\"nonsense\": 1}").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("not a quiver import state") && e.contains("delete it"), "{e}");
    }

    #[test]
    fn resume_decisions() {
        let p = Path::new("s.json");
        let s = State { version: STATE_VERSION, fingerprint: fp(10), acknowledged: 512, complete: false };
        // Matching fingerprint: resume after the acknowledged records, or nothing to do when complete.
        assert_eq!(decide(p, Some(&s), &fp(10), true).unwrap(), Start::Resume(512));
        let done = State { complete: true, ..s.clone() };
        assert_eq!(decide(p, Some(&done), &fp(10), true).unwrap(), Start::Done(512));
        // A changed input: a clear error, not a silent restart.
        let e = format!("{:#}", decide(p, Some(&s), &fp(11), true).unwrap_err());
        assert!(e.contains("different import") && e.contains("input size 10 vs 11"), "{e}");
        let mut other = fp(10);
        other.collection = "d".into();
        let e = format!("{:#}", decide(p, Some(&s), &other, true).unwrap_err());
        assert!(e.contains("collection c vs d"), "{e}");
        // No state: start fresh (with a note under --resume).
        assert!(matches!(decide(p, None, &fp(10), true).unwrap(), Start::Fresh { note: Some(_) }));
        assert_eq!(decide(p, None, &fp(10), false).unwrap(), Start::Fresh { note: None });
        // Without --resume: always fresh, saying that progress is discarded.
        assert!(
            matches!(decide(p, Some(&s), &fp(10), false).unwrap(), Start::Fresh { note: Some(n) } if n.contains("512"))
        );
        assert_eq!(decide(p, Some(&s), &fp(11), false).unwrap(), Start::Fresh { note: None });
    }
}
