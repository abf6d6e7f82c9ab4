//! Encryption-key rotation for sealed messages (review of issue 21, finding 7), across
//! real in-process nodes on loopback TCP: a message sealed to the recipient's previous
//! key while the route was down still opens after the roster rotated the key, and the
//! rotation takes effect on the running nodes at reload, without a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use wlnode_crypto::keyfile::{KeyKind, read_secret_key, write_encryption_key};
use wlnode_crypto::mail::MailItem;
use wlnode_crypto::model::{AgencyCode, MessageId};
use wlnode_crypto::seal::{EncryptionPublicKey, EncryptionSecretKey};
use wlnode_crypto::time::Timestamp;
use wlnode_store::tables::LocalTable;
use wlnode_tests::{Cluster, agency, wait_for};

const T: Duration = Duration::from_secs(120);

fn code(i: usize) -> AgencyCode {
    AgencyCode::new(agency(i)).unwrap()
}

/// The recipient key in the header of node `i`'s own held (unreceipted) message `id`.
async fn sealed_to(c: &Cluster, i: usize, id: MessageId) -> EncryptionPublicKey {
    let rows = c
        .node(i)
        .services
        .store
        .call(|s| s.table_range(LocalTable::Mail, b"qm", b"qn", 1000))
        .await
        .unwrap();
    rows.iter()
        .find_map(|(_, v)| {
            // Our own item: no origin (length byte 0), then the frame.
            let MailItem::Envelope(e) = MailItem::decode(v.get(1..)?).ok()? else {
                return None;
            };
            (e.header().id == id).then(|| e.header().recipient_key)
        })
        .expect("the message is held in the outbox")
}

