//! Files the binary writes for the user.

use std::path::Path;

use anyhow::{Context as _, Result};

/// Writes a file only its owner can read, never readable by others even for an
/// instant. With `replace` false an existing file is an error.
pub fn write_private(path: &Path, contents: &str, replace: bool) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
