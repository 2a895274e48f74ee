//! The user's own state directory (never a shared one): per-(store target, provider) lock
//! files and refresh journals. Directories are 0700, files 0600, written atomically (temp file,
//! fsync, rename) and never through a symlink.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, FileOp, Holder, Result};

/// Why a file or directory oauth-pkce reads configuration from cannot be trusted, if it
/// cannot: it belongs to another user (root excepted, for system-wide files) or others may
/// write it. The rule for provider files and their directory.
pub(crate) fn untrusted(meta: &std::fs::Metadata) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let uid = meta.uid();
        if uid != rustix::process::geteuid().as_raw() && uid != 0 {
            return Some(format!("belongs to another user (uid {uid})"));
        }
        if meta.mode() & 0o022 != 0 {
            return Some(format!(
                "is writable by other users (mode {:o})",
                meta.mode() & 0o777
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    None
}

/// Whether this user owns `meta` (the state dir and its files must be the user's own).
fn foreign(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let uid = meta.uid();
        if uid != rustix::process::geteuid().as_raw() {
            return Some(uid);
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    None
}

/// Creates `dir` (and parents) and makes sure it is a real directory, ours, mode 0700. Every
/// parent it creates is 0700 too (`create_dir_all` alone would leave them at the umask's
/// 0755, e.g. `~/.local/state/oauth-pkce` above `cache/`).
pub fn private_dir(dir: &Path) -> Result<()> {
    let io = |source| Error::StateFile {
        op: FileOp::Create,
        path: dir.to_path_buf(),
        source,
    };
    let created: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| std::fs::symlink_metadata(a).is_err())
        .collect();
    std::fs::create_dir_all(dir).map_err(io)?;
    #[cfg(unix)]
    for parent in created.iter().skip(1) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if !meta.is_dir() {
        return Err(Error::Config(format!(
            "{} is not a directory (a symlink is refused)",
            dir.display()
        )));
    }
    // The directory, and the one above it (the state dir itself, for its locks/, journal/
    // and cache/; root's is fine): another user who owns either could swap what is inside.
    let parent = dir.parent().and_then(|p| std::fs::symlink_metadata(p).ok());
    let foreign_parent = parent.as_ref().and_then(foreign).filter(|&uid| uid != 0);
    for (d, uid) in [(Some(dir), foreign(&meta)), (dir.parent(), foreign_parent)] {
        if let (Some(d), Some(uid)) = (d, uid) {
            return Err(Error::Config(format!(
                "{} belongs to another user (uid {uid}); oauth-pkce keeps its state only in a \
                 directory of your own: move it away (or point XDG_STATE_HOME elsewhere)",
                d.display()
            )));
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o777 != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically with mode 0600: a temp file beside it, fsync, rename,
/// fsync of the directory.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a file path has a parent");
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        // No empty or partial temp file is left behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Opens an existing private file for writing in place, never through a symlink.
pub(crate) fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// The largest journal or cache file read (they hold a few tokens: a few kB).
const MAX_PRIVATE_FILE: u64 = 1024 * 1024;

/// Reads a private file, refusing symlinks, files of other users or that others can read,
/// and files larger than any oauth-pkce writes.
pub(crate) fn read_private(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if let Some(uid) = foreign(&meta) {
        return Err(std::io::Error::other(format!(
            "{} belongs to another user (uid {uid}); refusing it",
            path.display()
        )));
    }
    if meta.len() > MAX_PRIVATE_FILE {
        return Err(std::io::Error::other(format!(
            "{} is {} bytes, more than oauth-pkce ever writes there; refusing it",
            path.display(),
            meta.len()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(std::io::Error::other(format!(
                "{} is readable by others (mode {:o}); refusing it",
                path.display(),
                meta.permissions().mode() & 0o777
            )));
        }
    }
    std::fs::read(path).map(Some)
}

/// The state directory of this user: it owns the lock files and the refresh journals, and
/// knows nothing of stores or providers beyond the `Key` it is given.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// One (store target, provider) pair, named safely for a file: the provider name and a hash of
/// what identifies the target (for Doppler: API host, project, config) and, when the target is
/// implied by a credential (a Doppler service token), that credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    provider: String,
    file: String,
}

impl Key {
    pub fn new(provider: &str, target: &[&str], implied_by: Option<&str>) -> Key {
        let mut h = Sha256::new();
        for part in target.iter().chain([&provider]) {
            h.update(part.as_bytes());
            h.update([0]);
        }
        if let Some(credential) = implied_by {
            h.update(credential.as_bytes());
        }
        let digest = h.finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Key {
            provider: provider.to_string(),
            file: format!("{provider}-{hex}"),
        }
    }

    /// The file name stem: `<provider>-<16 hex digits>`.
    pub fn as_str(&self) -> &str {
        &self.file
    }
}

impl StateDir {
    /// `$XDG_STATE_HOME/oauth-pkce` (Linux), else the platform's local data dir.
    pub fn locate() -> Result<StateDir> {
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .map(|d| StateDir::at(d.join("oauth-pkce")))
            .ok_or_else(|| {
                Error::Config(
                    "cannot find a state directory for locks and journals (set HOME)".into(),
                )
            })
    }

    pub fn at(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where the refresh journal of `key` lives (see `journal`).
    pub fn journal_path(&self, key: &Key) -> PathBuf {
        self.journal_dir().join(format!("{}.json", key.as_str()))
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.root.join("journal")
    }

    /// Opens (creating, 0600, no symlinks) `locks/<key>.<suffix>`.
    fn lock_file(&self, key: &Key, suffix: &str) -> Result<(File, PathBuf)> {
        let dir = self.root.join("locks");
        private_dir(&dir)?;
        let path = dir.join(format!("{}.{suffix}", key.as_str()));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(&path).map_err(|source| Error::StateFile {
            op: FileOp::Open,
            path: path.clone(),
            source,
        })?;
        Ok((file, path))
    }

    /// Takes the sign-in lock of `key` without waiting: another sign-in in progress is an
    /// error.
    pub fn sign_in_lock(&self, key: &Key) -> Result<SignInLock> {
        let (file, _) = self.lock_file(key, "authorize.lock")?;
        match file.try_lock() {
            Ok(()) => Ok(SignInLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::SignInInProgress {
                provider: key.provider.clone(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(Error::CallbackServer(source)),
        }
    }

    /// Takes the refresh lock of `key`, waiting at most `max_wait`. The wait is the OS's
    /// blocking lock on a blocking thread, so a waiter wakes the moment the holder lets go
    /// (no polling); after `max_wait` that thread is left to finish on its own.
    pub async fn refresh_lock(&self, key: &Key, max_wait: Duration) -> Result<LocalLock> {
        let (file, path) = self.lock_file(key, "lock")?;
        let lock_error = |source| Error::StateFile {
            op: FileOp::Lock,
            path: path.clone(),
            source,
        };
        match file.try_lock() {
            Ok(()) => {
                return Ok(LocalLock {
                    _file: file,
                    waited: false,
                })
            }
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(source)) => return Err(lock_error(source)),
        }
        let wait = tokio::task::spawn_blocking(move || file.lock().map(|()| file));
        match tokio::time::timeout(max_wait, wait).await {
            Ok(Ok(Ok(file))) => Ok(LocalLock {
                _file: file,
                waited: true,
            }),
            Ok(Ok(Err(source))) => Err(lock_error(source)),
            Ok(Err(join)) => Err(lock_error(std::io::Error::other(join.to_string()))),
            Err(_) => Err(Error::RefreshBusy {
                provider: key.provider.clone(),
                seconds: max_wait.as_secs(),
                holder: Holder::ThisMachine { lock: path },
            }),
        }
    }
}

/// An exclusive per-user lock on one (store target, provider). Released when dropped or when
/// the process dies (an OS file lock).
#[derive(Debug)]
pub struct LocalLock {
    _file: File,
    /// Whether another process held it first (so what was read before may be stale).
    pub waited: bool,
}

/// Held by a browser or device sign-in for one (store target, provider), so that a second
/// `authorize` on this machine does not open another browser and listener (E3).
#[derive(Debug)]
pub struct SignInLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_loose_ones_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("state");
        private_dir(&sub).unwrap();
        assert_eq!(
            std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let file = sub.join("j.json");
        write_private(&file, b"{}").unwrap();
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_private(&file).unwrap().unwrap(), b"{}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_private(&file).is_err());
        let link = sub.join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read_private(&link).is_err());
        assert!(read_private(&sub.join("absent")).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_local_lock_held_too_long_is_a_busy_refresh_on_this_machine_not_a_doppler_error() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::at(dir.path());
        let key = Key::new("jobber", &["https://api.doppler.com/", "p", "c"], None);
        let _held = state
            .refresh_lock(&key, Duration::from_secs(1))
            .await
            .unwrap();
        let e = state
            .refresh_lock(&key, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::RefreshBusy {
                    holder: Holder::ThisMachine { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("another oauth-pkce process on this machine"),
            "{e}"
        );
        assert!(
            e.hint()
                .starts_with("wait for the other oauth-pkce process"),
            "{}",
            e.hint()
        );
    }

    #[test]
    fn keys_are_stable_across_versions_so_a_left_journal_is_found_after_an_upgrade() {
        // Values computed by 0.1's `state::key` for the same targets: a journal written before
        // an upgrade must keep its name, or its rotated refresh token would be lost.
        let host = "https://api.doppler.com/";
        let named = Key::new("jobber", &[host, "p", "c"], None);
        assert_eq!(named.as_str(), "jobber-8365f99cd2d9505a");
        let service = Key::new("jobber", &[host, "", ""], Some("dp.st.dev.x"));
        assert_eq!(service.as_str(), "jobber-e19eaf75aab575a8");
        assert_ne!(named, Key::new("github", &[host, "p", "c"], None));
        assert_ne!(named, Key::new("jobber", &[host, "p", "d"], None));
    }

    /// Red team R12: a journal or cache file larger than oauth-pkce ever writes is not read.
    #[test]
    fn r12_an_oversized_private_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        write_private(&path, &vec![b' '; MAX_PRIVATE_FILE as usize]).unwrap();
        assert!(read_private(&path).unwrap().is_some());
        write_private(&path, &vec![b' '; MAX_PRIVATE_FILE as usize + 1]).unwrap();
        let e = read_private(&path).unwrap_err().to_string();
        assert!(e.contains("more than oauth-pkce ever writes"), "{e}");
    }

    #[test]
    fn the_parents_it_creates_are_private_too() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state/oauth-pkce");
        private_dir(&root.join("cache")).unwrap();
        for d in [dir.path().join("state"), root.clone(), root.join("cache")] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        // A parent that existed before is left as it was.
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_ne!(mode, 0, "untouched");
    }

    #[test]
    fn a_loose_state_dir_is_tightened() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(dir.path()).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
