//! The download cache: a content-addressed folder, `sha256/ab/abcdef…` (named by the sha256
//! of the bytes), outside any repository.
//!
//! Every file appears whole or not at all: it is written to `tmp/` first and renamed into
//! place once complete and verified, so an interrupted run (Ctrl-C, a crash) leaves at most a
//! stray temporary file, which the next run removes. npm publishes sha512 (or, for old
//! packages, sha1) integrity rather than sha256, so `sha512/` and `sha1/` hold small alias
//! files mapping a verified digest to the sha256 the artifact is stored under, letting a later
//! run find an npm tarball without downloading it. `locks/` holds empty files that processes
//! lock so that only one of them downloads a given artifact at a time.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::is_sha256_hex;

/// Temporary files older than this are left-overs of a dead run.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The content-addressed download cache.
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Opens (creating if needed) the cache at `root`, and removes temporary files left by
    /// runs that are no longer alive.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Cache> {
        let root = root.into();
        fs::create_dir_all(root.join("sha256"))?;
        fs::create_dir_all(root.join("sha512"))?;
        fs::create_dir_all(root.join("tmp"))?;
        let cache = Cache { root };
        cache.remove_stale_temporaries();
        Ok(cache)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file with this sha256 lives (whether or not it is there). Panics on a string
    /// that is not a sha256, so that no manifest can make a path out of arbitrary text;
    /// callers check with [`is_sha256_hex`] first.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        assert!(is_sha256_hex(sha256), "not a sha256: {sha256:?}");
        self.root.join("sha256").join(&sha256[..2]).join(sha256)
    }

    /// The size of the cached file with this sha256, if it is there.
    pub fn size_of(&self, sha256: &str) -> Option<u64> {
        if !is_sha256_hex(sha256) {
            return None;
        }
        fs::metadata(self.path_of(sha256))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Whether the file with this sha256 is cached.
    pub fn contains(&self, sha256: &str) -> bool {
        self.size_of(sha256).is_some()
    }

    /// Reads the cached file with this sha256 (as stored: callers that must not trust the
    /// disk re-hash it, as [`super::Fetcher::read`] does).
    pub fn read(&self, sha256: &str) -> io::Result<Vec<u8>> {
        if !is_sha256_hex(sha256) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a sha256: {sha256:?}"),
            ));
        }
        fs::read(self.path_of(sha256))
    }

    /// A new temporary file in the cache, deleted when dropped unless persisted.
    pub fn temp(&self) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = self
            .root
            .join("tmp")
            .join(format!("{}-{nanos}-{n}.part", std::process::id()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    /// Moves a complete temporary file into place under its sha256. The rename is atomic, so
    /// a reader (or a second process persisting the same bytes) sees the whole file or none.
    pub fn persist(&self, mut temp: TempFile, sha256: &str) -> io::Result<PathBuf> {
        let dest = self.path_of(sha256);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        if let Some(mut file) = temp.file.take() {
            file.flush()?;
        }
        fs::rename(&temp.path, &dest)?;
        temp.path = PathBuf::new();
        Ok(dest)
    }

    /// The sha256 an artifact with this sha512 (hex) is cached under, if it is cached.
    pub fn sha256_for_sha512(&self, sha512: &str) -> Option<String> {
        self.alias_target("sha512", sha512, 128)
    }

    /// Records that the artifact with this sha512 (hex) is cached under `sha256`.
    pub fn record_sha512(&self, sha512: &str, sha256: &str) -> io::Result<()> {
        self.record_alias("sha512", sha512, 128, sha256)
    }

    /// The sha256 an artifact with this sha1 (hex) is cached under, if it is cached.
    pub fn sha256_for_sha1(&self, sha1: &str) -> Option<String> {
        self.alias_target("sha1", sha1, 40)
    }

    /// Records that the artifact with this sha1 (hex) is cached under `sha256`.
    pub fn record_sha1(&self, sha1: &str, sha256: &str) -> io::Result<()> {
        self.record_alias("sha1", sha1, 40, sha256)
    }

    fn alias_target(&self, algo: &str, digest: &str, len: usize) -> Option<String> {
        let alias = self.alias_path(algo, digest, len)?;
        let text = fs::read_to_string(alias).ok()?;
        let sha256 = text.trim();
        (is_sha256_hex(sha256) && self.contains(sha256)).then(|| sha256.to_owned())
    }

    fn record_alias(&self, algo: &str, digest: &str, len: usize, sha256: &str) -> io::Result<()> {
        let Some(alias) = self.alias_path(algo, digest, len) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a {algo}: {digest:?}"),
            ));
        };
        if !is_sha256_hex(sha256) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a sha256: {sha256:?}"),
            ));
        }
        let mut temp = self.temp()?;
        temp.write_all(sha256.as_bytes())?;
        if let Some(parent) = alias.parent() {
            fs::create_dir_all(parent)?;
        }
        temp.file.take();
        fs::rename(&temp.path, &alias)?;
        temp.path = PathBuf::new();
        Ok(())
    }

    fn alias_path(&self, algo: &str, digest: &str, len: usize) -> Option<PathBuf> {
        (is_lower_hex(digest) && digest.len() == len)
            .then(|| self.root.join(algo).join(&digest[..2]).join(digest))
    }

    /// Takes the exclusive lock of `key` (an algorithm and a lowercase hex digest, such as
    /// `sha512-ab12…`) without waiting: `Ok(None)` when another process or task holds it.
    /// The lock lives as long as the returned [`CacheLock`]; the operating system releases it
    /// when the process dies, so a crashed run never blocks the next one.
    pub fn try_lock(&self, key: &str) -> io::Result<Option<CacheLock>> {
        let ok = key.len() >= 4
            && key
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-');
        if !ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a cache key: {key:?}"),
            ));
        }
        let shard = &key[key.len() - 2..];
        let dir = self.root.join("locks").join(shard);
        fs::create_dir_all(&dir)?;
        let path = dir.join(key);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(CacheLock { _file: Some(file) })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            // A file system without locks (some network mounts): go on unlocked; the atomic
            // rename alone still keeps every cached file whole.
            Err(fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                Ok(Some(CacheLock { _file: None }))
            }
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Removes `tmp/*.part` files whose run has ended: the process that wrote them is gone
    /// (where the system says), or they are older than a day.
    /// Every cached artifact: its path, size and when it was last used (the later of its
    /// access and modification times; reading a file marks it used where the file system
    /// keeps access times, and [`Cache::touch`] marks it explicitly).
    fn artifacts(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut out = Vec::new();
        let Ok(shards) = fs::read_dir(self.root.join("sha256")) else {
            return out;
        };
        for shard in shards.filter_map(Result::ok) {
            let Ok(files) = fs::read_dir(shard.path()) else {
                continue;
            };
            for file in files.filter_map(Result::ok) {
                let Ok(meta) = file.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                let used = meta.accessed().map_or(modified, |a| a.max(modified));
                out.push((file.path(), meta.len(), used));
            }
        }
        out
    }

    /// How many artifacts the cache holds, and their bytes.
    pub fn usage(&self) -> Usage {
        let artifacts = self.artifacts();
        Usage {
            files: artifacts.len() as u64,
            bytes: artifacts.iter().map(|(_, size, _)| size).sum(),
        }
    }

    /// Marks the artifact with this sha256 as just used, so that eviction keeps it longest.
    pub fn touch(&self, sha256: &str) {
        if is_sha256_hex(sha256) {
            if let Ok(file) = fs::File::options().append(true).open(self.path_of(sha256)) {
                let _ = file.set_modified(SystemTime::now());
            }
        }
    }

    /// Removes the least recently used artifacts until the rest hold at most `max_bytes`;
    /// returns what was removed. Aliases of removed artifacts stay (a lookup through one
    /// finds nothing and downloads again). An artifact another process is writing is not
    /// there yet (it is renamed into place whole), so nothing half-written is counted.
    pub fn evict_to(&self, max_bytes: u64) -> Usage {
        let mut artifacts = self.artifacts();
        let mut total: u64 = artifacts.iter().map(|(_, size, _)| size).sum();
        let mut removed = Usage::default();
        if total <= max_bytes {
            return removed;
        }
        artifacts.sort_by_key(|(_, _, used)| *used);
        for (path, size, _) in artifacts {
            if total <= max_bytes {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(size);
                removed.files += 1;
                removed.bytes += size;
            }
        }
        removed
    }

    fn remove_stale_temporaries(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        let proc_fs = Path::new("/proc/self").exists();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().unwrap_or("");
            let dead = proc_fs
                && !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && !Path::new("/proc").join(pid).exists();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_AFTER);
            if dead || old {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// A count of cached files and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub files: u64,
    pub bytes: u64,
}

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An exclusive lock on one cache key, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct CacheLock {
    _file: Option<fs::File>,
}

