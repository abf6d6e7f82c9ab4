//! The screening index: an incremental inverted index over normalised name tokens, and
//! candidate retrieval that never scans all names.
//!
//! ## Structure
//!
//! - A **vocabulary** of distinct normalised tokens. Each token has its consonant
//!   skeleton and a sorted **postings** list of the names containing it.
//! - Two indexes over the vocabulary (not over names, so they stay small): padded
//!   **trigrams** (`^ab`, `abc`, `bc$`) → tokens, and **skeleton** → tokens.
//! - **Names** (one slot per primary name or alias) hold their token ids and the name
//!   as listed; **entries** hold what adjustments need (country, nationality, birth
//!   date, normalised identifiers), the withdrawn flag and their name slots. An
//!   identifier map finds entries by normalised `type:VALUE`.
//! - An **initials** map: the packed initials of each organisation or vessel name of two
//!   or more tokens (alone, and followed by its legal form's) → name slots, so that an
//!   acronym query (`NIOC`) finds the names it abbreviates.
//!
//! `upsert` and `remove` update these in place (postings stay sorted; tokens whose last
//! name goes away leave the vocabulary); no rebuild happens.
//!
//! ## Search
//!
//! 1. Normalise the query; each query token (and each adjacent pair written together, and
//!    each token a listed name may write as two words)
//!    is **expanded** to vocabulary tokens: the equal token, tokens with the same
//!    skeleton, and tokens sharing enough trigrams, each kept only if
//!    [`super::score::token_similarity`] accepts it (at most 32 per query token).
//! 2. **Accumulate** `weight × similarity` per name over the expansions' postings,
//!    rarest query token first; once the two rarest tokens are in, further tokens are
//!    only accumulated while the postings read stay under [`POSTINGS_BUDGET`]
//!    (common tokens then only count in the scoring). Entries with a matching
//!    identifier join the candidates, and so do (at most [`CANDIDATES`]) names whose
//!    initials an acronym query spells.
//! 3. Keep the [`CANDIDATES`] best names (kind and withdrawn filters applied), score
//!    them fully ([`super::score`]), keep the best name per entry, sort, cut at
//!    `min_score` and `limit`, and explain the results.

use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::size_of;

use wlnode_crypto::model::{AgencyCode, CountryCode, EntryId, SubjectKind};
use wlnode_crypto::time::PartialDate;

use super::normalize::{
    NormName, abjad_readings, latin_skeletons, listed_form, listed_name, normalize, query_form,
    skeleton, token_weight,
};
use super::score::{self, EntryFacts, QueryFacts, Tok};
use super::{EntryKey, MAX_LIMIT, MAX_QUERY_CHARS, Match, Query, QueryError, ScreenDoc};

/// Names scored fully per query.
pub const CANDIDATES: usize = 64;
/// Postings read per query beyond the two rarest query tokens.
pub const POSTINGS_BUDGET: usize = 100_000;
/// Vocabulary tokens kept per query token.
const EXPANSIONS: usize = 32;
/// Trigram candidates verified per query token.
const TRIGRAM_VERIFY: usize = 100;
/// Tokens with the same skeleton verified per query token.
const SKELETON_VERIFY: usize = 256;

const NONE: u32 = u32::MAX;
/// Addresses of one entry that are matched against a query address.
const MAX_ADDRESSES: usize = 16;
const FLAG_LIVE: u8 = 1;
const FLAG_WITHDRAWN: u8 = 2;
const KIND_SHIFT: u8 = 2;

fn kind_bits(k: SubjectKind) -> u8 {
    match k {
        SubjectKind::Person => 1,
        SubjectKind::Organization => 2,
        SubjectKind::Vessel => 3,
    }
}

#[derive(Clone, Debug)]
struct Entry {
    entry_id: EntryId,
    origin: u16,
    kind: SubjectKind,
    withdrawn: bool,
    country: Option<[u8; 2]>,
    nationality: Option<[u8; 2]>,
    birth_date: Option<PartialDate>,
    identifiers: Box<[Box<str>]>,
    /// Each address as folded tokens (empty for most entries).
    addresses: Box<[Box<[Box<str>]>]>,
    names: Box<[u32]>,
    reason: Option<wlnode_crypto::model::Reason>,
    categories: Box<[wlnode_crypto::model::Category]>,
}

#[derive(Clone, Debug)]
struct Name {
    /// Entry slot, or `NONE` for a free slot.
    entry: u32,
    tokens: Box<[u32]>,
    original: Box<str>,
    /// How many of the last tokens are surnames ([`NormName::surnames`]).
    surnames: u8,
}

#[derive(Clone, Debug, Default)]
struct VocabToken {
    text: Box<str>,
    skel: Box<str>,
    weight: f32,
    /// Written vowel-less in a non-Latin script in at least one listed name
    /// ([`score::abjad_token`]).
    abjad: bool,
    /// A title written as a given name ([`score::title_token`]).
    title: bool,
    /// Sorted [`posting`]s of the names containing the token.
    postings: Vec<u64>,
}

/// A postings entry: the name slot in the high bits and the name's flags (live,
/// withdrawn, kind) and token count (capped at 15) in the low byte, so that filtering
/// and tie-breaking candidates need no lookup in another array.
fn posting(name: u32, flags: u8, len: usize) -> u64 {
    let len = u8::try_from(len.min(15)).unwrap_or(15);
    (u64::from(name) << 8) | u64::from(flags & 0x0F) | (u64::from(len) << 4)
}

