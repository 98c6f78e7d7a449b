//! Results tables for the synchronous `price` call: a few visitors, described by the fields the
//! web app knows, priced on a (hypothetical) market, with where each hypothetical tariff ranks.
//!
//! The `tariffsim price` command and the `price` Lambda both go through [`ProfileInput`] and
//! [`price_tables`], so they give the same answer for the same input.

use crate::consumption::typical_at;
use crate::dates::read_timestamp;
use crate::domain::{Fuel, Meter, PaymentMethod, Region};
use crate::error::VisitError;
use crate::market::Tariff;
use crate::price::{BASIS_POINTS, MAX_KWH};
use crate::replay::{MarketIndex, PageRules, ResultRow, visit_tie_key};
use crate::visit::{Visit, VisitorFilters};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Longest text accepted in a profile's free-text fields (ids, supplier and tariff names), bytes.
pub const MAX_PROFILE_TEXT: usize = crate::visit::MAX_TEXT_LEN;

/// One visitor to price, as the web app describes them. Only `region` is required; the rest
/// default to dual fuel, a single-rate meter, direct debit, Ofgem's typical consumption in force
/// at the market's date for the fuels bought ([`crate::consumption`]), no filters, and a visit on
/// the market's date.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// An id echoed in the result (default `profile-<n>`, n from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_id: Option<String>,
    /// When the visit happened (RFC 3339); a current fix rolls over, and its exit fee is waived,
    /// counting from this date. Default: the market's date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// GSP group letter, `A` to `P` (no `I`, `O`).
    pub region: String,
    /// `electricity`, `gas` or `dual_fuel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<String>,
    /// `single_rate` or `economy7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    /// `direct_debit`, `standard_credit` or `prepayment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// Annual electricity in kWh, 0 to 1,000,000, rounded to a whole kWh (so at least 0.5 when
    /// the fuel includes electricity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elec_kwh: Option<f64>,
    /// Annual gas in kWh, 0 to 1,000,000, rounded to a whole kWh (so at least 0.5 when the fuel
    /// includes gas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_kwh: Option<f64>,
    /// Share of Economy 7 electricity used at night, a fraction from 0 to 1 (default 0.42).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e7_night_share: Option<f64>,
    /// Current supplier's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_supplier: Option<String>,
    /// Current tariff id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_tariff: Option<String>,
    /// The results-table filters the visitor set.
    #[serde(default)]
    pub filters: VisitorFilters,
}

/// The field names of [`ProfileInput`], for bindings that check objects field by field.
pub const PROFILE_FIELDS: &[&str] = &[
    "visit_id",
    "timestamp",
    "region",
    "fuel",
    "meter",
    "payment_method",
    "elec_kwh",
    "gas_kwh",
    "e7_night_share",
    "current_supplier",
    "current_tariff",
    "filters",
];

/// The field names of [`VisitorFilters`].
pub const FILTER_FIELDS: &[&str] = &[
    "fixed_only",
    "green_only",
    "no_exit_fees",
    "switchable_only",
];

fn vocab<T: std::str::FromStr<Err = crate::domain::UnknownValue>>(
    index: usize,
    field: &'static str,
    value: Option<&str>,
    default: T,
) -> Result<T, VisitError> {
    match value {
        None => Ok(default),
        Some(s) => s.parse().map_err(
            |e: crate::domain::UnknownValue| VisitError::InvalidProfile {
                index,
                field,
                problem: e.to_string(),
            },
        ),
    }
}

