//! `wlnode init`: creates a node folder with a commented node.toml, the agency signing
//! key, the agency encryption key (sealed messages), the node's libp2p key and an API token, and prints what the roster needs.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;
use wlnode_crypto::SecretKey;
use wlnode_crypto::keyfile::{KeyKind, write_encryption_key, write_secret_key};
use wlnode_crypto::model::AgencyCode;
use wlnode_crypto::seal::EncryptionSecretKey;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Roster agency code of this node, e.g. DE-BAFA.
    #[arg(long)]
    agency: AgencyCode,
    /// Folder to create the node in.
    #[arg(long)]
    dir: PathBuf,
    /// libp2p listen address.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/7400")]
    listen: String,
    /// API listen address (loopback).
    #[arg(long, default_value = "127.0.0.1:7480")]
    api: SocketAddr,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct InitOutput {
    agency: String,
    signing_key: String,
    encryption_key: String,
    peer_id: String,
    config: String,
}

fn write_secret_file(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

pub fn run(a: InitArgs) -> anyhow::Result<ExitCode> {
    if !a.api.ip().is_loopback() {
        bail!(
            "--api {} is not a loopback address; the API only listens on 127.0.0.1 or ::1",
            a.api
        );
    }
    a.listen
        .parse::<multiaddr::Multiaddr>()
        .with_context(|| format!("--listen {:?} is not a multiaddr", a.listen))?;
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    let config = a.dir.join("node.toml");
    if config.exists() {
        bail!(
            "{} already exists; refusing to overwrite a node",
            config.display()
        );
    }
    let agency_key = SecretKey::generate()?;
    let node_key = SecretKey::generate()?;
    write_secret_key(&a.dir.join("agency.key"), &agency_key, KeyKind::Agency)?;
    write_secret_key(&a.dir.join("node.key"), &node_key, KeyKind::Node)?;
    let encryption_key = EncryptionSecretKey::generate()?;
    write_encryption_key(&a.dir.join("encryption.key"), &encryption_key)?;
    let mut token = [0u8; 32];
    getrandom::fill(&mut token).map_err(|e| anyhow::anyhow!("random token: {e}"))?;
    write_secret_file(
        &a.dir.join("api.token"),
        &format!("{}\n", hex::encode(token)),
    )?;
    let text = wlnode_config::template(&a.agency, &a.listen, &a.api);
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    let out = InitOutput {
        agency: a.agency.to_string(),
        signing_key: agency_key.public_key().to_string(),
        encryption_key: encryption_key.public_key()?.to_string(),
        peer_id: node_key.public_key().peer_id(),
        config: config.display().to_string(),
    };
    if a.json {
        super::print_json(&out)?;
    } else {
        outln!("Created node {} in {}", out.agency, a.dir.display());
        outln!("  config:      {}", out.config);
        outln!("  signing key: {}", out.signing_key);
        outln!("  encryption:  {}", out.encryption_key);
        outln!("  peer id:     {}", out.peer_id);
        outln!();
        outln!("Give the signing key, encryption key and peer id to the roster authority:");
        outln!(
            "  wlnode roster add-member --roster roster.toml --agency {} --name NAME --country CC --role member --signing-key {} --encryption-key {} --node-id {}",
            out.agency,
            out.signing_key,
            out.encryption_key,
            out.peer_id
        );
    }
    Ok(ExitCode::SUCCESS)
}
