//! Running an agent in a session (`iterate`): status `running`, the agent run with its timeout (the whole
//! process group is stopped on expiry), every stream line recorded as it arrives by a writer thread that
//! batches inserts, the work committed as `<prefix> <summary>` with `Amp-Thread:`/`Session:` trailers, the
//! session's test script run (always), usage priced once, and the final status taken from how the agent
//! ended.

use crate::notify::{Notification, NotifyEvent};
use crate::process::{own_pid, run_tag};
use crate::reports::metrics_error::MetricsError;
use crate::runs::budget::{BudgetMeter, BudgetPool, BudgetSignal, BudgetStatus, PoolMember};
use crate::runs::control::{PermissionAsk, RunWatch, WatchSpec};
use crate::runs::interrupt::Interrupt;
use crate::runs::script::{ScriptRun, run_script_tagged};
use crate::{Engine, EngineError};
use ampsm_agent::{AgentAdapter, RunReport, RunSpec, StreamItem};
use ampsm_core::event::OutputStream;
use ampsm_core::id::new_id;
use ampsm_core::pricing::CostSource;
use ampsm_core::time::now_ms;
use ampsm_core::{IterationOutcome, PermissionPolicy, RunOutcome, SessionStatus};
use ampsm_git::{FileStat, Git};
use ampsm_store::{
    EventRecord, Iteration, IterationEnd, LinePosition, NewIteration, Session, Store, UsageRow,
};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lines written per transaction at most.
const WRITE_BATCH: usize = 2_000;
/// How often the writer looks for new lines when it has nothing to write.
const POLL_EVERY: Duration = Duration::from_millis(10);
/// How often the background checkpointer folds the WAL into the database during a run. Every 250 ms it
/// competed with the writer for the two cores of a small machine (ingest-bench: 87k lines/s); every
/// second, 117–140k, with the same peak WAL size (the WAL is not restarted while the run writes).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(1000);
/// Lines buffered between the agent reader and the writer (backpressure beyond that).
const WRITE_QUEUE: usize = 8_192;

/// What `iterate` asks for.
#[derive(Debug, Clone, Default)]
pub struct IterateRequest {
    pub session: String,
    /// The message; defaults to the session's prompt.
    pub prompt: Option<String>,
    /// Overrides `amp.timeout`.
    pub timeout: Option<Duration>,
    /// A budget shared with other runs (a whole batch or benchmark run), counted on top of the session's.
    pub budget_pool: Option<std::sync::Arc<BudgetPool>>,
    /// Ctrl-C / SIGTERM of a foreground command: stops the agent (its work is committed, the iteration
    /// recorded `cancelled`) and the test script.
    pub interrupt: Option<Interrupt>,
}

/// What one iteration did.
#[derive(Debug, Clone, Serialize)]
pub struct IterationReport {
    pub session: Session,
    pub iteration: Iteration,
    pub outcome: RunOutcome,
    /// The commit made for the agent's changes, if there were any.
    pub commit: Option<String>,
    /// Files changed by this iteration's commits, with lines added and removed.
    pub files: Vec<FileStat>,
    pub tests: Option<ScriptRun>,
    pub usage: Vec<UsageRow>,
    /// Stream lines recorded.
    pub lines_recorded: usize,
    /// The session's budget and this run's spend against it, when the session has a budget.
    pub budget: Option<BudgetStatus>,
    /// `stop` (from any terminal or the dashboard) stopped the agent.
    pub stopped: bool,
}

impl IterationReport {
    /// Whether the agent run succeeded with none of its tool calls denied, and the test script (if any)
    /// passed.
    pub fn passed(&self) -> bool {
        self.iteration.outcome == Some(IterationOutcome::Success)
            && self.outcome.denials.is_empty()
            && self.tests.as_ref().is_none_or(ScriptRun::passed)
    }

    /// Why the iteration did not pass, in one line; `None` when it passed or was stopped on purpose
    /// (`stop`, Ctrl-C: the session's status note says so).
    pub fn failure(&self) -> Option<String> {
        if self.passed() || self.stopped {
            return None;
        }
        Some(match self.iteration.outcome {
            Some(IterationOutcome::Success) if !self.outcome.denials.is_empty() => format!(
                "the agent finished, but {}",
                self.session.status_note.clone().unwrap_or_else(|| "tool calls were denied".into())
            ),
            Some(IterationOutcome::Success) => {
                format!("tests failed: {}", self.tests.as_ref().map(|t| t.outcome()).unwrap_or_default())
            }
            other => format!(
                "the agent run ended with {}: {}",
                other.map_or("an error", IterationOutcome::as_str),
                self.iteration.error.clone().unwrap_or_default()
            ),
        })
    }
}

impl Engine {
    /// The run spec of a session's next run: model, thread to continue, timeout and the config's overrides.
    pub fn run_spec(
        &self,
        session: &Session,
        adapter: &dyn AgentAdapter,
        prompt: String,
        timeout: Option<Duration>,
    ) -> RunSpec {
        let mut spec = RunSpec::new(prompt, &session.worktree_path);
        spec.model = session.model.clone();
        spec.thread_id = match adapter.capabilities().continue_mode {
            ampsm_agent::ContinueMode::None => None,
            _ => session.thread_id.clone(),
        };
        spec.timeout = timeout.unwrap_or_else(|| self.config.agent_timeout());
        spec.permissions = self.session_policy(session);
        self.apply_agent_overrides(adapter, &mut spec);
        if let Some(thread) = &spec.thread_id {
            spec.prior_usage = self.thread_usage(session, thread).unwrap_or_default();
        }
        spec
    }

    /// The config's overrides for an agent: its program (`agents.<name>.path`, or `amp.path` for Amp),
    /// extra arguments and environment.
    pub fn apply_agent_overrides(&self, adapter: &dyn AgentAdapter, spec: &mut RunSpec) {
        let overrides = self.config.agents.get(adapter.name());
        spec.program = overrides
            .and_then(|a| a.path.clone())
            .or_else(|| if adapter.name() == "amp" { self.config.amp.path.clone() } else { None })
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from);
        if let Some(o) = overrides {
            spec.extra_args = o.args.clone();
            spec.env = o.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
    }

