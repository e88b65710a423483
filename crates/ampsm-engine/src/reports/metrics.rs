//! `metrics` and `timeline` of a session, computed from what was recorded (usage rows, paired tool calls,
//! iterations, the event log) and from git (lines changed), never from prose.
//!
//! Definitions (also in docs/exports.md):
//! - *agent time*: the sum over ended iterations of `ended_at − started_at`, i.e. from the moment the
//!   iteration was recorded (just before the agent started) to the moment its run was recorded as ended
//!   (after the agent and its process group were gone). The test script and the commit are not included.
//! - *tokens/s*: output tokens divided by agent time in seconds (`total_tokens_per_sec` counts every billed
//!   token: input, output, cache reads and writes).
//! - *cost/min*: the session's cost divided by agent time in minutes; unknown when the cost is unknown.
//! - *cost*: the sum of the usage rows' costs; unknown as soon as one row with tokens has no known cost
//!   (the known part is still given as `known_usd`).
//! - *tool success rate*: successful calls / calls that got a result; durations are those of calls with a
//!   result, p95 by the nearest-rank method.
//! - *files*: `git diff --numstat <base>...<branch>` (see [`FilesMetrics::range`]).

use crate::{Engine, EngineError};
use ampsm_core::{IterationOutcome, Money, SessionStatus, TokenUsage};
use ampsm_git::{FileStat, Git};
use ampsm_store::Session;
use ampsm_store::metrics::ErrorEvent;
use serde::Serialize;
use std::collections::BTreeMap;

/// Errors kept in full in the metrics (all are counted).
const ERRORS_KEPT: usize = 20;

/// Everything `metrics <s>` shows.
#[derive(Debug, Clone, Serialize)]
pub struct SessionMetrics {
    pub session: SessionHeader,
    pub iterations_count: usize,
    /// Agent time in milliseconds (see the module docs).
    pub agent_time_ms: i64,
    pub tokens: TokenTotals,
    /// Output tokens per second of agent time.
    pub tokens_per_sec: Option<f64>,
    /// All billed tokens per second of agent time.
    pub total_tokens_per_sec: Option<f64>,
    pub cost: CostSummary,
    /// Cost per minute of agent time; `None` when the cost is unknown or no time was spent.
    pub cost_per_min: Option<Money>,
    pub budget: Option<BudgetView>,
    pub models: Vec<ModelMetrics>,
    pub tool_calls: usize,
    /// Tool calls that were not allowed (permission policy, sandbox or user).
    pub tool_calls_denied: usize,
    pub tools: Vec<ToolMetrics>,
    pub files: FilesMetrics,
    pub errors: ErrorsMetrics,
    pub iterations: Vec<IterationMetrics>,
}

/// Which session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionHeader {
    pub id: String,
    pub name: String,
    pub agent: String,
    pub model: Option<String>,
    pub status: SessionStatus,
    pub branch: String,
    pub base_branch: String,
}

/// Token counts (input is uncached input).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct TokenTotals {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
    pub total: u64,
}

impl From<TokenUsage> for TokenTotals {
    fn from(u: TokenUsage) -> Self {
        TokenTotals {
            input: u.input,
            output: u.output,
            cache_read: u.cache_read,
            cache_write: u.cache_write,
            reasoning: u.reasoning,
            total: u.total(),
        }
    }
}

/// The session's cost and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct CostSummary {
    /// The total in USD; `None` (shown "unknown") when any usage with tokens has no known cost.
    pub usd: Option<Money>,
    /// The sum of the known costs.
    pub known_usd: Money,
    /// `agent`, `price_table`, `mixed`, `unknown`, or `none` (no usage recorded).
    pub source: String,
    /// The price table entries used (`builtin:<model>@<date>`, `config:<model>`).
    pub price_entries: Vec<String>,
    /// Usage rows with tokens but no price.
    pub unpriced_rows: usize,
}

/// Budget against spend.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetView {
    pub budget_usd: Money,
    /// Known spend.
    pub spent_usd: Money,
    pub percent: f64,
    pub remaining_usd: Money,
    /// Iterations stopped at the budget.
    pub stops: usize,
}

/// Usage and cost of one model over the session.
#[derive(Debug, Clone, Serialize)]
pub struct ModelMetrics {
    /// `None` when the agent did not say (Amp).
    pub model: Option<String>,
    pub tokens: TokenTotals,
    pub cost_usd: Option<f64>,
    pub cost_source: String,
    pub price_entries: Vec<String>,
}

