//! The API client the CLI (and integration tests) use to talk to a running node.
//!
//! It finds the node from its config: the `[api]` address (or, when the config uses
//! port 0, the address the node wrote to `<data_dir>/api.addr` after binding) and the
//! bearer token from `api.token_file`.
//!
//! [`fetch`] is the node's other HTTP client: the bounded, conditional GET that the
//! runtime's scheduled sources use (this crate is the only one that links reqwest);
//! [`webhook`] posts the node's notifications to configured receivers.

pub mod fetch;
pub mod webhook;

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{EntryDraft, EntryId};

use wlnode_config::token::read_token;
use wlnode_config::{API_ADDR_FILE, Config};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node is not reachable.
    #[error(
        "cannot reach the node API at {addr}: {reason} (is `wlnode run --config {config}` running?)"
    )]
    Connect {
        /// Address tried.
        addr: SocketAddr,
        /// Why.
        reason: String,
        /// Config file.
        config: String,
    },
    /// The node answered with an error.
    #[error("{message} (HTTP {status}{})", field.as_ref().map(|f| format!(", field {f}")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: u16,
        /// Machine-readable code.
        code: String,
        /// Message.
        message: String,
        /// Offending field.
        field: Option<String>,
    },
    /// The response did not decode.
    #[error("unexpected response from the node: {0}")]
    Decode(String),
    /// Local setup (config, token) failed.
    #[error("{0}")]
    Setup(String),
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    field: Option<String>,
}

/// A client for one node's API.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    addr: SocketAddr,
    token: String,
    config: String,
    /// Writes ask the node to write even while local writes are held (`?force=true`).
    force: bool,
}

/// The environment variable that gives the CLI a user's API token.
pub const TOKEN_ENV: &str = "WLNODE_TOKEN";

impl Client {
    /// A client for the node that `cfg` configures, acting as the user whose token is
    /// in `WLNODE_TOKEN`, else in the config's `api.token_file`.
    pub fn from_config(cfg: &Config) -> Result<Self, ClientError> {
        let mut addr = *cfg.raw.api.listen.get_ref();
        if addr.port() == 0 {
            let file = cfg.raw.data_dir.join(API_ADDR_FILE);
            let text = std::fs::read_to_string(&file).map_err(|e| {
                ClientError::Setup(format!(
                    "the config uses API port 0 and {} cannot be read ({e}); is the node running?",
                    file.display()
                ))
            })?;
            addr = text.trim().parse().map_err(|_| {
                ClientError::Setup(format!("{} does not hold an address", file.display()))
            })?;
            // The token goes to this address: never to another host, whoever wrote
            // the file.
            if !addr.ip().is_loopback() {
                return Err(ClientError::Setup(format!(
                    "{} names {addr}, which is not a loopback address; the API only listens on 127.0.0.1 or ::1, and the token is never sent elsewhere",
                    file.display()
                )));
            }
        }
        // `WLNODE_TOKEN` acts as the user whose token it is; else the token file.
        let token = match std::env::var(TOKEN_ENV) {
            Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
            _ => read_token(&cfg.raw.api.token_file)
                .map_err(|e| ClientError::Setup(e.to_string()))?,
        };
        Self::new(addr, token, cfg.path.display().to_string())
    }

