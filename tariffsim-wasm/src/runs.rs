//! The run side of the binding (Cargo feature `full`, on by default): visits, run specs, prepared
//! runs and their chunks, population filters, summaries. The `price` lambda loads a build without
//! it (`scripts/build-wasm`: `pkg-price/`), which prices exactly as this one does.

use crate::{Engine, codes, content_key, core_error, invalid_request, js_error, to_js};
use serde::Serialize;
use std::rc::Rc;
use tariffsim::{RunSpec, Scenario, Simulation};
use wasm_bindgen::prelude::*;

/// What the core says about a run spec, for the caller to resolve its references.
#[derive(Debug, Serialize)]
struct SpecOut<'a> {
    market: &'a str,
    scenario: Option<&'a str>,
    visits: &'a str,
    sample_size: u64,
    chunk_size: u64,
    chunk_count: u64,
    page_size: u16,
    seed: u64,
}

#[derive(Debug, Serialize)]
struct RunOut<'a> {
    key: &'a str,
    chunk_count: u64,
    population: usize,
    tariffs_on_sale: usize,
}

fn chunk_index(index: f64) -> Result<u64, JsValue> {
    if index.fract() != 0.0 || !(0.0..=9_007_199_254_740_991.0).contains(&index) {
        return Err(invalid_request(format!(
            "chunk index {index} is not a whole number from 0"
        )));
    }
    Ok(index as u64)
}

fn set(obj: &js_sys::Object, key: &str, value: &JsValue) -> Result<(), JsValue> {
    js_sys::Reflect::set(obj, &JsValue::from_str(key), value).map(|_| ())
}

impl Engine {
    fn run(&mut self, key: &str) -> Result<Rc<Simulation>, JsValue> {
        self.runs.get(key).ok_or_else(|| {
            js_error(
                codes::RUN_NOT_PREPARED,
                format!("run {key} is not prepared: prepare it with prepareRun first"),
            )
        })
    }
}

#[wasm_bindgen]
impl Engine {
    /// Parses a visits CSV and keeps it; returns its key, a hash of the bytes. Bytes already loaded
    /// are not parsed again.
    ///
    /// # Errors
    /// `InvalidVisitsCsv`, `UnknownRegion`, `InvalidVisit`, naming the line.
    #[wasm_bindgen(js_name = loadVisits)]
    pub fn load_visits(&mut self, csv: &[u8]) -> Result<String, JsValue> {
        let key = content_key("v", csv);
        if !self.visits.contains(&key) {
            let visits = tariffsim::parse_visits_csv(csv).map_err(core_error)?;
            self.stats.visits_parsed += 1;
            self.visits.insert(key.clone(), Rc::new(visits));
        }
        Ok(key)
    }

    /// Whether a run key is in the cache.
    #[wasm_bindgen(js_name = hasRun)]
    pub fn has_run(&self, key: &str) -> bool {
        self.runs.contains(key)
    }

    /// Whether a visits key is in the cache.
    #[wasm_bindgen(js_name = hasVisits)]
    pub fn has_visits(&self, key: &str) -> bool {
        self.visits.contains(key)
    }

    /// Parses and validates a run spec (JSON text); returns its references (`market`, `scenario`,
    /// `visits`) for the caller to resolve, and its sizes (`sample_size`, `chunk_size`,
    /// `chunk_count`, `page_size`, `seed`).
    ///
    /// # Errors
    /// `InvalidRunSpecJson`, `InvalidSampleSize`, `InvalidRunSpec`.
    #[wasm_bindgen(js_name = runSpec)]
    pub fn run_spec(&self, spec_json: &str) -> Result<JsValue, JsValue> {
        let spec = RunSpec::from_json(spec_json).map_err(core_error)?;
        to_js(&SpecOut {
            market: &spec.market,
            scenario: spec.scenario.as_deref(),
            visits: &spec.visits,
            sample_size: spec.sample_size,
            chunk_size: spec.chunk_size,
            chunk_count: spec.chunk_count(),
            page_size: spec.page_size,
            seed: spec.seed,
        })
    }

    /// Prepares a run from its spec (JSON text) and loaded inputs, and keeps it; returns
    /// `{key, chunk_count, population, tariffs_on_sale}`. A run already prepared from the same
    /// spec and inputs is not prepared again.
    ///
    /// # Errors
    /// `MarketNotLoaded`, `VisitsNotLoaded`; the spec's, scenario's and population's errors
    /// (`InvalidRunSpec`, `UnknownTariff`, `EmptyPopulation`, ...).
    #[wasm_bindgen(js_name = prepareRun)]
    pub fn prepare_run(
        &mut self,
        spec_json: &str,
        market_key: &str,
        scenario_json: Option<String>,
        visits_key: &str,
    ) -> Result<JsValue, JsValue> {
        let scenario_key = scenario_json
            .as_deref()
            .map(|s| content_key("s", s.as_bytes()));
        let key = content_key(
            "r",
            format!(
                "{}\n{market_key}\n{}\n{visits_key}",
                spec_json.trim(),
                scenario_key.as_deref().unwrap_or("-")
            )
            .as_bytes(),
        );
        let sim = match self.runs.get(&key) {
            Some(sim) => sim,
            None => {
                let spec = RunSpec::from_json(spec_json).map_err(core_error)?;
                let market = self.market(market_key)?;
                let visits = self.visits.get(visits_key).ok_or_else(|| {
                    js_error(
                        codes::VISITS_NOT_LOADED,
                        format!(
                            "visits {visits_key} are not loaded: load them with loadVisits first"
                        ),
                    )
                })?;
                let scenario = scenario_json
                    .as_deref()
                    .map(Scenario::from_json)
                    .transpose()
                    .map_err(core_error)?;
                let sim = Simulation::new(market.market(), scenario.as_ref(), &visits, &spec)
                    .map_err(core_error)?;
                let sim = Rc::new(sim);
                self.stats.runs_prepared += 1;
                self.runs.insert(key.clone(), sim.clone());
                sim
            }
        };
        to_js(&RunOut {
            key: &key,
            chunk_count: sim.chunk_count(),
            population: sim.population_size(),
            tariffs_on_sale: sim
                .index()
                .market()
                .tariffs
                .iter()
                .filter(|t| t.on_sale)
                .count(),
        })
    }

