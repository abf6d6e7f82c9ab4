//! Validated domain types shared by every crate: identifiers, enums and the entry
//! content model that the API, import, screening and record building all speak.
//!
//! Every constructor validates, so a value of these types is known to be well formed;
//! wire decoding (`crate::wire`) and JSON/TOML parsing both go through these checks.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{Date, PartialDate};

/// Why a value was refused; `field` names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    /// Dotted path of the field, e.g. `subject.identifiers[2].type`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InvalidValue {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the field path with `parent`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

fn show(s: &str) -> String {
    let mut out: String = s.chars().take(48).collect();
    if s.chars().count() > 48 {
        out.push('…');
    }
    format!("{out:?}")
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, InvalidValue> {
                let s = s.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&s) {
                    Ok(()) => Ok(Self(s)),
                    Err(why) => Err(InvalidValue::new($what, format!("{} is not valid: {why}", show(&s)))),
                }
            }

            /// Checks `s` without allocating.
            pub fn check(s: &str) -> Result<(), InvalidValue> {
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(s).map_err(|why| InvalidValue::new($what, format!("{} is not valid: {why}", show(s))))
            }

            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::string_schema(concat!("A valid ", $what, " value"))
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(|e| serde::de::Error::custom(e.message))
            }
        }
    };
}

fn check_agency(s: &str) -> Result<(), &'static str> {
    if !(2..=32).contains(&s.len()) {
        return Err("must be 2 to 32 characters");
    }
    if s.split('-').any(|part| {
        part.is_empty()
            || !part
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    }) {
        return Err("use upper-case letters and digits in dash-separated parts, e.g. DE-BAFA");
    }
    Ok(())
}

fn check_label(s: &str) -> Result<(), &'static str> {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit() => {}
        _ => return Err("must start with a lower-case letter or digit"),
    }
    if s.len() > 32 {
        return Err("must be at most 32 characters");
    }
    if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
        return Err("use lower-case letters, digits, '-' and '_'");
    }
    Ok(())
}

fn check_country(s: &str) -> Result<(), &'static str> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err("must be an ISO 3166-1 alpha-2 code in upper case, e.g. DE")
    }
}

fn check_category(s: &str) -> Result<(), &'static str> {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_uppercase() || b.is_ascii_digit() => {}
        _ => return Err("must start with an upper-case letter or digit"),
    }
    if s.len() > 16 {
        return Err("must be at most 16 characters");
    }
    if !bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return Err("use upper-case letters, digits, '.' and '-', e.g. 3A001");
    }
    Ok(())
}

string_newtype!(
    /// A roster agency code such as `DE-BAFA`.
    AgencyCode,
    "agency",
    check_agency
);
string_newtype!(
    /// A sharing-group name such as `eu` or `wassenaar`.
    GroupName,
    "group",
    check_label
);
string_newtype!(
    /// A sensitivity label such as `public`; its order comes from the roster.
    Sensitivity,
    "sensitivity",
    check_label
);
string_newtype!(
    /// An ISO 3166-1 alpha-2 country code.
    CountryCode,
    "country",
    check_country
);
string_newtype!(
    /// A control-list category such as `3A001` or `ML1`.
    Category,
    "category",
    check_category
);

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps a byte slice of exactly the right length.
            pub fn from_slice(b: &[u8]) -> Result<Self, InvalidValue> {
                <[u8; $len]>::try_from(b).map(Self).map_err(|_| {
                    InvalidValue::new(
                        stringify!($name),
                        format!("must be {} bytes, got {}", $len, b.len()),
                    )
                })
            }

            /// Parses lower- or upper-case hex.
            pub fn from_hex(s: &str) -> Result<Self, InvalidValue> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out).map_err(|_| {
                    InvalidValue::new(
                        stringify!($name),
                        format!("{} is not {} hex characters", show(s), $len * 2),
                    )
                })?;
                Ok(Self(out))
            }

            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                Self::from_hex(s)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::string_schema(concat!($len, " bytes in lower-case hex"))
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::from_hex(&s).map_err(|e| serde::de::Error::custom(e.message))
            }
        }
    };
}

