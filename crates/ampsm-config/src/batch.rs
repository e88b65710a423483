//! The batch YAML of `amp-sessions batch start --file F`: many prompts × many repositories.
//!
//! ```yaml
//! name: "Authentication Features"
//! repos:
//!   - path: "./frontend"          # relative paths resolve against the YAML file's folder
//!     baseBranch: "main"
//! defaults:                       # optional; every item inherits these
//!   agent: amp                    # a name of ampsm_core::agents::AGENTS (amp, claude, codex, …)
//!   model: smart
//!   timeout: 10m                  # per agent run: 90s, 10m, 1h30m or a number of seconds
//!   retries: 1                    # extra attempts after a failure (each in a fresh session)
//!   mergeOnPass: false            # merge the session into its base when the item passes
//!   budget: 2.5                   # USD per session (each item's session)
//!   script: "npm test"
//! items:
//!   - name: "jwt-auth"            # a session name: letters, digits, '-', '_', '.'
//!     prompt: "Implement JWT authentication middleware"
//!     script: "npm test"          # the validation script; the item passes when it exits 0
//!     repos: ["./backend"]        # optional: only these repositories (a path or {path, baseBranch})
//! concurrency: 2
//! budget: 20                      # optional: USD for the whole batch (all items together)
//! executor: slurm                 # optional: local (default), slurm or kubernetes (`executors.*` in the config)
//! ```
//!
//! Parsing rejects unknown fields; every error names the file, the line and column, and the field (for
//! example `batch.yaml:12:14: items[1].timeout: invalid duration "soon": …`).

use crate::error::{ConfigError, PASTED};
use crate::spec::relative_in_pasted;
use crate::spec::{DurationText, invalid, read_spec};
use crate::yaml;
use ampsm_core::agents::{is_agent_name, unknown_agent_text};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most items running at once.
pub const MAX_CONCURRENCY: u32 = 64;
/// Most retries of one item.
pub const MAX_RETRIES: u32 = 10;

/// A checked batch file: every item with its settings resolved (item over `defaults:`).
#[derive(Debug, Clone, Serialize)]
pub struct BatchSpec {
    pub name: String,
    /// The YAML file (absolute).
    pub file: PathBuf,
    pub concurrency: u32,
    /// The budget of the whole batch (top-level `budget:`), shared by all its items.
    pub budget_usd: Option<f64>,
    /// Where the items run (top-level `executor:`); `None`: not said (`--executor`, else local).
    pub executor: Option<ampsm_core::Executor>,
    pub items: Vec<ItemSpec>,
}

/// A repository an item runs on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoSpec {
    /// Absolute (relative paths were resolved against the YAML file's folder).
    pub path: PathBuf,
    /// The path as written.
    pub written: String,
    /// Where it is in the file, e.g. `repos[1]` or `items[0].repos[0]`.
    pub field: String,
    pub base_branch: Option<String>,
    /// Where the entry is written (for errors found later, such as a missing repository).
    pub line: u64,
    pub column: u64,
}

/// One item with its settings resolved.
#[derive(Debug, Clone, Serialize)]
pub struct ItemSpec {
    pub name: String,
    pub prompt: String,
    pub script: Option<String>,
    pub agent: Option<String>,
    pub model: Option<String>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub merge_on_pass: bool,
    pub budget_usd: Option<f64>,
    /// The item's own `repos:`, else the top-level list.
    pub repos: Vec<RepoSpec>,
    pub line: u64,
    pub column: u64,
}

impl BatchSpec {
    /// Reads and checks the batch file at `path`.
    pub fn load(path: &Path) -> Result<BatchSpec, ConfigError> {
        let (file, text) = read_spec(path)?;
        BatchSpec::parse(&file, &text)
    }

    /// Parses and checks batch YAML; `path` names the file in errors and anchors relative repository paths.
    pub fn parse(path: &Path, text: &str) -> Result<BatchSpec, ConfigError> {
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        BatchSpec::parse_in(path, Some(&base_dir), text)
    }

    /// Parses and checks batch YAML that has no file (pasted in the dashboard): errors name
    /// [`PASTED`] and the line, and a relative repository path is an error (there is no folder to
    /// resolve it against).
    pub fn parse_pasted(text: &str) -> Result<BatchSpec, ConfigError> {
        BatchSpec::parse_in(Path::new(PASTED), None, text)
    }