    /// The agent's credential check for a run, looking in the run's extra environment first, then the
    /// process's, and at the run's directory (project settings) and extra arguments (profiles,
    /// providers); never spends anything and never reads out the secret.
    pub fn credentials(&self, adapter: &dyn AgentAdapter, spec: &RunSpec) -> ampsm_agent::CredentialCheck {
        let extra = spec.env.clone();
        let lookup = move |k: &str| -> Option<String> {
            extra.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).or_else(|| std::env::var(k).ok())
        };
        let mut names: Vec<String> = spec.env.iter().map(|(k, _)| k.clone()).collect();
        names.extend(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
        names.sort();
        names.dedup();
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        adapter.check_credentials_in(&ampsm_agent::adapter::CredentialContext {
            env: &lookup,
            env_names: &names,
            home: &home,
            cwd: Some(&spec.cwd),
            args: &spec.extra_args,
        })
    }

    /// What earlier iterations of `thread` used, per model, with the cost the agent reported. Agents that
    /// report a resumed thread's running totals (Claude Code, Codex) subtract it to count a run once.
    fn thread_usage(
        &self,
        session: &Session,
        thread: &str,
    ) -> Result<Vec<ampsm_core::ModelUsage>, EngineError> {
        let on_thread: std::collections::HashSet<String> = self
            .store
            .list_iterations(&session.id)?
            .into_iter()
            .filter(|i| i.thread_id.as_deref() == Some(thread))
            .map(|i| i.id)
            .collect();
        let mut per_model: Vec<ampsm_core::ModelUsage> = Vec::new();
        for row in self.store.list_usage(&session.id)? {
            if !row.iteration_id.as_ref().is_some_and(|i| on_thread.contains(i)) {
                continue;
            }
            let reported = if row.cost_source == "agent" { row.cost_usd } else { None };
            match per_model.iter_mut().find(|m| m.model == row.model) {
                Some(m) => {
                    m.usage.add(&row.usage);
                    m.reported_cost_usd = match (m.reported_cost_usd, reported) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                }
                None => per_model.push(ampsm_core::ModelUsage {
                    model: row.model.clone(),
                    usage: row.usage,
                    reported_cost_usd: reported,
                }),
            }
        }
        Ok(per_model)
    }

    /// Runs the agent once in the session (see the module docs). `observer` sees every stream line as it
    /// arrives (for live output); it must be quick.
    pub fn iterate(
        &mut self,
        req: IterateRequest,
        observer: &mut (dyn FnMut(&StreamItem) + Send),
    ) -> Result<IterationReport, EngineError> {
        // From here to the end a signal stops the run in order (agent, then no test script) instead of
        // ending the program in the middle of its bookkeeping.
        let _busy = req.interrupt.as_ref().map(Interrupt::busy);
        let session = self.store.resolve_session(&req.session, false)?;
        let label = format!("{} ({})", session.name, session.id.short());
        let mut prep = self.prepare_run(session, req.prompt, req.timeout, req.budget_pool, "iterate")?;
        if let Some(i) = &req.interrupt {
            if i.interrupted() {
                // Stopped before anything ran: the iteration is closed as cancelled, nothing else happens.
                let end = IterationEnd {
                    error: Some("interrupted before the agent started".into()),
                    ..IterationEnd::new(IterationOutcome::Cancelled)
                };
                self.store.finish_iteration(&prep.iteration_id, &end)?;
                self.store.set_pids(&prep.session.id, None, None)?;
                self.store.set_status(
                    &prep.session.id,
                    SessionStatus::Idle,
                    Some("interrupted before the agent started"),
                )?;
                return Err(EngineError::Interrupted { session: label });
            }
            i.watch(prep.cancel.0.clone());
        }
        prep.interrupt = req.interrupt;
        let run = self.run_recorded(&mut prep, observer);
        if let Some(i) = &prep.interrupt {
            i.unwatch();
        }
        self.finish_run(prep, run)
    }

    /// Everything before an agent run: the checks (worktree, not already running, a prompt, the agent's
    /// program installed, credentials, budget left), the iteration row, status `running`.
    pub(crate) fn prepare_run(
        &mut self,
        session: Session,
        prompt: Option<String>,
        timeout: Option<Duration>,
        pool: Option<std::sync::Arc<BudgetPool>>,
        kind: &'static str,
    ) -> Result<PreparedRun, EngineError> {
        let Preflight { label, adapter, mut spec, prompt, policy, credential_warning } =
            self.preflight(&session, prompt, timeout)?;
        if let Some(text) = credential_warning {
            eprintln!("warning: {text}");
            // Best effort: the warning was shown; a failed note must not stop the run.
            let _ = self.store.record_note(&session.id, &format!("warning: {text}"));
        }
        // Every process of the run carries its tag, so `repair` can stop what left the group after a crash.
        spec.run_tag = Some(run_tag(session.id.as_str(), own_pid()));
        let worktree = PathBuf::from(&session.worktree_path);
        let meter = self.budget_meter(&session, &spec, pool.is_some())?;
        let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
        // A spent pool admits no new member.
        let member = match &pool {
            Some(p) => Some(p.join(cancel_tx.clone()).ok_or_else(|| MetricsError::PoolExhausted {
                session: label.clone(),
                reason: p.stop_reason().unwrap_or_default(),
            })?),
            None => None,
        };

        let git = Git::new(&worktree);
        let head_before = git.resolve_commit("HEAD")?.unwrap_or_default();
        let iteration_id = new_id();
        self.store.begin_iteration(
            &NewIteration {
                id: iteration_id.clone(),
                session_id: session.id.clone(),
                kind,
                prompt: Some(prompt.clone()),
                agent: session.agent.clone(),
                model: spec.model.clone(),
                thread_id: spec.thread_id.clone(),
                runner_pid: own_pid(),
                permissions: Some(policy),
            },
            &format!("running {}", session.agent),
        )?;
        Ok(PreparedRun {
            session,
            adapter,
            spec,
            meter,
            member,
            cancel: (cancel_tx, cancel_rx),
            iteration_id,
            head_before,
            prompt,
            worktree,
            interrupt: None,
            stop_requested: false,
            output_capped: false,
        })
    }