    /// Computes chunk `index` of a prepared run, exactly as the native `tariffsim chunk` command
    /// does: returns `{index, profiles, impressions, impressions_csv: Uint8Array, summary_json}`
    /// (the CSV header only on chunk 0; the summary as the command writes it).
    ///
    /// # Errors
    /// `RunNotPrepared`, `NoSuchChunk`, `InvalidRequest` for an index that is not a whole number.
    pub fn chunk(&mut self, run_key: &str, index: f64) -> Result<JsValue, JsValue> {
        let sim = self.run(run_key)?;
        let out = sim.chunk(chunk_index(index)?).map_err(core_error)?;
        let obj = js_sys::Object::new();
        set(&obj, "index", &JsValue::from_f64(out.index as f64))?;
        set(
            &obj,
            "profiles",
            &JsValue::from_f64(out.summary.profiles as f64),
        )?;
        set(
            &obj,
            "impressions",
            &JsValue::from_f64(out.summary.impressions as f64),
        )?;
        set(
            &obj,
            "impressions_csv",
            &js_sys::Uint8Array::from(out.impressions_csv.as_slice()).into(),
        )?;
        set(
            &obj,
            "summary_json",
            &JsValue::from_str(&out.summary.to_json()),
        )?;
        Ok(obj.into())
    }

    /// Replays chunk `index` of a prepared run without writing impressions; returns its partial
    /// summary as JSON text (the same summary [`Engine::chunk`] gives).
    ///
    /// # Errors
    /// `RunNotPrepared`, `NoSuchChunk`, `InvalidRequest`.
    #[wasm_bindgen(js_name = chunkSummary)]
    pub fn chunk_summary(&mut self, run_key: &str, index: f64) -> Result<String, JsValue> {
        let sim = self.run(run_key)?;
        let summary = sim
            .replay_chunk(chunk_index(index)?, |_, _, _, _, _, _| {})
            .map_err(core_error)?;
        Ok(summary.to_json())
    }
}

#[wasm_bindgen]
impl Engine {
    /// Applies a population filter (JSON) to loaded visits: returns `{count, csv}`, the kept
    /// visits in the order runs draw from ([`tariffsim::run::canonical_order`]) as a visits CSV
    /// (the run's stored population: each chunk then finds it in order).
    ///
    /// # Errors
    /// `VisitsNotLoaded`; `InvalidRunSpecJson` for a filter of the wrong shape; `EmptyPopulation`.
    #[wasm_bindgen(js_name = filterPopulation)]
    pub fn filter_population(
        &mut self,
        visits_key: &str,
        filter_json: &str,
    ) -> Result<JsValue, JsValue> {
        let visits = self.visits.get(visits_key).ok_or_else(|| {
            js_error(
                codes::VISITS_NOT_LOADED,
                format!("visits {visits_key} are not loaded: load them again"),
            )
        })?;
        let filter = tariffsim::PopulationFilter::from_json(filter_json).map_err(core_error)?;
        let kept = filter.apply(&visits).map_err(core_error)?;
        let owned = tariffsim::run::canonical_order(kept.into_iter().cloned().collect());
        let mut csv = Vec::new();
        tariffsim::visit::write_visits_csv(&mut csv, &owned)
            .map_err(|e| js_error(codes::INVALID_REQUEST, e))?;
        let obj = js_sys::Object::new();
        set(&obj, "count", &JsValue::from_f64(owned.len() as f64))?;
        set(
            &obj,
            "csv",
            &js_sys::Uint8Array::from(csv.as_slice()).into(),
        )?;
        Ok(obj.into())
    }
}

/// Merges partial summaries (JSON text, in any order) of one run into its summary, written exactly
/// as the native `tariffsim simulate` writes it.
///
/// # Errors
/// `InvalidRequest` for an empty list; `InvalidRunSpecJson` for a summary that does not parse;
/// `SummaryMismatch` for summaries of different runs.
#[wasm_bindgen(js_name = mergeSummaries)]
pub fn merge_summaries(summaries: Vec<String>) -> Result<String, JsValue> {
    let mut parsed = summaries
        .iter()
        .map(|s| tariffsim::Summary::from_json(s).map_err(core_error));
    let mut total = parsed
        .next()
        .ok_or_else(|| invalid_request("give at least one summary to merge"))??;
    for s in parsed {
        total.merge(&s?).map_err(core_error)?;
    }
    Ok(total.to_json())
}

/// Merges the partial summaries of a run's chunks into the run's report files: `[summary.json,
/// comparison.json, comparison.csv]`, the last two empty when the run does not compare with the
/// base market.
///
/// # Errors
/// As [`merge_summaries`].
#[wasm_bindgen(js_name = mergeReports)]
pub fn merge_reports(summaries: Vec<String>) -> Result<Vec<String>, JsValue> {
    let total = tariffsim::Summary::from_json(&merge_summaries(summaries)?).map_err(core_error)?;
    Ok(vec![
        total.report_json(),
        total.comparison_json().unwrap_or_default(),
        total.comparison_csv().unwrap_or_default(),
    ])
}
