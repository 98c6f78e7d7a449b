//! `gen-market` on other dates than its default: every tariff on the cap it says it is on.

use chrono::{Months, NaiveDate};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{ok, tariffsim};

/// The four cap components, as `(fuel, field)` of a rate card.
const COMPONENTS: [(&str, &str); 4] = [
    ("electricity", "unit_p_per_kwh"),
    ("electricity", "standing_p_per_day"),
    ("gas", "unit_p_per_kwh"),
    ("gas", "standing_p_per_day"),
];

/// The CSV column of a component.
fn column(fuel: &str, field: &str) -> String {
    let fuel = if fuel == "electricity" { "elec" } else { "gas" };
    format!("{fuel}_{field}")
}

fn domain(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/domain")
        .join(name)
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A domain CSV's rows: each row's key (made by `key` from a getter of its fields) and the four
/// components.
fn cap_rows<K>(file: &str, key: impl Fn(&dyn Fn(&str) -> String) -> K) -> Vec<(K, [f64; 4])> {
    let mut csv = csv::Reader::from_path(domain(file)).unwrap();
    let headers = csv.headers().unwrap().clone();
    csv.records()
        .map(|r| {
            let r = r.unwrap();
            let get = |name: &str| r[headers.iter().position(|h| h == name).unwrap()].to_string();
            let rates = COMPONENTS.map(|(fuel, field)| get(&column(fuel, field)).parse().unwrap());
            (key(&get), rates)
        })
        .collect()
}

/// `data/domain/gb_price_cap.csv`: (first day, last day, the four components).
fn gb_cap() -> Vec<(NaiveDate, NaiveDate, [f64; 4])> {
    cap_rows("gb_price_cap.csv", |get| {
        (date(&get("period_start")), date(&get("period_end")))
    })
    .into_iter()
    .map(|((from, to), rates)| (from, to, rates))
    .collect()
}

/// `data/domain/regional_cap_2026q3.csv`: direct debit, by GSP letter.
fn regional_cap() -> HashMap<String, [f64; 4]> {
    cap_rows("regional_cap_2026q3.csv", |get| {
        get("gsp_letter").trim().to_string()
    })
    .into_iter()
    .collect()
}

/// The GB-average cap on `day`.
fn gb_on(gb: &[(NaiveDate, NaiveDate, [f64; 4])], day: NaiveDate) -> [f64; 4] {
    gb.iter()
        .find(|(from, to, _)| *from <= day && day <= *to)
        .unwrap_or_else(|| panic!("{day} is not in gb_price_cap.csv"))
        .2
}

fn rate(card: &Value, (fuel, field): (&str, &str)) -> Option<f64> {
    card[fuel][field].as_f64()
}

fn gen_market(dir: &Path, seed: u64, as_of: &str) -> Value {
    let out = dir.join(format!("market-{seed}-{as_of}.json"));
    ok(tariffsim(&[
        "gen-market",
        "--seed",
        &seed.to_string(),
        "--as-of",
        as_of,
        "--out",
        out.to_str().unwrap(),
    ]));
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

#[test]
fn closed_fixes_are_on_the_cap_they_were_sold_under_and_variable_tariffs_on_the_as_of_cap() {
    let dir = tempfile::tempdir().unwrap();
    let gb = gb_cap();
    let table = regional_cap();
    let table_quarter = gb_on(&gb, date("2026-07-01"));
    // Slack for rounding to 2 decimals of a penny.
    let r = 0.0051;
    let (mut closed_fixes, mut cheaper, mut dearer) = (0, 0, 0);
    for as_of in [
        "2026-01-01",
        "2025-06-15",
        "2024-12-01",
        "2026-09-30",
        "2026-07-01",
    ] {
        for seed in [1, 2] {
            let m = gen_market(dir.path(), seed, as_of);
            let now = gb_on(&gb, date(as_of));
            // The variable tariffs: the regional table carried to the cap in force at --as-of.
            let mut svt: HashMap<(String, String), Value> = HashMap::new();
            for t in m["tariffs"].as_array().unwrap() {
                if t["kind"] != "variable" {
                    continue;
                }
                for card in t["rates"].as_array().unwrap() {
                    let region = card["region"].as_str().unwrap().to_string();
                    let pm = card["payment_method"].as_str().unwrap().to_string();
                    if pm == "direct_debit" {
                        for (i, c) in COMPONENTS.into_iter().enumerate() {
                            let want = table[&region][i] * now[i] / table_quarter[i];
                            let got = rate(card, c).unwrap();
                            assert!(
                                (got - want).abs() <= r,
                                "{as_of} {} {region} {c:?}: {got}, want {want:.4}",
                                t["id"]
                            );
                        }
                    }
                    svt.insert((region, pm), card.clone());
                }
            }
            for t in m["tariffs"].as_array().unwrap() {
                if t["kind"] != "fixed" {
                    continue;
                }
                let id = t["id"].as_str().unwrap();
                if t["on_sale"] == true {
                    // Fixes on sale: within 10% of the cap in force, as the variable tariffs.
                    for card in t["rates"].as_array().unwrap() {
                        let key = (
                            card["region"].as_str().unwrap().to_string(),
                            card["payment_method"].as_str().unwrap().to_string(),
                        );
                        for c in COMPONENTS {
                            let (Some(fix), Some(cap)) = (rate(card, c), rate(&svt[&key], c))
                            else {
                                continue;
                            };
                            assert!(
                                0.9 * cap - 2.0 * r <= fix && fix <= 1.1 * cap + 2.0 * r,
                                "{as_of} {id} {key:?} {c:?}: {fix} against the cap {cap}"
                            );
                        }
                    }
                    continue;
                }
                // Closed fixes: within 10% of the cap of the quarter they were sold in, which is
                // the regional table times the GB cap then / in Jul-Sep 2026, whatever --as-of.
                closed_fixes += 1;
                let end = date(t["end_date"].as_str().unwrap());
                let sold = end.checked_sub_months(Months::new(12)).unwrap();
                assert!(sold < date(as_of), "{as_of} {id} sold {sold}");
                let then = gb_on(&gb, sold);
                for card in t["rates"].as_array().unwrap() {
                    let region = card["region"].as_str().unwrap().to_string();
                    assert_eq!(card["payment_method"], "direct_debit", "{id}");
                    let variable = &svt[&(region.clone(), "direct_debit".to_string())];
                    for (i, c) in COMPONENTS.into_iter().enumerate() {
                        let base = table[&region][i] * then[i] / table_quarter[i];
                        let fix = rate(card, c).unwrap();
                        assert!(
                            0.9 * base - r <= fix && fix <= 1.1 * base + r,
                            "--as-of {as_of}: {id} (sold {sold}) {region} {c:?} is {fix}: \
                             not within 10% of the cap then, {base:.4}"
                        );
                        // A fix sold when the cap was more than 10% under (over) the cap in force
                        // is cheaper (dearer) than the variable tariff.
                        let svt_rate = rate(variable, c).unwrap();
                        if then[i] * 1.1 < now[i] * 0.99 {
                            cheaper += 1;
                            assert!(
                                fix < svt_rate,
                                "--as-of {as_of}: {id} (sold {sold}) {region} {c:?} is {fix}, \
                                 not under the variable tariff's {svt_rate}"
                            );
                        }
                        if then[i] * 0.9 > now[i] * 1.01 {
                            dearer += 1;
                            assert!(
                                fix > svt_rate,
                                "--as-of {as_of}: {id} (sold {sold}) {region} {c:?} is {fix}, \
                                 not over the variable tariff's {svt_rate}"
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(closed_fixes >= 20, "{closed_fixes} closed fixes");
    assert!(
        cheaper > 0 && dearer > 0,
        "cheaper {cheaper}, dearer {dearer}"
    );
}

#[test]
fn the_sep_2025_fix_of_the_review_is_under_its_cap() {
    // The reviewer's case: E.ON Next's fix sold in Sep 2025, in a market dated 2026-01-01.
    let dir = tempfile::tempdir().unwrap();
    let m = gen_market(dir.path(), 1, "2026-01-01");
    let fix = m["tariffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "eon-next-fix-12m-sep25")
        .expect("the seed-1 market dated 2026-01-01 has eon-next-fix-12m-sep25");
    let london = fix["rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["region"] == "C" && c["payment_method"] == "direct_debit")
        .unwrap();
    let gas_unit = rate(london, ("gas", "unit_p_per_kwh")).unwrap();
    // London's Jul-Sep 2026 cap 7.50 p/kWh x GB 6.33 (Jul-Sep 2025) / 7.33, at most 10% over.
    assert!(
        gas_unit <= 7.50 * 6.33 / 7.33 * 1.1,
        "{gas_unit} p/kWh: priced on the wrong cap"
    );
}

fn refused(as_of: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("market.json");
    let o = tariffsim(&[
        "gen-market",
        "--seed",
        "1",
        "--as-of",
        as_of,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!out.exists(), "--as-of {as_of} wrote a market");
    o
}

#[test]
fn dates_the_price_cap_data_does_not_cover_are_refused_not_priced_on_another_cap() {
    for as_of in ["2024-11-30", "2026-10-01", "2020-01-01"] {
        let o = refused(as_of);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        for e in [
            "[InvalidArgument]",
            &format!("--as-of {as_of}"),
            "give 2024-12-01 to 2026-09-30",
            "gb_price_cap.csv",
        ] {
            assert!(stderr.contains(e), "stderr lacks {e:?}: {stderr}");
        }
    }
    let help = String::from_utf8(tariffsim(&["gen-market", "--help"]).stdout).unwrap();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("2024-12-01 to 2026-09-30"), "{help}");
}

/// The visits' first and last dates of `gen-visits` on `market`, with `more` flags.
fn visit_dates(dir: &Path, market: &Path, more: &[&str]) -> (String, String) {
    let out = dir.join("visits.csv");
    let mut args = vec![
        "gen-visits",
        "--market",
        market.to_str().unwrap(),
        "--seed",
        "2",
        "--rows",
        "500",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    ok(tariffsim(&args));
    let mut csv = csv::Reader::from_path(&out).unwrap();
    let at = csv.headers().unwrap().iter().position(|h| h == "timestamp");
    let days: Vec<String> = csv
        .records()
        .map(|r| r.unwrap()[at.unwrap()][..10].to_string())
        .collect();
    let first = days.iter().min().unwrap().clone();
    let last = days.iter().max().unwrap().clone();
    (first, last)
}

// A visit's date decides what a visitor on a fix pays (the days left of it, its exit fee): the
// visits of a market dated otherwise are dated with it, not in the sample's quarter.
#[test]
fn gen_visits_dates_visits_in_the_quarter_of_the_market_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    gen_market(dir.path(), 1, "2025-03-01");
    let market = dir.path().join("market-1-2025-03-01.json");
    let (first, last) = visit_dates(dir.path(), &market, &[]);
    assert!(
        first.as_str() >= "2025-03-01" && last.as_str() <= "2025-05-31",
        "{first} to {last}"
    );
    assert!(
        first.as_str() <= "2025-03-10" && last.as_str() >= "2025-05-20",
        "{first} to {last}"
    );
    // --from alone: the quarter from it; both: as given.
    let (first, last) = visit_dates(dir.path(), &market, &["--from", "2025-04-15"]);
    assert!(
        first.as_str() >= "2025-04-15" && last.as_str() <= "2025-07-14",
        "{first} to {last}"
    );
    let (first, last) = visit_dates(
        dir.path(),
        &market,
        &["--from", "2025-03-02", "--to", "2025-03-03"],
    );
    assert!(
        first.as_str() >= "2025-03-02" && last.as_str() <= "2025-03-03",
        "{first} to {last}"
    );
    let help = String::from_utf8(tariffsim(&["gen-visits", "--help"]).stdout).unwrap();
    assert!(help.contains("Default: the market's `as_of`"), "{help}");
}

/// `payment_methods.csv`'s level of one payment method in one period, per component.
fn method_level(period: &str, method: &str) -> [f64; 4] {
    cap_rows("payment_methods.csv", |f| {
        (f("period_start"), f("payment_method"))
    })
    .into_iter()
    .find(|((p, m), _)| p == period && m == method)
    .unwrap_or_else(|| panic!("no {period} {method} row"))
    .1
}

// Standard credit and prepayment are direct debit times the published ratio of the period in force
// at the market date (the latest period that lists the method, else the first), not of one period
// for every date.
#[test]
fn payment_methods_are_priced_on_the_ratios_in_force_at_the_market_date() {
    let dir = tempfile::tempdir().unwrap();
    for (as_of, credit_period, prepay_period) in [
        ("2025-03-01", "2025-01-01", "2025-07-01"),
        ("2026-07-01", "2025-07-01", "2025-07-01"),
    ] {
        let market = gen_market(dir.path(), 1, as_of);
        let source = market["source"].as_str().unwrap();
        assert!(
            source.contains(credit_period) && source.contains(prepay_period),
            "{source}"
        );
        let svt = market["tariffs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == "variable")
            .unwrap();
        let card = |pm: &str| {
            svt["rates"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["region"] == "A" && c["payment_method"] == pm)
                .unwrap()
                .clone()
        };
        let dd = card("direct_debit");
        for (pm, period) in [
            ("standard_credit", credit_period),
            ("prepayment", prepay_period),
        ] {
            let (x, d) = (
                method_level(period, pm),
                method_level(period, "direct_debit"),
            );
            let card = card(pm);
            for (i, component) in COMPONENTS.into_iter().enumerate() {
                let got = rate(&card, component).unwrap();
                let want = rate(&dd, component).unwrap() * x[i] / d[i];
                // Both sides rounded to 2 decimals of a penny from the unrounded cap.
                assert!(
                    (got - want).abs() <= 0.011,
                    "{as_of} {pm} {component:?}: {got} against {want} ({period} ratio)"
                );
            }
        }
    }
}
