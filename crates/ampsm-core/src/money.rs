//! Money: budgets, spend and costs in US dollars, and the one budget check. The store keeps amounts as REAL
//! dollars (prices are fractions of a cent per token), so [`Money`] wraps the same `f64`; it serializes as
//! that plain number and prints like one (`{:.4}` works), so JSON, CSV and text output do not change.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// Share of a budget at which a warning is given.
pub const BUDGET_WARN_SHARE: f64 = 0.8;

/// An amount in US dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(f64);

/// Where spend stands against a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetLevel {
    /// Below the warning mark.
    Under,
    /// At or past [`BUDGET_WARN_SHARE`] of the budget, below the budget.
    Warn,
    /// The budget is spent: nothing more may run.
    Reached,
}

impl Money {
    /// Nothing.
    pub const ZERO: Money = Money(0.0);

    /// `usd` dollars.
    pub const fn from_usd(usd: f64) -> Money {
        Money(usd)
    }

    /// The amount in dollars.
    pub const fn usd(self) -> f64 {
        self.0
    }

    /// Whether this is a usable budget: a finite amount above zero.
    pub fn is_positive(self) -> bool {
        self.0.is_finite() && self.0 > 0.0
    }

    /// Whether this spend has used up `budget` (the one budget check: reached at exactly the budget).
    pub fn reached(self, budget: Money) -> bool {
        self.0 >= budget.0
    }

    /// Where this spend stands against `budget`.
    pub fn level(self, budget: Money) -> BudgetLevel {
        if self.reached(budget) {
            BudgetLevel::Reached
        } else if self.0 >= BUDGET_WARN_SHARE * budget.0 {
            BudgetLevel::Warn
        } else {
            BudgetLevel::Under
        }
    }

    /// Whether this spend has reached the warning mark of `budget` (the budget itself included).
    pub fn warns(self, budget: Money) -> bool {
        self.level(budget) != BudgetLevel::Under
    }

    /// This spend as a percentage of `budget`.
    pub fn percent_of(self, budget: Money) -> f64 {
        100.0 * self.0 / budget.0
    }

    /// What is left of `budget` after this spend (never below zero).
    pub fn left_of(self, budget: Money) -> Money {
        Money((budget.0 - self.0).max(0.0))
    }

    /// The amount as a person reads it: `$2.00`, `$0.055` (see [`crate::dollars`]).
    pub fn text(self) -> String {
        crate::pricing::dollars(self.0)
    }
}

impl fmt::Display for Money {
    /// The number of dollars, formatted as an `f64` would be (precision and width included).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<f64> for Money {
    fn from(usd: f64) -> Money {
        Money(usd)
    }
}

impl From<Money> for f64 {
    fn from(m: Money) -> f64 {
        m.0
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl Mul<f64> for Money {
    type Output = Money;
    fn mul(self, rhs: f64) -> Money {
        Money(self.0 * rhs)
    }
}

impl Div<f64> for Money {
    type Output = Money;
    fn div(self, rhs: f64) -> Money {
        Money(self.0 / rhs)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_reached_at_exactly_its_amount_and_warns_at_four_fifths() {
        let budget = Money::from_usd(1.0);
        assert_eq!(Money::from_usd(0.79).level(budget), BudgetLevel::Under);
        assert_eq!(Money::from_usd(0.8).level(budget), BudgetLevel::Warn);
        assert!(Money::from_usd(1.0).reached(budget) && !Money::from_usd(0.9999).reached(budget));
        assert_eq!(Money::from_usd(1.5).left_of(budget), Money::ZERO);
    }

    #[test]
    fn money_prints_and_serializes_as_the_plain_number() {
        let m = Money::from_usd(0.055);
        assert_eq!(format!("${m:.4}"), "$0.0550");
        assert_eq!(m.text(), "$0.055");
        assert_eq!(serde_json::to_string(&Some(m)).unwrap(), "0.055");
        assert_eq!(serde_json::from_str::<Money>("2.5").unwrap(), Money::from_usd(2.5));
        let total: Money = [m, m].iter().sum();
        assert!((total.usd() - 0.11).abs() < 1e-12);
    }
}
