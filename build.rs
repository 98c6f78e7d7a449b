//! Turns the embedded TDCV table (`data/domain/tdcv.csv`) into a constant (`$OUT_DIR/tdcv.rs`,
//! included by `src/consumption.rs`): the table stays data, and a cold start of the price lambda
//! neither compiles nor runs a reader for it.
//!
//! The CSV is our own: a header, then one vintage a line, the free-text `note` column last (so a
//! line splits into the header's number of fields with any comma of the note kept in it). Only the
//! medium values are used. A malformed table fails the build, naming the line.

// The build reads what cargo tells it in the environment; the core (src/) never does.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let csv = Path::new(&manifest).join("data/domain/tdcv.csv");
    println!("cargo::rerun-if-changed={}", csv.display());
    let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let headers: Vec<&str> = lines
        .next()
        .expect("tdcv.csv: no header")
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("tdcv.csv lacks column {name}"))
    };
    let (date, elec, e7, gas) = (
        col("in_force_from"),
        col("elec_medium"),
        col("e7_medium"),
        col("gas_medium"),
    );
    let mut rows: Vec<((i32, u32, u32), [u32; 3])> = lines
        .map(|line| {
            let r: Vec<&str> = line.splitn(headers.len(), ',').map(str::trim).collect();
            let kwh = |i: usize| {
                r.get(i)
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or_else(|| {
                        panic!(
                            "tdcv.csv: {line:?}: column {} is not a whole number of kWh",
                            headers[i]
                        )
                    })
            };
            let ymd: Vec<&str> = r[date].split('-').collect();
            let part = |i: usize| ymd.get(i).and_then(|v| v.parse::<u32>().ok());
            let (Some(y), Some(m), Some(d), 3) = (part(0), part(1), part(2), ymd.len()) else {
                panic!("tdcv.csv: {line:?}: in_force_from is not a YYYY-MM-DD date");
            };
            ((y as i32, m, d), [kwh(elec), kwh(e7), kwh(gas)])
        })
        .collect();
    assert!(!rows.is_empty(), "tdcv.csv: no vintage");
    rows.sort_by_key(|r| r.0);
    let mut out = String::from("[\n");
    for ((y, m, d), [e, e7, g]) in rows {
        writeln!(
            out,
            "    TypicalConsumption {{ in_force_from: date({y}, {m}, {d}), electricity_kwh: {e}, economy7_kwh: {e7}, gas_kwh: {g} }},"
        )
        .expect("write to a String");
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("tdcv.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}