    fn parse_in(path: &Path, base_dir: Option<&Path>, text: &str) -> Result<BatchSpec, ConfigError> {
        if text.trim().is_empty() {
            return Err(invalid(
                path,
                1,
                1,
                "the batch file is empty; it needs `name:`, `repos:` and `items:`",
            ));
        }
        let raw: RawBatch = yaml::parse(path, text)?;
        let check = Checker { path, base_dir };
        check.batch(raw)
    }

    /// The runs, in order: each item on each of its repositories.
    pub fn plan(&self) -> Vec<(&ItemSpec, &RepoSpec)> {
        self.items.iter().flat_map(|item| item.repos.iter().map(move |r| (item, r))).collect()
    }
}

// ---- the file as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBatch {
    name: Spanned<String>,
    #[serde(default)]
    repos: Option<Vec<Spanned<RawItemRepo>>>,
    items: Spanned<Vec<Spanned<RawItem>>>,
    #[serde(default)]
    concurrency: Option<Spanned<i64>>,
    #[serde(default)]
    defaults: Option<RawSettings>,
    #[serde(default)]
    budget: Option<Spanned<f64>>,
    #[serde(default)]
    executor: Option<Spanned<String>>,
}

/// A repository entry after reading: its path (with position) and base branch.
#[derive(Debug)]
struct RawRepo {
    path: Spanned<String>,
    base_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRepoMap {
    path: Spanned<String>,
    #[serde(default)]
    base_branch: Option<String>,
}

/// An entry of a `repos:` list: a path or a mapping `{path, baseBranch}`.
#[derive(Debug)]
enum RawItemRepo {
    Path(String),
    Map(RawRepo),
}

impl<'de> Deserialize<'de> for RawItemRepo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemRepoVisitor;
        impl<'de> Visitor<'de> for ItemRepoVisitor {
            type Value = RawItemRepo;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a repository path, or a mapping with `path` (and optionally `baseBranch`)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawItemRepo, E> {
                Ok(RawItemRepo::Path(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawItemRepo, A::Error> {
                let m = RawRepoMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawItemRepo::Map(RawRepo { path: m.path, base_branch: m.base_branch }))
            }
        }
        d.deserialize_any(ItemRepoVisitor)
    }
}

/// Settings shared by `defaults:` and items.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSettings {
    #[serde(default)]
    agent: Option<Spanned<String>>,
    #[serde(default)]
    model: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<DurationText>>,
    #[serde(default)]
    retries: Option<Spanned<i64>>,
    #[serde(default)]
    merge_on_pass: Option<bool>,
    #[serde(default)]
    budget: Option<Spanned<f64>>,
    #[serde(default)]
    script: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawItem {
    name: Spanned<String>,
    prompt: Spanned<String>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    repos: Option<Vec<Spanned<RawItemRepo>>>,
    #[serde(default)]
    agent: Option<Spanned<String>>,
    #[serde(default)]
    model: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<DurationText>>,
    #[serde(default)]
    retries: Option<Spanned<i64>>,
    #[serde(default)]
    merge_on_pass: Option<bool>,
    #[serde(default)]
    budget: Option<Spanned<f64>>,
}

// ---- checks ----

struct Checker<'a> {
    path: &'a Path,
    /// Where relative paths resolve (none for pasted text: they are refused).
    base_dir: Option<&'a Path>,
}

/// Settings after merging an item over the defaults.
#[derive(Default)]
struct Settings {
    agent: Option<String>,
    model: Option<String>,
    timeout: Option<Duration>,
    retries: u32,
    merge_on_pass: bool,
    budget_usd: Option<f64>,
    script: Option<String>,
}

