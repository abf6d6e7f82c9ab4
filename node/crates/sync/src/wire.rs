//! The sync protocol's one wire: [`Request`] and [`Response`] frames to and from their
//! protobuf encoding. Only this module knows the sync messages' prost types; every
//! decode validates and returns a typed error. Records inside transfers stay encoded
//! bytes until the receiver checks each one on its own.

use bytes::Bytes;
use prost::Message;
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_proto::v1 as pb;

use crate::msg::{
    Batch, Hello, Notify, Pull, Received, Reconcile, ReconcileReply, Request, Response, Transfer,
};

pub use wlnode_types::WireError;

fn decode<M: Message + Default>(what: &'static str, b: &[u8]) -> Result<M, WireError> {
    WireError::decode(what, b)
}

fn invalid(what: &'static str, reason: impl Into<String>) -> WireError {
    WireError::invalid(what, reason)
}

fn epoch(what: &'static str, b: &[u8]) -> Result<[u8; 16], WireError> {
    b.try_into()
        .map_err(|_| invalid(what, format!("log epoch must be 16 bytes, got {}", b.len())))
}

fn session(b: &[u8]) -> Result<[u8; 16], WireError> {
    b.try_into().map_err(|_| {
        invalid(
            "reconcile",
            format!("session must be 16 bytes, got {}", b.len()),
        )
    })
}

fn hello_to(h: &Hello) -> pb::Hello {
    pb::Hello {
        agency: h.agency.as_str().to_owned(),
        roster_version: h.roster_version,
        log_epoch: Bytes::copy_from_slice(&h.log_epoch),
        head_seq: h.head_seq,
        backlog_pending: h.backlog_pending,
    }
}

fn hello_from(h: pb::Hello) -> Result<Hello, WireError> {
    Ok(Hello {
        agency: AgencyCode::new(h.agency).map_err(|e| invalid("hello", e.to_string()))?,
        roster_version: h.roster_version,
        log_epoch: epoch("hello", &h.log_epoch)?,
        head_seq: h.head_seq,
        backlog_pending: h.backlog_pending,
    })
}

fn transfers_to(t: &[Transfer]) -> Vec<pb::Transfer> {
    t.iter()
        .map(|t| pb::Transfer {
            record: t.record.clone(),
            hops: t.hops,
            inclusion: t.inclusion.clone().unwrap_or_default(),
        })
        .collect()
}

fn transfers_from(t: Vec<pb::Transfer>) -> Vec<Received> {
    t.into_iter()
        .map(|t| Received {
            record: t.record,
            hops: t.hops,
            inclusion: (!t.inclusion.is_empty()).then_some(t.inclusion),
        })
        .collect()
}

/// Encodes a request frame.
pub fn encode_request(r: &Request) -> Vec<u8> {
    use pb::sync_request::Kind;
    let kind = match r {
        Request::Hello(h) => Kind::Hello(hello_to(h)),
        Request::Notify(n) => Kind::Notify(pb::Notify {
            log_epoch: Bytes::copy_from_slice(&n.log_epoch),
            head_seq: n.head_seq,
        }),
        Request::Pull(p) => Kind::Pull(pb::Pull {
            log_epoch: Bytes::copy_from_slice(&p.log_epoch),
            after_seq: p.after_seq,
            limit: p.limit,
            max_bytes: p.max_bytes,
        }),
        Request::Reconcile(r) => Kind::Reconcile(pb::Reconcile {
            session: Bytes::copy_from_slice(&r.session),
            message: r.message.clone(),
            have: transfers_to(&r.have),
            need: r
                .need
                .iter()
                .map(|id| Bytes::copy_from_slice(&id.0))
                .collect(),
        }),
    };
    pb::SyncRequest { kind: Some(kind) }.encode_to_vec()
}

/// Decodes a request frame.
pub fn decode_request(b: &[u8]) -> Result<Request<Received>, WireError> {
    use pb::sync_request::Kind;
    let m: pb::SyncRequest = decode("sync request", b)?;
    Ok(
        match m.kind.ok_or_else(|| invalid("sync request", "empty"))? {
            Kind::Hello(h) => Request::Hello(hello_from(h)?),
            Kind::Notify(n) => Request::Notify(Notify {
                log_epoch: epoch("notify", &n.log_epoch)?,
                head_seq: n.head_seq,
            }),
            Kind::Pull(p) => Request::Pull(Pull {
                log_epoch: epoch("pull", &p.log_epoch)?,
                after_seq: p.after_seq,
                limit: p.limit,
                max_bytes: p.max_bytes,
            }),
            Kind::Reconcile(r) => Request::Reconcile(Reconcile {
                session: session(&r.session)?,
                message: r.message,
                have: transfers_from(r.have),
                need: r
                    .need
                    .iter()
                    .map(|id| {
                        RecordId::from_slice(id).map_err(|e| invalid("reconcile", e.to_string()))
                    })
                    .collect::<Result<_, _>>()?,
            }),
            Kind::Roster(_) => {
                return Err(invalid(
                    "sync request",
                    "roster offers are not accepted over sync; rosters are distributed by the roster authority",
                ));
            }
        },
    )
}

