//! Site visits (the profiles to replay), the visits CSV format and population filters.

use crate::domain::{Fuel, Meter, PaymentMethod, Region};
use crate::error::VisitError;
use crate::price::{BASIS_POINTS, MAX_KWH, Usage};
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// The results-table filters a visitor set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitorFilters {
    /// Show fixed tariffs only.
    #[serde(default)]
    pub fixed_only: bool,
    /// Show green tariffs only.
    #[serde(default)]
    pub green_only: bool,
    /// Hide tariffs with exit fees.
    #[serde(default)]
    pub no_exit_fees: bool,
    /// Show only tariffs the site can switch the visitor to.
    #[serde(default)]
    pub switchable_only: bool,
}

/// One recorded visit to the results table: who the visitor is and what they asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    /// Identifier from the site's logs.
    pub visit_id: String,
    /// When the visit happened (UTC).
    pub timestamp: NaiveDateTime,
    /// Region.
    pub region: Region,
    /// Fuel choice.
    pub fuel: Fuel,
    /// Electricity meter (`single_rate` for gas-only visitors).
    pub meter: Meter,
    /// Payment method.
    pub payment_method: PaymentMethod,
    /// Annual electricity, kWh (0 for gas-only).
    pub elec_kwh: u32,
    /// Annual gas, kWh (0 for electricity-only).
    pub gas_kwh: u32,
    /// Night share of E7 consumption in basis points, when the visitor knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e7_night_share_bp: Option<u16>,
    /// Current supplier, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_supplier: Option<String>,
    /// Current tariff id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_tariff: Option<String>,
    /// The filters the visitor set.
    #[serde(default)]
    pub filters: VisitorFilters,
}

impl Visit {
    /// The consumption to price, with the default E7 night share filled in.
    pub fn usage(&self) -> Usage {
        Usage {
            electricity_kwh: if self.fuel.has_electricity() {
                self.elec_kwh
            } else {
                0
            },
            gas_kwh: if self.fuel.has_gas() { self.gas_kwh } else { 0 },
            night_share_bp: match self.meter {
                Meter::Economy7 if self.fuel.has_electricity() => self
                    .e7_night_share_bp
                    .unwrap_or(crate::price::DEFAULT_E7_NIGHT_SHARE_BP),
                _ => 0,
            },
        }
    }

    /// The meter that matters for pricing: single-rate for gas-only visitors.
    pub fn pricing_meter(&self) -> Meter {
        if self.fuel.has_electricity() {
            self.meter
        } else {
            Meter::SingleRate
        }
    }

    /// Checks the ranges the types cannot: kWh present for each fuel bought, within limits.
    ///
    /// # Errors
    /// [`VisitError::InvalidField`] naming the field (line 0: not from a file).
    pub fn validate(&self) -> Result<(), VisitError> {
        check_usage(self, 0)
    }
}

fn check_usage(v: &Visit, line: u64) -> Result<(), VisitError> {
    let bad = |field, problem: String| VisitError::InvalidField {
        line,
        field,
        problem,
    };
    if v.fuel.has_electricity() && v.elec_kwh == 0 {
        return Err(bad(
            "elec_kwh",
            "give the annual electricity consumption in kWh, more than 0".into(),
        ));
    }
    if v.fuel.has_gas() && v.gas_kwh == 0 {
        return Err(bad(
            "gas_kwh",
            "give the annual gas consumption in kWh, more than 0".into(),
        ));
    }
    for (field, kwh) in [("elec_kwh", v.elec_kwh), ("gas_kwh", v.gas_kwh)] {
        if kwh > MAX_KWH {
            return Err(bad(
                field,
                format!("{kwh} kWh is more than the {MAX_KWH} kWh a home can use"),
            ));
        }
    }
    if let Some(bp) = v.e7_night_share_bp
        && bp as i64 > BASIS_POINTS
    {
        return Err(bad(
            "e7_night_share",
            "give the night share as a fraction from 0 to 1".into(),
        ));
    }
    Ok(())
}

/// Longest text accepted in a visit's free-text fields (id, current supplier and tariff), bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// The columns of the visits CSV, in the order the generator writes them. Readers match by name.
pub const VISITS_CSV_COLUMNS: [&str; 15] = [
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
    "fixed_only",
    "green_only",
    "no_exit_fees",
    "switchable_only",
];

