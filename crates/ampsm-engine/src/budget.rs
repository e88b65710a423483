//! Session budgets: a live cost meter fed with each stream line's events while the agent runs.
//!
//! The meter prices every model call's `Usage` event with the one price table (counting a provider message
//! id once: Claude Code repeats a message's usage on each of its content blocks), or takes the agent's own
//! cost when its result line reports one. What earlier iterations of the session cost is added, so the
//! budget covers the whole session. At 80 % of the budget it asks for a warning once; at 100 % it asks for
//! the agent to be stopped. Usage of a model with no price cannot be counted: the meter says so once
//! instead of guessing.

use ampsm_core::pricing::PriceTable;
use ampsm_core::{AgentEvent, TokenUsage};
use serde::Serialize;
use std::collections::HashMap;

/// Share of the budget at which a warning is given.
pub const WARN_AT: f64 = 0.8;

/// What the meter asks the caller to do after a line.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetSignal {
    /// Spend crossed 80 % of the budget: warn (once).
    Warn(String),
    /// Spend reached the budget: stop the agent (once).
    Stop(String),
    /// Usage of a model with no price arrived: the budget cannot count it (said once).
    Unpriced(String),
}

/// The budget state of a run, as reported after it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BudgetStatus {
    pub budget_usd: f64,
    /// Known cost of the session's earlier iterations.
    pub spent_before_usd: f64,
    /// This run's cost as the meter counted it.
    pub run_usd: f64,
    /// Tokens the meter could not price (no price for their model).
    pub unpriced_tokens: u64,
    pub warned: bool,
    /// The agent was stopped because the budget was reached.
    pub stopped: bool,
}

/// The live meter of one run.
#[derive(Debug)]
pub struct BudgetMeter {
    table: PriceTable,
    budget: f64,
    before: f64,
    /// Cost the agent already reported for the thread in earlier runs (subtracted from its running totals).
    prior_reported: f64,
    /// Usage per provider message id (a repeat replaces, never adds).
    by_message: HashMap<String, (Option<String>, TokenUsage)>,
    /// Cost of usage events without a message id.
    anonymous_usd: f64,
    unpriced_tokens: u64,
    /// The run's cost as the agent reported it in its result line.
    reported: Option<f64>,
    warned: bool,
    stopped: bool,
    told_unpriced: bool,
}

impl BudgetMeter {
    /// A meter for a run of a session with `budget_usd`, which already spent `spent_before_usd`;
    /// `prior_reported_usd` is what the agent reported for the thread's earlier runs (agents that resume a
    /// thread report running totals).
    pub fn new(table: PriceTable, budget_usd: f64, spent_before_usd: f64, prior_reported_usd: f64) -> Self {
        BudgetMeter {
            table,
            budget: budget_usd,
            before: spent_before_usd,
            prior_reported: prior_reported_usd,
            by_message: HashMap::new(),
            anonymous_usd: 0.0,
            unpriced_tokens: 0,
            reported: None,
            warned: false,
            stopped: false,
            told_unpriced: false,
        }
    }

    /// Whether the session had used up its budget before this run started.
    pub fn exhausted_before_start(&self) -> bool {
        self.before >= self.budget
    }

    /// This run's cost so far.
    pub fn run_usd(&self) -> f64 {
        if let Some(r) = self.reported {
            return r;
        }
        let per_message: f64 = self
            .by_message
            .values()
            .filter_map(|(model, usage)| self.table.cost(model.as_deref(), usage).usd)
            .sum();
        per_message + self.anonymous_usd
    }

    /// The session's spend so far: earlier iterations plus this run.
    pub fn spent_usd(&self) -> f64 {
        self.before + self.run_usd()
    }

