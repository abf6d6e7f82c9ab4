//! FollowTheMoney (FtM) entities out of wlnode entries: the one mapping that the
//! yente-compatible API (`/match`, `/search`, `/entities`) and `wlnode export --format
//! ftm` share, so that a screening tool sees the same entity whichever way it asks.
//!
//! An entry becomes:
//! - its subject: a `Person`, a `Company` (an organisation) or a `Vessel`, with the disclosed names,
//!   country, nationality (a vessel's flag), birth, incorporation or build date,
//!   addresses and identifiers. Withheld fields are absent, as they are from the entry.
//!   `publisher` names the origin agency, `program` carries the legal basis, `notes` the
//!   remarks, and `topics` the listing reason (`export.control`, `export.risk`,
//!   `sanction`).
//! - a `Sanction` whose `entity` is the subject: `authority` is the origin agency,
//!   `authorityId` the entry id, `reason` the listing reason, `program` the legal basis,
//!   `provisions` the control-list categories, `description` the items, `status`
//!   active or withdrawn (with the withdrawal reason in `summary`).
//! - one relationship per linked party that the entry names in an identifier of type
//!   [`LINK_TYPES`]: `owned_by` and `owner_of` become `Ownership` where FtM's model
//!   allows it (see [`link_entities`]), `front_for` and `linked_to` an `UnknownLink`
//!   with its role. The other party is the entry the value names (`ORIGIN/ENTRYID`, an
//!   entry id, or an entity id from this mapping) when this node holds it, and
//!   otherwise an entity of its own with the value as its name.
//!
//! Entity ids are `wl-<origin in lower case>-<entry id>`, plus a suffix for the
//! sanction (`-sanction`) and for links (`-link-N`, `-party-N`). Datasets follow yente's
//! naming: `default` is everything the node holds, each origin agency is a dataset named
//! by its code in lower case (`de-bafa`), and each sharing group a dataset
//! `group_<name>` (agency codes never contain `_`, so the two never collide).
//!
//! The consultation contact and the review date are the agencies' own working data and
//! are not mapped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{AgencyCode, EntryId, Identifier, Reason, Scope, Status, SubjectKind};
use wlnode_crypto::time::Timestamp;
use wlnode_runtime::entries::EntryView;

/// Identifier types that name a linked party instead of identifying the subject.
pub const LINK_TYPES: &[&str] = &["owned_by", "owner_of", "front_for", "linked_to"];

/// The id prefix of every entity this mapping makes.
const ID_PREFIX: &str = "wl-";

/// One value of an FtM property: text, or (in `/entities` answers) a nested entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    /// A plain value.
    Text(String),
    /// An adjacent entity, nested as yente nests them.
    Entity(Box<FtmEntity>),
}

/// An FtM entity in yente's response shape (`EntityResponse`), which is also the
/// line format of FtM JSON exports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FtmEntity {
    /// Entity id.
    pub id: String,
    /// Display name.
    pub caption: String,
    /// FtM schema name.
    pub schema: String,
    /// Property values by FtM property name.
    pub properties: BTreeMap<String, Vec<PropValue>>,
    /// Datasets the entity belongs to.
    pub datasets: Vec<String>,
    /// Other ids of the same entity (none: wlnode ids are stable).
    pub referents: Vec<String>,
    /// Whether the entity is a listed subject (an active entry).
    pub target: bool,
    /// When the entity was first seen: not kept by wlnode, so never set (yente allows
    /// it absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// When this node last saw it (the head's arrival, `YYYY-MM-DDTHH:MM:SS` UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// When the origin last changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change: Option<String>,
}

impl FtmEntity {
    fn new(id: String, schema: &str, caption: String) -> Self {
        Self {
            id,
            caption,
            schema: schema.to_owned(),
            properties: BTreeMap::new(),
            datasets: Vec::new(),
            referents: Vec::new(),
            target: false,
            first_seen: None,
            last_seen: None,
            last_change: None,
        }
    }