impl Checker<'_> {
    fn at<T>(&self, s: &Spanned<T>, field: &str, message: impl std::fmt::Display) -> ConfigError {
        invalid(self.path, s.referenced.line(), s.referenced.column(), format!("{field}: {message}"))
    }

    fn batch(&self, raw: RawBatch) -> Result<BatchSpec, ConfigError> {
        let name = raw.name.value.trim().to_string();
        if name.is_empty() {
            return Err(self.at(&raw.name, "name", "must not be empty"));
        }
        let concurrency = match &raw.concurrency {
            None => 1,
            Some(c) if c.value >= 1 && c.value <= MAX_CONCURRENCY as i64 => c.value as u32,
            Some(c) => {
                return Err(self.at(
                    c,
                    "concurrency",
                    format!("must be between 1 and {MAX_CONCURRENCY}, got {}", c.value),
                ));
            }
        };
        let defaults = self.settings(raw.defaults.as_ref(), "defaults", &Settings::default())?;
        let mut repos = Vec::new();
        for (i, r) in raw.repos.iter().flatten().enumerate() {
            let field = format!("repos[{i}]");
            let repo = self.repo_entry(r, &field)?;
            if repos.iter().any(|x: &RepoSpec| x.path == repo.path && x.base_branch == repo.base_branch) {
                return Err(self.at(r, &field, "this repository is listed twice"));
            }
            repos.push(repo);
        }
        if raw.items.value.is_empty() {
            return Err(self.at(
                &raw.items,
                "items",
                "the batch has no items; add at least one `- name: … prompt: …`",
            ));
        }
        let mut items: Vec<ItemSpec> = Vec::new();
        for (i, it) in raw.items.value.iter().enumerate() {
            let item =
                self.item(&it.value, i, &defaults, &repos, (it.referenced.line(), it.referenced.column()))?;
            if items.iter().any(|x| x.name == item.name) {
                return Err(self.at(
                    &it.value.name,
                    &format!("items[{i}].name"),
                    format!("the name {:?} is used by an earlier item; item names must be unique", item.name),
                ));
            }
            items.push(item);
        }
        let budget_usd = match &raw.budget {
            None => None,
            Some(b) if ampsm_core::Money::from_usd(b.value).is_positive() => Some(b.value),
            Some(b) => {
                return Err(self.at(
                    b,
                    "budget",
                    format!("must be a positive amount in USD (for the whole batch), got {}", b.value),
                ));
            }
        };
        let executor = match &raw.executor {
            None => None,
            Some(e) => Some(e.value.trim().parse().map_err(|m: String| self.at(e, "executor", m))?),
        };
        Ok(BatchSpec { name, file: self.path.to_path_buf(), concurrency, budget_usd, executor, items })
    }

    fn repo_entry(&self, entry: &Spanned<RawItemRepo>, field: &str) -> Result<RepoSpec, ConfigError> {
        match &entry.value {
            RawItemRepo::Map(m) => self.repo(m, field),
            RawItemRepo::Path(p) => {
                let spanned = Spanned::new(p.clone(), entry.referenced, entry.defined);
                self.repo(&RawRepo { path: spanned, base_branch: None }, field)
            }
        }
    }

    fn repo(&self, raw: &RawRepo, field: &str) -> Result<RepoSpec, ConfigError> {
        let written = raw.path.value.trim().to_string();
        if written.is_empty() {
            return Err(self.at(&raw.path, &format!("{field}.path"), "must not be empty"));
        }
        let base_branch =
            raw.base_branch.as_deref().map(str::trim).filter(|b| !b.is_empty()).map(String::from);
        let p = Path::new(&written);
        let path = match self.base_dir {
            _ if p.is_absolute() => p.to_path_buf(),
            Some(dir) => dir.join(p),
            None => return Err(self.at(&raw.path, &format!("{field}.path"), relative_in_pasted(&written))),
        };
        Ok(RepoSpec {
            path: normalize(&path),
            written,
            field: field.to_string(),
            base_branch,
            line: raw.path.referenced.line(),
            column: raw.path.referenced.column(),
        })
    }

    fn settings(
        &self,
        raw: Option<&RawSettings>,
        prefix: &str,
        inherited: &Settings,
    ) -> Result<Settings, ConfigError> {
        let Some(raw) = raw else {
            return Ok(Settings { ..clone_settings(inherited) });
        };
        self.merge(
            prefix,
            inherited,
            SettingsRef {
                agent: raw.agent.as_ref(),
                model: raw.model.as_ref(),
                timeout: raw.timeout.as_ref(),
                retries: raw.retries.as_ref(),
                merge_on_pass: raw.merge_on_pass,
                budget: raw.budget.as_ref(),
                script: raw.script.as_deref(),
            },
        )
    }

    fn merge(
        &self,
        prefix: &str,
        inherited: &Settings,
        raw: SettingsRef<'_>,
    ) -> Result<Settings, ConfigError> {
        let mut out = clone_settings(inherited);
        if let Some(a) = raw.agent {
            let agent = a.value.trim().to_string();
            if !is_agent_name(&agent) {
                return Err(self.at(a, &format!("{prefix}.agent"), unknown_agent_text(&agent)));
            }
            out.agent = Some(agent);
        }
        if let Some(m) = raw.model {
            let model = m.value.trim().to_string();
            if model.is_empty() {
                return Err(self.at(
                    m,
                    &format!("{prefix}.model"),
                    "must not be empty (leave it out for the agent's default)",
                ));
            }
            out.model = Some(model);
        }
        if let Some(t) = raw.timeout {
            out.timeout = Some(t.value.timeout().map_err(|m| self.at(t, &format!("{prefix}.timeout"), m))?);
        }
        if let Some(r) = raw.retries {
            if r.value < 0 || r.value > MAX_RETRIES as i64 {
                return Err(self.at(
                    r,
                    &format!("{prefix}.retries"),
                    format!("must be between 0 and {MAX_RETRIES}, got {}", r.value),
                ));
            }
            out.retries = r.value as u32;
        }
        if let Some(m) = raw.merge_on_pass {
            out.merge_on_pass = m;
        }
        if let Some(b) = raw.budget {
            if !ampsm_core::Money::from_usd(b.value).is_positive() {
                return Err(self.at(
                    b,
                    &format!("{prefix}.budget"),
                    format!("must be a positive amount in USD, got {}", b.value),
                ));
            }
            out.budget_usd = Some(b.value);
        }
        if let Some(s) = raw.script {
            out.script = Some(s.to_string()).filter(|s| !s.trim().is_empty());
        }
        Ok(out)
    }

    fn item(
        &self,
        raw: &RawItem,
        i: usize,
        defaults: &Settings,
        top_repos: &[RepoSpec],
        (line, column): (u64, u64),
    ) -> Result<ItemSpec, ConfigError> {
        let prefix = format!("items[{i}]");
        let name = raw.name.value.trim().to_string();
        ampsm_core::validate_session_name(&name).map_err(|e| {
            self.at(&raw.name, &format!("{prefix}.name"), format!("{} ({})", e.reason, e.name))
        })?;
        let prompt = raw.prompt.value.trim().to_string();
        if prompt.is_empty() {
            return Err(self.at(&raw.prompt, &format!("{prefix}.prompt"), "must not be empty"));
        }
        let s = self.merge(
            &prefix,
            defaults,
            SettingsRef {
                agent: raw.agent.as_ref(),
                model: raw.model.as_ref(),
                timeout: raw.timeout.as_ref(),
                retries: raw.retries.as_ref(),
                merge_on_pass: raw.merge_on_pass,
                budget: raw.budget.as_ref(),
                script: raw.script.as_deref(),
            },
        )?;
        let repos = match &raw.repos {
            None => top_repos.to_vec(),
            Some(list) => {
                let mut out: Vec<RepoSpec> = Vec::new();
                for (j, entry) in list.iter().enumerate() {
                    let field = format!("{prefix}.repos[{j}]");
                    let mut repo = self.repo_entry(entry, &field)?;
                    if matches!(entry.value, RawItemRepo::Path(_)) {
                        // A bare path takes the base branch given to that repository at the top level.
                        repo.base_branch = top_repos
                            .iter()
                            .find(|t| t.path == repo.path)
                            .and_then(|t| t.base_branch.clone());
                    }
                    if out.iter().any(|x| x.path == repo.path && x.base_branch == repo.base_branch) {
                        return Err(self.at(entry, &field, "this repository is listed twice for the item"));
                    }
                    out.push(repo);
                }
                out
            }
        };
        if repos.is_empty() {
            return Err(self.at(
                &raw.name,
                &prefix,
                format!(
                    "item {name:?} has no repository to run on; add `repos:` at the top level or to the item"
                ),
            ));
        }
        Ok(ItemSpec {
            name,
            prompt,
            script: s.script,
            agent: s.agent,
            model: s.model,
            timeout: s.timeout,
            retries: s.retries,
            merge_on_pass: s.merge_on_pass,
            budget_usd: s.budget_usd,
            repos,
            line,
            column,
        })
    }
}

