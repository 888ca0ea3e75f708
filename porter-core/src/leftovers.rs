//! Temporary entries named after the process that owns them, and removal of the ones a dead
//! process left behind.
//!
//! An export stages its files beside the destination and a pull stages its blobs in the cache's
//! `.ingest/`; a `kill -9` leaves them there for good. So each such entry is named
//! `<base><pid>-<start>-<scope>-<random>`: the owner's process id, its start time (clock ticks
//! after boot, from `/proc/<pid>/stat`, so a reused pid is not taken for the owner) and a short
//! hash of the boot id and PID namespace the pid belongs to. A later process removes an entry
//! when its owner is in the same scope, was started by the same user and is no longer running.
//! Entries it cannot judge that way (written from another host or container sharing the
//! directory, by another user, by an older ds-porter, or on a system without `/proc`) are
//! removed only once nothing touched them for [`MAX_AGE`]. The entries of a running owner are
//! never removed.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// How long an entry whose owner cannot be checked stays untouched before it counts as stale.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Hex digits of the scope hash in a name.
const SCOPE_LEN: usize = 8;

/// The process that created an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    pid: u32,
    /// Start time in clock ticks after boot.
    start: u64,
    /// Hash of the boot id and PID namespace.
    scope: String,
}

impl Owner {
    /// This process; `None` where `/proc` cannot describe it.
    fn current() -> Option<&'static Owner> {
        static CURRENT: OnceLock<Option<Owner>> = OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let pid = std::process::id();
                let Ok(Some(Process { start, .. })) = process(pid) else {
                    return None;
                };
                Some(Owner {
                    pid,
                    start,
                    scope: scope()?,
                })
            })
            .as_ref()
    }

    /// The owner a name records after its base: `<pid>-<start>-<scope>-<random>`.
    fn parse(tag: &str) -> Option<Owner> {
        let mut parts = tag.splitn(4, '-');
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        let scope = parts.next()?;
        parts.next().filter(|random| !random.is_empty())?;
        if scope.len() != SCOPE_LEN || !scope.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Owner {
            pid,
            start,
            scope: scope.to_owned(),
        })
    }

    /// Whether this owner has certainly exited: its pid is gone, is a zombie, or belongs to a
    /// process started at another time. Anything `/proc` cannot answer counts as running.
    fn has_exited(&self) -> bool {
        match process(self.pid) {
            Ok(None) => true,
            Ok(Some(p)) => p.zombie || p.start != self.start,
            Err(_) => false,
        }
    }
}

/// What `/proc/<pid>/stat` says about a process.
struct Process {
    start: u64,
    zombie: bool,
}

/// The process `pid`, `Ok(None)` when there is none.
#[cfg(target_os = "linux")]
fn process(pid: u32) -> io::Result<Option<Process>> {
    let stat = match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat,
        // ESRCH: the process exited while its file was read.
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(3) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    // Field 2, the command name, is in parentheses and may hold anything; the fields after the
    // last `)` are plain: state (field 3) first, start time (field 22) twentieth.
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/<pid>/stat");
    let (_, fields) = stat.rsplit_once(')').ok_or_else(invalid)?;
    let mut fields = fields.split_whitespace();
    let state = fields.next().ok_or_else(invalid)?;
    let start = fields
        .nth(18)
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)?;
    Ok(Some(Process {
        start,
        zombie: matches!(state, "Z" | "X" | "x"),
    }))
}

#[cfg(not(target_os = "linux"))]
fn process(_pid: u32) -> io::Result<Option<Process>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no /proc on this system",
    ))
}

/// A short hash naming this boot and PID namespace: pids are only comparable within it.
#[cfg(target_os = "linux")]
fn scope() -> Option<String> {
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = fs::read_link("/proc/self/ns/pid").ok()?;
    let hash = crate::digest::Digest::of(
        format!("{}\n{}", boot.trim(), namespace.to_string_lossy()).as_bytes(),
    );
    Some(hash.hex()[..SCOPE_LEN].to_owned())
}

#[cfg(not(target_os = "linux"))]
fn scope() -> Option<String> {
    None
}

/// The user this process runs as, read from the owner of `/proc/self`.
#[cfg(target_os = "linux")]
fn same_user(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    static UID: OnceLock<Option<u32>> = OnceLock::new();
    let uid = UID.get_or_init(|| fs::metadata("/proc/self").ok().map(|m| m.uid()));
    *uid == Some(meta.uid())
}

#[cfg(not(target_os = "linux"))]
fn same_user(_meta: &fs::Metadata) -> bool {
    false
}

/// The name prefix of a new temporary entry of this process: `base` and the owner fields, or
/// `base` alone where the owner cannot be described.
pub(crate) fn prefix(base: &str) -> String {
    match Owner::current() {
        Some(o) => format!("{base}{}-{}-{}-", o.pid, o.start, o.scope),
        None => base.to_owned(),
    }
}

