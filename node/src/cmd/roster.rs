//! `wlnode roster ...`: the roster authority's tools.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Serialize;
use wlnode_config::roster_edit::{self, NewMember};
use wlnode_crypto::keyfile::{KeyKind, read_secret_key, write_secret_key};
use wlnode_crypto::model::{AgencyCode, CountryCode, GroupName, RecordId};
use wlnode_crypto::roster::{Role, Roster, TrustAnchor, verify_roster};
use wlnode_crypto::seal::EncryptionPublicKey;
use wlnode_crypto::time::Timestamp;
use wlnode_crypto::{PublicKey, SecretKey};

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Create a new, unsigned roster (creates the authority key if the file is missing).
    Init {
        /// Federation name.
        #[arg(long)]
        federation: String,
        /// Authority key file.
        #[arg(long)]
        authority_key: PathBuf,
        /// Roster file to write.
        #[arg(long)]
        out: PathBuf,
        /// Name of the authority.
        #[arg(long, default_value = "roster authority")]
        authority_name: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a member agency.
    AddMember {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        agency: AgencyCode,
        #[arg(long)]
        name: String,
        #[arg(long)]
        country: CountryCode,
        /// member or auditor.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The agency's public signing key (ed25519:<hex>, from `wlnode init`).
        #[arg(long)]
        signing_key: PublicKey,
        /// The agency's encryption key for sealed messages (x25519:<hex>, from `wlnode
        /// init`). Optional: a member without one cannot receive sealed messages.
        #[arg(long)]
        encryption_key: Option<EncryptionPublicKey>,
        /// The agency's node PeerId (repeatable).
        #[arg(long = "node-id")]
        node_ids: Vec<String>,
        /// A sharing group (repeatable).
        #[arg(long = "group")]
        groups: Vec<GroupName>,
        /// Start of the key's validity (RFC 3339); default now.
        #[arg(long, value_parser = parse_time)]
        valid_from: Option<Timestamp>,
    },
    /// Add an encryption key to a member (its first, or rotation step 1).
    AddEncryptionKey {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        agency: AgencyCode,
        #[arg(long)]
        encryption_key: EncryptionPublicKey,
        #[arg(long, value_parser = parse_time)]
        valid_from: Option<Timestamp>,
    },
    /// End an encryption key's validity (rotation step 2).
    RetireEncryptionKey {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        agency: AgencyCode,
        #[arg(long)]
        encryption_key: EncryptionPublicKey,
        /// End of validity (RFC 3339); default now.
        #[arg(long, value_parser = parse_time)]
        at: Option<Timestamp>,
    },
    /// Add a signing key to a member (rotation step 1).
    AddKey {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        agency: AgencyCode,
        #[arg(long)]
        signing_key: PublicKey,
        #[arg(long, value_parser = parse_time)]
        valid_from: Option<Timestamp>,
    },
    /// End a signing key's validity (rotation step 2); earlier records stay valid.
    RetireKey {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        agency: AgencyCode,
        #[arg(long)]
        signing_key: PublicKey,
        /// End of validity (RFC 3339); default now.
        #[arg(long, value_parser = parse_time)]
        at: Option<Timestamp>,
    },
    /// Revoke a compromised key. Records claiming to be signed at or after --at are
    /// refused; earlier ones only count where a node held them before it learned of
    /// the revocation, and rank below the agency's records signed with a valid key.
    RevokeKey {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        agency: AgencyCode,
        #[arg(long)]
        signing_key: PublicKey,
        /// Compromise time (RFC 3339); default now.
        #[arg(long, value_parser = parse_time)]
        at: Option<Timestamp>,
        #[arg(long)]
        reason: String,
        /// A record id of this key known to be good: it stays valid everywhere, also on
        /// nodes that never saw it (repeat for more).
        #[arg(long = "keep")]
        keep: Vec<RecordId>,
    },
    /// List more records of a revoked key as known good.
    KeepRecords {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        agency: AgencyCode,
        #[arg(long)]
        signing_key: PublicKey,
        /// A record id (repeat for more).
        #[arg(long = "record", required = true)]
        records: Vec<RecordId>,
    },
    /// Add a node PeerId to a member.
    AddNode {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        agency: AgencyCode,
        #[arg(long = "node-id")]
        node_id: String,
    },
    /// Bump the version, stamp issued_at, and sign (writes ROSTER.sig, and a copy of
    /// what it signed to ROSTER.signed-previous and its .sig). Refuses a federation
    /// setting this build does not know, and a `*_required_since` cut-over earlier
    /// than now plus one hour unless the previous version shows it unchanged (or
    /// later) or --allow-past-cutover is given.
    Sign {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        authority_key: PathBuf,
        /// The signed roster the nodes run now (with its .sig; verified under the
        /// draft's authority keys, same federation, older version): a cut-over
        /// carried from it unchanged is not a past cut-over. Default: the copy of
        /// the last roster signed here, ROSTER.signed-previous, when it exists.
        #[arg(long)]
        previous: Option<PathBuf>,
        /// Sign a cut-over earlier than now all the same (steps logged since then are
        /// judged as if the rule already applied).
        #[arg(long)]
        allow_past_cutover: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check a roster and its signature.
    Verify {
        #[arg(long)]
        roster: PathBuf,
        /// Also require this authority key (repeatable).
        #[arg(long = "authority")]
        authorities: Vec<PublicKey>,
        /// The version before this one: a cut-over carried from it unchanged is not
        /// warned about.
        #[arg(long)]
        previous: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Show the roster's members.
    Show {
        #[arg(long)]
        roster: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "member" => Ok(Role::Member),
        "auditor" => Ok(Role::Auditor),
        _ => Err(format!("{s:?} is not member or auditor")),
    }
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read roster {}", path.display()))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// The `--previous` roster of `roster verify` (parsed as shown, not verified: only
/// compared with, for warnings).
fn read_previous(path: Option<&Path>) -> anyhow::Result<Option<Roster>> {
    path.map(|p| {
        roster_edit::inspect(&read(p)?).with_context(|| format!("previous roster {}", p.display()))
    })
    .transpose()
}

/// The previous roster of `roster sign` (review s35-roster M2): signed, verified
/// under the draft's authority keys, of its federation and older
/// ([`roster_edit::check_previous`]).
fn read_signed_previous(draft: &str, path: &Path) -> anyhow::Result<Roster> {
    let (bytes, sig) = wlnode_config::roster_file::read_signed(path)?;
    Ok(roster_edit::check_previous(
        draft,
        &path.display().to_string(),
        &bytes,
        &sig,
    )?)
}

fn sig_path(roster: &Path) -> PathBuf {
    let mut s = roster.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

fn edit(
    path: &Path,
    f: impl FnOnce(&str) -> Result<String, roster_edit::RosterEditError>,
) -> anyhow::Result<ExitCode> {
    let text = read(path)?;
    let out = f(&text).with_context(|| format!("roster {}", path.display()))?;
    write(path, &out)?;
    errln!(
        "{} updated; sign it with `wlnode roster sign` to publish",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Summary {
    federation: String,
    version: u64,
    hash: String,
    authorities: Vec<String>,
    members: Vec<MemberSummary>,
    silence_rule: String,
    /// `federation_settings.mail_acks_required_since` (Unix ms), when set: from then on
    /// an auditor counts a mail hand-over only with the neighbour's signed answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    mail_acks_required_since: Option<u64>,
    /// `federation_settings.consult_receipts_required_since` (Unix ms), when set: from
    /// then on a node refuses a consultation request, answer or refusal without its
    /// sender's signed receipt, and an auditor proves a step logged without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    consult_receipts_required_since: Option<u64>,
    /// `federation_settings.consult_refusal_terms_required_since` (Unix ms), when
    /// set: origins sign the minimum and roster version of a `deadline_too_short`,
    /// and from then on a node refuses one without them (s35).
    #[serde(skip_serializing_if = "Option::is_none")]
    consult_refusal_terms_required_since: Option<u64>,
    /// `federation_settings.consult_keyed_by_requester_since` (Unix ms), when set:
    /// from then on an origin keeps one consultation per requester and id.
    #[serde(skip_serializing_if = "Option::is_none")]
    consult_keyed_by_requester_since: Option<u64>,
    /// `federation_settings` entries this build does not understand (a later build's;
    /// signed, kept, ignored here), with their TOML values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    settings_not_understood: Vec<NotUnderstood>,
    /// How many more there are than listed (review s35-roster L3).
    #[serde(skip_serializing_if = "is_zero")]
    settings_not_understood_more: u64,
    /// `roster show` of a file without a valid signature (review s35-roster L5): a
    /// setting this build does not know is then the authority's own, likely a typo.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unsigned_draft: bool,
    warnings: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The longest value of a setting not understood that is shown (review s35-roster L3).
const MAX_VALUE_CHARS: usize = 120;

#[derive(Serialize)]
struct NotUnderstood {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct MemberSummary {
    agency: String,
    name: String,
    country: String,
    role: String,
    groups: Vec<String>,
    node_ids: Vec<String>,
    keys: Vec<String>,
    revoked: Vec<String>,
    encryption_keys: Vec<String>,
}

fn summary(r: &Roster, previous: Option<&Roster>) -> Summary {
    // Review s35-roster L3: bounded (the names shown, cut-overs first, the rest
    // counted).
    let (not_understood_names, not_understood_more) = r.settings_not_understood_shown();
    Summary {
        federation: r.federation().to_owned(),
        version: r.version(),
        hash: hex::encode(r.hash()),
        authorities: r.authorities().map(|k| k.to_string()).collect(),
        silence_rule: r.silence_rule().to_string(),
        mail_acks_required_since: r.mail_acks_required_since().map(Timestamp::as_millis),
        consult_receipts_required_since: r
            .consult_receipts_required_since()
            .map(Timestamp::as_millis),
        consult_refusal_terms_required_since: r
            .consult_refusal_terms_required_since()
            .map(Timestamp::as_millis),
        consult_keyed_by_requester_since: r
            .consult_keyed_by_requester_since()
            .map(Timestamp::as_millis),
        settings_not_understood: {
            // Escaped (a value may hold control characters; names are `[a-z0-9_]+`,
            // `Roster::parse` refuses others).
            let all = r
                .doc()
                .federation_settings
                .as_ref()
                .map(|f| &f.not_understood);
            not_understood_names
                .into_iter()
                .map(|name| {
                    let value = all
                        .and_then(|m| m.get(&name))
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    let mut value: String = value.escape_debug().collect();
                    if value.chars().count() > MAX_VALUE_CHARS {
                        value = value.chars().take(MAX_VALUE_CHARS).collect();
                        value.push('…');
                    }
                    NotUnderstood { name, value }
                })
                .collect()
        },
        settings_not_understood_more: not_understood_more,
        unsigned_draft: false,
        warnings: wlnode_config::roster_edit::warnings(r, Timestamp::now(), previous),
        members: r
            .members()
            .map(|m| MemberSummary {
                agency: m.agency.to_string(),
                name: m.name.clone(),
                country: m.country.to_string(),
                role: m.role.to_string(),
                groups: m.groups.iter().map(|g| g.to_string()).collect(),
                node_ids: m.node_ids.clone(),
                keys: m.keys.iter().map(|k| k.key.to_string()).collect(),
                revoked: m.revoked.iter().map(|k| k.key.to_string()).collect(),
                encryption_keys: m
                    .encryption_keys
                    .iter()
                    .map(|k| k.key.to_string())
                    .collect(),
            })
            .collect(),
    }
}

fn print_summary(s: &Summary) -> anyhow::Result<()> {
    outln!(
        "federation {:?}, version {}, sha256 {}",
        s.federation,
        s.version,
        s.hash
    );
    for a in &s.authorities {
        outln!("  authority {a}");
    }
    outln!("  consultation silence counts as {}", s.silence_rule);
    if let Some(t) = s.mail_acks_required_since {
        outln!(
            "  mail hand-overs need signed answers since {} ({t})",
            Timestamp(t).to_rfc3339()
        );
    }
    if let Some(t) = s.consult_receipts_required_since {
        outln!(
            "  consultation steps need signed receipts since {} ({t})",
            Timestamp(t).to_rfc3339()
        );
    }
    if let Some(t) = s.consult_refusal_terms_required_since {
        outln!(
            "  deadline_too_short refusals sign their minimum and roster since {} ({t})",
            Timestamp(t).to_rfc3339()
        );
    }
    if let Some(t) = s.consult_keyed_by_requester_since {
        outln!(
            "  consultations keyed by requester and id since {} ({t})",
            Timestamp(t).to_rfc3339()
        );
    }
    for n in &s.settings_not_understood {
        if s.unsigned_draft {
            outln!(
                "  unsigned draft: unknown setting federation_settings.{} = {} (typo? `wlnode roster sign` refuses it)",
                n.name,
                n.value
            );
        } else {
            outln!(
                "  not understood by this build (ignored): federation_settings.{} = {}",
                n.name,
                n.value
            );
        }
    }
    if s.settings_not_understood_more > 0 {
        outln!(
            "  and {} more settings not understood",
            s.settings_not_understood_more
        );
    }
    for m in &s.members {
        outln!(
            "  {:<14} {:<8} {:<2} groups [{}] nodes {} keys {} revoked {}  {}",
            m.agency,
            m.role,
            m.country,
            m.groups.join(","),
            m.node_ids.len(),
            m.keys.len(),
            m.revoked.len(),
            m.name
        );
    }
    for w in &s.warnings {
        errln!("warning: {w}");
    }
    Ok(())
}

pub fn run(c: RosterCommand) -> anyhow::Result<ExitCode> {
    match c {
        RosterCommand::Init {
            federation,
            authority_key,
            out,
            authority_name,
            json,
        } => {
            if out.exists() {
                bail!(
                    "{} already exists; refusing to overwrite a roster",
                    out.display()
                );
            }
            let key = if authority_key.exists() {
                read_secret_key(&authority_key, KeyKind::Authority)?
            } else {
                let k = SecretKey::generate()?;
                write_secret_key(&authority_key, &k, KeyKind::Authority)?;
                errln!("created authority key {}", authority_key.display());
                k
            };
            let text = roster_edit::init(&federation, &key.public_key(), &authority_name)?;
            write(&out, &text)?;
            if json {
                super::print_json(&serde_json::json!({
                    "roster": out.display().to_string(),
                    "authority_key": key.public_key().to_string(),
                }))?;
            } else {
                outln!(
                    "created roster {} with authority {}",
                    out.display(),
                    key.public_key()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RosterCommand::AddMember {
            roster,
            agency,
            name,
            country,
            role,
            signing_key,
            encryption_key,
            node_ids,
            groups,
            valid_from,
        } => edit(&roster, |t| {
            roster_edit::add_member(
                t,
                &NewMember {
                    agency,
                    name,
                    country,
                    role,
                    signing_key,
                    encryption_key,
                    node_ids,
                    groups,
                    valid_from: valid_from.unwrap_or_else(Timestamp::now),
                },
            )
        }),
        RosterCommand::AddKey {
            roster,
            agency,
            signing_key,
            valid_from,
        } => edit(&roster, |t| {
            roster_edit::add_key(
                t,
                &agency,
                &signing_key,
                valid_from.unwrap_or_else(Timestamp::now),
            )
        }),
        RosterCommand::AddEncryptionKey {
            roster,
            agency,
            encryption_key,
            valid_from,
        } => edit(&roster, |t| {
            roster_edit::add_encryption_key(
                t,
                &agency,
                &encryption_key,
                valid_from.unwrap_or_else(Timestamp::now),
            )
        }),
        RosterCommand::RetireEncryptionKey {
            roster,
            agency,
            encryption_key,
            at,
        } => edit(&roster, |t| {
            roster_edit::retire_encryption_key(
                t,
                &agency,
                &encryption_key,
                at.unwrap_or_else(Timestamp::now),
            )
        }),
        RosterCommand::RetireKey {
            roster,
            agency,
            signing_key,
            at,
        } => edit(&roster, |t| {
            roster_edit::retire_key(t, &agency, &signing_key, at.unwrap_or_else(Timestamp::now))
        }),
        RosterCommand::RevokeKey {
            roster,
            agency,
            signing_key,
            at,
            reason,
            keep,
        } => edit(&roster, |t| {
            roster_edit::revoke_key(
                t,
                &agency,
                &signing_key,
                at.unwrap_or_else(Timestamp::now),
                &reason,
                &keep,
            )
        }),
        RosterCommand::KeepRecords {
            roster,
            agency,
            signing_key,
            records,
        } => edit(&roster, |t| {
            roster_edit::keep_records(t, &agency, &signing_key, &records)
        }),
        RosterCommand::AddNode {
            roster,
            agency,
            node_id,
        } => edit(&roster, |t| roster_edit::add_node(t, &agency, &node_id)),
        RosterCommand::Sign {
            roster,
            authority_key,
            previous,
            allow_past_cutover,
            json,
        } => {
            let key = read_secret_key(&authority_key, KeyKind::Authority)?;
            let text = read(&roster)?;
            // Review s35-roster M2/M3: the previous version is a signed roster of
            // this authority and federation, older than the one signed now: the one
            // given, else the copy kept of the last roster signed here.
            let kept = roster_edit::signed_previous_path(&roster);
            let previous = match previous {
                Some(p) => Some(read_signed_previous(&text, &p)?),
                None if kept.exists() => match read_signed_previous(&text, &kept) {
                    Ok(r) => Some(r),
                    // The explicit override needs no previous version: an
                    // emergency re-sign is not blocked by a broken copy.
                    Err(e) if allow_past_cutover => {
                        errln!("warning: {e:#}");
                        None
                    }
                    Err(e) => return Err(e),
                },
                None => None,
            };
            let opts = roster_edit::SignOptions {
                previous: previous.as_ref(),
                allow_past_cutover,
            };
            let (out, sig, parsed) = roster_edit::sign_with(&text, &key, &opts)
                .with_context(|| format!("roster {}", roster.display()))?;
            for p in roster_edit::past_cutovers(&parsed, previous.as_ref()) {
                errln!("warning: signed with --allow-past-cutover: {p}");
            }
            write(&roster, &out)?;
            let sp = sig_path(&roster);
            std::fs::write(&sp, sig.to_text())
                .with_context(|| format!("cannot write {}", sp.display()))?;
            // The copy of what was just signed, the default previous of the next
            // signing (review s35-roster M3): the roster file itself is edited in
            // place afterwards.
            write(&sig_path(&kept), &sig.to_text())?;
            write(&kept, &out)?;
            if json {
                super::print_json(&serde_json::json!({
                    "roster": roster.display().to_string(),
                    "signature": sp.display().to_string(),
                    "version": parsed.version(),
                    "hash": hex::encode(parsed.hash()),
                }))?;
            } else {
                outln!(
                    "signed {} version {} -> {}",
                    roster.display(),
                    parsed.version(),
                    sp.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RosterCommand::Verify {
            roster,
            authorities,
            previous,
            json,
        } => {
            let previous = read_previous(previous.as_deref())?;
            let (bytes, sig) = wlnode_config::roster_file::read_signed(&roster)?;
            let anchor = TrustAnchor {
                authorities,
                accepted: None,
            };
            let r = verify_roster(&bytes, &sig, &anchor)
                .with_context(|| format!("roster {}", roster.display()))?;
            if json {
                let mut v = serde_json::to_value(summary(&r, previous.as_ref()))?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("valid".into(), true.into());
                    o.insert("signed_by".into(), sig.authority.to_string().into());
                }
                super::print_json(&v)?;
            } else {
                outln!(
                    "roster {} is valid, signed by {}",
                    roster.display(),
                    sig.authority
                );
                print_summary(&summary(&r, previous.as_ref()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        RosterCommand::Show { roster, json } => {
            let text = read(&roster)?;
            // Lenient, so an operator sees a later build's settings listed (`sign`
            // refuses them): `inspect`, not `validate`.
            let r = roster_edit::inspect(&text)
                .with_context(|| format!("roster {}", roster.display()))?;
            let mut s = summary(&r, None);
            // Review s35-roster L5: without a valid signature over these bytes the
            // file is the authority's draft, and a setting this build does not know
            // is most likely a typo: said so, and the exit code is 1.
            let signed = wlnode_config::roster_file::read_signed(&roster)
                .ok()
                .is_some_and(|(bytes, sig)| {
                    bytes == text.as_bytes()
                        && verify_roster(&bytes, &sig, &TrustAnchor::default()).is_ok()
                });
            let typos = !signed && !s.settings_not_understood.is_empty();
            if typos {
                s.unsigned_draft = true;
                s.warnings = wlnode_config::roster_edit::warnings_on_known_settings(
                    &r,
                    Timestamp::now(),
                    None,
                );
            }
            if json {
                super::print_json(&s)?;
            } else {
                print_summary(&s)?;
            }
            if typos {
                errln!(
                    "error: unsigned draft {}: unknown federation setting(s) {} (typo?); \
                     `wlnode roster sign` refuses them",
                    roster.display(),
                    s.settings_not_understood
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