    /// A client for `addr` with `token`.
    pub fn new(addr: SocketAddr, token: String, config: String) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .no_proxy()
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            base: format!("http://{addr}"),
            addr,
            token,
            config,
            force: false,
        })
    }

    /// The same client; with `force`, its writes (amend, withdraw, import) go through
    /// even while the node holds local writes after a restore or a store reopen.
    pub fn forcing(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// `path`, with `?force=true` when this client forces writes.
    fn write_path(&self, path: &str) -> String {
        if self.force {
            format!("{path}?force=true")
        } else {
            path.to_owned()
        }
    }

    /// Sends `req` with the token; a non-2xx answer becomes a typed error (the API's
    /// JSON error body when there is one). Returns the body.
    async fn send_bytes(&self, req: reqwest::RequestBuilder) -> Result<bytes::Bytes, ClientError> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ClientError::Connect {
                addr: self.addr,
                reason: e.to_string(),
                config: self.config.clone(),
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => ClientError::Api {
                    status: status.as_u16(),
                    code: b.error.code,
                    message: b.error.message,
                    field: b.error.field,
                },
                Err(_) => ClientError::Api {
                    status: status.as_u16(),
                    code: "http".into(),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                    field: None,
                },
            });
        }
        Ok(bytes)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let bytes = self.send_bytes(req).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `POST /v1/backup`: streams the running node's snapshot into `out`. Returns the
    /// bytes written.
    pub async fn backup_to(
        &self,
        out: &mut (impl std::io::Write + ?Sized),
    ) -> Result<u64, ClientError> {
        let mut resp = self
            .http
            .post(self.url("/v1/backup"))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ClientError::Connect {
                addr: self.addr,
                reason: e.to_string(),
                config: self.config.clone(),
            })?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| ClientError::Decode(e.to_string()))?;
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => ClientError::Api {
                    status: status.as_u16(),
                    code: b.error.code,
                    message: b.error.message,
                    field: b.error.field,
                },
                Err(_) => ClientError::Api {
                    status: status.as_u16(),
                    code: "http".into(),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                    field: None,
                },
            });
        }
        let mut n = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ClientError::Decode(format!("backup stream broke: {e}")))?
        {
            out.write_all(&chunk)
                .map_err(|e| ClientError::Setup(format!("cannot write the backup: {e}")))?;
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.http.get(self.url(path))).await
    }

    /// The node's API address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET path` as text (for `/metrics`).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let bytes = self.send_bytes(self.http.get(self.url(path))).await?;
        String::from_utf8(bytes.to_vec()).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `POST path` with a JSON body.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// `DELETE path`, answering JSON.
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.http.delete(self.url(path))).await
    }

    /// Blocks (or unblocks) a neighbour agency at the transport level
    /// (`POST /v1/peers/{agency}/block` or `/unblock`); returns `{agency, blocked, changed}`.
    pub async fn peer_block(
        &self,
        agency: &wlnode_crypto::model::AgencyCode,
        block: bool,
    ) -> Result<serde_json::Value, ClientError> {
        let verb = if block { "block" } else { "unblock" };
        self.post_json(
            &format!("/v1/peers/{agency}/{verb}"),
            &serde_json::json!({}),
        )
        .await
    }

    /// The scheduled source lists (`GET /v1/sources`): `{sources: [...]}`.
    pub async fn sources(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/v1/sources").await
    }

    /// Refreshes a source now (`POST /v1/sources/{name}/run`) and returns its report.
    pub async fn source_run(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        // Names are checked by the config ([a-z0-9._-]), so a valid one needs no
        // escaping; any other is refused here rather than altered (`un/sc` must not
        // run `unsc`).
        let name = wlnode_config::sources::SourceName::new(name).map_err(ClientError::Setup)?;
        self.post_json(&format!("/v1/sources/{name}/run"), &serde_json::json!({}))
            .await
    }

    /// Adds an entry; returns `{entry_id, record_id, version}`.
    pub async fn add(&self, draft: &serde_json::Value) -> Result<serde_json::Value, ClientError> {
        self.post_json("/v1/entries", draft).await
    }

    /// Amends an entry.
    pub async fn amend(
        &self,
        id: &str,
        draft: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.send(
            self.http
                .put(self.url(&self.write_path(&format!("/v1/entries/{id}"))))
                .json(draft),
        )
        .await
    }

    /// Withdraws an entry.
    pub async fn withdraw(&self, id: &str, reason: &str) -> Result<serde_json::Value, ClientError> {
        self.post_json(
            &self.write_path(&format!("/v1/entries/{id}/withdraw")),
            &serde_json::json!({ "reason": reason }),
        )
        .await
    }

    /// One entry.
    pub async fn show(
        &self,
        id: &str,
        origin: Option<&str>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut req = self.http.get(self.url(&format!("/v1/entries/{id}")));
        if let Some(o) = origin {
            req = req.query(&[("origin", o)]);
        }
        self.send(req).await
    }

    /// One page of entries.
    pub async fn list_page(&self, query: &[(&str, String)]) -> Result<Page, ClientError> {
        self.send(self.http.get(self.url("/v1/entries")).query(query))
            .await
    }

    /// Every entry matching `query`, following pagination (or at most `limit`).
    pub async fn list_all(
        &self,
        query: &[(&str, String)],
        limit: Option<usize>,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            let want = limit.map_or(1000, |l| (l - out.len()).clamp(1, 1000));
            q.push(("limit", want.to_string()));
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = self.list_page(&q).await?;
            out.extend(page.entries);
            if limit.is_some_and(|l| out.len() >= l) {
                out.truncate(limit.unwrap_or(out.len()));
                break;
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// Node status.
    pub async fn status(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/v1/status").await
    }

    /// Screens one name (`GET /v1/screen`); returns the JSON answer.
    pub async fn screen(
        &self,
        req: &wlnode_screen::request::ScreenRequest,
    ) -> Result<serde_json::Value, ClientError> {
        let mut q: Vec<(&str, String)> = vec![("q", req.name.clone())];
        let opt = [
            ("kind", req.kind.clone()),
            ("country", req.country.clone()),
            ("dob", req.dob.clone()),
            ("id", req.id.clone()),
            ("limit", req.limit.map(|l| l.to_string())),
            ("min_score", req.min_score.map(|s| s.to_string())),
            (
                "include_withdrawn",
                req.include_withdrawn.map(|b| b.to_string()),
            ),
            ("ref", req.reference.clone()),
            ("origin", req.origin.clone()),
            ("reason", req.reason.clone()),
            ("category", req.category.clone()),
            ("exclude", req.exclude.as_ref().map(|e| e.join(","))),
        ];
        q.extend(opt.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        self.send(self.http.get(self.url("/v1/screen")).query(&q))
            .await
    }

    /// Screens a list of parties (`POST /v1/screen/batch`, JSON); `defaults` are
    /// query-string options (limit, min_score, include_withdrawn).
    pub async fn screen_batch(
        &self,
        parties: &[wlnode_screen::request::ScreenRequest],
        defaults: &[(&str, String)],
    ) -> Result<wlnode_screen::request::BatchResponse, ClientError> {
        self.send(
            self.http
                .post(self.url("/v1/screen/batch"))
                .query(defaults)
                .json(parties),
        )
        .await
    }

    /// Sends one import batch.
    pub async fn import_batch(
        &self,
        source_list: &str,
        items: &[ImportRow<'_>],
    ) -> Result<ImportReply, ClientError> {
        // Serialized straight from the rows: a `json!` value would first copy every
        // draft into a tree of values.
        #[derive(Serialize)]
        struct Body<'a, 'b> {
            source_list: &'a str,
            items: &'a [ImportRow<'b>],
        }
        self.post_json(&self.write_path("/v1/import"), &Body { source_list, items })
            .await
    }

    /// Opens an import batch (four-eyes release of an import); returns its id.
    pub async fn open_import_batch(
        &self,
        source_list: &str,
        withdraw_missing: bool,
    ) -> Result<String, ClientError> {
        let v: serde_json::Value = self
            .post_json(
                "/v1/import-batches",
                &serde_json::json!({ "source_list": source_list, "withdraw_missing": withdraw_missing }),
            )
            .await?;
        v.get("batch_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Decode("no batch_id in the answer".into()))
    }

    /// Uploads rows to an open import batch.
    pub async fn upload_import_rows(
        &self,
        batch_id: &str,
        items: &[ImportRow<'_>],
    ) -> Result<UploadReply, ClientError> {
        self.post_json(
            &format!("/v1/import-batches/{batch_id}/rows"),
            &serde_json::json!({ "items": items }),
        )
        .await
    }

    /// Submits an import batch for approval; returns the batch with its summary.
    pub async fn submit_import_batch(
        &self,
        batch_id: &str,
    ) -> Result<serde_json::Value, ClientError> {
        self.post_json(
            &format!("/v1/import-batches/{batch_id}/submit"),
            &serde_json::json!({}),
        )
        .await
    }

    /// Withdraws the entries of `source_list` not in `keep`.
    pub async fn withdraw_missing(
        &self,
        source_list: &str,
        keep: &[String],
    ) -> Result<serde_json::Value, ClientError> {
        self.post_json(
            &self.write_path("/v1/import/withdraw-missing"),
            &serde_json::json!({ "source_list": source_list, "keep": keep }),
        )
        .await
    }
}

/// What an import-batch upload kept.
#[derive(Debug, Deserialize)]
pub struct UploadReply {
    /// Rows kept.
    pub accepted: usize,
    /// Rows refused, by position in the upload.
    pub failed: Vec<UploadFailure>,
}

/// A row an upload refused.
#[derive(Debug, Deserialize)]
pub struct UploadFailure {
    /// Position in the upload.
    pub index: usize,
    /// Why.
    pub error: String,
}

/// A page of entries as JSON values.
#[derive(Debug, Deserialize)]
pub struct Page {
    /// Entries.
    pub entries: Vec<serde_json::Value>,
    /// Cursor for the next page.
    pub next_cursor: Option<String>,
}

/// One import row sent to the API.
#[derive(Debug, Serialize)]
pub struct ImportRow<'a> {
    /// The source's own id.
    pub source_id: &'a str,
    /// The entry.
    pub entry: &'a EntryDraft,
}

/// The API's answer to an import batch.
#[derive(Debug, Deserialize)]
pub struct ImportReply {
    /// One result per row.
    pub results: Vec<ImportResult>,
}

/// One row's result.
#[derive(Debug, Deserialize)]
pub struct ImportResult {
    /// `imported`, `amended`, `unchanged` or `failed`.
    pub result: String,
    /// Entry id, unless failed.
    pub entry_id: Option<EntryId>,
    /// Error, when failed.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Issue 19 item 6: with API port 0 the CLI read the address from `api.addr` in
    /// the data dir and sent the token to whatever it named.
    #[test]
    fn an_api_addr_file_naming_another_host_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("api.token");
        std::fs::write(&token, "t0k3n-t0k3n-t0k3n-t0k3n-t0k3n-t0k3n\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let cfg = Config::parse(
            &dir.path().join("node.toml"),
            &format!(
                "agency = \"AA-EXPORT\"\nroster = \"r\"\nagency_key = \"a\"\nnode_key = \"n\"\n\
                 data_dir = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
                dir.path().display(),
                token.display()
            ),
        )
        .unwrap();
        let addr_file = Path::new(&cfg.raw.data_dir).join(wlnode_config::API_ADDR_FILE);
        std::fs::write(&addr_file, "192.0.2.7:7480\n").unwrap();
        match Client::from_config(&cfg) {
            Err(ClientError::Setup(m)) => assert!(m.contains("not a loopback"), "{m}"),
            other => panic!("{other:?}"),
        }
        std::fs::write(&addr_file, "127.0.0.1:7480\n").unwrap();
        assert!(Client::from_config(&cfg).is_ok());
    }

    /// `source run un/sc` used to strip the '/' and run `unsc`: a name that is no
    /// valid source name is refused before any request (the port is closed, so a
    /// request would be a connect error instead).
    #[tokio::test]
    async fn a_source_name_is_never_altered() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = l.local_addr().unwrap();
        drop(l);
        let c = Client::new(closed, "t".repeat(32), "node.toml".into()).unwrap();
        for bad in ["un/sc", "un sc", "../x", "UN", ""] {
            match c.source_run(bad).await {
                Err(ClientError::Setup(m)) => assert!(m.contains("invalid source name"), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(
            c.source_run("un-sc").await,
            Err(ClientError::Connect { .. })
        ));
    }
}
