//! Per-tariff summaries of impressions. All counts are integers, so merging partial summaries is
//! associative and commutative; shares, means and expected clicks are derived when written.

use crate::compare::Comparison;
use crate::error::RunError;
use crate::money::mean_pence;
use crate::stats::Estimate;
use serde::{Deserialize, Serialize};

/// Click-through rate by rank (1-based ranks at index 0..): ../shared/domain/ctr_by_rank.csv,
/// Sistrix web-search study. Ranks past the end of a curve get no clicks.
pub const DEFAULT_CTR_BY_RANK: [f64; 10] = [
    0.285, 0.157, 0.110, 0.080, 0.072, 0.051, 0.040, 0.031, 0.028, 0.025,
];

/// What a run (or one chunk of it) showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Results shown per table.
    pub page_size: u16,
    /// Position-bias click model: click-through rate by rank.
    pub ctr_by_rank: Vec<f64>,
    /// Profiles replayed.
    pub profiles: u64,
    /// Visits the profiles were drawn from (the run's population, after its filter): with
    /// `profiles`, it sets how wide the intervals are ([`crate::stats::inflation`]). 0 in a
    /// summary written before it was recorded (its intervals the textbook ones).
    #[serde(default)]
    pub population: u64,
    /// Profiles shown at least one tariff.
    pub profiles_with_results: u64,
    /// Profiles whose current cost is known (savings are computed for these).
    pub profiles_with_current_cost: u64,
    /// Impressions written.
    pub impressions: u64,
    /// One entry per tariff on sale, sorted by id.
    pub tariffs: Vec<TariffSummary>,
    /// The paired comparison with the market before the scenario (counts, mergeable), when the
    /// run compares; written to its own file ([`Summary::comparison_json`]), not to summary.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// What one tariff got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TariffSummary {
    /// Tariff id.
    pub id: String,
    /// Supplier.
    pub supplier: String,
    /// Added by the scenario.
    pub hypothetical: bool,
    /// Profiles for whom it was eligible (on the table, any page).
    pub eligible: u64,
    /// Profiles who saw it on page 1 (= its impressions: a tariff shows at most once per table).
    pub impressions: u64,
    /// Impressions by rank: `rank_histogram[r - 1]` profiles saw it at rank r.
    pub rank_histogram: Vec<u64>,
    /// Sum of the savings of its impressions with a known current cost, in pence (each rounded to
    /// the penny, as in the impressions file). Wide: a billion impressions of large bills would
    /// overflow 64 bits.
    #[serde(with = "crate::stats::wide")]
    pub saving_total_pence: i128,
    /// Impressions with a known current cost.
    pub saving_count: u64,
    /// Sum of the squares of those savings, pence squared (for the standard error of the mean).
    #[serde(default, with = "crate::stats::wide")]
    pub saving_sq_total_pence2: i128,
    /// Derived: impressions / profiles.
    #[serde(default)]
    pub page1_share: f64,
    /// Derived: impressions at rank 1 / profiles.
    #[serde(default)]
    pub rank1_share: f64,
    /// Derived: impressions / eligible.
    #[serde(default)]
    pub page1_share_of_eligible: f64,
    /// Derived: mean saving per impression with a known current cost, GBP.
    #[serde(default)]
    pub mean_saving_gbp: Option<f64>,
    /// Derived: expected clicks, sum over ranks of impressions x click-through rate.
    #[serde(default)]
    pub expected_clicks: f64,
    /// Derived: every share and mean above with its standard error and 95% interval
    /// ([`crate::stats`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<TariffIntervals>,
}

/// The uncertainty of a tariff's shares and means (derived when written).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TariffIntervals {
    /// Page-1 share (Wilson interval).
    pub page1_share: Estimate,
    /// Rank-1 share (Wilson interval).
    pub rank1_share: Estimate,
    /// Page-1 share among the profiles it was eligible for (Wilson interval).
    pub page1_share_of_eligible: Estimate,
    /// Mean saving of its impressions with a known current cost, GBP; absent without any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_saving_gbp: Option<Estimate>,
    /// Expected clicks over the run (a total: the per-profile mean times the profiles).
    pub expected_clicks: Estimate,
}