    /// Counts one line's events; returns what the caller should do, in order.
    pub fn observe(&mut self, events: &[AgentEvent]) -> Vec<BudgetSignal> {
        let mut signals = Vec::new();
        for ev in events {
            match ev {
                AgentEvent::Usage { model, usage, message_id } => {
                    let priced = self.table.cost(model.as_deref(), usage).usd;
                    if priced.is_none() && !usage.is_zero() {
                        if let Some(id) = message_id {
                            // A repeated id replaces its earlier count, so its tokens are counted once.
                            if !self.by_message.contains_key(id) {
                                self.unpriced_tokens += usage.total();
                            }
                        } else {
                            self.unpriced_tokens += usage.total();
                        }
                        if !self.told_unpriced {
                            self.told_unpriced = true;
                            signals.push(BudgetSignal::Unpriced(format!(
                                "budget: model {} has no price, so its tokens are not counted against the \
                                 budget; set pricing.<model> in the config to count them",
                                model.as_deref().unwrap_or("(not reported by the agent)")
                            )));
                        }
                    }
                    match message_id {
                        Some(id) => {
                            self.by_message.insert(id.clone(), (model.clone(), *usage));
                        }
                        None => self.anonymous_usd += priced.unwrap_or(0.0),
                    }
                }
                AgentEvent::Result { cost_usd: Some(c), .. } => {
                    self.reported = Some((c - self.prior_reported).max(0.0));
                }
                _ => {}
            }
        }
        let spent = self.spent_usd();
        if !self.warned && spent >= WARN_AT * self.budget {
            self.warned = true;
            signals.push(BudgetSignal::Warn(format!(
                "budget: {:.0} % used (${spent:.4} of ${:.2})",
                100.0 * spent / self.budget,
                self.budget
            )));
        }
        if !self.stopped && spent >= self.budget {
            self.stopped = true;
            signals.push(BudgetSignal::Stop(format!(
                "budget reached: ${spent:.4} of ${:.2} spent; the agent was stopped",
                self.budget
            )));
        }
        signals
    }

    /// Whether the meter asked for the agent to be stopped.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The state to report.
    pub fn status(&self) -> BudgetStatus {
        BudgetStatus {
            budget_usd: self.budget,
            spent_before_usd: self.before,
            run_usd: self.run_usd(),
            unpriced_tokens: self.unpriced_tokens,
            warned: self.warned,
            stopped: self.stopped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(id: Option<&str>, model: Option<&str>, output: u64) -> AgentEvent {
        AgentEvent::Usage {
            model: model.map(str::to_string),
            usage: TokenUsage { output, ..Default::default() },
            message_id: id.map(str::to_string),
        }
    }

    #[test]
    fn a_repeated_message_id_counts_once_and_the_budget_warns_then_stops() {
        // claude-sonnet-4-5 output: $15 per million tokens; 1,000 tokens = $0.015.
        let mut m = BudgetMeter::new(PriceTable::builtin(), 0.05, 0.0, 0.0);
        let model = Some("claude-sonnet-4-5-20250929");
        assert!(m.observe(&[usage(Some("msg_1"), model, 1_000)]).is_empty());
        // The same message again (a second content block): still $0.015.
        assert!(m.observe(&[usage(Some("msg_1"), model, 1_000)]).is_empty());
        assert!((m.run_usd() - 0.015).abs() < 1e-12);
        // $0.045 = 90 %: a warning, no stop.
        let s = m.observe(&[usage(Some("msg_2"), model, 2_000)]);
        assert!(matches!(s.as_slice(), [BudgetSignal::Warn(_)]), "{s:?}");
        // $0.06: stop, once.
        let s = m.observe(&[usage(Some("msg_3"), model, 1_000)]);
        assert!(matches!(s.as_slice(), [BudgetSignal::Stop(_)]), "{s:?}");
        assert!(m.observe(&[usage(Some("msg_4"), model, 1_000)]).is_empty());
        assert!(m.stopped());
    }

    #[test]
    fn earlier_spend_counts_and_unknown_models_are_reported_not_guessed() {
        let mut m = BudgetMeter::new(PriceTable::builtin(), 1.0, 0.9, 0.0);
        assert!(!m.exhausted_before_start());
        let s = m.observe(&[usage(None, Some("mystery-model"), 1_000_000)]);
        // 90 % was already spent before the run; the unpriced tokens add nothing.
        assert!(matches!(s.as_slice(), [BudgetSignal::Unpriced(_), BudgetSignal::Warn(_)]), "{s:?}");
        assert_eq!(m.status().unpriced_tokens, 1_000_000);
        assert!((m.spent_usd() - 0.9).abs() < 1e-12);
        assert!(BudgetMeter::new(PriceTable::builtin(), 1.0, 1.0, 0.0).exhausted_before_start());
    }

    #[test]
    fn the_agents_reported_cost_wins_minus_the_threads_earlier_runs() {
        let mut m = BudgetMeter::new(PriceTable::builtin(), 10.0, 0.0, 0.25);
        m.observe(&[usage(Some("a"), Some("gpt-5"), 1_000)]);
        m.observe(&[AgentEvent::Result {
            ok: true,
            subtype: None,
            text: None,
            error: None,
            duration_ms: None,
            num_turns: None,
            cost_usd: Some(1.25),
        }]);
        assert!((m.run_usd() - 1.0).abs() < 1e-12);
    }
}
