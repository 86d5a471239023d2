//! Reading small text files (config, secrets, OPML) with a size limit, so that a wrong
//! path (`/dev/urandom`, a database, a video) is refused at once instead of read until
//! memory runs out.

use std::io::Read as _;
use std::path::Path;

/// Largest config or secrets file read.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads `path` as UTF-8 text of at most `limit` bytes.
pub fn read_text_limited(path: &Path, limit: u64) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} KiB, so not a file of this kind", limit / 1024),
        ));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_and_binary_files_are_refused() {
        let error = read_text_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(error.to_string(), "larger than 1 KiB, so not a file of this kind");
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("b");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(read_text_limited(&binary, 1024).unwrap_err().to_string(), "not UTF-8 text");
        std::fs::write(&binary, "ok = 1").unwrap();
        assert_eq!(read_text_limited(&binary, 1024).unwrap(), "ok = 1");
    }
}
