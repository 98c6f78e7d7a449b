//! test
use wasm_bindgen::prelude::*;
/// x
#[wasm_bindgen]
pub fn x(a: &str) -> Result<String, JsValue> {
    Ok(a.to_string())
}
