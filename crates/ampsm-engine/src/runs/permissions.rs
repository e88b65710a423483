//! Permission policies, approvals and stopping, as the front ends see them: the policy a session runs
//! with and whether its agent can honour it (checked at `new`, before anything runs), each agent's
//! policies with what they mean (`doctor`, the dashboard), the pending approvals of the `ask` policy and
//! their answers, and `stop` of a running agent from any process.

use crate::process::{pid_alive, stop_run};
use crate::runs::control::describe;
use crate::{Engine, EngineError};
use ampsm_agent::{AgentAdapter, PolicySupport};
use ampsm_core::{PermissionPolicy, SessionStatus};
use ampsm_store::{Approval, ApprovalStatus, Session};
use serde::Serialize;
use std::time::{Duration, Instant};

/// One agent's permission policies: the default a new session gets and what each policy means for it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentPolicies {
    pub agent: &'static str,
    /// The policy a new session of this agent gets when `new` names none.
    pub default: PermissionPolicy,
    /// Where that default comes from (`default`, `session.permissions`, `agents.<name>.permissions`,
    /// `amp.dangerously_allow_all`).
    pub default_from: &'static str,
    pub policies: Vec<PolicyInfo>,
}

/// What one policy means for one agent.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    pub policy: PermissionPolicy,
    pub honoured: bool,
    /// The flags it maps to, or why it cannot be honoured.
    pub how: &'static str,
}

/// What `stop` did.
#[derive(Debug, Clone, Serialize)]
pub struct StopOutcome {
    pub session: Session,
    /// The iteration that was stopped.
    pub iteration_id: Option<String>,
    /// How it ended: by its runner (`cancelled`, work committed), or, when its runner was gone, by killing
    /// the agent's process group and repairing the session.
    pub how: &'static str,
    pub waited_ms: u64,
}

/// An approval with the words to show it.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    #[serde(flatten)]
    pub approval: Approval,
    pub session_name: String,
    /// `Write /path/file`, `Bash npm test`.
    pub summary: String,
}

impl Engine {
    /// The policy a session runs with: its own, or (for sessions made before policies) the config's
    /// default for its agent.
    pub fn session_policy(&self, session: &Session) -> PermissionPolicy {
        session.permissions.unwrap_or_else(|| self.config.permissions_for(&session.agent).0)
    }

    /// The policy of a new session of `agent`: the one asked for, else the config's default.
    pub fn policy_for_new(&self, agent: &str, asked: Option<PermissionPolicy>) -> PermissionPolicy {
        asked.unwrap_or_else(|| self.config.permissions_for(agent).0)
    }

    /// Refuses a policy the agent cannot honour, saying why.
    pub fn check_policy(
        &self,
        adapter: &dyn AgentAdapter,
        policy: PermissionPolicy,
    ) -> Result<(), EngineError> {
        match adapter.permission_support(policy) {
            PolicySupport::Honoured { .. } => Ok(()),
            PolicySupport::Unsupported { why } => Err(EngineError::PolicyUnsupported {
                agent: adapter.name().to_string(),
                policy,
                why: why.to_string(),
            }),
        }
    }

