//! Where the tests that read a real model find it.

use std::path::{Path, PathBuf};

use wgqa::model::{DEFAULT_MODEL, GEMMA3_MODEL};

/// The default model's path, or `None` with a note when it has not been
/// fetched (`scripts/test.sh` fetches it, so CI always has it).
pub fn default_model_path() -> Option<PathBuf> {
    model_path(DEFAULT_MODEL, "scripts/fetch-model.sh")
}

/// Gemma-3-270M's path, or `None` with a note when it has not been fetched
/// (`scripts/fetch-gemma.sh`).
pub fn gemma3_model_path() -> Option<PathBuf> {
    model_path(GEMMA3_MODEL, "scripts/fetch-gemma.sh")
}

/// `relative` (to the repository root) when it exists.
fn model_path(relative: &str, fetch: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ lies in the repository")
        .join(relative);
    if !path.exists() {
        eprintln!("skipping: {} is absent (run {fetch})", path.display());
        return None;
    }
    Some(path)
}
