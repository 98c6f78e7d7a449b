//! The `tariffsim` command as users run it: determinism, chunking, and clear errors on bad input.

use std::path::{Path, PathBuf};
use tariffsim::Summary;

mod common;
use common::{fixtures, ok, tariffsim};

/// Writes a run spec into `dir`, pointing at the fixtures, with `extra` JSON fields merged in.
fn spec(dir: &Path, extra: serde_json::Value) -> PathBuf {
    let f = fixtures();
    let mut spec = serde_json::json!({
        "market": f.join("mini_market.json"),
        "visits": f.join("mini_visits.csv"),
        "sample_size": 2_345,
        "chunk_size": 500,
        "seed": 11,
        "page_size": 3,
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let path = dir.join(format!("spec-{}.json", rand_name(&spec)));
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    path
}

fn rand_name(v: &serde_json::Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:x}", h.finish())
}

fn simulate(spec: &Path, out: &Path, threads: usize) -> (Vec<u8>, String) {
    ok(tariffsim(&[
        "simulate",
        spec.to_str().unwrap(),
        "--quiet",
        "--threads",
        &threads.to_string(),
        "--out",
        out.to_str().unwrap(),
    ]));
    (
        std::fs::read(out.join("impressions.csv")).unwrap(),
        std::fs::read_to_string(out.join("summary.json")).unwrap(),
    )
}

#[test]
fn same_spec_same_bytes_on_one_thread_and_many() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), serde_json::json!({}));
    let a = simulate(&s, &dir.path().join("a"), 1);
    let b = simulate(&s, &dir.path().join("b"), 4);
    let c = simulate(&s, &dir.path().join("c"), 2);
    assert_eq!(a, b);
    assert_eq!(a, c);
    let rows = a.0.iter().filter(|&&b| b == b'\n').count();
    assert!(
        rows > 2_345,
        "every profile is shown at least one tariff: {rows} lines"
    );
    let other_seed = simulate(
        &spec(dir.path(), serde_json::json!({"seed": 12})),
        &dir.path().join("d"),
        2,
    );
    assert_ne!(a.0, other_seed.0, "the seed changes the sample");
}

#[test]
fn chunks_in_any_order_concatenate_to_the_simulate_output() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        serde_json::json!({"filter": {"fuels": ["dual_fuel", "electricity"]}}),
    );
    let (impressions, summary) = simulate(&s, &dir.path().join("whole"), 2);
    let count = 2_345u64.div_ceil(500);
    let mut parts = vec![Vec::new(); count as usize];
    let mut summaries: Vec<Option<Summary>> = vec![None; count as usize];
    for i in (0..count).rev() {
        let csv = dir.path().join(format!("c{i}.csv"));
        let json = dir.path().join(format!("c{i}.json"));
        ok(tariffsim(&[
            "chunk",
            s.to_str().unwrap(),
            "--index",
            &i.to_string(),
            "--impressions",
            csv.to_str().unwrap(),
            "--summary",
            json.to_str().unwrap(),
        ]));
        parts[i as usize] = std::fs::read(&csv).unwrap();
        summaries[i as usize] =
            Some(Summary::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap());
    }
    assert_eq!(parts.concat(), impressions);
    // Merge in a scrambled order: the summary does not depend on it.
    let mut merged = summaries[3].clone().unwrap();
    for i in [1, 4, 0, 2] {
        merged.merge(summaries[i].as_ref().unwrap()).unwrap();
    }
    assert_eq!(merged.report_json(), summary);
    // Only chunk 0 has the header; chunk 1 on stdout equals its file.
    let stdout = ok(tariffsim(&["chunk", s.to_str().unwrap(), "--index", "1"])).stdout;
    assert_eq!(stdout, parts[1]);
    assert!(!parts[1].starts_with(b"profile,"));
}

#[test]
fn impressions_are_consistent_with_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), serde_json::json!({"page_size": 2}));
    let (impressions, summary) = simulate(&s, &dir.path().join("o"), 2);
    let summary = Summary::from_json(&summary).unwrap();
    let mut reader = csv::Reader::from_reader(impressions.as_slice());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (tariff, rank, cost, current, saving) = (
        col("tariff_id"),
        col("rank"),
        col("annual_cost_gbp"),
        col("current_cost_gbp"),
        col("saving_gbp"),
    );
    let mut n = 0u64;
    let mut hist: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for r in reader.records() {
        let r = r.unwrap();
        n += 1;
        let rank: usize = r[rank].parse().unwrap();
        assert!((1..=2).contains(&rank));
        hist.entry(r[tariff].to_string())
            .or_insert_with(|| vec![0, 0])[rank - 1] += 1;
        if &r[saving] != "NA" {
            let p = |s: &str| (s.parse::<f64>().unwrap() * 100.0).round() as i64;
            assert_eq!(
                p(&r[current]) - p(&r[cost]),
                p(&r[saving]),
                "saving = current - cost, as printed"
            );
        }
    }
    assert_eq!(n, summary.impressions);
    for t in &summary.tariffs {
        assert_eq!(
            hist.get(&t.id).cloned().unwrap_or(vec![0, 0]),
            t.rank_histogram,
            "{}",
            t.id
        );
    }
}

