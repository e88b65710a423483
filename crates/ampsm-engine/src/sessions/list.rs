//! What the dashboard's sessions page and its New session dialog read: a page of sessions (search,
//! filters, paging and per-row cost and lines, all in the store's SQL), which agents are installed and
//! which one a new session gets by default, the sub-folders of a folder within the user's home or the
//! configured roots (`ui.roots`), and the branches of a repository.

use crate::{Engine, EngineError};
use ampsm_agent::RunSpec;
use ampsm_core::SessionStatus;
use ampsm_git::Git;
use ampsm_store::sessions::SessionSearch;
pub use ampsm_store::sessions::{SessionListPage, SessionListRow};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The most sub-folders one listing returns (the rest are counted, not listed).
pub const MAX_FOLDERS: usize = 1000;

/// Which sessions [`Engine::session_page`] shows.
#[derive(Debug, Clone)]
pub struct SessionListQuery {
    /// Words that must all appear in the name, branch, repository, agent, id or prompt.
    pub text: Option<String>,
    pub status: Option<SessionStatus>,
    /// A repository path as the sessions store it.
    pub repo: Option<String>,
    pub agent: Option<String>,
    pub include_removed: bool,
    /// Order by repository first (for a page grouped by repository).
    pub by_repo: bool,
    /// The page, from 1.
    pub page: u64,
    pub per_page: u32,
}

impl Default for SessionListQuery {
    fn default() -> Self {
        SessionListQuery {
            text: None,
            status: None,
            repo: None,
            agent: None,
            include_removed: false,
            by_repo: false,
            page: 1,
            per_page: 50,
        }
    }
}

/// Whether an agent's CLI is installed (found as configured, or on the PATH).
#[derive(Debug, Clone, Serialize)]
pub struct AgentInstall {
    pub agent: String,
    pub installed: bool,
}

/// The sub-folders of one folder, for the folder browser.
#[derive(Debug, Clone, Serialize)]
pub struct FolderListing {
    /// The folder, with symlinks resolved.
    pub path: String,
    /// Its parent, when that is still within the allowed folders.
    pub parent: Option<String>,
    /// Whether the folder itself is a git repository (holds `.git`).
    pub git: bool,
    pub folders: Vec<Folder>,
    /// Sub-folders not listed (past [`MAX_FOLDERS`]).
    pub more: usize,
    /// The folders the browser may show (home first, then `ui.roots`).
    pub roots: Vec<String>,
}

/// One sub-folder.
#[derive(Debug, Clone, Serialize)]
pub struct Folder {
    pub name: String,
    /// Its path, with symlinks resolved.
    pub path: String,
    /// Whether it is a git repository (holds `.git`).
    pub git: bool,
}

/// The branches of a repository, for the New session form's base branch.
#[derive(Debug, Clone, Serialize)]
pub struct RepoBranches {
    pub root: String,
    /// The base a new session takes when none is chosen (`git.default_base_branch`, else the default).
    pub default_base: String,
    pub current_branch: Option<String>,
    pub branches: Vec<String>,
}

impl Engine {
    /// One page of the sessions `query` selects, with the total count, the known repositories and the
    /// agents in use; a page past the last one is the last one.
    pub fn session_page(&self, query: &SessionListQuery) -> Result<SessionListPage, EngineError> {
        let per_page = query.per_page.clamp(1, 500);
        let mut search = SessionSearch {
            text: query.text.clone().filter(|t| !t.trim().is_empty()),
            status: query.status,
            repo_path: query.repo.clone().filter(|r| !r.is_empty()),
            agent: query.agent.clone().filter(|a| !a.is_empty()),
            include_removed: query.include_removed,
            by_repo: query.by_repo,
            limit: per_page,
            offset: query.page.max(1).saturating_sub(1).saturating_mul(u64::from(per_page)),
        };
        let page = self.store.search_sessions(&search)?;
        if page.rows.is_empty() && page.total > 0 && search.offset > 0 {
            search.offset = (page.total - 1) / u64::from(per_page) * u64::from(per_page);
            return Ok(self.store.search_sessions(&search)?);
        }
        Ok(page)
    }

    /// Every agent of the registry, with whether its CLI is installed (a PATH look-up, no process run).
    pub fn agent_installs(&self) -> Vec<AgentInstall> {
        ampsm_core::agents::agent_names()
            .map(|name| AgentInstall { agent: name.to_string(), installed: self.agent_installed(name) })
            .collect()
    }

    /// Whether agent `name`'s program is found (its configured path, else on the PATH).
    pub fn agent_installed(&self, name: &str) -> bool {
        let Ok(adapter) = ampsm_agent::adapter_for(name) else { return false };
        let mut spec = RunSpec::new("", std::env::temp_dir());
        self.apply_agent_overrides(adapter.as_ref(), &mut spec);
        adapter.locate_program(&spec).is_ok()
    }

    /// The agent a new session gets by default: the configured one (`session.default_agent`) when it is
    /// installed, else the first installed agent of the registry (the offline demo agent only when
    /// nothing else is), else the configured one all the same.
    pub fn default_installed_agent(&self, installs: &[AgentInstall]) -> String {
        let configured = &self.config.session.default_agent;
        if installs.iter().any(|a| &a.agent == configured && a.installed) {
            return configured.clone();
        }
        installs
            .iter()
            .find(|a| a.installed && a.agent != "offline")
            .or_else(|| installs.iter().find(|a| a.installed))
            .map(|a| a.agent.clone())
            .unwrap_or_else(|| configured.clone())
    }

