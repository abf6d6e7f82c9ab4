//! ed25519 keys: the agency signing key, the node's libp2p identity and the roster
//! authority key all use these types.
//!
//! Secret keys zeroize on drop (ed25519-dalek's `SigningKey` does) and never print:
//! `Debug` shows `SecretKey(..)`. Public keys are checked on construction so that a
//! weak (small-order) key can never enter the system.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// Domain-separation prefixes: every signature covers `context || message`, so a
/// signature made for one purpose can never be replayed as another.
pub mod context {
    /// Record headers.
    pub const RECORD: &[u8] = b"wlnode/record/v1\0";
    /// Roster files.
    pub const ROSTER: &[u8] = b"wlnode/roster/v1\0";
    /// Audit checkpoints.
    pub const CHECKPOINT: &[u8] = b"wlnode/checkpoint/v1\0";
    /// Auditor cosignatures of checkpoints.
    pub const COSIGN: &[u8] = b"wlnode/cosign/v1\0";
    /// Auditor cosignatures that also state when the auditor witnessed the checkpoint.
    pub const COSIGN_DATED: &[u8] = b"wlnode/cosign/v2\0";
    /// Sealed agency-to-agency messages (header and sealed body).
    pub const MAIL: &[u8] = b"wlnode/mail/v1\0";
    /// Receipts of sealed messages, signed by the recipient.
    pub const RECEIPT: &[u8] = b"wlnode/receipt/v1\0";
    /// The next hop's answer to a mail hand-over (custody taken, or why not), signed
    /// by the answering agency: evidence for the handing node's audit log.
    pub const HANDOVER: &[u8] = b"wlnode/mail-handover/v1\0";
    /// Content-free receipts of Art. 16 consultation steps (a request, an answer, a
    /// refusal), signed by the agency that took the step beside the sealed message
    /// that carries it, so that an auditor can check who said what from the roster's
    /// keys without seeing the content (issue 21, s33).
    pub const CONSULT_RECEIPT: &[u8] = b"wlnode/consult-receipt/v1\0";
    /// The handing agency's offer of a mail item to a neighbour (`/wlnode/mail/5`):
    /// evidence, in the neighbour's audit log, that it held the copy and chose that
    /// route.
    pub const HANDOVER_OFFER: &[u8] = b"wlnode/mail-offer/v1\0";
    /// The HPKE `info` prefix of a sealed body in the first, unpadded format (not a
    /// signature context, but kept here so that no two purposes share a label). Only
    /// recognised, to refuse such a body with a clear reason; never sealed.
    pub const MAIL_SEAL: &[u8] = b"wlnode/mail-seal/v1\0";
    /// The HPKE `info` prefix of a sealed body whose plaintext is padded to a size
    /// bucket (review s30-consult2, M5: the padding changed the body's format).
    pub const MAIL_SEAL_PADDED: &[u8] = b"wlnode/mail-seal/v2\0";
}

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not 32 bytes, not a curve point, or not `ed25519:<64 hex>`.
    #[error("malformed ed25519 public key: {0}")]
    Malformed(String),
    /// A small-order key that would validate forged signatures.
    #[error("weak (small-order) ed25519 public key refused")]
    Weak,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Rng(String),
}

/// An ed25519 secret key. Zeroized on drop; prints as `SecretKey(..)`.
pub struct SecretKey {
    inner: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A fresh key from the operating system's RNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Rng(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// From the 32-byte seed (RFC 8032 secret key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            inner: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte seed, for handing to libp2p's identity keypair.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.inner.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.inner.verifying_key())
    }

    /// Signs `context || message`.
    pub fn sign(&self, context: &[u8], message: &[u8]) -> Signature {
        let mut buf = Vec::with_capacity(context.len() + message.len());
        buf.extend_from_slice(context);
        buf.extend_from_slice(message);
        Signature(self.inner.sign(&buf).to_bytes())
    }
}

const KEY_CACHE_MAX: usize = 1024;

thread_local! {
    /// Decompressed, checked (not weak) keys by their 32-byte encoding.
    static KEY_CACHE: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerifyingKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// A validated (not weak) ed25519 public key. Text form: `ed25519:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PublicKey {
    /// From 32 bytes; refuses non-points and weak keys.
    ///
    /// Point decompression costs about a tenth of a signature verification, and a
    /// federation has few signing keys, so decompressed keys are kept in a small
    /// per-thread cache.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::Malformed(format!("expected 32 bytes, got {}", bytes.len())))?;
        if let Some(vk) = KEY_CACHE.with(|c| c.borrow().get(&arr).copied()) {
            return Ok(Self(vk));
        }
        let vk = VerifyingKey::from_bytes(&arr)
            .map_err(|_| KeyError::Malformed("not a valid curve point".into()))?;
        if vk.is_weak() {
            return Err(KeyError::Weak);
        }
        KEY_CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= KEY_CACHE_MAX {
                c.clear();
            }
            c.insert(arr, vk);
        });
        Ok(Self(vk))
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The dalek key, for batch verification.
    pub(crate) fn dalek(&self) -> &VerifyingKey {
        &self.0
    }

    /// Verifies `signature` over `context || message` with `verify_strict`.
    pub fn verify(
        &self,
        context: &[u8],
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), KeyError> {
        let mut buf = Vec::with_capacity(context.len() + message.len());
        buf.extend_from_slice(context);
        buf.extend_from_slice(message);
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(&buf, &sig)
            .map_err(|_| KeyError::BadSignature)
    }

    /// The libp2p PeerId (base58btc) of a node whose identity key this is.
    pub fn peer_id(&self) -> String {
        bs58::encode(peer_id_bytes(self)).into_string()
    }
}

