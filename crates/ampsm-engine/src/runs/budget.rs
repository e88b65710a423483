//! Budgets: a live cost meter fed with each stream line's events while the agent runs, and pools that
//! share one budget between many runs.
//!
//! The meter prices every model call's `Usage` event with the one price table (counting a provider message
//! id once: Claude Code repeats a message's usage on each of its content blocks), or takes the agent's own
//! cost when its result line reports one. For a session budget, what earlier iterations of the session cost
//! is added, so the budget covers the whole session. At 80 % of the budget it asks for a warning once; at
//! 100 % it asks for the agent to be stopped. Usage of a model with no price cannot be counted: the meter
//! says so once instead of guessing.
//!
//! A [`BudgetPool`] is the budget of a whole batch or benchmark run. Each run sharing it joins with its
//! cancel channel and reports its meter's running cost after every line; the pool warns once at 80 % of
//! the total and, at 100 %, stops every member at once and refuses new members. When a run ends its final
//! (priced) cost replaces its running figure.

use ampsm_core::pricing::PriceTable;
use ampsm_core::{AgentEvent, BudgetLevel, Money, TokenUsage};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Share of the budget at which a warning is given.
pub use ampsm_core::BUDGET_WARN_SHARE as WARN_AT;

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
    pub budget_usd: Money,
    /// Known cost of the session's earlier iterations.
    pub spent_before_usd: Money,
    /// This run's cost as the meter counted it.
    pub run_usd: Money,
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
    /// The session's budget; `None` when the meter only counts cost (for a shared [`BudgetPool`]).
    budget: Option<Money>,
    before: Money,
    /// Cost the agent already reported for the thread in earlier runs (subtracted from its running totals).
    prior_reported: Money,
    /// Usage per provider message id (a repeat replaces, never adds).
    by_message: HashMap<String, (Option<String>, TokenUsage)>,
    /// Cost of usage events without a message id.
    anonymous_usd: Money,
    unpriced_tokens: u64,
    /// The run's cost as the agent reported it in its result line.
    reported: Option<Money>,
    warned: bool,
    stopped: bool,
    told_unpriced: bool,
}

impl BudgetMeter {
    /// A meter for a run of a session with `budget_usd`, which already spent `spent_before_usd`;
    /// `prior_reported_usd` is what the agent reported for the thread's earlier runs (agents that resume a
    /// thread report running totals).
    pub fn new(
        table: PriceTable,
        budget_usd: Option<Money>,
        spent_before_usd: Money,
        prior_reported_usd: Money,
    ) -> Self {
        BudgetMeter {
            table,
            budget: budget_usd,
            before: spent_before_usd,
            prior_reported: prior_reported_usd,
            by_message: HashMap::new(),
            anonymous_usd: Money::ZERO,
            unpriced_tokens: 0,
            reported: None,
            warned: false,
            stopped: false,
            told_unpriced: false,
        }
    }

    /// Whether the session had used up its budget before this run started.
    pub fn exhausted_before_start(&self) -> bool {
        self.budget.is_some_and(|b| self.before.reached(b))
    }

    /// This run's cost so far.
    pub fn run_usd(&self) -> Money {
        if let Some(r) = self.reported {
            return r;
        }
        let per_message: Money = self
            .by_message
            .values()
            .filter_map(|(model, usage)| self.table.cost(model.as_deref(), usage).usd.map(Money::from_usd))
            .sum();
        per_message + self.anonymous_usd
    }

    /// The session's spend so far: earlier iterations plus this run.
    pub fn spent_usd(&self) -> Money {
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
                        None => self.anonymous_usd += Money::from_usd(priced.unwrap_or(0.0)),
                    }
                }
                AgentEvent::Result { cost_usd: Some(c), .. } => {
                    self.reported = Some(self.prior_reported.left_of(Money::from_usd(*c)));
                }
                _ => {}
            }
        }
        let Some(budget) = self.budget else { return signals };
        let spent = self.spent_usd();
        let level = spent.level(budget);
        if !self.warned && level != BudgetLevel::Under {
            self.warned = true;
            signals.push(BudgetSignal::Warn(format!(
                "budget: {:.0} % used (${spent:.4} of {})",
                spent.percent_of(budget),
                budget.text()
            )));
        }
        if !self.stopped && level == BudgetLevel::Reached {
            self.stopped = true;
            signals.push(BudgetSignal::Stop(format!(
                "budget reached: ${spent:.4} of {} spent; the agent was stopped",
                budget.text()
            )));
        }
        signals
    }

    /// Whether the meter asked for the agent to be stopped.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The state to report, when the session has a budget.
    pub fn status(&self) -> Option<BudgetStatus> {
        Some(BudgetStatus {
            budget_usd: self.budget?,
            spent_before_usd: self.before,
            run_usd: self.run_usd(),
            unpriced_tokens: self.unpriced_tokens,
            warned: self.warned,
            stopped: self.stopped,
        })
    }
}

