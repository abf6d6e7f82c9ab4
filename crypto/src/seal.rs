//! Agency encryption keys and HPKE sealing (RFC 9180), for sealed agency-to-agency
//! messages (issue 21).
//!
//! Every agency has, beside its ed25519 signing key, an X25519 **encryption key** that
//! the roster lists (`encryption_keys`, with validity windows like signing keys). A
//! message is sealed to the recipient's key with HPKE in base mode, suite
//! DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, through the `hpke`
//! crate (the RustCrypto-based implementation; its X25519 and SHA-2 come from the same
//! `curve25519-dalek` and `sha2` this crate already uses). Authentication comes from the
//! sender's ed25519 signature (`mail`), not from HPKE's auth mode, so one signing key
//! per agency keeps serving every role.
//!
//! Secret keys zeroize on drop and print as `SecretKey(..)`. Public keys refuse the
//! all-zero and every small-order point on construction, so no sealing to a key whose
//! shared secret an attacker knows.

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::montgomery::MontgomeryPoint;
use hpke::{Deserializable, Kem as _, Serializable};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// Length of an encapsulated key (the sender's ephemeral X25519 public key).
pub const ENC_LEN: usize = 32;
/// Bytes the AEAD adds to a plaintext.
pub const TAG_LEN: usize = 16;

/// Why a key was refused or sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not `x25519:<64 hex>`, not 32 bytes, or a small-order point.
    #[error("malformed x25519 encryption key: {0}")]
    Malformed(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Rng(String),
    /// HPKE refused to seal.
    #[error("sealing failed")]
    Seal,
    /// The ciphertext does not open with this key, info and AAD: altered, re-routed,
    /// or sealed to another key.
    #[error("sealed body does not open (altered, re-routed, or sealed to another key)")]
    Open,
}

/// An agency's X25519 encryption secret key. Zeroized on drop; prints as `SecretKey(..)`.
pub struct EncryptionSecretKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for EncryptionSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl EncryptionSecretKey {
    /// A fresh key from the operating system's RNG.
    pub fn generate() -> Result<Self, SealError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        getrandom::fill(ikm.as_mut()).map_err(|e| SealError::Rng(e.to_string()))?;
        let (sk, _) = Kem::derive_keypair(ikm.as_ref());
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&sk.to_bytes());
        Ok(Self { bytes })
    }

    /// From the 32 secret bytes (as stored in the key file).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SealError> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map_err(|_| SealError::Malformed("secret key refused".into()))?;
        Ok(Self {
            bytes: Zeroizing::new(*bytes),
        })
    }

    /// The 32 secret bytes, for the key file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.bytes.clone()
    }

    fn hpke(&self) -> Result<<Kem as hpke::Kem>::PrivateKey, SealError> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(self.bytes.as_ref())
            .map_err(|_| SealError::Malformed("secret key refused".into()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> Result<EncryptionPublicKey, SealError> {
        let pk = Kem::sk_to_pk(&self.hpke()?);
        EncryptionPublicKey::from_bytes(&pk.to_bytes())
    }

    /// Opens a body sealed by [`seal`] with the same `info` and `aad`.
    pub fn open(
        &self,
        enc: &[u8],
        ciphertext: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| SealError::Open)?;
        hpke::single_shot_open::<Aead, Kdf, Kem>(
            &hpke::OpModeR::Base,
            &self.hpke()?,
            &enc,
            info,
            ciphertext,
            aad,
        )
        .map_err(|_| SealError::Open)
    }
}

/// Every encryption secret key an agency's node holds: the current one, the previous
/// ones whose messages may still be in flight, and a next one already listed for a
/// later window (key rotation, review of issue 21 finding 7). A message is opened with
/// the key its header names. Prints only the public keys.
#[derive(Default)]
pub struct EncryptionKeyring {
    keys: Vec<(EncryptionPublicKey, EncryptionSecretKey)>,
}

impl fmt::Debug for EncryptionKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(pk, _)| pk))
            .finish()
    }
}

impl EncryptionKeyring {
    /// Adds `key` (a key already held is not added twice).
    pub fn insert(&mut self, key: EncryptionSecretKey) -> Result<(), SealError> {
        let pk = key.public_key()?;
        if self.get(&pk).is_none() {
            self.keys.push((pk, key));
        }
        Ok(())
    }

    /// The secret key for `public`, if held.
    pub fn get(&self, public: &EncryptionPublicKey) -> Option<&EncryptionSecretKey> {
        self.keys
            .iter()
            .find(|(pk, _)| pk == public)
            .map(|(_, k)| k)
    }

    /// The public keys held, in the order added.
    pub fn public_keys(&self) -> impl Iterator<Item = &EncryptionPublicKey> {
        self.keys.iter().map(|(pk, _)| pk)
    }