/// Encodes a response frame.
pub fn encode_response(r: &Response) -> Vec<u8> {
    use pb::sync_response::Kind;
    let kind = match r {
        Response::Hello(h) => Kind::Hello(hello_to(h)),
        Response::Ack => Kind::Ack(pb::Ack {}),
        Response::Batch(b) => Kind::Batch(pb::Batch {
            log_epoch: Bytes::copy_from_slice(&b.log_epoch),
            records: transfers_to(&b.records),
            next_seq: b.next_seq,
            head_seq: b.head_seq,
            complete: b.complete,
        }),
        Response::Reconcile(r) => Kind::Reconcile(pb::ReconcileReply {
            session: Bytes::copy_from_slice(&r.session),
            message: r.message.clone(),
            records: transfers_to(&r.records),
        }),
        Response::Error { code, message } => Kind::Error(pb::SyncError {
            code: code.clone(),
            message: message.clone(),
        }),
    };
    pb::SyncResponse { kind: Some(kind) }.encode_to_vec()
}

/// Decodes a response frame.
pub fn decode_response(b: &[u8]) -> Result<Response<Received>, WireError> {
    use pb::sync_response::Kind;
    let m: pb::SyncResponse = decode("sync response", b)?;
    Ok(
        match m.kind.ok_or_else(|| invalid("sync response", "empty"))? {
            Kind::Hello(h) => Response::Hello(hello_from(h)?),
            Kind::Ack(_) => Response::Ack,
            Kind::Batch(b) => Response::Batch(Batch {
                log_epoch: epoch("batch", &b.log_epoch)?,
                records: transfers_from(b.records),
                next_seq: b.next_seq,
                head_seq: b.head_seq,
                complete: b.complete,
            }),
            Kind::Reconcile(r) => Response::Reconcile(ReconcileReply {
                session: session(&r.session)?,
                message: r.message,
                records: transfers_from(r.records),
            }),
            Kind::Error(e) => Response::Error {
                code: e.code.chars().take(64).collect(),
                message: e.message.chars().take(1024).collect(),
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the receiver of `t` decodes.
    fn received(t: &[Transfer]) -> Vec<Received> {
        t.iter()
            .map(|t| Received {
                record: t.record.clone(),
                hops: t.hops,
                inclusion: t.inclusion.clone(),
            })
            .collect()
    }

    fn request_received(r: &Request) -> Request<Received> {
        match r {
            Request::Hello(h) => Request::Hello(h.clone()),
            Request::Notify(n) => Request::Notify(*n),
            Request::Pull(p) => Request::Pull(*p),
            Request::Reconcile(x) => Request::Reconcile(Reconcile {
                session: x.session,
                message: x.message.clone(),
                have: received(&x.have),
                need: x.need.clone(),
            }),
        }
    }

    fn response_received(r: &Response) -> Response<Received> {
        match r {
            Response::Hello(h) => Response::Hello(h.clone()),
            Response::Ack => Response::Ack,
            Response::Batch(b) => Response::Batch(Batch {
                log_epoch: b.log_epoch,
                records: received(&b.records),
                next_seq: b.next_seq,
                head_seq: b.head_seq,
                complete: b.complete,
            }),
            Response::Reconcile(x) => Response::Reconcile(ReconcileReply {
                session: x.session,
                message: x.message.clone(),
                records: received(&x.records),
            }),
            Response::Error { code, message } => Response::Error {
                code: code.clone(),
                message: message.clone(),
            },
        }
    }

    #[test]
    fn round_trips() {
        let h = Hello {
            agency: "AA-EXPORT".parse().unwrap(),
            roster_version: 3,
            log_epoch: [9; 16],
            head_seq: 77,
            backlog_pending: true,
        };
        let reqs = vec![
            Request::Hello(h.clone()),
            Request::Notify(Notify {
                log_epoch: [1; 16],
                head_seq: 5,
            }),
            Request::Pull(Pull {
                log_epoch: [1; 16],
                after_seq: 5,
                limit: 10,
                max_bytes: 1000,
            }),
            Request::Reconcile(Reconcile {
                session: [2; 16],
                message: Bytes::from_static(b"neg"),
                have: vec![Transfer {
                    record: Bytes::from_static(b"rec"),
                    hops: 2,
                    inclusion: Some(Bytes::from_static(b"{}")),
                }],
                need: vec![RecordId([3; 32])],
            }),
        ];
        for r in reqs {
            assert_eq!(
                decode_request(&encode_request(&r)).unwrap(),
                request_received(&r)
            );
        }
        let resps = vec![
            Response::Hello(h),
            Response::Ack,
            Response::error("banned", "go away"),
            Response::Batch(Batch {
                log_epoch: [4; 16],
                records: vec![Transfer {
                    record: Bytes::from_static(b"rec"),
                    hops: 1,
                    inclusion: None,
                }],
                next_seq: 9,
                head_seq: 10,
                complete: false,
            }),
            Response::Reconcile(ReconcileReply {
                session: [7; 16],
                message: Bytes::from_static(b"neg"),
                records: Vec::new(),
            }),
        ];
        for r in resps {
            assert_eq!(
                decode_response(&encode_response(&r)).unwrap(),
                response_received(&r)
            );
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for len in 0..200usize {
            let b: Vec<u8> = (0..len).map(|i| (i * 131 + 7) as u8).collect();
            let _ = decode_request(&b);
            let _ = decode_response(&b);
        }
        assert!(decode_request(&[]).is_err());
    }
}