fn posting_name(p: u64) -> u32 {
    u32::try_from(p >> 8).unwrap_or(NONE)
}

/// The in-memory screening index. See the module documentation.
#[derive(Debug, Default)]
pub struct ScreenIndex {
    entries: Vec<Option<Entry>>,
    free_entries: Vec<u32>,
    by_key: HashMap<(u16, EntryId), u32>,
    origins: Vec<AgencyCode>,
    origin_ix: HashMap<AgencyCode, u16>,
    names: Vec<Name>,
    /// Per name: live, withdrawn and kind bits.
    name_flags: Vec<u8>,
    free_names: Vec<u32>,
    vocab: Vec<VocabToken>,
    vocab_len: Vec<u8>,
    vocab_ix: HashMap<Box<str>, u32>,
    free_vocab: Vec<u32>,
    skel_ix: HashMap<Box<str>, Vec<u32>>,
    trigrams: Vec<Vec<u32>>,
    identifiers: HashMap<Box<str>, Vec<u32>>,
    /// Packed initials ([`initials_keys`]) → name slots of organisations and vessels.
    initials: HashMap<u64, Vec<u32>>,
    live: usize,
}

const TRIGRAM_BASE: usize = 37;
const TRIGRAM_SLOTS: usize = TRIGRAM_BASE * TRIGRAM_BASE * TRIGRAM_BASE;

fn gram_code(c: u8) -> usize {
    match c {
        b'a'..=b'z' => usize::from(c - b'a'),
        b'0'..=b'9' => 26 + usize::from(c - b'0'),
        _ => 36,
    }
}

/// Distinct padded trigram codes of a token.
fn trigram_codes(text: &str, out: &mut Vec<usize>) {
    out.clear();
    let bytes = text.as_bytes();
    let n = bytes.len() + 2;
    let at = |i: usize| -> u8 {
        if i == 0 || i + 1 == n {
            b'^'
        } else {
            bytes.get(i - 1).copied().unwrap_or(b'^')
        }
    };
    if n < 3 {
        return;
    }
    for i in 0..n - 2 {
        let code = (gram_code(at(i)) * TRIGRAM_BASE + gram_code(at(i + 1))) * TRIGRAM_BASE
            + gram_code(at(i + 2));
        out.push(code);
    }
    out.sort_unstable();
    out.dedup();
}

fn country_bytes(c: &Option<CountryCode>) -> Option<[u8; 2]> {
    c.as_ref()
        .and_then(|c| <[u8; 2]>::try_from(c.as_str().as_bytes()).ok())
}

fn country_str(c: &Option<[u8; 2]>) -> Option<&str> {
    c.as_ref().and_then(|b| std::str::from_utf8(b).ok())
}

/// A document with its names already normalised (the expensive part of indexing).
struct Prepared {
    doc: ScreenDoc,
    /// Each name as listed, its tokens, its [`initials_keys`] and how many of its last
    /// tokens are surnames.
    names: Vec<(String, Vec<PreparedToken>, Vec<u64>, u8)>,
}

/// A listed name's token and whether it was transliterated from another script.
type PreparedToken = (String, bool);

/// Letters packed five bits each (`a` = 1), so that keys of different lengths differ.
fn pack_letters(s: &str) -> Option<u64> {
    if !(score::ACRONYM_MIN_LETTERS..=score::ACRONYM_MAX_LETTERS).contains(&s.len()) {
        return None;
    }
    s.bytes().try_fold(0u64, |k, b| {
        b.is_ascii_lowercase()
            .then(|| (k << 5) | u64::from(b - b'a' + 1))
    })
}

/// The keys under which an acronym query finds a name of an organisation or vessel: the
/// initials of its tokens, and those followed by the initials of its legal form.
fn initials_keys(norm: &NormName, kind: SubjectKind) -> Vec<u64> {
    if kind == SubjectKind::Person || norm.tokens.len() < 2 {
        return Vec::new();
    }
    let initials: String = norm
        .tokens
        .iter()
        .filter_map(|t| t.text.chars().next())
        .collect();
    let legal = score::legal_initials(norm);
    let mut keys: Vec<u64> = pack_letters(&initials).into_iter().collect();
    if !legal.is_empty()
        && let Some(k) = pack_letters(&format!("{initials}{legal}"))
    {
        keys.push(k);
    }
    keys
}

fn prepare(mut doc: ScreenDoc) -> Prepared {
    let kind = doc.kind;
    let names = std::mem::take(&mut doc.names)
        .into_iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| {
            let norm = listed_name(&n, kind);
            let keys = initials_keys(&norm, kind);
            let surnames = u8::try_from(norm.surnames).unwrap_or(u8::MAX);
            let tokens = norm
                .tokens
                .into_iter()
                .map(|t| (t.text, t.transliterated))
                .collect();
            (n, tokens, keys, surnames)
        })
        .filter(|(_, toks, _, _): &(String, Vec<PreparedToken>, Vec<u64>, u8)| !toks.is_empty())
        .collect();
    Prepared { doc, names }
}

/// One slot of the accumulator table: a name slot and its summed weight (the name's
/// flags byte sits at the same index in [`Scratch::meta`]).
#[derive(Clone, Copy)]
struct Slot {
    key: u32,
    acc: f32,
}

const EMPTY: u32 = u32::MAX;

