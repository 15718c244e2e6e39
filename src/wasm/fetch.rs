//! Downloading a model file with `fetch`, reporting bytes as they arrive.

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

use super::invalid;

#[wasm_bindgen]
extern "C" {
    // The global `fetch`, which exists both in a window and in a Worker
    // (web-sys only binds it per global type).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str) -> Promise;
}

/// The body of `url`, calling `on_progress(loaded, total)` after each chunk;
/// `total` is 0 when the server sends no `Content-Length`. A network failure
/// or an HTTP error status becomes an `Error` naming the URL.
pub(super) async fn fetch_bytes(url: &str, on_progress: Option<&Function>) -> Result<Vec<u8>, JsError> {
    let failed = |what: String| invalid(format!("could not fetch {url}: {what}"));
    let response: Response = JsFuture::from(global_fetch(url))
        .await
        .map_err(|e| failed(js_message(&e)))?
        .dyn_into()
        .map_err(|_| failed("fetch did not return a Response".into()))?;
    if !response.ok() {
        return Err(failed(format!("HTTP {} {}", response.status(), response.status_text())));
    }
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let body = response.body().ok_or_else(|| failed("the response has no body".into()))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total as usize);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| failed(js_message(&e)))?;
        if Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into())
            .ok()
            .and_then(|v| v.dyn_into().ok())
            .ok_or_else(|| failed("the body stream yielded something other than bytes".into()))?;
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        if let Some(cb) = on_progress {
            // A throwing progress callback should not abort the download.
            let _ = cb.call2(&JsValue::NULL, &(bytes.len() as f64).into(), &(total as f64).into());
        }
    }
    Ok(bytes)
}

/// The message of a JS exception (an `Error`'s `message`, else its string form).
fn js_message(e: &JsValue) -> String {
    Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
