//! Where the tests that read the default model find it.

use std::path::{Path, PathBuf};

use wgqa::model::DEFAULT_MODEL;

/// The default model's path, or `None` with a note when it has not been
/// fetched (`scripts/test.sh` fetches it, so CI always has it).
pub fn default_model_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ lies in the repository")
        .join(DEFAULT_MODEL);
    if !path.exists() {
        eprintln!("skipping: {} is absent (run scripts/fetch-model.sh)", path.display());
        return None;
    }
    Some(path)
}
