//! Writing the converted file without ever leaving half of one behind.

use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary file in the same folder,
/// renamed into place only once complete. An existing `path` is an error
/// unless `force`; on any error nothing is left at `path` or beside it.
pub fn write_new_file(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let shown = path.display().to_string();
    if !force && path.exists() {
        return Err(Error::OutputExists(shown));
    }
    let name = path.file_name().ok_or_else(|| Error::ConvertOption {
        option: "--out",
        problem: format!("`{shown}` does not name a file"),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.partial", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let fail = |source| Error::WriteFile { path: shown.clone(), source };
    let result = std::fs::write(&tmp, bytes).and_then(|()| {
        if force {
            std::fs::rename(&tmp, path)
        } else {
            // A hard link fails if `path` appeared meanwhile, where a rename
            // would silently replace it.
            std::fs::hard_link(&tmp, path).and_then(|()| std::fs::remove_file(&tmp))
        }
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::OutputExists(shown.clone()),
            _ => fail(e),
        });
    }
    Ok(())
}