/// Per-thread scratch space for searches, reused across queries.
#[derive(Default)]
struct Scratch {
    /// Open-addressing table name → summed weight, sized to the postings read (it stays
    /// in cache, unlike an array over all names).
    table: Vec<Slot>,
    /// The low byte of each table slot's posting (flags and token count).
    meta: Vec<u8>,
    vcount: Vec<u16>,
    vtouched: Vec<u32>,
    codes: Vec<usize>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A query token (or an adjacent pair written together) and its vocabulary expansion.
struct Expanded {
    weight: f64,
    tokens: Vec<(u32, f64)>,
    postings: usize,
}

/// A scored candidate.
#[derive(Clone, Copy, Debug)]
struct Scored {
    score: f64,
    entry: u32,
    name: u32,
    len_diff: usize,
}

impl ScreenIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            trigrams: vec![Vec::new(); TRIGRAM_SLOTS],
            ..Self::default()
        }
    }

    /// Builds an index from many documents at once (node start). Names are normalised
    /// on all cores; later documents with the key of an earlier one replace it.
    pub fn build(docs: impl IntoIterator<Item = ScreenDoc>) -> Self {
        let mut index = Self::new();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let mut batch: Vec<ScreenDoc> = Vec::with_capacity(16_384);
        let mut iter = docs.into_iter();
        loop {
            batch.clear();
            batch.extend(iter.by_ref().take(16_384));
            if batch.is_empty() {
                break;
            }
            let prepared = prepare_parallel(std::mem::take(&mut batch), threads);
            for p in prepared {
                index.insert_prepared(p);
            }
        }
        index
    }

    /// Adds an entry or replaces every name and fact of the entry with the same key.
    pub fn upsert(&mut self, doc: ScreenDoc) {
        self.insert_prepared(prepare(doc));
    }

    /// Removes an entry; returns whether it was indexed.
    pub fn remove(&mut self, key: &EntryKey) -> bool {
        let Some(&origin) = self.origin_ix.get(&key.origin) else {
            return false;
        };
        let Some(slot) = self.by_key.remove(&(origin, key.entry_id)) else {
            return false;
        };
        self.clear_entry(slot);
        if let Some(e) = self.entries.get_mut(slot as usize) {
            *e = None;
        }
        self.free_entries.push(slot);
        self.live = self.live.saturating_sub(1);
        true
    }

    /// Entries indexed (withdrawn ones included).
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no entry is indexed.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Names (primary names and aliases) indexed.
    pub fn names_len(&self) -> usize {
        self.name_flags
            .iter()
            .filter(|f| *f & FLAG_LIVE != 0)
            .count()
    }

    /// Distinct tokens in the vocabulary.
    pub fn vocabulary_len(&self) -> usize {
        self.vocab_ix.len()
    }

    fn origin_index(&mut self, origin: &AgencyCode) -> u16 {
        if let Some(&i) = self.origin_ix.get(origin) {
            return i;
        }
        let i = u16::try_from(self.origins.len()).unwrap_or(u16::MAX);
        self.origins.push(origin.clone());
        self.origin_ix.insert(origin.clone(), i);
        i
    }

    fn insert_prepared(&mut self, p: Prepared) {
        if self.trigrams.is_empty() {
            self.trigrams = vec![Vec::new(); TRIGRAM_SLOTS];
        }
        let doc = p.doc;
        let origin = self.origin_index(&doc.origin);
        let key = (origin, doc.entry_id);
        let slot = match self.by_key.get(&key) {
            Some(&slot) => {
                self.clear_entry(slot);
                slot
            }
            None => {
                let slot = match self.free_entries.pop() {
                    Some(s) => s,
                    None => {
                        self.entries.push(None);
                        u32::try_from(self.entries.len() - 1).unwrap_or(NONE)
                    }
                };
                self.by_key.insert(key, slot);
                self.live += 1;
                slot
            }
        };
        let identifiers: Box<[Box<str>]> = doc
            .identifiers
            .iter()
            .map(score::normalize_identifier)
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .map(|(k, v)| format!("{k}:{v}").into_boxed_str())
            .collect();
        for id in identifiers.iter() {
            let list = self.identifiers.entry(id.clone()).or_default();
            if !list.contains(&slot) {
                list.push(slot);
            }
        }
        let flags = FLAG_LIVE
            | if doc.withdrawn { FLAG_WITHDRAWN } else { 0 }
            | (kind_bits(doc.kind) << KIND_SHIFT);
        let mut name_slots = Vec::with_capacity(p.names.len());
        for (original, tokens, keys, surnames) in p.names {
            let n = self.insert_name(slot, original, &tokens, flags, surnames);
            for k in keys {
                self.initials.entry(k).or_default().push(n);
            }
            name_slots.push(n);
        }
        let entry = Entry {
            entry_id: doc.entry_id,
            origin,
            kind: doc.kind,
            withdrawn: doc.withdrawn,
            reason: doc.reason,
            categories: doc.categories.clone().into_boxed_slice(),
            country: country_bytes(&doc.country),
            nationality: country_bytes(&doc.nationality),
            birth_date: doc.birth_date,
            identifiers,
            addresses: doc
                .addresses
                .iter()
                .take(MAX_ADDRESSES)
                // Empty ones stay, so "address N" in explanations counts as listed.
                .map(|a| crate::normalize::address_tokens(a).into_boxed_slice())
                .collect(),
            names: name_slots.into_boxed_slice(),
        };
        if let Some(e) = self.entries.get_mut(slot as usize) {
            *e = Some(entry);
        }
    }

    fn insert_name(
        &mut self,
        entry: u32,
        original: String,
        tokens: &[PreparedToken],
        flags: u8,
        surnames: u8,
    ) -> u32 {
        let slot = match self.free_names.pop() {
            Some(s) => s,
            None => {
                self.names.push(Name {
                    entry: NONE,
                    tokens: Box::new([]),
                    original: "".into(),
                    surnames: 0,
                });
                self.name_flags.push(0);
                u32::try_from(self.names.len() - 1).unwrap_or(NONE)
            }
        };
        let ids: Box<[u32]> = tokens
            .iter()
            .map(|(t, translit)| self.token_id(t, *translit))
            .collect();
        let mut distinct: Vec<u32> = ids.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let entry_posting = posting(slot, flags, ids.len());
        for t in distinct {
            if let Some(v) = self.vocab.get_mut(t as usize)
                && let Err(pos) = v.postings.binary_search_by_key(&slot, |p| posting_name(*p))
            {
                v.postings.insert(pos, entry_posting);
            }
        }
        let i = slot as usize;
        if let Some(f) = self.name_flags.get_mut(i) {
            *f = flags;
        }
        if let Some(n) = self.names.get_mut(i) {
            *n = Name {
                entry,
                tokens: ids,
                original: original.into_boxed_str(),
                surnames,
            };
        }
        slot
    }

    fn token_id(&mut self, text: &str, transliterated: bool) -> u32 {
        let abjad = score::abjad_token(text, transliterated);
        if let Some(&id) = self.vocab_ix.get(text) {
            if let Some(v) = self.vocab.get_mut(id as usize) {
                v.abjad |= abjad;
            }
            return id;
        }
        let skel = skeleton(text);
        let tok = VocabToken {
            text: text.into(),
            skel: skel.clone().into_boxed_str(),
            weight: token_weight(text) as f32,
            abjad,
            title: score::title_token(text),
            postings: Vec::new(),
        };
        let len = u8::try_from(text.len()).unwrap_or(u8::MAX);
        let id = match self.free_vocab.pop() {
            Some(id) => {
                if let Some(v) = self.vocab.get_mut(id as usize) {
                    *v = tok;
                }
                if let Some(l) = self.vocab_len.get_mut(id as usize) {
                    *l = len;
                }
                id
            }
            None => {
                self.vocab.push(tok);
                self.vocab_len.push(len);
                u32::try_from(self.vocab.len() - 1).unwrap_or(NONE)
            }
        };
        self.vocab_ix.insert(text.into(), id);
        self.skel_ix
            .entry(skel.into_boxed_str())
            .or_default()
            .push(id);
        let mut codes = Vec::new();
        trigram_codes(text, &mut codes);
        for c in codes {
            if let Some(list) = self.trigrams.get_mut(c) {
                list.push(id);
            }
        }
        id
    }

    fn drop_token(&mut self, id: u32) {
        let Some(v) = self.vocab.get_mut(id as usize) else {
            return;
        };
        let text = std::mem::take(&mut v.text);
        let skel = std::mem::take(&mut v.skel);
        v.postings = Vec::new();
        self.vocab_ix.remove(&text);
        if let Some(list) = self.skel_ix.get_mut(&skel) {
            list.retain(|&t| t != id);
            if list.is_empty() {
                self.skel_ix.remove(&skel);
            }
        }
        let mut codes = Vec::new();
        trigram_codes(&text, &mut codes);
        for c in codes {
            if let Some(list) = self.trigrams.get_mut(c)
                && let Some(pos) = list.iter().position(|&t| t == id)
            {
                list.swap_remove(pos);
            }
        }
        self.free_vocab.push(id);
    }

    /// Removes an entry's names and identifiers from the indexes (the slot stays).
    fn clear_entry(&mut self, slot: u32) {
        let Some(Some(entry)) = self.entries.get_mut(slot as usize) else {
            return;
        };
        let names = std::mem::take(&mut entry.names);
        let ids = std::mem::take(&mut entry.identifiers);
        for id in ids.iter() {
            if let Some(list) = self.identifiers.get_mut(id) {
                list.retain(|&e| e != slot);
                if list.is_empty() {
                    self.identifiers.remove(id);
                }
            }
        }
        let kind = entry.kind;
        for n in names.iter().copied() {
            let Some(name) = self.names.get_mut(n as usize) else {
                continue;
            };
            for k in initials_keys(&normalize(&name.original), kind) {
                if let Some(list) = self.initials.get_mut(&k) {
                    list.retain(|&x| x != n);
                    if list.is_empty() {
                        self.initials.remove(&k);
                    }
                }
            }
            let Some(name) = self.names.get_mut(n as usize) else {
                continue;
            };
            let mut toks = std::mem::take(&mut name.tokens).into_vec();
            name.original = "".into();
            name.entry = NONE;
            toks.sort_unstable();
            toks.dedup();
            for t in toks {
                let empty = match self.vocab.get_mut(t as usize) {
                    Some(v) => {
                        if let Ok(pos) = v.postings.binary_search_by_key(&n, |p| posting_name(*p)) {
                            v.postings.remove(pos);
                        }
                        v.postings.is_empty()
                    }
                    None => false,
                };
                if empty {
                    self.drop_token(t);
                }
            }
            if let Some(f) = self.name_flags.get_mut(n as usize) {
                *f = 0;
            }
            self.free_names.push(n);
        }
    }

    /// An estimate of the heap and inline memory the index holds, in bytes: every
    /// vector's and map's capacity times its element size (maps: key, value and one
    /// control byte per bucket) plus the strings' bytes. Allocator overhead (typically
    /// 8–16 bytes per allocation) is not included; the benchmark reports the process
    /// RSS growth next to it.
    pub fn memory_bytes(&self) -> usize {
        fn map<K, V>(m: &HashMap<K, V>) -> usize {
            m.capacity() * (size_of::<K>() + size_of::<V>() + 1)
        }
        let mut total = size_of::<Self>();
        total += self.entries.capacity() * size_of::<Option<Entry>>();
        for e in self.entries.iter().flatten() {
            total += e.names.len() * size_of::<u32>();
            total += e.identifiers.len() * size_of::<Box<str>>();
            total += e.identifiers.iter().map(|s| s.len()).sum::<usize>();
            for a in e.addresses.iter() {
                total += size_of::<Box<[Box<str>]>>() + a.len() * size_of::<Box<str>>();
                total += a.iter().map(|s| s.len()).sum::<usize>();
            }
        }
        total += self.free_entries.capacity() * size_of::<u32>();
        total += map(&self.by_key);
        total += self.origins.capacity() * size_of::<AgencyCode>();
        total += self.origins.iter().map(|o| o.as_str().len()).sum::<usize>() * 2;
        total += map(&self.origin_ix);
        total += self.names.capacity() * size_of::<Name>();
        for n in &self.names {
            total += n.tokens.len() * size_of::<u32>() + n.original.len();
        }
        total += self.name_flags.capacity();
        total += self.free_names.capacity() * size_of::<u32>();
        total += self.vocab.capacity() * size_of::<VocabToken>();
        for v in &self.vocab {
            total += v.text.len() + v.skel.len() + v.postings.capacity() * size_of::<u64>();
        }
        total += self.vocab_len.capacity();
        total += map(&self.vocab_ix) + self.vocab_ix.keys().map(|k| k.len()).sum::<usize>();
        total += self.free_vocab.capacity() * size_of::<u32>();
        total += map(&self.skel_ix);
        for (k, v) in &self.skel_ix {
            total += k.len() + v.capacity() * size_of::<u32>();
        }
        total += self.trigrams.capacity() * size_of::<Vec<u32>>();
        total += self
            .trigrams
            .iter()
            .map(|l| l.capacity() * size_of::<u32>())
            .sum::<usize>();
        total += map(&self.initials);
        for v in self.initials.values() {
            total += v.capacity() * size_of::<u32>();
        }
        total += map(&self.identifiers);
        for (k, v) in &self.identifiers {
            total += k.len() + v.capacity() * size_of::<u32>();
        }
        total
    }

    /// Screens a name. Results are sorted by score (best first), one per entry.
    pub fn search(&self, query: &Query) -> Result<Vec<Match>, QueryError> {
        let (norm, facts) = validate(query)?;
        let qskels: Vec<String> = norm.tokens.iter().map(|t| skeleton(&t.text)).collect();
        let qtoks: Vec<Tok<'_>> = norm
            .tokens
            .iter()
            .zip(&qskels)
            .zip(score::weights_in_name(&norm))
            .map(|((t, s), weight)| Tok {
                text: &t.text,
                skel: s,
                weight,
                abjad: score::abjad_token(&t.text, t.transliterated),
                title: score::title_token(&t.text),
            })
            .collect();
        let id_entries: Vec<u32> = match &facts.identifier {
            Some((k, v)) => self
                .identifiers
                .get(format!("{k}:{v}").as_str())
                .cloned()
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let acronym = score::acronym_query(&query.name, &norm);
        let by_initials: &[u32] = acronym
            .and_then(pack_letters)
            .and_then(|k| self.initials.get(&k))
            .map_or(&[], Vec::as_slice);
        let candidates = SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            self.candidates(&qtoks, &id_entries, by_initials, query, &mut s)
        });
        let mut scored: Vec<Scored> = Vec::with_capacity(candidates.len());
        for n in candidates {
            let Some(name) = self.names.get(n as usize) else {
                continue;
            };
            let Some(Some(entry)) = self.entries.get(name.entry as usize) else {
                continue;
            };
            // identifier hits join without the candidate pool: filter them here too
            if !query.filter.is_empty() && !self.entry_admitted(entry, &query.filter) {
                continue;
            }
            let mut ntoks: Vec<Tok<'_>> = name
                .tokens
                .iter()
                .filter_map(|&t| self.vocab.get(t as usize))
                .map(|v| Tok {
                    text: &v.text,
                    skel: &v.skel,
                    weight: f64::from(v.weight),
                    abjad: v.abjad,
                    title: v.title,
                })
                .collect();
            // the token after `abd` counts at most half (score::weight_in_name)
            for i in 1..ntoks.len() {
                if ntoks.get(i - 1).is_some_and(|p| p.text == "abd")
                    && let Some(t) = ntoks.get_mut(i)
                {
                    t.weight = t.weight.min(score::ABD_COMPOUND_WEIGHT);
                }
            }
            let mut al = score::align(
                &qtoks,
                &ntoks,
                score::middle_factor(entry.kind),
                usize::from(name.surnames),
            );
            if let Some(a) = acronym
                && let Some(acr) = score::acronym_alignment(
                    a,
                    &ntoks,
                    &score::legal_initials(&normalize(&listed_form(&name.original, entry.kind))),
                    entry.kind,
                )
                && acr.name_score() > al.name_score()
            {
                al = acr;
            }
            let s = score::quick_score(&al, &facts, entry_facts(entry));
            scored.push(Scored {
                score: s,
                entry: name.entry,
                name: n,
                len_diff: ntoks.len().abs_diff(qtoks.len()),
            });
        }
        // best name per entry
        scored.sort_by(|a, b| {
            a.entry
                .cmp(&b.entry)
                .then(b.score.total_cmp(&a.score))
                .then(a.len_diff.cmp(&b.len_diff))
                .then(a.name.cmp(&b.name))
        });
        scored.dedup_by_key(|s| s.entry);
        scored.retain(|s| s.score >= query.min_score);
        scored.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.len_diff.cmp(&b.len_diff))
                .then(a.entry.cmp(&b.entry))
        });
        scored.truncate(query.limit);
        let mut out = Vec::with_capacity(scored.len());
        for s in scored {
            let Some(name) = self.names.get(s.name as usize) else {
                continue;
            };
            let Some(Some(entry)) = self.entries.get(s.entry as usize) else {
                continue;
            };
            let listed = listed_name(&name.original, entry.kind);
            let explanation = score::explain(&norm, acronym, &listed, &facts, entry_facts(entry));
            let Some(origin) = self.origins.get(usize::from(entry.origin)) else {
                continue;
            };
            out.push(Match {
                entry_id: entry.entry_id,
                origin: origin.clone(),
                kind: entry.kind,
                withdrawn: entry.withdrawn,
                score: explanation.score,
                matched_name: name.original.to_string(),
                explanation,
            });
        }
        // the explained score is authoritative; keep the order consistent with it
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.retain(|m| m.score >= query.min_score);
        Ok(out)
    }

    /// Whether the entry of name slot `name` passes an officer's filter.
    fn name_admitted(&self, name: u32, f: &crate::HitFilter) -> bool {
        match self.names.get(name as usize) {
            Some(n) => match self.entries.get(n.entry as usize) {
                Some(Some(e)) => self.entry_admitted(e, f),
                _ => false,
            },
            None => false,
        }
    }

    fn entry_admitted(&self, e: &Entry, f: &crate::HitFilter) -> bool {
        self.origins
            .get(usize::from(e.origin))
            .is_some_and(|o| f.admits(o, &e.entry_id, e.reason, &e.categories))
    }

    /// Expands one query token to vocabulary tokens.
    fn expand(&self, q: Tok<'_>, s: &mut Scratch) -> Vec<(u32, f64)> {
        let mut out: Vec<(u32, f64)> = Vec::new();
        let consider = |id: u32, out: &mut Vec<(u32, f64)>| {
            if out.iter().any(|(t, _)| *t == id) {
                return;
            }
            if let Some(v) = self.vocab.get(id as usize) {
                let n = Tok {
                    text: &v.text,
                    skel: &v.skel,
                    weight: 1.0,
                    abjad: v.abjad,
                    title: v.title,
                };
                if let Some((sim, _)) = score::token_similarity(q, n) {
                    out.push((id, sim));
                }
            }
        };
        if let Some(&id) = self.vocab_ix.get(q.text) {
            out.push((id, 1.0));
        }
        if q.text.len() <= 1 {
            return out;
        }
        if let Some(list) = self.skel_ix.get(q.skel) {
            for &id in list.iter().take(SKELETON_VERIFY) {
                consider(id, &mut out);
            }
        }
        // French `ch` for `ش`, Egyptian `g` for `ج` (`Rachid` / `rshyd`), either way
        let mut other_skeletons = latin_skeletons(q.text);
        other_skeletons.extend(abjad_readings(q.text).iter().map(|t| skeleton(t)));
        for k in other_skeletons {
            if let Some(list) = self.skel_ix.get(k.as_str()) {
                for &id in list.iter().take(SKELETON_VERIFY) {
                    consider(id, &mut out);
                }
            }
        }
        // trigram neighbours; a token of 3 letters or fewer reaches the fuzzy floor only
        // against a longer token containing it (`ali`/`alia`), so it keeps its equal and
        // same-skeleton tokens (such pairs still score when another token finds the name)
        if q.text.len() <= 3 {
            return out;
        }
        if s.vcount.len() < self.vocab.len() {
            s.vcount.resize(self.vocab.len(), 0);
        }
        let mut codes = std::mem::take(&mut s.codes);
        trigram_codes(q.text, &mut codes);
        for &c in &codes {
            for &id in self.trigrams.get(c).map(Vec::as_slice).unwrap_or_default() {
                if let Some(slot) = s.vcount.get_mut(id as usize) {
                    if *slot == 0 {
                        s.vtouched.push(id);
                    }
                    *slot = slot.saturating_add(1);
                }
            }
        }
        let t = codes.len();
        s.codes = codes;
        let min_shared = if t <= 4 {
            1
        } else {
            (t - 4).min(t.div_ceil(3))
        };
        let ql = q.text.len();
        let mut hits: Vec<(u16, u32)> = Vec::new();
        for &id in &s.vtouched {
            let c = s.vcount.get(id as usize).copied().unwrap_or(0);
            let len = usize::from(self.vocab_len.get(id as usize).copied().unwrap_or(0));
            if usize::from(c) >= min_shared && len.abs_diff(ql) <= 3 {
                hits.push((c, id));
            }
        }
        for &id in &s.vtouched {
            if let Some(slot) = s.vcount.get_mut(id as usize) {
                *slot = 0;
            }
        }
        s.vtouched.clear();
        if hits.len() > TRIGRAM_VERIFY {
            hits.select_nth_unstable_by(TRIGRAM_VERIFY, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            hits.truncate(TRIGRAM_VERIFY);
        }
        for (_, id) in hits {
            consider(id, &mut out);
        }
        if out.len() > EXPANSIONS {
            out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            out.truncate(EXPANSIONS);
        }
        out
    }

    fn postings_len(&self, tokens: &[(u32, f64)]) -> usize {
        tokens
            .iter()
            .filter_map(|(t, _)| self.vocab.get(*t as usize))
            .map(|v| v.postings.len())
            .sum()
    }

    /// Candidate names for full scoring (at most [`CANDIDATES`] plus identifier hits).
    fn candidates(
        &self,
        qtoks: &[Tok<'_>],
        id_entries: &[u32],
        by_initials: &[u32],
        query: &Query,
        s: &mut Scratch,
    ) -> Vec<u32> {
        let mut groups: Vec<Expanded> = Vec::with_capacity(qtoks.len() + 2);
        // a title (`haji`, `sheikh`) never carries a match on its own, so it finds no
        // candidates unless the query is nothing else
        let all_titles = qtoks.iter().all(|q| q.title);
        for q in qtoks.iter().filter(|q| all_titles || !q.title) {
            let tokens = self.expand(*q, s);
            groups.push(Expanded {
                weight: q.weight,
                postings: self.postings_len(&tokens),
                tokens,
            });
        }
        // adjacent query tokens written together in a listed name
        for w in qtoks.windows(2) {
            if let [a, b] = w {
                let joined = format!("{}{}", a.text, b.text);
                let mut tokens = Vec::new();
                if let Some(&id) = self.vocab_ix.get(joined.as_str()) {
                    tokens.push((id, 1.0));
                }
                if !tokens.is_empty() {
                    groups.push(Expanded {
                        weight: a.weight + b.weight,
                        postings: self.postings_len(&tokens),
                        tokens,
                    });
                }
            }
        }
        // a query token that a listed name writes as two (`huaxin` / `Hua-xin`)
        for q in qtoks.iter().filter(|q| q.text.len() >= 4) {
            let mut found = 0;
            for cut in 2..q.text.len() - 1 {
                let (Some(a), Some(b)) = (q.text.get(..cut), q.text.get(cut..)) else {
                    continue;
                };
                if let (Some(&x), Some(&y)) = (self.vocab_ix.get(a), self.vocab_ix.get(b)) {
                    let tokens = vec![(x, 0.5), (y, 0.5)];
                    groups.push(Expanded {
                        weight: q.weight,
                        postings: self.postings_len(&tokens),
                        tokens,
                    });
                    found += 1;
                    if found == 2 {
                        break;
                    }
                }
            }
        }
        // a glued article on either side (`alnasir` / `al-Nasir`); the scorer only takes
        // it on a token that is not first in its name
        for (i, q) in qtoks.iter().enumerate() {
            let mut tokens = Vec::new();
            match score::glued_article(q.text) {
                Some(rest) if i > 0 => {
                    if let Some(&id) = self.vocab_ix.get(rest) {
                        tokens.push((id, 1.0));
                    }
                }
                Some(_) => {}
                None if q.text.len() >= 4 => {
                    for a in ["al", "el"] {
                        if let Some(&id) = self.vocab_ix.get(format!("{a}{}", q.text).as_str()) {
                            tokens.push((id, 1.0));
                        }
                    }
                }
                None => {}
            }
            if !tokens.is_empty() {
                groups.push(Expanded {
                    weight: q.weight,
                    postings: self.postings_len(&tokens),
                    tokens,
                });
            }
        }
        groups.sort_by_key(|g| g.postings);
        let mut read = 0usize;
        let mut used = 0usize;
        let mut chosen: Vec<&Expanded> = Vec::with_capacity(groups.len());
        for g in &groups {
            if g.tokens.is_empty() || (used >= 2 && read + g.postings > POSTINGS_BUDGET) {
                continue;
            }
            used += 1;
            read += g.postings;
            chosen.push(g);
        }
        let cap = (read * 2).next_power_of_two().max(1024);
        let shift = 64 - cap.trailing_zeros();
        let mask = cap - 1;
        s.table.clear();
        s.table.resize(
            cap,
            Slot {
                key: EMPTY,
                acc: 0.0,
            },
        );
        s.meta.clear();
        s.meta.resize(cap, 0);
        for g in chosen {
            for &(t, sim) in &g.tokens {
                let Some(v) = self.vocab.get(t as usize) else {
                    continue;
                };
                let add = (g.weight * sim) as f32;
                for &p in &v.postings {
                    let name = posting_name(p);
                    let mut h = usize::try_from(
                        u64::from(name).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift,
                    )
                    .unwrap_or(0);
                    // `cap` is at least twice the postings read, so a free slot exists
                    while let Some(slot) = s.table.get_mut(h) {
                        if slot.key == name {
                            slot.acc += add;
                            break;
                        }
                        if slot.key == EMPTY {
                            *slot = Slot {
                                key: name,
                                acc: add,
                            };
                            if let Some(m) = s.meta.get_mut(h) {
                                *m = (p & 0xFF) as u8;
                            }
                            break;
                        }
                        h = (h + 1) & mask;
                    }
                }
            }
        }
        let qlen = qtoks.len();
        let filtered_out_none = query.filter.is_empty();
        let kind = query.kind.map(kind_bits);
        let flags_ok = |f: u8| -> bool {
            f & FLAG_LIVE != 0
                && (query.include_withdrawn || f & FLAG_WITHDRAWN == 0)
                && kind.is_none_or(|k| ((f >> KIND_SHIFT) & 3) == k)
        };
        // names with less than a third of the best pre-score cannot compete for the
        // candidate places; leaving them out keeps the selection below cheap
        let best = s
            .table
            .iter()
            .filter(|slot| slot.key != EMPTY)
            .map(|slot| slot.acc)
            .fold(0.0f32, f32::max);
        let floor = best / 3.0;
        let mut pool: Vec<(f32, u32)> = Vec::with_capacity(CANDIDATES * 4);
        for (slot, &meta) in s.table.iter().zip(s.meta.iter()) {
            if slot.key != EMPTY
                && slot.acc >= floor
                && flags_ok(meta & 0x0F)
                && (filtered_out_none || self.name_admitted(slot.key, &query.filter))
            {
                let len = usize::from(meta >> 4);
                pool.push((slot.acc - 0.01 * len.abs_diff(qlen) as f32, slot.key));
            }
        }
        let ok = |n: u32| flags_ok(self.name_flags.get(n as usize).copied().unwrap_or(0));
        let order = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if pool.len() > CANDIDATES {
            pool.select_nth_unstable_by(CANDIDATES, order);
            pool.truncate(CANDIDATES);
        }
        let mut out: Vec<u32> = pool.into_iter().map(|(_, n)| n).collect();
        // names whose initials an acronym query spells (bounded like the pool)
        for &n in by_initials.iter().take(CANDIDATES) {
            if ok(n)
                && (filtered_out_none || self.name_admitted(n, &query.filter))
                && !out.contains(&n)
            {
                out.push(n);
            }
        }
        for &e in id_entries {
            if let Some(Some(entry)) = self.entries.get(e as usize) {
                for &n in entry.names.iter() {
                    if ok(n) && !out.contains(&n) {
                        out.push(n);
                    }
                }
            }
        }
        out
    }
}

fn entry_facts(e: &Entry) -> EntryFacts<'_> {
    EntryFacts {
        kind: e.kind,
        country: country_str(&e.country),
        nationality: country_str(&e.nationality),
        birth_date: e.birth_date,
        identifiers: &e.identifiers,
        addresses: &e.addresses,
    }
}