byte_id!(
    /// 16 random bytes naming one watchlist entry across all its versions.
    EntryId,
    16
);
byte_id!(
    /// SHA-256 of a record's signed header bytes.
    RecordId,
    32
);

byte_id!(
    /// 16 random bytes naming one sealed agency-to-agency message (its receipt names
    /// it too).
    MessageId,
    16
);

impl MessageId {
    /// A fresh random message id.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b)?;
        Ok(Self(b))
    }
}

impl EntryId {
    /// A fresh random entry id.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b)?;
        Ok(Self(b))
    }
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $num:literal => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every variant, in wire order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The protobuf enum number.
            pub fn to_wire(self) -> i32 {
                match self { $(Self::$variant => $num),+ }
            }

            /// From the protobuf enum number; 0 (unspecified) and unknown values fail.
            pub fn from_wire(n: i32) -> Result<Self, InvalidValue> {
                match n {
                    $($num => Ok(Self::$variant),)+
                    other => Err(InvalidValue::new(
                        stringify!($name),
                        format!("unknown or unspecified enum value {other}"),
                    )),
                }
            }

            /// The name used in JSON, TOML and the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::enum_schema(&[$($text),+])
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(InvalidValue::new(
                        stringify!($name),
                        format!(
                            "{} is not one of: {}",
                            show(other),
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(|e: InvalidValue| serde::de::Error::custom(e.message))
            }
        }
    };
}

wire_enum!(
    /// What an entry's origin asks of an agency that hits it (entry JSON `on_hit`),
    /// signed in the record header.
    OnHit {
        /// Send the origin a sealed hit report (`wlnode hit report`).
        Notify = 1 => "notify",
    }
);

/// Reads the entry JSON's `on_hit`, naming the field in an error (`deserialize_with`
/// for every reader of entry JSON).
pub fn on_hit_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OnHit>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| {
            s.parse::<OnHit>()
                .map_err(|e| serde::de::Error::custom(format!("on_hit: {}", e.message)))
        })
        .transpose()
}

wire_enum!(
    /// Whether a record lists or delists its entry.
    Status {
        /// The entry is listed.
        Active = 1 => "active",
        /// The entry is delisted; the record is kept and replicated.
        Withdrawn = 2 => "withdrawn",
    }
);

wire_enum!(
    /// How far a record may travel, set by the origin.
    Scope {
        /// Never leaves the origin.
        Origin = 1 => "origin",
        /// Only the origin's direct peers; no relay.
        Neighbors = 2 => "neighbors",
        /// Only members of the listed groups.
        Groups = 3 => "groups",
        /// Every member of the federation.
        Federation = 4 => "federation",
    }
);

wire_enum!(
    /// Why the subject is listed.
    Reason {
        /// Export licence denial.
        Denial = 1 => "denial",
        /// Risk of diversion to an unauthorised end use.
        DiversionRisk = 2 => "diversion-risk",
        /// Sanctions designation.
        Sanctions = 3 => "sanctions",
        /// Suspected WMD end use.
        WmdEndUse = 4 => "wmd-end-use",
        /// Anything else.
        Other = 5 => "other",
    }
);

wire_enum!(
    /// What kind of subject an entry lists.
    SubjectKind {
        /// A natural person.
        Person = 1 => "person",
        /// A company or other organisation.
        Organization = 2 => "organization",
        /// A ship.
        Vessel = 3 => "vessel",
    }
);

wire_enum!(
    /// The kind of a content field; its number is the tag byte in the digest preimage.
    FieldTag {
        /// Primary name (exactly one, always first).
        Name = 1 => "name",
        /// An alias.
        Alias = 2 => "aliases",
        /// An address.
        Address = 3 => "addresses",
        /// An identifier `type:value`.
        Identifier = 4 => "identifiers",
        /// Birth or incorporation date.
        BirthDate = 5 => "birth_date",
        /// Nationality (alpha-2).
        Nationality = 6 => "nationality",
        /// Legal basis of the listing.
        LegalBasis = 7 => "legal_basis",
        /// Description of the items concerned.
        Items = 8 => "items",
        /// Free-text remarks.
        Remarks = 9 => "remarks",
        /// Consultation contact.
        Contact = 10 => "contact",
        /// Why the entry was withdrawn.
        WithdrawalReason = 11 => "withdrawal_reason",
    }
);