    /// Everything after an agent run: usage priced once, the end recorded, the work committed, the test
    /// script run, the final status set and notified.
    pub(crate) fn finish_run(
        &mut self,
        prep: PreparedRun,
        run: Result<(RunReport, usize), EngineError>,
    ) -> Result<IterationReport, EngineError> {
        let PreparedRun {
            session,
            spec,
            meter,
            member,
            iteration_id,
            head_before,
            prompt,
            worktree,
            interrupt,
            stop_requested,
            output_capped,
            ..
        } = prep;
        let stop = || stop_requested || interrupt.as_ref().is_some_and(Interrupt::interrupted);
        let (report, lines_recorded) = match run {
            Ok(r) => r,
            Err(e) => {
                let end = IterationEnd {
                    error: Some(e.to_string()),
                    ..IterationEnd::new(IterationOutcome::Failed)
                };
                self.store.finish_iteration(&iteration_id, &end)?;
                // The status first, then the pids: a repair in between must not take the run for orphaned.
                self.store.set_status(&session.id, SessionStatus::Error, Some(&e.to_string()))?;
                self.store.set_pids(&session.id, None, None)?;
                self.notify_session(&session, NotifyEvent::Failed, "error", &e.to_string());
                return Err(e);
            }
        };
        let session_stop = meter.as_ref().is_some_and(|m| m.stopped());
        let pool_stop = member.as_ref().map(|m| m.pool().clone()).filter(|p| p.exhausted());
        let budget_stop = report.exit.cancelled && (session_stop || pool_stop.is_some());
        self.store.set_pids(&session.id, Some(own_pid()), None)?;

        // Price the usage once and record the end of the run.
        let usage = self.price_usage(&report.outcome);
        for row in &usage {
            self.store.insert_usage(&session.id, &iteration_id, row)?;
        }
        let (cost_usd, cost_source) = total_cost(&usage);
        let run_usd = meter.as_ref().map(|m| m.run_usd());
        if let Some(m) = member {
            m.settle(cost_usd.map(ampsm_core::Money::from_usd).or(run_usd));
        }
        let outcome_word = if budget_stop {
            IterationOutcome::Budget
        } else if output_capped {
            IterationOutcome::Failed
        } else {
            outcome_word(&report)
        };
        // Stopped by the user (Ctrl-C, or `stop` from anywhere): not a failure of the agent, and nobody to
        // notify.
        let user_stop = stop() && outcome_word == IterationOutcome::Cancelled;
        let denials = &report.outcome.denials;
        let error = self.run_error(&RunEnd {
            report: &report,
            outcome: outcome_word,
            output_capped,
            user_stop,
            stop_requested,
            meter: meter.as_ref().filter(|_| budget_stop && session_stop),
            pool: pool_stop.as_ref().filter(|_| budget_stop),
            run_usd: cost_usd.map(ampsm_core::Money::from_usd).or(run_usd),
        });
        self.store.finish_iteration(
            &iteration_id,
            &IterationEnd {
                outcome: outcome_word,
                exit_code: report.exit.code,
                signal: report.exit.signal,
                error: error.clone(),
                awaiting_input: report.outcome.awaiting_input,
                thread_id: report.outcome.thread_id.clone(),
                cost_usd,
                cost_source: Some(cost_source),
                denials: denials.len() as i64,
            },
        )?;
        if let Some(t) = &report.outcome.thread_id {
            self.store.set_thread_id(&session.id, t)?;
        }

        // Commit whatever the agent left, even after a failure: the branch is the record of its work.
        let session_now = self.store.get_session(&session.id)?;
        let commit = self.commit_agent_work(&session_now, &iteration_id, &prompt, &report, outcome_word)?;
        let files = self.record_new_commits(&session_now, &iteration_id, &head_before)?;
        let leaks = self.leaks_since(&worktree, &head_before);
        if !leaks.is_empty() {
            let note = format!(
                "warning: the agent's committed change holds secret values: {}; the commit keeps them (it is \
                 the agent's work): check it before you merge or push",
                crate::runs::leaks::describe(&leaks)
            );
            eprintln!("{note}");
            self.store.record_note(&session.id, &note)?;
        }

        // The test script runs whether or not there was a commit (not after an interrupt: the user asked
        // to stop).
        let tests = match session.script.as_deref().filter(|s| !s.trim().is_empty() && !stop()) {
            Some(script) => Some(self.run_session_tests(&session, &spec, &iteration_id, script, &stop)?),
            None => None,
        };

        let after =
            AfterRun { user_stop, stop_requested, outcome: outcome_word, error, tests: tests.as_ref() };
        self.settle_after_run(&session, &report, &spec, after)?;

        let iteration = self
            .store
            .list_iterations(&session.id)?
            .into_iter()
            .find(|i| i.id == iteration_id)
            .ok_or_else(|| EngineError::Invalid("the iteration was not recorded".into()))?;
        Ok(IterationReport {
            session: self.store.get_session(&session.id)?,
            iteration,
            outcome: report.outcome,
            commit,
            files,
            tests,
            usage,
            lines_recorded,
            budget: meter.and_then(|m| m.status()),
            stopped: user_stop && stop_requested,
        })
    }