    /// Adds a text value (empty values and repeats are skipped).
    pub fn add(&mut self, prop: &str, value: impl Into<String>) {
        let value = value.into();
        if value.trim().is_empty() {
            return;
        }
        let list = self.properties.entry(prop.to_owned()).or_default();
        if !list
            .iter()
            .any(|v| matches!(v, PropValue::Text(t) if *t == value))
        {
            list.push(PropValue::Text(value));
        }
    }

    /// The text values of a property.
    pub fn texts<'a>(&'a self, prop: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.properties
            .get(prop)
            .into_iter()
            .flatten()
            .filter_map(|v| match v {
                PropValue::Text(t) => Some(t.as_str()),
                PropValue::Entity(_) => None,
            })
    }
}

/// The entity id of an entry's subject.
pub fn entity_id(origin: &AgencyCode, entry: EntryId) -> String {
    format!(
        "{ID_PREFIX}{}-{}",
        origin.as_str().to_ascii_lowercase(),
        entry.to_hex()
    )
}

/// The origin and entry id an entity id of this mapping names, for the subject or any
/// of its sanction and link entities. `None` for anything else.
pub fn parse_entity_id(id: &str) -> Option<(AgencyCode, EntryId)> {
    let rest = id.strip_prefix(ID_PREFIX)?;
    // The origin has dashes of its own: the entry id is the first 32-hex part after it.
    let mut parts = rest.split('-');
    let mut origin = Vec::new();
    for part in parts.by_ref() {
        if part.len() == 32 && part.bytes().all(|b| b.is_ascii_hexdigit()) && !origin.is_empty() {
            let entry = EntryId::from_hex(part).ok()?;
            let code = AgencyCode::new(origin.join("-").to_ascii_uppercase()).ok()?;
            return Some((code, entry));
        }
        origin.push(part);
    }
    None
}

/// The dataset named after an origin agency.
pub fn agency_dataset(origin: &AgencyCode) -> String {
    origin.as_str().to_ascii_lowercase()
}

/// The dataset named after a sharing group.
pub fn group_dataset(group: &str) -> String {
    format!("group_{group}")
}

/// The datasets an entry belongs to: its origin's, and its sharing groups' when its
/// distribution names groups.
pub fn datasets_of(view: &EntryView) -> Vec<String> {
    let mut out = vec![agency_dataset(&view.origin)];
    if view.distribution.scope == Scope::Groups {
        out.extend(
            view.distribution
                .groups
                .iter()
                .map(|g| group_dataset(g.as_str())),
        );
    }
    out
}

/// yente's timestamp format (seconds, no zone; the values are UTC).
pub fn ftm_time(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(..19).map_or(s.clone(), str::to_owned)
}

fn schema_of(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::Person => "Person",
        // A Company is an Organization that can also be owned (an FtM Asset), which
        // the Ownership of a front company needs.
        SubjectKind::Organization => "Company",
        SubjectKind::Vessel => "Vessel",
    }
}

/// FtM topics for a listing reason.
fn topic_of(reason: Reason) -> Option<&'static str> {
    match reason {
        Reason::Denial | Reason::WmdEndUse => Some("export.control"),
        Reason::DiversionRisk => Some("export.risk"),
        Reason::Sanctions => Some("sanction"),
        Reason::Other => None,
    }
}

fn reason_text(reason: Reason) -> &'static str {
    match reason {
        Reason::Denial => "Export licence denial",
        Reason::DiversionRisk => "Risk of diversion to an unauthorised end use",
        Reason::Sanctions => "Sanctions designation",
        Reason::WmdEndUse => "Suspected WMD end use",
        Reason::Other => "Other",
    }
}

/// The FtM property an identifier type maps to on a schema, if it has one.
fn identifier_prop(kind: SubjectKind, id_type: &str) -> Option<&'static str> {
    match (kind, id_type) {
        (SubjectKind::Person, "passport") => Some("passportNumber"),
        (SubjectKind::Organization, "imo") | (SubjectKind::Vessel, "imo") => Some("imoNumber"),
        (SubjectKind::Vessel, "registration") => Some("registrationNumber"),
        (SubjectKind::Vessel, "mmsi") => Some("mmsi"),
        (SubjectKind::Vessel, _) => None,
        (_, "registration") => Some("registrationNumber"),
        (_, "lei") => Some("leiCode"),
        (_, "tax_id") => Some("taxNumber"),
        (_, "inn") => Some("innCode"),
        (_, "ogrn") => Some("ogrnCode"),
        (_, "swift" | "bic") => Some("swiftBic"),
        _ => Some("idNumber"),
    }
}

