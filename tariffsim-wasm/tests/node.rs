//! The binding in headless Node.js (`wasm-pack test --node tariffsim-wasm`): DTO conversion,
//! typed errors, the cache, and chunks equal to the core's own.
#![cfg(target_arch = "wasm32")]

use tariffsim::{Market, RunSpec, Simulation, parse_visits_csv};
use tariffsim_wasm::Engine;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

const MARKET: &str = include_str!("../../tests/fixtures/mini_market.json");
const VISITS: &[u8] = include_bytes!("../../tests/fixtures/mini_visits.csv");
const SCENARIO: &str = include_str!("../../tests/fixtures/mini_scenario.json");
const SPEC: &str = include_str!("../../tests/fixtures/mini_run.json");

fn parse(json: &str) -> JsValue {
    js_sys::JSON::parse(json).expect("test JSON")
}

fn get(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &JsValue::from_str(key)).expect("a field")
}

fn at(v: &JsValue, i: u32) -> JsValue {
    js_sys::Reflect::get_u32(v, i).expect("an element")
}

fn num(v: &JsValue, key: &str) -> f64 {
    get(v, key)
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number"))
}

/// The `name` of a thrown JS error, asserting it is a real `Error`.
fn error_name(e: JsValue) -> String {
    let e: js_sys::Error = e.dyn_into().expect("a real JS Error, not a string");
    String::from(e.name())
}

fn error_message(e: JsValue) -> String {
    let e: js_sys::Error = e.dyn_into().expect("a real JS Error");
    String::from(e.message())
}

fn profiles(json: &str) -> JsValue {
    parse(json)
}

