//! The JSON Schemas in `schemas/` describe what the serde models read: every shipped document
//! passes both the schema and the parser, documents the schema refuses the parser refuses too, and
//! documents using every optional field pass both.

use serde_json::{Value, json};
use std::path::PathBuf;
use tariffsim::{Market, RunSpec, Scenario};

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn text(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn load(rel: &str) -> Value {
    serde_json::from_str(&text(rel)).unwrap_or_else(|e| panic!("parsing {rel}: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Market,
    Scenario,
    RunSpec,
}

impl Kind {
    fn schema_file(self) -> &'static str {
        match self {
            Kind::Market => "schemas/market.schema.json",
            Kind::Scenario => "schemas/scenario.schema.json",
            Kind::RunSpec => "schemas/run-spec.schema.json",
        }
    }

    fn validator(self) -> jsonschema::Validator {
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&load(self.schema_file()))
            .unwrap_or_else(|e| panic!("{} does not compile: {e}", self.schema_file()))
    }

    /// What the schema says about a document: `Err` lists the violations.
    fn check_schema(self, doc: &Value) -> Result<(), String> {
        let v = self.validator();
        let errors: Vec<String> = v
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// What the parser says about the same document.
    fn check_parser(self, doc: &Value) -> Result<(), String> {
        let json = doc.to_string();
        match self {
            Kind::Market => Market::from_json(&json)
                .map(drop)
                .map_err(|e| e.to_string()),
            Kind::Scenario => Scenario::from_json(&json)
                .map(drop)
                .map_err(|e| e.to_string()),
            Kind::RunSpec => RunSpec::from_json(&json)
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }
}

#[test]
fn schemas_are_draft_2020_12_documents() {
    for kind in [Kind::Market, Kind::Scenario, Kind::RunSpec] {
        let schema = load(kind.schema_file());
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{kind:?}"
        );
        jsonschema::meta::validate(&schema)
            .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", kind.schema_file()));
        assert_eq!(schema["additionalProperties"], false, "{kind:?}");
    }
}

#[test]
fn shared_definitions_are_identical() {
    // Each schema is self-contained; the definitions they share must not drift apart.
    let market = load(Kind::Market.schema_file());
    let scenario = load(Kind::Scenario.schema_file());
    let run = load(Kind::RunSpec.schema_file());
    let mut shared = 0;
    for other in [&scenario, &run] {
        for (name, def) in other["$defs"].as_object().unwrap() {
            for base in [&market, &scenario] {
                if let Some(b) = base["$defs"].get(name) {
                    assert_eq!(b, def, "$defs/{name} differs between schemas");
                    shared += 1;
                }
            }
        }
    }
    assert!(shared >= 10, "{shared}");
}

#[test]
fn shipped_documents_pass_schema_and_parser() {
    let docs = [
        (Kind::Market, "tests/fixtures/mini_market.json"),
        (Kind::Market, "data/sample/market.json"),
        (Kind::Scenario, "data/sample/scenario.json"),
        (Kind::RunSpec, "data/sample/run.json"),
    ];
    for (kind, rel) in docs {
        let doc = load(rel);
        kind.check_schema(&doc)
            .unwrap_or_else(|e| panic!("{rel} fails {}: {e}", kind.schema_file()));
        kind.check_parser(&doc)
            .unwrap_or_else(|e| panic!("{rel} does not parse: {e}"));
    }
}

#[test]
fn sample_scenario_fits_the_sample_market() {
    let market = Market::from_json(&text("data/sample/market.json")).unwrap();
    let scenario = Scenario::from_json(&text("data/sample/scenario.json")).unwrap();
    let hypothetical = market.apply(&scenario).unwrap();
    assert!(hypothetical.tariffs.iter().any(|t| t.hypothetical));
    let spec = RunSpec::from_json(&text("data/sample/run.json")).unwrap();
    assert_eq!(spec.market, "market.json");
    assert_eq!(spec.scenario.as_deref(), Some("scenario.json"));
    assert_eq!(spec.visits, "visits.csv");
}

/// A market using every field, every optional shape and a lower-case region.
fn full_market() -> Value {
    json!({
        "as_of": "2026-07-01",
        "source": null,
        "tariffs": [
            {
                "id": "x-svt", "supplier": "X", "name": "X Variable", "kind": "variable",
                "term_months": null, "end_date": null,
                "fuels": ["electricity", "gas", "dual_fuel"],
                "rates": [{
                    "region": "c", "payment_method": "prepayment",
                    "electricity": {"standing_p_per_day": 44.78, "unit_p_per_kwh": 25.52,
                                    "economy7": {"standing_p_per_day": 44.78, "day_p_per_kwh": 30.3, "night_p_per_kwh": 15.31}},
                    "gas": {"standing_p_per_day": 29.52, "unit_p_per_kwh": 7.24}
                }]
            },
            {
                "id": "x-fix", "supplier": "X", "name": "X Fixed", "kind": "fixed",
                "end_date": "2027-07-01",
                "exit_fees_gbp": {"electricity": 25},
                "green": true, "switchable": false, "on_sale": false, "hypothetical": true,
                "fuels": ["electricity"], "dual_fuel_discount_gbp": 0,
                "rates": [{"region": "P", "payment_method": "standard_credit",
                           "electricity": {"standing_p_per_day": 60, "unit_p_per_kwh": 27, "economy7": null},
                           "gas": null}]
            },
            {
                "id": "x-gas", "supplier": "X", "name": "X Gas", "kind": "fixed", "term_months": 24,
                "fuels": ["gas"], "rates": []
            }
        ]
    })
}

#[test]
fn documents_with_every_optional_field_pass_both() {
    let scenario = json!({
        "name": "all ops",
        "description": null,
        "changes": [
            {"op": "add_tariff", "tariff": full_market()["tariffs"][1].clone()},
            {"op": "remove_tariff", "id": "x-svt"},
            {"op": "remove_supplier", "supplier": "X"},
            {"op": "move_prices", "percent": -2.5},
            {"op": "move_prices", "percent": 1000, "select": {
                "tariffs": ["x-svt"], "suppliers": null, "kind": "variable",
                "regions": ["C", "p"], "payment_methods": ["direct_debit"]}},
            {"op": "variable_to_cap", "cap": full_market()["tariffs"][0]["rates"].clone(), "regions": null},
            {"op": "variable_to_cap", "cap": full_market()["tariffs"][0]["rates"].clone(), "regions": ["C"]}
        ]
    });
    let run = json!({
        "market": "m.json", "scenario": null, "visits": "v.csv",
        "filter": {
            "regions": ["A", "c"], "fuels": ["dual_fuel"], "meters": ["economy7"],
            "payment_methods": ["prepayment"], "from": "2026-07-01", "to": null,
            "elec_kwh": {"min": 1000, "max": null}, "gas_kwh": {},
            "current_suppliers": ["X"], "current_tariffs": null,
            "fixed_only": true, "green_only": false, "no_exit_fees": null, "switchable_only": true
        },
        "sample_size": 1, "chunk_size": 5000, "seed": 9007199254740992u64, "page_size": 1000,
        "ctr_by_rank": [1.0, 0.5, 0], "show_current_tariff": true, "whole_of_market": false
    });
    let minimal_run = json!({"market": "m", "visits": "v", "sample_size": 5});
    let cases = [
        (Kind::Market, full_market()),
        (Kind::Scenario, scenario),
        (Kind::RunSpec, run),
        (Kind::RunSpec, minimal_run),
        (Kind::Scenario, json!({"changes": []})),
    ];
    for (kind, doc) in cases {
        kind.check_schema(&doc)
            .unwrap_or_else(|e| panic!("{kind:?} schema refuses {doc}: {e}"));
        kind.check_parser(&doc)
            .unwrap_or_else(|e| panic!("{kind:?} parser refuses {doc}: {e}"));
    }
}

fn with(mut doc: Value, edit: impl FnOnce(&mut Value)) -> Value {
    edit(&mut doc);
    doc
}

#[test]
fn invalid_documents_are_refused_by_both() {
    let market = full_market;
    let run = || json!({"market": "m", "visits": "v", "sample_size": 5});
    let cases: Vec<(&str, Kind, Value)> = vec![
        (
            "unknown top-level field",
            Kind::Market,
            with(market(), |m| m["currency"] = json!("GBP")),
        ),
        (
            "no tariffs",
            Kind::Market,
            with(market(), |m| {
                m.as_object_mut().unwrap().remove("tariffs");
            }),
        ),
        (
            "impossible date",
            Kind::Market,
            with(market(), |m| m["as_of"] = json!("2026-13-01")),
        ),
        (
            "unknown kind",
            Kind::Market,
            with(market(), |m| m["tariffs"][0]["kind"] = json!("capped")),
        ),
        (
            "unknown tariff field",
            Kind::Market,
            with(market(), |m| m["tariffs"][0]["colour"] = json!("green")),
        ),
        (
            "negative rate",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][0]["rates"][0]["gas"]["unit_p_per_kwh"] = json!(-1)
            }),
        ),
        (
            "rate as a string",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][0]["rates"][0]["gas"]["unit_p_per_kwh"] = json!("7.2")
            }),
        ),
        (
            "region I",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][0]["rates"][0]["region"] = json!("I")
            }),
        ),
        (
            "two-letter region",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][0]["rates"][0]["region"] = json!("AB")
            }),
        ),
        (
            "unknown payment method",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][0]["rates"][0]["payment_method"] = json!("cash")
            }),
        ),
        (
            "economy7 without night rate",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][0]["rates"][0]["electricity"]["economy7"]
                    .as_object_mut()
                    .unwrap()
                    .remove("night_p_per_kwh");
            }),
        ),
        (
            "exit fee for water",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][1]["exit_fees_gbp"]["water"] = json!(5)
            }),
        ),
        (
            "exit fees null",
            Kind::Market,
            with(market(), |m| m["tariffs"][1]["exit_fees_gbp"] = Value::Null),
        ),
        (
            "green null",
            Kind::Market,
            with(market(), |m| m["tariffs"][1]["green"] = Value::Null),
        ),
        (
            "no fuels",
            Kind::Market,
            with(market(), |m| m["tariffs"][0]["fuels"] = json!([])),
        ),
        (
            "blank id",
            Kind::Market,
            with(market(), |m| m["tariffs"][0]["id"] = json!("  ")),
        ),
        (
            "fix without term or end",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][1].as_object_mut().unwrap().remove("end_date");
            }),
        ),
        (
            "fix with null term and end",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][2]["term_months"] = Value::Null;
            }),
        ),
        (
            "dual fuel card without gas",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][0]["rates"][0]["gas"] = Value::Null
            }),
        ),
        (
            "electricity card missing",
            Kind::Market,
            with(market(), |m| {
                m["tariffs"][1]["rates"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("electricity");
            }),
        ),
        (
            "unknown op",
            Kind::Scenario,
            json!({"changes": [{"op": "rename_tariff", "id": "x"}]}),
        ),
        ("no changes", Kind::Scenario, json!({"name": "empty"})),
        (
            "extra field on a change",
            Kind::Scenario,
            json!({"changes": [{"op": "remove_tariff", "id": "x", "why": "old"}]}),
        ),
        (
            "add_tariff without tariff",
            Kind::Scenario,
            json!({"changes": [{"op": "add_tariff"}]}),
        ),
        (
            "move_prices select null",
            Kind::Scenario,
            json!({"changes": [{"op": "move_prices", "percent": 1, "select": null}]}),
        ),
        (
            "selection of unknown kind",
            Kind::Scenario,
            json!({"changes": [{"op": "move_prices", "percent": 1, "select": {"kind": "capped"}}]}),
        ),
        (
            "sample_size 0",
            Kind::RunSpec,
            with(run(), |r| r["sample_size"] = json!(0)),
        ),
        (
            "no visits",
            Kind::RunSpec,
            with(run(), |r| {
                r.as_object_mut().unwrap().remove("visits");
            }),
        ),
        (
            "negative seed",
            Kind::RunSpec,
            with(run(), |r| r["seed"] = json!(-1)),
        ),
        (
            "chunk_size 0",
            Kind::RunSpec,
            with(run(), |r| r["chunk_size"] = json!(0)),
        ),
        (
            "chunk_size too big",
            Kind::RunSpec,
            with(run(), |r| r["chunk_size"] = json!(1_000_001)),
        ),
        (
            "page_size 1001",
            Kind::RunSpec,
            with(run(), |r| r["page_size"] = json!(1001)),
        ),
        (
            "page_size 0",
            Kind::RunSpec,
            with(run(), |r| r["page_size"] = json!(0)),
        ),
        (
            "click-through above 1",
            Kind::RunSpec,
            with(run(), |r| r["ctr_by_rank"] = json!([0.3, 1.5])),
        ),
        (
            "filter null",
            Kind::RunSpec,
            with(run(), |r| r["filter"] = Value::Null),
        ),
        (
            "unknown filter field",
            Kind::RunSpec,
            with(run(), |r| r["filter"] = json!({"postcode": "SW1"})),
        ),
        (
            "filter region Z",
            Kind::RunSpec,
            with(run(), |r| r["filter"] = json!({"regions": ["Z"]})),
        ),
        (
            "filter kWh range negative",
            Kind::RunSpec,
            with(run(), |r| r["filter"] = json!({"elec_kwh": {"min": -1}})),
        ),
        (
            "filter date",
            Kind::RunSpec,
            with(run(), |r| r["filter"] = json!({"from": "1 July 2026"})),
        ),
    ];
    for (what, kind, doc) in cases {
        assert!(
            kind.check_schema(&doc).is_err(),
            "{what}: {} accepts {doc}",
            kind.schema_file()
        );
        assert!(
            kind.check_parser(&doc).is_err(),
            "{what}: the {kind:?} parser accepts {doc}"
        );
    }
}