impl FieldTag {
    /// The one-byte tag inside the digest preimage.
    pub fn tag_byte(self) -> u8 {
        u8::try_from(self.to_wire()).unwrap_or(0)
    }

    /// Whether the field may appear more than once in a record.
    pub fn repeatable(self) -> bool {
        matches!(self, Self::Alias | Self::Address | Self::Identifier)
    }
}

/// Set by the origin and signed with the record; relays can only narrow it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// How far the record may travel.
    pub scope: Scope,
    /// Sharing groups for `scope = groups` (sorted, unique).
    #[serde(default)]
    pub groups: BTreeSet<GroupName>,
    /// Relay limit in hops from the origin; 0 means no limit.
    #[serde(default)]
    pub max_hops: u32,
    /// Sensitivity label from the roster.
    #[serde(default = "default_sensitivity")]
    pub sensitivity: Sensitivity,
    /// Field scopes: these fields only to these agencies or groups, at every hop. A
    /// field not named here follows the rest of the distribution.
    #[serde(default, skip_serializing_if = "FieldScopes::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: FieldScopes,
}

/// Most field scopes one record may carry.
pub const MAX_FIELD_SCOPES: usize = 32;
/// Most recipients one field scope may name.
pub const MAX_SCOPE_RECIPIENTS: usize = 64;

/// Who may receive a scoped field: one agency, or every member of a sharing group
/// (`group:NAME`). Orders as its text does (agency codes are upper case, so they sort
/// before every `group:`), which is the canonical order on the wire.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Recipient {
    /// One agency.
    Agency(AgencyCode),
    /// Every member of a sharing group.
    Group(GroupName),
}

impl Recipient {
    /// Whether `agency`, a member of the groups `in_group` says, is this recipient.
    pub fn admits(&self, agency: &AgencyCode, in_group: impl Fn(&GroupName) -> bool) -> bool {
        match self {
            Self::Agency(a) => a == agency,
            Self::Group(g) => in_group(g),
        }
    }
}

impl FromStr for Recipient {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s.strip_prefix("group:") {
            Some(g) => GroupName::new(g).map(Self::Group),
            None => AgencyCode::new(s).map(Self::Agency).map_err(|_| {
                InvalidValue::new(
                    "recipient",
                    format!("{} is neither an agency code nor group:NAME", show(s)),
                )
            }),
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agency(a) => f.write_str(a.as_str()),
            Self::Group(g) => write!(f, "group:{g}"),
        }
    }
}

/// One field scope, signed by the origin: the fields `field` selects go only to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldScope {
    /// The fields (a name `withhold` accepts, including `identifiers.TYPE`).
    pub field: crate::record::FieldSelector,
    /// Who may receive them (none: they never leave the origin).
    pub to: BTreeSet<Recipient>,
}

impl FieldScope {
    /// Whether `agency` may receive the fields this scope selects.
    pub fn admits(&self, agency: &AgencyCode, in_group: impl Fn(&GroupName) -> bool) -> bool {
        self.to.iter().any(|r| r.admits(agency, &in_group))
    }
}

/// The field scopes of a distribution, sorted by the field's name (the canonical
/// order), each field once. In entry JSON an object from field name to recipients:
/// `{"identifiers": ["group:eu"], "birth_date": ["BB-CUSTOMS"]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FieldScopes(Vec<FieldScope>);

impl FieldScopes {
    /// Builds the scopes from (field, recipients) pairs in any order; a field named
    /// twice, or too many scopes or recipients, is an error.
    pub fn new(scopes: impl IntoIterator<Item = FieldScope>) -> Result<Self, InvalidValue> {
        let mut v: Vec<FieldScope> = scopes.into_iter().collect();
        v.sort_by_cached_key(|s| s.field.to_string());
        let out = Self(v);
        out.validate()?;
        Ok(out)
    }