/// `sum x` and `sum x^2` of the clicks a tariff gets per profile, from its rank histogram (a
/// tariff shows at most once per table, so a profile's clicks are one `ctr[rank]`).
pub fn click_sums(histogram: &[u64], ctr: &[f64]) -> (f64, f64) {
    histogram
        .iter()
        .zip(ctr.iter().chain(std::iter::repeat(&0.0)))
        .fold((0.0, 0.0), |(s, s2), (&n, &c)| {
            (s + n as f64 * c, s2 + n as f64 * c * c)
        })
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Summary {
    /// An empty summary for these tariffs `(id, supplier, hypothetical)`, already sorted by id, of
    /// profiles drawn from `population` visits.
    pub fn empty<'a>(
        page_size: u16,
        ctr_by_rank: Vec<f64>,
        population: u64,
        tariffs: impl IntoIterator<Item = (&'a str, &'a str, bool)>,
    ) -> Summary {
        Summary {
            page_size,
            ctr_by_rank,
            profiles: 0,
            population,
            profiles_with_results: 0,
            profiles_with_current_cost: 0,
            impressions: 0,
            tariffs: tariffs
                .into_iter()
                .map(|(id, supplier, hypothetical)| TariffSummary {
                    id: id.to_string(),
                    supplier: supplier.to_string(),
                    hypothetical,
                    eligible: 0,
                    impressions: 0,
                    rank_histogram: vec![0; page_size as usize],
                    saving_total_pence: 0,
                    saving_count: 0,
                    saving_sq_total_pence2: 0,
                    page1_share: 0.0,
                    rank1_share: 0.0,
                    page1_share_of_eligible: 0.0,
                    mean_saving_gbp: None,
                    expected_clicks: 0.0,
                    intervals: None,
                })
                .collect(),
            comparison: None,
        }
    }

    /// Adds another partial summary of the same run into this one.
    ///
    /// # Errors
    /// [`RunError::SummaryMismatch`] when page size, click model or tariffs differ.
    pub fn merge(&mut self, other: &Summary) -> Result<(), RunError> {
        let mismatch = |problem: String| RunError::SummaryMismatch { problem };
        if self.page_size != other.page_size || self.ctr_by_rank != other.ctr_by_rank {
            return Err(mismatch(
                "page size or click model differ: merge chunks of one run only".into(),
            ));
        }
        // 0: a partial summary written before the population was recorded (a chunk of the same
        // run computed by the code before an upgrade) takes the other's.
        if self.population != other.population && self.population != 0 && other.population != 0 {
            return Err(mismatch(format!(
                "populations of {} and {} visits: merge chunks of one run only",
                self.population, other.population
            )));
        }
        self.population = self.population.max(other.population);
        if self.tariffs.len() != other.tariffs.len() {
            return Err(mismatch(format!(
                "{} tariffs against {}",
                self.tariffs.len(),
                other.tariffs.len()
            )));
        }
        self.profiles += other.profiles;
        self.profiles_with_results += other.profiles_with_results;
        self.profiles_with_current_cost += other.profiles_with_current_cost;
        self.impressions += other.impressions;
        for (a, b) in self.tariffs.iter_mut().zip(&other.tariffs) {
            if a.id != b.id || a.rank_histogram.len() != b.rank_histogram.len() {
                return Err(mismatch(format!("tariff {:?} against {:?}", a.id, b.id)));
            }
            a.eligible += b.eligible;
            a.impressions += b.impressions;
            for (x, y) in a.rank_histogram.iter_mut().zip(&b.rank_histogram) {
                *x += y;
            }
            a.saving_total_pence += b.saving_total_pence;
            a.saving_count += b.saving_count;
            a.saving_sq_total_pence2 += b.saving_sq_total_pence2;
        }
        match (&mut self.comparison, &other.comparison) {
            (Some(a), Some(b)) => a.merge(b)?,
            (None, None) => {}
            _ => {
                return Err(mismatch(
                    "one summary compares with the base market and the other does not".into(),
                ));
            }
        }
        Ok(())
    }

    /// Computes the derived fields from the counts (done before writing).
    pub fn finish(&mut self) {
        for t in &mut self.tariffs {
            t.page1_share = ratio(t.impressions, self.profiles);
            t.rank1_share = ratio(
                t.rank_histogram.first().copied().unwrap_or(0),
                self.profiles,
            );
            t.page1_share_of_eligible = ratio(t.impressions, t.eligible);
            t.mean_saving_gbp = (t.saving_count > 0)
                .then(|| mean_pence(t.saving_total_pence, t.saving_count).as_f64());
            // Summed in rank order, so the float result does not depend on how chunks merged.
            let (clicks, clicks_sq) = click_sums(&t.rank_histogram, &self.ctr_by_rank);
            t.expected_clicks = clicks;
            let n = self.profiles;
            let k = crate::stats::inflation(n, self.population);
            t.intervals = Some(TariffIntervals {
                page1_share: Estimate::share(t.impressions, n, k),
                rank1_share: Estimate::share(t.rank_histogram.first().copied().unwrap_or(0), n, k),
                page1_share_of_eligible: Estimate::share(t.impressions, t.eligible, k),
                mean_saving_gbp: (t.saving_count > 0).then(|| {
                    Estimate::mean(
                        t.saving_count,
                        t.saving_total_pence as f64,
                        t.saving_sq_total_pence2 as f64,
                        k,
                    )
                    .divided(100.0)
                }),
                // Clicks come only from the profiles that saw the tariff on page 1.
                expected_clicks: Estimate::total(n, clicks, clicks_sq, k, t.impressions)
                    .non_negative(),
            });
        }
        if let Some(c) = &mut self.comparison {
            c.finish(&self.ctr_by_rank);
        }
    }

    /// The comparison with the base market as pretty JSON (comparison.json), when the run
    /// compares.
    pub fn comparison_json(&self) -> Option<String> {
        let mut c = self.comparison.clone()?;
        c.finish(&self.ctr_by_rank);
        let mut out = serde_json::to_string_pretty(&c).expect("comparison serializes");
        out.push('\n');
        Some(out)
    }

    /// The comparison as CSV rows (comparison.csv), when the run compares.
    pub fn comparison_csv(&self) -> Option<String> {
        self.comparison
            .as_ref()
            .map(|c| c.to_csv(&self.ctr_by_rank))
    }

    /// summary.json: the summary as pretty JSON with the derived fields (shares, means,
    /// intervals), without the comparison (see [`Summary::comparison_json`]).
    pub fn report_json(&self) -> String {
        let mut s = self.clone();
        s.comparison = None;
        s.finish();
        let mut out = serde_json::to_string_pretty(&s).expect("summary serializes");
        out.push('\n');
        out
    }

    /// A partial summary as a chunk hands it on: compact JSON of the counts only (with the
    /// comparison's, for merging), no derived fields. [`Summary::from_json`] reads it back, and
    /// [`Summary::report_json`] of the merged whole is summary.json.
    pub fn to_json(&self) -> String {
        let mut s = self.clone();
        for t in &mut s.tariffs {
            t.page1_share = 0.0;
            t.rank1_share = 0.0;
            t.page1_share_of_eligible = 0.0;
            t.mean_saving_gbp = None;
            t.expected_clicks = 0.0;
            t.intervals = None;
        }
        if let Some(c) = &mut s.comparison {
            c.clear_derived();
        }
        let mut out = serde_json::to_string(&s).expect("summary serializes");
        out.push('\n');
        out
    }

    /// Parses a summary written by [`Summary::to_json`].
    ///
    /// # Errors
    /// [`RunError::Json`].
    pub fn from_json(json: &str) -> Result<Summary, RunError> {
        crate::error::from_json(json).map_err(RunError::json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(hits: &[u64], saving: i64) -> Summary {
        let mut s = Summary::empty(
            3,
            DEFAULT_CTR_BY_RANK.to_vec(),
            100,
            [("a", "A", false), ("b", "B", true)],
        );
        s.profiles = 10;
        s.tariffs[0].rank_histogram = hits.to_vec();
        s.tariffs[0].impressions = hits.iter().sum();
        s.tariffs[0].saving_total_pence = i128::from(saving);
        s.tariffs[0].saving_count = s.tariffs[0].impressions;
        s
    }

    #[test]
    fn savings_totals_never_wrap() {
        // Sums past 64 bits (a long run of very large bills) stay exact, in the JSON too.
        let mut s = partial(&[3, 0, 0], i64::MAX);
        s.merge(&partial(&[3, 0, 0], i64::MAX)).unwrap();
        assert_eq!(s.tariffs[0].saving_total_pence, 2 * i128::from(i64::MAX));
        let back = Summary::from_json(&s.to_json()).unwrap();
        assert_eq!(back.tariffs[0].saving_total_pence, 2 * i128::from(i64::MAX));
        s.finish();
        let mean = s.tariffs[0].mean_saving_gbp.unwrap();
        let expected = (2.0 * i64::MAX as f64 / 6.0 / 100.0).round();
        assert!(
            (mean - expected).abs() / expected < 1e-12,
            "{mean} against {expected}"
        );
    }

    #[test]
    fn merge_is_associative_and_commutative() {
        let (a, b, c) = (
            partial(&[1, 2, 3], 100),
            partial(&[0, 5, 1], -40),
            partial(&[7, 0, 0], 9),
        );
        let mut ab_c = a.clone();
        ab_c.merge(&b).unwrap();
        ab_c.merge(&c).unwrap();
        let mut c_ba = c.clone();
        let mut ba = b.clone();
        ba.merge(&a).unwrap();
        c_ba.merge(&ba).unwrap();
        assert_eq!(ab_c.to_json(), c_ba.to_json());
        let mut f = ab_c.clone();
        f.finish();
        assert_eq!(f.tariffs[0].rank_histogram, vec![8, 7, 4]);
        assert_eq!(f.tariffs[0].page1_share, 19.0 / 30.0);
        assert_eq!(f.tariffs[0].mean_saving_gbp, Some(0.04));
    }

    #[test]
    fn merge_refuses_other_runs() {
        let mut a = partial(&[1, 2, 3], 0);
        let mut b = partial(&[1, 2, 3], 0);
        b.page_size = 4;
        assert_eq!(a.merge(&b).unwrap_err().code(), "SummaryMismatch");
        // Another population: another run.
        let mut c = partial(&[1, 2, 3], 0);
        c.population = 99;
        assert_eq!(a.merge(&c).unwrap_err().code(), "SummaryMismatch");
    }

    #[test]
    fn a_partial_summary_without_its_population_takes_the_other_s() {
        // A chunk computed before the population was recorded reads 0 (serde's default).
        let mut old = Summary::from_json(
            &partial(&[1, 2, 3], 0)
                .to_json()
                .replace("\"population\":100,", ""),
        )
        .unwrap();
        assert_eq!(old.population, 0);
        old.merge(&partial(&[1, 2, 3], 0)).unwrap();
        assert_eq!(old.population, 100);
        let mut new = partial(&[1, 2, 3], 0);
        new.merge(&Summary::from_json(&old.to_json().replace("\"population\":100,", "")).unwrap())
            .unwrap();
        assert_eq!((new.population, new.profiles), (100, 30));
    }

    #[test]
    fn json_round_trips() {
        let a = partial(&[1, 2, 3], 100);
        let back = Summary::from_json(&a.to_json()).unwrap();
        assert_eq!(back.to_json(), a.to_json());
    }
}
