//! Taking in a worker's result: each attempt becomes a session of this store as if it had run here.
//!
//! For every attempt the worker reports, in order: its branch is fetched from the attempt's git bundle
//! into the user's repository (under a temporary ref), a session of the same name is made with its
//! branch at the worker's last commit and its recorded base at the task's base commit, the attempt's rows
//! are copied from the worker's store file, and the temporary ref goes. Then the item ends with the
//! worker's status, its last attempt as its session, and with `mergeOnPass` a passing item is merged
//! through the normal review-and-merge path, one merge at a time.
//!
//! A session of the attempt's name that an earlier coordinator made for this item (it died in the
//! middle of taking the result in) is replaced, so taking a result in twice makes it once.

use super::{SessionBundle, TaskResult, read_json};
use crate::jobs::batch::merge_in_turn;
use crate::sessions::CreateSession;
use crate::{Engine, EngineError};
use ampsm_core::{BatchItemStatus, MergeResult, Money};
use ampsm_git::Git;
use ampsm_store::batches::BatchItem;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What taking a result in did.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub status: BatchItemStatus,
    pub error: Option<String>,
    pub merged: bool,
    /// The sessions made here, one per attempt.
    pub sessions: Vec<String>,
    /// Agent event rows copied.
    pub events: usize,
    pub took_ms: u64,
}

/// Reads `result.json` of a result folder.
pub fn read_result(dir: &Path) -> Result<TaskResult, EngineError> {
    read_json(&dir.join("result.json"), "result file")
}

impl Engine {
    /// Takes in the result in `dir` for `item` (see the module docs) and ends the item; an item that
    /// already ended (an abort marked it) keeps its status and is not merged: only its sessions are made.
    pub(crate) fn ingest_result(
        &mut self,
        item: &BatchItem,
        base_commit: &str,
        dir: &Path,
    ) -> Result<Ingested, EngineError> {
        let ended = self.store.get_batch_item(&item.id)?.filter(|i| i.is_finished());
        let started = Instant::now();
        let result = read_result(dir)?;
        if result.item_id != item.id {
            return Err(EngineError::Invalid(format!(
                "{}: the result is for item {}, not {}",
                dir.display(),
                result.item_id,
                item.id
            )));
        }
        let root = PathBuf::from(&item.repo_path);
        let store_file = result.store.as_ref().map(|s| dir.join(s));
        let mut sessions = Vec::new();
        let mut events = 0;
        for attempt in &result.attempts {
            let req = CreateSession {
                repo: root.clone(),
                name: attempt.session.session_name.clone(),
                prompt: Some(item.prompt.clone()),
                base: item.base_branch.clone(),
                agent: Some(item.agent.clone()),
                model: item.model.clone(),
                script: item.script.clone(),
                budget_usd: item.budget_usd.filter(|b: &Money| b.is_positive()),
                batch_item_id: Some(item.id.clone()),
                ..Default::default()
            };
            let (session, copied) =
                self.adopt_session(req, &attempt.session, dir, base_commit, store_file.as_deref())?;
            events += copied;
            sessions.push(session.id.to_string());
        }
        if let Some(last) = sessions.last() {
            self.store.set_batch_item_session(&item.id, last)?;
        }
        let attempts = result.attempts.last().map(|a| a.attempt).unwrap_or(item.attempts);
        self.store.set_batch_item_attempts(&item.id, attempts)?;
        if let Some(ended) = ended {
            return Ok(Ingested {
                status: ended.status,
                error: ended.error,
                merged: false,
                sessions,
                events,
                took_ms: started.elapsed().as_millis() as u64,
            });
        }
        let mut error = result.error.clone();
        let mut merged = false;
        if result.status == BatchItemStatus::Passed
            && item.merge_on_pass
            && let Some(last) = sessions.last()
        {
            match merge_in_turn(self, last) {
                Ok(r) if r.result == MergeResult::Merged => merged = true,
                Ok(r) => error = Some(format!("passed, not merged: the merge ended with {}", r.result)),
                Err(e) => error = Some(format!("passed, not merged: {e}")),
            }
        }
        self.store.finish_batch_item(&item.id, result.status, error.as_deref(), merged)?;
        Ok(Ingested {
            status: result.status,
            error,
            merged,
            sessions,
            events,
            took_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Makes the session a worker handed over in the result folder `dir`: its branch fetched from its
    /// bundle into `req.repo` (under a temporary ref), a session made from `req` with its recorded base at
    /// `base_commit` and its branch at the worker's last commit, and its rows copied from the worker's store
    /// file. A session of that name that an earlier, interrupted take-in made for the same batch item or
    /// benchmark result is replaced, so taking a result in twice makes it once. Returns the session and how
    /// many agent events were copied.
    pub(crate) fn adopt_session(
        &mut self,
        req: CreateSession,
        worked: &SessionBundle,
        dir: &Path,
        base_commit: &str,
        store_file: Option<&Path>,
    ) -> Result<(ampsm_store::Session, usize), EngineError> {
        let root = req.repo.clone();
        let git = Git::new(&root);
        let temp_ref = format!("refs/ampsm/incoming/{}", worked.session_id);
        if let Some(bundle) = &worked.bundle {
            let bundle = dir.join(bundle);
            let refspec = format!("+{}:{temp_ref}", worked.branch);
            let fetched =
                git.run_ok(&["fetch", "--quiet", "--no-tags", &bundle.to_string_lossy(), &refspec])?;
            if !fetched.success() {
                return Err(EngineError::Invalid(format!(
                    "cannot fetch {} from {}: {}",
                    worked.branch,
                    bundle.display(),
                    fetched.stderr.trim()
                )));
            }
        } else if git.resolve_commit(&worked.head_commit)?.is_none() {
            return Err(EngineError::Invalid(format!(
                "{}: session {} has no bundle and its commit {} is not in {}",
                dir.display(),
                worked.session_name,
                worked.head_commit,
                root.display()
            )));
        }
        if let Some(id) = self.store.live_session_named(&root.to_string_lossy(), &worked.session_name)? {
            let existing = self.store.get_session(&ampsm_core::SessionId::from_stored(id.clone()))?;
            let ours = (req.batch_item_id.is_some() && existing.batch_item_id == req.batch_item_id)
                || (req.bench_result_id.is_some()
                    && self.store.session_bench_result(&id)? == req.bench_result_id);
            if ours {
                self.remove_session(&id, true, false)?;
            }
        }
        let made = self.create_session_pinned(req, Some((base_commit, &worked.head_commit)));
        let _ = git.run_ok(&["update-ref", "-d", &temp_ref]);
        let session = made?;
        let events = match store_file {
            Some(file) => self.store.import_session(file, &worked.session_id, &session.id)?.events,
            None => 0,
        };
        Ok((session, events))
    }
}