#[wasm_bindgen_test]
fn prices_a_profile_with_ranks_costs_and_savings() {
    let mut engine = Engine::new();
    let key = engine.load_market_bytes(MARKET.as_bytes()).unwrap();
    let out = engine
        .price(
            &key,
            None,
            None,
            profiles(r#"[{"visit_id": "v1", "region": "C", "current_supplier": "Alpha Energy"}]"#),
            2,
            0.0,
            false,
            true,
        )
        .unwrap();
    assert_eq!(get(&get(&out, "market"), "key").as_string().unwrap(), key);
    let table = at(&get(&out, "results"), 0);
    assert_eq!(get(&table, "visit_id").as_string().unwrap(), "v1");
    let rows = get(&table, "rows");
    let n = js_sys::Array::from(&rows).length();
    assert!((1..=2).contains(&n));
    assert!(num(&table, "eligible") >= f64::from(n));
    let first = at(&rows, 0);
    assert_eq!(num(&first, "rank"), 1.0);
    let current = num(&table, "current_cost_gbp");
    let cost = num(&first, "annual_cost_gbp");
    let saving = num(&first, "saving_gbp");
    assert_eq!(
        (current * 100.0).round() - (cost * 100.0).round(),
        (saving * 100.0).round()
    );
}

#[wasm_bindgen_test]
fn profile_defaults_and_night_share_as_a_fraction() {
    let mut engine = Engine::new();
    let key = engine.load_market_bytes(MARKET.as_bytes()).unwrap();
    let price = |engine: &mut Engine, p: &str| {
        let out = engine
            .price(&key, None, None, profiles(p), 1000, 0.0, false, true)
            .unwrap();
        at(&get(&out, "results"), 0)
    };
    // Omitted consumption is Ofgem's typical in force at the market's date (July 2026: 2,500 and
    // 9,500 kWh): the same table as giving it.
    let implicit = price(&mut engine, r#"[{"region": "A"}]"#);
    let explicit = price(
        &mut engine,
        r#"[{"region": "A", "fuel": "dual_fuel", "meter": "single_rate", "payment_method": "direct_debit", "elec_kwh": 2500, "gas_kwh": 9500}]"#,
    );
    assert_eq!(
        js_sys::JSON::stringify(&get(&implicit, "rows")).unwrap(),
        js_sys::JSON::stringify(&get(&explicit, "rows")).unwrap()
    );
    // Economy 7 with more night use is cheaper.
    let mut e7 = |share: &str| {
        let p = format!(
            r#"[{{"region": "A", "fuel": "electricity", "meter": "economy7", "elec_kwh": 4000, "e7_night_share": {share}}}]"#
        );
        num(
            &at(&get(&price(&mut engine, &p), "rows"), 0),
            "annual_cost_gbp",
        )
    };
    assert!(e7("0.8") < e7("0.2"));
}

#[wasm_bindgen_test]
fn errors_are_js_errors_named_by_code() {
    let mut engine = Engine::new();
    let key = engine.load_market_bytes(MARKET.as_bytes()).unwrap();
    let mut fails = |p: &str| {
        engine
            .price(&key, None, None, profiles(p), 10, 0.0, false, true)
            .expect_err("an error")
    };
    let e = fails(r#"[{"region": "Q"}]"#);
    assert_eq!(error_name(e.clone()), "UnknownRegion");
    assert!(error_message(e).starts_with("profiles[0].region: unknown region"));
    assert_eq!(
        error_name(fails(r#"[{"region": "C", "fuel": "coal"}]"#)),
        "InvalidVisit"
    );
    assert_eq!(
        error_name(fails(r#"[{"region": "C", "elec_kwh": 2e6}]"#)),
        "InvalidVisit"
    );
    assert_eq!(
        error_name(fails(r#"[{"region": "C", "e7_night_share": 42}]"#)),
        "InvalidVisit"
    );
    assert_eq!(
        error_name(fails(r#"[{"region": "C", "timestamp": "yesterday"}]"#)),
        "InvalidVisit"
    );
    assert_eq!(
        error_name(fails(r#"[{"region": "C", "regoin": "C"}]"#)),
        "InvalidRequest"
    );
    assert_eq!(
        error_name(fails(
            r#"[{"region": "C", "filters": {"cheap_only": true}}]"#
        )),
        "InvalidRequest"
    );
    assert_eq!(error_name(fails(r#"[{"fuel": "gas"}]"#)), "InvalidRequest");
    assert_eq!(error_name(fails(r#"{"region": "C"}"#)), "InvalidRequest");
    assert_eq!(
        error_name(engine.load_market_bytes(b"{\"as_of\": 1}").unwrap_err()),
        "InvalidMarketJson"
    );
    assert_eq!(
        error_name(
            engine
                .price(
                    "m-0",
                    None,
                    None,
                    profiles(r#"[{"region": "C"}]"#),
                    10,
                    0.0,
                    false,
                    true
                )
                .unwrap_err()
        ),
        "MarketNotLoaded"
    );
    assert_eq!(
        error_name(
            engine
                .price(
                    &key,
                    Some(b"{\"changes\": 3}".as_slice().into()),
                    None,
                    profiles(r#"[{"region": "C"}]"#),
                    10,
                    0.0,
                    false,
                    true
                )
                .unwrap_err()
        ),
        "InvalidScenarioJson"
    );
    assert_eq!(
        error_name(
            engine
                .price(
                    &key,
                    None,
                    Some(b"[{\"id\": 1}]".as_slice().into()),
                    profiles(r#"[{"region": "C"}]"#),
                    10,
                    0.0,
                    false,
                    true
                )
                .unwrap_err()
        ),
        "InvalidTariff"
    );
    assert_eq!(
        error_name(engine.load_visits(b"visit_id\nv1\n").unwrap_err()),
        "InvalidVisitsCsv"
    );
    assert_eq!(
        error_name(engine.run_spec("{}").unwrap_err()),
        "InvalidRunSpecJson"
    );
}

#[wasm_bindgen_test]
fn the_cache_parses_each_input_once() {
    let mut engine = Engine::new();
    let a = engine.load_market_bytes(MARKET.as_bytes()).unwrap();
    let b = engine.load_market_bytes(MARKET.as_bytes()).unwrap();
    assert_eq!(a, b);
    let p = || profiles(r#"[{"region": "C"}]"#);
    for _ in 0..3 {
        engine
            .price(&a, None, None, p(), 10, 0.0, false, true)
            .unwrap();
        engine
            .price(
                &a,
                Some(SCENARIO.as_bytes().into()),
                None,
                p(),
                10,
                0.0,
                false,
                true,
            )
            .unwrap();
    }
    let stats = engine.stats().unwrap();
    assert_eq!(num(&stats, "markets_parsed"), 1.0);
    assert_eq!(num(&stats, "indices_built"), 2.0);
    // A different market text is a different key.
    let c = engine
        .load_market_bytes(format!("{MARKET} ").as_bytes())
        .unwrap();
    assert_ne!(a, c);
    assert_eq!(num(&engine.stats().unwrap(), "markets_parsed"), 2.0);
}

#[wasm_bindgen_test]
fn chunks_equal_the_cores_own() {
    let mut engine = Engine::new();
    let m = engine.load_market_bytes(MARKET.as_bytes()).unwrap();
    let v = engine.load_visits(VISITS).unwrap();
    let run = engine
        .prepare_run(SPEC, &m, Some(SCENARIO.to_string()), &v)
        .unwrap();
    let key = get(&run, "key").as_string().unwrap();
    let spec = RunSpec::from_json(SPEC).unwrap();
    let scenario = tariffsim::Scenario::from_json(SCENARIO).unwrap();
    let sim = Simulation::new(
        &Market::from_json(MARKET).unwrap(),
        Some(&scenario),
        &parse_visits_csv(VISITS).unwrap(),
        &spec,
    )
    .unwrap();
    assert_eq!(num(&run, "chunk_count"), sim.chunk_count() as f64);
    for i in 0..sim.chunk_count() {
        let out = engine.chunk(&key, i as f64).unwrap();
        let expected = sim.chunk(i).unwrap();
        let csv = js_sys::Uint8Array::new(&get(&out, "impressions_csv")).to_vec();
        assert_eq!(csv, expected.impressions_csv);
        let summary = get(&out, "summary_json").as_string().unwrap();
        assert_eq!(summary, expected.summary.to_json());
        assert_eq!(engine.chunk_summary(&key, i as f64).unwrap(), summary);
    }
    let e = engine.chunk(&key, sim.chunk_count() as f64).unwrap_err();
    assert_eq!(error_name(e), "NoSuchChunk");
    assert_eq!(
        error_name(engine.chunk(&key, 0.5).unwrap_err()),
        "InvalidRequest"
    );
    assert_eq!(
        error_name(engine.chunk("r-0", 0.0).unwrap_err()),
        "RunNotPrepared"
    );
}

#[wasm_bindgen_test]
fn run_spec_reports_references_and_sizes() {
    let engine = Engine::new();
    let refs = engine.run_spec(SPEC).unwrap();
    assert_eq!(
        get(&refs, "market").as_string().unwrap(),
        "mini_market.json"
    );
    assert_eq!(
        get(&refs, "scenario").as_string().unwrap(),
        "mini_scenario.json"
    );
    assert_eq!(num(&refs, "chunk_count"), 4.0);
    let none = engine
        .run_spec(r#"{"market": "m", "visits": "v", "sample_size": 3}"#)
        .unwrap();
    assert!(get(&none, "scenario").is_null());
    assert_eq!(
        error_name(
            engine
                .run_spec(r#"{"market": "m", "visits": "v", "sample_size": 0}"#)
                .unwrap_err()
        ),
        "InvalidSampleSize"
    );
}

#[wasm_bindgen_test]
fn markets_load_from_bytes_or_text_under_one_key() {
    let mut engine = Engine::new();
    let from_text = engine.load_market(JsValue::from_str(MARKET), None).unwrap();
    let from_bytes = engine
        .load_market(js_sys::Uint8Array::from(MARKET.as_bytes()).into(), None)
        .unwrap();
    assert_eq!(from_text, from_bytes);
    assert_eq!(num(&engine.stats().unwrap(), "markets_parsed"), 1.0);
    assert_eq!(
        error_name(
            engine
                .load_market(JsValue::from_f64(1.0), None)
                .unwrap_err()
        ),
        "InvalidRequest"
    );
    assert_eq!(
        error_name(engine.load_market_bytes(&[0xff, 0xfe]).unwrap_err()),
        "InvalidEncoding"
    );
}

#[wasm_bindgen_test]
fn price_json_equals_price_and_names_the_field_at_fault() {
    let mut engine = Engine::new();
    let key = engine.load_market_bytes(MARKET.as_bytes()).unwrap();
    let p = r#"[{"region": "C", "current_supplier": "Alpha Energy"}, {"region": "A", "fuel": "electricity", "meter": "economy7", "e7_night_share": 0.3}]"#;
    let hypothetical = || -> Option<Box<[u8]>> {
        let tariffs: serde_json::Value = serde_json::from_str(SCENARIO).unwrap();
        let added: Vec<_> = tariffs["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["op"] == "add_tariff")
            .map(|c| c["tariff"].clone())
            .collect();
        Some(serde_json::to_vec(&added).unwrap().into())
    };
    let objects = engine
        .price(&key, None, hypothetical(), profiles(p), 3, 0.0, false, true)
        .unwrap();
    let text = engine
        .price_json(
            &key,
            None,
            hypothetical(),
            p.as_bytes(),
            3,
            0.0,
            false,
            true,
        )
        .unwrap();
    // The same values (serde_json writes a whole f64 as `50.0`, JS as `50`).
    assert_eq!(
        js_sys::JSON::stringify(&objects).unwrap(),
        js_sys::JSON::stringify(&parse(&text)).unwrap()
    );
    let e = engine
        .price_json(
            &key,
            None,
            None,
            br#"[{"region": "C"}, {"region": "C", "elec_kwh": "lots"}]"#,
            3,
            0.0,
            false,
            true,
        )
        .unwrap_err();
    assert_eq!(error_name(e.clone()), "InvalidRequest");
    assert!(error_message(e).starts_with("profiles[1].elec_kwh: invalid type: string \"lots\""));
    let e = engine
        .price_json(
            &key,
            None,
            None,
            br#"[{"region": "C", "colour": "red"}]"#,
            3,
            0.0,
            false,
            true,
        )
        .unwrap_err();
    let message = error_message(e);
    assert!(
        message.starts_with("profiles[0]") && message.contains("unknown field `colour`"),
        "{message}"
    );
    let e = engine
        .price_json(
            &key,
            None,
            None,
            br#"[{"region": "Z"}]"#,
            3,
            0.0,
            false,
            true,
        )
        .unwrap_err();
    assert_eq!(error_name(e), "UnknownRegion");
}

#[wasm_bindgen_test]
fn a_snapshot_loads_the_same_market_and_only_for_its_own_json() {
    let mut maker = Engine::new();
    let key = maker.load_market_bytes(MARKET.as_bytes()).unwrap();
    let snap = maker.market_snapshot(&key).unwrap();
    let p = r#"[{"region": "C", "current_tariff": "beta-fix-old"}, {"region": "A", "fuel": "electricity", "meter": "economy7"}]"#;
    let expected = maker
        .price_json(
            &key,
            Some(SCENARIO.as_bytes().into()),
            None,
            p.as_bytes(),
            5,
            0.0,
            false,
            true,
        )
        .unwrap();

    let mut cold = Engine::new();
    let from_snapshot = cold
        .load_market(
            js_sys::Uint8Array::from(MARKET.as_bytes()).into(),
            Some(snap.clone().into()),
        )
        .unwrap();
    assert_eq!(from_snapshot, key);
    let stats = cold.stats().unwrap();
    assert_eq!(num(&stats, "markets_from_snapshot"), 1.0);
    assert_eq!(num(&stats, "markets_parsed"), 0.0);
    let got = cold
        .price_json(
            &key,
            Some(SCENARIO.as_bytes().into()),
            None,
            p.as_bytes(),
            5,
            0.0,
            false,
            true,
        )
        .unwrap();
    assert_eq!(got, expected);

    // A snapshot of other JSON is ignored: the JSON is parsed.
    let mut other = Engine::new();
    let edited = MARKET.replace("hand-made test fixture", "edited");
    let edited_key = other
        .load_market(
            js_sys::Uint8Array::from(edited.as_bytes()).into(),
            Some(snap.into()),
        )
        .unwrap();
    assert_ne!(edited_key, key);
    assert_eq!(num(&other.stats().unwrap(), "markets_parsed"), 1.0);
    assert_eq!(num(&other.stats().unwrap(), "markets_from_snapshot"), 0.0);
    // So is garbage.
    let mut garbage = Engine::new();
    garbage
        .load_market(
            JsValue::from_str(MARKET),
            Some(b"TSIMMKT".as_slice().into()),
        )
        .unwrap();
    assert_eq!(num(&garbage.stats().unwrap(), "markets_parsed"), 1.0);
}