    /// Keeps only the keys `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&EncryptionPublicKey) -> bool) {
        self.keys.retain(|(pk, _)| keep(pk));
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No key held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Seals `plaintext` to `to`, binding `info` and `aad`; returns `(enc, ciphertext)`.
pub fn seal(
    to: &EncryptionPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<([u8; ENC_LEN], Vec<u8>), SealError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&to.0).map_err(|_| SealError::Seal)?;
    let (enc, ct) =
        hpke::single_shot_seal::<Aead, Kdf, Kem>(&hpke::OpModeS::Base, &pk, info, plaintext, aad)
            .map_err(|_| SealError::Seal)?;
    let mut out = [0u8; ENC_LEN];
    let bytes = enc.to_bytes();
    if bytes.len() != ENC_LEN {
        return Err(SealError::Seal);
    }
    out.copy_from_slice(&bytes);
    Ok((out, ct))
}

/// A validated X25519 encryption public key. Text form: `x25519:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EncryptionPublicKey([u8; 32]);

impl EncryptionPublicKey {
    /// From 32 bytes; refuses small-order points (whose shared secret is predictable).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SealError::Malformed(format!("expected 32 bytes, got {}", bytes.len())))?;
        // A clamped scalar is a multiple of the cofactor, so it maps every small-order
        // point (and zero) to the all-zero u-coordinate.
        if MontgomeryPoint(arr).mul_clamped([0x42; 32]).to_bytes() == [0u8; 32] {
            return Err(SealError::Malformed("small-order point refused".into()));
        }
        Ok(Self(arr))
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "x25519:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionPublicKey({self})")
    }
}

impl FromStr for EncryptionPublicKey {
    type Err = SealError;
    fn from_str(s: &str) -> Result<Self, SealError> {
        let hexpart = s.strip_prefix("x25519:").ok_or_else(|| {
            SealError::Malformed(format!("{s:?} does not start with \"x25519:\""))
        })?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hexpart, &mut bytes).map_err(|_| {
            SealError::Malformed(format!("{s:?} is not x25519:<64 hex characters>"))
        })?;
        Self::from_bytes(&bytes)
    }
}

impl Serialize for EncryptionPublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EncryptionPublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_never_prints() {
        let k = EncryptionSecretKey::generate().unwrap();
        assert_eq!(format!("{k:?}"), "SecretKey(..)");
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = EncryptionSecretKey::generate().unwrap();
        let pk = k.public_key().unwrap();
        let (enc, ct) = seal(&pk, b"info", b"aad", b"secret details").unwrap();
        assert_eq!(ct.len(), b"secret details".len() + TAG_LEN);
        assert_eq!(
            k.open(&enc, &ct, b"info", b"aad").unwrap(),
            b"secret details"
        );
        assert_eq!(k.open(&enc, &ct, b"other", b"aad"), Err(SealError::Open));
        assert_eq!(k.open(&enc, &ct, b"info", b"other"), Err(SealError::Open));
        let other = EncryptionSecretKey::generate().unwrap();
        assert_eq!(other.open(&enc, &ct, b"info", b"aad"), Err(SealError::Open));
        assert_eq!(
            k.open(&enc[..5], &ct, b"info", b"aad"),
            Err(SealError::Open)
        );
    }

    #[test]
    fn keyring_finds_the_key_a_header_names_and_never_prints_secrets() {
        let (old, new) = (
            EncryptionSecretKey::generate().unwrap(),
            EncryptionSecretKey::generate().unwrap(),
        );
        let (old_pk, new_pk) = (old.public_key().unwrap(), new.public_key().unwrap());
        let mut ring = EncryptionKeyring::default();
        ring.insert(old).unwrap();
        ring.insert(new).unwrap();
        ring.insert(
            EncryptionSecretKey::from_bytes(&ring.get(&new_pk).unwrap().to_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(ring.len(), 2);
        let (enc, ct) = seal(&old_pk, b"i", b"a", b"to the old key").unwrap();
        assert_eq!(
            ring.get(&old_pk)
                .unwrap()
                .open(&enc, &ct, b"i", b"a")
                .unwrap(),
            b"to the old key"
        );
        let printed = format!("{ring:?}");
        assert!(printed.contains(&old_pk.to_string()) && printed.contains(&new_pk.to_string()));
        ring.retain(|pk| *pk == new_pk);
        assert!(ring.get(&old_pk).is_none());
        assert_eq!(ring.public_keys().collect::<Vec<_>>(), vec![&new_pk]);
    }

    #[test]
    fn key_text_round_trip_and_weak_keys() {
        let k = EncryptionSecretKey::generate().unwrap();
        let pk = k.public_key().unwrap();
        assert_eq!(pk.to_string().parse::<EncryptionPublicKey>().unwrap(), pk);
        let back = EncryptionSecretKey::from_bytes(&k.to_bytes()).unwrap();
        assert_eq!(back.public_key().unwrap(), pk);
        assert!(EncryptionPublicKey::from_bytes(&[0u8; 32]).is_err());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(EncryptionPublicKey::from_bytes(&one).is_err());
        assert!("ed25519:00".parse::<EncryptionPublicKey>().is_err());
    }
}
