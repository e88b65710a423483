//! Benchmark rows: a run (`bench_runs`: its kind, normalized plan, concurrency, budget, runner, abort flag,
//! stop reason and output folder) and its results (`bench_results`: one per problem × agent × repeat), with
//! the transitions the bench runner and `bench abort` make.
//!
//! Result statuses: `queued` → `running` → `resolved` | `unresolved` | `empty_patch` | `not_evaluated` |
//! `error` | `aborted`. Run statuses: `running` (recorded with its runner's pid from the start), then
//! `completed`, `failed` or `aborted`.

use crate::{Store, StoreError, money_column, text_column};
use ampsm_core::time::now_ms;
use ampsm_core::{BenchResultStatus, BenchRunStatus, IterationOutcome, Money};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

/// What a runner records before anything runs.
#[derive(Debug, Clone)]
pub struct NewBenchRun {
    pub id: String,
    /// `swe-bench-lite` or `custom`.
    pub kind: String,
    pub name: String,
    /// The normalized plan (JSON).
    pub config: String,
    pub concurrency: i64,
    pub budget_usd: Option<Money>,
    pub out_dir: Option<String>,
    /// The process that runs it.
    pub runner_pid: i64,
}

/// One problem × agent × repeat of a new run.
#[derive(Debug, Clone)]
pub struct NewBenchResult {
    pub id: String,
    pub seq: i64,
    pub instance_id: String,
    pub agent: String,
    pub model: Option<String>,
    pub repeat: i64,
}

/// A run as stored (without its plan; see [`Store::bench_run_config`]).
#[derive(Debug, Clone, Serialize)]
pub struct BenchRun {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub status: BenchRunStatus,
    pub concurrency: i64,
    pub budget_usd: Option<Money>,
    pub runner_pid: Option<i64>,
    pub abort_requested: bool,
    pub stop_reason: Option<String>,
    pub out_dir: Option<String>,
    /// Where its results run.
    pub executor: ampsm_core::Executor,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

impl BenchRun {
    /// Whether the run reached a final status.
    pub fn is_finished(&self) -> bool {
        self.status.is_finished()
    }
}

/// A result as stored.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub id: String,
    pub run_id: String,
    pub seq: i64,
    pub instance_id: String,
    pub agent: String,
    pub model: Option<String>,
    pub repeat: i64,
    pub session_id: Option<String>,
    pub status: BenchResultStatus,
    /// How the agent run ended (`success`, `timeout`, `budget`, …).
    pub agent_outcome: Option<IterationOutcome>,
    pub resolved: Option<bool>,
    pub model_patch: Option<String>,
    pub tests_passed: Option<i64>,
    pub tests_failed: Option<i64>,
    /// JSON: `{FAIL_TO_PASS: {success, failure}, PASS_TO_PASS: {success, failure}}` (SWE-bench), or the
    /// evaluation command's outcome (custom).
    pub test_report: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost_usd: Option<Money>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

impl BenchResult {
    /// Whether the result reached a final status.
    pub fn is_finished(&self) -> bool {
        self.status.is_finished()
    }

    /// `agent` or `agent/model`.
    pub fn config_label(&self) -> String {
        match &self.model {
            Some(m) => format!("{}/{m}", self.agent),
            None => self.agent.clone(),
        }
    }
}

/// How a result ended.
#[derive(Debug, Clone)]
pub struct ResultEnd {
    pub status: BenchResultStatus,
    pub agent_outcome: Option<IterationOutcome>,
    pub resolved: Option<bool>,
    pub model_patch: Option<String>,
    pub tests_passed: Option<i64>,
    pub tests_failed: Option<i64>,
    pub test_report: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost_usd: Option<Money>,
}

impl ResultEnd {
    /// An end in `status` with nothing else known yet.
    pub fn new(status: BenchResultStatus) -> ResultEnd {
        ResultEnd {
            status,
            agent_outcome: None,
            resolved: None,
            model_patch: None,
            tests_passed: None,
            tests_failed: None,
            test_report: None,
            error: None,
            duration_ms: None,
            total_tokens: None,
            cost_usd: None,
        }
    }
}

/// How many results are in each status.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct BenchCounts {
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    pub resolved: i64,
    pub unresolved: i64,
    pub empty_patch: i64,
    pub not_evaluated: i64,
    pub error: i64,
    pub aborted: i64,
}

