//! Properties that must hold for every input: the parsers never panic on any bytes, scenario
//! arithmetic never wraps, and the seeded tie order is a deterministic permutation.

use proptest::prelude::*;
use tariffsim::{Market, MarketIndex, PageRules, RunSpec, Scenario, parse_visits_csv};

const MARKET: &str = include_str!("fixtures/mini_market.json");
const VISITS: &str = include_str!("fixtures/mini_visits.csv");

fn config() -> ProptestConfig {
    // Bounded in time: proptest's default of 256 cases each (PROPTEST_CASES overrides it).
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A document with a few bytes changed, spliced or cut: close enough to valid to reach deep.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    prop::collection::vec((0..len, any::<u8>(), 0usize..3), 1..6).prop_map(move |edits| {
        let mut b = base.as_bytes().to_vec();
        for (at, byte, how) in edits {
            let at = at.min(b.len().saturating_sub(1));
            match how {
                0 => b[at] = byte,
                1 => {
                    b.insert(at, byte);
                }
                _ => {
                    b.truncate(at.max(1));
                }
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn visits_csv_never_panics(bytes in mutated(VISITS)) {
        let _ = parse_visits_csv(&bytes);
    }

    #[test]
    fn arbitrary_bytes_are_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_visits_csv(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = Market::from_json(&text);
        let _ = Scenario::from_json(&text);
        let _ = RunSpec::from_json(&text);
    }

    #[test]
    fn market_json_never_panics(bytes in mutated(MARKET)) {
        if let Ok(m) = Market::from_json(&String::from_utf8_lossy(&bytes)) {
            // Whatever parses, compiles and prices.
            let ix = MarketIndex::new(m);
            let visits = parse_visits_csv(VISITS.as_bytes()).unwrap();
            for v in &visits {
                let _ = ix.results(v, PageRules::default(), 0, 1);
            }
        }
    }

    #[test]
    fn stacked_price_moves_never_wrap(percents in prop::collection::vec(-99.9f64..=1000.0, 1..16)) {
        let market = Market::from_json(MARKET).unwrap();
        let changes: Vec<serde_json::Value> = percents
            .iter()
            .map(|p| serde_json::json!({"op": "move_prices", "percent": p}))
            .collect();
        let scenario = Scenario::from_json(&serde_json::json!({"changes": changes}).to_string()).unwrap();
        match market.apply(&scenario) {
            Err(e) => prop_assert_eq!(e.code(), "InvalidScenarioChange"),
            Ok(h) => {
                let ix = MarketIndex::new(h);
                for v in &parse_visits_csv(VISITS.as_bytes()).unwrap() {
                    for r in ix.results(v, PageRules::default(), 0, 0).rows {
                        prop_assert!(r.annual_cost_gbp >= 0.0, "{} costs {}", r.tariff_id, r.annual_cost_gbp);
                    }
                }
            }
        }
    }

    #[test]
    fn the_tie_order_is_a_deterministic_permutation(seed in any::<u64>(), profile in any::<u64>()) {
        let ix = MarketIndex::new(Market::from_json(MARKET).unwrap());
        let visits = parse_visits_csv(VISITS.as_bytes()).unwrap();
        let rules = PageRules { show_current_tariff: true, whole_of_market: true };
        for v in &visits {
            let key = tariffsim::replay::tie_key(seed, profile);
            let a = ix.results(v, rules, seed, key);
            let b = ix.results(v, rules, seed, key);
            prop_assert_eq!(&a, &b);
            let by_zero = ix.results(v, rules, 0, tariffsim::replay::tie_key(0, 0));
            let mut ids_a: Vec<_> = a.rows.iter().map(|r| r.tariff_id.clone()).collect();
            let mut ids_b: Vec<_> = by_zero.rows.iter().map(|r| r.tariff_id.clone()).collect();
            ids_a.sort();
            ids_b.sort();
            prop_assert_eq!(ids_a, ids_b);
            prop_assert!(a.rows.windows(2).all(|w| w[0].annual_cost_gbp <= w[1].annual_cost_gbp));
        }
    }
}

/// The case proptest found: prices cut by about 90%, three times over, leave less than the
/// £10 dual-fuel discount of a tariff; its annual cost is 0, not negative.
#[test]
fn a_discount_larger_than_the_bill_cancels_it_and_no_more() {
    let market = Market::from_json(MARKET).unwrap();
    let scenario = Scenario::from_json(
        r#"{"changes": [{"op": "move_prices", "percent": -89.96164723616431},
                        {"op": "move_prices", "percent": -83.46576086420433},
                        {"op": "move_prices", "percent": -86.09455932000614}]}"#,
    )
    .unwrap();
    let ix = MarketIndex::new(market.apply(&scenario).unwrap());
    let mut zero = 0;
    for v in &parse_visits_csv(VISITS.as_bytes()).unwrap() {
        for r in ix.results(v, PageRules::default(), 0, 0).rows {
            assert!(
                r.annual_cost_gbp >= 0.0,
                "{} costs {}",
                r.tariff_id,
                r.annual_cost_gbp
            );
            zero += usize::from(r.annual_cost_gbp == 0.0);
        }
    }
    assert!(zero > 0, "some discount exceeds its bill here");
}
