//! Generates a whole local federation on disk: a roster authority, agencies with keys
//! and API tokens, a signed roster, and one `node.toml` per node.
//!
//! `wlnode demo`, the deploy scripts' generator and the integration tests all build
//! federations this way, so they exercise the same files an operator would write by
//! hand with `wlnode init` and `wlnode roster ...`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use wlnode_crypto::keyfile::{KeyFileError, KeyKind, write_encryption_key, write_secret_key};
use wlnode_crypto::model::{AgencyCode, CountryCode, GroupName};
use wlnode_crypto::roster::Role;
use wlnode_crypto::seal::EncryptionSecretKey;
use wlnode_crypto::time::Timestamp;
use wlnode_crypto::{PublicKey, SecretKey};

use wlnode_config::roster_edit::{self, NewMember, RosterEditError};

/// Why a federation could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// Writing a file failed.
    #[error("cannot write {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key could not be made.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The roster edit failed.
    #[error(transparent)]
    Roster(#[from] RosterEditError),
    /// Randomness failed.
    #[error("random number generator failed: {0}")]
    Rng(String),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ScaffoldError + '_ {
    move |e| ScaffoldError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// One agency to create.
#[derive(Clone, Debug)]
pub struct AgencySpec {
    /// Agency code.
    pub agency: AgencyCode,
    /// Full name.
    pub name: String,
    /// Country.
    pub country: CountryCode,
    /// Role.
    pub role: Role,
    /// Sharing groups.
    pub groups: Vec<GroupName>,
}

impl AgencySpec {
    /// A member agency in `groups`.
    pub fn member(
        agency: &str,
        groups: &[&str],
    ) -> Result<Self, wlnode_crypto::model::InvalidValue> {
        let agency = AgencyCode::new(agency)?;
        let country = CountryCode::new(agency.as_str().get(..2).unwrap_or("XX"))?;
        Ok(Self {
            name: format!("{agency} (fictional agency)"),
            agency,
            country,
            role: Role::Member,
            groups: groups
                .iter()
                .map(|g| GroupName::new(*g))
                .collect::<Result<_, _>>()?,
        })
    }

    /// An auditor.
    pub fn auditor(agency: &str) -> Result<Self, wlnode_crypto::model::InvalidValue> {
        let mut s = Self::member(agency, &[])?;
        s.role = Role::Auditor;
        Ok(s)
    }
}

/// One generated node folder.
#[derive(Clone, Debug)]
pub struct ScaffoldNode {
    /// Agency code.
    pub agency: AgencyCode,
    /// Role.
    pub role: Role,
    /// Node folder.
    pub dir: PathBuf,
    /// Its node.toml (written by [`write_config`]).
    pub config: PathBuf,
    /// Its libp2p PeerId.
    pub peer_id: String,
    /// Its agency signing key.
    pub signing_key: PublicKey,
}

/// A generated federation.
#[derive(Clone, Debug)]
pub struct Federation {
    /// Root folder.
    pub dir: PathBuf,
    /// Signed roster.
    pub roster: PathBuf,
    /// Authority key file.
    pub authority_key: PathBuf,
    /// The authority's public key.
    pub authority: PublicKey,
    /// Nodes, in spec order.
    pub nodes: Vec<ScaffoldNode>,
}

fn write_secret(path: &Path, content: &str) -> Result<(), ScaffoldError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(content.as_bytes()).map_err(io_err(path))?;
    Ok(())
}

/// Creates keys, tokens and a signed roster for `specs` under `dir`.
pub fn create(
    dir: &Path,
    federation: &str,
    specs: &[AgencySpec],
) -> Result<Federation, ScaffoldError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let authority = SecretKey::generate().map_err(|e| ScaffoldError::Rng(e.to_string()))?;
    let authority_key = dir.join("authority.key");
    write_secret_key(&authority_key, &authority, KeyKind::Authority)?;
    let mut text = roster_edit::init(
        federation,
        &authority.public_key(),
        "roster authority (demo)",
    )?;
    let mut nodes = Vec::new();
    for s in specs {
        let ndir = dir.join(s.agency.as_str().to_lowercase());
        std::fs::create_dir_all(&ndir).map_err(io_err(&ndir))?;
        let agency_key = SecretKey::generate().map_err(|e| ScaffoldError::Rng(e.to_string()))?;
        let node_key = SecretKey::generate().map_err(|e| ScaffoldError::Rng(e.to_string()))?;
        write_secret_key(&ndir.join("agency.key"), &agency_key, KeyKind::Agency)?;
        write_secret_key(&ndir.join("node.key"), &node_key, KeyKind::Node)?;
        let encryption_key =
            EncryptionSecretKey::generate().map_err(|e| ScaffoldError::Rng(e.to_string()))?;
        write_encryption_key(&ndir.join("encryption.key"), &encryption_key)?;
        let encryption_public = encryption_key
            .public_key()
            .map_err(|e| ScaffoldError::Rng(e.to_string()))?;
        let mut token = [0u8; 24];
        getrandom::fill(&mut token).map_err(|e| ScaffoldError::Rng(e.to_string()))?;
        write_secret(
            &ndir.join("api.token"),
            &format!("{}\n", hex::encode(token)),
        )?;
        let peer_id = node_key.public_key().peer_id();
        text = roster_edit::add_member(
            &text,
            &NewMember {
                agency: s.agency.clone(),
                name: s.name.clone(),
                country: s.country.clone(),
                role: s.role,
                signing_key: agency_key.public_key(),
                encryption_key: Some(encryption_public),
                node_ids: vec![peer_id.clone()],
                groups: s.groups.clone(),
                // A little in the past, so that records signed right away are valid
                // even with small clock differences between processes.
                valid_from: Timestamp(Timestamp::now().as_millis().saturating_sub(3_600_000)),
            },
        )?;
        nodes.push(ScaffoldNode {
            agency: s.agency.clone(),
            role: s.role,
            config: ndir.join("node.toml"),
            dir: ndir,
            peer_id,
            signing_key: agency_key.public_key(),
        });
    }
    let (signed, sig, _) = roster_edit::sign(&text, &authority)?;
    let roster = dir.join("roster.toml");
    std::fs::write(&roster, signed).map_err(io_err(&roster))?;
    let sig_path = dir.join("roster.toml.sig");
    std::fs::write(&sig_path, sig.to_text()).map_err(io_err(&sig_path))?;
    Ok(Federation {
        dir: dir.to_owned(),
        roster,
        authority_key,
        authority: authority.public_key(),
        nodes,
    })
}