impl ProfileInput {
    /// The visit this profile describes, with the defaults of a market dated `as_of`; `index` is
    /// its position in the request (for messages and the default id).
    ///
    /// # Errors
    /// [`VisitError::InvalidProfile`] naming the field (code `UnknownRegion` or `InvalidVisit`).
    pub fn to_visit(&self, index: usize, as_of: NaiveDate) -> Result<Visit, VisitError> {
        let bad = |field, problem: String| VisitError::InvalidProfile {
            index,
            field,
            problem,
        };
        for (field, text) in [
            ("visit_id", &self.visit_id),
            ("current_supplier", &self.current_supplier),
            ("current_tariff", &self.current_tariff),
        ] {
            if text.as_ref().is_some_and(|t| t.len() > MAX_PROFILE_TEXT) {
                return Err(bad(
                    field,
                    format!("longer than {MAX_PROFILE_TEXT} bytes: shorten it"),
                ));
            }
        }
        let region: Region = self
            .region
            .parse()
            .map_err(|e: crate::domain::UnknownValue| bad("region", e.to_string()))?;
        let fuel = vocab(index, "fuel", self.fuel.as_deref(), Fuel::DualFuel)?;
        let meter = vocab(index, "meter", self.meter.as_deref(), Meter::SingleRate)?;
        let payment_method = vocab(
            index,
            "payment_method",
            self.payment_method.as_deref(),
            PaymentMethod::DirectDebit,
        )?;
        let (typical_elec, typical_gas) = typical_at(as_of).for_fuel(fuel, meter);
        let kwh = |field, value: Option<f64>, default: u32| -> Result<u32, VisitError> {
            let Some(x) = value else {
                return Ok(default);
            };
            let max = f64::from(MAX_KWH);
            if !x.is_finite() || !(0.0..=max).contains(&x) {
                return Err(bad(
                    field,
                    format!("{x} is not a number of kWh from 0 to {max}"),
                ));
            }
            Ok(x.round() as u32)
        };
        let elec_kwh = kwh("elec_kwh", self.elec_kwh, typical_elec)?;
        let gas_kwh = kwh("gas_kwh", self.gas_kwh, typical_gas)?;
        let e7_night_share_bp = match self.e7_night_share {
            None => None,
            Some(x) if (0.0..=1.0).contains(&x) => Some((x * BASIS_POINTS as f64).round() as u16),
            Some(x) => {
                return Err(bad(
                    "e7_night_share",
                    format!("{x} is not a fraction from 0 to 1"),
                ));
            }
        };
        let timestamp = match self.timestamp.as_deref() {
            None => as_of.and_time(chrono::NaiveTime::MIN),
            Some(s) => read_timestamp(s).map_err(|e| bad("timestamp", e.problem(s)))?,
        };
        let text = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let visit = Visit {
            visit_id: text(&self.visit_id).unwrap_or_else(|| format!("profile-{}", index + 1)),
            timestamp,
            region,
            fuel,
            meter,
            payment_method,
            elec_kwh,
            gas_kwh,
            e7_night_share_bp,
            current_supplier: text(&self.current_supplier),
            current_tariff: text(&self.current_tariff),
            filters: self.filters,
        };
        visit.validate().map_err(|e| match e {
            VisitError::InvalidField { field, problem, .. } => bad(field, problem),
            e => e,
        })?;
        Ok(visit)
    }
}

/// How to price: rows returned, the seed of the tie order, the page's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceOptions {
    /// Rows returned per table (every eligible tariff is still ranked).
    pub page_size: usize,
    /// Seed of the tie order: tariffs of equal cost are ordered by a pseudo-random key drawn from
    /// (seed, visit id, tariff), so the same visit always gives the same order, however requests
    /// are batched, and identical tariffs are equally likely to come first.
    pub seed: u64,
    /// Whether the visitor's current tariff is ranked, and whether non-switchable tariffs are.
    pub rules: PageRules,
}

impl Default for PriceOptions {
    fn default() -> Self {
        PriceOptions {
            page_size: usize::MAX,
            seed: 0,
            rules: PageRules::default(),
        }
    }
}

/// The `price` answer: the market priced and one results table per profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceResponse {
    /// What the market was.
    pub market: MarketInfo,
    /// One table per profile, in request order.
    pub results: Vec<PricedTable>,
}

