//! SHA-256, the one hash of the record format (field digests, record ids, roster
//! hashes, the audit Merkle tree).
//!
//! Hashing is a large share of record verification besides the signature itself (13
//! SHA-256 runs per 12-field record, see BENCHMARKS.md), so this module picks the
//! faster of two well-kept implementations for the CPU it runs on, once:
//!
//! - with the x86 SHA extensions (SHA-NI), the `sha2` crate, which uses them: 1.4-1.7x
//!   faster than `ring` on field-sized inputs here (`ring` also uses them, but its
//!   digest API costs more around each short message). A message of at most 55 bytes
//!   (most field preimages) is padded here into its one block and handed to
//!   [`sha2::block_api::compress256`]: 2-4 ns less per hash than `Sha256::digest`,
//!   and 3.76 against 4.00 µs per 12-field record decode in interleaved runs
//!   (BENCHMARKS.md);
//! - everywhere else, `ring`'s assembly: on CPUs without SHA extensions it is
//!   1.4-1.5x faster than the portable `sha2` code.
//!
//! Both give the same digests; the tests compare every path with the other
//! implementation and with known vectors.

/// A 32-byte SHA-256 digest.
pub type Digest = [u8; 32];

/// The SHA-256 initial hash value (FIPS 180-4, 5.3.3).
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The longest message that fits one padded block: 64 bytes less the 0x80 marker and
/// the 8-byte bit length.
const ONE_BLOCK_MAX: usize = 55;

/// Which implementation runs here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The `sha2` crate, chosen where the CPU has SHA extensions (it uses them; on
    /// other CPUs it would run its portable code).
    Sha2,
    /// `ring`.
    Ring,
}

/// The implementation this CPU uses; decided once per process.
pub fn backend() -> Backend {
    static BACKEND: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
    *BACKEND.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Backend {
    // The features `sha2`'s SHA-NI code is compiled with; it checks them again itself.
    if std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("sse2")
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("sse4.1")
    {
        Backend::Sha2
    } else {
        Backend::Ring
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Backend {
    Backend::Ring
}

/// SHA-256 of `data`.
pub fn digest(data: &[u8]) -> Digest {
    digest_with(backend(), data)
}

/// SHA-256 of `data` with a given implementation (tests and benchmarks compare them).
#[doc(hidden)]
pub fn digest_with(backend: Backend, data: &[u8]) -> Digest {
    match backend {
        Backend::Sha2 => one_block(data).unwrap_or_else(|| sha2_digest(data)),
        Backend::Ring => ring_digest(data),
    }
}

/// The digest of a message of at most [`ONE_BLOCK_MAX`] bytes, which the 0x80 marker,
/// zeros and the 64-bit big-endian bit length complete to exactly one block (FIPS
/// 180-4, 5.1.1), compressed once; `None` for a longer message.
fn one_block(data: &[u8]) -> Option<Digest> {
    if data.len() > ONE_BLOCK_MAX {
        return None;
    }
    let mut block = [0u8; 64];
    block.get_mut(..data.len())?.copy_from_slice(data);
    *block.get_mut(data.len())? = 0x80;
    let bits = (data.len() as u64) * 8;
    let (_, tail) = block.split_at_mut(56);
    tail.copy_from_slice(&bits.to_be_bytes());
    let mut state = IV;
    sha2::block_api::compress256(&mut state, std::slice::from_ref(&block));
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    Some(out)
}

fn ring_digest(data: &[u8]) -> Digest {
    from_ring(ring::digest::digest(&ring::digest::SHA256, data))
}

/// A `ring` SHA-256 result as our fixed-size digest.
fn from_ring(d: ring::digest::Digest) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn sha2_digest(data: &[u8]) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// Incremental SHA-256.
#[derive(Clone)]
pub struct Hasher(Inner);

#[derive(Clone)]
enum Inner {
    Sha2(sha2::Sha256),
    Ring(ring::digest::Context),
}

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
        Self::with(backend())
    }

    /// A fresh hasher on a given implementation.
    #[doc(hidden)]
    pub fn with(backend: Backend) -> Self {
        Self(match backend {
            Backend::Sha2 => {
                use sha2::Digest as _;
                Inner::Sha2(sha2::Sha256::new())
            }
            Backend::Ring => Inner::Ring(ring::digest::Context::new(&ring::digest::SHA256)),
        })
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        match &mut self.0 {
            Inner::Sha2(h) => sha2::Digest::update(h, data),
            Inner::Ring(c) => c.update(data),
        }
        self
    }

    /// The digest.
    pub fn finish(self) -> Digest {
        match self.0 {
            Inner::Sha2(h) => sha2::Digest::finalize(h).into(),
            Inner::Ring(c) => from_ring(c.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Backend, Hasher, digest, digest_with};

    const BACKENDS: [Backend; 2] = [Backend::Sha2, Backend::Ring];

    #[test]
    fn known_vectors() {
        // FIPS 180-2 appendix B, and the empty message.
        let vectors: [(&[u8], &str); 3] = [
            (
                b"",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                b"abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
        ];
        for b in BACKENDS {
            for (msg, hex) in vectors {
                assert_eq!(hex::encode(digest_with(b, msg)), hex, "{b:?}");
                let mut h = Hasher::with(b);
                for byte in msg {
                    h.update(std::slice::from_ref(byte));
                }
                assert_eq!(hex::encode(h.finish()), hex, "{b:?} incremental");
            }
        }
        let mut h = Hasher::new();
        h.update(b"a").update(b"bc");
        assert_eq!(h.finish(), digest(b"abc"));
    }

    /// Every length up to several blocks, across the one-block limit and every padding
    /// boundary: every path of both implementations must agree.
    #[test]
    fn backends_agree_at_every_padding_boundary() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in 0..=data.len() {
            let msg = data.get(..len).unwrap_or_default();
            let ring = digest_with(Backend::Ring, msg);
            assert_eq!(digest_with(Backend::Sha2, msg), ring, "len {len}");
            assert_eq!(super::sha2_digest(msg), ring, "len {len}");
            assert_eq!(
                super::one_block(msg).is_some(),
                len <= super::ONE_BLOCK_MAX,
                "len {len}"
            );
            let mut h = Hasher::with(Backend::Sha2);
            h.update(msg);
            assert_eq!(h.finish(), ring, "len {len}");
        }
    }

    proptest::proptest! {
        #[test]
        fn backends_agree(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let ring = digest_with(Backend::Ring, &data);
            proptest::prop_assert_eq!(digest_with(Backend::Sha2, &data), ring);
            let mut h = Hasher::with(Backend::Sha2);
            let (a, b) = data.split_at(data.len() / 3);
            h.update(a).update(b);
            proptest::prop_assert_eq!(h.finish(), ring);
        }
    }
}
