//! Browser bindings (wasm32 only): a thin layer that translates JS types to
//! the core and back. Async core calls become Promises, `Float32Array`s
//! become slices, and every `wgqa::Error` becomes a thrown (or rejected) JS
//! `Error` carrying its message. Nothing here unwraps, so no JS input can
//! reach a panic (which would trap as `unreachable` in wasm).

mod cache;
mod chat;
mod config;
mod context;
mod cpu_attention;
mod model;
mod options;

use wasm_bindgen::{JsError, JsValue};

/// A JS `Error` with `message`, for inputs the core cannot see (array
/// shapes, option names) and must be rejected before they reach it.
fn invalid(message: String) -> JsError {
    JsError::new(&message)
}

/// A Rust error as the value a rejected Promise carries: a JS `Error`.
fn rejection(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}