/// Checks a query and normalises its name.
fn validate(query: &Query) -> Result<(NormName, QueryFacts), QueryError> {
    if query.name.trim().is_empty() {
        return Err(QueryError::EmptyName);
    }
    let chars = query.name.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(QueryError::NameTooLong {
            chars,
            max: MAX_QUERY_CHARS,
        });
    }
    if query.limit == 0 || query.limit > MAX_LIMIT {
        return Err(QueryError::InvalidLimit {
            limit: query.limit,
            max: MAX_LIMIT,
        });
    }
    if !(0.0..=1.0).contains(&query.min_score) {
        return Err(QueryError::InvalidMinScore(query.min_score));
    }
    let identifier = match &query.identifier {
        Some(id) => {
            let (k, v) = score::normalize_identifier(id);
            if k.is_empty() || v.is_empty() {
                return Err(QueryError::InvalidIdentifier);
            }
            Some((k, v))
        }
        None => None,
    };
    let address = query
        .address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    if let Some(a) = address {
        let chars = a.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(QueryError::AddressTooLong {
                chars,
                max: MAX_QUERY_CHARS,
            });
        }
    }
    let norm = normalize(&query_form(&query.name));
    if norm.tokens.is_empty() {
        return Err(QueryError::NothingToMatch {
            name: query.name.chars().take(64).collect(),
        });
    }
    Ok((
        norm,
        QueryFacts {
            country: query.country.clone(),
            birth_date: query.birth_date,
            identifier,
            address: address
                .map(crate::normalize::address_tokens)
                .filter(|t| !t.is_empty()),
        },
    ))
}

fn prepare_parallel(docs: Vec<ScreenDoc>, threads: usize) -> Vec<Prepared> {
    if threads <= 1 || docs.len() < 1024 {
        return docs.into_iter().map(prepare).collect();
    }
    let chunk = docs.len().div_ceil(threads);
    let mut chunks: Vec<Vec<ScreenDoc>> = Vec::with_capacity(threads);
    let mut rest = docs;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || c.into_iter().map(prepare).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                // a panicking normaliser is a bug: surface it rather than lose entries
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_are_padded_and_distinct() {
        let mut c = Vec::new();
        trigram_codes("aaaa", &mut c);
        assert_eq!(c.len(), 3); // ^aa, aaa, aa$
        trigram_codes("a", &mut c);
        assert_eq!(c.len(), 1);
        trigram_codes("", &mut c);
        assert!(c.is_empty());
    }

    #[test]
    fn index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ScreenIndex>();
    }
}