/// Calls of one tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolMetrics {
    pub name: String,
    pub count: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Of the failed calls, those that were not allowed (policy, sandbox or user).
    pub denied: usize,
    /// Calls that never got a result.
    pub no_result: usize,
    /// succeeded / (succeeded + failed); `None` without results.
    pub success_rate: Option<f64>,
    pub avg_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<i64>,
    pub max_duration_ms: Option<i64>,
}

/// Lines changed, from git.
#[derive(Debug, Clone, Serialize)]
pub struct FilesMetrics {
    /// The revision range diffed (`<base>...<branch>`), when git could answer.
    pub range: Option<String>,
    /// Why there are no figures, when git could not answer (e.g. the branch was removed).
    pub note: Option<String>,
    pub files_changed: usize,
    pub lines_added: u64,
    pub lines_removed: u64,
    pub binary_files: usize,
    pub files: Vec<FileStat>,
}

/// Errors of the session.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorsMetrics {
    /// Iterations that did not succeed (failed, timeout, cancelled, budget, crashed).
    pub failed_iterations: usize,
    /// Error and retry events the agent reported.
    pub agent_errors: usize,
    /// The first of them.
    pub events: Vec<ErrorEvent>,
    /// The latest of them (what the dashboard shows; not in the JSON, which keeps the first).
    #[serde(skip)]
    pub latest_events: Vec<ErrorEvent>,
    /// Iteration errors, by iteration number.
    pub iteration_errors: Vec<(i64, String)>,
}

/// One iteration.
#[derive(Debug, Clone, Serialize)]
pub struct IterationMetrics {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub outcome: Option<IterationOutcome>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub error: Option<String>,
    /// `passed`, `failed`, or `None` when no test script ran.
    pub test: Option<String>,
    pub test_exit_code: Option<i64>,
    pub test_duration_ms: Option<i64>,
    pub tokens: TokenTotals,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<String>,
    pub commit_sha: Option<String>,
    /// The permission policy the run had.
    pub permissions: Option<String>,
    /// Tool calls of the run that were not allowed.
    pub denials: i64,
}

/// One entry of `timeline <s>`.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// Unix milliseconds.
    pub at: i64,
    /// `iteration-start`, `iteration-end`, `test`, `commit`, `status`, `note`, `merge`, `snapshot`,
    /// `snapshot-restored`.
    pub kind: String,
    pub summary: String,
    /// The iteration number, when the entry belongs to one.
    pub iteration: Option<i64>,
    /// A commit, merge id or snapshot ref, when there is one.
    pub reference: Option<String>,
}

/// `timeline <s>`.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub session: SessionHeader,
    pub entries: Vec<TimelineEntry>,
}

fn header(s: &Session) -> SessionHeader {
    SessionHeader {
        id: s.id.to_string(),
        name: s.name.clone(),
        agent: s.agent.clone(),
        model: s.model.clone(),
        status: s.status,
        branch: s.branch.clone(),
        base_branch: s.base_branch.clone(),
    }
}

/// Per-model accumulation: tokens, cost (`None` once a row has no price), cost sources, price entries.
type ModelAcc = (TokenUsage, Option<f64>, Vec<String>, Vec<String>);

/// Folds cost sources into one word.
fn combine_sources<'a>(sources: impl Iterator<Item = &'a str>) -> String {
    let set: std::collections::BTreeSet<&str> = sources.collect();
    match set.len() {
        0 => "none".into(),
        1 => set.into_iter().next().unwrap_or("none").to_string(),
        _ if set.contains("unknown") => "unknown".into(),
        _ => "mixed".into(),
    }
}

