//! Helpers shared by the node's integration tests: generated federations, running
//! nodes, and an API client with the node's token.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use wlnode_client::Client;
use wlnode_config::Config;
use wlnode_devtools::scaffold::{self, AgencySpec, Federation, NodeOptions};
use wlnode_runtime::RunningNode;

pub struct TestNode {
    pub node: RunningNode,
    pub client: Client,
    pub config: PathBuf,
}

pub fn federation(dir: &std::path::Path) -> Federation {
    let fed = scaffold::create(
        dir,
        "test",
        &[
            AgencySpec::member("AA-EXPORT", &["eu"]).unwrap(),
            AgencySpec::member("BB-CUSTOMS", &["eu"]).unwrap(),
        ],
    )
    .unwrap();
    for n in &fed.nodes {
        scaffold::write_config(
            &fed,
            n,
            &NodeOptions {
                extra: scaffold::OPEN_POLICY.into(),
                ..NodeOptions::default()
            },
        )
        .unwrap();
    }
    fed
}

pub async fn start(fed: &Federation, i: usize) -> TestNode {
    let cfg = Config::load(&fed.nodes[i].config).unwrap();
    let token = wlnode_config::token::read_token(&cfg.raw.api.token_file).unwrap();
    let node = wlnode_api::start_node(cfg).await.unwrap();
    let client = Client::new(node.api_addr, token, "test".into()).unwrap();
    TestNode {
        node,
        client,
        config: fed.nodes[i].config.clone(),
    }
}

pub fn draft(name: &str) -> serde_json::Value {
    serde_json::json!({
        "subject": {
            "kind": "organization",
            "name": name,
            "aliases": [format!("{name} alias")],
            "country": "AE",
            "identifiers": [{"type": "registration", "value": "R-1"}]
        },
        "reason": "diversion-risk",
        "categories": ["3A001"],
        "distribution": {"scope": "federation", "sensitivity": "restricted"}
    })
}