    /// Builds the scopes from a list already in canonical order (the wire decoders):
    /// sorted by field name and unique, or an error.
    pub fn from_sorted(scopes: Vec<FieldScope>) -> Result<Self, InvalidValue> {
        let out = Self(scopes);
        out.validate()?;
        Ok(out)
    }

    /// No scopes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, in canonical order.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldScope> {
        self.0.iter()
    }

    /// Checks order, uniqueness and the limits.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.0.len() > MAX_FIELD_SCOPES {
            return Err(InvalidValue::new(
                "distribution.fields",
                format!("at most {MAX_FIELD_SCOPES} field scopes"),
            ));
        }
        let mut last: Option<String> = None;
        for s in &self.0 {
            let name = s.field.to_string();
            if last.as_ref().is_some_and(|l| *l >= name) {
                return Err(InvalidValue::new(
                    "distribution.fields",
                    format!("{name:?} is named twice, or the scopes are out of order"),
                ));
            }
            if s.to.len() > MAX_SCOPE_RECIPIENTS {
                return Err(InvalidValue::new(
                    format!("distribution.fields.{name}"),
                    format!("at most {MAX_SCOPE_RECIPIENTS} recipients"),
                ));
            }
            last = Some(name);
        }
        Ok(())
    }

    /// The selectors of the scopes that do not admit `agency`: what must be withheld
    /// from a copy for it, whatever the share rules say.
    pub fn withheld_from(
        &self,
        agency: &AgencyCode,
        in_group: impl Fn(&GroupName) -> bool,
    ) -> Vec<crate::record::FieldSelector> {
        self.0
            .iter()
            .filter(|s| !s.admits(agency, &in_group))
            .map(|s| s.field.clone())
            .collect()
    }

    /// Whether `agency` may receive the field `tag` with `value` (every scope that
    /// selects it must admit the agency).
    pub fn admits_field(
        &self,
        tag: FieldTag,
        value: &str,
        agency: &AgencyCode,
        in_group: impl Fn(&GroupName) -> bool,
    ) -> bool {
        self.0
            .iter()
            .filter(|s| s.field.matches(tag, value))
            .all(|s| s.admits(agency, &in_group))
    }
}

impl Serialize for FieldScopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for scope in &self.0 {
            let to: Vec<String> = scope.to.iter().map(ToString::to_string).collect();
            m.serialize_entry(&scope.field.to_string(), &to)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for FieldScopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        /// The object's entries in order, so that a field named twice is an error,
        /// not silently the last one (a typo must not widen a scope).
        struct Entries(Vec<(String, Vec<String>)>);
        impl<'de> Deserialize<'de> for Entries {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Entries;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("an object from field name to a list of recipients")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut m: A,
                    ) -> Result<Entries, A::Error> {
                        let mut out: Vec<(String, Vec<String>)> = Vec::new();
                        while let Some((k, v)) = m.next_entry::<String, Vec<String>>()? {
                            if out.iter().any(|(f, _)| *f == k) {
                                return Err(A::Error::custom(format!(
                                    "field {k:?} is named twice"
                                )));
                            }
                            if out.len() >= MAX_FIELD_SCOPES {
                                return Err(A::Error::custom(format!(
                                    "at most {MAX_FIELD_SCOPES} field scopes"
                                )));
                            }
                            out.push((k, v));
                        }
                        Ok(Entries(out))
                    }
                }
                d.deserialize_map(V)
            }
        }
        let raw = Entries::deserialize(d)?.0;
        let mut scopes = Vec::with_capacity(raw.len());
        for (field, to) in raw {
            let sel: crate::record::FieldSelector = field
                .parse()
                .map_err(|e: InvalidValue| D::Error::custom(e.message))?;
            let mut set = BTreeSet::new();
            for r in to {
                let rec: Recipient = r
                    .parse()
                    .map_err(|e: InvalidValue| D::Error::custom(e.message))?;
                if !set.insert(rec) {
                    return Err(D::Error::custom(format!("{field}: {r:?} is listed twice")));
                }
            }
            scopes.push(FieldScope {
                field: sel,
                to: set,
            });
        }
        Self::new(scopes).map_err(|e| D::Error::custom(e.message))
    }
}