    /// The folders the folder browser may show: the user's home, then `ui.roots`; each with symlinks
    /// resolved (those that do not exist are left out).
    pub fn browse_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = Vec::new();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let configured = self.config.ui.roots.iter().map(|r| PathBuf::from(expand_home(r, home.as_deref())));
        for root in home.clone().into_iter().chain(configured) {
            if let Ok(c) = root.canonicalize()
                && c.is_dir()
                && !roots.contains(&c)
            {
                roots.push(c);
            }
        }
        roots
    }

    /// The sub-folders (never files, never hidden ones) of `path` (default: the home folder), which must
    /// be within [`Engine::browse_roots`] once its symlinks are resolved; sub-folders that are symlinks
    /// leading outside are left out. Git repositories are marked.
    pub fn list_folders(&self, path: Option<&Path>) -> Result<FolderListing, EngineError> {
        let roots = self.browse_roots();
        let Some(home) = roots.first().cloned() else {
            return Err(EngineError::Invalid(
                "no folder to browse: HOME is not set and ui.roots names no existing folder".into(),
            ));
        };
        let dir = match path {
            Some(p) => allowed_dir(p, &roots)?,
            None => home,
        };
        let entries =
            std::fs::read_dir(&dir).map_err(|source| EngineError::Io { path: dir.clone(), source })?;
        let mut folders = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else { continue };
            let full = if kind.is_symlink() {
                match entry.path().canonicalize() {
                    Ok(target) if target.is_dir() && within(&target, &roots) => target,
                    _ => continue,
                }
            } else if kind.is_dir() {
                entry.path()
            } else {
                continue;
            };
            folders.push(Folder { git: full.join(".git").exists(), path: text(&full), name });
        }
        folders.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.name.cmp(&b.name)));
        let more = folders.len().saturating_sub(MAX_FOLDERS);
        folders.truncate(MAX_FOLDERS);
        let parent = dir.parent().filter(|p| within(p, &roots)).map(text);
        Ok(FolderListing {
            git: dir.join(".git").exists(),
            path: text(&dir),
            parent,
            folders,
            more,
            roots: roots.iter().map(|r| text(r)).collect(),
        })
    }

    /// The branches of the repository holding `path` (within the allowed folders, or the repository of
    /// a session), and the base a new session would take.
    pub fn repo_branches(&self, path: &Path) -> Result<RepoBranches, EngineError> {
        let known = self.store.search_sessions(&SessionSearch { limit: 1, ..Default::default() })?.repos;
        let is_known = path.canonicalize().is_ok_and(|c| known.iter().any(|(r, _)| Path::new(r) == c));
        if !is_known {
            allowed_dir(path, &self.browse_roots())?;
        }
        let root = ampsm_git::repo_root(path)?;
        let git = Git::new(&root);
        let default_base = if git.has_commits()? {
            self.default_base(&git)?
        } else {
            return Err(EngineError::Invalid(super::no_commits(&root)));
        };
        Ok(RepoBranches {
            root: text(&root),
            default_base,
            current_branch: git.head_branch()?,
            branches: git.branches()?,
        })
    }
}

/// `path` with its symlinks resolved, when it is an existing folder within one of `roots`; otherwise
/// the one-line reason it is refused.
fn allowed_dir(path: &Path, roots: &[PathBuf]) -> Result<PathBuf, EngineError> {
    if !path.is_absolute() {
        return Err(EngineError::Invalid(format!("{} is not an absolute path", path.display())));
    }
    let real = path.canonicalize().map_err(|_| {
        EngineError::Invalid(format!("folder {} does not exist or cannot be read", path.display()))
    })?;
    if !within(&real, roots) {
        return Err(EngineError::Invalid(format!(
            "folder {} is outside your home folder and the configured roots (ui.roots)",
            real.display()
        )));
    }
    if !real.is_dir() {
        return Err(EngineError::Invalid(format!("{} is not a folder", real.display())));
    }
    Ok(real)
}

/// Whether `path` (symlinks resolved) is one of `roots` or inside one.
fn within(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| path.starts_with(r))
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `~/x` as `<home>/x`.
fn expand_home(root: &str, home: Option<&Path>) -> String {
    match (root.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => text(&h.join(rest)),
        _ if root == "~" => home.map(text).unwrap_or_default(),
        _ => root.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_checks_whole_components() {
        let roots = vec![PathBuf::from("/home/ann")];
        assert!(within(Path::new("/home/ann"), &roots));
        assert!(within(Path::new("/home/ann/src"), &roots));
        assert!(!within(Path::new("/home/anna"), &roots));
        assert!(!within(Path::new("/etc"), &roots));
    }

    #[test]
    fn refuses_relative_and_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("inner")).unwrap();
        let roots = vec![root.join("inner")];
        assert!(allowed_dir(Path::new("inner"), &roots).is_err());
        assert!(allowed_dir(&root.join("inner/.."), &roots).is_err());
        assert!(allowed_dir(&root.join("inner"), &roots).is_ok());
        assert_eq!(expand_home("~/src", Some(Path::new("/h"))), "/h/src");
    }
}