/// The subject entity of an entry: what `/match` and `/search` return.
pub fn subject_entity(view: &EntryView) -> FtmEntity {
    let kind = view.subject.kind;
    let caption = view
        .subject
        .name
        .clone()
        .or_else(|| view.subject.aliases.first().cloned())
        .unwrap_or_else(|| format!("{} entry {}", view.origin, view.entry_id.to_hex()));
    let mut e = FtmEntity::new(
        entity_id(&view.origin, view.entry_id),
        schema_of(kind),
        caption,
    );
    let s = &view.subject;
    if let Some(n) = &s.name {
        e.add("name", n.clone());
    }
    for a in &s.aliases {
        e.add("alias", a.clone());
    }
    if let Some(c) = &s.country {
        e.add("country", c.as_str().to_ascii_lowercase());
    }
    if let Some(n) = &s.nationality {
        let prop = match kind {
            SubjectKind::Person => "nationality",
            SubjectKind::Organization => "jurisdiction",
            SubjectKind::Vessel => "flag",
        };
        e.add(prop, n.as_str().to_ascii_lowercase());
    }
    if let Some(d) = s.birth_date {
        let prop = match kind {
            SubjectKind::Person => "birthDate",
            SubjectKind::Organization => "incorporationDate",
            SubjectKind::Vessel => "buildDate",
        };
        e.add(prop, d.to_string());
    }
    for a in &s.addresses {
        e.add("address", a.clone());
    }
    for id in &s.identifiers {
        if LINK_TYPES.contains(&id.kind.as_str()) {
            continue;
        }
        match identifier_prop(kind, &id.kind) {
            Some(prop) => e.add(prop, id.value.trim()),
            // A vessel has no generic identifier property: keep it readable in notes.
            None => e.add("notes", format!("{}: {}", id.kind, id.value.trim())),
        }
    }
    if let Some(r) = &view.remarks {
        e.add("notes", r.clone());
    }
    if let Some(lb) = &view.legal_basis {
        e.add("program", lb.clone());
    }
    if let Some(t) = topic_of(view.reason) {
        e.add("topics", t);
    }
    e.add("publisher", view.origin.as_str());
    e.add("modifiedAt", view.issued_at.date().to_string());
    e.datasets = datasets_of(view);
    e.target = view.status == Status::Active;
    e.last_seen = Some(ftm_time(view.updated_at));
    e.last_change = Some(ftm_time(view.issued_at));
    e
}

/// The `Sanction` entity of an entry (its listing by the origin agency).
pub fn sanction_entity(view: &EntryView, subject: &FtmEntity) -> FtmEntity {
    let mut e = FtmEntity::new(
        format!("{}-sanction", subject.id),
        "Sanction",
        format!("{}: {}", view.origin, reason_text(view.reason)),
    );
    e.add("entity", subject.id.clone());
    e.add("authority", view.origin.as_str());
    e.add("authorityId", view.entry_id.to_hex());
    e.add("reason", reason_text(view.reason));
    if let Some(lb) = &view.legal_basis {
        e.add("program", lb.clone());
    }
    for c in &view.categories {
        e.add("provisions", format!("Control-list category {c}"));
    }
    if let Some(items) = &view.items {
        e.add("description", items.clone());
    }
    if let Some(c) = &view.subject.country {
        e.add("country", c.as_str().to_ascii_lowercase());
    }
    e.add("modifiedAt", view.issued_at.date().to_string());
    match view.status {
        Status::Active => e.add("status", "active"),
        Status::Withdrawn => {
            e.add("status", "withdrawn");
            e.add("endDate", view.issued_at.date().to_string());
            if let Some(r) = &view.withdrawal_reason {
                e.add("summary", format!("Withdrawn: {r}"));
            }
        }
    }
    e.datasets = subject.datasets.clone();
    e.first_seen = subject.first_seen.clone();
    e.last_seen = subject.last_seen.clone();
    e.last_change = subject.last_change.clone();
    e
}

