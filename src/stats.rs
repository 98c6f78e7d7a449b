//! Uncertainty from mergeable sums: standard errors and 95% intervals of shares, means and paired
//! differences over the profiles of a run.
//!
//! Profiles are drawn independently, with replacement, from the population, so a per-profile
//! quantity `x_j` (1 if a tariff was on page 1, the clicks it got, a saving) is an i.i.d. sample
//! and its mean has standard error `sd(x) / sqrt(n)`. Every figure needs only `n`, `sum x` and
//! `sum x^2`, integers that merge across chunks in any order; the floats are computed once, when
//! a summary is written. The intervals cover the Monte Carlo error of sampling profiles from the
//! recorded visits (the visits file is taken as the population).

use serde::{Deserialize, Serialize};

/// The normal quantile of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A point estimate with its standard error and 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error; `None` (JSON `null`, CSV `NA`) for a mean of a single value, whose
    /// sample variance is undefined, and for a share or mean of no values: never a false 0.
    pub se: Option<f64>,
    /// The 95% interval, `[low, high]`; `None` when `se` is.
    pub ci95: Option<[f64; 2]>,
}

impl Estimate {
    /// A share `k / n` with the binomial standard error and the Wilson score interval (which
    /// stays inside 0..1 and behaves near 0 and 1, where the hypothetical tariffs often are).
    pub fn share(k: u64, n: u64) -> Estimate {
        if n == 0 {
            return Estimate::zero();
        }
        let (k, n) = (k as f64, n as f64);
        let p = k / n;
        let se = (p * (1.0 - p) / n).sqrt();
        let z2 = Z95 * Z95;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
        Estimate {
            value: p,
            se: Some(se),
            // At k = 0 (or n) the bound is 0 (or 1) exactly, not a rounding error away from it.
            ci95: Some([
                if k == 0.0 {
                    0.0
                } else {
                    (centre - half).max(0.0)
                },
                if k == n {
                    1.0
                } else {
                    (centre + half).min(1.0)
                },
            ]),
        }
    }

    /// The mean of `n` values from their sum and sum of squares, with the standard error of the
    /// mean (sample variance, n - 1) and the normal interval; of a single value, no standard
    /// error nor interval (one value says nothing of the spread).
    pub fn mean(n: u64, sum: f64, sum_sq: f64) -> Estimate {
        if n == 0 {
            return Estimate::zero();
        }
        let nf = n as f64;
        let m = sum / nf;
        let se = (n > 1).then(|| ((sum_sq - sum * sum / nf).max(0.0) / (nf - 1.0) / nf).sqrt());
        Estimate::normal(m, se)
    }

    /// A total `n x mean`, from the same sums: the estimate and its error scale by `n`.
    pub fn total(n: u64, sum: f64, sum_sq: f64) -> Estimate {
        let m = Estimate::mean(n, sum, sum_sq);
        let nf = n as f64;
        Estimate::normal(m.value * nf, m.se.map(|se| se * nf))
    }

    /// A figure known exactly, not estimated (a share of a tariff that is not on the market: 0).
    pub fn exact(value: f64) -> Estimate {
        Estimate::normal(value, Some(0.0))
    }

    /// `value +- 1.96 se` (no interval without a standard error).
    pub fn normal(value: f64, se: Option<f64>) -> Estimate {
        Estimate {
            value,
            se,
            ci95: se.map(|se| [value - Z95 * se, value + Z95 * se]),
        }
    }

    /// The estimate in another unit: its value and standard error divided by `d` (pence to
    /// pounds: 100), the normal interval around them.
    pub fn divided(self, d: f64) -> Estimate {
        Estimate::normal(self.value / d, self.se.map(|se| se / d))
    }

    /// Rounded for writing: `digits` decimals on every figure.
    pub fn rounded(self, digits: i32) -> Estimate {
        let f = 10f64.powi(digits);
        let r = |x: f64| (x * f).round() / f;
        Estimate {
            value: r(self.value),
            se: self.se.map(r),
            ci95: self.ci95.map(|[low, high]| [r(low), r(high)]),
        }
    }

    /// Of no values: 0, with no standard error nor interval (nothing is known, not 0 for sure).
    fn zero() -> Estimate {
        Estimate {
            value: 0.0,
            se: None,
            ci95: None,
        }
    }
}

/// Serde adapter: an `i128` written as a JSON number (sums of squares of pence outgrow `i64`).
pub mod wide {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the number.
    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i128(*v)
    }

    /// Reads the number (0 when absent, with `#[serde(default)]`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        i128::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_matches_the_textbook() {
        let e = Estimate::share(30, 200);
        assert!((e.se.unwrap() - (0.15f64 * 0.85 / 200.0).sqrt()).abs() < 1e-15);
        let [low, high] = e.ci95.unwrap();
        assert!(low < 0.15 && high > 0.15);
        let zero = Estimate::share(0, 1000).ci95.unwrap();
        assert_eq!(zero[0], 0.0);
        assert!(
            zero[1] > 0.0,
            "Wilson gives an upper bound above 0 at p = 0"
        );
    }

    #[test]
    fn a_mean_matches_a_direct_computation() {
        let xs = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0];
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
        let e = Estimate::mean(
            xs.len() as u64,
            xs.iter().sum(),
            xs.iter().map(|x| x * x).sum(),
        );
        assert!((e.value - m).abs() < 1e-12);
        assert!((e.se.unwrap() - (var / n).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn a_mean_of_one_value_has_no_standard_error_nor_interval() {
        // One value says nothing of the spread: no 0 that reads as certainty.
        let one = Estimate::mean(1, 250.0, 62_500.0);
        assert_eq!(one.value, 250.0);
        assert_eq!((one.se, one.ci95), (None, None));
        let total = Estimate::total(1, 0.3, 0.09);
        assert_eq!((total.se, total.ci95), (None, None));
        assert_eq!(one.divided(100.0).value, 2.5);
        assert_eq!(one.rounded(2).se, None);
        // Written as JSON null, read back as None.
        let json = serde_json::to_string(&one).unwrap();
        assert_eq!(json, r#"{"value":250.0,"se":null,"ci95":null}"#);
        assert_eq!(serde_json::from_str::<Estimate>(&json).unwrap(), one);
        // A share of no profiles (a tariff eligible for none): 0, and nothing known about it.
        let none = Estimate::share(0, 0);
        assert_eq!((none.value, none.se, none.ci95), (0.0, None, None));
        // Two equal values: a sample variance of 0, a standard error of 0.
        let two = Estimate::mean(2, 500.0, 125_000.0);
        assert_eq!((two.se, two.ci95), (Some(0.0), Some([250.0, 250.0])));
    }
}