fn default_sensitivity() -> Sensitivity {
    Sensitivity("restricted".to_owned())
}

impl Distribution {
    /// Checks the rules the signed header relies on.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        match (self.scope, self.groups.is_empty()) {
            (Scope::Groups, true) => Err(InvalidValue::new(
                "distribution.groups",
                "scope \"groups\" needs at least one group",
            )),
            (Scope::Groups, false) => Ok(()),
            (_, false) => Err(InvalidValue::new(
                "distribution.groups",
                format!(
                    "groups are only allowed with scope \"groups\", not {:?}",
                    self.scope.as_str()
                ),
            )),
            (_, true) => Ok(()),
        }?;
        self.fields.validate()
    }

    /// Federation-wide, `restricted`, no hop limit, no field scopes.
    pub fn federation() -> Self {
        Self {
            scope: Scope::Federation,
            groups: BTreeSet::new(),
            max_hops: 0,
            sensitivity: default_sensitivity(),
            fields: FieldScopes::default(),
        }
    }
}

/// A typed identifier such as a passport number or an IMO number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    /// Lower-case type: `passport`, `national_id`, `registration`, `imo`, `lei`, `tax_id`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The identifier as written by the origin.
    pub value: String,
}

impl Identifier {
    /// Validates the type label and value.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        check_label(&self.kind).map_err(|why| {
            InvalidValue::new("type", format!("{} is not valid: {why}", show(&self.kind)))
        })?;
        check_text(&self.value, MAX_SHORT_TEXT).map_err(|e| e.within("value"))?;
        if self.value.contains(':') && self.kind.is_empty() {
            return Err(InvalidValue::new("value", "missing type"));
        }
        Ok(())
    }

    /// The canonical `type:value` form committed in records.
    pub fn canonical(&self) -> String {
        format!("{}:{}", self.kind, self.value.trim())
    }

    /// Checks the canonical `type:value` form without allocating.
    pub fn check_canonical(s: &str) -> Result<(), InvalidValue> {
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| InvalidValue::new("identifier", "expected TYPE:VALUE"))?;
        check_label(kind).map_err(|why| {
            InvalidValue::new("type", format!("{} is not valid: {why}", show(kind)))
        })?;
        check_text(value, MAX_SHORT_TEXT).map_err(|e| e.within("value"))
    }

    /// Parses the canonical `type:value` form.
    pub fn parse_canonical(s: &str) -> Result<Self, InvalidValue> {
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| InvalidValue::new("identifier", "expected TYPE:VALUE"))?;
        let id = Self {
            kind: kind.to_owned(),
            value: value.to_owned(),
        };
        id.validate()?;
        Ok(id)
    }
}

/// Longest value of a name, alias, identifier or other short field, in bytes.
pub const MAX_SHORT_TEXT: usize = 512;
/// Longest value of a free-text field (remarks, items, legal basis), in bytes.
pub const MAX_LONG_TEXT: usize = 8192;

/// Checks a text value: non-empty after trimming, no control characters except
/// newline and tab, at most `max` bytes.
pub fn check_text(s: &str, max: usize) -> Result<(), InvalidValue> {
    if s.trim().is_empty() {
        return Err(InvalidValue::new("", "must not be empty"));
    }
    if s.len() > max {
        return Err(InvalidValue::new(
            "",
            format!("must be at most {max} bytes, got {}", s.len()),
        ));
    }
    // For ASCII, `char::is_control` is exactly `is_ascii_control`; bytes are cheaper.
    let control = if s.is_ascii() {
        s.bytes()
            .any(|b| b.is_ascii_control() && b != b'\n' && b != b'\t')
    } else {
        s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
    };
    if control {
        return Err(InvalidValue::new("", "must not contain control characters"));
    }
    Ok(())
}

/// The subject of an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Person, organisation or vessel.
    pub kind: SubjectKind,
    /// Primary name.
    pub name: String,
    /// Other names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Country the subject is associated with (clear metadata in the header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    /// Addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Passport, registration, IMO, LEI and other identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<Identifier>,
    /// Birth or incorporation date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<PartialDate>,
    /// Nationality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<CountryCode>,
}