/// The entry a link value names: `ORIGIN/ENTRYID`, a bare entry id (the linking
/// entry's origin), or an entity id of this mapping.
pub fn linked_entry(origin: &AgencyCode, value: &str) -> Option<(AgencyCode, EntryId)> {
    let v = value.trim();
    if let Some(found) = parse_entity_id(v) {
        return Some(found);
    }
    if let Some((o, id)) = v.split_once('/') {
        let o = AgencyCode::new(o.trim().to_owned()).ok()?;
        return EntryId::from_hex(id.trim()).ok().map(|e| (o, e));
    }
    EntryId::from_hex(v).ok().map(|e| (origin.clone(), e))
}

/// Whether an entity of this kind (or a stand-in party, `None`) may be an Ownership's
/// `owner` (FtM: a LegalEntity) and its `asset` (FtM: an Asset).
fn can_own(kind: Option<SubjectKind>) -> bool {
    !matches!(kind, Some(SubjectKind::Vessel))
}

fn can_be_owned(kind: Option<SubjectKind>) -> bool {
    !matches!(kind, Some(SubjectKind::Person))
}

/// The relationship entities of an entry's linked parties. `held` gives the kind of an
/// entry this node holds (its subject entity is then the other party); otherwise the
/// party is an entity of its own, named by the value: a `Company` when it is owned, a
/// `LegalEntity` otherwise.
///
/// `owned_by` and `owner_of` become an `Ownership` when FtM allows it (the owner a
/// person or company, the asset a company or vessel), and otherwise an `UnknownLink`
/// with the role "owned by" or "owner of", so that no relationship breaks FtM's model.
pub fn link_entities(
    view: &EntryView,
    subject: &FtmEntity,
    held: impl Fn(&AgencyCode, EntryId) -> Option<SubjectKind>,
) -> Vec<FtmEntity> {
    let mut out = Vec::new();
    let this = Some(view.subject.kind);
    let links = view
        .subject
        .identifiers
        .iter()
        .filter(|i| LINK_TYPES.contains(&i.kind.as_str()));
    for (n, Identifier { kind, value }) in links.enumerate() {
        let value = value.trim();
        let other = linked_entry(&view.origin, value)
            .and_then(|(o, e)| held(&o, e).map(|k| (entity_id(&o, e), k)));
        let other_kind = other.as_ref().map(|(_, k)| *k);
        // An Ownership where FtM's ranges allow it; the stand-in party is owned (a
        // Company) only for `owner_of`.
        let ownership = match kind.as_str() {
            "owned_by" => can_be_owned(this) && can_own(other_kind),
            "owner_of" => can_own(this) && can_be_owned(other_kind),
            _ => false,
        };
        let other_id = match other {
            Some((id, _)) => id,
            None => {
                let schema = if ownership && kind == "owner_of" {
                    "Company"
                } else {
                    "LegalEntity"
                };
                let mut party = FtmEntity::new(
                    format!("{}-party-{n}", subject.id),
                    schema,
                    value.to_owned(),
                );
                party.add("name", value);
                party.datasets = subject.datasets.clone();
                let id = party.id.clone();
                out.push(party);
                id
            }
        };
        let link_id = format!("{}-link-{n}", subject.id);
        let mut link = if ownership {
            let (owner, asset) = if kind == "owned_by" {
                (other_id, subject.id.clone())
            } else {
                (subject.id.clone(), other_id)
            };
            let mut l = FtmEntity::new(link_id, "Ownership", format!("Ownership: {value}"));
            l.add("owner", owner);
            l.add("asset", asset);
            l
        } else {
            let role = match kind.as_str() {
                "front_for" => "front company for",
                "owned_by" => "owned by",
                "owner_of" => "owner of",
                _ => "linked to",
            };
            let mut l = FtmEntity::new(link_id, "UnknownLink", format!("{role} {value}"));
            l.add("subject", subject.id.clone());
            l.add("object", other_id);
            l.add("role", role);
            l
        };
        link.datasets = subject.datasets.clone();
        out.push(link);
    }
    out
}

