//! The one price table (USD per million tokens, with cache prices), dated, overridable per model from the
//! config. Cost comes from the agent when it reports cost; otherwise from this table; an unknown model gives
//! an unknown cost, never a guess.

use crate::event::TokenUsage;
use serde::{Deserialize, Serialize};

/// The date the built-in prices were last checked against the vendors' pages.
pub const PRICES_AS_OF: &str = "2026-11-01";

/// Prices of one model in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_read: f64,
    #[serde(default)]
    pub cache_write: f64,
}

impl ModelPrice {
    /// Cost of `usage` at these prices.
    pub fn cost(&self, usage: &TokenUsage) -> f64 {
        (usage.input as f64 * self.input
            + usage.output as f64 * self.output
            + usage.cache_read as f64 * self.cache_read
            + usage.cache_write as f64 * self.cache_write)
            / 1_000_000.0
    }
}

/// Where a cost figure came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum CostSource {
    /// The agent reported it in its stream.
    Agent,
    /// Computed from the price table entry named here (`builtin:<model>@<date>` or `config:<model>`).
    PriceTable { entry: String },
    /// The model is not in the table (or the agent did not say which model ran).
    Unknown,
}

/// A cost with its provenance. `usd` is `None` exactly when the source is [`CostSource::Unknown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub usd: Option<f64>,
    #[serde(flatten)]
    pub source: CostSource,
}

/// Model name → prices. Lookups match the exact name, or the name followed by a date or `-latest`
/// (`claude-sonnet-4-5-20250929` uses `claude-sonnet-4-5`), never a looser prefix.
#[derive(Debug, Clone)]
pub struct PriceTable {
    entries: Vec<(String, ModelPrice, String)>,
}

const fn p(input: f64, output: f64, cache_read: f64, cache_write: f64) -> ModelPrice {
    ModelPrice { input, output, cache_read, cache_write }
}