fn fails(args: &[&str], expect: &[&str]) {
    let out = tariffsim(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure for {args:?}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in expect {
        assert!(stderr.contains(e), "stderr lacks {e:?}: {stderr}");
    }
}

#[test]
fn bad_input_exits_non_zero_naming_file_line_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = fixtures().join("bad");
    let b = |name: &str| bad.join(name);
    let s = spec(
        dir.path(),
        serde_json::json!({"market": b("market_malformed.json")}),
    );
    fails(
        &["simulate", s.to_str().unwrap()],
        &["market_malformed.json", "InvalidMarketJson", "line 4"],
    );
    let s = spec(
        dir.path(),
        serde_json::json!({"visits": b("visits_malformed.csv")}),
    );
    fails(
        &["simulate", s.to_str().unwrap()],
        &["visits_malformed.csv", "InvalidVisitsCsv", "line 3"],
    );
    let s = spec(
        dir.path(),
        serde_json::json!({"visits": b("visits_unknown_region.csv")}),
    );
    fails(
        &["simulate", s.to_str().unwrap()],
        &[
            "visits_unknown_region.csv",
            "UnknownRegion",
            "line 3",
            "field region",
            "\"Z\"",
        ],
    );
    let s = spec(
        dir.path(),
        serde_json::json!({"visits": b("visits_negative_kwh.csv")}),
    );
    fails(
        &["simulate", s.to_str().unwrap()],
        &[
            "visits_negative_kwh.csv",
            "line 3",
            "field elec_kwh",
            "negative",
        ],
    );
    let s = spec(
        dir.path(),
        serde_json::json!({"filter": {"regions": ["P"]}}),
    );
    fails(
        &["simulate", s.to_str().unwrap()],
        &["EmptyPopulation", "widen the filter"],
    );
    let s = spec(dir.path(), serde_json::json!({"sample_size": 0}));
    fails(
        &["simulate", s.to_str().unwrap()],
        &["InvalidSampleSize", "sample_size"],
    );
    let s = spec(
        dir.path(),
        serde_json::json!({"scenario": b("scenario_unknown_tariff.json")}),
    );
    fails(
        &["simulate", s.to_str().unwrap()],
        &["UnknownTariff", "alpha-svtt", "changes[0]"],
    );
    let s = spec(dir.path(), serde_json::json!({"sample_size": "many"}));
    fails(
        &["simulate", s.to_str().unwrap()],
        &["InvalidRunSpecJson", "sample_size"],
    );
    fails(
        &["simulate", "/nonexistent/spec.json"],
        &["cannot read /nonexistent/spec.json"],
    );
    let s = spec(dir.path(), serde_json::json!({}));
    fails(
        &["chunk", s.to_str().unwrap(), "--index", "99"],
        &["NoSuchChunk", "5 chunks"],
    );
    let m = fixtures().join("mini_market.json");
    fails(
        &[
            "price",
            "--market",
            m.to_str().unwrap(),
            "--region",
            "C",
            "--night-share",
            "2",
        ],
        &["--night-share"],
    );
    fails(
        &["price", "--market", m.to_str().unwrap(), "--region", "Q"],
        &["[UnknownRegion] --region", "GSP group letter"],
    );
}

#[test]
fn price_ranks_cheapest_first_with_savings() {
    let m = fixtures().join("mini_market.json");
    let out = ok(tariffsim(&[
        "price",
        "--market",
        m.to_str().unwrap(),
        "--region",
        "C",
        "--current-tariff",
        "alpha-svt",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let table = &v["results"][0];
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        3,
        "closed and not-on-sale tariffs are not listed, nor the visitor's own (the baseline)"
    );
    assert_eq!(table["current_tariff_id"], "alpha-svt");
    let costs: Vec<f64> = rows
        .iter()
        .map(|r| r["annual_cost_gbp"].as_f64().unwrap())
        .collect();
    assert!(costs.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(rows[0]["tariff_id"], "alpha-fix12");
    // Listed with the current tariff, alpha-svt and beta-svt tie: the seed orders them, and the
    // same seed always gives the same order; over seeds each comes first.
    let third = |seed: &str| {
        let out = ok(tariffsim(&[
            "price",
            "--market",
            m.to_str().unwrap(),
            "--region",
            "C",
            "--current-tariff",
            "alpha-svt",
            "--show-current-tariff",
            "--seed",
            seed,
            "--json",
        ]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rows = v["results"][0]["rows"].as_array().unwrap().clone();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[2]["annual_cost_gbp"], rows[3]["annual_cost_gbp"]);
        rows[2]["tariff_id"].as_str().unwrap().to_string()
    };
    let firsts: std::collections::BTreeSet<String> =
        (0..16).map(|s| third(&s.to_string())).collect();
    assert_eq!(
        firsts.into_iter().collect::<Vec<_>>(),
        ["alpha-svt", "beta-svt"]
    );
    assert_eq!(third("5"), third("5"));
    let table = ok(tariffsim(&[
        "price",
        "--market",
        m.to_str().unwrap(),
        "--region",
        "C",
        "--fixed-only",
    ]))
    .stdout;
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains("Alpha Fix 12") && !table.contains("Alpha Standard Variable"),
        "{table}"
    );
}
