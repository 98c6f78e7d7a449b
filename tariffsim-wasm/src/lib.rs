//! # tariffsim-wasm: the tariffsim core as a WebAssembly module for Node.js
//!
//! The Lambda handlers in `js/` call the pure core through this crate. It is glue only:
//!
//! - **The core's request and answer.** Profiles are the core's `ProfileInput`s (optional
//!   timestamp, night share as a fraction, kWh as numbers, defaults from the market's date) and
//!   the answer the core's `PriceResponse` with the market's cache key: as plain JS objects through
//!   serde-wasm-bindgen's JSON-compatible serializer ([`Engine::price`]), or as JSON bytes in and
//!   JSON text out ([`Engine::price_json`], the handlers' hot path: one copy each way instead of a
//!   JS call per field, about half the time). Markets, scenarios, run specs and visits cross as the
//!   formats the core already defines (JSON, CSV), as bytes; core types never cross.
//! - **Typed errors.** Every error is a real JS `Error` whose `name` is the core's stable code
//!   (`UnknownRegion`, `InvalidMarketJson`, `NoSuchChunk`, ...) or one of this crate's own
//!   ([`codes`]); the Node.js Lambda runtime reports that `name` as `errorType`.
//! - **A warm cache in wasm memory.** An [`Engine`] keeps parsed markets and visits keyed by a
//!   content hash (XXH3-128 of the bytes), compiled hypothetical markets keyed by (market, scenario
//!   text), and prepared runs keyed by (spec, inputs). A warm call names its inputs by key and
//!   parses nothing. The cache is bounded (least recently used entries go first) and can always be
//!   rebuilt: after a trap the JS side throws the module away and starts a fresh one. A cold start
//!   need not parse a stored market either: a [`snapshot`] made from its JSON is decoded instead.
//!
//! ```js
//! const wasm = require('./pkg/tariffsim_wasm.js');
//! const engine = new wasm.Engine();
//! const key = engine.loadMarket(fs.readFileSync('market.json'));
//! // profiles, page size, tie seed, show the current tariff, whole of market
//! const out = engine.price(key, undefined, undefined, [{ region: 'C' }], 10, 0, false, true);
//! const text = engine.priceJson(key, undefined, undefined, Buffer.from('[{"region": "C"}]'), 10, 0, false, true);
//! out.results[0].rows[0]; // { rank: 1, tariff_id: ..., annual_cost_gbp: ..., ... }
//! ```

use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Display;
use std::rc::Rc;
use tariffsim::table::{
    FILTER_FIELDS, MarketInfo, PROFILE_FIELDS, PriceOptions, PricedTable, ProfileInput,
    price_tables,
};
use tariffsim::{
    Market, MarketIndex, PageRules, RunSpec, Scenario, Simulation, Tariff, Visit, VisitError,
};
use wasm_bindgen::prelude::*;

pub mod snapshot;

/// Error codes of the binding itself (the core's codes come from `tariffsim::Error::code`).
pub mod codes {
    /// A request of the wrong shape: a missing or unknown field, a value of the wrong type.
    pub const INVALID_REQUEST: &str = "InvalidRequest";
    /// A market key that is not (or no longer) in the cache: load the market again.
    pub const MARKET_NOT_LOADED: &str = "MarketNotLoaded";
    /// A visits key that is not (or no longer) in the cache: load the visits again.
    pub const VISITS_NOT_LOADED: &str = "VisitsNotLoaded";
    /// A run key that is not (or no longer) in the cache: prepare the run again.
    pub const RUN_NOT_PREPARED: &str = "RunNotPrepared";
    /// A hypothetical tariff list that is not valid JSON of tariffs.
    pub const INVALID_TARIFF: &str = "InvalidTariff";
    /// Bytes that are not a market snapshot of this version.
    pub const INVALID_SNAPSHOT: &str = "InvalidSnapshot";
}

/// Markets kept parsed at once.
const MARKETS_CACHED: usize = 8;
/// Compiled (hypothetical) markets kept at once.
const INDICES_CACHED: usize = 32;
/// Visits files kept parsed at once.
const VISITS_CACHED: usize = 4;
/// Prepared runs kept at once.
const RUNS_CACHED: usize = 4;

/// The global property where the panic hook leaves the last panic's message, for the JS side to
/// put into the error it reports after the trap.
pub const PANIC_MESSAGE_GLOBAL: &str = "__tariffsimPanicMessage";

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let _ = js_sys::Reflect::set(
            &js_sys::global(),
            &JsValue::from_str(PANIC_MESSAGE_GLOBAL),
            &JsValue::from_str(&info.to_string()),
        );
    }));
}

