//! Staging and committing: add/reset paths, commit with a message on stdin and `--trailer`s, and a fallback
//! identity (amp-sessions <amp-sessions@localhost>) when the user configured none, without changing config.

use std::ffi::{OsStr, OsString};

use crate::error::{GitError, Result};
use crate::exec::{Git, Invocation};

/// Author and committer name used when `user.name` is not configured.
pub const FALLBACK_NAME: &str = "amp-sessions";
/// Author and committer email used when `user.email` is not configured.
pub const FALLBACK_EMAIL: &str = "amp-sessions@localhost";

impl Git {
    /// Stage these paths (`git add -- <paths>`; paths relative to the top of the checkout, taken literally, no
    /// globs). Deleted paths are staged as deletions. Does nothing for an empty list.
    pub fn stage<P: AsRef<OsStr>>(&self, paths: &[P]) -> Result<()> {
        self.with_paths(&["add", "--all"], paths)
    }

    /// Stage every change, including new and deleted files (`git add -A`).
    pub fn stage_all(&self) -> Result<()> {
        self.run(&["add", "-A"])?;
        Ok(())
    }

    /// Unstage these paths, keeping the working-tree files (`git reset -q -- <paths>`).
    pub fn unstage<P: AsRef<OsStr>>(&self, paths: &[P]) -> Result<()> {
        self.with_paths(&["reset", "-q"], paths)
    }

    /// Unstage everything, keeping the working-tree files (`git reset -q`).
    pub fn unstage_all(&self) -> Result<()> {
        self.run(&["reset", "-q"])?;
        Ok(())
    }

    /// Run `git --literal-pathspecs <command> -- <paths>` unless `paths` is empty.
    fn with_paths<P: AsRef<OsStr>>(&self, command: &[&str], paths: &[P]) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let mut args: Vec<OsString> = vec!["--literal-pathspecs".into()];
        args.extend(command.iter().map(OsString::from));
        args.push("--".into());
        args.extend(paths.iter().map(|p| p.as_ref().to_os_string()));
        self.run(&args)?;
        Ok(())
    }

    /// True when the index differs from HEAD (something is staged).
    pub fn has_staged_changes(&self) -> Result<bool> {
        let args = ["diff", "--cached", "--quiet", "--no-ext-diff"];
        let out = self.run_ok(&args)?;
        match out.code {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(self.failed(args.join(" "), &out)),
        }
    }

    /// Commit what is staged and return the new commit's SHA, or `None` when nothing is staged and
    /// `allow_empty` is false.
    ///
    /// The message goes through standard input (`git commit -F -`); each trailer is added with
    /// `--trailer "Key: value"`. Hooks run as usual. Author and committer come from the user's configuration;
    /// when `user.name` or `user.email` is missing (and no `GIT_AUTHOR_*`/`GIT_COMMITTER_*`/`EMAIL` variable
    /// supplies it) [`FALLBACK_NAME`] / [`FALLBACK_EMAIL`] are passed through the environment of this one
    /// command; configuration is never written.
    pub fn commit(
        &self,
        message: &str,
        trailers: &[(&str, &str)],
        allow_empty: bool,
    ) -> Result<Option<String>> {
        if message.trim().is_empty() {
            return Err(GitError::InvalidArgument {
                what: "commit message",
                value: message.to_string(),
                reason: "it is empty".to_string(),
            });
        }
        if !allow_empty && !self.has_staged_changes()? {
            return Ok(None);
        }
        let mut args: Vec<OsString> = vec!["commit".into(), "--quiet".into(), "-F".into(), "-".into()];
        if allow_empty {
            args.push("--allow-empty".into());
        }
        for (key, value) in trailers {
            check_trailer(key, value)?;
            args.push("--trailer".into());
            args.push(format!("{key}: {value}").into());
        }
        let mut inv = Invocation::new(&args).stdin(message.as_bytes());
        for (k, v) in self.identity_env()? {
            inv = inv.env(k, v);
        }
        self.run_inv(inv)?;
        self.resolve_commit("HEAD")?
            .map(Some)
            .ok_or_else(|| self.parse_error(&["rev-parse", "HEAD"], "no HEAD after commit"))
    }

    /// Stage everything (`git add -A`) and commit it; `None` when there was nothing to commit.
    pub fn commit_all(&self, message: &str, trailers: &[(&str, &str)]) -> Result<Option<String>> {
        self.stage_all()?;
        self.commit(message, trailers, false)
    }

    /// Environment variables supplying a fallback identity where the user configured none.
    pub(crate) fn identity_env(&self) -> Result<Vec<(&'static str, &'static str)>> {
        let mut env = Vec::new();
        let parts = [
            ("user.name", "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME", FALLBACK_NAME, None),
            ("user.email", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", FALLBACK_EMAIL, Some("EMAIL")),
        ];
        for (key, author_var, committer_var, fallback, generic_var) in parts {
            if self.config_get(key)?.is_some() {
                continue;
            }
            if generic_var.is_some_and(|v| self.env_is_set(v)) {
                continue;
            }
            for var in [author_var, committer_var] {
                if !self.env_is_set(var) {
                    env.push((var, fallback));
                }
            }
        }
        Ok(env)
    }

    /// True when `var` is set to something non-empty for git commands run by this handle.
    fn env_is_set(&self, var: &str) -> bool {
        match self.extra_env(var) {
            Some(value) => !value.is_empty(),
            None => std::env::var_os(var).is_some_and(|v| !v.is_empty()),
        }
    }

    /// The value of a configuration key (`git config --get`), `None` when unset.
    pub fn config_get(&self, key: &str) -> Result<Option<String>> {
        let args = ["config", "--get", key];
        let out = self.run_ok(&args)?;
        match out.code {
            Some(0) => Ok(Some(out.stdout.trim_end_matches('\n').to_string())),
            Some(1) => Ok(None),
            _ => Err(self.failed(args.join(" "), &out)),
        }
    }
}

/// A trailer key must be one token and neither part may span lines.
fn check_trailer(key: &str, value: &str) -> Result<()> {
    let bad_key = key.is_empty() || key.contains(|c: char| c == ':' || c.is_whitespace());
    if bad_key || value.contains('\n') {
        return Err(GitError::InvalidArgument {
            what: "commit trailer",
            value: format!("{key}: {value}"),
            reason: "the key must be one word without ':' and the value a single line".to_string(),
        });
    }
    Ok(())
}
