//! The audit log's append-only Merkle tree (RFC 6962 §2.1, RFC 9162 §2.1): tree heads,
//! inclusion and consistency proofs, and their verification.
//!
//! It exists so that an auditor can check, from a few hashes, that an event is in a
//! node's log and that the log only ever grew, without trusting the node. It is pure:
//! no IO, no clock. The log holds millions of events and lives in the node's store, so
//! the tree never recomputes from all leaves. It works over a [`NodeStore`] that holds
//! the hash of every **complete subtree** (a perfect binary tree of `2^level` leaves
//! aligned on a multiple of its own width), keyed by `(level, index)`:
//!
//! ```text
//! level 2:        (2,0)
//! level 1:   (1,0)      (1,1)       (1,2)
//! level 0: (0,0) (0,1) (0,2) (0,3) (0,4) (0,5) (0,6)      <- leaf hashes, 7 leaves
//! ```
//!
//! A complete subtree never changes once its last leaf is appended, so a store that
//! holds the tree of `n` leaves answers for every size `m <= n` as well. Every other
//! node hash the RFC needs (the root of a size that is not a power of two, the right
//! edge of a proof) is the RFC's right fold over at most 64 complete subtrees, so
//! [`root`] and each proof read `O(log n)` hashes from the store.
//!
//! The verification functions take proofs from other nodes over the network: they never
//! panic, and they reject a proof of the wrong length (extra or missing hashes) before
//! hashing anything.

use std::collections::HashMap;
use std::convert::Infallible;

use wlnode_crypto::sha256::{Hasher, digest};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree head.
pub type Hash = [u8; 32];

/// The highest level a complete subtree can have: `2^64` leaves do not fit a `u64` size.
const MAX_LEVEL: u32 = 63;

/// Storage of complete-subtree hashes (see the module docs for the keying).
///
/// [`append`] is the only writer. The puts of one `append` must become durable together
/// with the tree size the caller records (for sled: one batch), or not at all.
pub trait NodeStore {
    /// The store's own error.
    type Error;
    /// Hash of the complete subtree covering leaves `[index << level, (index + 1) << level)`,
    /// if stored.
    fn get(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error>;
    /// Stores the hash of the complete subtree at `(level, index)`.
    fn put(&mut self, level: u8, index: u64, hash: Hash) -> Result<(), Self::Error>;
}

/// A `HashMap`-backed [`NodeStore`] for tests and tools.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemStore(HashMap<(u8, u64), Hash>);

impl MemStore {
    /// An empty store (the tree of size 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored subtree hashes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes a stored hash (to simulate a damaged store), returning it.
    pub fn remove(&mut self, level: u8, index: u64) -> Option<Hash> {
        self.0.remove(&(level, index))
    }

    /// The stored keys `(level, index)`, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        self.0.keys().copied()
    }
}

impl NodeStore for MemStore {
    type Error = Infallible;

    fn get(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
        Ok(self.0.get(&(level, index)).copied())
    }

    fn put(&mut self, level: u8, index: u64, hash: Hash) -> Result<(), Infallible> {
        self.0.insert((level, index), hash);
        Ok(())
    }
}

/// Why a tree operation over a [`NodeStore`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError<E> {
    /// The store failed.
    #[error("audit tree store: {0}")]
    Store(#[source] E),
    /// The store lacks a complete subtree the answer needs: the store is damaged, or
    /// the requested size is larger than the tree it holds.
    #[error("audit tree store lacks the subtree at level {level}, index {index}")]
    Missing {
        /// Level of the missing subtree.
        level: u8,
        /// Index of the missing subtree within its level.
        index: u64,
    },
    /// A leaf index or tree size outside what the request allows: a leaf index not below
    /// the tree size, an old size above the new size, or a tree that cannot grow.
    #[error("{what} {value} is out of range for a tree of {size} leaves")]
    OutOfRange {
        /// What `value` is (`"leaf index"`, `"old size"`).
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The tree size it was checked against.
        size: u64,
    },
    /// [`append`] found a leaf already stored at `index`: the caller's size is behind
    /// the store's, and appending would overwrite the log.
    #[error("audit tree already holds a leaf at index {index}; append needs the current size")]
    Occupied {
        /// The leaf index that is already stored.
        index: u64,
    },
}

/// Why a proof failed verification. Each variant is a distinct failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof does not have the number of hashes the sizes determine.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength {
        /// Hashes the sizes (and index) call for.
        expected: usize,
        /// Hashes received.
        got: usize,
    },
    /// An inclusion proof's leaf index is not below its tree size (any index for size 0).
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// A consistency proof's old size is larger than its new size.
    #[error("old size {old_size} is larger than new size {new_size}")]
    SizesOutOfOrder {
        /// The claimed old size.
        old_size: u64,
        /// The claimed new size.
        new_size: u64,
    },
    /// The inclusion proof leads to another root.
    #[error("inclusion proof does not lead to the expected root")]
    RootMismatch,
    /// The consistency proof does not reproduce the old root (for old size 0: the old
    /// root is not the empty tree's root).
    #[error("consistency proof does not reproduce the old root")]
    OldRootMismatch,
    /// The consistency proof does not reproduce the new root (for equal sizes: the two
    /// roots differ).
    #[error("consistency proof does not reproduce the new root")]
    NewRootMismatch,
}