/// A file being written in the cache's `tmp/` folder; removed on drop unless
/// [`Cache::persist`] moved it into place.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: Option<fs::File>,
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("temporary file already closed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, then a rename, so that
/// readers see the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = fs::write(&temp, bytes).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_removes_the_least_recently_used_first() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let mut shas = Vec::new();
        for (i, age) in [(0u8, 300u64), (1, 100), (2, 200)] {
            let bytes = vec![i; 1000];
            let sha = format!("{:x}", Sha256::digest(&bytes));
            let path = cache.path_of(&sha);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &bytes).unwrap();
            let then = SystemTime::now() - Duration::from_secs(age);
            let file = fs::File::options().append(true).open(&path).unwrap();
            file.set_times(fs::FileTimes::new().set_accessed(then).set_modified(then))
                .unwrap();
            shas.push(sha);
        }
        assert_eq!(
            cache.usage(),
            Usage {
                files: 3,
                bytes: 3000
            }
        );
        assert_eq!(cache.evict_to(5000), Usage::default());
        // The oldest (used 300 s ago) goes first, then the one used 200 s ago.
        assert_eq!(
            cache.evict_to(2000),
            Usage {
                files: 1,
                bytes: 1000
            }
        );
        assert!(!cache.contains(&shas[0]));
        cache.touch(&shas[2]);
        assert_eq!(
            cache.evict_to(1000),
            Usage {
                files: 1,
                bytes: 1000
            }
        );
        assert!(cache.contains(&shas[2]), "touched: used most recently");
        assert!(!cache.contains(&shas[1]));
    }

    #[test]
    fn temporaries_vanish_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let mut t = cache.temp().unwrap();
        t.write_all(b"abc").unwrap();
        drop(t);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

        let sha = crate::sha256_hex(b"abc");
        let mut t = cache.temp().unwrap();
        t.write_all(b"abc").unwrap();
        let path = cache.persist(t, &sha).unwrap();
        assert_eq!(fs::read(path).unwrap(), b"abc");
        assert!(cache.contains(&sha));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

        let sha512 = "ab".repeat(64);
        cache.record_sha512(&sha512, &sha).unwrap();
        assert_eq!(cache.sha256_for_sha512(&sha512), Some(sha.clone()));
        let sha1 = "cd".repeat(20);
        assert_eq!(cache.sha256_for_sha1(&sha1), None);
        cache.record_sha1(&sha1, &sha).unwrap();
        assert_eq!(cache.sha256_for_sha1(&sha1), Some(sha));
        assert!(cache.record_sha1("../../x", &"0".repeat(64)).is_err());
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let live = cache.temp().unwrap();
        // No process has this id (above the kernel's pid_max of 2^22).
        let dead = dir.path().join("tmp/4194999-1-1.part");
        fs::write(&dead, b"x").unwrap();
        let _again = Cache::open(dir.path()).unwrap();
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists());
        }
        assert!(live.path.exists(), "a live run's file is kept");
    }

    #[test]
    fn a_key_is_locked_once_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let key = format!("sha256-{}", "a".repeat(64));
        let held = cache.try_lock(&key).unwrap().expect("free");
        assert!(cache.try_lock(&key).unwrap().is_none(), "held");
        drop(held);
        assert!(cache.try_lock(&key).unwrap().is_some(), "released");
        assert!(cache.try_lock("../x").is_err());
    }
}
