//! Key files: the only IO in this crate.
//!
//! A key file holds one ed25519 seed in a strict text format that names what the key
//! is for, so that a node key can never be loaded as an agency key by mistake:
//!
//! ```text
//! WLNODE-SECRET-KEY v1 agency
//! <64 hex characters>
//! public ed25519:<64 hex characters>
//! ```
//!
//! Files are created with mode 0600 and never overwritten. Reading refuses a file that
//! group or others may read or write, a truncated or malformed file, and a file whose
//! stored public key does not match its seed.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::keys::SecretKey;
use crate::seal::EncryptionSecretKey;

/// What a key is for; written into the file and checked on reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// The agency's record-signing key.
    Agency,
    /// The node's libp2p identity.
    Node,
    /// The federation roster authority's key.
    Authority,
    /// The agency's X25519 encryption key for sealed messages (`seal`).
    Encryption,
}

impl KeyKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Agency => "agency",
            Self::Node => "node",
            Self::Authority => "authority",
            Self::Encryption => "encryption",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "agency" => Some(Self::Agency),
            "node" => Some(Self::Node),
            "authority" => Some(Self::Authority),
            "encryption" => Some(Self::Encryption),
            _ => None,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Opening, reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Group or others have access.
    #[error(
        "key file {path} has mode {mode:o}; group and others must have no access (run: chmod 600 {path})"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a wlnode key file, or is truncated.
    #[error("key file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file holds another kind of key.
    #[error("key file {path} holds a {found} key, expected a {expected} key")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// What the file says.
        found: KeyKind,
        /// What the caller asked for.
        expected: KeyKind,
    },
    /// The file already exists; keys are never overwritten.
    #[error("key file {path} already exists; refusing to overwrite a key")]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

const MAGIC: &str = "WLNODE-SECRET-KEY v1";
const MAX_KEY_FILE: u64 = 4096;

/// Writes `key` to a new file at `path` with mode 0600 and syncs it to disk.
pub fn write_secret_key(path: &Path, key: &SecretKey, kind: KeyKind) -> Result<(), KeyFileError> {
    write_key_text(path, kind, &key.seed(), &key.public_key().to_string())
}

/// Writes an agency encryption key to a new file at `path` with mode 0600.
pub fn write_encryption_key(path: &Path, key: &EncryptionSecretKey) -> Result<(), KeyFileError> {
    let public = key.public_key().map_err(|e| KeyFileError::Malformed {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    write_key_text(
        path,
        KeyKind::Encryption,
        &key.to_bytes(),
        &public.to_string(),
    )
}

fn write_key_text(
    path: &Path,
    kind: KeyKind,
    secret: &[u8; 32],
    public: &str,
) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: path.to_owned(),
                }
            } else {
                io(e)
            }
        })?;
    let text = Zeroizing::new(format!(
        "{MAGIC} {kind}\n{}\npublic {public}\n",
        hex::encode(secret),
    ));
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}

/// Reads the agency encryption key from `path`, with the checks of [`read_secret_key`].
pub fn read_encryption_key(path: &Path) -> Result<EncryptionSecretKey, KeyFileError> {
    let bytes = read_checked(path)?;
    let attach = |e: ParseError| match e {
        ParseError::Malformed(reason) => KeyFileError::Malformed {
            path: path.to_owned(),
            reason,
        },
        ParseError::WrongKind(found) => KeyFileError::WrongKind {
            path: path.to_owned(),
            found,
            expected: KeyKind::Encryption,
        },
    };
    let (secret, public) = parse_key_lines(&bytes, KeyKind::Encryption).map_err(attach)?;
    let key = EncryptionSecretKey::from_bytes(&secret)
        .map_err(|e| attach(ParseError::Malformed(e.to_string())))?;
    let derived = key
        .public_key()
        .map_err(|e| attach(ParseError::Malformed(e.to_string())))?;
    if public != derived.to_string() {
        return Err(attach(ParseError::Malformed(
            "stored public key does not match the secret key".into(),
        )));
    }
    Ok(key)
}

/// Reads a key of `kind` from `path`, refusing insecure permissions and bad contents.
pub fn read_secret_key(path: &Path, kind: KeyKind) -> Result<SecretKey, KeyFileError> {
    let bytes = read_checked(path)?;
    parse_secret_key(&bytes, kind).map_err(|e| match e {
        ParseError::Malformed(reason) => KeyFileError::Malformed {
            path: path.to_owned(),
            reason,
        },
        ParseError::WrongKind(found) => KeyFileError::WrongKind {
            path: path.to_owned(),
            found,
            expected: kind,
        },
    })
}

/// Reads a key file after checking its permissions and size. The checks are made on
/// the open file (`fstat`), and at most one byte more than the limit is read, so a
/// file swapped or grown between the check and the read is never taken (review
/// s30-consult2, L4: the path's metadata was checked, then the path read again).
fn read_checked(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    use std::io::Read;
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let not_regular = || KeyFileError::Malformed {
        path: path.to_owned(),
        reason: "not a regular file of at most 4 KiB".into(),
    };
    // Only so that opening a FIFO or device does not block: what counts is the
    // check on the open file below.
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    if !meta.is_file() || meta.len() > MAX_KEY_FILE {
        return Err(not_regular());
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(512));
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(not_regular());
    }
    Ok(bytes)
}