/// The libp2p PeerId bytes of an ed25519 key: an identity multihash (code 0x00,
/// length 36) over the protobuf `PublicKey { Type = Ed25519, Data = key }`.
fn peer_id_bytes(key: &PublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(38);
    out.extend_from_slice(&PEER_ID_PREFIX);
    out.extend_from_slice(key.as_bytes());
    out
}

const PEER_ID_PREFIX: [u8; 6] = [0x00, 36, 0x08, 0x01, 0x12, 0x20];

/// Parses a libp2p PeerId string of an ed25519 identity key, returning the key.
/// PeerIds of other key types are refused: wlnode nodes use ed25519 identities.
pub fn parse_peer_id(s: &str) -> Result<PublicKey, KeyError> {
    let bytes = bs58::decode(s)
        .into_vec()
        .map_err(|_| KeyError::Malformed(format!("PeerId {s:?} is not base58")))?;
    match bytes.split_at_checked(6) {
        Some((prefix, key)) if prefix == PEER_ID_PREFIX && key.len() == 32 => {
            PublicKey::from_bytes(key)
        }
        _ => Err(KeyError::Malformed(format!(
            "PeerId {s:?} is not an ed25519 identity PeerId (12D3KooW...)"
        ))),
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let hexpart = s.strip_prefix("ed25519:").ok_or_else(|| {
            KeyError::Malformed(format!("{s:?} does not start with \"ed25519:\""))
        })?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hexpart, &mut bytes).map_err(|_| {
            KeyError::Malformed(format!("{s:?} is not ed25519:<64 hex characters>"))
        })?;
        Self::from_bytes(&bytes)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A 64-byte ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// From exactly 64 bytes.
    pub fn from_slice(b: &[u8]) -> Result<Self, KeyError> {
        b.try_into().map(Self).map_err(|_| {
            KeyError::Malformed(format!("signature must be 64 bytes, got {}", b.len()))
        })
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_never_prints() {
        let k = SecretKey::generate().unwrap();
        assert_eq!(format!("{k:?}"), "SecretKey(..)");
        assert_eq!(format!("{:#?}", k), "SecretKey(..)");
    }

    #[test]
    fn sign_verify_with_context() {
        let k = SecretKey::generate().unwrap();
        let sig = k.sign(context::RECORD, b"hello");
        assert!(
            k.public_key()
                .verify(context::RECORD, b"hello", &sig)
                .is_ok()
        );
        assert_eq!(
            k.public_key().verify(context::ROSTER, b"hello", &sig),
            Err(KeyError::BadSignature)
        );
    }

    /// Every context is distinct and none is a prefix of another, so no signature
    /// made for one purpose verifies for another (each ends in a NUL, which no label
    /// contains).
    #[test]
    fn contexts_are_domain_separated() {
        let all = [
            context::RECORD,
            context::ROSTER,
            context::CHECKPOINT,
            context::COSIGN,
            context::COSIGN_DATED,
            context::MAIL,
            context::RECEIPT,
            context::HANDOVER,
            context::MAIL_SEAL,
            context::MAIL_SEAL_PADDED,
            context::CONSULT_RECEIPT,
            context::HANDOVER_OFFER,
        ];
        for (i, a) in all.iter().enumerate() {
            assert_eq!(a.last(), Some(&0), "{}", String::from_utf8_lossy(a));
            assert_eq!(a.iter().filter(|b| **b == 0).count(), 1);
            for b in all.iter().skip(i + 1) {
                assert!(!a.starts_with(b) && !b.starts_with(a));
            }
        }
        let k = SecretKey::generate().unwrap();
        let sig = k.sign(context::CONSULT_RECEIPT, b"{}");
        for c in all.iter().filter(|c| **c != context::CONSULT_RECEIPT) {
            assert!(k.public_key().verify(c, b"{}", &sig).is_err());
        }
    }

    #[test]
    fn public_key_text_round_trip() {
        let k = SecretKey::generate().unwrap().public_key();
        let s = k.to_string();
        assert_eq!(s.parse::<PublicKey>().unwrap(), k);
        assert!("ed25519:00".parse::<PublicKey>().is_err());
        assert!(s.replace("ed25519:", "").parse::<PublicKey>().is_err());
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (small order) encoded as y = 1.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        assert_eq!(PublicKey::from_bytes(&weak), Err(KeyError::Weak));
    }

    #[test]
    fn peer_id_matches_libp2p_form() {
        // RFC 8032 test vector 1 public key; its libp2p PeerId starts with 12D3KooW.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let k = SecretKey::from_seed(&seed).public_key();
        let pid = k.peer_id();
        assert!(pid.starts_with("12D3KooW"), "{pid}");
        assert_eq!(parse_peer_id(&pid).unwrap(), k);
        assert!(parse_peer_id("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N").is_err());
        assert!(parse_peer_id("not base58 0OIl").is_err());
    }
}
