//! A per-repository lock between amp-sessions processes: an exclusive `flock` on a file named after a hash of
//! the repository path. The kernel drops it when the holder dies, even on `kill -9`, so it can never go stale.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{GitError, Result};

/// How often a busy lock is retried.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// An exclusive lock on one repository, held until dropped.
#[derive(Debug)]
pub struct RepoLock {
    _lock: Flock<File>,
    path: PathBuf,
    repo: PathBuf,
}

impl RepoLock {
    /// Take the lock for `repo_root`, waiting up to `timeout` while another process (or another handle in this
    /// process) holds it. The lock file is `<lock_dir>/repo-<hash>.lock` (`lock_dir` is created if needed); the
    /// holder writes its pid and the repository path into it for error messages. On timeout the error names the
    /// repository and, when known, the holder's pid.
    pub fn acquire(lock_dir: &Path, repo_root: &Path, timeout: Duration) -> Result<RepoLock> {
        std::fs::create_dir_all(lock_dir).map_err(|source| GitError::Io {
            action: "could not create the lock directory",
            path: lock_dir.to_path_buf(),
            source,
        })?;
        let repo = std::fs::canonicalize(repo_root).unwrap_or_else(|_| repo_root.to_path_buf());
        let path = lock_dir.join(format!("repo-{:016x}.lock", fnv1a(repo.as_os_str().as_encoded_bytes())));
        let started = Instant::now();
        loop {
            let file =
                OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(
                    |source| GitError::Io {
                        action: "could not open the lock file",
                        path: path.clone(),
                        source,
                    },
                )?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    // The file may have been removed (by `clean-environment`) between open and lock; then this
                    // lock guards nothing and the path must be opened again.
                    if !same_file(&lock, &path) {
                        continue;
                    }
                    // Best effort: the note only improves error messages of waiting processes.
                    let note = format!("pid {} holds the lock for {}\n", std::process::id(), repo.display());
                    let _ = lock.set_len(0);
                    let _ = lock.rewind();
                    let _ = lock.write_all(note.as_bytes());
                    return Ok(RepoLock { _lock: lock, path, repo });
                }
                Err((mut file, Errno::EWOULDBLOCK)) => {
                    if started.elapsed() >= timeout {
                        let mut holder = String::new();
                        let _ = file.read_to_string(&mut holder);
                        let holder = holder.trim();
                        return Err(GitError::LockTimeout {
                            repo,
                            lock_file: path,
                            waited: started.elapsed(),
                            holder: if holder.is_empty() {
                                "held by another amp-sessions process".to_string()
                            } else {
                                holder.to_string()
                            },
                        });
                    }
                    std::thread::sleep(POLL_INTERVAL.min(timeout.saturating_sub(started.elapsed())));
                }
                Err((_, errno)) => {
                    return Err(GitError::Io {
                        action: "could not lock",
                        path,
                        source: std::io::Error::from(errno),
                    });
                }
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The (canonical) repository path the lock is for.
    pub fn repo(&self) -> &Path {
        &self.repo
    }
}

impl RepoLock {
    /// Delete the lock file at `path` when no process holds it, and report whether it was deleted. The file is
    /// removed while this process holds the lock, and [`RepoLock::acquire`] re-opens a file that vanished under
    /// it, so this never lets two processes in at once.
    pub fn remove_if_unused(path: &Path) -> Result<bool> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(GitError::Io {
                    action: "could not open the lock file",
                    path: path.into(),
                    source,
                });
            }
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                if !same_file(&lock, path) {
                    return Ok(false);
                }
                std::fs::remove_file(path).map_err(|source| GitError::Io {
                    action: "could not remove the lock file",
                    path: path.to_path_buf(),
                    source,
                })?;
                drop(lock);
                Ok(true)
            }
            Err((_, Errno::EWOULDBLOCK)) => Ok(false),
            Err((_, errno)) => Err(GitError::Io {
                action: "could not lock",
                path: path.into(),
                source: std::io::Error::from(errno),
            }),
        }
    }

    /// True when a process holds the lock file at `path` right now.
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().read(true).open(path) else {
            return false;
        };
        matches!(Flock::lock(file, FlockArg::LockSharedNonblock), Err((_, Errno::EWOULDBLOCK)))
    }
}

/// True when the open file is the one `path` names now (same device and inode).
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// 64-bit FNV-1a: stable across Rust versions and processes, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