/// A JS `Error` with `name` set to `code`.
fn js_error(code: &str, message: impl Display) -> JsValue {
    let e = js_sys::Error::new(&message.to_string());
    e.set_name(code);
    e.into()
}

/// A core error as a JS `Error` named by its stable code.
fn core_error(e: impl Into<tariffsim::Error>) -> JsValue {
    let e = e.into();
    js_error(e.code(), &e)
}

fn invalid_request(message: impl Display) -> JsValue {
    js_error(codes::INVALID_REQUEST, message)
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error("InternalError", format!("cannot convert the result: {e}")))
}

/// A content key: the kind's prefix and the XXH3-128 hash of the bytes, in hex.
fn content_key(prefix: &str, bytes: &[u8]) -> String {
    format!("{prefix}-{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// A small least-recently-used map from keys to shared values.
struct Cache<V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<String, (u64, V)>,
}

impl<V: Clone> Cache<V> {
    fn new(capacity: usize) -> Self {
        Cache {
            capacity,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &str) -> Option<V> {
        self.clock += 1;
        let now = self.clock;
        self.entries.get_mut(key).map(|(used, v)| {
            *used = now;
            v.clone()
        })
    }

    fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    fn insert(&mut self, key: String, value: V) {
        if self.entries.len() >= self.capacity
            && !self.entries.contains_key(&key)
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.clock += 1;
        self.entries.insert(key, (self.clock, value));
    }
}

/// The `price` answer as it crosses: the core's [`PriceResponse`] with the market's cache key.
#[derive(Debug, Serialize)]
struct PriceOut<'a> {
    market: MarketOut<'a>,
    results: &'a [PricedTable],
}

#[derive(Debug, Serialize)]
struct MarketOut<'a> {
    key: &'a str,
    #[serde(flatten)]
    info: &'a MarketInfo,
}

/// Refuses an object with a field not in `fields`, as `deny_unknown_fields` would: a misspelt
/// field is a mistake to report, not a default to apply (serde-wasm-bindgen ignores unknown
/// fields of JS objects).
fn check_fields(value: &JsValue, fields: &[&str], what: &str) -> Result<(), JsValue> {
    let Some(obj) = value.dyn_ref::<js_sys::Object>() else {
        return Ok(());
    };
    for key in js_sys::Object::keys(obj).iter() {
        let key = key.as_string().unwrap_or_default();
        if !fields.contains(&key.as_str()) {
            return Err(invalid_request(format!(
                "{what}: unknown field `{key}`, expected one of {}",
                fields.join(", ")
            )));
        }
    }
    Ok(())
}

/// A profile-level problem as a JS error named by the core's code.
fn profile_error(e: VisitError) -> JsValue {
    core_error(e)
}

/// The price call's options from its arguments: the seed must be a whole number JS holds exactly.
fn price_options(
    page_size: u32,
    seed: f64,
    show_current_tariff: bool,
    whole_of_market: bool,
) -> Result<PriceOptions, JsValue> {
    check_page_size(page_size)?;
    if !(seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= 9_007_199_254_740_991.0)
    {
        return Err(invalid_request(format!(
            "seed {seed} is not a whole number from 0 to 2^53-1 (9007199254740991)"
        )));
    }
    Ok(PriceOptions {
        page_size: page_size as usize,
        seed: seed as u64,
        rules: PageRules {
            show_current_tariff,
            whole_of_market,
        },
    })
}

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

/// Bytes as UTF-8 text, or an error with `code` naming `what`.
fn utf8<'a>(bytes: &'a [u8], code: &str, what: &str) -> Result<&'a str, JsValue> {
    std::str::from_utf8(bytes).map_err(|e| js_error(code, format!("{what} is not UTF-8 text: {e}")))
}

/// Optional UTF-8 text passed as bytes.
fn optional_text<'a>(bytes: &'a Option<Box<[u8]>>, what: &str) -> Result<Option<&'a str>, JsValue> {
    bytes
        .as_deref()
        .map(|b| utf8(b, codes::INVALID_REQUEST, what))
        .transpose()
}

