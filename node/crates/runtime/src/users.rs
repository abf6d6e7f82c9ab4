//! The node's users and their roles: who is calling the API, so that every write can be
//! attributed to a person and every request gated by what that person may do.
//!
//! - A user has a name (local only), a stable pseudonymous id (random, 32 hex digits:
//!   what the audit log records), roles, and an API token of which only the SHA-256 is
//!   kept. A token is shown once, when it is made.
//! - The table lives in the store's meta tree (`users`, JSON), so backups carry it.
//! - The token file from `wlnode init` (`api.token_file`) is the **bootstrap admin**:
//!   a user named [`BOOTSTRAP`] with every role, whose token hash is taken from that
//!   file at every start, so existing set-ups keep working. It is rotated by replacing
//!   the file and restarting, and cannot be disabled through the API (an agency could
//!   otherwise lock itself out).
//! - Authentication hashes the presented token and looks the hash up, so no comparison
//!   runs on the secret itself; a disabled user's token is refused like a wrong one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use wlnode_crypto::time::Timestamp;
use wlnode_store::{StoreError, StoreHandle};

/// The bootstrap admin's name.
pub const BOOTSTRAP: &str = "admin";
/// The meta key the table is stored under.
const META_KEY: &[u8] = b"users";
/// Most users one node keeps.
pub const MAX_USERS: usize = 1000;

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Screen parties (single, batch, the yente-compatible API).
    Screener,
    /// Write this agency's entries (add, amend, withdraw, import).
    Editor,
    /// Approve drafts (four-eyes release).
    Approver,
    /// Consultations and hit reports.
    Consultant,
    /// Policy reload, peer blocks, backups, sources, users.
    Admin,
    /// Read-only: entries, status, sources, metrics.
    Viewer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Screener,
        Role::Editor,
        Role::Approver,
        Role::Consultant,
        Role::Admin,
        Role::Viewer,
    ];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Screener => "screener",
            Role::Editor => "editor",
            Role::Approver => "approver",
            Role::Consultant => "consultant",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = UsersError;
    fn from_str(s: &str) -> Result<Self, UsersError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| UsersError::UnknownRole(s.chars().take(32).collect()))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a user operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The name is not a valid user name.
    #[error(
        "user name {0:?} is not valid: use 1 to 64 lower-case letters, digits, '.', '-' or '_', starting with a letter"
    )]
    InvalidName(String),
    /// Not a role.
    #[error("{0:?} is not a role (screener, editor, approver, consultant, admin, viewer)")]
    UnknownRole(String),
    /// A user needs at least one role.
    #[error("a user needs at least one role")]
    NoRoles,
    /// The name is taken.
    #[error("user {0:?} already exists")]
    Exists(String),
    /// No such user.
    #[error("no user {0:?}")]
    Unknown(String),
    /// The bootstrap admin is managed through the token file.
    #[error(
        "user {BOOTSTRAP:?} is the token file's: replace api.token_file and restart to rotate it; it cannot be disabled"
    )]
    Bootstrap,
    /// Too many users.
    #[error("this node already has {MAX_USERS} users")]
    Full,
    /// The random number generator failed.
    #[error("cannot make a token: {0}")]
    Random(String),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored table does not decode.
    #[error("the stored user table is unreadable: {0}")]
    Corrupt(String),
}

/// One user as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Local name.
    pub name: String,
    /// Pseudonymous id (32 hex digits), what the audit log records.
    pub id: String,
    /// Roles.
    pub roles: BTreeSet<Role>,
    /// SHA-256 of the token (hex).
    pub token_sha256: String,
    /// Refused at the API.
    pub disabled: bool,
    /// When the user was made.
    pub created_at: Timestamp,
    /// When the token was last replaced.
    pub rotated_at: Timestamp,
}

/// A user as listed (no token hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserInfo {
    /// Local name.
    pub user: String,
    /// Pseudonymous id.
    pub id: String,
    /// Roles.
    #[schema(value_type = Vec<String>)]
    pub roles: BTreeSet<Role>,
    /// Refused at the API.
    pub disabled: bool,
    /// The token file's admin.
    pub bootstrap: bool,
    /// When the user was made.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// When the token was last replaced.
    #[schema(value_type = String)]
    pub rotated_at: Timestamp,
}

/// Who is calling: what a request carries after authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// Local name.
    pub name: String,
    /// Pseudonymous id.
    pub id: String,
    /// Roles.
    pub roles: BTreeSet<Role>,
}