impl Engine {
    /// The metrics of a session (id, id prefix or name; removed sessions too).
    pub fn metrics(&self, reference: &str) -> Result<SessionMetrics, EngineError> {
        let s = self.store.resolve_session(reference, true)?;
        let iterations = self.store.list_iterations(&s.id)?;
        let usage = self.store.list_usage(&s.id)?;

        // Tokens and cost, overall and per model.
        let mut total = TokenUsage::default();
        let mut per_model: BTreeMap<Option<String>, ModelAcc> = BTreeMap::new();
        let mut known_usd = Money::ZERO;
        let mut unpriced_rows = 0usize;
        let mut entries: Vec<String> = Vec::new();
        for row in &usage {
            total.add(&row.usage);
            let slot = per_model.entry(row.model.clone()).or_insert((
                TokenUsage::default(),
                Some(0.0),
                vec![],
                vec![],
            ));
            slot.0.add(&row.usage);
            match row.cost_usd {
                Some(c) => {
                    known_usd += Money::from_usd(c);
                    slot.1 = slot.1.map(|v| v + c);
                }
                None if !row.usage.is_zero() => {
                    unpriced_rows += 1;
                    slot.1 = None;
                }
                None => {}
            }
            let source = if row.cost_usd.is_none() && !row.usage.is_zero() {
                "unknown"
            } else {
                row.cost_source.as_str()
            };
            if !slot.2.iter().any(|x| x == source) {
                slot.2.push(source.to_string());
            }
            if let Some(e) = &row.price_entry {
                if !slot.3.contains(e) {
                    slot.3.push(e.clone());
                }
                if !entries.contains(e) {
                    entries.push(e.clone());
                }
            }
        }
        let models: Vec<ModelMetrics> = per_model
            .into_iter()
            .map(|(model, (u, cost, sources, price_entries))| ModelMetrics {
                model,
                tokens: u.into(),
                cost_usd: cost,
                cost_source: combine_sources(sources.iter().map(String::as_str)),
                price_entries,
            })
            .collect();
        let cost_usd = if unpriced_rows > 0 { None } else { Some(known_usd) };
        let cost = CostSummary {
            usd: cost_usd,
            known_usd,
            source: combine_sources(models.iter().map(|m| m.cost_source.as_str())),
            price_entries: entries,
            unpriced_rows,
        };

        // Time.
        let agent_time_ms: i64 =
            iterations.iter().filter_map(|i| i.ended_at.map(|e| (e - i.started_at).max(0))).sum();
        let secs = agent_time_ms as f64 / 1000.0;
        let per_sec = |n: u64| (agent_time_ms > 0).then(|| n as f64 / secs);
        let cost_per_min = cost_usd.and_then(|c| (agent_time_ms > 0).then(|| c / (secs / 60.0)));

        // Tools, counted in SQL (a session of 100,000 lines has tens of thousands of calls).
        let stats = self.store.tool_stats(&s.id)?;
        let tool_calls: usize = stats.iter().map(|t| t.count).sum();
        let tool_calls_denied: usize = stats.iter().map(|t| t.denied).sum();
        let tools: Vec<ToolMetrics> = stats
            .into_iter()
            .map(|t| {
                let with_result = t.succeeded + t.failed;
                ToolMetrics {
                    success_rate: (with_result > 0).then(|| t.succeeded as f64 / with_result as f64),
                    avg_duration_ms: (t.durations > 0)
                        .then(|| t.duration_sum_ms.unwrap_or(0) as f64 / t.durations as f64),
                    p95_duration_ms: t.p95_duration_ms,
                    max_duration_ms: t.max_duration_ms,
                    name: t.name,
                    count: t.count,
                    succeeded: t.succeeded,
                    failed: t.failed,
                    denied: t.denied,
                    no_result: t.no_result,
                }
            })
            .collect();

        // Errors.
        let found = self.store.error_summary(&s.id, ERRORS_KEPT)?;
        let failed: Vec<&ampsm_store::Iteration> =
            iterations.iter().filter(|i| i.outcome.is_some_and(|o| o != IterationOutcome::Success)).collect();
        let errors = ErrorsMetrics {
            failed_iterations: failed.len(),
            agent_errors: found.count,
            events: found.first,
            latest_events: found.latest,
            iteration_errors: failed
                .iter()
                .map(|i| {
                    (
                        i.seq,
                        i.error
                            .clone()
                            .unwrap_or_else(|| i.outcome.map(|o| o.to_string()).unwrap_or_default()),
                    )
                })
                .collect(),
        };

        // Per iteration.
        let per_iteration: Vec<IterationMetrics> = iterations
            .iter()
            .map(|i| {
                let mut tokens = TokenUsage::default();
                for row in usage.iter().filter(|r| r.iteration_id.as_deref() == Some(i.id.as_str())) {
                    tokens.add(&row.usage);
                }
                IterationMetrics {
                    seq: i.seq,
                    id: i.id.clone(),
                    kind: i.kind.clone(),
                    started_at: i.started_at,
                    ended_at: i.ended_at,
                    duration_ms: i.ended_at.map(|e| (e - i.started_at).max(0)),
                    outcome: i.outcome,
                    exit_code: i.exit_code,
                    signal: i.signal,
                    error: i.error.clone(),
                    test: i.test_exit_code.map(|c| if c == 0 { "passed".into() } else { "failed".into() }),
                    test_exit_code: i.test_exit_code,
                    test_duration_ms: i.test_duration_ms,
                    tokens: tokens.into(),
                    cost_usd: i.cost_usd,
                    cost_source: i.cost_source.clone(),
                    commit_sha: i.commit_sha.clone(),
                    permissions: i.permissions.clone(),
                    denials: i.denials,
                }
            })
            .collect();

        let budget = s.budget_usd.map(|b| BudgetView {
            budget_usd: b,
            spent_usd: known_usd,
            percent: if b.is_positive() { known_usd.percent_of(b) } else { 0.0 },
            remaining_usd: known_usd.left_of(b),
            stops: iterations.iter().filter(|i| i.outcome == Some(IterationOutcome::Budget)).count(),
        });

        Ok(SessionMetrics {
            session: header(&s),
            iterations_count: iterations.len(),
            agent_time_ms,
            tokens: total.into(),
            tokens_per_sec: per_sec(total.output),
            total_tokens_per_sec: per_sec(total.total()),
            cost,
            cost_per_min,
            budget,
            models,
            tool_calls,
            tool_calls_denied,
            tools,
            files: self.files_from_git(&s)?,
            errors,
            iterations: per_iteration,
        })
    }

