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
    // kWh are rounded to a whole kWh before this check, so say what the rounding needs: a value
    // under 0.5 kWh comes to 0.
    if v.fuel.has_electricity() && v.elec_kwh == 0 {
        return Err(bad("elec_kwh", no_consumption("electricity")));
    }
    if v.fuel.has_gas() && v.gas_kwh == 0 {
        return Err(bad("gas_kwh", no_consumption("gas")));
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

/// The problem of a fuel bought with no consumption (0 kWh once rounded, or none given).
fn no_consumption(fuel: &str) -> String {
    format!(
        "give the annual {fuel} consumption in kWh: it is rounded to a whole kWh, which must be at least 1, so give 0.5 or more"
    )
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
use crate::dates::read_timestamp;

/// The text a CSV writer puts for a missing value: nothing, or `NA` (R's `write.csv` and
/// `readr::write_csv` write `NA` by default). Spaces around it do not count.
fn is_missing(s: &str) -> bool {
    matches!(s.trim(), "" | "NA")
}

/// A visits CSV boolean; missing (empty or `NA`) is `false`.
fn parse_bool(s: &str) -> Option<bool> {
    if is_missing(s) {
        return Some(false);
    }
    match s.trim() {
        "0" | "false" | "FALSE" | "False" | "no" | "F" => Some(false),
        "1" | "true" | "TRUE" | "True" | "yes" | "T" => Some(true),
        _ => None,
    }
}

fn parse_kwh(s: &str, line: u64, field: &'static str) -> Result<u32, VisitError> {
    if is_missing(s) {
        return Ok(0);
    }
    let s = s.trim();
    let bad = |problem: String| VisitError::InvalidField {
        line,
        field,
        problem,
    };
    let x: f64 = s
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite())
        .ok_or_else(|| bad(format!("{s:?} is not a number of kWh")))?;
    if x < 0.0 {
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
    (!is_missing(s)).then(|| s.trim().to_string())
}

impl RawVisit<'_> {
    fn into_visit(self, line: u64) -> Result<Visit, VisitError> {
        let bad = |field, problem: String| VisitError::InvalidField {
            line,
            field,
            problem,
        };
        // A required column's missing value (empty or NA) is refused before it is read, so the
        // message says it is missing rather than that "NA" is not a region.
        let required = |field: &'static str, s: &str, what: &str| {
            if is_missing(s) {
                Err(bad(
                    field,
                    format!("missing (empty or NA): every visit needs {what}"),
                ))
            } else {
                Ok(())
            }
        };
        required("visit_id", self.visit_id, "an id")?;
        required(
            "timestamp",
            self.timestamp,
            "a timestamp, e.g. 2026-07-01T08:15:00Z",
        )?;
        required("region", self.region, "a region letter, A to P")?;
        required("fuel", self.fuel, "a fuel: electricity, gas or dual_fuel")?;
        required(
            "payment_method",
            self.payment_method,
            "a payment method: direct_debit, standard_credit or prepayment",
        )?;
        let fuel: Fuel = self.fuel.parse().map_err(|e| bad("fuel", format!("{e}")))?;
        let meter = if !is_missing(self.meter) {
            self.meter
                .parse()
                .map_err(|e| bad("meter", format!("{e}")))?
        } else if fuel.has_electricity() {
            return Err(bad(
                "meter",
                format!(
                    "missing (empty or NA): a visit that buys {fuel} needs its meter, single_rate or economy7",
                    fuel = fuel.as_str()
                ),
            ));
        } else {
            Meter::SingleRate
        };
        let e7_night_share_bp = if is_missing(self.e7_night_share) {
            None
        } else {
            let s = self.e7_night_share.trim();
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
        };
        let flag = |field: &'static str, s: &str| {
            parse_bool(s).ok_or_else(|| {
                bad(
                    field,
                    format!("{s:?} is not a boolean: use true or false (empty or NA is false)"),
                )
            })
        };
        let visit = Visit {
            visit_id: self.visit_id.trim().to_string(),
            timestamp: read_timestamp(self.timestamp)
                .map_err(|e| bad("timestamp", e.problem(self.timestamp)))?,
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

/// Refuses a header that would be read wrongly: a column that is not a visits column (a misspelt
/// `fixedonly` would otherwise read every filter as false), a column named twice, or a required
/// column missing.
fn check_header(headers: &csv::StringRecord) -> Result<(), VisitError> {
    let refuse = |message: String| VisitError::Csv { line: 1, message };
    let known = || VISITS_CSV_COLUMNS.join(",");
    // Letters and digits only, in lower case: what a misspelling most often keeps.
    let squash = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    for (i, name) in headers.iter().enumerate() {
        if !VISITS_CSV_COLUMNS.contains(&name) {
            let hint = match VISITS_CSV_COLUMNS
                .iter()
                .find(|c| !name.is_empty() && squash(c) == squash(name))
            {
                Some(c) => format!(" (did you mean {c:?}?)"),
                None if name.trim().is_empty() => {
                    " (a column with no name: row names, e.g. from R's write.csv without row.names = FALSE?)".to_string()
                }
                None => String::new(),
            };
            return Err(refuse(format!(
                "column {} of the header, {name:?}, is not a visits column{hint}: rename or remove it; the columns are: {}",
                i + 1,
                known()
            )));
        }
        if headers.iter().take(i).any(|h| h == name) {
            return Err(refuse(format!(
                "the header names column {name:?} twice: keep one"
            )));
        }
    }
    for required in ["visit_id", "timestamp", "region", "fuel", "payment_method"] {
        if !headers.iter().any(|h| h == required) {
            return Err(refuse(format!(
                "the header has no {required:?} column; expected columns: {}",
                known()
            )));
        }
    }
    Ok(())
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
    check_header(&headers)?;
    let mut visits = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| record_line(bytes, p));
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
        let line = record.position().map_or(line, |p| record_line(bytes, p));
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

/// The line a record starts on: the csv reader's position is that of the blank lines it skipped
/// before the record, when there are any.
fn record_line(bytes: &[u8], pos: &csv::Position) -> u64 {
    let mut line = pos.line();
    let start = usize::try_from(pos.byte()).unwrap_or(usize::MAX);
    for &b in bytes.get(start..).unwrap_or_default() {
        match b {
            b'\n' => line += 1,
            b'\r' => {}
            _ => break,
        }
    }
    line
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
    fn na_reads_as_the_documented_missing_value_in_every_optional_column() {
        // R's write.csv / readr::write_csv write NA for a missing value.
        let csv = format!(
            "{HEADER}v1,2026-07-01T08:15:00Z,C,gas,NA,direct_debit,NA,9000,NA,NA,NA,false,false,false,false\n\
             v2,2026-07-01T08:15:00Z,C,electricity,economy7,prepayment,3000,NA,NA,Alpha,NA,NA,NA,NA,NA\n\
             v3,2026-07-01T08:15:00Z,C,dual_fuel,single_rate,direct_debit,2700,11500, NA , NA ,NA,TRUE, NA ,T,NA\n"
        );
        let visits = parse_visits_csv(csv.as_bytes()).unwrap();
        let [v1, v2, v3] = &visits[..] else {
            panic!("{visits:?}")
        };
        assert_eq!(v1.meter, Meter::SingleRate);
        assert_eq!((v1.elec_kwh, v1.gas_kwh), (0, 9000));
        assert_eq!(v1.e7_night_share_bp, None);
        assert_eq!((&v1.current_supplier, &v1.current_tariff), (&None, &None));
        assert_eq!(v2.gas_kwh, 0);
        assert_eq!(v2.current_supplier.as_deref(), Some("Alpha"));
        assert_eq!(v2.current_tariff, None);
        assert_eq!(v2.filters, VisitorFilters::default());
        assert_eq!(
            v2.usage().night_share_bp,
            crate::price::DEFAULT_E7_NIGHT_SHARE_BP
        );
        assert_eq!(v3.e7_night_share_bp, None);
        assert_eq!(v3.current_supplier, None);
        assert_eq!(
            v3.filters,
            VisitorFilters {
                fixed_only: true,
                green_only: false,
                no_exit_fees: true,
                switchable_only: false,
            }
        );
        // Written back with empty fields, never NA, and read back the same.
        let mut out = Vec::new();
        write_visits_csv(&mut out, &visits).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(!text.contains("NA"), "{text}");
        assert_eq!(parse_visits_csv(&out).unwrap(), visits);
    }

    #[test]
    fn a_missing_required_value_is_refused_naming_its_column() {
        let row = [
            "v1",
            "2026-07-01T08:15:00Z",
            "C",
            "dual_fuel",
            "single_rate",
            "direct_debit",
            "2700",
            "11500",
        ];
        let mut failures = Vec::new();
        // (column index, field, missing value)
        let cases = [0, 1, 2, 3, 4, 5]
            .into_iter()
            .flat_map(|i| ["NA", "", " NA "].map(move |m| (i, m)));
        for (i, missing) in cases {
            let mut fields = row;
            fields[i] = missing;
            let csv = format!(
                "{}\n{}\n",
                VISITS_CSV_COLUMNS[..8].join(","),
                fields.join(",")
            );
            let field = VISITS_CSV_COLUMNS[i];
            match parse_visits_csv(csv.as_bytes()) {
                Ok(v) => failures.push(format!("{field}={missing:?} accepted: {v:?}")),
                Err(e) => {
                    let text = e.to_string();
                    let code = if field == "region" {
                        "UnknownRegion"
                    } else {
                        "InvalidVisit"
                    };
                    if e.code() != code
                        || !text.contains(&format!("line 2, field {field}: missing (empty or NA)"))
                    {
                        failures.push(format!("{field}={missing:?}: [{}] {text}", e.code()));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn an_na_visit_id_is_refused_not_written_back() {
        let csv = format!("{HEADER}NA,2026-07-01,C,gas,,direct_debit,,9000,,,,,,,\n");
        let e = parse_visits_csv(csv.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "InvalidVisit");
        assert_eq!(
            e.to_string(),
            "visits CSV, line 2, field visit_id: missing (empty or NA): every visit needs an id"
        );
    }

    #[test]
    fn timestamps_whose_utc_date_leaves_0000_to_9999_are_invalid_visits() {
        for ts in ["9999-12-31T23:00:00-05:00", "0000-01-01T00:30:00+01:00"] {
            let csv = format!("{HEADER}v1,{ts},C,gas,,direct_debit,,9000,,,,,,,\n");
            let e = parse_visits_csv(csv.as_bytes()).unwrap_err();
            assert_eq!(e.code(), "InvalidVisit", "{ts}");
            assert!(
                e.to_string().contains(&format!(
                    "line 2, field timestamp: {ts:?} is outside the years 0000 to 9999"
                )),
                "{e}"
            );
        }
        let csv =
            format!("{HEADER}v1,9999-12-31T18:00:00-05:00,C,gas,,direct_debit,,9000,,,,,,,\n");
        let visits = parse_visits_csv(csv.as_bytes()).unwrap();
        let mut out = Vec::new();
        write_visits_csv(&mut out, &visits).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains(",9999-12-31T23:00:00Z,")
        );
    }

    #[test]
    fn consumption_that_rounds_to_zero_says_so() {
        let csv = format!(
            "{HEADER}v1,2026-07-01,C,dual_fuel,single_rate,direct_debit,0.4,11500,,,,,,,\n"
        );
        let e = parse_visits_csv(csv.as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("field elec_kwh"), "{text}");
        assert!(
            text.contains("rounded to a whole kWh") && text.contains("0.5 or more"),
            "{text}"
        );
        let csv = format!("{HEADER}v1,2026-07-01,C,gas,,direct_debit,,0.49,,,,,,,\n");
        let text = parse_visits_csv(csv.as_bytes()).unwrap_err().to_string();
        assert!(
            text.contains("field gas_kwh") && text.contains("0.5 or more"),
            "{text}"
        );
        let csv =
            format!("{HEADER}v1,2026-07-01,C,dual_fuel,single_rate,direct_debit,0.5,1.5,,,,,,,\n");
        let v = parse_visits_csv(csv.as_bytes()).unwrap();
        assert_eq!((v[0].elec_kwh, v[0].gas_kwh), (1, 2));
        // Not a number is not called negative.
        for x in ["inf", "NaN", "-inf"] {
            let csv = format!("{HEADER}v1,2026-07-01,C,gas,,direct_debit,,{x},,,,,,,\n");
            let text = parse_visits_csv(csv.as_bytes()).unwrap_err().to_string();
            assert!(
                text.contains(&format!("{x:?} is not a number of kWh")),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_duplicate_and_unnamed_columns_are_refused() {
        let row = "v1,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,true,false,false,false";
        let cases = [
            (
                HEADER.replace("fixed_only", "fixedonly"),
                "column 12 of the header, \"fixedonly\", is not a visits column (did you mean \"fixed_only\"?)",
            ),
            (
                HEADER.replace("green_only", "Green Only"),
                "\"Green Only\", is not a visits column (did you mean \"green_only\"?)",
            ),
            (
                HEADER.replace("region", " region"),
                "(did you mean \"region\"?)",
            ),
            (
                HEADER.replace("switchable_only", "notes"),
                "column 15 of the header, \"notes\", is not a visits column: rename or remove it; the columns are: visit_id,timestamp,",
            ),
            (format!("\"\",{HEADER}"), "a column with no name"),
            (
                HEADER.replace("switchable_only", "fixed_only"),
                "the header names column \"fixed_only\" twice",
            ),
        ];
        let mut failures = Vec::new();
        for (header, expected) in &cases {
            let row = if header.starts_with('"') {
                format!("1,{row}")
            } else {
                row.to_string()
            };
            match parse_visits_csv(format!("{header}{row}\n").as_bytes()) {
                Ok(_) => failures.push(format!("accepted: {header}")),
                Err(e)
                    if e.code() == "InvalidVisitsCsv"
                        && e.to_string().starts_with("visits CSV, line 1: ")
                        && e.to_string().contains(expected) => {}
                Err(e) => failures.push(format!("{header}: [{}] {e}", e.code())),
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        // Only the required columns, in another order, with a byte-order mark: fine.
        let csv = "\u{feff}fuel,payment_method,region,timestamp,visit_id,gas_kwh\ngas,prepayment,C,2026-07-01,v1,9000\n";
        let v = parse_visits_csv(csv.as_bytes()).unwrap();
        assert_eq!((v[0].visit_id.as_str(), v[0].gas_kwh), ("v1", 9000));
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