impl Actor {
    /// Whether the actor has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A new token, shown once.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Issued {
    /// The user.
    pub user: String,
    /// Roles.
    #[schema(value_type = Vec<String>)]
    pub roles: BTreeSet<Role>,
    /// The API token (shown once; only its hash is kept).
    pub token: String,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    users: BTreeMap<String, User>,
}

#[derive(Default)]
struct Index {
    table: Table,
    by_hash: HashMap<String, String>,
}

impl Index {
    fn new(table: Table) -> Self {
        let by_hash = table
            .users
            .values()
            .map(|u| (u.token_sha256.clone(), u.name.clone()))
            .collect();
        Self { table, by_hash }
    }
}

/// The user table: the API's handle on it.
#[derive(Clone)]
pub struct Users {
    store: StoreHandle,
    inner: Arc<RwLock<Index>>,
    /// One change at a time: read, change, store and publish happen under it, so no
    /// change is lost and memory never lags the store.
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Users(..)")
    }
}

fn sha256_hex(token: &str) -> String {
    hex::encode(wlnode_crypto::sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, UsersError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| UsersError::Random(e.to_string()))?;
    Ok(hex::encode(b))
}

/// Checks a user name.
pub fn check_name(name: &str) -> Result<(), UsersError> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(UsersError::InvalidName(name.chars().take(64).collect()))
    }
}

fn info(u: &User) -> UserInfo {
    UserInfo {
        user: u.name.clone(),
        id: u.id.clone(),
        roles: u.roles.clone(),
        disabled: u.disabled,
        bootstrap: u.name == BOOTSTRAP,
        created_at: u.created_at,
        rotated_at: u.rotated_at,
    }
}