    /// Why a run did not succeed, in one line (`None` when it did): the output cap, a stop by the user, a
    /// budget, or what the agent or its exit said.
    fn run_error(&self, end: &RunEnd<'_>) -> Option<String> {
        if end.outcome == IterationOutcome::Success {
            return None;
        }
        Some(if end.output_capped {
            format!(
                "stopped: its output passed the limit of one run ({} lines or {} MiB; session.max_run_lines, \
                 session.max_run_mib); what it printed before is recorded and its work so far committed",
                self.config.session.max_run_lines, self.config.session.max_run_mib
            )
        } else if end.user_stop && end.stop_requested {
            "stopped by `amp-sessions stop`: the agent was stopped".to_string()
        } else if end.user_stop {
            "interrupted by the user: the agent was stopped".to_string()
        } else if let Some(m) = end.meter {
            format!(
                "stopped at the budget: ${:.4} of {} spent (this run ${:.4}); its work so far is committed",
                m.spent_usd(),
                ampsm_core::dollars(m.status().map(|s| s.budget_usd).unwrap_or_default()),
                m.run_usd()
            )
        } else if let Some(pool) = end.pool {
            format!(
                "stopped at the budget of {}: ${:.4} of {} spent (this run ${:.4}); its work so far is committed",
                pool.scope(),
                pool.spent_usd(),
                ampsm_core::dollars(pool.limit_usd()),
                end.run_usd.unwrap_or_default(),
            )
        } else {
            let exit = &end.report.exit;
            end.report.outcome.error.clone().or_else(|| exit.failure_reason()).unwrap_or_else(|| {
                format!("the agent ended with {}", exit.failure_reason().unwrap_or_else(|| "an error".into()))
            })
        })
    }

    /// Runs the session's test script after a run, recorded with the iteration. Its group is recorded like
    /// an agent's, and its processes carry the run's tag: `stop` and `repair` find them after a crash of
    /// this process.
    fn run_session_tests(
        &mut self,
        session: &Session,
        spec: &RunSpec,
        iteration_id: &str,
        script: &str,
        stop: &dyn Fn() -> bool,
    ) -> Result<ScriptRun, EngineError> {
        let worktree = PathBuf::from(&session.worktree_path);
        let tag = spec.run_tag.clone().unwrap_or_else(|| run_tag(session.id.as_str(), own_pid()));
        let store = &mut self.store;
        let mut on_spawn = |pid: u32| {
            let _ = store.set_pids(&session.id, Some(own_pid()), Some(pid as i64));
        };
        let run = run_script_tagged(&worktree, script, spec.timeout, stop, None, &mut on_spawn, &tag)
            .map_err(|source| EngineError::Io { path: worktree.clone(), source })?;
        self.store.set_iteration_test(
            iteration_id,
            run.exit_code.unwrap_or(-1),
            &run.output_tail,
            run.duration_ms as i64,
        )?;
        Ok(run)
    }

    /// The session's status after a run (idle, error, or awaiting input after denials or a question), with
    /// its note, its pids cleared, and the notification unless the user stopped it.
    fn settle_after_run(
        &mut self,
        session: &Session,
        report: &RunReport,
        spec: &RunSpec,
        after: AfterRun<'_>,
    ) -> Result<(), EngineError> {
        let denials = &report.outcome.denials;
        let (status, note) = if after.user_stop {
            let who = if after.stop_requested { "stopped by `amp-sessions stop`" } else { "interrupted" };
            (SessionStatus::Idle, format!("{who}: {}", crate::notify::STOPPED_NOTE))
        } else if after.outcome != IterationOutcome::Success {
            (SessionStatus::Error, after.error.unwrap_or_else(|| "the agent failed".into()))
        } else if !denials.is_empty() {
            // The agent finished, but not everything it tried was allowed: the user decides what next.
            (SessionStatus::AwaitingInput, denial_note(denials, spec.permissions))
        } else if report.outcome.awaiting_input {
            (SessionStatus::AwaitingInput, "the agent is waiting for your answer".to_string())
        } else {
            match after.tests {
                Some(t) if !t.passed() => (SessionStatus::Idle, format!("tests failed ({})", t.outcome())),
                Some(_) => (SessionStatus::Idle, "tests passed".to_string()),
                None => (SessionStatus::Idle, "iteration finished".to_string()),
            }
        };
        self.store.set_status(&session.id, status, Some(&note))?;
        self.store.set_pids(&session.id, None, None)?;
        let event = match (after.outcome, status) {
            (IterationOutcome::Budget, _) => NotifyEvent::Budget,
            (_, SessionStatus::Error) => NotifyEvent::Failed,
            (_, SessionStatus::AwaitingInput) => NotifyEvent::AwaitingInput,
            _ => NotifyEvent::Completed,
        };
        if !after.user_stop {
            self.notify_session(session, event, status.as_str(), &note);
        }
        Ok(())
    }

    /// The live cost meter of a run: needed when the session has a budget or the run shares a pool
    /// (`None` otherwise). Refuses to start when the session's recorded spend already reached its budget.
    fn budget_meter(
        &self,
        session: &Session,
        spec: &RunSpec,
        pooled: bool,
    ) -> Result<Option<BudgetMeter>, EngineError> {
        let budget = session.budget_usd.filter(|b| b.is_positive());
        if budget.is_none() && !pooled {
            return Ok(None);
        }
        let spent = match budget {
            Some(_) => self.store.session_spend(&session.id)?.known_usd,
            None => ampsm_core::Money::ZERO,
        };
        let prior_reported: ampsm_core::Money = spec
            .prior_usage
            .iter()
            .filter_map(|m| m.reported_cost_usd)
            .map(ampsm_core::Money::from_usd)
            .sum();
        let meter = BudgetMeter::new(self.config.price_table(), budget, spent, prior_reported);
        if let Some(budget) = budget.filter(|_| meter.exhausted_before_start()) {
            return Err(MetricsError::BudgetExhausted {
                session: format!("{} ({})", session.name, session.id.short()),
                short_id: session.id.short().to_string(),
                spent: spent.usd(),
                budget: budget.usd(),
            }
            .into());
        }
        Ok(Some(meter))
    }

