//! Key files: an ed25519 secret key stored as JSON, readable only by its owner.
//!
//! ```json
//! {"type": "yrd-ed25519-secret-key", "public_key": "<64 hex>", "secret_key": "<64 hex>"}
//! ```

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use yrd_consensus::crypto::{PublicKey, SecretKey};

pub const KEY_FILE_TYPE: &str = "yrd-ed25519-secret-key";
const MAX_KEY_FILE_BYTES: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read key file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write key file {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("key file {path} is not a yrd key file: {reason}")]
    Format { path: String, reason: String },
    #[error("key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions { path: String, mode: u32 },
    #[error("refusing to overwrite existing key file {0}")]
    Exists(String),
}

#[derive(Serialize, Deserialize)]
struct KeyFileJson {
    #[serde(rename = "type")]
    kind: String,
    public_key: PublicKey,
    secret_key: String,
}

/// A fresh key from the operating system's random source.
pub fn generate() -> SecretKey {
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    SecretKey::from_bytes(&seed)
}

/// Writes `key` to `path` with mode 0600. Refuses to overwrite.
pub fn write_key_file(path: &Path, key: &SecretKey) -> Result<(), KeyFileError> {
    let p = path.display().to_string();
    let json = KeyFileJson {
        kind: KEY_FILE_TYPE.into(),
        public_key: key.public(),
        secret_key: hex::encode(key.to_bytes()),
    };
    let text = serde_json::to_string_pretty(&json).map_err(|e| KeyFileError::Write { path: p.clone(), reason: e.to_string() })?;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists(p.clone())
        } else {
            KeyFileError::Write { path: p.clone(), reason: e.to_string() }
        }
    })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(|e| KeyFileError::Write { path: p, reason: e.to_string() })
}

/// Reads a key file; refuses files that group or others can read.
pub fn read_key_file(path: &Path) -> Result<SecretKey, KeyFileError> {
    let p = path.display().to_string();
    let meta = fs::metadata(path).map_err(|e| KeyFileError::Read { path: p.clone(), reason: e.to_string() })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Permissions { path: p, mode });
        }
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::Format { path: p, reason: format!("{} bytes is too large for a key file", meta.len()) });
    }
    let text = fs::read_to_string(path).map_err(|e| KeyFileError::Read { path: p.clone(), reason: e.to_string() })?;
    let json: KeyFileJson =
        serde_json::from_str(&text).map_err(|e| KeyFileError::Format { path: p.clone(), reason: e.to_string() })?;
    if json.kind != KEY_FILE_TYPE {
        return Err(KeyFileError::Format { path: p, reason: format!("type is {:?}, expected {KEY_FILE_TYPE:?}", json.kind) });
    }
    let bytes: [u8; 32] = hex::decode(json.secret_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyFileError::Format { path: p.clone(), reason: "secret_key must be 64 hex digits".into() })?;
    let key = SecretKey::from_bytes(&bytes);
    if key.public() != json.public_key {
        return Err(KeyFileError::Format { path: p, reason: "public_key does not match secret_key".into() });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let key = generate();
        write_key_file(&path, &key).unwrap();
        assert_eq!(read_key_file(&path).unwrap().public(), key.public());
        assert!(matches!(write_key_file(&path, &key), Err(KeyFileError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(read_key_file(&path), Err(KeyFileError::Permissions { .. })));
        }
    }
}
