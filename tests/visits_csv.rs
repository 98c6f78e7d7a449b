//! The visits CSV as other tools write it: every visits file shipped in the repository loads (the
//! header check refuses unknown columns, so a fixture with a stray column would fail here first),
//! the files under `tests/fixtures/bad` fail with the error their name says, and a file as R
//! exports it (`NA` for missing values, quoted strings, `TRUE`/`FALSE`) reads as formats.md says.

use std::path::{Path, PathBuf};
use tariffsim::parse_visits_csv;
use tariffsim::visit::VISITS_CSV_COLUMNS;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.csv` under `dir` whose first line starts with `visit_id,`.
fn visits_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visits_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "csv") {
            let bytes = std::fs::read(&path).unwrap();
            let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
            if text.starts_with(b"visit_id,") {
                found.push(path);
            }
        }
    }
}

#[test]
fn every_shipped_visits_file_loads_and_every_bad_one_fails_as_named() {
    let mut files = Vec::new();
    visits_files(&root().join("data"), &mut files);
    visits_files(&root().join("tests/fixtures"), &mut files);
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        let result = parse_visits_csv(&std::fs::read(path).unwrap());
        let expected = match path.file_name().unwrap().to_str().unwrap() {
            "visits_malformed.csv" => Some("InvalidVisitsCsv"),
            "visits_unknown_region.csv" => Some("UnknownRegion"),
            "visits_negative_kwh.csv" => Some("InvalidVisit"),
            _ if name.contains("/bad/") => {
                failures.push(format!("{name}: a bad fixture this test does not know"));
                continue;
            }
            _ => None,
        };
        match (result, expected) {
            (Ok(v), None) if !v.is_empty() => {}
            (Ok(v), _) => failures.push(format!("{name}: read {} visits", v.len())),
            (Err(e), Some(code)) if e.code() == code => {}
            (Err(e), _) => failures.push(format!("{name}: [{}] {e}", e.code())),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_file_as_r_writes_it_reads_as_documented() {
    // write.csv(visits, row.names = FALSE): every string quoted, NA unquoted, logicals TRUE/FALSE.
    let header = VISITS_CSV_COLUMNS
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(",");
    let csv = format!(
        "{header}\n\
         \"v1\",\"2026-07-01T08:15:00Z\",\"C\",\"gas\",NA,\"direct_debit\",NA,9000,NA,NA,NA,FALSE,FALSE,FALSE,FALSE\n\
         \"v2\",\"2026-07-02 09:00:00\",\"K\",\"dual_fuel\",\"economy7\",\"prepayment\",3900.4,11500,0.5,\"Alpha Energy\",NA,TRUE,NA,NA,FALSE\n"
    );
    let visits = parse_visits_csv(csv.as_bytes()).unwrap();
    assert_eq!(visits.len(), 2);
    assert_eq!(visits[0].meter, tariffsim::Meter::SingleRate);
    assert_eq!((visits[0].elec_kwh, visits[0].gas_kwh), (0, 9000));
    assert_eq!(visits[0].current_supplier, None);
    assert_eq!(visits[1].elec_kwh, 3900);
    assert_eq!(visits[1].e7_night_share_bp, Some(5_000));
    assert_eq!(visits[1].current_supplier.as_deref(), Some("Alpha Energy"));
    assert_eq!(visits[1].current_tariff, None);
    assert!(visits[1].filters.fixed_only && !visits[1].filters.green_only);
}

#[test]
fn an_error_names_the_line_of_the_bad_row_after_blank_lines_too() {
    let header = VISITS_CSV_COLUMNS.join(",");
    let good = "v1,2026-07-01T08:15:00Z,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,false,false,false,false";
    let bad_region = "v2,2026-07-01T08:15:00Z,Z,dual_fuel,single_rate,direct_debit,2700,11500,,,,false,false,false,false";
    for (text, line) in [
        (format!("{header}\n\n\n\n{bad_region}\n"), 5),
        (format!("{header}\n{good}\n\n{bad_region}\n"), 4),
        (format!("{header}\r\n{good}\r\n\r\n{bad_region}\r\n"), 4),
        (format!("{header}\n{good}\n\nv3,short\n"), 4),
    ] {
        let e = parse_visits_csv(text.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(&format!("line {line}")), "{line}: {e}");
    }
}