    /// Sends a notification about a session (see [`crate::notify`]); never fails.
    pub fn notify_session(&self, session: &Session, event: NotifyEvent, status: &str, message: &str) {
        let n = Notification {
            event,
            subject: crate::notify::Subject::Session,
            session_id: session.id.to_string(),
            session_name: session.name.clone(),
            status: status.to_string(),
            message: message.to_string(),
        };
        crate::notify::notify(&self.config.notifications, &self.paths.home, &n);
    }

    /// The checks before an agent run, which change nothing: the worktree is there, no run is going, the
    /// policy is one the agent can follow, there is a prompt, the agent's program is installed ("not
    /// installed" comes first: a missing program is not a missing login), and its credentials. Missing
    /// credentials refuse the run when the agent's CLI would hang without them (Amp opens an interactive
    /// login and waits forever: [`AgentAdapter::credentials_required`]); for the others they are a warning
    /// for the caller to show (the check cannot see every way a CLI authenticates; the run timeout bounds
    /// it). `iterate` and the dashboard's "run now" both ask this.
    pub(crate) fn preflight(
        &self,
        session: &Session,
        prompt: Option<String>,
        timeout: Option<Duration>,
    ) -> Result<Preflight, EngineError> {
        let label = format!("{} ({})", session.name, session.id.short());
        if !Path::new(&session.worktree_path).join(".git").exists() {
            return Err(EngineError::WorktreeGone {
                session: label,
                short_id: session.id.short().to_string(),
                path: session.worktree_path.clone(),
            });
        }
        if matches!(session.status, SessionStatus::Running | SessionStatus::AwaitingInput)
            && let Some(pid) = session.runner_pid.filter(|p| crate::process::pid_alive(*p))
        {
            return Err(EngineError::Running { session: label, pid });
        }
        let adapter = ampsm_agent::adapter_for(&session.agent)?;
        let policy = self.session_policy(session);
        self.check_policy(adapter.as_ref(), policy)?;
        let prompt = prompt.or_else(|| session.prompt.clone()).filter(|p| !p.trim().is_empty());
        let Some(prompt) = prompt else {
            return Err(EngineError::NoPrompt { session: label });
        };
        let spec = self.run_spec(session, adapter.as_ref(), prompt.clone(), timeout);
        adapter.locate_program(&spec)?;
        let check = self.credentials(adapter.as_ref(), &spec);
        let credential_warning = match check.ok {
            true => None,
            false if adapter.credentials_required() => {
                return Err(EngineError::NotLoggedIn {
                    agent: adapter.name().to_string(),
                    message: check.message,
                });
            }
            false => Some(format!("{}; starting {} anyway", check.message, adapter.name())),
        };
        Ok(Preflight { label, adapter, spec, prompt, policy, credential_warning })
    }