/// Why key file contents were refused (before the path is attached).
#[derive(Debug)]
pub enum ParseError {
    /// Not the expected format.
    Malformed(String),
    /// Another kind of key.
    WrongKind(KeyKind),
}

/// Parses the contents of a key file.
pub fn parse_secret_key(bytes: &[u8], kind: KeyKind) -> Result<SecretKey, ParseError> {
    let (seed, public) = parse_key_lines(bytes, kind)?;
    let key = SecretKey::from_seed(&seed);
    if public != key.public_key().to_string() {
        return Err(ParseError::Malformed(
            "stored public key does not match the secret key".into(),
        ));
    }
    Ok(key)
}

/// The secret bytes and the stored public key text of a key file of `kind`.
fn parse_key_lines(
    bytes: &[u8],
    kind: KeyKind,
) -> Result<(Zeroizing<[u8; 32]>, String), ParseError> {
    let malformed = |reason: &str| ParseError::Malformed(reason.to_owned());
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8 text"))?;
    let mut lines = text.lines();
    let first = lines.next().ok_or_else(|| malformed("empty file"))?;
    let found = first
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(KeyKind::parse)
        .ok_or_else(|| {
            malformed(&format!(
                "first line must be \"{MAGIC} <agency|node|authority|encryption>\""
            ))
        })?;
    if found != kind {
        return Err(ParseError::WrongKind(found));
    }
    let seed_hex = lines
        .next()
        .ok_or_else(|| malformed("truncated: no key line"))?;
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(seed_hex.trim(), seed.as_mut())
        .map_err(|_| malformed("key line must be exactly 64 hex characters"))?;
    let public = match lines.next() {
        Some(line) => line
            .strip_prefix("public ")
            .ok_or_else(|| malformed("third line must be \"public <key>\""))?
            .trim()
            .to_owned(),
        None => return Err(malformed("truncated: no public key line")),
    };
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(malformed("unexpected content after the public key line"));
    }
    Ok((seed, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agency.key");
        let key = SecretKey::generate().unwrap();
        write_secret_key(&path, &key, KeyKind::Agency).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_secret_key(&path, KeyKind::Agency).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert!(matches!(
            write_secret_key(&path, &key, KeyKind::Agency),
            Err(KeyFileError::Exists { .. })
        ));
        assert!(matches!(
            read_secret_key(&path, KeyKind::Node),
            Err(KeyFileError::WrongKind { .. })
        ));
    }

    #[test]
    fn encryption_key_write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("encryption.key");
        let key = EncryptionSecretKey::generate().unwrap();
        write_encryption_key(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_encryption_key(&path).unwrap();
        assert_eq!(back.public_key().unwrap(), key.public_key().unwrap());
        assert!(matches!(
            read_secret_key(&path, KeyKind::Agency),
            Err(KeyFileError::WrongKind { .. })
        ));
        let agency = dir.path().join("agency.key");
        write_secret_key(&agency, &SecretKey::generate().unwrap(), KeyKind::Agency).unwrap();
        assert!(matches!(
            read_encryption_key(&agency),
            Err(KeyFileError::WrongKind { .. })
        ));
    }

    #[test]
    fn refuses_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_secret_key(&path, &SecretKey::generate().unwrap(), KeyKind::Node).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret_key(&path, KeyKind::Node).unwrap_err();
        assert!(
            matches!(err, KeyFileError::InsecurePermissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("node.key"));
    }

    /// Review s30-consult2, L4: what is not a regular file (a folder, a FIFO) is
    /// refused with an error naming it, without blocking on it.
    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("d.key");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = read_encryption_key(&sub).unwrap_err();
        assert!(matches!(err, KeyFileError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("d.key"));
        let fifo = dir.path().join("f.key");
        let made = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let err = read_encryption_key(&fifo).unwrap_err();
            assert!(matches!(err, KeyFileError::Malformed { .. }), "{err}");
        }
    }

    #[test]
    fn refuses_truncated_and_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_secret_key(&path, &SecretKey::generate().unwrap(), KeyKind::Agency).unwrap();
        let full = std::fs::read_to_string(&path).unwrap();
        let write = |s: &str| {
            std::fs::remove_file(&path).ok();
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .unwrap()
                .write_all(s.as_bytes())
                .unwrap();
        };
        for cut in [0, 10, 30, 60, 90] {
            write(&full[..cut]);
            let err = read_secret_key(&path, KeyKind::Agency).unwrap_err();
            assert!(
                matches!(err, KeyFileError::Malformed { .. }),
                "cut {cut}: {err}"
            );
        }
        write(&full.replace("public ed25519:", "public ed25519:00"));
        assert!(read_secret_key(&path, KeyKind::Agency).is_err());
        write("garbage\n");
        assert!(matches!(
            read_secret_key(&path, KeyKind::Agency),
            Err(KeyFileError::Malformed { .. })
        ));
    }
}