impl BenchCounts {
    /// Counts `n` more results in `status`.
    pub fn add(&mut self, status: BenchResultStatus, n: i64) {
        self.total += n;
        let slot = match status {
            BenchResultStatus::Queued => &mut self.queued,
            BenchResultStatus::Running => &mut self.running,
            BenchResultStatus::Resolved => &mut self.resolved,
            BenchResultStatus::Unresolved => &mut self.unresolved,
            BenchResultStatus::EmptyPatch => &mut self.empty_patch,
            BenchResultStatus::NotEvaluated => &mut self.not_evaluated,
            BenchResultStatus::Error => &mut self.error,
            BenchResultStatus::Aborted => &mut self.aborted,
        };
        *slot += n;
    }

    /// Results in a final status.
    pub fn finished(&self) -> i64 {
        self.total - self.queued - self.running
    }

    /// Every count in words: "4/10 finished: 2 resolved, 1 unresolved, …; 1 running, 5 queued".
    pub fn summary(&self) -> String {
        format!(
            "{}/{} finished: {} resolved, {} unresolved, {} empty patch, {} not evaluated, {} error, {} aborted; \
             {} running, {} queued",
            self.finished(),
            self.total,
            self.resolved,
            self.unresolved,
            self.empty_patch,
            self.not_evaluated,
            self.error,
            self.aborted,
            self.running,
            self.queued
        )
    }

    /// "3/10", or "3/10 (4 not evaluated)": a result that was not evaluated is never shown as unresolved.
    pub fn resolved_text(&self) -> String {
        if self.not_evaluated > 0 {
            format!("{}/{} ({} not evaluated)", self.resolved, self.total, self.not_evaluated)
        } else {
            format!("{}/{}", self.resolved, self.total)
        }
    }
}

/// Tokens and cost recorded for one session.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionSpend {
    /// Input, output, cache read and cache write tokens.
    pub total_tokens: i64,
    /// `None` when some usage has no known price (never a partial sum shown as whole).
    pub cost_usd: Option<Money>,
}

const RUN_COLUMNS: &str = "id, kind, name, status, concurrency, budget_usd, runner_pid, abort_requested, stop_reason, \
     out_dir, created_at, started_at, ended_at, executor";

const RESULT_COLUMNS: &str = "id, run_id, seq, instance_id, agent, model, repeat, session_id, status, agent_outcome, \
     resolved, model_patch, tests_passed, tests_failed, test_report, error, duration_ms, total_tokens, cost_usd, \
     started_at, ended_at";

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<BenchRun> {
    Ok(BenchRun {
        id: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        status: text_column(r, 3)?,
        concurrency: r.get(4)?,
        budget_usd: money_column(r, 5)?,
        runner_pid: r.get(6)?,
        abort_requested: r.get::<_, i64>(7)? != 0,
        stop_reason: r.get(8)?,
        out_dir: r.get(9)?,
        created_at: r.get(10)?,
        started_at: r.get(11)?,
        ended_at: r.get(12)?,
        executor: text_column(r, 13)?,
    })
}

fn result_from_row(r: &Row<'_>) -> rusqlite::Result<BenchResult> {
    Ok(BenchResult {
        id: r.get(0)?,
        run_id: r.get(1)?,
        seq: r.get(2)?,
        instance_id: r.get(3)?,
        agent: r.get(4)?,
        model: r.get(5)?,
        repeat: r.get(6)?,
        session_id: r.get(7)?,
        status: text_column(r, 8)?,
        agent_outcome: crate::text_column_opt(r, 9)?,
        resolved: r.get::<_, Option<i64>>(10)?.map(|v| v != 0),
        model_patch: r.get(11)?,
        tests_passed: r.get(12)?,
        tests_failed: r.get(13)?,
        test_report: r.get(14)?,
        error: r.get(15)?,
        duration_ms: r.get(16)?,
        total_tokens: r.get(17)?,
        cost_usd: money_column(r, 18)?,
        started_at: r.get(19)?,
        ended_at: r.get(20)?,
    })
}