    /// Runs the agent with a writer thread recording every line; returns the run report and the number of
    /// lines recorded.
    fn run_recorded(
        &mut self,
        prep: &mut PreparedRun,
        observer: &mut (dyn FnMut(&StreamItem) + Send),
    ) -> Result<(RunReport, usize), EngineError> {
        // The budget meter (or the shared pool) stops the agent (its whole process group) through this channel.
        let (cancel_tx, cancel_rx) = prep.cancel.clone();
        let recorder = Recorder::start(self.store.path(), &prep.session, &prep.iteration_id);
        let (answers_tx, answers_rx) = tokio::sync::mpsc::unbounded_channel();
        let clock = std::sync::Arc::new(ampsm_agent::RunClock::default());
        let watch = RunWatch::start(WatchSpec {
            db: self.store.path().to_path_buf(),
            session_id: prep.session.id.clone(),
            session_name: prep.session.name.clone(),
            iteration_id: prep.iteration_id.clone(),
            agent: prep.session.agent.clone(),
            ask_timeout: self.config.ask_timeout(),
            notifications: self.config.notifications.clone(),
            home: self.paths.home.clone(),
            cancel: cancel_tx.clone(),
            answers: answers_tx,
            clock: clock.clone(),
        });
        let asks = watch.requests();
        // Bounded output: past the limits the run is stopped and nothing more is recorded.
        let max_lines = self.config.session.max_run_lines;
        let max_bytes = self.config.session.max_run_mib.saturating_mul(1024 * 1024);
        let (mut lines, mut bytes) = (0u64, 0u64);
        let mut capped = false;
        let capped_ref = &mut capped;
        let cap_cancel = cancel_tx.clone();
        let cap_sink = recorder.sink();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| EngineError::Io { path: PathBuf::from("tokio runtime"), source })?;
        let spawn_sink = recorder.sink();
        let mut on_spawn = move |pid: u32| spawn_sink.spawned(pid);
        let sink = recorder.sink();
        let mut meter = prep.meter.as_mut();
        let member = prep.member.as_ref();
        let mut on_line = move |item: StreamItem| {
            if *capped_ref {
                return;
            }
            lines += 1;
            bytes += item.raw.len() as u64;
            if lines > max_lines || bytes > max_bytes {
                *capped_ref = true;
                let text = format!(
                    "the agent's output passed the limit of one run ({max_lines} lines, session.max_run_lines; \
                     {} MiB, session.max_run_mib): it was stopped; what it printed before is recorded",
                    max_bytes / (1024 * 1024)
                );
                eprintln!("warning: {text}");
                cap_sink.note(text);
                let _ = cap_cancel.send(true);
                return;
            }
            observer(&item);
            for ev in &item.events {
                if let ampsm_core::AgentEvent::PermissionRequest { request_id, call_id, tool, input } = ev {
                    let _ = asks.send(PermissionAsk {
                        request_id: request_id.clone(),
                        call_id: call_id.clone(),
                        tool: tool.clone(),
                        input: input.clone(),
                    });
                }
            }
            if let Some(m) = meter.as_deref_mut() {
                let mut signals = m.observe(&item.events);
                if let Some(member) = member {
                    signals.extend(member.report(m.run_usd()));
                }
                for signal in signals {
                    let (text, stop) = match signal {
                        BudgetSignal::Warn(t) | BudgetSignal::Unpriced(t) => (t, false),
                        BudgetSignal::Stop(t) => (t, true),
                    };
                    eprintln!("warning: {text}");
                    sink.note(text);
                    if stop {
                        let _ = cancel_tx.send(true);
                    }
                }
            }
            // Blocks when the writer is behind: the agent's pipe then fills and it waits. Memory stays bounded.
            sink.line(item);
        };
        let result = runtime.block_on(ampsm_agent::run_agent_with(
            prep.adapter.as_ref(),
            &prep.spec,
            Some(cancel_rx),
            ampsm_agent::RunControls { answers: Some(answers_rx), clock: Some(clock) },
            &mut on_spawn,
            &mut on_line,
        ));
        drop(on_line);
        drop(on_spawn);
        prep.output_capped = capped;
        let summary = watch.finish();
        prep.stop_requested = summary.stop_requested && result.as_ref().is_ok_and(|r| r.exit.cancelled);
        let written = recorder.finish()?;
        let report = result?;
        Ok((report, written))
    }

    /// Cost of each model's usage: the agent's own figure when it reports one, else the price table, else
    /// unknown.
    pub fn price_usage(&self, outcome: &RunOutcome) -> Vec<UsageRow> {
        let table = self.config.price_table();
        let now = now_ms();
        let mut rows: Vec<UsageRow> = outcome
            .usage
            .iter()
            .map(|m| {
                let (cost_usd, cost_source, price_entry) = match m.reported_cost_usd {
                    Some(c) => (Some(c), "agent".to_string(), None),
                    None => {
                        let est = table.cost(m.model.as_deref(), &m.usage);
                        match est.source {
                            CostSource::PriceTable { entry } => {
                                (est.usd, "price_table".to_string(), Some(entry))
                            }
                            _ => (None, "unknown".to_string(), None),
                        }
                    }
                };
                UsageRow {
                    iteration_id: None,
                    model: m.model.clone(),
                    usage: m.usage,
                    cost_usd,
                    cost_source,
                    price_entry,
                    recorded_at: now,
                }
            })
            .collect();
        // An agent that reports only a total cost: keep it on its own row.
        if let Some(total) = outcome.reported_cost_usd
            && !rows.iter().any(|r| r.cost_source == "agent")
            && rows.iter().all(|r| r.cost_usd.is_none())
        {
            if let Some(first) = rows.first_mut() {
                first.cost_usd = Some(total);
                first.cost_source = "agent".into();
            } else {
                rows.push(UsageRow {
                    iteration_id: None,
                    model: None,
                    usage: Default::default(),
                    cost_usd: Some(total),
                    cost_source: "agent".into(),
                    price_entry: None,
                    recorded_at: now,
                });
            }
        }
        rows
    }

    /// Commits everything left in the worktree as `<prefix> <summary>` with the thread and session
    /// trailers. Returns the new commit, or `None` when there was nothing to commit.
    fn commit_agent_work(
        &mut self,
        session: &Session,
        iteration_id: &str,
        prompt: &str,
        report: &RunReport,
        outcome_word: IterationOutcome,
    ) -> Result<Option<String>, EngineError> {
        let git = Git::new(&session.worktree_path);
        let summary = summarize(prompt);
        let mut message = format!("{} {summary}", self.config.git.commit_prefix.trim_end());
        if outcome_word != IterationOutcome::Success {
            message.push_str(&format!(" (agent run: {outcome_word})"));
        }
        if let Some(text) = report.outcome.final_text.as_deref().filter(|t| !t.trim().is_empty()) {
            message.push_str("\n\n");
            message.push_str(&clip_chars(text.trim(), 2_000));
        }
        let thread = report.outcome.thread_id.clone().or_else(|| session.thread_id.clone());
        let session_id = session.id.to_string();
        let mut trailers: Vec<(&str, &str)> = Vec::new();
        let agent_thread;
        if let Some(t) = &thread {
            if session.agent == "amp" || session.agent == "offline" {
                trailers.push(("Amp-Thread", t.as_str()));
            } else {
                agent_thread = format!("{} {t}", session.agent);
                trailers.push(("Agent-Thread", agent_thread.as_str()));
            }
        }
        trailers.push(("Session", session_id.as_str()));
        let sha = git.commit_all(&message, &trailers)?;
        if let Some(sha) = &sha {
            self.store.set_iteration_commit(iteration_id, sha)?;
        }
        Ok(sha)
    }

    /// Secret values the commits since `head_before` added, per file (none when git cannot say).
    fn leaks_since(&self, worktree: &Path, head_before: &str) -> Vec<crate::runs::leaks::Leak> {
        if head_before.is_empty() {
            return Vec::new();
        }
        let git = Git::new(worktree);
        match git.diff_patch(head_before, "HEAD") {
            Ok(diff) => {
                crate::runs::leaks::leaks_in_diff(&diff, &crate::runs::leaks::agents_redactor(&self.config))
            }
            Err(_) => Vec::new(),
        }
    }

    /// Records every commit made since `head_before` (the agent's own and ours) with its file changes.
    fn record_new_commits(
        &mut self,
        session: &Session,
        iteration_id: &str,
        head_before: &str,
    ) -> Result<Vec<FileStat>, EngineError> {
        let git = Git::new(&session.worktree_path);
        let Some(head) = git.resolve_commit("HEAD")? else { return Ok(Vec::new()) };
        if head == head_before || head_before.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = self.config.git.commit_prefix.trim_end().to_string();
        for c in git.commits_between(head_before, &head)? {
            let kind = if c.subject.starts_with(&prefix) { "agent" } else { "manual" };
            self.store.insert_commit(&session.id, &c.sha, Some(iteration_id), kind, &c.subject)?;
            let parent = c.parents.first().cloned().unwrap_or_else(|| head_before.to_string());
            for f in git.diff_numstat(&parent, Some(&c.sha))? {
                self.store.insert_file_change(
                    &session.id,
                    Some(iteration_id),
                    &c.sha,
                    &f.path,
                    f.old_path.as_deref(),
                    f.added,
                    f.removed,
                )?;
            }
        }
        Ok(git.diff_numstat(head_before, Some(&head))?)
    }
}

