//! Deciding an A/B test: each variant's rate (unique human opens or clicks over delivered
//! messages), the leader, and whether it beats every other variant with a two-proportion
//! z-test (two-sided, pooled), at the test's confidence divided among the comparisons
//! (Bonferroni: with k variants the leader is compared k - 1 times). When it does not,
//! the test's fallback decides: the leader all the same, or the first variant.

use crate::ab::{AbTest, Fallback};

/// A variant's results when the test is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Messages delivered (the denominator; messages sent when none is delivered yet).
    pub delivered: i64,
    /// Recipients who opened (or clicked), machines left out.
    pub engaged: i64,
}

impl Tally {
    fn rate(self) -> f64 {
        if self.delivered <= 0 {
            0.0
        } else {
            self.engaged as f64 / self.delivered as f64
        }
    }
}

/// The decision and why, in words for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub winner: usize,
    /// The leader beat every other variant at the test's confidence.
    pub significant: bool,
    /// The largest p-value of the leader's comparisons (1 when nothing could be compared).
    pub p_value: f64,
    pub reason: String,
}

/// Two-sided p-value that two proportions differ (pooled two-proportion z-test); 1 when a
/// side has no messages or nobody on either side engaged.
pub fn two_proportion_p(a: Tally, b: Tally) -> f64 {
    if a.delivered <= 0 || b.delivered <= 0 {
        return 1.0;
    }
    let (n1, n2) = (a.delivered as f64, b.delivered as f64);
    let pooled = (a.engaged + b.engaged) as f64 / (n1 + n2);
    let variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    if variance <= 0.0 {
        return 1.0;
    }
    let z = (a.rate() - b.rate()).abs() / variance.sqrt();
    (2.0 * (1.0 - normal_cdf(z))).clamp(0.0, 1.0)
}

/// The standard normal distribution function, by the complementary error function
/// (W. J. Cody's rational approximation as in Numerical Recipes' `erfc`, error < 1.2e-7).
fn normal_cdf(z: f64) -> f64 {
    1.0 - 0.5 * erfc(z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Decides the winner of `test` from each variant's tally (in variant order).
pub fn decide(test: &AbTest, tallies: &[Tally]) -> Decision {
    let name = |i: usize| {
        test.variants
            .get(i)
            .map_or_else(|| format!("#{i}"), |v| v.name.clone())
    };
    let percent = |t: Tally| format!("{:.2} %", t.rate() * 100.0);
    let Some(leader) = (0..tallies.len()).reduce(|best, i| {
        if tallies[i].rate() > tallies[best].rate() {
            i
        } else {
            best
        }
    }) else {
        return Decision {
            winner: 0,
            significant: false,
            p_value: 1.0,
            reason: "no results: the first variant is sent".into(),
        };
    };
    let comparisons = tallies.len().saturating_sub(1).max(1);
    let alpha = (1.0 - test.confidence) / comparisons as f64;
    let p_value = (0..tallies.len())
        .filter(|&i| i != leader)
        .map(|i| two_proportion_p(tallies[leader], tallies[i]))
        .fold(0.0_f64, f64::max);
    let metric = test.metric.as_str();
    let rates = (0..tallies.len())
        .map(|i| {
            format!(
                "{} {} ({}/{})",
                name(i),
                percent(tallies[i]),
                tallies[i].engaged,
                tallies[i].delivered
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if p_value < alpha {
        return Decision {
            winner: leader,
            significant: true,
            p_value,
            reason: format!(
                "{} wins on unique {metric}: {rates}; p = {p_value:.4} < {alpha:.4} ({:.1} % confidence over {comparisons} comparison(s))",
                name(leader),
                test.confidence * 100.0
            ),
        };
    }
    let winner = match test.fallback {
        Fallback::Leader => leader,
        Fallback::First => 0,
    };
    Decision {
        winner,
        significant: false,
        p_value,
        reason: format!(
            "no variant is significantly better on unique {metric} ({rates}; p = {p_value:.4}, needed < {alpha:.4}): fallback {} sends {}",
            test.fallback.as_str(),
            name(winner)
        ),
    }
}