fn check_page_size(page_size: u32) -> Result<(), JsValue> {
    if page_size == 0 || page_size > u32::from(tariffsim::run::MAX_PAGE_SIZE) {
        return Err(invalid_request(format!(
            "page_size {page_size} is out of range: give 1 to {}",
            tariffsim::run::MAX_PAGE_SIZE
        )));
    }
    Ok(())
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

/// The warm state of one wasm instance: parsed markets and visits, compiled hypothetical markets,
/// prepared runs. Create one at module scope and keep it for the life of the instance.
#[wasm_bindgen]
pub struct Engine {
    /// Loaded markets, compiled: the market as given is `index.market()`.
    markets: Cache<Rc<MarketIndex>>,
    indices: Cache<Rc<MarketIndex>>,
    visits: Cache<Rc<Vec<Visit>>>,
    runs: Cache<Rc<Simulation>>,
    stats: Stats,
}

/// How much work the cache saved: what was parsed or built, as opposed to found.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Stats {
    markets_parsed: u64,
    markets_from_snapshot: u64,
    indices_built: u64,
    visits_parsed: u64,
    runs_prepared: u64,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    fn market(&mut self, key: &str) -> Result<Rc<MarketIndex>, JsValue> {
        self.markets.get(key).ok_or_else(|| {
            js_error(
                codes::MARKET_NOT_LOADED,
                format!("market {key} is not loaded: load it with loadMarket first"),
            )
        })
    }

    /// The compiled market for (market, scenario, hypothetical tariffs), from the cache or built.
    fn index(
        &mut self,
        market_key: &str,
        scenario: Option<&str>,
        hypothetical_tariffs: Option<&str>,
    ) -> Result<Rc<MarketIndex>, JsValue> {
        let key = match (scenario, hypothetical_tariffs) {
            (None, None) => market_key.to_string(),
            (s, h) => format!(
                "{market_key}/{}/{}",
                content_key("s", s.unwrap_or_default().as_bytes()),
                content_key("h", h.unwrap_or_default().as_bytes())
            ),
        };
        if scenario.is_none() && hypothetical_tariffs.is_none() {
            return self.market(market_key);
        }
        if let Some(index) = self.indices.get(&key) {
            return Ok(index);
        }
        let base = self.market(market_key)?;
        let scenario = scenario
            .map(Scenario::from_json)
            .transpose()
            .map_err(core_error)?;
        let added: Vec<Tariff> = match hypothetical_tariffs {
            Some(json) => serde_json::from_str(json).map_err(|e| {
                js_error(
                    codes::INVALID_TARIFF,
                    format!(
                        "hypothetical_tariffs is not a list of tariffs in the market format: {e}"
                    ),
                )
            })?,
            None => Vec::new(),
        };
        let market = base
            .market()
            .apply_with_tariffs(scenario.as_ref(), &added)
            .map_err(core_error)?;
        let index = Rc::new(MarketIndex::new(market));
        self.stats.indices_built += 1;
        self.indices.insert(key, index.clone());
        Ok(index)
    }

    /// Prices visits on the compiled market and hands the result to `emit` (to JS objects or text).
    fn priced<R>(
        &mut self,
        market_key: &str,
        scenario: Option<&str>,
        hypothetical_tariffs: Option<&str>,
        profiles: &[ProfileInput],
        options: &PriceOptions,
        emit: impl FnOnce(&PriceOut) -> R,
    ) -> Result<R, JsValue> {
        let index = self.index(market_key, scenario, hypothetical_tariffs)?;
        let as_of = index.market().as_of;
        let visits = profiles
            .iter()
            .enumerate()
            .map(|(n, p)| p.to_visit(n, as_of))
            .collect::<Result<Vec<Visit>, _>>()
            .map_err(profile_error)?;
        let answer = price_tables(&index, &visits, options);
        Ok(emit(&PriceOut {
            market: MarketOut {
                key: market_key,
                info: &answer.market,
            },
            results: &answer.results,
        }))
    }

    fn insert_market(&mut self, key: String, market: Market) {
        self.stats.indices_built += 1;
        self.markets.insert(key, Rc::new(MarketIndex::new(market)));
    }

    /// [`Engine::load_market`] for Rust callers.
    ///
    /// # Errors
    /// As [`Engine::load_market`].
    pub fn load_market_bytes(&mut self, json: &[u8]) -> Result<String, JsValue> {
        let key = content_key("m", json);
        if !self.markets.contains(&key) {
            let json = utf8(json, "InvalidMarketJson", "the market")?;
            let market = Market::from_json(json).map_err(core_error)?;
            self.stats.markets_parsed += 1;
            self.insert_market(key.clone(), market);
        }
        Ok(key)
    }

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
    /// An empty engine.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Engine {
        Engine {
            markets: Cache::new(MARKETS_CACHED),
            indices: Cache::new(INDICES_CACHED),
            visits: Cache::new(VISITS_CACHED),
            runs: Cache::new(RUNS_CACHED),
            stats: Stats::default(),
        }
    }

    /// Parses and validates a market (JSON, the format of `schemas/market.schema.json`: UTF-8
    /// bytes, e.g. the `Buffer` a file read gives, or a string) and keeps it; returns its key, a
    /// hash of the bytes. Bytes already loaded are not parsed again. Bytes cross in one copy; a
    /// string is copied a character at a time, which for a large market costs milliseconds.
    ///
    /// # Errors
    /// `InvalidMarketJson`, `DuplicateTariff`, `InvalidTariff`, `TooManyTariffs`;
    /// `InvalidRequest` for something neither bytes nor a string.
    ///
    /// `snapshot`, when given, is a [`snapshot`] of the same market ([`Engine::market_snapshot`]):
    /// if it was made from JSON with this key it is decoded instead of parsing the JSON (a cold
    /// start then costs a hash and a copy instead of a parse); otherwise it is ignored.
    #[wasm_bindgen(js_name = loadMarket)]
    pub fn load_market(
        &mut self,
        json: JsValue,
        snapshot: Option<Box<[u8]>>,
    ) -> Result<String, JsValue> {
        let bytes = match json.dyn_ref::<js_sys::Uint8Array>() {
            Some(array) => array.to_vec(),
            None => json
                .as_string()
                .ok_or_else(|| invalid_request("a market must be JSON bytes or text"))?
                .into_bytes(),
        };
        if let Some(snapshot) = snapshot {
            let key = content_key("m", &bytes);
            if self.markets.contains(&key) {
                return Ok(key);
            }
            if let Some((made_for, market)) = snapshot::decode(&snapshot)
                && made_for == key
                && market.validate().is_ok()
            {
                self.stats.markets_from_snapshot += 1;
                self.insert_market(key.clone(), market);
                return Ok(key);
            }
        }
        self.load_market_bytes(&bytes)
    }

    /// Loads a market from its [`snapshot`] alone, under the key of the JSON it was made from, for
    /// a deployment that ships the snapshot instead of the JSON (the Lambda zip does): no JSON is
    /// read, hashed or parsed. The snapshot was made from a market the core validated, and the
    /// market is validated again.
    ///
    /// # Errors
    /// `InvalidSnapshot` for bytes that are not a snapshot of this version; the market's validation
    /// errors.
    #[wasm_bindgen(js_name = loadMarketSnapshot)]
    pub fn load_market_snapshot(&mut self, snapshot: &[u8]) -> Result<String, JsValue> {
        let (key, market) = snapshot::decode(snapshot).ok_or_else(|| {
            js_error(
                codes::INVALID_SNAPSHOT,
                "not a market snapshot of this version: make it again with js/tools/snapshot.js",
            )
        })?;
        if !self.markets.contains(&key) {
            market.validate().map_err(core_error)?;
            self.stats.markets_from_snapshot += 1;
            self.insert_market(key.clone(), market);
        }
        Ok(key)
    }

    /// The [`snapshot`] of a loaded market, to store next to its JSON (`<file>.snapshot`) so that
    /// cold starts skip parsing it.
    ///
    /// # Errors
    /// `MarketNotLoaded`.
    #[wasm_bindgen(js_name = marketSnapshot)]
    pub fn market_snapshot(&mut self, key: &str) -> Result<Vec<u8>, JsValue> {
        let market = self.market(key)?;
        Ok(snapshot::encode(key, market.market()))
    }

    /// What this engine has parsed or built so far: `{markets_parsed, markets_from_snapshot,
    /// indices_built, visits_parsed, runs_prepared}` (a warm call adds nothing).
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        to_js(&self.stats)
    }

    /// Whether a market key is in the cache.
    #[wasm_bindgen(js_name = hasMarket)]
    pub fn has_market(&self, key: &str) -> bool {
        self.markets.contains(key)
    }

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

    /// Prices profiles on a loaded market, optionally made hypothetical by a scenario (JSON text)
    /// and by hypothetical tariffs (JSON text of a list of tariffs in the market format, added as
    /// hypothetical). `profiles` is a list of profile objects ([`ProfileDto`]). Returns
    /// `{market, results}`: per profile every eligible tariff is ranked, the first `page_size` rows
    /// are returned, and each hypothetical tariff's rank in the whole list is reported.
    ///
    /// # Errors
    /// `MarketNotLoaded`; `InvalidRequest` for a profile of the wrong shape; `UnknownRegion`,
    /// `InvalidVisit`; the scenario's errors (`InvalidScenarioJson`, `UnknownTariff`, ...);
    /// `InvalidTariff` for a bad hypothetical tariff.
    pub fn price(
        &mut self,
        market_key: &str,
        scenario: Option<Box<[u8]>>,
        hypothetical_tariffs: Option<Box<[u8]>>,
        profiles: JsValue,
        page_size: u32,
        seed: f64,
        show_current_tariff: bool,
        whole_of_market: bool,
    ) -> Result<JsValue, JsValue> {
        let options = price_options(page_size, seed, show_current_tariff, whole_of_market)?;
        let profiles: js_sys::Array = profiles
            .dyn_into()
            .map_err(|_| invalid_request("profiles must be a list of profile objects"))?;
        let mut inputs = Vec::with_capacity(profiles.length() as usize);
        for (n, p) in profiles.iter().enumerate() {
            check_fields(&p, PROFILE_FIELDS, &format!("profiles[{n}]"))?;
            if let Ok(filters) = js_sys::Reflect::get(&p, &JsValue::from_str("filters")) {
                check_fields(&filters, FILTER_FIELDS, &format!("profiles[{n}].filters"))?;
            }
            let input: ProfileInput = serde_wasm_bindgen::from_value(p).map_err(|e| {
                let e = e.to_string();
                invalid_request(format!(
                    "profiles[{n}]: {}",
                    e.trim_start_matches("Error: ")
                ))
            })?;
            inputs.push(input);
        }
        self.priced(
            market_key,
            optional_text(&scenario, "the scenario")?,
            optional_text(&hypothetical_tariffs, "hypothetical_tariffs")?,
            &inputs,
            &options,
            |out| to_js(out),
        )?
    }

    /// [`Engine::price`] with JSON in and out: `profiles_json` is the UTF-8 JSON of the list of
    /// profiles (bytes: a `Buffer` is copied in one go, where a JS string is copied a character at a
    /// time) and the result is the JSON text of `{market, results}`. The handlers' hot path: one
    /// copy each way instead of a JS call per field.
    ///
    /// # Errors
    /// As [`Engine::price`]; `InvalidRequest` names the profile and field at fault.
    #[wasm_bindgen(js_name = priceJson)]
    pub fn price_json(
        &mut self,
        market_key: &str,
        scenario: Option<Box<[u8]>>,
        hypothetical_tariffs: Option<Box<[u8]>>,
        profiles_json: &[u8],
        page_size: u32,
        seed: f64,
        show_current_tariff: bool,
        whole_of_market: bool,
    ) -> Result<String, JsValue> {
        let options = price_options(page_size, seed, show_current_tariff, whole_of_market)?;
        let inputs: Vec<ProfileInput> = serde_json::from_slice(profiles_json).map_err(|_| {
            // Parse again, slowly, only to say where.
            let mut de = serde_json::Deserializer::from_slice(profiles_json);
            match serde_path_to_error::deserialize::<_, Vec<ProfileInput>>(&mut de) {
                Err(e) => {
                    let path = e.path().to_string();
                    let message = e.into_inner().to_string();
                    let message = message
                        .rfind(" at line ")
                        .map_or(message.as_str(), |i| &message[..i]);
                    let path = if path == "." { String::new() } else { path };
                    invalid_request(format!("profiles{path}: {message}"))
                }
                Ok(_) => invalid_request("profiles must be a list of profile objects"),
            }
        })?;
        self.priced(
            market_key,
            optional_text(&scenario, "the scenario")?,
            optional_text(&hypothetical_tariffs, "hypothetical_tariffs")?,
            &inputs,
            &options,
            |out| serde_json::to_string(out).map_err(|e| js_error("InternalError", e)),
        )?
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
    /// visits in their original order as a visits CSV (the run's stored population).
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
        let owned: Vec<Visit> = kept.into_iter().cloned().collect();
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

/// The version of this crate (and of the core it was built with).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Panics with `message`: fault injection for testing that the JS side recovers from a trap. It
/// only ever runs when a caller asks for it (the handlers accept it in the DEV environment only).
#[wasm_bindgen(js_name = debugPanic)]
pub fn debug_panic(message: &str) {
    panic!("debug panic requested: {message}");
}
