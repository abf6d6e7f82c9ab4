//! `POST /v1/backup`: a consistent snapshot of the running node's store, streamed to
//! the caller (`wlnode backup`). The store actor writes it into a temporary file in
//! the data dir as one job, so no write interleaves; the file is unlinked as soon as
//! it is open, so nothing is left behind even if the caller goes away.

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt;
use wlnode_runtime::users::Actor;

use super::{ApiError, ApiState};
use wlnode_store::StoreError;
use wlnode_store::backup::BackupError;

fn backup_failed(e: BackupError) -> ApiError {
    match e {
        BackupError::Store(e) => e.into(),
        other => ApiError::with_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backup_failed",
            other.to_string(),
        ),
    }
}

#[utoipa::path(post, path = "/v1/backup", tag = "node",
    responses((status = 200, description = "Backup file (see node/src/store/backup.rs)", content_type = "application/octet-stream"),
              (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn backup(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
) -> Result<Response, ApiError> {
    super::users::record(&state, &actor, "backup", None).await;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| {
        backup_failed(BackupError::Store(StoreError::Open {
            path: state.node.config.raw.data_dir.clone(),
            reason: format!("random file name: {e}"),
        }))
    })?;
    let path = state
        .node
        .config
        .raw
        .data_dir
        .join(format!("backup-{}.tmp", hex::encode(nonce)));
    let p = path.clone();
    let started = std::time::Instant::now();
    let summary = state
        .node
        .store
        .call(move |s| Ok(s.backup_to_file(&p)))
        .await?;
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(backup_failed(e));
        }
    };
    let file = tokio::fs::File::open(&path).await;
    let _ = std::fs::remove_file(&path);
    let file = file.map_err(|e| {
        backup_failed(BackupError::Io {
            path: path.clone(),
            source: e,
        })
    })?;
    tracing::info!(
        records = summary.records,
        bytes = summary.bytes,
        took_ms = started.elapsed().as_millis() as u64,
        "backup taken"
    );
    let stream = futures::stream::unfold(Some(file), |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, summary.bytes.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