    /// Every agent's policies, for `doctor` and the dashboard.
    pub fn agent_policies(&self) -> Vec<AgentPolicies> {
        ampsm_core::agents::agent_names()
            .filter_map(|name| ampsm_agent::adapter_for(name).ok())
            .map(|adapter| {
                let (default, default_from) = self.config.permissions_for(adapter.name());
                AgentPolicies {
                    agent: adapter.name(),
                    default,
                    default_from,
                    policies: PermissionPolicy::ALL
                        .into_iter()
                        .map(|policy| {
                            let support = adapter.permission_support(policy);
                            PolicyInfo { policy, honoured: support.is_honoured(), how: support.text() }
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Pending approvals: of one session, or of every session.
    pub fn pending_approvals(&self, session: Option<&str>) -> Result<Vec<ApprovalView>, EngineError> {
        let session = match session {
            Some(r) => Some(self.store.resolve_session(r, false)?),
            None => None,
        };
        let list = self.store.pending_approvals(session.as_ref().map(|s| &s.id))?;
        let mut out = Vec::with_capacity(list.len());
        for a in list {
            let name = match &session {
                Some(s) => s.name.clone(),
                None => self
                    .store
                    .get_session(&ampsm_core::SessionId::from_stored(a.session_id.clone()))
                    .map(|s| s.name)
                    .unwrap_or_default(),
            };
            out.push(ApprovalView { summary: describe(&a), session_name: name, approval: a });
        }
        Ok(out)
    }

    /// Every approval of a session, answered or not (for `show` and the dashboard).
    pub fn session_approvals(&self, session: &Session) -> Result<Vec<ApprovalView>, EngineError> {
        Ok(self
            .store
            .session_approvals(&session.id)?
            .into_iter()
            .map(|a| ApprovalView { summary: describe(&a), session_name: session.name.clone(), approval: a })
            .collect())
    }

    /// Answers a pending request of a session: number `seq`, or the only one pending. A denial may carry
    /// a message for the agent.
    pub fn answer_approval(
        &mut self,
        session_ref: &str,
        seq: Option<i64>,
        allow: bool,
        message: Option<&str>,
    ) -> Result<ApprovalView, EngineError> {
        let session = self.store.resolve_session(session_ref, false)?;
        let label = format!("{} ({})", session.name, session.id.short());
        let pending = self.store.pending_approvals(Some(&session.id))?;
        let target = match seq {
            Some(n) => match pending.iter().find(|a| a.seq == n) {
                Some(a) => a.clone(),
                None => {
                    let known = self.store.session_approvals(&session.id)?.into_iter().find(|a| a.seq == n);
                    return Err(match known {
                        Some(a) => EngineError::Invalid(format!(
                            "approval #{n} of session {label} is already {} ({})",
                            a.status.as_str(),
                            describe(&a)
                        )),
                        None => {
                            EngineError::NoApproval { session: label, name: session.name.clone(), seq: n }
                        }
                    });
                }
            },
            None => match pending.as_slice() {
                [one] => one.clone(),
                [] => return Err(EngineError::Invalid(format!("session {label} has no pending approval"))),
                many => {
                    let list: Vec<String> =
                        many.iter().map(|a| format!("#{} {}", a.seq, describe(a))).collect();
                    return Err(EngineError::Invalid(format!(
                        "session {label} has {} pending approvals ({}); name one by its number",
                        many.len(),
                        list.join(", ")
                    )));
                }
            },
        };
        let (status, note) = if allow {
            (ApprovalStatus::Approved, None)
        } else {
            (
                ApprovalStatus::Denied,
                Some(message.filter(|m| !m.trim().is_empty()).unwrap_or("denied by the user")),
            )
        };
        match self.store.settle_approval(&target.id, status, note)? {
            Some(a) => {
                Ok(ApprovalView { summary: describe(&a), session_name: session.name.clone(), approval: a })
            }
            None => {
                let now = self.store.approval(&target.id)?.map(|a| a.status.as_str()).unwrap_or("gone");
                Err(EngineError::Invalid(format!(
                    "approval #{} of session {label} was answered meanwhile: it is {now}",
                    target.seq
                )))
            }
        }
    }

    /// Stops the agent running in a session, from any process: asks its runner to stop it (its work so far
    /// is committed, the iteration recorded `cancelled`) and waits up to `wait` for that. When the runner
    /// is gone, or does not react, the agent's process group is killed and the session repaired.
    pub fn stop_session(&mut self, session_ref: &str, wait: Duration) -> Result<StopOutcome, EngineError> {
        let session = self.store.resolve_session(session_ref, false)?;
        let label = format!("{} ({})", session.name, session.id.short());
        let running = matches!(session.status, SessionStatus::Running | SessionStatus::AwaitingInput)
            && (session.runner_pid.is_some() || session.agent_pid.is_some());
        if !running {
            return Err(EngineError::NotRunning {
                session: label,
                status: session.status.as_str().to_string(),
            });
        }
        let iteration_id = self.store.request_stop(&session.id)?;
        let started = Instant::now();
        let runner_alive = session.runner_pid.is_some_and(pid_alive);
        if runner_alive {
            while started.elapsed() < wait {
                let now = self.store.get_session(&session.id)?;
                if now.runner_pid.is_none() || !now.runner_pid.is_some_and(pid_alive) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let now = self.store.get_session(&session.id)?;
        let still_running = now.runner_pid.is_some_and(pid_alive);
        let how = if runner_alive && !still_running {
            "stopped by its runner; its work so far is committed"
        } else {
            // The runner is gone (or stuck): stop the run's processes ourselves (its group, and what left it)
            // and repair the session.
            let runner = now.runner_pid.or(session.runner_pid);
            stop_run(session.id.as_str(), runner, now.agent_pid, Duration::from_secs(2));
            if !still_running {
                self.repair_quick()?;
            }
            "its runner was gone: the agent's processes were stopped and the session repaired; uncommitted \
             changes are kept in the worktree"
        };
        Ok(StopOutcome {
            session: self.store.get_session(&session.id)?,
            iteration_id,
            how,
            waited_ms: started.elapsed().as_millis() as u64,
        })
    }
}