struct SettingsRef<'a> {
    agent: Option<&'a Spanned<String>>,
    model: Option<&'a Spanned<String>>,
    timeout: Option<&'a Spanned<DurationText>>,
    retries: Option<&'a Spanned<i64>>,
    merge_on_pass: Option<bool>,
    budget: Option<&'a Spanned<f64>>,
    script: Option<&'a str>,
}

fn clone_settings(s: &Settings) -> Settings {
    Settings {
        agent: s.agent.clone(),
        model: s.model.clone(),
        timeout: s.timeout,
        retries: s.retries,
        merge_on_pass: s.merge_on_pass,
        budget_usd: s.budget_usd,
        script: s.script.clone(),
    }
}

/// Removes `.` and resolves `..` lexically (the folder may not exist yet when the file is checked).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"name: "Authentication Features"
repos:
  - path: "./frontend"
    baseBranch: "main"
  - path: "./backend"
    baseBranch: "develop"
items:
  - name: "jwt-auth"
    prompt: "Implement JWT authentication middleware"
    script: "npm test"
  - name: "refresh-tokens"
    prompt: "Add refresh token rotation"
concurrency: 2
"#;

    fn parse(text: &str) -> Result<BatchSpec, String> {
        BatchSpec::parse(Path::new("/w/b.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn pasted_yaml_errors_name_the_pasted_yaml_and_the_line() {
        let err =
            BatchSpec::parse_pasted("name: x\nrepos: []\nitems: []\nbogus: 1\n").unwrap_err().to_string();
        assert!(err.starts_with("the pasted YAML, line 4: "), "{err}");
        assert!(err.contains("bogus"), "{err}");
        // A relative repository path has no folder to resolve against: refused at its line.
        let err = BatchSpec::parse_pasted(SEED).unwrap_err().to_string();
        assert!(
            err.starts_with("the pasted YAML, line 3: repos[0].path: \"./frontend\" is a relative path"),
            "{err}"
        );
        let ok = BatchSpec::parse_pasted(
            "name: x\nrepos:\n  - path: /abs/repo\nitems:\n  - name: a\n    prompt: p\n",
        );
        assert_eq!(ok.unwrap().plan()[0].1.path, Path::new("/abs/repo"));
    }

    #[test]
    fn the_seed_example_parses_as_written() {
        let b = parse(SEED).unwrap();
        assert_eq!(b.name, "Authentication Features");
        assert_eq!(b.concurrency, 2);
        let plan: Vec<(String, String, Option<String>)> = b
            .plan()
            .iter()
            .map(|(i, r)| (i.name.clone(), r.path.display().to_string(), r.base_branch.clone()))
            .collect();
        assert_eq!(
            plan,
            [
                ("jwt-auth".into(), "/w/frontend".into(), Some("main".into())),
                ("jwt-auth".into(), "/w/backend".into(), Some("develop".into())),
                ("refresh-tokens".into(), "/w/frontend".into(), Some("main".into())),
                ("refresh-tokens".into(), "/w/backend".into(), Some("develop".into())),
            ]
        );
        assert_eq!(b.items[0].script.as_deref(), Some("npm test"));
        assert_eq!(b.items[1].script, None);
        assert_eq!(b.items[0].retries, 0);
    }

    #[test]
    fn defaults_apply_and_items_override_them() {
        let b = parse(
            "name: x\nrepos: [r]\ndefaults:\n  agent: command\n  timeout: 2m\n  retries: 2\n  mergeOnPass: true\n  budget: 1.5\nitems:\n  - name: a\n    prompt: p\n  - name: b\n    prompt: q\n    agent: amp\n    model: smart\n    timeout: 30\n    retries: 0\n    mergeOnPass: false\n    repos: [\"../other\", {path: /abs, baseBranch: dev}]\n",
        )
        .unwrap();
        let (a, bb) = (&b.items[0], &b.items[1]);
        assert_eq!(a.agent.as_deref(), Some("command"));
        assert_eq!(a.timeout, Some(Duration::from_secs(120)));
        assert_eq!((a.retries, a.merge_on_pass, a.budget_usd), (2, true, Some(1.5)));
        assert_eq!(a.repos[0].path, PathBuf::from("/w/r"));
        assert_eq!(bb.agent.as_deref(), Some("amp"));
        assert_eq!(bb.model.as_deref(), Some("smart"));
        assert_eq!(bb.timeout, Some(Duration::from_secs(30)));
        assert_eq!((bb.retries, bb.merge_on_pass, bb.budget_usd), (0, false, Some(1.5)));
        assert_eq!(bb.repos.len(), 2);
        assert_eq!(bb.repos[0].path, PathBuf::from("/other"));
        assert_eq!(bb.repos[1].base_branch.as_deref(), Some("dev"));
        assert_eq!(b.concurrency, 1);
        assert_eq!(b.budget_usd, None);
    }

    #[test]
    fn a_top_level_budget_is_the_whole_batchs_and_must_be_positive() {
        let b = parse("name: x\nrepos: [r]\nbudget: 12.5\nitems:\n  - name: a\n    prompt: p\n").unwrap();
        assert_eq!(b.budget_usd, Some(12.5));
        assert_eq!(b.items[0].budget_usd, None);
        let e = parse("name: x\nrepos: [r]\nbudget: -1\nitems:\n  - name: a\n    prompt: p\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains(":3:9: budget: must be a positive amount"), "{text}");
    }

    #[test]
    fn unknown_fields_are_errors_with_their_position() {
        let err = parse("name: x\nrepos: [{path: r}]\nitems:\n  - name: a\n    prompt: p\n    retry: 3\n")
            .unwrap_err();
        assert!(err.starts_with("/w/b.yaml:6:"), "{err}");
        assert!(err.contains("unknown field") && err.contains("retry"), "{err}");
        let err = parse("name: x\nrepos:\n  - path: r\n    base: main\nitems: []\n").unwrap_err();
        assert!(err.contains("unknown field `base`, expected one of path, baseBranch"), "{err}");
        assert!(err.starts_with("/w/b.yaml:4:"), "{err}");
        assert!(err.contains("base"), "{err}");
        let err = parse("name: x\ncolour: red\nitems: []\n").unwrap_err();
        assert!(err.starts_with("/w/b.yaml:2:"), "{err}");
    }

    #[test]
    fn bad_values_name_line_column_and_field() {
        let err =
            parse("name: x\nrepos: [{path: r}]\nitems:\n  - name: a\n    prompt: p\n    timeout: soon\n")
                .unwrap_err();
        assert!(err.starts_with("/w/b.yaml:6:14: items[0].timeout: invalid duration"), "{err}");
        let err = parse("name: x\nrepos: [{path: r}]\nitems:\n  - name: a\n    prompt: p\n    agent: gpt\n")
            .unwrap_err();
        assert!(err.starts_with("/w/b.yaml:6:12: items[0].agent: unknown agent \"gpt\""), "{err}");
        let err = parse("name: x\nrepos: [{path: r}]\nconcurrency: 0\nitems:\n  - name: a\n    prompt: p\n")
            .unwrap_err();
        assert!(err.starts_with("/w/b.yaml:3:14: concurrency: must be between 1 and 64"), "{err}");
        let err = parse("name: x\nrepos: [{path: r}]\nexecutor: ray\nitems:\n  - name: a\n    prompt: p\n")
            .unwrap_err();
        assert!(
            err.starts_with(
                "/w/b.yaml:3:11: executor: unknown executor \"ray\" (expected one of: local, slurm"
            ),
            "{err}"
        );
        let ok = parse("name: x\nrepos: [{path: r}]\nexecutor: slurm\nitems:\n  - name: a\n    prompt: p\n");
        assert_eq!(ok.unwrap().executor, Some(ampsm_core::Executor::Slurm));
        let err = parse("name: x\nrepos: [{path: r}]\nitems:\n  - name: a b\n    prompt: p\n").unwrap_err();
        assert!(err.starts_with("/w/b.yaml:4:11: items[0].name:"), "{err}");
        let err = parse(
            "name: x\nrepos: [{path: r}]\nitems:\n  - name: a\n    prompt: p\n  - name: a\n    prompt: q\n",
        )
        .unwrap_err();
        assert!(err.starts_with("/w/b.yaml:6:11: items[1].name:") && err.contains("unique"), "{err}");
        let err = parse("name: x\nitems:\n  - name: a\n    prompt: p\n").unwrap_err();
        assert!(err.contains("items[0]: item \"a\" has no repository"), "{err}");
        let err = parse(
            "name: x\nrepos: [{path: r}]\ndefaults:\n  retries: 11\nitems:\n  - name: a\n    prompt: p\n",
        )
        .unwrap_err();
        assert!(err.starts_with("/w/b.yaml:4:12: defaults.retries: must be between 0 and 10"), "{err}");
        let err = parse("name: x\nrepos: [{path: r}]\nitems:\n  - name: a\n").unwrap_err();
        assert!(err.starts_with("/w/b.yaml:4:") && err.contains("prompt"), "{err}");
        let err = parse("").unwrap_err();
        assert!(err.starts_with("/w/b.yaml:1:1:"), "{err}");
    }
}