    /// Reads the agent's errors of the longest sessions once (those of at least 5,000 stream lines, the
    /// 64 longest), so that their metrics later read only the lines added since (see
    /// [`ampsm_store::Store::error_summary`]). The dashboard calls it in the background when it starts, so
    /// the Overview of a session of 100,000 lines answers fast from its first view. Returns how many
    /// sessions were read.
    pub fn warm_metrics(&self) -> Result<usize, EngineError> {
        let sessions = self.store.long_sessions(5_000, 64)?;
        for s in &sessions {
            self.store.error_summary(s, ERRORS_KEPT)?;
        }
        Ok(sessions.len())
    }

    /// The tool calls of a session that were not allowed, in call order (only those are read).
    pub fn denied_tool_calls(
        &self,
        session: &ampsm_core::SessionId,
    ) -> Result<Vec<ampsm_store::ToolCall>, EngineError> {
        Ok(self.store.denied_tool_calls(session)?)
    }

    /// Lines changed by the session, from `git diff --numstat <base>...<branch>` in its repository. After a
    /// merge the range is the merged head against the base as it was then; otherwise the session branch
    /// against its base branch (or the commit it started from, when the base branch is gone).
    pub fn files_from_git(&self, s: &Session) -> Result<FilesMetrics, EngineError> {
        let empty = |note: String| FilesMetrics {
            range: None,
            note: Some(note),
            files_changed: 0,
            lines_added: 0,
            lines_removed: 0,
            binary_files: 0,
            files: Vec::new(),
        };
        let repo = std::path::Path::new(&s.repo_path);
        if !repo.exists() {
            return Ok(empty(format!("the repository {} is gone", s.repo_path)));
        }
        let git = Git::new(repo);
        let merged = self.store.list_merges(&s.id)?.into_iter().rev().find(|m| {
            m.result == ampsm_core::MergeResult::Merged && m.base_before.is_some() && m.session_head.is_some()
        });
        let (from, to) = match merged {
            Some(m) => (m.base_before.unwrap_or_default(), m.session_head.unwrap_or_default()),
            None => {
                let branch_ok = matches!(git.resolve_commit(&s.branch), Ok(Some(_)));
                if !branch_ok {
                    return Ok(empty(format!(
                        "the session branch {} no longer exists, so git cannot count its lines",
                        s.branch
                    )));
                }
                let base = if matches!(git.resolve_commit(&s.base_branch), Ok(Some(_))) {
                    s.base_branch.clone()
                } else {
                    s.base_commit.clone()
                };
                (base, s.branch.clone())
            }
        };
        let range = format!("{from}...{to}");
        let files = match git.diff_numstat(&range, None) {
            Ok(f) => f,
            Err(e) => return Ok(empty(format!("git diff --numstat {range} failed: {e}"))),
        };
        Ok(FilesMetrics {
            range: Some(range),
            note: None,
            files_changed: files.len(),
            lines_added: files.iter().filter_map(|f| f.added).sum(),
            lines_removed: files.iter().filter_map(|f| f.removed).sum(),
            binary_files: files.iter().filter(|f| f.binary).count(),
            files,
        })
    }