#[test]
fn what_only_the_parser_or_the_scenario_checks() {
    // Documented limits of the schemas: these pass the schema but the market refuses them.
    let duplicate_id = with(full_market(), |m| m["tariffs"][1]["id"] = json!("x-svt"));
    let duplicate_card = with(full_market(), |m| {
        let card = m["tariffs"][1]["rates"][0].clone();
        m["tariffs"][1]["rates"].as_array_mut().unwrap().push(card);
    });
    for doc in [duplicate_id, duplicate_card] {
        assert!(Kind::Market.check_schema(&doc).is_ok());
        assert!(Kind::Market.check_parser(&doc).is_err());
    }
    // A move of -100% passes neither.
    let s = json!({"changes": [{"op": "move_prices", "percent": -100}]});
    assert!(Kind::Scenario.check_schema(&s).is_err());
    let parsed = Scenario::from_json(&s.to_string()).unwrap();
    let market = Market::from_json(&full_market().to_string()).unwrap();
    assert!(matches!(
        market.apply(&parsed),
        Err(tariffsim::ScenarioError::InvalidChange { .. })
    ));
}

#[test]
fn the_impressions_table_schema_names_the_header_columns_in_order() {
    let schema = load("schemas/impressions.tableschema.json");
    let names: Vec<&str> = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let header: Vec<&str> = tariffsim::IMPRESSIONS_CSV_HEADER
        .trim_end()
        .split(',')
        .collect();
    assert_eq!(names, header);
    let version = schema["fields"].as_array().unwrap().last().unwrap()["constraints"]["enum"][0]
        .as_u64()
        .unwrap();
    assert_eq!(version, u64::from(tariffsim::IMPRESSIONS_FORMAT_VERSION));
}