/// What [`Engine::preflight`] found: the run can start with this adapter, spec, prompt and policy.
pub(crate) struct Preflight {
    /// `name (short id)`, for messages.
    label: String,
    adapter: Box<dyn AgentAdapter>,
    spec: RunSpec,
    prompt: String,
    policy: PermissionPolicy,
    /// Credentials the check could not find, for an agent that may still find its own.
    credential_warning: Option<String>,
}

/// What [`Engine::prepare_run`] set up for one agent run.
pub(crate) struct PreparedRun {
    pub(crate) session: Session,
    pub(crate) adapter: Box<dyn AgentAdapter>,
    pub(crate) spec: RunSpec,
    pub(crate) meter: Option<BudgetMeter>,
    /// The run's place in a shared budget.
    pub(crate) member: Option<PoolMember>,
    /// Stops the agent (budget meter or pool): the pool holds a clone of the sender. The receiver is kept
    /// from the start, so a stop sent before the agent runs is not lost.
    pub(crate) cancel: (tokio::sync::watch::Sender<bool>, tokio::sync::watch::Receiver<bool>),
    pub(crate) iteration_id: String,
    pub(crate) head_before: String,
    pub(crate) prompt: String,
    pub(crate) worktree: PathBuf,
    /// The foreground command's Ctrl-C, when it has one.
    pub(crate) interrupt: Option<Interrupt>,
    /// `stop` (from any process) asked this run to stop, and it was stopped.
    pub(crate) stop_requested: bool,
    /// The run printed more than one run may record, and was stopped.
    pub(crate) output_capped: bool,
}

/// Records one run's stream lines: a writer thread with its own connection, fed through an
/// [`EventQueue`] by any number of [`RecorderSink`]s.
pub(crate) struct Recorder {
    queue: std::sync::Arc<EventQueue>,
    writer: std::thread::JoinHandle<Result<usize, EngineError>>,
    session_id: String,
    iteration_id: String,
}

/// The producer side of a [`Recorder`]; cheap to clone, usable from the agent's reader.
#[derive(Clone)]
pub(crate) struct RecorderSink {
    queue: std::sync::Arc<EventQueue>,
    session_id: String,
    iteration_id: String,
}

impl Recorder {
    pub(crate) fn start(db: &Path, session: &Session, iteration_id: &str) -> Recorder {
        let queue = std::sync::Arc::new(EventQueue::default());
        let rx = queue.clone();
        let db = db.to_path_buf();
        let writer_session = session.id.clone();
        let writer = std::thread::spawn(move || write_events(&db, &writer_session, rx));
        Recorder { queue, writer, session_id: session.id.to_string(), iteration_id: iteration_id.to_string() }
    }

    pub(crate) fn sink(&self) -> RecorderSink {
        RecorderSink {
            queue: self.queue.clone(),
            session_id: self.session_id.clone(),
            iteration_id: self.iteration_id.clone(),
        }
    }

    /// Waits until every queued line is written; returns how many were.
    pub(crate) fn finish(self) -> Result<usize, EngineError> {
        self.queue.close();
        match self.writer.join() {
            Ok(r) => r,
            Err(_) => Err(EngineError::Invalid("the event writer thread panicked".into())),
        }
    }
}

impl RecorderSink {
    /// Queues one stream line (blocks while the writer is [`WRITE_QUEUE`] lines behind).
    pub(crate) fn line(&self, item: StreamItem) {
        let stream = match item.stream {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        };
        let at = LinePosition {
            session_id: self.session_id.clone(),
            iteration_id: self.iteration_id.clone(),
            seq: item.seq as i64,
            ts: item.ts_ms,
            stream,
        };
        let rec = EventRecord::new(at, item.raw, item.truncated, &item.events);
        self.queue.push(WriterMsg::Line(Box::new(rec)));
    }

    /// Records the agent's pid once it started.
    pub(crate) fn spawned(&self, pid: u32) {
        self.queue.push(WriterMsg::Spawned(pid));
    }

    /// Records a note in the session's status history.
    pub(crate) fn note(&self, text: String) {
        self.queue.push(WriterMsg::Note(text));
    }
}

enum WriterMsg {
    Spawned(u32),
    Line(Box<EventRecord>),
    /// A note for the session's status history (budget warnings).
    Note(String),
}