/// The market a `price` call priced on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarketInfo {
    /// The market's date.
    pub as_of: NaiveDate,
    /// Tariffs listed on results tables.
    pub tariffs_on_sale: usize,
    /// Ids of the hypothetical tariffs on sale.
    pub hypothetical_tariffs: Vec<String>,
    /// The typical consumption in force at the market's date (the defaults used).
    pub typical_consumption: TypicalOut,
}

impl MarketInfo {
    /// What an answer says of a compiled market: its date, how many tariffs are on sale, the
    /// hypothetical ones on sale (in market order), and the typical consumption in force.
    pub fn of(index: &MarketIndex) -> MarketInfo {
        let market = index.market();
        let typical = typical_at(market.as_of);
        MarketInfo {
            as_of: market.as_of,
            tariffs_on_sale: market.tariffs.iter().filter(|t| t.on_sale).count(),
            hypothetical_tariffs: market
                .tariffs
                .iter()
                .filter(|t| t.hypothetical && t.on_sale)
                .map(|t| t.id.clone())
                .collect(),
            typical_consumption: TypicalOut {
                in_force_from: typical.in_force_from,
                elec_kwh: typical.electricity_kwh,
                e7_elec_kwh: typical.economy7_kwh,
                gas_kwh: typical.gas_kwh,
            },
        }
    }
}

/// Typical consumption, kWh a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TypicalOut {
    /// The date these values came into force.
    pub in_force_from: NaiveDate,
    /// Electricity, single-rate meter.
    pub elec_kwh: u32,
    /// Electricity, Economy 7 meter.
    pub e7_elec_kwh: u32,
    /// Gas.
    pub gas_kwh: u32,
}

/// One visitor's results table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PricedTable {
    /// The visit priced.
    pub visit_id: String,
    /// Projected cost of staying put for a year from the visit, GBP, when known.
    pub current_cost_gbp: Option<f64>,
    /// The tariff the current cost is priced on, when known.
    pub current_tariff_id: Option<String>,
    /// The exit fee leaving the current tariff costs at the visit's date, GBP, when known.
    pub switch_cost_gbp: Option<f64>,
    /// Tariffs eligible (ranked), of which the first `page_size` are in `rows`.
    pub eligible: usize,
    /// The first rows of the table.
    pub rows: Vec<ResultRow>,
    /// Where each hypothetical tariff ranks in the whole table.
    pub hypothetical: Vec<HypotheticalRank>,
}

/// Where a hypothetical tariff ranks in a whole table (not only the page shown).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HypotheticalRank {
    /// Tariff id.
    pub tariff_id: String,
    /// Whether the visitor could be shown it.
    pub eligible: bool,
    /// Its rank, when eligible.
    pub rank: Option<u32>,
    /// Whether it is on the page returned.
    pub on_page: bool,
    /// Its annual cost, GBP, when eligible.
    pub annual_cost_gbp: Option<f64>,
    /// The saving against staying put, GBP, when eligible and the current cost is known.
    pub saving_gbp: Option<f64>,
}