#[derive(Deserialize)]
struct RawVisit<'a> {
    visit_id: &'a str,
    timestamp: &'a str,
    region: &'a str,
    fuel: &'a str,
    #[serde(default)]
    meter: &'a str,
    payment_method: &'a str,
    #[serde(default)]
    elec_kwh: &'a str,
    #[serde(default)]
    gas_kwh: &'a str,
    #[serde(default)]
    e7_night_share: &'a str,
    #[serde(default)]
    current_supplier: &'a str,
    #[serde(default)]
    current_tariff: &'a str,
    #[serde(default)]
    fixed_only: &'a str,
    #[serde(default)]
    green_only: &'a str,
    #[serde(default)]
    no_exit_fees: &'a str,
    #[serde(default)]
    switchable_only: &'a str,
}

pub use crate::dates::parse_timestamp;

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "" | "0" | "false" | "FALSE" | "False" | "no" | "F" => Some(false),
        "1" | "true" | "TRUE" | "True" | "yes" | "T" => Some(true),
        _ => None,
    }
}

fn parse_kwh(s: &str, line: u64, field: &'static str) -> Result<u32, VisitError> {
    let s = s.trim();
    if s.is_empty() || s == "NA" {
        return Ok(0);
    }
    let bad = |problem: String| VisitError::InvalidField {
        line,
        field,
        problem,
    };
    let x: f64 = s
        .parse()
        .map_err(|_| bad(format!("{s:?} is not a number of kWh")))?;
    if !x.is_finite() || x < 0.0 {
        return Err(bad(format!(
            "{s} kWh is negative: give the annual consumption as 0 or more"
        )));
    }
    if x > MAX_KWH as f64 {
        return Err(bad(format!(
            "{s} kWh is more than the {MAX_KWH} kWh a home can use"
        )));
    }
    Ok(x.round() as u32)
}

fn opt_text(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s != "NA").then(|| s.to_string())
}

impl RawVisit<'_> {
    fn into_visit(self, line: u64) -> Result<Visit, VisitError> {
        let bad = |field, problem: String| VisitError::InvalidField {
            line,
            field,
            problem,
        };
        let fuel: Fuel = self.fuel.parse().map_err(|e| bad("fuel", format!("{e}")))?;
        let meter = if self.meter.trim().is_empty() && !fuel.has_electricity() {
            Meter::SingleRate
        } else {
            self.meter
                .parse()
                .map_err(|e| bad("meter", format!("{e}")))?
        };
        let e7_night_share_bp = match self.e7_night_share.trim() {
            "" | "NA" => None,
            s => {
                let x: f64 = s
                    .parse()
                    .map_err(|_| bad("e7_night_share", format!("{s:?} is not a number")))?;
                if !(0.0..=1.0).contains(&x) {
                    return Err(bad(
                        "e7_night_share",
                        format!("{s} is not a fraction from 0 to 1"),
                    ));
                }
                Some((x * BASIS_POINTS as f64).round() as u16)
            }
        };
        let flag = |field: &'static str, s: &str| {
            parse_bool(s)
                .ok_or_else(|| bad(field, format!("{s:?} is not a boolean: use true or false")))
        };
        let visit = Visit {
            visit_id: self.visit_id.trim().to_string(),
            timestamp: parse_timestamp(self.timestamp).ok_or_else(|| {
                bad(
                    "timestamp",
                    format!(
                        "{:?} is not a date-time: use RFC 3339, e.g. 2026-07-01T08:15:00Z",
                        self.timestamp
                    ),
                )
            })?,
            region: self
                .region
                .parse()
                .map_err(|e| bad("region", format!("{e}")))?,
            fuel,
            meter,
            payment_method: self
                .payment_method
                .parse()
                .map_err(|e| bad("payment_method", format!("{e}")))?,
            elec_kwh: parse_kwh(self.elec_kwh, line, "elec_kwh")?,
            gas_kwh: parse_kwh(self.gas_kwh, line, "gas_kwh")?,
            e7_night_share_bp,
            current_supplier: opt_text(self.current_supplier),
            current_tariff: opt_text(self.current_tariff),
            filters: VisitorFilters {
                fixed_only: flag("fixed_only", self.fixed_only)?,
                green_only: flag("green_only", self.green_only)?,
                no_exit_fees: flag("no_exit_fees", self.no_exit_fees)?,
                switchable_only: flag("switchable_only", self.switchable_only)?,
            },
        };
        if visit.visit_id.is_empty() {
            return Err(bad("visit_id", "every visit needs an id".into()));
        }
        for (field, text) in [
            ("visit_id", Some(&visit.visit_id)),
            ("current_supplier", visit.current_supplier.as_ref()),
            ("current_tariff", visit.current_tariff.as_ref()),
        ] {
            if text.is_some_and(|t| t.len() > MAX_TEXT_LEN) {
                return Err(bad(
                    field,
                    format!("longer than {MAX_TEXT_LEN} bytes: shorten it"),
                ));
            }
        }
        check_usage(&visit, line)?;
        Ok(visit)
    }
}

