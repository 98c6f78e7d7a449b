//! Uncertainty from mergeable sums: standard errors and 95% intervals of shares, means and paired
//! differences over the profiles of a run.
//!
//! Profiles are drawn independently, with replacement, from the population (the visits that pass
//! the run's filter), so a per-profile quantity `x_j` (1 if a tariff was on page 1, the clicks it
//! got, a saving) is an i.i.d. sample of it. The population is itself a sample of the site's
//! visitors, and an analyst's question is about them: the mean of `n` profiles drawn from `P`
//! visits varies around the visitors' mean with variance `sd(x)^2 (1/n + 1/P)`, the Monte Carlo
//! error of the draw plus that of the visits. So every standard error is the textbook one times
//! `sqrt(1 + n/P)` ([`inflation`]), and a share's Wilson interval takes `n / (1 + n/P)` as its
//! sample size: drawing more profiles than there are visits narrows an interval only down to what
//! the visits can tell. For the same reason a mean's interval takes Student's t at its effective
//! size, `n / (1 + n/P)` ([`t95`]): a figure that few visits hold gets the width few values
//! warrant. Every figure needs only `n`, `P`, `sum x` and `sum x^2`, integers that merge across
//! chunks in any order; the floats are computed once, when a summary is written.

use serde::{Deserialize, Serialize};

/// The normal quantile of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Two-sided 95% quantiles of Student's t, `(degrees of freedom, quantile)`: `StudentsT::inverse_cdf
/// (0.975)` of statrs 0.19 (a test checks them against it), densest where the quantile bends most.
const T95: [(f64, f64); 57] = [
    (1.0, 12.70620473617469),
    (1.0625, 11.069192540719657),
    (1.125, 9.810840249710397),
    (1.1875, 8.821336348430467),
    (1.25, 8.027951377252066),
    (1.3125, 7.381021641831463),
    (1.375, 6.845718903221499),
    (1.4375, 6.397040715780433),
    (1.5, 6.016663104427924),
    (1.5625, 5.690907012217756),
    (1.625, 5.409391086681198),
    (1.6875, 5.164118897607379),
    (1.75, 4.948847849116085),
    (1.8125, 4.758644775507656),
    (1.875, 4.589567731174128),
    (1.9375, 4.438434640302172),
    (2.0, 4.302652729749467),
    (2.25, 3.8754802232206673),
    (2.5, 3.5746548420036848),
    (2.75, 3.3525454330616076),
    (3.0, 3.1824463052837046),
    (3.25, 3.0483398701866458),
    (3.5, 2.9400886379827216),
    (3.75, 2.850989283591724),
    (4.0, 2.776445105197795),
    (4.5, 2.6589123472044047),
    (5.0, 2.570581835636314),
    (5.5, 2.50185861758924),
    (6.0, 2.4469118511449652),
    (6.5, 2.402002007910271),
    (7.0, 2.364624251592785),
    (7.5, 2.333039626864976),
    (8.0, 2.3060041352041707),
    (8.5, 2.2826048933924477),
    (9.0, 2.262157162798205),
    (9.5, 2.2441374614923006),
    (10.0, 2.228138851986273),
    (11.0, 2.200985160091634),
    (12.0, 2.1788128296672054),
    (13.0, 2.1603686564628095),
    (14.0, 2.1447866879177897),
    (15.0, 2.131449545559734),
    (16.0, 2.1199052992212404),
    (17.0, 2.109815577833272),
    (18.0, 2.1009220402409565),
    (19.0, 2.0930240544082417),
    (20.0, 2.0859634472657946),
    (21.0, 2.0796138447275436),
    (22.0, 2.0738730679038766),
    (23.0, 2.068657610418929),
    (24.0, 2.0638985616278602),
    (25.0, 2.059538552753143),
    (26.0, 2.0555294386426555),
    (27.0, 2.0518305164800905),
    (28.0, 2.048407141795102),
    (29.0, 2.0452296421323903),
    (30.0, 2.042272456301077),
];

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom (below 1, 1's): a table
/// at its points, linear in `1/df` between them (within 0.3% of the exact quantile), and beyond 30
/// the Cornish-Fisher expansion in `1/df` (within 1e-7). Arithmetic only: native and WebAssembly
/// builds give the same bits, as their summaries must.
pub fn t95(df: f64) -> f64 {
    let df = if df.is_nan() { 1.0 } else { df.max(1.0) };
    if df >= 30.0 {
        let (z, v) = (Z95, df);
        let (z2, z3) = (z * z, z * z * z);
        let (z5, z7) = (z3 * z2, z3 * z2 * z2);
        let z9 = z7 * z2;
        return z
            + (z3 + z) / (4.0 * v)
            + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
            + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
            + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z)
                / (92160.0 * v * v * v * v);
    }
    let i = T95.iter().rposition(|&(d, _)| d <= df).unwrap_or(0);
    let (a, ta) = T95[i];
    if a == df || i + 1 == T95.len() {
        return ta;
    }
    let (b, tb) = T95[i + 1];
    ta + (1.0 / a - 1.0 / df) / (1.0 / a - 1.0 / b) * (tb - ta)
}