/// A budget shared by many runs: a whole batch or benchmark run. Every run given the pool reports its
/// live cost to it after each stream line; the pool warns once at 80 % of its limit and, once the limit is
/// reached, stops *every* run sharing it (through each run's cancel channel) and refuses new ones.
#[derive(Debug)]
pub struct BudgetPool {
    scope: String,
    limit: Money,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Spend before the pool was made plus the final cost of runs that ended.
    settled: Money,
    /// The running cost of each run still going, by member key.
    live: HashMap<u64, Money>,
    /// How to stop each run still going.
    cancels: HashMap<u64, watch::Sender<bool>>,
    next_key: u64,
    warned: bool,
    stop_reason: Option<String>,
}

impl BudgetPool {
    /// A pool of `limit_usd` for `scope` (a label such as "batch 1a2b3c4d"), of which `spent_before_usd`
    /// was already spent (e.g. by the items of a batch that is resumed).
    pub fn new(scope: impl Into<String>, limit_usd: Money, spent_before_usd: Money) -> Arc<BudgetPool> {
        let scope = scope.into();
        let spent = spent_before_usd.reached(limit_usd);
        let stop_reason = spent.then(|| reached_text(&scope, spent_before_usd, limit_usd));
        let state =
            PoolState { settled: spent_before_usd, warned: spent, stop_reason, ..PoolState::default() };
        Arc::new(BudgetPool { scope, limit: limit_usd, state: Mutex::new(state) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // A panic in another run's thread cannot leave the sums half-updated: every update is one statement.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the pool covers ("batch 1a2b3c4d").
    pub fn scope(&self) -> &str {
        &self.scope
    }

    pub fn limit_usd(&self) -> Money {
        self.limit
    }

    /// Everything spent so far: settled runs plus the running cost of the runs still going.
    pub fn spent_usd(&self) -> Money {
        let st = self.lock();
        st.settled + st.live.values().sum::<Money>()
    }

    /// Whether the limit was reached: running members were stopped and no new run may start.
    pub fn exhausted(&self) -> bool {
        self.lock().stop_reason.is_some()
    }

    /// Why the pool stopped its runs, once it did.
    pub fn stop_reason(&self) -> Option<String> {
        self.lock().stop_reason.clone()
    }

    /// Adds a run that `cancel` stops; `None` when the pool is already exhausted.
    pub fn join(self: &Arc<Self>, cancel: watch::Sender<bool>) -> Option<PoolMember> {
        let mut st = self.lock();
        if st.stop_reason.is_some() {
            return None;
        }
        let key = st.next_key;
        st.next_key += 1;
        st.live.insert(key, Money::ZERO);
        st.cancels.insert(key, cancel);
        Some(PoolMember { pool: self.clone(), key, settled: false })
    }

    /// Sets a member's running cost; returns the signals for the member whose line crossed a mark.
    fn report(&self, key: u64, run_usd: Money) -> Vec<BudgetSignal> {
        let mut st = self.lock();
        if let Some(v) = st.live.get_mut(&key) {
            *v = run_usd;
        }
        let spent = st.settled + st.live.values().sum::<Money>();
        let level = spent.level(self.limit);
        let mut signals = Vec::new();
        if !st.warned && level != BudgetLevel::Under {
            st.warned = true;
            signals.push(BudgetSignal::Warn(format!(
                "budget: {} {:.0} % used (${spent:.4} of {})",
                self.scope,
                spent.percent_of(self.limit),
                self.limit.text()
            )));
        }
        if st.stop_reason.is_none() && level == BudgetLevel::Reached {
            let reason = reached_text(&self.scope, spent, self.limit);
            st.stop_reason = Some(reason.clone());
            for cancel in st.cancels.values() {
                let _ = cancel.send(true);
            }
            signals.push(BudgetSignal::Stop(format!(
                "budget reached: {reason}; its running agents were stopped"
            )));
        }
        signals
    }

    /// Ends a member: its final cost moves from live to settled.
    fn settle(&self, key: u64, final_usd: Option<Money>) {
        let mut st = self.lock();
        let live = st.live.remove(&key).unwrap_or(Money::ZERO);
        st.cancels.remove(&key);
        st.settled += final_usd.unwrap_or(live);
    }
}

/// Why a pool stopped: "the budget of batch 1a2b3c4d was reached ($X of $Y spent)".
fn reached_text(scope: &str, spent: Money, limit: Money) -> String {
    format!("the budget of {scope} was reached (${spent:.4} of {} spent)", limit.text())
}

/// One run's place in a [`BudgetPool`]; settles with its last reported cost when dropped unsettled.
#[derive(Debug)]
pub struct PoolMember {
    pool: Arc<BudgetPool>,
    key: u64,
    settled: bool,
}

impl PoolMember {
    /// The run's cost so far; returns what to say or do (a warning, or the stop of every member).
    pub fn report(&self, run_usd: Money) -> Vec<BudgetSignal> {
        self.pool.report(self.key, run_usd)
    }

    pub fn pool(&self) -> &Arc<BudgetPool> {
        &self.pool
    }

    /// Ends the run with its final cost (`None`: the last reported running cost stands).
    pub fn settle(mut self, final_usd: Option<Money>) {
        self.settled = true;
        self.pool.settle(self.key, final_usd);
    }
}

impl Drop for PoolMember {
    fn drop(&mut self) {
        if !self.settled {
            self.pool.settle(self.key, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(v: f64) -> Money {
        Money::from_usd(v)
    }

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
        let mut m = BudgetMeter::new(PriceTable::builtin(), Some(usd(0.05)), usd(0.0), usd(0.0));
        let model = Some("claude-sonnet-4-5-20250929");
        assert!(m.observe(&[usage(Some("msg_1"), model, 1_000)]).is_empty());
        // The same message again (a second content block): still $0.015.
        assert!(m.observe(&[usage(Some("msg_1"), model, 1_000)]).is_empty());
        assert!((m.run_usd().usd() - 0.015).abs() < 1e-12);
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
        let mut m = BudgetMeter::new(PriceTable::builtin(), Some(usd(1.0)), usd(0.9), usd(0.0));
        assert!(!m.exhausted_before_start());
        let s = m.observe(&[usage(None, Some("mystery-model"), 1_000_000)]);
        // 90 % was already spent before the run; the unpriced tokens add nothing.
        assert!(matches!(s.as_slice(), [BudgetSignal::Unpriced(_), BudgetSignal::Warn(_)]), "{s:?}");
        assert_eq!(m.status().unwrap().unpriced_tokens, 1_000_000);
        assert!((m.spent_usd().usd() - 0.9).abs() < 1e-12);
        assert!(
            BudgetMeter::new(PriceTable::builtin(), Some(usd(1.0)), usd(1.0), usd(0.0))
                .exhausted_before_start()
        );
    }

    #[test]
    fn a_pool_warns_once_then_stops_every_member_and_refuses_new_ones() {
        let pool = BudgetPool::new("batch abc", usd(1.0), usd(0.1));
        let (tx_a, rx_a) = watch::channel(false);
        let (tx_b, rx_b) = watch::channel(false);
        let a = pool.join(tx_a).unwrap();
        let b = pool.join(tx_b).unwrap();
        assert!(a.report(usd(0.3)).is_empty());
        // 0.1 + 0.3 + 0.45 = 0.85: the warning goes to the member whose line crossed 80 %.
        let s = b.report(usd(0.45));
        assert!(
            matches!(s.as_slice(), [BudgetSignal::Warn(t)] if t.contains("batch abc 85 % used")),
            "{s:?}"
        );
        assert!(a.report(usd(0.35)).is_empty(), "warned once");
        // A run that ends settles at its priced cost, replacing its running figure.
        a.settle(Some(usd(0.4)));
        assert!((pool.spent_usd().usd() - 0.95).abs() < 1e-9);
        assert!(!*rx_b.borrow());
        let s = b.report(usd(0.5));
        assert!(matches!(s.as_slice(), [BudgetSignal::Stop(_)]), "{s:?}");
        assert!(*rx_b.borrow(), "every member still running is stopped");
        assert!(!*rx_a.borrow(), "a settled member is not");
        assert!(pool.exhausted());
        assert!(
            pool.stop_reason().unwrap().contains("the budget of batch abc was reached ($1.0000 of $1.00")
        );
        let (tx_c, _rx_c) = watch::channel(false);
        assert!(pool.join(tx_c).is_none(), "no new run once the money is gone");
        // Dropped unsettled: its last running cost stands.
        drop(b);
        assert!((pool.spent_usd().usd() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_pool_spent_before_it_starts_is_exhausted() {
        let pool = BudgetPool::new("bench run x", usd(2.0), usd(2.5));
        assert!(pool.exhausted());
        assert!(pool.join(watch::channel(false).0).is_none());
    }

    #[test]
    fn the_agents_reported_cost_wins_minus_the_threads_earlier_runs() {
        let mut m = BudgetMeter::new(PriceTable::builtin(), Some(usd(10.0)), usd(0.0), usd(0.25));
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
        assert!((m.run_usd().usd() - 1.0).abs() < 1e-12);
    }
}