/// Prices visits on a compiled market: every eligible tariff ranked, the first `page_size` rows
/// kept, and each hypothetical tariff's rank in the whole table reported. A visit orders its ties
/// with [`visit_tie_key`]`(seed, visit_id)`: its table does not depend on the other visits of the
/// request, nor on its place among them.
pub fn price_tables(
    index: &MarketIndex,
    visits: &[Visit],
    options: &PriceOptions,
) -> PriceResponse {
    let market = index.market();
    let hypothetical: Vec<&Tariff> = market
        .tariffs
        .iter()
        .filter(|t| t.hypothetical && t.on_sale)
        .collect();
    let results = visits
        .iter()
        .map(|v| {
            let table = index.results(
                v,
                options.rules,
                options.seed,
                visit_tie_key(options.seed, &v.visit_id),
            );
            let eligible = table.rows.len();
            let hypothetical = hypothetical
                .iter()
                .map(|t| {
                    let row = table.rows.iter().find(|r| r.tariff_id == t.id);
                    HypotheticalRank {
                        tariff_id: t.id.clone(),
                        eligible: row.is_some(),
                        rank: row.map(|r| r.rank),
                        on_page: row.is_some_and(|r| (r.rank as usize) <= options.page_size),
                        annual_cost_gbp: row.map(|r| r.annual_cost_gbp),
                        saving_gbp: row.and_then(|r| r.saving_gbp),
                    }
                })
                .collect();
            let mut rows = table.rows;
            rows.truncate(options.page_size);
            PricedTable {
                visit_id: table.visit_id,
                current_cost_gbp: table.current_cost_gbp,
                current_tariff_id: table.current_tariff_id,
                switch_cost_gbp: table.switch_cost_gbp,
                eligible,
                rows,
                hypothetical,
            }
        })
        .collect();
    PriceResponse {
        market: MarketInfo::of(index),
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
    }

    fn profile(json: &str) -> ProfileInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn consumption_under_half_a_kwh_is_refused_with_a_true_message() {
        let mut failures = Vec::new();
        for (json, field) in [
            (r#"{"region":"C","elec_kwh":0.4}"#, "elec_kwh"),
            (r#"{"region":"C","gas_kwh":0.4}"#, "gas_kwh"),
            (
                r#"{"region":"C","fuel":"electricity","elec_kwh":0}"#,
                "elec_kwh",
            ),
            (r#"{"region":"C","fuel":"gas","gas_kwh":0.49}"#, "gas_kwh"),
        ] {
            match profile(json).to_visit(2, as_of()) {
                Ok(v) => failures.push(format!("{json}: accepted {v:?}")),
                Err(e) => {
                    let text = e.to_string();
                    if e.code() != "InvalidVisit"
                        || !text.starts_with(&format!("profiles[2].{field}: "))
                        || !text.contains("rounded to a whole kWh")
                        || !text.contains("0.5 or more")
                    {
                        failures.push(format!("{json}: [{}] {text}", e.code()));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        let v = profile(r#"{"region":"C","elec_kwh":0.5,"gas_kwh":1.5}"#)
            .to_visit(0, as_of())
            .unwrap();
        assert_eq!((v.elec_kwh, v.gas_kwh), (1, 2));
        // A fuel not bought may have no consumption.
        let v = profile(r#"{"region":"C","fuel":"gas","elec_kwh":0.4}"#)
            .to_visit(0, as_of())
            .unwrap();
        assert_eq!(v.usage().electricity_kwh, 0);
    }

    #[test]
    fn timestamps_are_read_as_the_visits_csv_reads_them() {
        for ts in ["9999-12-31T23:00:00-05:00", "0000-01-01T00:30:00+01:00"] {
            let p = ProfileInput {
                timestamp: Some(ts.into()),
                ..profile(r#"{"region":"C"}"#)
            };
            let e = p.to_visit(0, as_of()).unwrap_err();
            assert_eq!(e.code(), "InvalidVisit");
            assert_eq!(
                e.to_string(),
                format!(
                    "profiles[0].timestamp: {ts:?} is outside the years 0000 to 9999 once converted to UTC: give a date-time in those years"
                )
            );
        }
        let p = ProfileInput {
            timestamp: Some("2026-07-01T00:30:00+01:00".into()),
            ..profile(r#"{"region":"C"}"#)
        };
        assert_eq!(
            p.to_visit(0, as_of()).unwrap().timestamp.to_string(),
            "2026-06-30 23:30:00"
        );
        let p = ProfileInput {
            timestamp: Some("yesterday".into()),
            ..profile(r#"{"region":"C"}"#)
        };
        assert!(
            p.to_visit(0, as_of())
                .unwrap_err()
                .to_string()
                .contains("\"yesterday\" is not a date-time")
        );
    }
}
