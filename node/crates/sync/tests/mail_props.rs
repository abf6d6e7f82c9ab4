//! Property: over random connected topologies and random traffic, sealed mail routed
//! by `Mailer`s reaches every recipient exactly once, every sender gets its receipt,
//! and no relay or third party can read a message or holds its clear text: nothing a
//! non-recipient holds or writes to its store contains the content, and its
//! encryption key opens nothing (0 content leaks).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use wlnode_crypto::SecretKey;
use wlnode_crypto::mail::{Draft, Envelope, MailItem, Receipt};
use wlnode_crypto::model::{AgencyCode, MessageId};
use wlnode_crypto::seal::EncryptionSecretKey;
use wlnode_crypto::time::Timestamp;
use wlnode_sync::mail::{Intake, MailLimits, Mailer};

const T0: u64 = 1_780_000_000_000;

struct Node {
    code: AgencyCode,
    sign: SecretKey,
    enc: EncryptionSecretKey,
    mailer: Mailer,
    /// Everything this node ever wrote to its mail table.
    stored: Vec<u8>,
    delivered: Vec<(MessageId, Vec<u8>)>,
    receipts: BTreeSet<MessageId>,
}

fn marker(k: usize) -> Vec<u8> {
    format!("SECRET-CONTENT-{k:04}-end-user").into_bytes()
}

/// A connected graph on `n` nodes: a random spanning tree plus extra edges.
fn topology() -> impl Strategy<Value = (usize, Vec<(usize, usize)>)> {
    (3usize..7).prop_flat_map(|n| {
        let tree = proptest::collection::vec(any::<prop::sample::Index>(), n - 1);
        let extra = proptest::collection::vec((0..n, 0..n), 0..n);
        (Just(n), tree, extra).prop_map(|(n, tree, extra)| {
            let mut edges = BTreeSet::new();
            for (i, ix) in tree.iter().enumerate() {
                let child = i + 1;
                let parent = ix.index(child);
                edges.insert((parent.min(child), parent.max(child)));
            }
            for (a, b) in extra {
                if a != b {
                    edges.insert((a.min(b), a.max(b)));
                }
            }
            (n, edges.into_iter().collect())
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sealed_mail_reaches_its_recipient_once_and_leaks_to_nobody(
        (n, edges) in topology(),
        traffic in proptest::collection::vec((0usize..6, 0usize..6), 1..6),
        offline in proptest::collection::vec(any::<bool>(), 6),
    ) {
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| {
                let code = AgencyCode::new(format!("N{i}-X")).unwrap();
                Node {
                    mailer: Mailer::new(code.clone(), MailLimits::default()),
                    code,
                    sign: SecretKey::from_seed(&[i as u8 + 1; 32]),
                    enc: EncryptionSecretKey::generate().unwrap(),
                    stored: Vec::new(),
                    delivered: Vec::new(),
                    receipts: BTreeSet::new(),
                }
            })
            .collect();
        let mut sent = Vec::new();
        for (k, (from, to)) in traffic.iter().enumerate() {
            let (from, to) = (from % n, to % n);
            if from == to {
                continue;
            }
            let body = marker(k);
            let env = Envelope::seal(
                &Draft {
                    id: MessageId([k as u8 + 1; 16]),
                    from: nodes[from].code.clone(),
                    to: nodes[to].code.clone(),
                    kind: "test",
                    created_at: Timestamp(T0),
                    expires_at: Timestamp(T0 + 3_600_000),
                    plaintext: &body,
                },
                &nodes[from].sign,
                &nodes[to].enc.public_key().unwrap(),
            )
            .unwrap();
            nodes[from].mailer.send(env.clone(), Timestamp(T0)).unwrap();
            sent.push((env.header().id, from, to, body));
        }
        let neighbours = |i: usize, up: &[bool]| -> BTreeSet<AgencyCode> {
            edges
                .iter()
                .filter_map(|&(a, b)| {
                    let other = if a == i { b } else if b == i { a } else { return None };
                    up[other].then(|| AgencyCode::new(format!("N{other}-X")).unwrap())
                })
                .collect()
        };
        // Rounds: first with some nodes offline, then everyone up.
        for round in 0..(4 * n + 8) {
            let up: Vec<bool> = (0..n).map(|i| round >= 2 * n || !offline[i]).collect();
            let now = Timestamp(T0 + round as u64 * 10_000);
            for i in 0..n {
                if !up[i] {
                    continue;
                }
                nodes[i].mailer.retry(now);
                let (sends, _) = nodes[i].mailer.poll(&neighbours(i, &up), now);
                for s in sends {
                    let j: usize = s.to.as_str()[1..s.to.as_str().len() - 2].parse().unwrap();
                    let item = MailItem::decode(&s.frame).unwrap();
                    let from_code = nodes[i].code.clone();
                    let intake = nodes[j].mailer.on_item(&from_code, item, now);
                    match intake {
                        Intake::Deliver(env) => {
                            // Only the addressee is ever asked to open.
                            prop_assert_eq!(&env.header().to, &nodes[j].code);
                            let body = env.open(&nodes[j].enc).unwrap();
                            let receipt = Receipt::sign(env.header(), &nodes[j].sign, now);
                            nodes[j].mailer.on_delivered(&env, receipt, now);
                            nodes[j].delivered.push((env.header().id, body));
                        }
                        Intake::Receipt(r) => {
                            nodes[j].receipts.insert(r.body().message_id);
                        }
                        Intake::Refused(r) => prop_assert!(false, "refused {r:?}"),
                        Intake::Duplicate | Intake::Relay | Intake::Seen => {}
                    }
                    nodes[i].mailer.on_handed(&s.to, &s.key, s.ticket);
                }
                for (k, v) in nodes[i].mailer.take_writes() {
                    nodes[i].stored.extend_from_slice(&k);
                    nodes[i].stored.extend(v.unwrap_or_default());
                }
            }
        }
        for (id, from, to, body) in &sent {
            // Exactly once at the recipient, with the content.
            let got: Vec<_> = nodes[*to].delivered.iter().filter(|(d, _)| d == id).collect();
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(&got[0].1, body);
            // The sender has the receipt.
            prop_assert!(nodes[*from].receipts.contains(id));
            for (j, node) in nodes.iter().enumerate() {
                if j == *to {
                    continue;
                }
                // No one else received it or wrote its content anywhere.
                prop_assert!(!node.delivered.iter().any(|(d, _)| d == id));
                prop_assert!(
                    !node.stored.windows(body.len()).any(|w| w == &body[..]),
                    "content of {id} in node {j}'s store"
                );
            }
        }
        // No sender still waits for a receipt.
        for (id, from, _, _) in &sent {
            prop_assert!(!nodes[*from].mailer.is_pending(id));
        }
    }
}
