//! Ofgem's Typical Domestic Consumption Values (TDCV): the annual consumption a results table
//! assumes when a visitor does not give theirs.
//!
//! The values are data, not constants: the table is `data/domain/tdcv.csv` (Ofgem's published
//! vintages, embedded at build time), and the values in force at a date are those of the latest
//! vintage in force on or before it, so a market dated July 2026 uses the July 2026 values and a
//! market dated 2025 the 2024 ones. Only the medium values are used.

use crate::domain::{Fuel, Meter};
use chrono::NaiveDate;

/// The TDCV table: Ofgem's typical domestic consumption values as published, by the date each
/// came into force (`data/domain/tdcv.csv`).
pub const TDCV_CSV: &str = include_str!("../data/domain/tdcv.csv");

/// Typical (medium) annual consumption in force at a date, kWh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypicalConsumption {
    /// The date these values came into force.
    pub in_force_from: NaiveDate,
    /// Electricity on a single-rate meter.
    pub electricity_kwh: u32,
    /// Electricity on an Economy 7 meter.
    pub economy7_kwh: u32,
    /// Gas.
    pub gas_kwh: u32,
}

impl TypicalConsumption {
    /// Typical electricity for a meter.
    pub fn electricity_for(&self, meter: Meter) -> u32 {
        match meter {
            Meter::SingleRate => self.electricity_kwh,
            Meter::Economy7 => self.economy7_kwh,
        }
    }

    /// Typical `(electricity, gas)` for a fuel choice and meter (0 for a fuel not bought).
    pub fn for_fuel(&self, fuel: Fuel, meter: Meter) -> (u32, u32) {
        (
            if fuel.has_electricity() {
                self.electricity_for(meter)
            } else {
                0
            },
            if fuel.has_gas() { self.gas_kwh } else { 0 },
        )
    }
}

/// Every vintage of the table, oldest first: `data/domain/tdcv.csv` read at build time (build.rs),
/// so no reader for it is compiled into the modules or runs at a cold start.
pub fn vintages() -> &'static [TypicalConsumption] {
    VINTAGES
}

/// A date of the table (build.rs checked the text; an impossible date fails the build here).
const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(d) => d,
        None => panic!("data/domain/tdcv.csv: a date that does not exist"),
    }
}

const VINTAGES: &[TypicalConsumption] = &include!(concat!(env!("OUT_DIR"), "/tdcv.rs"));

/// The typical consumption in force at `date`: the latest vintage in force on or before it (the
/// oldest vintage for a date before every vintage).
pub fn typical_at(date: NaiveDate) -> TypicalConsumption {
    let table = vintages();
    table
        .iter()
        .rev()
        .find(|v| v.in_force_from <= date)
        .unwrap_or(&table[0])
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_table_reads_as_a_csv_reader_reads_it() {
        let mut reader = csv::Reader::from_reader(TDCV_CSV.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let mut expected: Vec<TypicalConsumption> = reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                TypicalConsumption {
                    in_force_from: d(&r[col("in_force_from")]),
                    electricity_kwh: r[col("elec_medium")].parse().unwrap(),
                    economy7_kwh: r[col("e7_medium")].parse().unwrap(),
                    gas_kwh: r[col("gas_medium")].parse().unwrap(),
                }
            })
            .collect();
        expected.sort_by_key(|r| r.in_force_from);
        assert_eq!(vintages(), expected.as_slice());
        assert!(vintages().len() >= 5);
    }

    #[test]
    fn the_values_in_force_follow_the_date() {
        // (date, electricity, E7, gas): data-driven from Ofgem's published vintages.
        let cases = [
            ("2026-07-01", 2_500, 3_400, 9_500),
            ("2026-12-01", 2_500, 3_400, 9_500),
            ("2026-06-30", 2_700, 3_900, 11_500),
            ("2024-01-01", 2_700, 3_900, 11_500),
            ("2023-12-31", 2_900, 4_200, 12_000),
            ("2016-01-01", 3_100, 4_300, 12_500),
            ("2000-01-01", 3_300, 5_000, 16_500),
        ];
        for (date, elec, e7, gas) in cases {
            let t = typical_at(d(date));
            assert_eq!(
                (t.electricity_kwh, t.economy7_kwh, t.gas_kwh),
                (elec, e7, gas),
                "{date}"
            );
        }
    }

    #[test]
    fn fuels_not_bought_are_zero() {
        let t = typical_at(d("2026-07-01"));
        assert_eq!(t.for_fuel(Fuel::Gas, Meter::Economy7), (0, 9_500));
        assert_eq!(t.for_fuel(Fuel::Electricity, Meter::Economy7), (3_400, 0));
        assert_eq!(
            t.for_fuel(Fuel::DualFuel, Meter::SingleRate),
            (2_500, 9_500)
        );
    }
}