/// The content of one version of an entry as an agency writes it (the entry JSON of
/// the API and of `wlnode entry add`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EntryDraft {
    /// Who or what is listed.
    pub subject: Subject,
    /// Why.
    pub reason: Reason,
    /// Control-list categories.
    #[serde(default)]
    pub categories: BTreeSet<Category>,
    /// Legal basis of the listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// Items concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<String>,
    /// Free-text remarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    /// Consultation contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Who may receive it.
    #[serde(default = "Distribution::federation")]
    pub distribution: Distribution,
    /// Date after which the entry is flagged for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_by: Option<Date>,
    /// What the origin asks of an agency that hits the entry: `"notify"` (send a hit
    /// report); absent for nothing. Signed in the record header.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "on_hit_field"
    )]
    pub on_hit: Option<OnHit>,
}

/// Most content fields one record may carry.
pub const MAX_FIELDS: usize = 256;

impl EntryDraft {
    /// Validates every field, naming the first offending one.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        let s = &self.subject;
        check_text(&s.name, MAX_SHORT_TEXT).map_err(|e| e.within("subject.name"))?;
        for (i, a) in s.aliases.iter().enumerate() {
            check_text(a, MAX_SHORT_TEXT)
                .map_err(|e| e.within(&format!("subject.aliases[{i}]")))?;
        }
        for (i, a) in s.addresses.iter().enumerate() {
            check_text(a, MAX_LONG_TEXT)
                .map_err(|e| e.within(&format!("subject.addresses[{i}]")))?;
        }
        for (i, id) in s.identifiers.iter().enumerate() {
            id.validate()
                .map_err(|e| e.within(&format!("subject.identifiers[{i}]")))?;
        }
        for (name, v) in [
            ("legal_basis", &self.legal_basis),
            ("items", &self.items),
            ("remarks", &self.remarks),
            ("contact", &self.contact),
        ] {
            if let Some(v) = v {
                check_text(v, MAX_LONG_TEXT).map_err(|e| e.within(name))?;
            }
        }
        self.distribution.validate()?;
        let n = self.fields_count();
        if n > MAX_FIELDS {
            return Err(InvalidValue::new(
                "subject",
                format!("an entry may carry at most {MAX_FIELDS} fields, this one has {n}"),
            ));
        }
        Ok(())
    }

    fn fields_count(&self) -> usize {
        let s = &self.subject;
        1 + s.aliases.len()
            + s.addresses.len()
            + s.identifiers.len()
            + usize::from(s.birth_date.is_some())
            + usize::from(s.nationality.is_some())
            + [&self.legal_basis, &self.items, &self.remarks, &self.contact]
                .iter()
                .filter(|v| v.is_some())
                .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_codes() {
        assert!(AgencyCode::new("DE-BAFA").is_ok());
        assert!(AgencyCode::new("AA-EXPORT").is_ok());
        assert!(AgencyCode::new("de-bafa").is_err());
        assert!(AgencyCode::new("DE--BAFA").is_err());
        assert!(AgencyCode::new("-DE").is_err());
        assert!(AgencyCode::new("D").is_err());
    }

    #[test]
    fn enums_round_trip_names_and_numbers() {
        for s in Scope::ALL {
            assert_eq!(Scope::from_wire(s.to_wire()).unwrap(), *s);
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), *s);
        }
        assert!(Scope::from_wire(0).is_err());
        assert!(FieldTag::from_wire(99).is_err());
    }

    #[test]
    fn draft_json_names_the_bad_field() {
        let json = r#"{"subject":{"kind":"person","name":"A B","identifiers":[{"type":"Passport","value":"X"}]},"reason":"denial"}"#;
        let d: EntryDraft = serde_json::from_str(json).unwrap();
        let err = d.validate().unwrap_err();
        assert_eq!(err.field, "subject.identifiers[0].type");
    }

    #[test]
    fn distribution_rules() {
        let mut d = Distribution::federation();
        assert!(d.validate().is_ok());
        d.groups.insert(GroupName::new("eu").unwrap());
        assert!(d.validate().is_err());
        d.scope = Scope::Groups;
        assert!(d.validate().is_ok());
    }
}