/// Removes the files and directories in `dir` whose names start with `base` and that are stale
/// (see the module documentation); returns how many it removed. Best effort: what cannot be read
/// or removed is logged and left, and never fails the caller.
pub(crate) fn sweep(dir: &Path, base: &str) -> usize {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            tracing::debug!(dir = %dir.display(), error = %err, "cannot look for stale temporary entries");
            return 0;
        }
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "stopped looking for stale temporary entries");
                break;
            }
        };
        let name = entry.file_name();
        let Some(tag) = name.to_str().and_then(|n| n.strip_prefix(base)) else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !is_stale(tag, &meta, now) {
            continue;
        }
        let result = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else if meta.is_file() {
            fs::remove_file(&path)
        } else {
            continue;
        };
        match result {
            Ok(()) => {
                removed += 1;
                tracing::debug!(path = %path.display(), "removed a temporary entry a dead process left behind");
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "cannot remove a stale temporary entry");
            }
        }
    }
    removed
}

/// Whether the entry named `<base><tag>` with metadata `meta` was left by a dead process.
fn is_stale(tag: &str, meta: &fs::Metadata, now: SystemTime) -> bool {
    if let (Some(owner), Some(me)) = (Owner::parse(tag), Owner::current())
        && owner.scope == me.scope
        && same_user(meta)
    {
        return owner.has_exited();
    }
    meta.modified()
        .ok()
        .and_then(|modified| now.duration_since(modified).ok())
        .is_some_and(|age| age > MAX_AGE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use std::fs::File;

    use super::*;
    use crate::cache::tests::sorted_names as names;

    const BASE: &str = ".t-";

    fn dir_entry(dir: &Path, name: &str, age: Duration) {
        let path = dir.join(name);
        fs::create_dir(&path).unwrap();
        fs::write(path.join("partial"), b"half").unwrap();
        File::open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    /// A file `dir/name` last modified `age` ago.
    pub(crate) fn file_entry(dir: &Path, name: &str, age: Duration) {
        let path = dir.join(name);
        fs::write(&path, b"half").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    #[test]
    fn owner_fields_are_parsed_strictly() {
        assert_eq!(
            Owner::parse("12-345-0a1b2c3d-XyZ123"),
            Some(Owner {
                pid: 12,
                start: 345,
                scope: "0a1b2c3d".into()
            })
        );
        for bad in [
            "",
            "abc123",
            "12-345-0a1b2c3d",
            "12-345-0a1b2c3d-",
            "12-345-0a1b2c3-XyZ123",
            "12-345-0a1b2c3g-XyZ123",
            "x-345-0a1b2c3d-XyZ123",
            "12--0a1b2c3d-XyZ123",
        ] {
            assert_eq!(Owner::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_without_an_owner_are_removed_only_when_old() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        dir_entry(dir, ".t-Ab12Cd", MAX_AGE + Duration::from_secs(60));
        dir_entry(dir, ".t-Ef34Gh", Duration::from_secs(60));
        file_entry(dir, ".t-Ij56Kl", MAX_AGE + Duration::from_secs(60));
        file_entry(dir, "result.bin", MAX_AGE + Duration::from_secs(60));
        dir_entry(dir, ".other-Ab12Cd", MAX_AGE + Duration::from_secs(60));
        assert_eq!(sweep(dir, BASE), 2);
        assert_eq!(names(dir), [".other-Ab12Cd", ".t-Ef34Gh", "result.bin"]);
        assert_eq!(sweep(&dir.join("missing"), BASE), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn entries_of_exited_owners_go_and_entries_of_running_owners_stay() {
        let me = Owner::current().expect("/proc describes this process");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let fresh = Duration::ZERO;
        let ours = prefix(BASE);
        assert_eq!(ours, format!(".t-{}-{}-{}-", me.pid, me.start, me.scope));
        // Running: this process, however old its entries are.
        dir_entry(dir, &format!("{ours}live01"), MAX_AGE * 2);
        file_entry(dir, &format!("{ours}live02"), fresh);
        // Exited: a pid no kernel hands out, and this pid with another start time (reused).
        let gone = format!(".t-{}-{}-{}-", u32::MAX, me.start, me.scope);
        dir_entry(dir, &format!("{gone}dead01"), fresh);
        file_entry(dir, &format!("{gone}dead02"), fresh);
        let reused = format!(".t-{}-{}-{}-", me.pid, me.start + 1, me.scope);
        dir_entry(dir, &format!("{reused}dead03"), fresh);
        // Another boot, host or container: judged by age.
        let foreign = format!(".t-{}-{}-ffffffff-", u32::MAX, me.start);
        let foreign = if me.scope == "ffffffff" {
            foreign.replace("ffffffff", "00000000")
        } else {
            foreign
        };
        dir_entry(dir, &format!("{foreign}new001"), fresh);
        dir_entry(dir, &format!("{foreign}old001"), MAX_AGE * 2);

        assert_eq!(sweep(dir, BASE), 4);
        let left = names(dir);
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left.iter().any(|n| n.ends_with("live01")), "{left:?}");
        assert!(left.iter().any(|n| n.ends_with("live02")), "{left:?}");
        assert!(left.iter().any(|n| n.ends_with("new001")), "{left:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_symlink_is_never_followed_or_removed() {
        let me = Owner::current().expect("/proc describes this process");
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("precious");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("data"), b"keep").unwrap();
        let dir = tmp.path().join("d");
        fs::create_dir(&dir).unwrap();
        let gone = format!(".t-{}-{}-{}-link01", u32::MAX, me.start, me.scope);
        std::os::unix::fs::symlink(&target, dir.join(gone)).unwrap();
        assert_eq!(sweep(&dir, BASE), 0);
        assert_eq!(names(&dir).len(), 1);
        assert!(target.join("data").is_file());
    }
}