/// Built-in list prices (standard tier, 5-minute cache writes; ≤200K prompt tiers).
const BUILTIN: &[(&str, ModelPrice)] = &[
    ("claude-opus-4", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4-0", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4-1", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4-5", p(5.0, 25.0, 0.5, 6.25)),
    ("claude-opus-4-6", p(5.0, 25.0, 0.5, 6.25)),
    ("claude-opus-4-7", p(5.0, 25.0, 0.5, 6.25)),
    ("claude-opus-5", p(5.0, 25.0, 0.5, 6.25)),
    ("claude-sonnet-4", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-sonnet-4-0", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-sonnet-4-5", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-sonnet-4-6", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4-5", p(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-5-haiku", p(0.8, 4.0, 0.08, 1.0)),
    ("gpt-5", p(1.25, 10.0, 0.125, 0.0)),
    ("gpt-5-codex", p(1.25, 10.0, 0.125, 0.0)),
    ("gpt-5-mini", p(0.25, 2.0, 0.025, 0.0)),
    ("gpt-5-nano", p(0.05, 0.4, 0.005, 0.0)),
    ("gemini-2.5-pro", p(1.25, 10.0, 0.125, 0.0)),
];

impl Default for PriceTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PriceTable {
    /// The built-in table.
    pub fn builtin() -> Self {
        PriceTable {
            entries: BUILTIN
                .iter()
                .map(|(m, price)| (m.to_string(), *price, format!("builtin:{m}@{PRICES_AS_OF}")))
                .collect(),
        }
    }

    /// Adds or replaces an entry from the config (`pricing.<model>`).
    pub fn set_override(&mut self, model: &str, price: ModelPrice) {
        let key = model.to_ascii_lowercase();
        self.entries.retain(|(m, _, _)| *m != key);
        self.entries.push((key, price, format!("config:{model}")));
    }

    /// The entry for `model`: `(entry name, price)`.
    pub fn lookup(&self, model: &str) -> Option<(&str, &ModelPrice)> {
        let wanted = model.trim().to_ascii_lowercase();
        let wanted = wanted.strip_prefix("anthropic/").unwrap_or(&wanted);
        let wanted = wanted.strip_prefix("openai/").unwrap_or(wanted);
        let wanted = wanted.strip_prefix("google/").unwrap_or(wanted);
        // Config overrides were pushed last; search from the end so they win.
        self.entries
            .iter()
            .rev()
            .find(|(key, _, _)| model_matches(key, wanted))
            .map(|(_, price, entry)| (entry.as_str(), price))
    }

    /// Cost of `usage` for `model`, or unknown.
    pub fn cost(&self, model: Option<&str>, usage: &TokenUsage) -> CostEstimate {
        match model.and_then(|m| self.lookup(m)) {
            Some((entry, price)) => CostEstimate {
                usd: Some(price.cost(usage)),
                source: CostSource::PriceTable { entry: entry.to_string() },
            },
            None => CostEstimate { usd: None, source: CostSource::Unknown },
        }
    }

    /// All entries as `(model, price, entry name)`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &ModelPrice, &str)> {
        self.entries.iter().map(|(m, p, e)| (m.as_str(), p, e.as_str()))
    }
}

fn model_matches(key: &str, model: &str) -> bool {
    if model == key {
        return true;
    }
    match model.strip_prefix(key).and_then(|rest| rest.strip_prefix('-')) {
        Some(rest) => {
            rest == "latest" || (rest.len() >= 6 && rest.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
        }
        None => false,
    }
}

/// An amount in USD as a person reads it: `$2.00`, `$0.055`, `$0.0125` (two to four decimals, no trailing
/// zeros past the cents), so that a budget of $0.055 is never shown as `$0.06`.
pub fn dollars(v: impl Into<f64>) -> String {
    let v: f64 = v.into();
    let text = format!("{v:.4}");
    let (whole, frac) = text.split_once('.').unwrap_or((&text, "0000"));
    let frac = frac.trim_end_matches('0');
    format!("${whole}.{frac:0<2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_keep_the_digits_that_matter() {
        assert_eq!(dollars(2.0), "$2.00");
        assert_eq!(dollars(0.055), "$0.055");
        assert_eq!(dollars(0.03), "$0.03");
        assert_eq!(dollars(0.0125), "$0.0125");
        assert_eq!(dollars(0.12345), "$0.1235");
        assert_eq!(dollars(10.5), "$10.50");
        assert_eq!(dollars(0.0), "$0.00");
    }

    #[test]
    fn claude_example_matches_reported_cost() {
        // The worked example of agent-protocols.md §2.3: 22 in, 297 out, 55894 cache read, 19250 cache write.
        let usage =
            TokenUsage { input: 22, output: 297, cache_read: 55_894, cache_write: 19_250, reasoning: 0 };
        let cost = PriceTable::builtin().cost(Some("claude-sonnet-4-5-20250929"), &usage);
        assert!((cost.usd.unwrap() - 0.093_476_7).abs() < 1e-9, "{cost:?}");
        assert!(
            matches!(cost.source, CostSource::PriceTable { ref entry } if entry.starts_with("builtin:claude-sonnet-4-5@"))
        );
    }

    #[test]
    fn no_loose_prefix_matches() {
        let t = PriceTable::builtin();
        assert!(t.lookup("claude-opus-4-8").is_none());
        assert_eq!(t.lookup("gpt-5-mini").unwrap().1.input, 0.25);
        assert_eq!(t.cost(None, &TokenUsage::default()).source, CostSource::Unknown);
        assert!(t.cost(Some("mystery-model"), &TokenUsage::default()).usd.is_none());
    }

    #[test]
    fn overrides_win() {
        let mut t = PriceTable::builtin();
        t.set_override("gpt-5", p(2.0, 20.0, 0.2, 0.0));
        let (entry, price) = t.lookup("gpt-5").unwrap();
        assert_eq!(entry, "config:gpt-5");
        assert_eq!(price.input, 2.0);
    }
}