/// `SHA-256(0x00 || data)`: the hash of one log entry.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Hasher::new();
    h.update(&[0x00]).update(data);
    h.finish()
}

/// `SHA-256(0x01 || left || right)`: an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Hasher::new();
    h.update(&[0x01]).update(left).update(right);
    h.finish()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    digest(b"")
}

/// Appends a leaf at index `size` (leaf hash given), storing the new leaf and every
/// subtree it completes. Returns the new size.
///
/// It reads the left siblings first and writes only when all of them are present, so a
/// [`MerkleError::Missing`] leaves the store untouched.
pub fn append<S: NodeStore>(
    s: &mut S,
    size: u64,
    leaf: Hash,
) -> Result<u64, MerkleError<S::Error>> {
    let Some(new_size) = size.checked_add(1) else {
        return Err(MerkleError::OutOfRange {
            what: "leaf index",
            value: size,
            size,
        });
    };
    if s.get(0, size).map_err(MerkleError::Store)?.is_some() {
        return Err(MerkleError::Occupied { index: size });
    }
    // The new leaf completes one subtree per trailing one bit of its index.
    let mut puts: Vec<(u8, u64, Hash)> = Vec::with_capacity(size.trailing_ones() as usize + 1);
    let (mut level, mut index, mut hash) = (0u8, size, leaf);
    puts.push((level, index, hash));
    while index & 1 == 1 {
        let left = get_node(s, level, index - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        puts.push((level, index, hash));
    }
    for (level, index, hash) in puts {
        s.put(level, index, hash).map_err(MerkleError::Store)?;
    }
    Ok(new_size)
}

/// The tree head (RFC 6962 MTH) of the first `size` leaves, from at most 64 stored
/// complete subtrees.
pub fn root<S: NodeStore>(s: &S, size: u64) -> Result<Hash, MerkleError<S::Error>> {
    range_hash(s, 0, size)
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `size` leaves,
/// ordered from the leaf's sibling up to the root's child (RFC 9162 §2.1.3.1).
pub fn inclusion_proof<S: NodeStore>(
    s: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, MerkleError<S::Error>> {
    if index >= size {
        return Err(MerkleError::OutOfRange {
            what: "leaf index",
            value: index,
            size,
        });
    }
    // Walk down from the root; the siblings come out root-first.
    let mut path = Vec::new();
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let mid = start + split(end - start);
        if index < mid {
            path.push(range_hash(s, mid, end)?);
            end = mid;
        } else {
            path.push(range_hash(s, start, mid)?);
            start = mid;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof between the tree of `old_size` leaves and the tree of
/// `new_size` leaves (RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equals
/// `new_size`: those trees are consistent with no hashes at all.
pub fn consistency_proof<S: NodeStore>(
    s: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, MerkleError<S::Error>> {
    if old_size > new_size {
        return Err(MerkleError::OutOfRange {
            what: "old size",
            value: old_size,
            size: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start:end], have_root), unrolled: each step appends one hash after
    // the sub-proof, so they are collected outermost-first and reversed at the end.
    let mut outer = Vec::new();
    let (mut start, mut end, mut m) = (0u64, new_size, old_size);
    let mut have_root = true;
    let mut first = None;
    loop {
        let n = end - start;
        if m == n {
            if !have_root {
                first = Some(range_hash(s, start, end)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            outer.push(range_hash(s, start + k, end)?);
            end = start + k;
        } else {
            outer.push(range_hash(s, start, start + k)?);
            start += k;
            m -= k;
            have_root = false;
        }
    }
    let mut proof = Vec::with_capacity(outer.len() + 1);
    proof.extend(first);
    proof.extend(outer.into_iter().rev());
    Ok(proof)
}

/// The number of hashes in the inclusion proof of leaf `index` in a tree of `size`
/// leaves, or `None` if `index >= size`.
pub fn inclusion_proof_len(index: u64, size: u64) -> Option<usize> {
    if index >= size {
        return None;
    }
    let (inner, border) = decompose(index, size - 1);
    Some((inner + border) as usize)
}

/// The number of hashes in the consistency proof from `old_size` to `new_size`, or
/// `None` if `old_size > new_size`.
pub fn consistency_proof_len(old_size: u64, new_size: u64) -> Option<usize> {
    if old_size > new_size {
        return None;
    }
    if old_size == 0 || old_size == new_size {
        return Some(0);
    }
    // The proof is an inclusion proof, at the level of the old tree's last complete
    // subtree, of that subtree, preceded by the subtree's own hash unless it is the
    // whole old tree (old size a power of two).
    let level = old_size.trailing_zeros();
    let (inner, border) = decompose((old_size - 1) >> level, (new_size - 1) >> level);
    let seed = u32::from(!old_size.is_power_of_two());
    Some((seed + inner + border) as usize)
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `size` leaves whose
/// head is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let Some(expected) = inclusion_proof_len(index, size) else {
        return Err(ProofError::IndexOutOfRange { index, size });
    };
    let wrong_length = ProofError::WrongLength {
        expected,
        got: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(wrong_length);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `new_size` leaves with head `new_root` extends the tree of
/// `old_size` leaves with head `old_root` (RFC 9162 §2.1.4.2).
///
/// The RFC defines proofs for `0 < old_size < new_size` only. Here, equal sizes need an
/// empty proof and equal roots, and old size 0 needs an empty proof and the empty tree's
/// root as `old_root` (any `new_root` extends it).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let Some(expected) = consistency_proof_len(old_size, new_size) else {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    };
    let wrong_length = ProofError::WrongLength {
        expected,
        got: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    if old_size == 0 && *old_root != empty_root() {
        return Err(ProofError::OldRootMismatch);
    }
    if old_size == new_size {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::NewRootMismatch)
        };
    }
    if old_size == 0 {
        return Ok(());
    }
    // Now 0 < old_size < new_size and the length is right.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some(split) => split,
            None => return Err(wrong_length),
        }
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if snode == 0 {
            return Err(wrong_length);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}

/// The largest power of two smaller than `n`, for `n >= 2` (the RFC's split point `k`).
fn split(n: u64) -> u64 {
    1u64 << (MAX_LEVEL - (n - 1).leading_zeros())
}

/// For the node at `index` in a level whose last node is `last`: how many siblings of
/// its path lie below the point where its path and the last node's path meet (`inner`,
/// all complete), and how many left siblings lie above it (`border`).
fn decompose(index: u64, last: u64) -> (u32, u32) {
    let inner = u64::BITS - (index ^ last).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

/// One stored complete subtree, or [`MerkleError::Missing`].
fn get_node<S: NodeStore>(s: &S, level: u8, index: u64) -> Result<Hash, MerkleError<S::Error>> {
    s.get(level, index)
        .map_err(MerkleError::Store)?
        .ok_or(MerkleError::Missing { level, index })
}

/// MTH of leaves `[start, end)`, for ranges that occur in the RFC's recursion over a
/// tree starting at leaf 0: `start` is a multiple of the smallest power of two not below
/// `end - start`. Then each set bit of `end - start`, from the highest, is one aligned
/// complete subtree, and the RFC's recursion folds them from the right.
fn range_hash<S: NodeStore>(s: &S, start: u64, end: u64) -> Result<Hash, MerkleError<S::Error>> {
    let n = end.saturating_sub(start);
    if n == 0 {
        return Ok(empty_root());
    }
    let mut peaks = Vec::with_capacity(n.count_ones() as usize);
    let mut pos = start;
    for level in (0..=MAX_LEVEL).rev() {
        let width = 1u64 << level;
        if n & width != 0 {
            // `level` <= 63, so the cast is lossless.
            peaks.push(get_node(s, level as u8, pos >> level)?);
            pos += width;
        }
    }
    let mut peaks = peaks.into_iter().rev();
    let mut acc = peaks.next().unwrap_or_else(empty_root);
    for left in peaks {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    fn h(hex: &str) -> Hash {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).unwrap();
        out
    }

    fn store_of(leaves: &[Hash]) -> MemStore {
        let mut s = MemStore::new();
        let mut size = 0;
        for leaf in leaves {
            size = append(&mut s, size, *leaf).unwrap();
        }
        assert_eq!(size, leaves.len() as u64);
        s
    }

    // Known answers from the certificate-transparency project: the C++ reference tree in
    // google/certificate-transparency `cpp/merkletree/merkle_tree_test.cc` (kInputs,
    // kSHA256Roots, kSHA256Paths, kSHA256Proofs, 1-based leaf numbers there), as also
    // carried by transparency-dev/merkle `proof/verify_test.go`, which adds the 6 -> 7
    // consistency proof. Leaf indices below are 0-based (RFC 9162).
    const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    /// (leaf index, tree size, audit path)
    const INCLUSION: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    /// (old size, new size, consistency proof)
    const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn vector_leaves() -> Vec<Hash> {
        LEAVES
            .iter()
            .map(|l| leaf_hash(&hex::decode(l).unwrap()))
            .collect()
    }

    fn hashes(hex: &[&str]) -> Vec<Hash> {
        hex.iter().map(|x| h(x)).collect()
    }

    /// The RFC 6962 / RFC 9162 definitions, recursively, over a list of leaf hashes.
    /// MTH results are memoised per range, which leaves the recursion as the RFC's.
    struct Reference {
        leaves: Vec<Hash>,
        memo: RefCell<HashMap<(usize, usize), Hash>>,
    }

    impl Reference {
        fn new(leaves: Vec<Hash>) -> Self {
            Self {
                leaves,
                memo: RefCell::new(HashMap::new()),
            }
        }

        /// Largest power of two smaller than n (n >= 2).
        fn k(n: usize) -> usize {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            k
        }

        /// MTH(D[lo:hi]).
        fn mth(&self, lo: usize, hi: usize) -> Hash {
            if let Some(x) = self.memo.borrow().get(&(lo, hi)) {
                return *x;
            }
            let out = match hi - lo {
                0 => digest(b""),
                1 => self.leaves[lo],
                n => {
                    let k = Self::k(n);
                    node_hash(&self.mth(lo, lo + k), &self.mth(lo + k, hi))
                }
            };
            self.memo.borrow_mut().insert((lo, hi), out);
            out
        }

        /// PATH(m, D[lo:hi]), m relative to lo.
        fn path(&self, m: usize, lo: usize, hi: usize) -> Vec<Hash> {
            let n = hi - lo;
            if n <= 1 {
                return Vec::new();
            }
            let k = Self::k(n);
            if m < k {
                let mut p = self.path(m, lo, lo + k);
                p.push(self.mth(lo + k, hi));
                p
            } else {
                let mut p = self.path(m - k, lo + k, hi);
                p.push(self.mth(lo, lo + k));
                p
            }
        }

        /// PROOF(m, D[0:n]) for 0 < m <= n.
        fn proof(&self, m: usize, n: usize) -> Vec<Hash> {
            self.subproof(m, 0, n, true)
        }

        fn subproof(&self, m: usize, lo: usize, hi: usize, b: bool) -> Vec<Hash> {
            let n = hi - lo;
            if m == n {
                return if b {
                    Vec::new()
                } else {
                    vec![self.mth(lo, hi)]
                };
            }
            let k = Self::k(n);
            if m <= k {
                let mut p = self.subproof(m, lo, lo + k, b);
                p.push(self.mth(lo + k, hi));
                p
            } else {
                let mut p = self.subproof(m - k, lo + k, hi, false);
                p.push(self.mth(lo, lo + k));
                p
            }
        }
    }

    /// A store wrapper that records every read.
    struct Recording<'a, S = MemStore> {
        inner: &'a S,
        reads: RefCell<Vec<(u8, u64)>>,
    }

    impl<'a, S> Recording<'a, S> {
        fn new(inner: &'a S) -> Self {
            Self {
                inner,
                reads: RefCell::new(Vec::new()),
            }
        }

        fn take(&self) -> Vec<(u8, u64)> {
            std::mem::take(&mut *self.reads.borrow_mut())
        }
    }

    impl<S: NodeStore<Error = Infallible>> NodeStore for Recording<'_, S> {
        type Error = Infallible;

        fn get(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
            self.reads.borrow_mut().push((level, index));
            self.inner.get(level, index)
        }

        fn put(&mut self, _: u8, _: u64, _: Hash) -> Result<(), Infallible> {
            unreachable!("read-only")
        }
    }

    /// A read-only store that holds a real tree of any size up to `u64::MAX` leaves,
    /// to exercise sizes no test could append: every leaf is the same except the
    /// `special` ones, so a subtree without a special leaf has a hash that depends on its
    /// level only, and the others are computed from their children.
    struct Synthetic {
        size: u64,
        special: Vec<u64>,
        uniform: Vec<Hash>,
    }

    impl Synthetic {
        fn new(size: u64, special: Vec<u64>) -> Self {
            let mut uniform = vec![leaf_hash(b"uniform")];
            for level in 1..64 {
                uniform.push(node_hash(&uniform[level - 1], &uniform[level - 1]));
            }
            Self {
                size,
                special,
                uniform,
            }
        }

        fn subtree(&self, level: u8, index: u64) -> Hash {
            let lo = u128::from(index) << level;
            let hi = (u128::from(index) + 1) << level;
            if !self
                .special
                .iter()
                .any(|&x| lo <= u128::from(x) && u128::from(x) < hi)
            {
                return self.uniform[usize::from(level)];
            }
            if level == 0 {
                return leaf_hash(&index.to_be_bytes());
            }
            node_hash(
                &self.subtree(level - 1, 2 * index),
                &self.subtree(level - 1, 2 * index + 1),
            )
        }
    }

    impl NodeStore for Synthetic {
        type Error = Infallible;

        fn get(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
            assert!(level <= 63);
            let end = (u128::from(index) + 1) << level;
            Ok((end <= u128::from(self.size)).then(|| self.subtree(level, index)))
        }

        fn put(&mut self, _: u8, _: u64, _: Hash) -> Result<(), Infallible> {
            unreachable!("read-only")
        }
    }

    #[test]
    fn hashes_follow_rfc6962() {
        assert_eq!(empty_root(), h(EMPTY_ROOT));
        assert_eq!(root(&MemStore::new(), 0).unwrap(), h(EMPTY_ROOT));
        assert_eq!(leaf_hash(b""), h(ROOTS[0]));
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut cat = vec![1u8];
        cat.extend_from_slice(&a);
        cat.extend_from_slice(&b);
        assert_eq!(node_hash(&a, &b), digest(&cat));
        assert_eq!(leaf_hash(b"ab"), digest(b"\x00ab"));
    }

    #[test]
    fn reference_roots() {
        let leaves = vector_leaves();
        // Built leaf by leaf: every root along the way.
        let mut s = MemStore::new();
        for (i, leaf) in leaves.iter().enumerate() {
            let size = append(&mut s, i as u64, *leaf).unwrap();
            assert_eq!(root(&s, size).unwrap(), h(ROOTS[i]), "size {size}");
        }
        // The full store answers for every earlier size.
        for (i, r) in ROOTS.iter().enumerate() {
            assert_eq!(root(&s, i as u64 + 1).unwrap(), h(r));
        }
        assert_eq!(root(&s, 0).unwrap(), h(EMPTY_ROOT));
        assert_eq!(
            root(&s, 9),
            Err(MerkleError::Missing { level: 0, index: 8 })
        );
    }

    #[test]
    fn reference_inclusion_proofs() {
        let leaves = vector_leaves();
        let s = store_of(&leaves);
        for (index, size, path) in INCLUSION {
            let want = hashes(path);
            assert_eq!(
                inclusion_proof(&s, index, size).unwrap(),
                want,
                "{index}/{size}"
            );
            let leaf = leaves[index as usize];
            let root = h(ROOTS[size as usize - 1]);
            verify_inclusion(&leaf, index, size, &want, &root).unwrap();
            check_inclusion_probes(&leaf, index, size, &want, &root);
            // Every bit of every hash.
            for i in 0..want.len() {
                for bit in 0..256 {
                    let mut bad = want.clone();
                    bad[i][bit / 8] ^= 1 << (bit % 8);
                    assert_eq!(
                        verify_inclusion(&leaf, index, size, &bad, &root),
                        Err(ProofError::RootMismatch)
                    );
                }
            }
        }
    }

    #[test]
    fn reference_consistency_proofs() {
        let s = store_of(&vector_leaves());
        for (old, new, proof) in CONSISTENCY {
            let want = hashes(proof);
            assert_eq!(
                consistency_proof(&s, old, new).unwrap(),
                want,
                "{old}->{new}"
            );
            let old_root = h(ROOTS[old as usize - 1]);
            let new_root = h(ROOTS[new as usize - 1]);
            verify_consistency(old, new, &old_root, &new_root, &want).unwrap();
            check_consistency_probes(old, new, &old_root, &new_root, &want);
            for i in 0..want.len() {
                for bit in 0..256 {
                    let mut bad = want.clone();
                    bad[i][bit / 8] ^= 1 << (bit % 8);
                    assert!(verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
                }
            }
        }
    }

    /// The corruptions of a valid inclusion proof that must all fail.
    fn check_inclusion_probes(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) {
        let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
        let fails = |l: &Hash, i: u64, n: u64, p: &[Hash], r: &Hash, what: &str| {
            assert!(
                verify_inclusion(l, i, n, p, r).is_err(),
                "{what} verified: index {index} size {size}"
            );
        };
        fails(leaf, index.wrapping_sub(1), size, proof, root, "index - 1");
        fails(leaf, index + 1, size, proof, root, "index + 1");
        fails(leaf, index ^ 2, size, proof, root, "index ^ 2");
        if let Some(double) = size.checked_mul(2) {
            fails(leaf, index, double, proof, root, "size * 2");
        }
        fails(leaf, index, size / 2, proof, root, "size / 2");
        fails(
            &leaf_hash(b"WrongLeaf"),
            index,
            size,
            proof,
            root,
            "wrong leaf",
        );
        fails(leaf, index, size, proof, &empty_root(), "empty root");
        fails(leaf, index, size, proof, &some, "some root");
        let with = |front: bool, x: Hash| {
            let mut p = proof.to_vec();
            if front {
                p.insert(0, x)
            } else {
                p.push(x)
            }
            p
        };
        fails(
            leaf,
            index,
            size,
            &with(false, [0; 32]),
            root,
            "trailing zeros",
        );
        fails(
            leaf,
            index,
            size,
            &with(false, *root),
            root,
            "trailing root",
        );
        fails(
            leaf,
            index,
            size,
            &with(true, [0; 32]),
            root,
            "preceding zeros",
        );
        fails(
            leaf,
            index,
            size,
            &with(true, *root),
            root,
            "preceding root",
        );
        if let Some((_, shorter)) = proof.split_last() {
            fails(leaf, index, size, shorter, root, "truncated");
            let mut swapped = proof.to_vec();
            swapped[0] = some;
            fails(leaf, index, size, &swapped, root, "replaced hash");
        }
        for i in 0..proof.len() {
            let mut bad = proof.to_vec();
            bad[i][(i * 5 + (index % 32) as usize) % 32] ^= 1 << (i % 8);
            assert_eq!(
                verify_inclusion(leaf, index, size, &bad, root),
                Err(ProofError::RootMismatch)
            );
        }
    }

    /// The corruptions of a valid consistency proof that must all fail.
    fn check_consistency_probes(old: u64, new: u64, r1: &Hash, r2: &Hash, proof: &[Hash]) {
        let wrong = h("abacaba000000000000000000000000000000000000000000060061e00123456");
        let fails = |m: u64, n: u64, a: &Hash, b: &Hash, p: &[Hash], what: &str| {
            assert!(
                verify_consistency(m, n, a, b, p).is_err(),
                "{what} verified: {old} -> {new}"
            );
        };
        fails(old, new, &wrong, r2, proof, "wrong old root");
        if old != 0 {
            // Any tree extends the empty one, whatever its root.
            fails(old, new, r1, &wrong, proof, "wrong new root");
        }
        if proof.is_empty() {
            // Trivial proofs (old = new or old = 0): only extending can break them.
            fails(old, new, r1, r2, &[*r1], "extended trivial proof");
            return;
        }
        fails(old - 1, new, r1, r2, proof, "old - 1");
        fails(old + 1, new, r1, r2, proof, "old + 1");
        fails(old ^ 2, new, r1, r2, proof, "old ^ 2");
        if let Some(double) = new.checked_mul(2) {
            fails(old, double, r1, r2, proof, "new * 2");
        }
        fails(old, new / 2, r1, r2, proof, "new / 2");
        fails(old, new, r2, r1, proof, "swapped roots");
        fails(old, new, r1, r2, &[], "empty proof");
        let with = |front: bool, x: Hash| {
            let mut p = proof.to_vec();
            if front {
                p.insert(0, x)
            } else {
                p.push(x)
            }
            p
        };
        for (x, what) in [
            ([0; 32], "zeros"),
            (*r1, "old root"),
            (*r2, "new root"),
            (proof[0], "proof[0]"),
        ] {
            fails(old, new, r1, r2, &with(false, x), what);
            fails(old, new, r1, r2, &with(true, x), what);
        }
        if let Some((_, shorter)) = proof.split_last() {
            fails(old, new, r1, r2, shorter, "truncated");
        }
        fails(old, new, r1, r2, &proof[1..], "front removed");
        for i in 0..proof.len() {
            let mut bad = proof.to_vec();
            bad[i][(i * 3 + (old % 32) as usize) % 32] ^= 1 << ((i + 4) % 8);
            fails(old, new, r1, r2, &bad, "flipped bit");
        }
    }

    fn numbered_leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn matches_reference_for_every_small_tree() {
        const N: u64 = 130;
        let leaves = numbered_leaves(N);
        let reference = Reference::new(leaves.clone());
        let mut s = MemStore::new();
        for size in 0..=N {
            if size > 0 {
                append(&mut s, size - 1, leaves[size as usize - 1]).unwrap();
            }
            let rec = Recording::new(&s);
            let r = root(&rec, size).unwrap();
            assert_eq!(r, reference.mth(0, size as usize), "root of {size}");
            assert_eq!(rec.take().len(), size.count_ones() as usize);
            for index in 0..size {
                let proof = inclusion_proof(&rec, index, size).unwrap();
                let reads = rec.take().len();
                assert_eq!(proof, reference.path(index as usize, 0, size as usize));
                assert!(
                    reads <= proof.len() + size.count_ones() as usize,
                    "{reads} reads"
                );
                assert_eq!(inclusion_proof_len(index, size), Some(proof.len()));
                let leaf = &leaves[index as usize];
                verify_inclusion(leaf, index, size, &proof, &r).unwrap();
                // The corruptions for every pair of the smaller trees, then a sample
                // (hashing is slow in unoptimised test builds).
                if size <= 64 || (size + index) % 5 == 0 {
                    check_inclusion_probes(leaf, index, size, &proof, &r);
                }
            }
            assert!(matches!(
                inclusion_proof(&s, size, size),
                Err(MerkleError::OutOfRange { .. })
            ));
            assert_eq!(
                verify_inclusion(&leaves[0], size, size, &[], &r),
                Err(ProofError::IndexOutOfRange { index: size, size })
            );
            for old in 0..=size {
                let proof = consistency_proof(&rec, old, size).unwrap();
                let reads = rec.take().len();
                let want = if old == 0 {
                    Vec::new()
                } else {
                    reference.proof(old as usize, size as usize)
                };
                assert_eq!(proof, want, "{old} -> {size}");
                assert!(
                    reads <= proof.len() + size.count_ones() as usize,
                    "{reads} reads"
                );
                assert_eq!(consistency_proof_len(old, size), Some(proof.len()));
                let old_root = reference.mth(0, old as usize);
                verify_consistency(old, size, &old_root, &r, &proof).unwrap();
                if size <= 64 || (size + old) % 5 == 0 {
                    check_consistency_probes(old, size, &old_root, &r, &proof);
                }
            }
            assert!(matches!(
                consistency_proof(&s, size + 1, size),
                Err(MerkleError::OutOfRange { .. })
            ));
        }
    }

    #[test]
    fn every_bit_of_every_small_proof() {
        let leaves = numbered_leaves(9);
        let s = store_of(&leaves);
        for size in 1..=9u64 {
            let r = root(&s, size).unwrap();
            for index in 0..size {
                let proof = inclusion_proof(&s, index, size).unwrap();
                for i in 0..proof.len() {
                    for bit in 0..256 {
                        let mut bad = proof.clone();
                        bad[i][bit / 8] ^= 1 << (bit % 8);
                        let leaf = &leaves[index as usize];
                        assert!(verify_inclusion(leaf, index, size, &bad, &r).is_err());
                    }
                }
            }
            for old in 1..size {
                let old_root = root(&s, old).unwrap();
                let proof = consistency_proof(&s, old, size).unwrap();
                for i in 0..proof.len() {
                    for bit in 0..256 {
                        let mut bad = proof.clone();
                        bad[i][bit / 8] ^= 1 << (bit % 8);
                        assert!(verify_consistency(old, size, &old_root, &r, &bad).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn trivial_consistency() {
        let e = empty_root();
        let x = leaf_hash(b"x");
        let y = leaf_hash(b"y");
        assert_eq!(verify_consistency(0, 0, &e, &e, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 5, &e, &x, &[]), Ok(()));
        assert_eq!(verify_consistency(3, 3, &x, &x, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 5, &x, &x, &[]),
            Err(ProofError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 0, &x, &x, &[]),
            Err(ProofError::OldRootMismatch)
        );
        assert_eq!(
            verify_consistency(0, 0, &e, &x, &[]),
            Err(ProofError::NewRootMismatch)
        );
        assert_eq!(
            verify_consistency(3, 3, &x, &y, &[]),
            Err(ProofError::NewRootMismatch)
        );
        assert_eq!(
            verify_consistency(3, 3, &x, &x, &[x]),
            Err(ProofError::WrongLength {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            verify_consistency(0, 4, &e, &x, &[x]),
            Err(ProofError::WrongLength {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            verify_consistency(4, 3, &x, &x, &[]),
            Err(ProofError::SizesOutOfOrder {
                old_size: 4,
                new_size: 3
            })
        );
        assert_eq!(
            verify_consistency(1, 2, &x, &y, &[]),
            Err(ProofError::WrongLength {
                expected: 1,
                got: 0
            })
        );
        assert_eq!(
            verify_inclusion(&x, 0, 0, &[], &e),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(verify_inclusion(&x, 0, 1, &[], &x), Ok(()));
        assert_eq!(
            verify_inclusion(&x, 0, 1, &[], &y),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_inclusion(&x, 0, 1, &[x], &x),
            Err(ProofError::WrongLength {
                expected: 0,
                got: 1
            })
        );
        // Generation agrees on the trivial cases.
        let s = store_of(&numbered_leaves(3));
        assert_eq!(consistency_proof(&s, 0, 3).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(&s, 3, 3).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(&s, 0, 0).unwrap(), Vec::<Hash>::new());
        assert_eq!(inclusion_proof(&s, 0, 1).unwrap(), Vec::<Hash>::new());
        assert!(matches!(
            inclusion_proof(&s, 0, 0),
            Err(MerkleError::OutOfRange { .. })
        ));
    }

    #[test]
    fn missing_node_is_an_error_never_a_wrong_answer() {
        const N: u64 = 100;
        let full = store_of(&numbered_leaves(N));
        let roots: Vec<Hash> = (0..=N).map(|n| root(&full, n).unwrap()).collect();
        const SIZES: [u64; 2] = [N, 77];
        let paths: Vec<Vec<Vec<Hash>>> = SIZES
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|i| inclusion_proof(&full, i, n).unwrap())
                    .collect()
            })
            .collect();
        let proofs: Vec<Vec<Vec<Hash>>> = SIZES
            .iter()
            .map(|&n| {
                (0..=n)
                    .map(|m| consistency_proof(&full, m, n).unwrap())
                    .collect()
            })
            .collect();
        let mut keys: Vec<(u8, u64)> = full.keys().collect();
        keys.sort_unstable();
        assert_eq!(keys.len(), 100 + 50 + 25 + 12 + 6 + 3 + 1);
        for (level, index) in keys {
            let mut damaged = full.clone();
            damaged.remove(level, index);
            let missing = MerkleError::Missing { level, index };
            let rec = Recording::new(&damaged);
            let mut seen_missing = false;
            let mut check =
                |got: Result<Vec<Hash>, MerkleError<Infallible>>,
                 want: Result<Vec<Hash>, MerkleError<Infallible>>| {
                    let read_it = rec.take().contains(&(level, index));
                    if read_it {
                        assert_eq!(got, Err(missing.clone()));
                        seen_missing = true;
                    } else {
                        assert_eq!(got, want);
                    }
                };
            for size in 0..=N {
                check(
                    root(&rec, size).map(|r| vec![r]),
                    Ok(vec![roots[size as usize]]),
                );
            }
            for (k, size) in SIZES.into_iter().enumerate() {
                for i in 0..size {
                    check(
                        inclusion_proof(&rec, i, size),
                        Ok(paths[k][i as usize].clone()),
                    );
                }
                for old in 0..=size {
                    check(
                        consistency_proof(&rec, old, size),
                        Ok(proofs[k][old as usize].clone()),
                    );
                }
            }
            assert!(seen_missing, "({level}, {index}) was never needed");
        }
        // A size beyond the stored tree is missing data, not a guess.
        assert_eq!(
            root(&full, N + 1),
            Err(MerkleError::Missing { level: 0, index: N })
        );
        assert_eq!(
            inclusion_proof(&full, 0, N + 1),
            Err(MerkleError::Missing { level: 0, index: N })
        );
        assert_eq!(
            consistency_proof(&full, 3, N + 1),
            Err(MerkleError::Missing { level: 0, index: N })
        );
    }

    #[test]
    fn append_checks_the_store() {
        // A left sibling is missing: nothing is written.
        let mut s = MemStore::new();
        assert_eq!(
            append(&mut s, 5, leaf_hash(b"x")),
            Err(MerkleError::Missing { level: 0, index: 4 })
        );
        assert!(s.is_empty());
        // A size behind the store's would overwrite the log.
        let mut s = store_of(&numbered_leaves(5));
        let before = s.clone();
        assert_eq!(
            append(&mut s, 3, leaf_hash(b"x")),
            Err(MerkleError::Occupied { index: 3 })
        );
        assert_eq!(s, before);
        // A tree of u64::MAX leaves cannot grow.
        assert!(matches!(
            append(&mut MemStore::new(), u64::MAX, leaf_hash(b"x")),
            Err(MerkleError::OutOfRange { .. })
        ));
        // Each append stores the leaf plus one node per subtree it completes.
        let mut s = MemStore::new();
        for size in 0..64u64 {
            let before = s.len();
            append(&mut s, size, leaf_hash(&size.to_be_bytes())).unwrap();
            assert_eq!(s.len() - before, size.trailing_ones() as usize + 1);
        }
    }

    #[test]
    fn huge_sizes_stay_logarithmic_and_verify() {
        let sizes = [
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
            (1 << 63) + 1,
            (1 << 63) - 1,
            (1 << 40) + 12345,
            0x5555_5555_5555_5555,
        ];
        for size in sizes {
            let indices = [0, 1, size / 3, size / 2, size - 2, size - 1];
            let olds = [1, 2, 3, size / 3, size / 2, size - 1, size];
            let mut special: Vec<u64> = indices.iter().chain(&olds).copied().collect();
            for x in special.clone() {
                special.extend([x.saturating_sub(1), x.saturating_add(1), x ^ 2]);
            }
            let s = Synthetic::new(size, special);
            let rec = Recording::new(&s);
            let r = root(&rec, size).unwrap();
            assert_eq!(rec.take().len(), size.count_ones() as usize);
            for index in indices {
                let proof = inclusion_proof(&rec, index, size).unwrap();
                assert!(proof.len() <= 2 * 64);
                assert!(rec.take().len() <= proof.len() + size.count_ones() as usize);
                let leaf = s.get(0, index).unwrap().unwrap();
                verify_inclusion(&leaf, index, size, &proof, &r).unwrap();
                check_inclusion_probes(&leaf, index, size, &proof, &r);
            }
            for old in olds {
                let proof = consistency_proof(&rec, old, size).unwrap();
                assert!(rec.take().len() <= proof.len() + size.count_ones() as usize);
                let old_root = root(&s, old).unwrap();
                verify_consistency(old, size, &old_root, &r, &proof).unwrap();
                check_consistency_probes(old, size, &old_root, &r, &proof);
            }
        }
    }

    #[test]
    fn verifiers_survive_edge_values() {
        let edges = [
            0,
            1,
            2,
            3,
            (1 << 63) - 1,
            1 << 63,
            (1 << 63) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        let x = leaf_hash(b"x");
        for a in edges {
            for b in edges {
                for len in [0, 1, 2, 63, 64, 65, 127, 128, 129] {
                    let proof = vec![x; len];
                    let _ = verify_inclusion(&x, a, b, &proof, &x);
                    let _ = verify_consistency(a, b, &x, &x, &proof);
                }
                if let Some(len) = inclusion_proof_len(a, b) {
                    assert!(len <= 128);
                    assert!(verify_inclusion(&x, a, b, &vec![x; len], &x).is_err() || b == 1);
                }
                if let Some(len) = consistency_proof_len(a, b) {
                    assert!(len <= 129);
                }
            }
        }
    }

    fn big_tree() -> &'static (Vec<Hash>, MemStore) {
        static TREE: OnceLock<(Vec<Hash>, MemStore)> = OnceLock::new();
        TREE.get_or_init(|| {
            let leaves = numbered_leaves(4096);
            let s = store_of(&leaves);
            (leaves, s)
        })
    }

    fn size_strategy() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            0..300u64,
            Just(u64::MAX),
            (0..64u32).prop_map(|b| 1u64 << b),
            (1..64u32).prop_map(|b| (1u64 << b) - 1),
            (0..64u32).prop_map(|b| (1u64 << b).wrapping_add(1)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_sizes_match_reference(size in 1..=4096u64, a in any::<u64>(), b in any::<u64>()) {
            let (leaves, s) = big_tree();
            let reference = Reference::new(leaves[..size as usize].to_vec());
            let r = root(s, size).unwrap();
            prop_assert_eq!(r, reference.mth(0, size as usize));

            let index = a % size;
            let proof = inclusion_proof(s, index, size).unwrap();
            prop_assert_eq!(&proof, &reference.path(index as usize, 0, size as usize));
            verify_inclusion(&leaves[index as usize], index, size, &proof, &r).unwrap();

            let old = 1 + b % size;
            let proof = consistency_proof(s, old, size).unwrap();
            prop_assert_eq!(&proof, &reference.proof(old as usize, size as usize));
            let old_root = reference.mth(0, old as usize);
            verify_consistency(old, size, &old_root, &r, &proof).unwrap();
            check_consistency_probes(old, size, &old_root, &r, &proof);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_proofs_never_panic(
            a in size_strategy(),
            b in size_strategy(),
            proof in prop::collection::vec(any::<[u8; 32]>(), 0..140),
            leaf in any::<[u8; 32]>(),
            r1 in any::<[u8; 32]>(),
            r2 in any::<[u8; 32]>(),
        ) {
            let _ = verify_inclusion(&leaf, a, b, &proof, &r1);
            let _ = verify_consistency(a, b, &r1, &r2, &proof);
            // Random hashes of exactly the right length reach the hashing loops.
            if let Some(len) = inclusion_proof_len(a, b) {
                let p: Vec<Hash> = proof.iter().copied().cycle().take(len).collect();
                if p.len() == len {
                    let _ = verify_inclusion(&leaf, a, b, &p, &r1);
                }
            }
            if let Some(len) = consistency_proof_len(a, b) {
                let p: Vec<Hash> = proof.iter().copied().cycle().take(len).collect();
                if p.len() == len {
                    let _ = verify_consistency(a, b, &r1, &r2, &p);
                }
            }
        }
    }
}
