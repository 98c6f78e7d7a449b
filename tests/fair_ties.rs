//! Ties are broken fairly: byte-identical tariffs that differ only in id share impressions equally
//! (within sampling noise), whatever their ids, on the shipped sample market and visits.

use tariffsim::{Market, RunSpec, Scenario, Simulation, parse_visits_csv};

#[test]
fn identical_tariffs_under_different_ids_share_impressions() {
    let market = Market::from_json(include_str!("../data/sample/market.json")).unwrap();
    let visits = parse_visits_csv(include_bytes!("../data/sample/visits.csv")).unwrap();
    let sample: serde_json::Value =
        serde_json::from_str(include_str!("../data/sample/scenario.json")).unwrap();
    let newco = sample["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["op"] == "add_tariff")
        .unwrap()["tariff"]
        .clone();
    // Three copies of the sample's hypothetical tariff, ids at both ends of the alphabet.
    let ids = ["aaa-clone", "mmm-clone", "zzz-clone"];
    let changes: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            let mut t = newco.clone();
            t["id"] = serde_json::json!(id);
            serde_json::json!({"op": "add_tariff", "tariff": t})
        })
        .collect();
    let scenario =
        Scenario::from_json(&serde_json::json!({"changes": changes}).to_string()).unwrap();
    let spec = RunSpec::from_json(
        r#"{"market": "m", "visits": "v", "sample_size": 60000, "chunk_size": 20000, "seed": 9, "page_size": 10}"#,
    )
    .unwrap();
    let sim = Simulation::new(&market, Some(&scenario), &visits, &spec).unwrap();
    let mut total = sim.empty_summary();
    for i in 0..sim.chunk_count() {
        total.merge(&sim.chunk(i).unwrap().summary).unwrap();
    }
    let got: Vec<u64> = ids
        .iter()
        .map(|id| {
            total
                .tariffs
                .iter()
                .find(|t| t.id == *id)
                .unwrap()
                .impressions
        })
        .collect();
    let (lo, hi) = (*got.iter().min().unwrap(), *got.iter().max().unwrap());
    assert!(lo > 1_000, "the clones are seen: {got:?}");
    assert!(
        (hi - lo) as f64 <= 0.10 * hi as f64,
        "identical tariffs get impressions within 10% of each other: {got:?}"
    );
    // Each is on every table the others are on, so they always tie: their rank-1 counts are equal
    // in expectation too.
    let eligible: Vec<u64> = ids
        .iter()
        .map(|id| total.tariffs.iter().find(|t| t.id == *id).unwrap().eligible)
        .collect();
    assert!(eligible.windows(2).all(|w| w[0] == w[1]), "{eligible:?}");
}

/// The order of the visits file never decides a run: the same visits in reverse order (and in
/// another order still) give byte-identical impressions and summaries.
#[test]
fn the_visits_file_order_does_not_decide_the_sample() {
    let market = Market::from_json(include_str!("../data/sample/market.json")).unwrap();
    let scenario = Scenario::from_json(include_str!("../data/sample/scenario.json")).unwrap();
    let visits = parse_visits_csv(include_bytes!("../data/sample/visits.csv")).unwrap();
    let spec = RunSpec::from_json(
        r#"{"market": "m", "visits": "v", "sample_size": 3000, "chunk_size": 1000, "seed": 4, "page_size": 10}"#,
    )
    .unwrap();
    let run = |visits: &[tariffsim::Visit]| {
        let sim = Simulation::new(&market, Some(&scenario), visits, &spec).unwrap();
        (0..sim.chunk_count())
            .map(|i| {
                let c = sim.chunk(i).unwrap();
                (c.impressions_csv, c.summary.to_json())
            })
            .collect::<Vec<_>>()
    };
    let expected = run(&visits);
    let mut reversed = visits.clone();
    reversed.reverse();
    assert!(run(&reversed) == expected, "reversed");
    let mut interleaved: Vec<_> = visits.iter().step_by(2).cloned().collect();
    interleaved.extend(visits.iter().skip(1).step_by(2).cloned());
    assert!(run(&interleaved) == expected, "odd rows first");
}