/// Parses a visits CSV (header row first; columns matched by name, see [`VISITS_CSV_COLUMNS`]).
///
/// # Errors
/// [`VisitError::Csv`] or [`VisitError::InvalidField`] naming the line and column of the first bad
/// row.
pub fn parse_visits_csv(bytes: &[u8]) -> Result<Vec<Visit>, VisitError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::None)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| VisitError::Csv {
            line: 1,
            message: e.to_string(),
        })?
        .clone();
    for required in ["visit_id", "timestamp", "region", "fuel", "payment_method"] {
        if !headers.iter().any(|h| h == required) {
            return Err(VisitError::Csv {
                line: 1,
                message: format!(
                    "the header has no {required:?} column; expected columns: {}",
                    VISITS_CSV_COLUMNS.join(",")
                ),
            });
        }
    }
    let mut visits = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!(
                            "{len} fields where the header has {expected_len}: check for a missing or extra comma"
                        )
                    }
                    _ => e.to_string(),
                };
                return Err(VisitError::Csv { line, message });
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let raw: RawVisit = record
            .deserialize(Some(&headers))
            .map_err(|e| VisitError::Csv {
                line,
                message: e.to_string(),
            })?;
        visits.push(raw.into_visit(line)?);
    }
    Ok(visits)
}