impl Store {
    /// Records a run (status `running` under its runner) and all its results (`queued`) in one transaction.
    pub fn insert_bench_run(
        &mut self,
        run: &NewBenchRun,
        results: &[NewBenchResult],
    ) -> Result<(), StoreError> {
        self.write_tx(|tx| {
            let now = now_ms();
            tx.execute(
                "INSERT INTO bench_runs (id, kind, name, config, status, concurrency, budget_usd, runner_pid, out_dir, \
                 created_at, started_at) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    run.id,
                    run.kind,
                    run.name,
                    run.config,
                    run.concurrency,
                    run.budget_usd.map(Money::usd),
                    run.runner_pid,
                    run.out_dir,
                    now
                ],
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO bench_results (id, run_id, seq, instance_id, agent, model, repeat, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued')",
            )?;
            for r in results {
                insert.execute(params![r.id, run.id, r.seq, r.instance_id, r.agent, r.model, r.repeat])?;
            }
            Ok(())
        })
    }

    /// A run by exact id.
    pub fn get_bench_run(&self, id: &str) -> Result<Option<BenchRun>, StoreError> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {RUN_COLUMNS} FROM bench_runs WHERE id = ?1"), [id], run_from_row)
            .optional()?)
    }

    /// The normalized plan a run was started with.
    pub fn bench_run_config(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT config FROM bench_runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?)
    }

    /// Every run, newest first.
    pub fn list_bench_runs(&self) -> Result<Vec<BenchRun>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM bench_runs ORDER BY created_at DESC, id"))?;
        let rows = stmt.query_map([], run_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The results of a run, in order.
    pub fn bench_results(&self, run_id: &str) -> Result<Vec<BenchResult>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {RESULT_COLUMNS} FROM bench_results WHERE run_id = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([run_id], result_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One result by id.
    pub fn get_bench_result(&self, id: &str) -> Result<Option<BenchResult>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {RESULT_COLUMNS} FROM bench_results WHERE id = ?1"),
                [id],
                result_from_row,
            )
            .optional()?)
    }

    /// Result counts per status.
    pub fn bench_counts(&self, run_id: &str) -> Result<BenchCounts, StoreError> {
        let mut c = BenchCounts::default();
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT status, COUNT(*) FROM bench_results WHERE run_id = ?1 GROUP BY status")?;
        let rows = stmt.query_map([run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (status, n) = row?;
            let status: BenchResultStatus = status.parse().map_err(StoreError::Corrupt)?;
            c.add(status, n);
        }
        Ok(c)
    }

    /// Marks a queued result running; `false` when it is no longer queued (an abort marked it).
    pub fn start_bench_result(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "UPDATE bench_results SET status = 'running', started_at = ?2, ended_at = NULL \
             WHERE id = ?1 AND status = 'queued'",
            params![id, now_ms()],
        )? > 0)
    }

    /// Records the session made for a result.
    pub fn set_bench_result_session(&mut self, id: &str, session_id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE bench_results SET session_id = ?2 WHERE id = ?1", params![id, session_id])?;
        Ok(())
    }

    /// Records how a result ended.
    pub fn finish_bench_result(&mut self, id: &str, end: &ResultEnd) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE bench_results SET status = ?2, agent_outcome = ?3, resolved = ?4, model_patch = ?5, \
             tests_passed = ?6, tests_failed = ?7, test_report = ?8, error = ?9, duration_ms = ?10, \
             total_tokens = ?11, cost_usd = ?12, ended_at = ?13 WHERE id = ?1",
            params![
                id,
                end.status.as_str(),
                end.agent_outcome.map(IterationOutcome::as_str),
                end.resolved.map(i64::from),
                end.model_patch,
                end.tests_passed,
                end.tests_failed,
                end.test_report,
                end.error,
                end.duration_ms,
                end.total_tokens,
                end.cost_usd.map(Money::usd),
                now_ms()
            ],
        )?;
        Ok(())
    }

    /// Puts a run back to work (`bench resume`): results that did not finish (`aborted`, or `running` under a
    /// runner that is gone) are queued again, keeping their earlier session on record; the run is `running`
    /// under `runner_pid`, without abort flag or stop reason, with `budget_usd` when one is given. Returns
    /// how many results were queued.
    pub fn resume_bench_run(
        &mut self,
        id: &str,
        runner_pid: i64,
        budget_usd: Option<Money>,
    ) -> Result<usize, StoreError> {
        self.write_tx(|tx| {
            let queued = tx.execute(
                "UPDATE bench_results SET status = 'queued', error = NULL, agent_outcome = NULL, started_at = NULL, \
                 ended_at = NULL WHERE run_id = ?1 AND status IN ('aborted', 'running')",
                [id],
            )?;
            tx.execute(
                "UPDATE bench_runs SET status = 'running', runner_pid = ?2, abort_requested = 0, stop_reason = NULL, \
                 ended_at = NULL, budget_usd = COALESCE(?3, budget_usd) WHERE id = ?1",
                params![id, runner_pid, budget_usd.map(Money::usd)],
            )?;
            let waiting: i64 = tx.query_row(
                "SELECT COUNT(*) FROM bench_results WHERE run_id = ?1 AND status = 'queued'",
                [id],
                |r| r.get(0),
            )?;
            Ok(queued.max(waiting as usize))
        })
    }

    /// What every session of a run's results cost so far (usage with a known price), earlier attempts
    /// included.
    pub fn bench_spend_usd(&self, run_id: &str) -> Result<Money, StoreError> {
        Ok(Money::from_usd(self.conn().query_row(
            "SELECT COALESCE(SUM(u.cost_usd), 0.0) FROM token_usage u JOIN sessions s ON s.id = u.session_id \
             WHERE s.bench_result_id IN (SELECT id FROM bench_results WHERE run_id = ?1)",
            [run_id],
            |r| r.get(0),
        )?))
    }

    /// How many sessions were made for a result so far (one per attempt).
    pub fn bench_result_sessions(&self, result_id: &str) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM sessions WHERE bench_result_id = ?1",
            [result_id],
            |r| r.get(0),
        )?)
    }

    /// The benchmark result session `session_id` was made for, if any.
    pub fn session_bench_result(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT bench_result_id FROM sessions WHERE id = ?1", [session_id], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Marks every queued result of the run aborted with `note`; returns how many.
    pub fn abort_queued_bench_results(&mut self, run_id: &str, note: &str) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE bench_results SET status = 'aborted', error = ?2, ended_at = ?3 \
             WHERE run_id = ?1 AND status = 'queued'",
            params![run_id, note, now_ms()],
        )?)
    }

    /// Marks every running result of the run aborted (its runner is gone); returns how many.
    pub fn abort_running_bench_results(&mut self, run_id: &str, note: &str) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE bench_results SET status = 'aborted', error = ?2, ended_at = ?3 \
             WHERE run_id = ?1 AND status = 'running'",
            params![run_id, note, now_ms()],
        )?)
    }

    /// Records where a run's results run.
    pub fn set_bench_executor(&mut self, id: &str, executor: ampsm_core::Executor) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE bench_runs SET executor = ?2 WHERE id = ?1", params![id, executor.as_str()])?;
        Ok(())
    }

    /// Records why a run stopped early (kept when already set).
    pub fn set_bench_stop_reason(&mut self, id: &str, reason: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE bench_runs SET stop_reason = COALESCE(stop_reason, ?2) WHERE id = ?1",
            params![id, reason],
        )?;
        Ok(())
    }

    /// Records the end of a run with its final status (and why it stopped early, when it did).
    pub fn finish_bench_run(
        &mut self,
        id: &str,
        status: BenchRunStatus,
        stop_reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE bench_runs SET status = ?2, stop_reason = COALESCE(stop_reason, ?3), runner_pid = NULL, \
             ended_at = ?4 WHERE id = ?1",
            params![id, status.as_str(), stop_reason, now_ms()],
        )?;
        Ok(())
    }

    /// Makes `pid` the runner of a running bench run, only if its runner is still `expected` (a
    /// compare-and-swap: another process may have ended or taken the run meanwhile). Returns whether it did.
    pub fn take_bench_runner(
        &mut self,
        id: &str,
        expected: Option<i64>,
        pid: i64,
    ) -> Result<bool, StoreError> {
        let changed = self.conn().execute(
            "UPDATE bench_runs SET runner_pid = ?1 WHERE id = ?2 AND status = 'running' AND runner_pid IS ?3",
            rusqlite::params![pid, id, expected],
        )?;
        Ok(changed == 1)
    }

    /// Sets the abort flag; returns whether the run exists.
    pub fn request_bench_abort(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute("UPDATE bench_runs SET abort_requested = 1 WHERE id = ?1", [id])? > 0)
    }

    /// Whether an abort was requested.
    pub fn bench_abort_requested(&self, id: &str) -> Result<bool, StoreError> {
        let v: Option<i64> = self
            .conn()
            .query_row("SELECT abort_requested FROM bench_runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        Ok(v.unwrap_or(0) != 0)
    }

    /// Agent pids of the run's sessions that are marked running.
    pub fn bench_agent_pids(&self, run_id: &str) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT s.agent_pid FROM sessions s JOIN bench_results r ON s.bench_result_id = r.id \
             WHERE r.run_id = ?1 AND s.status = 'running' AND s.agent_pid IS NOT NULL",
        )?;
        let rows = stmt.query_map([run_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Tokens and cost recorded for a session (a bench result's totals).
    pub fn bench_session_spend(&self, session_id: &str) -> Result<SessionSpend, StoreError> {
        let (tokens, cost, unpriced): (i64, f64, i64) = self.conn().query_row(
            "SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0), \
             COALESCE(SUM(cost_usd), 0), \
             COALESCE(SUM(CASE WHEN cost_usd IS NULL AND (input_tokens + output_tokens + cache_read_tokens \
                 + cache_write_tokens) > 0 THEN 1 ELSE 0 END), 0) \
             FROM token_usage WHERE session_id = ?1",
            [session_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(SessionSpend {
            total_tokens: tokens,
            cost_usd: if unpriced > 0 { None } else { Some(Money::from_usd(cost)) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_move_through_their_statuses() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        let run = NewBenchRun {
            id: id.into(),
            kind: "custom".into(),
            name: "b".into(),
            config: "{}".into(),
            concurrency: 2,
            budget_usd: Some(Money::from_usd(1.5)),
            out_dir: Some("/out".into()),
            runner_pid: 42,
        };
        let results: Vec<NewBenchResult> = (1..=3)
            .map(|i| NewBenchResult {
                id: format!("r{i}"),
                seq: i,
                instance_id: format!("p{i}"),
                agent: "claude".into(),
                model: Some("m".into()),
                repeat: 0,
            })
            .collect();
        s.insert_bench_run(&run, &results).unwrap();
        let got = s.get_bench_run(id).unwrap().unwrap();
        assert_eq!(
            (got.status, got.runner_pid, got.budget_usd),
            (BenchRunStatus::Running, Some(42), Some(Money::from_usd(1.5)))
        );
        assert!(s.start_bench_result("r1").unwrap());
        assert!(!s.start_bench_result("r1").unwrap(), "a running result cannot start again");
        s.finish_bench_result(
            "r1",
            &ResultEnd {
                agent_outcome: Some(IterationOutcome::Success),
                resolved: Some(true),
                model_patch: Some("diff".into()),
                duration_ms: Some(5),
                ..ResultEnd::new(BenchResultStatus::Resolved)
            },
        )
        .unwrap();
        assert!(s.start_bench_result("r2").unwrap());
        assert_eq!(s.abort_queued_bench_results(id, "not started").unwrap(), 1);
        assert_eq!(s.abort_running_bench_results(id, "runner gone").unwrap(), 1);
        let c = s.bench_counts(id).unwrap();
        assert_eq!((c.total, c.resolved, c.aborted, c.finished()), (3, 1, 2, 3));
        let all = s.bench_results(id).unwrap();
        assert_eq!(all[0].resolved, Some(true));
        assert_eq!(all[0].config_label(), "claude/m");
        assert_eq!(all[2].error.as_deref(), Some("not started"));

        assert!(!s.bench_abort_requested(id).unwrap());
        assert!(s.request_bench_abort(id).unwrap());
        assert!(s.bench_abort_requested(id).unwrap());
        s.set_bench_stop_reason(id, "budget").unwrap();
        s.finish_bench_run(id, BenchRunStatus::Aborted, Some("later")).unwrap();
        let got = s.get_bench_run(id).unwrap().unwrap();
        assert_eq!(
            (got.status, got.runner_pid, got.stop_reason.as_deref()),
            (BenchRunStatus::Aborted, None, Some("budget"))
        );
        assert_eq!(
            s.bench_session_spend("nope").unwrap(),
            SessionSpend { total_tokens: 0, cost_usd: Some(Money::ZERO) }
        );
    }
}
