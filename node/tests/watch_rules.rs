//! Who may do what with watches (issue 22 review): a user's duplicate watch is
//! refused, another screener cannot remove it, an admin can; the event stream and the
//! watch list are for the officers' roles only; a name with control characters is
//! refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use serde_json::{Value, json};
use wlnode_client::{Client, ClientError};

fn status(e: ClientError) -> u16 {
    match e {
        ClientError::Api { status, .. } => status,
        other => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_belong_to_their_creator_and_stay_with_the_officers() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let mut users = Vec::new();
    for (name, role) in [
        ("ana", "screener"),
        ("ben", "screener"),
        ("cy", "consultant"),
    ] {
        let v: Value = n
            .client
            .post_json("/v1/users", &json!({"user": name, "roles": [role]}))
            .await
            .unwrap();
        users.push(
            Client::new(
                n.node.api_addr,
                v["token"].as_str().unwrap().into(),
                "t".into(),
            )
            .unwrap(),
        );
    }
    let (ana, ben, cy) = (&users[0], &users[1], &users[2]);
    let w: Value = ana
        .post_json(
            "/v1/watches",
            &json!({"name": "Ivan Petrov", "country": "RU"}),
        )
        .await
        .unwrap();
    let id = w["watch_id"].as_str().unwrap().to_owned();
    // the same party again: refused
    let e = ana
        .post_json::<_, Value>(
            "/v1/watches",
            &json!({"name": "ivan petrov", "country": "ru"}),
        )
        .await
        .unwrap_err();
    assert_eq!(status(e), 409);
    // a control character in the name: refused
    let e = ana
        .post_json::<_, Value>("/v1/watches", &json!({"name": "Ivan\u{1b}[2J Petrov"}))
        .await
        .unwrap_err();
    assert_eq!(status(e), 400);
    // another screener cannot remove it
    let e = ben
        .delete_json::<Value>(&format!("/v1/watches/{id}"))
        .await
        .unwrap_err();
    assert_eq!(status(e), 403);
    // the consultant sees neither the watches nor the event stream
    assert_eq!(
        status(cy.get_json::<Value>("/v1/watches").await.unwrap_err()),
        403
    );
    let r = reqwest::Client::new()
        .get(format!("http://{}/v1/events", n.node.api_addr))
        .bearer_auth(
            wlnode_config::token::read_token(
                &wlnode_config::Config::load(&n.config)
                    .unwrap()
                    .raw
                    .api
                    .token_file,
            )
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the admin reads the stream");
    drop(r);
    // an admin can remove it
    n.client
        .delete_json::<Value>(&format!("/v1/watches/{id}"))
        .await
        .unwrap();
    let list: Value = ana.get_json("/v1/watches").await.unwrap();
    assert!(list.to_string().find(&id).is_none(), "{list}");
    n.node.stop().await;
}

/// The event stream carries watch hits about parties under investigation: a user whose
/// account is disabled (or whose token is rotated) loses an open stream within seconds,
/// and no user holds more than four of the node's 32 places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_ends_when_its_user_is_disabled_and_streams_are_capped_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let mut tokens = Vec::new();
    for name in ["dora", "eli"] {
        let v: Value = n
            .client
            .post_json("/v1/users", &json!({"user": name, "roles": ["screener"]}))
            .await
            .unwrap();
        tokens.push(v["token"].as_str().unwrap().to_owned());
    }
    let http = reqwest::Client::new();
    let open = |token: &str| {
        http.get(format!("http://{}/v1/events", n.node.api_addr))
            .bearer_auth(token)
            .send()
    };
    let mut dora = Vec::new();
    for _ in 0..wlnode_runtime::events::MAX_STREAMS_PER_USER {
        let r = open(&tokens[0]).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        dora.push(r);
    }
    let r = open(&tokens[0]).await.unwrap();
    assert_eq!(r.status().as_u16(), 503, "a fifth stream of one user");
    let eli = open(&tokens[1]).await.unwrap();
    assert_eq!(eli.status().as_u16(), 200, "another user still gets one");
    drop(eli);
    // Disable dora: every open stream of hers ends (the body finishes) within the
    // re-check period, with nothing more sent.
    n.client
        .post_json::<_, Value>("/v1/users/dora/disable", &json!({}))
        .await
        .unwrap();
    for mut r in dora {
        let ended = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while let Ok(Some(_)) = r.chunk().await {}
        })
        .await;
        assert!(ended.is_ok(), "a disabled user's stream stayed open");
    }
    // Her places are free again for others.
    let again = open(&tokens[1]).await.unwrap();
    assert_eq!(again.status().as_u16(), 200);
    n.node.stop().await;
}