/// The factor on the variance of a run's estimates: `1 + profiles / population`, for `profiles`
/// drawn with replacement from `population` visits that are themselves a sample of the visitors
/// (see the module's documentation); 1 when the population is not known (0).
pub fn inflation(profiles: u64, population: u64) -> f64 {
    if population == 0 {
        1.0
    } else {
        1.0 + profiles as f64 / population as f64
    }
}

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
    /// stays inside 0..1 and behaves near 0 and 1, where the hypothetical tariffs often are), both
    /// at the effective sample size `n / inflation` ([`inflation`]).
    pub fn share(k: u64, n: u64, inflation: f64) -> Estimate {
        if n == 0 {
            return Estimate::zero();
        }
        let p = k as f64 / n as f64;
        // The bounds at k = 0 and k = n are exact (below), whatever the effective size.
        let (none, all) = (k == 0, k == n);
        let n = n as f64 / inflation;
        let se = (p * (1.0 - p) / n).sqrt();
        let z2 = Z95 * Z95;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
        Estimate {
            value: p,
            se: Some(se),
            // At k = 0 (or n) the bound is 0 (or 1) exactly, not a rounding error away from it.
            ci95: Some([
                if none { 0.0 } else { (centre - half).max(0.0) },
                if all { 1.0 } else { (centre + half).min(1.0) },
            ]),
        }
    }

    /// The mean of `n` values from their sum and sum of squares, with the standard error of the
    /// mean (sample variance, n - 1) times `sqrt(inflation)` ([`inflation`]) and Student's t
    /// interval at the effective sample size `n / inflation` ([`t95`] with `n / inflation - 1`
    /// degrees of freedom: the distinct visits behind a figure, less one, when profiles repeat
    /// visits; the textbook `n - 1` when they do not). A figure seen by few visits (a tariff rarely
    /// shown) gets the wide interval its few values warrant, not the normal one; with thousands the
    /// two agree. Of a single value, or of fewer than two visits' worth, no standard error nor
    /// interval (one value says nothing of the spread; see [`Estimate::mean_of`]).
    pub fn mean(n: u64, sum: f64, sum_sq: f64, inflation: f64) -> Estimate {
        Estimate::mean_of(n, sum, sum_sq, inflation, n)
    }

    /// [`Estimate::mean`] of `n` values of which at most `contributors` are not 0 (the clicks of a
    /// tariff come only from the profiles it was shown to): its interval's degrees of freedom are
    /// those of `contributors` values, which carry all of the variation. Below two visits' worth
    /// (`contributors / inflation < 2`, fewer than one degree of freedom) it has no standard error
    /// nor interval, as a mean of one value: t's quantile grows without bound there (16 at 0.9
    /// degrees of freedom, 165 at 0.5), and no width would be honest.
    pub fn mean_of(n: u64, sum: f64, sum_sq: f64, inflation: f64, contributors: u64) -> Estimate {
        if n == 0 {
            return Estimate::zero();
        }
        let nf = n as f64;
        let m = sum / nf;
        let df = contributors.min(n) as f64 / inflation - 1.0;
        let se = (n > 1 && df >= 1.0)
            .then(|| ((sum_sq - sum * sum / nf).max(0.0) / (nf - 1.0) / nf * inflation).sqrt());
        let q = t95(df);
        Estimate {
            value: m,
            se,
            ci95: se.map(|se| [m - q * se, m + q * se]),
        }
    }

    /// A total `n x mean`, from the same sums: the estimate, its error and its interval scale by
    /// `n` ([`Estimate::mean_of`]: at most `contributors` of the `n` values are not 0).
    pub fn total(n: u64, sum: f64, sum_sq: f64, inflation: f64, contributors: u64) -> Estimate {
        Estimate::mean_of(n, sum, sum_sq, inflation, contributors).scaled(n as f64)
    }

    /// The estimate times `k` (> 0): value, standard error and interval.
    fn scaled(self, k: f64) -> Estimate {
        Estimate {
            value: self.value * k,
            se: self.se.map(|se| se * k),
            ci95: self.ci95.map(|[low, high]| [low * k, high * k]),
        }
    }

    /// This estimate of a figure that cannot be negative (clicks): its interval's low end at 0 at
    /// the least.
    pub fn non_negative(self) -> Estimate {
        Estimate {
            ci95: self.ci95.map(|[low, high]| [low.max(0.0), high]),
            ..self
        }
    }

    /// The paired difference of two shares of the same `n` profiles, `(gained - lost) / n`:
    /// `gained` profiles have the property only after, `lost` only before. The standard error is
    /// the paired one (as [`Estimate::mean`] of the per-profile differences, with `inflation`); the
    /// interval is Newcombe's MOVER from the Wilson intervals of the two discordant shares (without
    /// his correction for their negative correlation, so a little narrow: negligibly when few
    /// profiles change, where it matters), at the effective sample size as
    /// [`Estimate::share`]. Unlike `difference +- 1.96 se` it never collapses to a point when few or
    /// no profiles change (none of 200,000 changing still leaves the bound of a share of 0), and it
    /// stays within -1..1.
    pub fn share_difference(gained: u64, lost: u64, n: u64, inflation: f64) -> Estimate {
        if n == 0 {
            return Estimate::zero();
        }
        let (g, l, nf) = (gained as f64, lost as f64, n as f64);
        let paired = Estimate::mean(n, g - l, g + l, inflation);
        let gain = Estimate::share(gained, n, inflation);
        let loss = Estimate::share(lost, n, inflation);
        // One profile: no paired variance, so no interval either (as a mean of one value).
        let (Some(_), Some([gl, gu]), Some([ll, lu])) = (paired.se, gain.ci95, loss.ci95) else {
            return paired;
        };
        let (pg, pl) = (g / nf, l / nf);
        let d = pg - pl;
        Estimate {
            value: d,
            se: paired.se,
            ci95: Some([
                (d - ((pg - gl).powi(2) + (lu - pl).powi(2)).sqrt()).max(-1.0),
                (d + ((gu - pg).powi(2) + (pl - ll).powi(2)).sqrt()).min(1.0),
            ]),
        }
    }

    /// The paired total difference `sum` over `n` profiles of a per-profile change that is 0 for
    /// every profile but the `up.0` that changed up (by `up.1` in all) and the `down.0` that
    /// changed down (by `down.1` in all, a positive figure), each change at most `bound` (clicks:
    /// the change of a click-through rate, at most the largest rate the figure was seen at). The
    /// standard error is the paired one (as [`Estimate::total`]: 0 when nothing changed, as a
    /// share's of no profile). The interval is never a point:
    /// - with at least two visits' worth of profiles that changed, the wider of Student's t at
    ///   their degrees of freedom (they carry all of the variation, however many others there
    ///   are: [`Estimate::mean_of`]) and Newcombe's MOVER from the parts that changed, each the
    ///   Wilson interval of its share of profiles ([`Estimate::share`], at the effective size)
    ///   times its mean change (so that changes all alike, which t reads as certain, are not);
    /// - with fewer, where t would be unbounded or a point (`[0, 0]` when nothing changed), what
    ///   changes unseen could make: MOVER from both parts, each from its Wilson low end times its
    ///   mean change to its Wilson high end times `bound`, as [`Estimate::share_difference`] is
    ///   for shares.
    ///
    /// No standard error nor interval where the paired one is undefined (fewer than two visits'
    /// worth of profiles in all), nor with `bound` 0 and nothing changed (a figure seen nowhere it
    /// could change).
    pub fn paired_total(
        n: u64,
        sum: f64,
        sum_sq: f64,
        inflation: f64,
        up: (u64, f64),
        down: (u64, f64),
        bound: f64,
    ) -> Estimate {
        let t = Estimate::total(n, sum, sum_sq, inflation, up.0 + down.0);
        let se = Estimate::total(n, sum, sum_sq, inflation, n).se;
        if se.is_none() || (bound <= 0.0 && up.0 + down.0 == 0) {
            return Estimate {
                ci95: None,
                se: None,
                ..t
            };
        }
        let nf = n as f64;
        let few = t.ci95.is_none();
        // A part's mean over all profiles and its interval: its share's Wilson interval times its
        // mean change; with few changes, an unseen change as large as any could be (`bound`).
        // Where many changed, a part with none adds nothing (t covers what was not seen).
        let part = |(k, total): (u64, f64)| {
            if k == 0 && !few {
                return (0.0, 0.0, 0.0);
            }
            let [low, high] = Estimate::share(k, n, inflation).ci95.unwrap_or([0.0, 1.0]);
            let change = if k == 0 { bound } else { total / k as f64 };
            (
                total / nf,
                low * change,
                high * if few { bound } else { change },
            )
        };
        let ((u, u_low, u_high), (l, l_low, l_high)) = (part(up), part(down));
        let d = sum / nf;
        let (a, b, c, e) = (u - u_low, l_high - l, u_high - u, l - l_low);
        let mover = [
            (d - (a * a + b * b).sqrt()) * nf,
            (d + (c * c + e * e).sqrt()) * nf,
        ];
        Estimate {
            value: sum,
            se,
            ci95: Some(match t.ci95 {
                Some([low, high]) => [low.min(mover[0]), high.max(mover[1])],
                None => mover,
            }),
        }
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

    /// The estimate in another unit (`d` > 0): its value, standard error and interval divided by
    /// `d` (pence to pounds: 100; divided, not multiplied by `1/d`: 101.5 pence is 1.015 pounds).
    pub fn divided(self, d: f64) -> Estimate {
        Estimate {
            value: self.value / d,
            se: self.se.map(|se| se / d),
            ci95: self.ci95.map(|[low, high]| [low / d, high / d]),
        }
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
        let e = Estimate::share(30, 200, 1.0);
        assert!((e.se.unwrap() - (0.15f64 * 0.85 / 200.0).sqrt()).abs() < 1e-15);
        let [low, high] = e.ci95.unwrap();
        assert!(low < 0.15 && high > 0.15);
        let zero = Estimate::share(0, 1000, 1.0).ci95.unwrap();
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
            1.0,
        );
        assert!((e.value - m).abs() < 1e-12);
        assert!((e.se.unwrap() - (var / n).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn the_t_quantile_is_statrs_s_within_its_stated_error() {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        let exact = |df: f64| StudentsT::new(0.0, 1.0, df).unwrap().inverse_cdf(0.975);
        for &(df, q) in &T95 {
            assert!((q - exact(df)).abs() < 1e-9, "table at {df}");
        }
        let mut df = 1.0;
        while df < 5_000.0 {
            let (got, want) = (t95(df), exact(df));
            let tolerance = if df < 30.0 { 3e-3 * want } else { 1e-7 };
            assert!(
                (got - want).abs() <= tolerance,
                "df {df}: {got} against {want}"
            );
            df *= 1.013;
        }
        // Below 1 degree of freedom (fewer than two values' worth): 1's; far beyond, the normal.
        assert_eq!(t95(0.3), t95(1.0));
        assert_eq!(t95(f64::NAN), t95(1.0));
        assert!((t95(1e12) - Z95).abs() < 1e-9);
    }

    #[test]
    fn a_mean_of_few_values_has_student_s_interval_at_its_effective_size() {
        let xs = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0];
        let (n, sum, sq) = (6, xs.iter().sum(), xs.iter().map(|x| x * x).sum());
        // Six values drawn once each: t with 5 degrees of freedom (2.5706), not 1.96.
        let e = Estimate::mean(n, sum, sq, 1.0);
        let [low, high] = e.ci95.unwrap();
        assert!(((high - low) / 2.0 / e.se.unwrap() - 2.570_581_836).abs() < 1e-6);
        // 35 profiles drawn from a tariff's few visits at 10 draws per visit (inflation 11): about
        // 3.2 visits' worth, so t with 2.2 degrees of freedom.
        let rare = Estimate::mean(35, 35.0 * 120.0, 35.0 * 150.0 * 150.0, 11.0);
        let [low, high] = rare.ci95.unwrap();
        let q = (high - low) / 2.0 / rare.se.unwrap();
        assert!((q - t95(35.0 / 11.0 - 1.0)).abs() < 1e-12 && q > 3.8, "{q}");
        // Thousands of visits: the normal interval, to 4 digits.
        let many = Estimate::mean(200_000, 0.0, 200_000.0, 11.0);
        let [low, high] = many.ci95.unwrap();
        assert!(((high - low) / 2.0 / many.se.unwrap() - Z95).abs() < 2e-4);
        // A total of clicks that only 35 of 200,000 profiles gave: the interval of 35 profiles'
        // worth of visits, and its value and error scaled by n.
        let clicks = Estimate::total(200_000, 3.5, 0.35, 11.0, 35);
        let [low, high] = clicks.ci95.unwrap();
        assert!(((high - low) / 2.0 / clicks.se.unwrap() - q).abs() < 1e-9);
        let per = Estimate::mean(200_000, 3.5, 0.35, 11.0);
        assert!((clicks.value - 3.5).abs() < 1e-12);
        assert!((clicks.se.unwrap() - 200_000.0 * per.se.unwrap()).abs() < 1e-9);
        // In another unit, the same interval, divided (exactly: 101.5 pence is 1.015 pounds).
        let gbp = rare.divided(100.0);
        assert_eq!(gbp.ci95.unwrap()[1], rare.ci95.unwrap()[1] / 100.0);
        assert_eq!(
            Estimate::mean(2, 203.0, 101.5 * 101.5 * 2.0, 1.0)
                .divided(100.0)
                .value,
            1.015
        );
        // 21 profiles at 10 draws per visit: under two visits' worth, so no interval (t would
        // need 16 at 0.9 degrees of freedom, and more below); nor for clicks no profile could give.
        let few = Estimate::mean(21, 21.0 * 120.0, 21.0 * 150.0 * 150.0, 11.0);
        assert_eq!((few.value, few.se, few.ci95), (120.0, None, None));
        let none = Estimate::total(200_000, 0.0, 0.0, 11.0, 0);
        assert_eq!((none.value, none.se, none.ci95), (0.0, None, None));
        // Exactly two visits' worth: one degree of freedom.
        let two = Estimate::mean(22, 22.0 * 120.0, 22.0 * 150.0 * 150.0, 11.0);
        let [low, high] = two.ci95.unwrap();
        assert!(((high - low) / 2.0 / two.se.unwrap() - t95(1.0)).abs() < 1e-12);
    }

    #[test]
    fn a_mean_of_one_value_has_no_standard_error_nor_interval() {
        // One value says nothing of the spread: no 0 that reads as certainty.
        let one = Estimate::mean(1, 250.0, 62_500.0, 1.0);
        assert_eq!(one.value, 250.0);
        assert_eq!((one.se, one.ci95), (None, None));
        let total = Estimate::total(1, 0.3, 0.09, 1.0, 1);
        assert_eq!((total.se, total.ci95), (None, None));
        assert_eq!(one.divided(100.0).value, 2.5);
        assert_eq!(one.rounded(2).se, None);
        // Written as JSON null, read back as None.
        let json = serde_json::to_string(&one).unwrap();
        assert_eq!(json, r#"{"value":250.0,"se":null,"ci95":null}"#);
        assert_eq!(serde_json::from_str::<Estimate>(&json).unwrap(), one);
        // A share of no profiles (a tariff eligible for none): 0, and nothing known about it.
        let none = Estimate::share(0, 0, 1.0);
        assert_eq!((none.value, none.se, none.ci95), (0.0, None, None));
        // Two equal values: a sample variance of 0, a standard error of 0.
        let two = Estimate::mean(2, 500.0, 125_000.0, 1.0);
        assert_eq!((two.se, two.ci95), (Some(0.0), Some([250.0, 250.0])));
    }

    #[test]
    fn drawing_more_profiles_than_visits_narrows_an_interval_only_to_what_the_visits_tell() {
        // 200,000 profiles from 20,000 visits: the variance of a mean is sd^2 (1/n + 1/P).
        let k = inflation(200_000, 20_000);
        assert!((k - 11.0).abs() < 1e-12);
        assert_eq!(
            inflation(5, 0),
            1.0,
            "population unknown: the textbook figures"
        );
        let xs = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0];
        let (n, sum, sq) = (6, xs.iter().sum(), xs.iter().map(|x| x * x).sum());
        let plain = Estimate::mean(n, sum, sq, 1.0).se.unwrap();
        // Six profiles at three draws per visit: two visits' worth, the least with an interval.
        let wide = Estimate::mean(n, sum, sq, 3.0).se.unwrap();
        assert!((wide - 3f64.sqrt() * plain).abs() < 1e-12);
        // A share: its Wilson interval at the effective size n / inflation, the same as a share
        // of that many profiles.
        let drawn = Estimate::share(4_000, 40_000, 4.0);
        let effective = Estimate::share(1_000, 10_000, 1.0);
        assert!((drawn.se.unwrap() - effective.se.unwrap()).abs() < 1e-15);
        let ([a, b], [c, d]) = (drawn.ci95.unwrap(), effective.ci95.unwrap());
        assert!((a - c).abs() < 1e-12 && (b - d).abs() < 1e-12);
        assert_eq!(Estimate::share(0, 40_000, 4.0).ci95.unwrap()[0], 0.0);
        assert_eq!(Estimate::share(40_000, 40_000, 4.0).ci95.unwrap()[1], 1.0);
    }

    #[test]
    fn a_paired_total_of_bounded_changes_never_collapses_and_is_student_s_where_enough_change() {
        let n = 200_000;
        // No change seen among 200,000 profiles drawn from 20,000 visits: symmetric about 0, as
        // wide as the Wilson bound of a share of 0 at the effective size, times the bound.
        let inflation = super::inflation(n, 20_000);
        let none = Estimate::paired_total(n, 0.0, 0.0, inflation, (0, 0.0), (0, 0.0), 0.3);
        let [_, w] = Estimate::share(0, n, inflation).ci95.unwrap();
        let [low, high] = none.ci95.unwrap();
        assert_eq!((none.value, none.se), (0.0, Some(0.0)));
        assert!((high - w * 0.3 * n as f64).abs() < 1e-9 && (low + high).abs() < 1e-9);
        // Seen nowhere it could change: nothing to bound it by, no interval.
        let nowhere = Estimate::paired_total(n, 0.0, 0.0, inflation, (0, 0.0), (0, 0.0), 0.0);
        assert_eq!((nowhere.se, nowhere.ci95), (None, None));
        // One profile's rate went up by 0.2: the interval holds the point and reaches below 0 (a
        // change down may have gone unseen).
        let one = Estimate::paired_total(n, 0.2, 0.04, inflation, (1, 0.2), (0, 0.0), 0.3);
        let [low, high] = one.ci95.unwrap();
        assert!(low < 0.0 && 0.2 < high, "{low} {high}");
        // One tiny change seen up does not narrow the upper end below what an unseen change up to
        // the bound could make with none seen.
        let tiny = Estimate::paired_total(n, 0.001, 1e-6, inflation, (1, 0.001), (0, 0.0), 0.3);
        let [_, none_high] = none.ci95.unwrap();
        assert!(tiny.ci95.unwrap()[1] >= none_high, "{tiny:?}");
        // Too few visits in all for a paired standard error: no interval either.
        let small = Estimate::paired_total(
            200,
            5.0,
            0.5,
            super::inflation(200, 2),
            (50, 5.0),
            (0, 0.0),
            0.3,
        );
        assert_eq!((small.se, small.ci95), (None, None));
        // Every profile changed alike: t reads no variation, the interval is still no point.
        let alike = Estimate::paired_total(1_000, 150.0, 22.5, 1.0, (1_000, 150.0), (0, 0.0), 0.3);
        let [low, high] = alike.ci95.unwrap();
        assert_eq!(alike.se, Some(0.0));
        assert!(low < 150.0 && 150.0 <= high, "{low} {high}");
        // Many changes: at least Student's t at the changed profiles' degrees of freedom, as a
        // total of their values (the profiles that did not change carry no variation), which is
        // wider than t at all the profiles'.
        let (sum, sq) = (400.0, 90.0);
        let many =
            Estimate::paired_total(n, sum, sq, inflation, (4_000, 500.0), (2_000, 100.0), 0.3);
        let t = Estimate::total(n, sum, sq, inflation, 6_000);
        let ([ml, mh], [tl, th]) = (many.ci95.unwrap(), t.ci95.unwrap());
        assert!(ml <= tl && th <= mh && many.se == t.se, "{many:?} {t:?}");
        let all = Estimate::total(n, sum, sq, inflation, n).ci95.unwrap();
        assert!(th - tl > all[1] - all[0]);
    }

    #[test]
    fn a_share_difference_never_claims_certainty_and_matches_the_normal_one_when_counts_are_large()
    {
        // No profile changed: 0, with an interval either side of it, not [0, 0].
        let none = Estimate::share_difference(0, 0, 200_000, 1.0);
        assert_eq!(none.value, 0.0);
        let [low, high] = none.ci95.unwrap();
        assert!(low < 0.0 && high > 0.0 && high < 1e-4, "{low} {high}");
        // Many changes: close to difference +- 1.96 se.
        let (g, l, n) = (3_000, 2_000, 100_000);
        let d = Estimate::share_difference(g, l, n, 1.0);
        let normal = Estimate::mean(n, (g - l) as f64, (g + l) as f64, 1.0);
        assert!((d.value - 0.01).abs() < 1e-15);
        assert_eq!(d.se, normal.se);
        let ([a, b], [c, e]) = (d.ci95.unwrap(), normal.ci95.unwrap());
        assert!(
            (a - c).abs() < 2e-4 && (b - e).abs() < 2e-4,
            "{a} {b} against {c} {e}"
        );
        // Inside -1..1 whatever the counts; wider at a larger inflation.
        let all = Estimate::share_difference(10, 0, 10, 1.0).ci95.unwrap();
        assert!(all[1] <= 1.0 && all[0] > 0.0);
        let wide = Estimate::share_difference(g, l, n, 11.0).ci95.unwrap();
        assert!(wide[1] - wide[0] > 3.0 * (b - a));
        // A total of clicks cannot go below 0.
        let clicks = Estimate::total(3, 0.1, 0.01, 1.0, 3).non_negative();
        assert!(clicks.ci95.unwrap()[0] >= 0.0);
    }
}
