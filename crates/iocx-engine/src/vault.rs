//! Secrets at rest: sealed with XChaCha20-Poly1305 under a master key.
//!
//! The master key comes from `IOCX_MASTER_KEY` (32 bytes as base64 or hex), from the file named
//! by `IOCX_MASTER_KEY_FILE`, or from `master.key` in the data directory, created with mode 0600
//! on first use. Nodes sharing one PostgreSQL database must share the key (set one of the
//! variables on every node). A sealed value is `v1 | 24-byte nonce | ciphertext+tag`, with the
//! configuration's name as associated data, so a sealed blob moved to another configuration does
//! not open.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The environment variable holding the master key.
pub const MASTER_KEY_ENV: &str = "IOCX_MASTER_KEY";
/// The environment variable naming a file holding the master key.
pub const MASTER_KEY_FILE_ENV: &str = "IOCX_MASTER_KEY_FILE";
const VERSION: u8 = 1;

/// Seals and opens secrets.
#[derive(Clone)]
pub struct Vault {
    cipher: XChaCha20Poly1305,
    /// A key for [`Vault::keyed_hash`], derived from the master key (never the master key).
    hash_key: [u8; 32],
    origin: String,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("key", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Why secrets cannot be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master key is unusable.
    #[error("master key ({origin}): {reason}")]
    Key {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A sealed value does not open with this key.
    #[error(
        "the secrets of {0:?} cannot be opened with this master key; was the key changed? Set the key they were sealed with, or enter the secrets again"
    )]
    Open(String),
}

impl Vault {
    /// A vault with this 32-byte key.
    pub fn from_key(key: [u8; 32], origin: impl Into<String>) -> Vault {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"iocx keyed-hash key v1");
        Vault {
            cipher: XChaCha20Poly1305::new((&key).into()),
            hash_key: mac.finalize().into_bytes().into(),
            origin: origin.into(),
        }
    }

    /// A keyed hash (HMAC-SHA-256, hex) of `data` in the domain `label`, for values that are
    /// stored only to be recognised again: API tokens, session cookies. Without the master key
    /// a stolen database does not let anyone test guesses against them.
    pub fn keyed_hash(&self, label: &str, data: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The vault of an installation: the key from the environment, else from `data_dir/master.key`
    /// (created with mode 0600 when absent).
    ///
    /// # Errors
    /// When the key is malformed or the key file cannot be read or created.
    pub fn open(data_dir: &Path) -> Result<Vault, VaultError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return Ok(Vault::from_key(
                decode_key(&text, MASTER_KEY_ENV)?,
                MASTER_KEY_ENV,
            ));
        }
        let path = match std::env::var(MASTER_KEY_FILE_ENV) {
            Ok(p) => std::path::PathBuf::from(p),
            Err(_) => data_dir.join("master.key"),
        };
        let origin = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Vault::from_key(decode_key(&text, &origin)?, origin)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                write_private(
                    &path,
                    &base64::engine::general_purpose::STANDARD.encode(key),
                )
                .map_err(|e| VaultError::Key {
                    origin: origin.clone(),
                    reason: format!("cannot create it: {e}"),
                })?;
                tracing::info!(path = %origin, "Created a new master key for secrets");
                Ok(Vault::from_key(key, origin))
            }
            Err(e) => Err(VaultError::Key {
                origin,
                reason: format!("cannot read it: {e}"),
            }),
        }
    }

    /// Seals secret values for the configuration `name`; `None` when there are none.
    ///
    /// # Errors
    /// Never in practice (encryption of in-memory data); kept for symmetry with [`Vault::open_secrets`].
    pub fn seal(
        &self,
        name: &str,
        secrets: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Option<Vec<u8>>, VaultError> {
        if secrets.is_empty() {
            return Ok(None);
        }
        let plain = serde_json::to_vec(secrets).map_err(|e| VaultError::Key {
            origin: self.origin.clone(),
            reason: e.to_string(),
        })?;
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Open(name.to_string()))?;
        let mut out = Vec::with_capacity(1 + 24 + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(Some(out))
    }

    /// Opens what [`Vault::seal`] sealed for `name`.
    ///
    /// # Errors
    /// [`VaultError::Open`] when the blob was sealed with another key or for another name, or
    /// is damaged.
    pub fn open_secrets(
        &self,
        name: &str,
        sealed: Option<&[u8]>,
    ) -> Result<BTreeMap<String, serde_json::Value>, VaultError> {
        let Some(sealed) = sealed else {
            return Ok(BTreeMap::new());
        };
        if sealed.len() < 1 + 24 + 16 || sealed[0] != VERSION {
            return Err(VaultError::Open(name.to_string()));
        }
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(&sealed[1..25]),
                Payload {
                    msg: &sealed[25..],
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Open(name.to_string()))?;
        serde_json::from_slice(&plain).map_err(|_| VaultError::Open(name.to_string()))
    }
}

fn decode_key(text: &str, origin: &str) -> Result<[u8; 32], VaultError> {
    let t = text.trim();
    let bytes = hex::decode(t)
        .ok()
        .filter(|b| b.len() == 32)
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .ok_or_else(|| VaultError::Key {
            origin: origin.into(),
            reason: "not base64 or hex".into(),
        })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| VaultError::Key {
        origin: origin.into(),
        reason: format!(
            "{} bytes; a master key is 32 bytes (e.g. `openssl rand -base64 32`)",
            bytes.len()
        ),
    })
}

#[cfg(unix)]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_the_same_key_and_name() {
        let v = Vault::from_key([7; 32], "test");
        let secrets = BTreeMap::from([("token".to_string(), serde_json::json!("s3cret"))]);
        let sealed = v.seal("cfg", &secrets).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("s3cret"));
        assert_eq!(v.open_secrets("cfg", Some(&sealed)).unwrap(), secrets);
        assert!(v.open_secrets("other", Some(&sealed)).is_err());
        assert!(
            Vault::from_key([8; 32], "other")
                .open_secrets("cfg", Some(&sealed))
                .is_err()
        );
        assert!(v.open_secrets("cfg", Some(&sealed[..10])).is_err());
        assert_eq!(v.seal("cfg", &BTreeMap::new()).unwrap(), None);
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Vault::open(dir.path()).unwrap();
        let sealed = a
            .seal(
                "x",
                &BTreeMap::from([("k".to_string(), serde_json::json!("v"))]),
            )
            .unwrap();
        let b = Vault::open(dir.path()).unwrap();
        assert!(b.open_secrets("x", sealed.as_deref()).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            decode_key("c2hvcnQ=", "t")
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
    }
}