/// What goes into one node.toml.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// libp2p listen address.
    pub listen: String,
    /// API address (port 0 picks a free port; the node writes it to data/api.addr).
    pub api: SocketAddr,
    /// Neighbours: agency and the addresses to dial (empty: they dial us).
    pub peers: Vec<(AgencyCode, Vec<String>)>,
    /// Raw TOML appended at the end: `[sync]`, `[[share]]`, `[[accept]]` blocks.
    pub extra: String,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            peers: Vec::new(),
            extra: String::new(),
        }
    }
}

/// Share everything with everyone and accept everything: the widest policy, which the
/// origin's distribution still narrows.
pub const OPEN_POLICY: &str = r#"
[[share]]
to = ["*"]
origins = ["*"]
relay = true

[[accept]]
from = ["*"]
origins = ["*"]
"#;

/// Writes `node.config` for `node` with `opts`, trusting the federation's authority.
pub fn write_config(
    fed: &Federation,
    node: &ScaffoldNode,
    opts: &NodeOptions,
) -> Result<(), ScaffoldError> {
    let mut t = String::new();
    let roster_rel = pathdiff(&fed.roster, &node.dir);
    let _ = write!(
        t,
        r#"# Generated by wlnode for a local federation.
agency = "{agency}"
data_dir = "data"
roster = "{roster}"
roster_authorities = ["{authority}"]
agency_key = "agency.key"
node_key = "node.key"
encryption_key = "encryption.key"
listen = ["{listen}"]
log_format = "text"

[api]
listen = "{api}"
token_file = "api.token"
"#,
        agency = node.agency,
        roster = roster_rel,
        authority = fed.authority,
        listen = opts.listen,
        api = opts.api,
    );
    for (agency, addrs) in &opts.peers {
        let addrs = addrs
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(t, "\n[[peers]]\nagency = \"{agency}\"\naddrs = [{addrs}]\n");
    }
    t.push_str(&opts.extra);
    std::fs::write(&node.config, t).map_err(io_err(&node.config))
}

/// `target` relative to `base` when it lives in a parent folder of it, else absolute.
fn pathdiff(target: &Path, base: &Path) -> String {
    if let (Some(tp), Some(bp)) = (target.parent(), base.parent())
        && tp == bp
        && let Some(name) = target.file_name()
    {
        return format!("../{}", name.to_string_lossy());
    }
    target.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_configs_load_and_roster_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let fed = create(
            dir.path(),
            "demo",
            &[
                AgencySpec::member("AA-EXPORT", &["eu"]).unwrap(),
                AgencySpec::member("BB-CUSTOMS", &["eu", "wassenaar"]).unwrap(),
                AgencySpec::auditor("ZZ-AUDIT").unwrap(),
            ],
        )
        .unwrap();
        for n in &fed.nodes {
            write_config(
                &fed,
                n,
                &NodeOptions {
                    extra: OPEN_POLICY.into(),
                    ..NodeOptions::default()
                },
            )
            .unwrap();
            let cfg = wlnode_config::Config::load(&n.config).unwrap();
            assert_eq!(
                cfg.raw.roster,
                fed.roster
                    .parent()
                    .unwrap()
                    .join(n.dir.file_name().unwrap())
                    .join("../roster.toml")
            );
            wlnode_runtime::node::load_identity(&cfg).unwrap();
        }
        let (bytes, sig) = wlnode_config::roster_file::read_signed(&fed.roster).unwrap();
        let r = wlnode_crypto::roster::verify_roster(
            &bytes,
            &sig,
            &wlnode_crypto::roster::TrustAnchor {
                authorities: vec![fed.authority],
                accepted: None,
            },
        )
        .unwrap();
        assert_eq!(r.members().count(), 3);
        assert_eq!(r.version(), 1);
    }
}