/// The writer thread: takes whatever is queued (up to a batch) and writes it in one transaction.
fn write_events(
    db: &Path,
    session: &ampsm_core::SessionId,
    queue: std::sync::Arc<EventQueue>,
) -> Result<usize, EngineError> {
    let mut store = Store::open(db)?;
    // Checkpoints (which copy the WAL into the database and fsync it) run on a thread of their own, so
    // the writer never waits for the disk.
    let checkpointer = ampsm_store::Checkpointer::start(&store, CHECKPOINT_EVERY)?;
    let mut written = 0usize;
    let mut first_error: Option<EngineError> = None;
    let mut note = |e: EngineError| {
        if first_error.is_none() {
            first_error = Some(e);
        }
    };
    loop {
        let (pending, closed) = queue.take_all();
        if pending.is_empty() {
            if closed {
                break;
            }
            std::thread::sleep(POLL_EVERY);
            continue;
        }
        let mut batch: Vec<EventRecord> = Vec::with_capacity(pending.len());
        for m in pending {
            match m {
                WriterMsg::Line(rec) => batch.push(*rec),
                WriterMsg::Note(text) => {
                    if let Err(e) = store.record_note(session, &text) {
                        note(e.into());
                    }
                }
                WriterMsg::Spawned(pid) => {
                    if let Err(e) = store.set_pids(session, Some(own_pid()), Some(pid as i64)) {
                        note(e.into());
                    }
                }
            }
        }
        for chunk in batch.chunks(WRITE_BATCH) {
            match store.record_events(chunk) {
                Ok(s) => written += s.lines,
                Err(e) => note(e.into()),
            }
        }
    }
    checkpointer.stop();
    match first_error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// The queue between the agent's reader and the writer thread. The reader pushes under an uncontended
/// lock; the writer takes everything at once every few milliseconds. Neither wakes the other per line
/// (a channel whose receiver sleeps in `recv` turns every line into a context switch). When the writer
/// falls behind by [`WRITE_QUEUE`] lines the reader waits, so memory stays bounded.
#[derive(Default)]
struct EventQueue {
    state: std::sync::Mutex<QueueState>,
    drained: std::sync::Condvar,
}

#[derive(Default)]
struct QueueState {
    items: Vec<WriterMsg>,
    closed: bool,
}

impl EventQueue {
    fn push(&self, msg: WriterMsg) {
        let Ok(mut state) = self.state.lock() else { return };
        while state.items.len() >= WRITE_QUEUE && !state.closed {
            state = match self.drained.wait(state) {
                Ok(s) => s,
                Err(_) => return,
            };
        }
        state.items.push(msg);
    }

    fn take_all(&self) -> (Vec<WriterMsg>, bool) {
        let Ok(mut state) = self.state.lock() else { return (Vec::new(), true) };
        let items = std::mem::take(&mut state.items);
        let closed = state.closed;
        drop(state);
        self.drained.notify_all();
        (items, closed)
    }

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
        }
        self.drained.notify_all();
    }
}

/// `success`, `timeout`, `cancelled` or `failed`.
fn outcome_word(report: &RunReport) -> IterationOutcome {
    if report.exit.timed_out {
        IterationOutcome::Timeout
    } else if report.exit.cancelled {
        IterationOutcome::Cancelled
    } else if report.outcome.success {
        IterationOutcome::Success
    } else {
        IterationOutcome::Failed
    }
}

/// The total cost of an iteration and where it came from: `agent`, `price_table`, `mixed`, or `unknown`
/// (when any model's cost is unknown, the total is unknown too, never a partial sum shown as whole).
fn total_cost(rows: &[UsageRow]) -> (Option<f64>, String) {
    if rows.is_empty() {
        return (Some(0.0), "none".into());
    }
    if rows.iter().any(|r| r.cost_usd.is_none() && !r.usage.is_zero()) {
        return (None, "unknown".into());
    }
    let sum = rows.iter().filter_map(|r| r.cost_usd).sum();
    let sources: std::collections::BTreeSet<&str> =
        rows.iter().filter(|r| r.cost_usd.is_some()).map(|r| r.cost_source.as_str()).collect();
    let source = if sources.len() == 1 {
        sources.into_iter().next().unwrap_or("unknown").to_string()
    } else {
        "mixed".into()
    };
    (Some(sum), source)
}

/// What the session says after a run in which tool calls were denied: how many, which, and what to do.
fn denial_note(denials: &[ampsm_core::Denial], policy: ampsm_core::PermissionPolicy) -> String {
    let mut labels: Vec<String> = denials.iter().take(5).map(ampsm_core::Denial::label).collect();
    if denials.len() > 5 {
        labels.push(format!("and {} more", denials.len() - 5));
    }
    let calls = if denials.len() == 1 { "tool call was" } else { "tool calls were" };
    format!(
        "{} {calls} denied under the {policy} permission policy: {}; what they would have done is not in the commit",
        denials.len(),
        labels.join(", ")
    )
}

/// The first line of the prompt, at most 72 characters.
fn summarize(prompt: &str) -> String {
    let first = prompt.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("agent changes");
    clip_chars(first, 72)
}

fn clip_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// How a run ended, for the line that says why it did not succeed.
struct RunEnd<'a> {
    report: &'a RunReport,
    outcome: IterationOutcome,
    output_capped: bool,
    /// Stopped by the user (Ctrl-C or `stop`).
    user_stop: bool,
    /// Stopped by `stop` from anywhere.
    stop_requested: bool,
    /// The session's budget meter, when the session's budget stopped it.
    meter: Option<&'a BudgetMeter>,
    /// The shared pool, when a batch's or bench run's budget stopped it.
    pool: Option<&'a std::sync::Arc<BudgetPool>>,
    /// What the run cost.
    run_usd: Option<ampsm_core::Money>,
}

/// What decides the session's status after a run.
struct AfterRun<'a> {
    user_stop: bool,
    stop_requested: bool,
    outcome: IterationOutcome,
    error: Option<String>,
    tests: Option<&'a ScriptRun>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_one_short_line() {
        assert_eq!(summarize("\n  Fix the bug\nin detail"), "Fix the bug");
        assert_eq!(summarize(&"x".repeat(100)).chars().count(), 72);
        assert_eq!(summarize(""), "agent changes");
    }

    #[test]
    fn unknown_cost_is_never_summed_as_known() {
        let known = UsageRow {
            iteration_id: None,
            model: Some("gpt-5".into()),
            usage: ampsm_core::TokenUsage { input: 10, ..Default::default() },
            cost_usd: Some(1.0),
            cost_source: "price_table".into(),
            price_entry: None,
            recorded_at: 0,
        };
        let unknown =
            UsageRow { cost_usd: None, cost_source: "unknown".into(), model: None, ..known.clone() };
        assert_eq!(total_cost(std::slice::from_ref(&known)), (Some(1.0), "price_table".into()));
        assert_eq!(total_cost(&[known, unknown]).0, None);
    }
}