/// Every entity of an entry, subject first: the subject, its sanction, and its linked
/// parties with their relationships (the lines `export --format ftm` writes).
pub fn entry_entities(
    view: &EntryView,
    held: impl Fn(&AgencyCode, EntryId) -> Option<SubjectKind>,
) -> Vec<FtmEntity> {
    let subject = subject_entity(view);
    let sanction = sanction_entity(view, &subject);
    let links = link_entities(view, &subject, held);
    let mut out = Vec::with_capacity(2 + links.len());
    out.push(subject);
    out.push(sanction);
    out.extend(links);
    out
}

/// The subject with its sanction and relationships nested under the reverse property
/// names FtM defines (`sanctions`, `ownershipOwner`, `ownershipAsset`, `unknownLinkTo`),
/// as yente nests adjacent entities: the `/entities/{id}` answer.
pub fn nested_entity(
    view: &EntryView,
    held: impl Fn(&AgencyCode, EntryId) -> Option<SubjectKind>,
) -> FtmEntity {
    let mut all = entry_entities(view, held).into_iter();
    let Some(mut subject) = all.next() else {
        // entry_entities always yields the subject first; an empty answer cannot happen.
        return subject_entity(view);
    };
    let rest: Vec<FtmEntity> = all.collect();
    let parties: BTreeMap<String, FtmEntity> = rest
        .iter()
        .filter(|e| e.id.starts_with(&format!("{}-party-", subject.id)))
        .map(|e| (e.id.clone(), e.clone()))
        .collect();
    for mut e in rest {
        let reverse = match e.schema.as_str() {
            "Sanction" => "sanctions",
            "Ownership" if e.texts("owner").any(|o| o == subject.id) => "ownershipOwner",
            "Ownership" => "ownershipAsset",
            "UnknownLink" => "unknownLinkTo",
            _ => continue,
        };
        // Nest the other party inside its relationship, as yente does.
        for prop in ["owner", "asset", "object"] {
            if let Some(values) = e.properties.get_mut(prop) {
                for v in values.iter_mut() {
                    if let PropValue::Text(id) = v
                        && let Some(p) = parties.get(id.as_str())
                    {
                        *v = PropValue::Entity(Box::new(p.clone()));
                    }
                }
            }
        }
        subject
            .properties
            .entry(reverse.to_owned())
            .or_default()
            .push(PropValue::Entity(Box::new(e)));
    }
    subject
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn entity_ids_round_trip_with_dashed_origins() {
        let origin = AgencyCode::new("DE-BAFA".to_owned()).unwrap();
        let entry = EntryId::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let id = entity_id(&origin, entry);
        assert_eq!(id, "wl-de-bafa-00112233445566778899aabbccddeeff");
        assert_eq!(parse_entity_id(&id), Some((origin.clone(), entry)));
        assert_eq!(
            parse_entity_id(&format!("{id}-sanction")),
            Some((origin.clone(), entry))
        );
        assert_eq!(
            parse_entity_id(&format!("{id}-link-3")),
            Some((origin, entry))
        );
        for bad in [
            "",
            "wl-",
            "wl-00112233445566778899aabbccddeeff",
            "NK-abc",
            "wl-de-bafa-0011",
            "wl-de_x-00112233445566778899aabbccddeeff",
        ] {
            assert_eq!(parse_entity_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn link_values_name_entries_three_ways() {
        let origin = AgencyCode::new("AA-EXPORT".to_owned()).unwrap();
        let hex = "00112233445566778899aabbccddeeff";
        let entry = EntryId::from_hex(hex).unwrap();
        let other = AgencyCode::new("BB-CUSTOMS".to_owned()).unwrap();
        assert_eq!(linked_entry(&origin, hex), Some((origin.clone(), entry)));
        assert_eq!(
            linked_entry(&origin, &format!("BB-CUSTOMS/{hex}")),
            Some((other.clone(), entry))
        );
        assert_eq!(
            linked_entry(&origin, &entity_id(&other, entry)),
            Some((other, entry))
        );
        assert_eq!(linked_entry(&origin, "Acme Holdings Ltd"), None);
    }
}