/// Writes visits as CSV with the header [`VISITS_CSV_COLUMNS`].
pub fn write_visits_csv<W: std::io::Write>(out: W, visits: &[Visit]) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(VISITS_CSV_COLUMNS)?;
    for v in visits {
        let share = v
            .e7_night_share_bp
            .map(|bp| format!("{}", bp as f64 / BASIS_POINTS as f64))
            .unwrap_or_default();
        let b = |x: bool| if x { "true" } else { "false" };
        w.write_record([
            v.visit_id.as_str(),
            &v.timestamp.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            &v.region.to_string(),
            v.fuel.as_str(),
            v.meter.as_str(),
            v.payment_method.as_str(),
            &v.elec_kwh.to_string(),
            &v.gas_kwh.to_string(),
            &share,
            v.current_supplier.as_deref().unwrap_or(""),
            v.current_tariff.as_deref().unwrap_or(""),
            b(v.filters.fixed_only),
            b(v.filters.green_only),
            b(v.filters.no_exit_fees),
            b(v.filters.switchable_only),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// An inclusive range of annual kWh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KwhRange {
    /// Smallest kept, inclusive.
    #[serde(default)]
    pub min: Option<u32>,
    /// Largest kept, inclusive.
    #[serde(default)]
    pub max: Option<u32>,
}

impl KwhRange {
    fn contains(&self, kwh: u32) -> bool {
        self.min.is_none_or(|m| kwh >= m) && self.max.is_none_or(|m| kwh <= m)
    }
}

/// Which visits make up the population. Every given criterion must hold; an empty filter keeps all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationFilter {
    /// Only these regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<Region>>,
    /// Only these fuel choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuels: Option<Vec<Fuel>>,
    /// Only these meters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meters: Option<Vec<Meter>>,
    /// Only these payment methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_methods: Option<Vec<PaymentMethod>>,
    /// Visits on or after this date.
    #[serde(
        with = "crate::dates::opt_date",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<NaiveDate>,
    /// Visits on or before this date.
    #[serde(
        with = "crate::dates::opt_date",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub to: Option<NaiveDate>,
    /// Annual electricity range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elec_kwh: Option<KwhRange>,
    /// Annual gas range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_kwh: Option<KwhRange>,
    /// Only visitors with these current suppliers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_suppliers: Option<Vec<String>>,
    /// Only visitors on these current tariffs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_tariffs: Option<Vec<String>>,
    /// Only visitors who did (true) or did not (false) ask for fixed tariffs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_only: Option<bool>,
    /// Same, for green only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green_only: Option<bool>,
    /// Same, for no exit fees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_exit_fees: Option<bool>,
    /// Same, for switchable only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchable_only: Option<bool>,
}

fn allowed<T: PartialEq>(list: &Option<Vec<T>>, value: &T) -> bool {
    list.as_ref().is_none_or(|l| l.contains(value))
}

fn allowed_text(list: &Option<Vec<String>>, value: &Option<String>) -> bool {
    list.as_ref()
        .is_none_or(|l| value.as_ref().is_some_and(|v| l.contains(v)))
}

impl PopulationFilter {
    /// Parses a filter from JSON.
    ///
    /// # Errors
    /// [`RunError::Json`](crate::RunError::Json) naming the field.
    pub fn from_json(json: &str) -> Result<PopulationFilter, crate::RunError> {
        crate::error::from_json(json).map_err(crate::RunError::json)
    }

    /// Whether a visit belongs to the population.
    pub fn keeps(&self, v: &Visit) -> bool {
        let date = v.timestamp.date();
        allowed(&self.regions, &v.region)
            && allowed(&self.fuels, &v.fuel)
            && allowed(&self.meters, &v.meter)
            && allowed(&self.payment_methods, &v.payment_method)
            && self.from.is_none_or(|d| date >= d)
            && self.to.is_none_or(|d| date <= d)
            && self.elec_kwh.is_none_or(|r| r.contains(v.elec_kwh))
            && self.gas_kwh.is_none_or(|r| r.contains(v.gas_kwh))
            && allowed_text(&self.current_suppliers, &v.current_supplier)
            && allowed_text(&self.current_tariffs, &v.current_tariff)
            && self.fixed_only.is_none_or(|b| v.filters.fixed_only == b)
            && self.green_only.is_none_or(|b| v.filters.green_only == b)
            && self
                .no_exit_fees
                .is_none_or(|b| v.filters.no_exit_fees == b)
            && self
                .switchable_only
                .is_none_or(|b| v.filters.switchable_only == b)
    }

    /// The visits this filter keeps, in their original order.
    ///
    /// # Errors
    /// [`VisitError::EmptyPopulation`] when it keeps none.
    pub fn apply<'a>(&self, visits: &'a [Visit]) -> Result<Vec<&'a Visit>, VisitError> {
        let kept: Vec<&Visit> = visits.iter().filter(|v| self.keeps(v)).collect();
        if kept.is_empty() {
            return Err(VisitError::EmptyPopulation {
                visits: visits.len(),
            });
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "visit_id,timestamp,region,fuel,meter,payment_method,elec_kwh,gas_kwh,e7_night_share,current_supplier,current_tariff,fixed_only,green_only,no_exit_fees,switchable_only\n";

    #[test]
    fn parses_and_round_trips() {
        let csv = format!(
            "{HEADER}v1,2026-07-01T08:15:00Z,C,dual_fuel,single_rate,direct_debit,2700,11500,,Alpha Energy,alpha-svt,false,true,false,true\nv2,2026-07-02 09:00:00,k,electricity,economy7,prepayment,3900,,0.5,,,0,0,1,0\n"
        );
        let visits = parse_visits_csv(csv.as_bytes()).unwrap();
        assert_eq!(visits.len(), 2);
        assert_eq!(visits[1].region.letter(), 'K');
        assert_eq!(visits[1].e7_night_share_bp, Some(5_000));
        assert!(visits[1].filters.no_exit_fees);
        let mut out = Vec::new();
        write_visits_csv(&mut out, &visits).unwrap();
        assert_eq!(parse_visits_csv(&out).unwrap(), visits);
    }

    #[test]
    fn errors_name_line_and_field() {
        let csv = format!(
            "{HEADER}v1,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,,,,\nv2,2026-07-01,Z,gas,,direct_debit,,100,,,,,,,\n"
        );
        let e = parse_visits_csv(csv.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "UnknownRegion");
        assert!(e.to_string().contains("line 3"), "{e}");
        let csv =
            format!("{HEADER}v1,2026-07-01,C,dual_fuel,single_rate,direct_debit,-5,11500,,,,,,,\n");
        let e = parse_visits_csv(csv.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("line 2, field elec_kwh"), "{e}");
        let csv = format!("{HEADER}v1,2026-07-01,C,dual_fuel\n");
        let e = parse_visits_csv(csv.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "InvalidVisitsCsv");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn filter_keeps_matching_and_reports_empty() {
        let csv = format!(
            "{HEADER}v1,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,,,,\nv2,2026-08-01,A,gas,,prepayment,,9000,,,,,,,\n"
        );
        let visits = parse_visits_csv(csv.as_bytes()).unwrap();
        let f: PopulationFilter =
            serde_json::from_str(r#"{"regions":["C"],"to":"2026-07-31"}"#).unwrap();
        assert_eq!(f.apply(&visits).unwrap().len(), 1);
        let f: PopulationFilter = serde_json::from_str(r#"{"regions":["B"]}"#).unwrap();
        assert_eq!(f.apply(&visits).unwrap_err().code(), "EmptyPopulation");
    }
}
