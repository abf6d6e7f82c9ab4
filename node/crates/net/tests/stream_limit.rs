//! Real libp2p: a mail request past the connection's stream limit fails
//! [`RequestFailure::Busy`], not [`RequestFailure::Stream`] (review s37-order H1).
//!
//! The event loop tells this local-capacity failure apart by libp2p's error text
//! (libp2p-request-response 0.30.0: "max sub-streams reached"); this test is what
//! notices when a libp2p upgrade changes it, instead of every such failure silently
//! becoming an ordinary stream failure again (and the mailer's old copies waiting
//! out their backoff behind newer ones).
#![allow(clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use libp2p::Multiaddr;
use tokio::sync::watch;
use wlnode_crypto::SecretKey;
use wlnode_net::{
    Command, FrameLimits, MAX_STREAMS, NetConfig, NetEvent, Network, PeerRef, RequestFailure,
};

const LIMITS: FrameLimits = FrameLimits {
    max_request: 64 * 1024,
    max_response: 64 * 1024,
};

/// The PeerId the network derives from `key` (as the runtime's roster lists it).
fn peer_of(key: &SecretKey) -> PeerRef {
    let mut seed = key.seed();
    let kp = libp2p::identity::Keypair::ed25519_from_bytes(seed.as_mut()).expect("ed25519 key");
    PeerRef::parse(&kp.public().to_peer_id().to_base58()).expect("peer id")
}

async fn node(key: &SecretKey, allowed: PeerRef, shutdown: watch::Receiver<bool>) -> Network {
    let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().expect("address");
    wlnode_net::start(
        NetConfig {
            key,
            listen: vec![listen],
            sync: LIMITS,
            audit: LIMITS,
            mail: LIMITS,
            allowed: vec![allowed],
            blocked: vec![],
            agent: "wlnode-net-test".into(),
        },
        shutdown,
    )
    .await
    .expect("network starts")
}

/// A opens `MAX_STREAMS + 6` mail requests to B, which reads them and never answers:
/// A's first `MAX_STREAMS` hold the connection's streams (until their 120 s timeout),
/// and the 6 past them fail at once, each `Busy`. Nothing else ends before them: no
/// answer, no other kind of failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_requests_past_the_stream_limit_fail_busy() {
    let (_stop, shutdown) = watch::channel(false);
    let (ka, kb) = (
        SecretKey::from_seed(&[1; 32]),
        SecretKey::from_seed(&[2; 32]),
    );
    let mut a = node(&ka, peer_of(&kb), shutdown.clone()).await;
    let mut b = node(&kb, peer_of(&ka), shutdown.clone()).await;
    assert_eq!(a.handle.local_peer(), peer_of(&ka));
    let b_peer = b.handle.local_peer();
    a.handle.dial(1, b.listen_addrs.clone());

    let extra = 6;
    let run = async {
        // Connected first, so that every request goes over this one connection.
        loop {
            match a.events.recv().await.expect("A's network runs") {
                NetEvent::Connected { peer, .. } if peer == b_peer => break,
                NetEvent::DialFailed { error, .. } => panic!("dial failed: {error}"),
                _ => {}
            }
        }
        for token in 0..(MAX_STREAMS + extra) as u64 {
            a.handle.send(Command::MailRequest {
                peer: b_peer,
                token,
                frame: Bytes::from(vec![7u8; 32]),
            });
        }
        let mut busy = Vec::new();
        let mut b_requests = Vec::new();
        while busy.len() < extra {
            tokio::select! {
                ev = a.events.recv() => match ev.expect("A's network runs") {
                    NetEvent::RequestFailed { token, failure, error, .. } => {
                        assert_eq!(
                            failure,
                            RequestFailure::Busy,
                            "request {token} failed {failure:?} ({error}), not Busy: has \
                             libp2p's stream-limit error changed?"
                        );
                        busy.push(token);
                    }
                    NetEvent::Response { token, .. } => {
                        panic!("request {token} was answered; B never answers")
                    }
                    _ => {}
                },
                ev = b.events.recv() => {
                    // Read and kept unanswered: each holds one of the streams.
                    match ev.expect("B's network runs") {
                        NetEvent::Request { id, .. } => b_requests.push(id),
                        // A stream A dropped past its limit, if B had accepted it,
                        // ended before any byte: no strike (s37 final review L2).
                        NetEvent::InboundFailed { violation: true, .. } => {
                            panic!("B counted a violation against A for a dropped stream")
                        }
                        _ => {}
                    }
                }
            }
        }
        (busy, b_requests)
    };
    // A guard against a hang only (the failures come at once); no timing is asserted.
    let (busy, b_requests) = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the requests past the stream limit fail within the guard");
    assert_eq!(busy.len(), extra);
    assert!(
        b_requests.len() <= MAX_STREAMS,
        "B saw {} requests, more than the {MAX_STREAMS} streams",
        b_requests.len()
    );
}