    /// The timeline of a session: iterations (start, end, tests), commits, status changes and notes,
    /// merges and snapshots, in time order.
    pub fn timeline(&self, reference: &str) -> Result<Timeline, EngineError> {
        let s = self.store.resolve_session(reference, true)?;
        let iterations = self.store.list_iterations(&s.id)?;
        let seq_of = |id: Option<&str>| -> Option<i64> {
            id.and_then(|id| iterations.iter().find(|i| i.id == id)).map(|i| i.seq)
        };
        let mut entries = Vec::new();
        let mut push =
            |at: i64, kind: &str, summary: String, iteration: Option<i64>, reference: Option<String>| {
                entries.push(TimelineEntry { at, kind: kind.to_string(), summary, iteration, reference })
            };
        push(
            s.created_at,
            "created",
            format!("session created on {} from {}", s.branch, s.base_branch),
            None,
            None,
        );
        let commits = self.store.list_commits(&s.id)?;
        for i in &iterations {
            let prompt = i.prompt.as_deref().map(|p| clip(p, 80)).unwrap_or_default();
            push(
                i.started_at,
                "iteration-start",
                format!(
                    "iteration {} started ({}{}): {prompt}",
                    i.seq,
                    i.agent,
                    i.model.as_deref().map(|m| format!(", {m}")).unwrap_or_default()
                ),
                Some(i.seq),
                Some(i.id.clone()),
            );
            if let Some(end) = i.ended_at {
                let mut summary =
                    format!("iteration {} ended: {}", i.seq, i.outcome.map_or("?", IterationOutcome::as_str));
                if let Some(c) = i.exit_code {
                    summary.push_str(&format!(", exit {c}"));
                }
                if let Some(e) = &i.error {
                    summary.push_str(&format!(" — {}", clip(e, 120)));
                }
                push(end, "iteration-end", summary, Some(i.seq), Some(i.id.clone()));
                if let Some(code) = i.test_exit_code {
                    // The test script runs after the iteration's commit; only its length is stored, so it
                    // is placed at the commit (or the end of the run) plus that length.
                    let after = commits
                        .iter()
                        .filter(|c| c.iteration_id.as_deref() == Some(i.id.as_str()))
                        .map(|c| c.created_at)
                        .max()
                        .unwrap_or(end)
                        .max(end);
                    push(
                        after + i.test_duration_ms.unwrap_or(0).max(1),
                        "test",
                        format!(
                            "iteration {} tests {} (exit {code}{})",
                            i.seq,
                            if code == 0 { "passed" } else { "failed" },
                            i.test_duration_ms.map(|d| format!(", {d} ms")).unwrap_or_default()
                        ),
                        Some(i.seq),
                        None,
                    );
                }
            }
        }
        for c in commits {
            push(
                c.created_at,
                "commit",
                format!("{} commit {}: {}", c.kind, &c.sha[..c.sha.len().min(12)], c.subject),
                seq_of(c.iteration_id.as_deref()),
                Some(c.sha),
            );
        }
        for st in self.store.status_history(&s.id)? {
            let is_note = st.from.as_deref() == Some(st.to.as_str());
            let summary = if is_note {
                st.reason.clone().unwrap_or_default()
            } else {
                format!(
                    "{} → {}{}",
                    st.from.as_deref().unwrap_or("-"),
                    st.to,
                    st.reason.as_deref().map(|r| format!(": {}", clip(r, 120))).unwrap_or_default()
                )
            };
            push(st.at, if is_note { "note" } else { "status" }, summary, None, None);
        }
        for m in self.store.list_merges(&s.id)? {
            let mut summary = format!("merge ({}) into {}: {}", m.strategy, m.base_branch, m.result);
            if !m.conflicts.is_empty() {
                summary.push_str(&format!(", conflicts in {}", m.conflicts.join(", ")));
            }
            push(m.created_at, "merge", summary, None, Some(m.id));
        }
        for snap in self.store.list_snapshots(&s.id)? {
            push(
                snap.created_at,
                "snapshot",
                format!("snapshot {} of {} ({})", snap.seq, &snap.sha[..snap.sha.len().min(12)], snap.reason),
                None,
                Some(snap.refname.clone()),
            );
            if let Some(at) = snap.restored_at {
                push(
                    at,
                    "snapshot-restored",
                    format!("snapshot {} restored", snap.seq),
                    None,
                    Some(snap.refname),
                );
            }
        }
        if let Some(at) = s.removed_at {
            push(at, "removed", "session removed".into(), None, None);
        }
        // Stable: entries at the same millisecond keep the order they were gathered in.
        entries.sort_by_key(|e| e.at);
        Ok(Timeline { session: header(&s), entries })
    }
}

fn clip(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        format!("{}…", one_line.chars().take(max.saturating_sub(1)).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_fold_into_one_word() {
        assert_eq!(combine_sources(["agent", "agent"].into_iter()), "agent");
        assert_eq!(combine_sources(["agent", "price_table"].into_iter()), "mixed");
        assert_eq!(combine_sources(["unknown", "price_table"].into_iter()), "unknown");
        assert_eq!(combine_sources(std::iter::empty()), "none");
    }
}