impl Users {
    /// Loads the table and makes the token file's token the bootstrap admin's.
    pub async fn load(store: StoreHandle, bootstrap_token: &str) -> Result<Self, UsersError> {
        let hash = sha256_hex(bootstrap_token);
        let id = random_hex(16)?;
        let table = store
            .try_call(move |s| {
                let mut table: Table = match s.meta_get(META_KEY)? {
                    Some(b) => serde_json::from_slice(&b)
                        .map_err(|e| UsersError::Corrupt(e.to_string()))?,
                    None => Table::default(),
                };
                let now = Timestamp::now();
                let admin = table
                    .users
                    .entry(BOOTSTRAP.to_owned())
                    .or_insert_with(|| User {
                        name: BOOTSTRAP.to_owned(),
                        id,
                        roles: Role::ALL.into_iter().collect(),
                        token_sha256: hash.clone(),
                        disabled: false,
                        created_at: now,
                        rotated_at: now,
                    });
                if admin.token_sha256 != hash || admin.disabled {
                    admin.token_sha256 = hash;
                    admin.disabled = false;
                    admin.rotated_at = now;
                }
                admin.roles = Role::ALL.into_iter().collect();
                let bytes =
                    serde_json::to_vec(&table).map_err(|e| UsersError::Corrupt(e.to_string()))?;
                s.meta_set(META_KEY, &bytes)?;
                Ok::<_, UsersError>(table)
            })
            .await?;
        Ok(Self {
            store,
            inner: Arc::new(RwLock::new(Index::new(table))),
            writing: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The user a token belongs to, unless unknown or disabled.
    pub fn authenticate(&self, token: &str) -> Option<Actor> {
        let hash = sha256_hex(token.trim());
        let g = self.inner.read().ok()?;
        let name = g.by_hash.get(&hash)?;
        let u = g.table.users.get(name)?;
        (!u.disabled).then(|| Actor {
            name: u.name.clone(),
            id: u.id.clone(),
            roles: u.roles.clone(),
        })
    }

    /// Every user, by name.
    pub fn list(&self) -> Vec<UserInfo> {
        self.inner
            .read()
            .map(|g| g.table.users.values().map(info).collect())
            .unwrap_or_default()
    }

    /// The pseudonymous id → name map, for the agency's own inspectors.
    pub fn names(&self) -> BTreeMap<String, String> {
        self.inner
            .read()
            .map(|g| {
                g.table
                    .users
                    .values()
                    .map(|u| (u.id.clone(), u.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Applies `change` to a copy of the table, stores it with the `acted` audit event
    /// it returns, then publishes it.
    async fn update<T: Send + 'static>(
        &self,
        change: impl FnOnce(
            &mut Table,
            Timestamp,
        ) -> Result<(T, wlnode_audit::event::Event), UsersError>
        + Send
        + 'static,
    ) -> Result<T, UsersError> {
        let _writing = self.writing.lock().await;
        let (out, table) = self
            .store
            .try_call(move |s| {
                // The stored table, not a copy from memory.
                let mut table: Table = match s.meta_get(META_KEY)? {
                    Some(b) => serde_json::from_slice(&b)
                        .map_err(|e| UsersError::Corrupt(e.to_string()))?,
                    None => Table::default(),
                };
                let (out, event) = change(&mut table, Timestamp::now())?;
                let bytes =
                    serde_json::to_vec(&table).map_err(|e| UsersError::Corrupt(e.to_string()))?;
                s.meta_set(META_KEY, &bytes)?;
                s.audit_append(&[event])?;
                Ok::<_, UsersError>((out, table))
            })
            .await?;
        if let Ok(mut g) = self.inner.write() {
            *g = Index::new(table);
        }
        Ok(out)
    }

    /// Adds a user; returns the token, once.
    pub async fn add(
        &self,
        by: &Actor,
        name: &str,
        roles: BTreeSet<Role>,
    ) -> Result<Issued, UsersError> {
        check_name(name)?;
        if roles.is_empty() {
            return Err(UsersError::NoRoles);
        }
        let token = random_hex(32)?;
        let id = random_hex(16)?;
        let (name, hash, by) = (name.to_owned(), sha256_hex(&token), by.id.clone());
        let issued_roles = roles.clone();
        let user_name = name.clone();
        self.update(move |t, now| {
            if t.users.contains_key(&name) {
                return Err(UsersError::Exists(name));
            }
            if t.users.len() >= MAX_USERS {
                return Err(UsersError::Full);
            }
            let event = acted(now, &by, "user_add", Some(id.clone()));
            t.users.insert(
                name.clone(),
                User {
                    name,
                    id,
                    roles,
                    token_sha256: hash,
                    disabled: false,
                    created_at: now,
                    rotated_at: now,
                },
            );
            Ok(((), event))
        })
        .await?;
        Ok(Issued {
            user: user_name,
            roles: issued_roles,
            token,
        })
    }

    /// Disables a user (their token is refused from now on).
    pub async fn disable(&self, by: &Actor, name: &str) -> Result<UserInfo, UsersError> {
        if name == BOOTSTRAP {
            return Err(UsersError::Bootstrap);
        }
        let (name, by) = (name.to_owned(), by.id.clone());
        self.update(move |t, now| {
            let u = t
                .users
                .get_mut(&name)
                .ok_or_else(|| UsersError::Unknown(name.clone()))?;
            u.disabled = true;
            Ok((info(u), acted(now, &by, "user_disable", Some(u.id.clone()))))
        })
        .await
    }

    /// Gives a user a new token (the old one is refused from now on); returns it, once.
    pub async fn rotate(&self, by: &Actor, name: &str) -> Result<Issued, UsersError> {
        if name == BOOTSTRAP {
            return Err(UsersError::Bootstrap);
        }
        let token = random_hex(32)?;
        let (name, hash, by) = (name.to_owned(), sha256_hex(&token), by.id.clone());
        let issued = self
            .update(move |t, now| {
                let u = t
                    .users
                    .get_mut(&name)
                    .ok_or_else(|| UsersError::Unknown(name.clone()))?;
                u.token_sha256 = hash;
                u.rotated_at = now;
                Ok((
                    (u.name.clone(), u.roles.clone()),
                    acted(now, &by, "user_rotate", Some(u.id.clone())),
                ))
            })
            .await?;
        Ok(Issued {
            user: issued.0,
            roles: issued.1,
            token,
        })
    }
}

/// The pseudonymous id → name map kept in a (stopped node's) store: what
/// `wlnode audit export --user-names` writes for the agency's own inspectors.
pub fn names_in(s: &wlnode_store::Store) -> Result<BTreeMap<String, String>, UsersError> {
    let table: Table = match s.meta_get(META_KEY)? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| UsersError::Corrupt(e.to_string()))?,
        None => Table::default(),
    };
    Ok(table.users.into_values().map(|u| (u.id, u.name)).collect())
}

/// An `acted` audit event.
pub fn acted(
    now: Timestamp,
    user: &str,
    action: &str,
    target: Option<String>,
) -> wlnode_audit::event::Event {
    wlnode_audit::event::Event::new(
        now.as_millis(),
        wlnode_audit::event::EventKind::Acted {
            user: user.to_owned(),
            action: action.to_owned(),
            target,
            records: None,
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_and_roles_are_checked() {
        for ok in ["alice", "b.smith-2", "x_y"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "Alice", "1abc", "a b", "ä", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!("approver".parse::<Role>().unwrap(), Role::Approver);
        assert!("root".parse::<Role>().is_err());
    }
}
