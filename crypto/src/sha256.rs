//! SHA-256, the one hash of the record format (field digests, record ids, roster
//! hashes, the audit Merkle tree).
//!
//! It wraps `ring`'s assembly implementation: on CPUs without SHA extensions it is
//! 1.5-2.5x faster than the portable `sha2` crate, and hashing is a large share of
//! record verification besides the signature itself (see BENCHMARKS.md).

/// A 32-byte SHA-256 digest.
pub type Digest = [u8; 32];

/// SHA-256 of `data`.
pub fn digest(data: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Incremental SHA-256.
#[derive(Clone)]
pub struct Hasher(ring::digest::Context);

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sha256::Hasher")
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self(ring::digest::Context::new(&ring::digest::SHA256))
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    /// The digest.
    pub fn finish(self) -> Digest {
        let d = self.0.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_vectors() {
        assert_eq!(
            hex::encode(super::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = super::Hasher::new();
        h.update(b"a").update(b"bc");
        assert_eq!(h.finish(), super::digest(b"abc"));
    }
}