async fn delivered(c: &Cluster, i: usize, id: MessageId) -> bool {
    c.node(i)
        .services
        .mail
        .outbox_item(id)
        .await
        .unwrap()
        .is_some_and(|o| o.state == "delivered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sealed_to_the_previous_key_opens_after_a_rotation_without_restart() {
    // A — R — B, and R is down: what A sends to B waits in A's outbox.
    let mut c = Cluster::simple(3, &[(0, 1), (1, 2)]);
    c.start(0).await;
    c.start(2).await;
    let (a, b) = (0, 2);
    let old = c
        .node(a)
        .services
        .trust
        .roster()
        .encryption_key(&code(b), Timestamp::now());
    let old = old.unwrap();
    let m1 = c
        .node(a)
        .services
        .mail
        .send(&code(b), "test.note", b"sealed to the old key", 3_600_000)
        .await
        .unwrap();
    assert_eq!(sealed_to(&c, a, m1).await, old);

    // B's operator provisions the next key in its keys folder; the authority lists it
    // and ends the old key's window; both running nodes reload.
    let b_dir = c.fed.nodes[b].dir.clone();
    let keys_dir = b_dir.join("encryption-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let next = EncryptionSecretKey::generate().unwrap();
    let new = next.public_key().unwrap();
    write_encryption_key(&keys_dir.join("2027.key"), &next).unwrap();
    let cfg_path = c.fed.nodes[b].config.clone();
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let cfg = cfg.replacen(
        "encryption_key = \"encryption.key\"\n",
        "encryption_key = \"encryption.key\"\nencryption_keys_dir = \"encryption-keys\"\n",
        1,
    );
    assert!(
        cfg.contains("encryption_keys_dir"),
        "the config names the keys folder"
    );
    std::fs::write(&cfg_path, cfg).unwrap();
    assert_eq!(c.node(b).services.control.encryption_keys(), vec![old]);
    let now = Timestamp::now();
    let text = std::fs::read_to_string(&c.fed.roster).unwrap();
    let text = wlnode_config::roster_edit::add_encryption_key(&text, &code(b), &new, now).unwrap();
    let text =
        wlnode_config::roster_edit::retire_encryption_key(&text, &code(b), &old, now).unwrap();
    let auth = read_secret_key(&c.fed.authority_key, KeyKind::Authority).unwrap();
    let (signed, sig, _) = wlnode_config::roster_edit::sign(&text, &auth).unwrap();
    std::fs::write(&c.fed.roster, signed).unwrap();
    std::fs::write(c.fed.roster.with_extension("toml.sig"), sig.to_text()).unwrap();
    for i in [a, b] {
        c.node(i).services.control.reload().await.unwrap();
    }
    // B holds both keys now (the old one's messages may still be in flight), and what A
    // sends from now on is sealed to the new one.
    let mut held = c.node(b).services.control.encryption_keys();
    held.sort();
    let mut both = vec![old, new];
    both.sort();
    assert_eq!(held, both);
    let m2 = c
        .node(a)
        .services
        .mail
        .send(&code(b), "test.note", b"sealed to the new key", 3_600_000)
        .await
        .unwrap();
    assert_eq!(sealed_to(&c, a, m2).await, new);

    // The relay comes up: both reach B, which opens each with the key its header
    // names, and both receipts come back. Nobody restarted.
    c.start(1).await;
    wait_for(T, "B opens both messages", || async {
        let inbox = c.node(b).services.mail.inbox(100).await.unwrap();
        [m1, m2]
            .iter()
            .all(|id| inbox.iter().any(|m| m.message_id == *id))
    })
    .await;
    let inbox = c.node(b).services.mail.inbox(100).await.unwrap();
    let body = |id| {
        inbox
            .iter()
            .find(|m| m.message_id == id)
            .unwrap()
            .body
            .clone()
    };
    assert_eq!(body(m1), "sealed to the old key");
    assert_eq!(body(m2), "sealed to the new key");
    wait_for(T, "A sees both receipts", || async {
        delivered(&c, a, m1).await && delivered(&c, a, m2).await
    })
    .await;
    // B's answer (its own send) is sealed to A's key, and A opens it as before.
    let reply = c
        .node(b)
        .services
        .mail
        .send(&code(a), "test.note", b"reply", 3_600_000)
        .await
        .unwrap();
    wait_for(T, "A gets B's reply", || async {
        c.node(a)
            .services
            .mail
            .inbox(100)
            .await
            .unwrap()
            .iter()
            .any(|m| m.message_id == reply)
    })
    .await;
    for i in 0..3 {
        c.stop(i).await;
    }
}

/// Review s30-consult2, M3: one bad file in `encryption_keys_dir` (a key left mode
/// 0644, or garbage) failed every reload, after the new roster was anchored but before
/// its revocations applied, so a revocation never took effect. Now the keys are read
/// before anything is anchored, a bad file in the folder is skipped with a logged
/// error naming it, and the reload applies the roster. The roster's adoption time
/// (the start of the revocation grace) is noted from the anchor at start and at the
/// reload (review s33-mail L2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_file_does_not_block_a_revoking_reload() {
    use std::os::unix::fs::PermissionsExt;
    let mut c = Cluster::simple(2, &[(0, 1)]);
    c.start(0).await;
    let n = 0;
    let before = c.node(n).services.control.encryption_keys();
    let dir = c.fed.nodes[n].dir.clone();
    let keys_dir = dir.join("encryption-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let loose = keys_dir.join("loose.key");
    write_encryption_key(&loose, &EncryptionSecretKey::generate().unwrap()).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let garbage = keys_dir.join("x.key");
    std::fs::write(&garbage, b"not a key\n").unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg_path = c.fed.nodes[n].config.clone();
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let cfg = cfg.replacen(
        "encryption_key = \"encryption.key\"\n",
        "encryption_key = \"encryption.key\"\nencryption_keys_dir = \"encryption-keys\"\n",
        1,
    );
    assert!(cfg.contains("encryption_keys_dir"));
    std::fs::write(&cfg_path, cfg).unwrap();
    // The authority revokes a stolen key of agency 1.
    let stolen = wlnode_crypto::SecretKey::generate().unwrap();
    let past = Timestamp(Timestamp::now().as_millis() - 7_200_000);
    let text = std::fs::read_to_string(&c.fed.roster).unwrap();
    let text =
        wlnode_config::roster_edit::add_key(&text, &code(1), &stolen.public_key(), past).unwrap();
    let text = wlnode_config::roster_edit::revoke_key(
        &text,
        &code(1),
        &stolen.public_key(),
        Timestamp(past.0 + 1000),
        "stolen",
        &[],
    )
    .unwrap();
    let auth = read_secret_key(&c.fed.authority_key, KeyKind::Authority).unwrap();
    let (signed, sig, _) = wlnode_config::roster_edit::sign(&text, &auth).unwrap();
    std::fs::write(&c.fed.roster, signed).unwrap();
    std::fs::write(c.fed.roster.with_extension("toml.sig"), sig.to_text()).unwrap();
    let anchored = || async {
        c.node(n)
            .services
            .store
            .call(|s| s.roster_adopted())
            .await
            .unwrap()
    };
    // Review s33-mail L2: the adoption time the anchor records is the one the
    // revocation grace runs from, at start and after a live reload.
    let at_start = anchored().await;
    assert!(at_start.is_some());
    assert_eq!(c.node(n).services.trust.adopted(), at_start);
    let report = c.node(n).services.control.reload().await.unwrap();
    assert!(report.roster_changed);
    let roster = c.node(n).services.trust.roster();
    assert_eq!(roster.revocations().count(), 1);
    let reloaded = anchored().await;
    assert_eq!(reloaded.map(|(v, _)| v), Some(roster.version()));
    assert_eq!(c.node(n).services.trust.adopted(), reloaded);
    // The node keeps serving with the keys it had.
    assert_eq!(c.node(n).services.control.encryption_keys(), before);
    assert!(c.node(n).services.mail.inbox(10).await.is_ok());
    c.stop(n).await;
}

/// Issue 21: `encryption_keys_dir` kept only its first 64 files by name, so the
/// roster's current key, named last, was silently left out. Now the current key is
/// looked up by its public key past the cap. A reload whose roster names a current
/// key found in no key file still applies the roster (its revocations above all) and
/// warns, naming the folder and the key (review s31-mail M6: it used to fail after
/// anchoring the roster, so revocations were not applied and a restart disagreed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_key_is_kept_past_the_folder_cap_and_a_reload_without_it_applies_the_roster_and_warns()
 {
    let mut c = Cluster::simple(2, &[(0, 1)]);
    c.start(0).await;
    let n = 0;
    let old = c.node(n).services.control.encryption_keys();
    let keys_dir = c.fed.nodes[n].dir.join("encryption-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    // 64 spare keys first in name order, then the next key, named last.
    for i in 0..wlnode_runtime::node::MAX_ENCRYPTION_KEY_FILES {
        write_encryption_key(
            &keys_dir.join(format!("a{i:03}.key")),
            &EncryptionSecretKey::generate().unwrap(),
        )
        .unwrap();
    }
    let next = EncryptionSecretKey::generate().unwrap();
    let new = next.public_key().unwrap();
    write_encryption_key(&keys_dir.join("zz-next.key"), &next).unwrap();
    let cfg_path = c.fed.nodes[n].config.clone();
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let cfg = cfg.replacen(
        "encryption_key = \"encryption.key\"\n",
        "encryption_key = \"encryption.key\"\nencryption_keys_dir = \"encryption-keys\"\n",
        1,
    );
    assert!(cfg.contains("encryption_keys_dir"));
    std::fs::write(&cfg_path, cfg).unwrap();
    let rotate = |to: &EncryptionPublicKey, retire: &EncryptionPublicKey| {
        let now = Timestamp::now();
        let text = std::fs::read_to_string(&c.fed.roster).unwrap();
        let text =
            wlnode_config::roster_edit::add_encryption_key(&text, &code(n), to, now).unwrap();
        let text = wlnode_config::roster_edit::retire_encryption_key(&text, &code(n), retire, now)
            .unwrap();
        let auth = read_secret_key(&c.fed.authority_key, KeyKind::Authority).unwrap();
        let (signed, sig, _) = wlnode_config::roster_edit::sign(&text, &auth).unwrap();
        std::fs::write(&c.fed.roster, signed).unwrap();
        std::fs::write(c.fed.roster.with_extension("toml.sig"), sig.to_text()).unwrap();
    };
    rotate(&new, &old[0]);
    c.node(n).services.control.reload().await.unwrap();
    let held = c.node(n).services.control.encryption_keys();
    assert!(
        held.contains(&new),
        "the current key, named last, is held: {held:?}"
    );
    assert!(held.contains(&old[0]), "the previous key stays: {held:?}");

    assert_eq!(c.node(n).services.metrics.encryption_key_missing.get(), 0);

    // The authority rotates to a key the operator has not provisioned, and in the
    // same roster revokes a stolen key of agency 1 (review s31-mail M6): the reload
    // applies the roster, revocation included, and reports the missing key (a
    // warning naming the folder and the key, the gauge); the keys held stay.
    let unprovisioned = EncryptionSecretKey::generate()
        .unwrap()
        .public_key()
        .unwrap();
    rotate(&unprovisioned, &new);
    let stolen = wlnode_crypto::SecretKey::generate().unwrap();
    let past = Timestamp(Timestamp::now().as_millis() - 7_200_000);
    let text = std::fs::read_to_string(&c.fed.roster).unwrap();
    let text =
        wlnode_config::roster_edit::add_key(&text, &code(1), &stolen.public_key(), past).unwrap();
    let text = wlnode_config::roster_edit::revoke_key(
        &text,
        &code(1),
        &stolen.public_key(),
        Timestamp(past.0 + 1000),
        "stolen",
        &[],
    )
    .unwrap();
    let auth = read_secret_key(&c.fed.authority_key, KeyKind::Authority).unwrap();
    let (signed, sig, _) = wlnode_config::roster_edit::sign(&text, &auth).unwrap();
    std::fs::write(&c.fed.roster, signed).unwrap();
    std::fs::write(c.fed.roster.with_extension("toml.sig"), sig.to_text()).unwrap();
    let report = c.node(n).services.control.reload().await.unwrap();
    assert!(report.roster_changed);
    assert_eq!(c.node(n).services.trust.roster().revocations().count(), 1);
    let warning = report
        .warnings
        .iter()
        .find(|w| w.contains(&unprovisioned.to_string()))
        .unwrap_or_else(|| panic!("no warning naming the key: {:?}", report.warnings));
    assert!(warning.contains("encryption-keys"), "{warning}");
    assert_eq!(c.node(n).services.metrics.encryption_key_missing.get(), 1);
    assert_eq!(c.node(n).services.control.encryption_keys(), held);
    // The roster in force is the one anchored: a restart takes the same roster,
    // reports the same missing key and keeps the revocation.
    let version = c.node(n).services.trust.roster().version();
    c.stop(n).await;
    c.start(n).await;
    assert_eq!(c.node(n).services.trust.roster().version(), version);
    assert_eq!(c.node(n).services.trust.roster().revocations().count(), 1);
    assert_eq!(c.node(n).services.metrics.encryption_key_missing.get(), 1);
    c.stop(n).await;
}
