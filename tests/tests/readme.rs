//! README.md's config reference is tested against the code: its `node.toml` block must
//! load, and every key the config parser accepts (at the top level and in every table)
//! must appear in it. The accepted keys are read back from the parser itself, by
//! probing each table with an unknown key and reading the "expected one of" list from
//! the error, so a key added to the code without documentation fails this test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;

use wlnode_config::Config;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

/// The first ```toml block after the "## Config reference" heading.
fn reference_block(readme: &str) -> String {
    let start = readme
        .find("## Config reference")
        .expect("README has a Config reference section");
    let rest = &readme[start..];
    let open = rest.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let close = rest[open..].find("```").expect("the block ends");
    rest[open..open + close].to_owned()
}

/// Keys the parser accepts where `probe` was inserted, from its error message.
fn accepted_keys(doc: &toml_edit::DocumentMut) -> BTreeSet<String> {
    let err = Config::parse(Path::new("README.md"), &doc.to_string())
        .expect_err("an unknown key is refused");
    let msg = err.to_string();
    let list = msg
        .split("expected one of")
        .nth(1)
        .or_else(|| msg.split("expected").nth(1))
        .unwrap_or_else(|| panic!("no list of expected keys in: {msg}"));
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn documented_keys(table: &dyn toml_edit::TableLike) -> BTreeSet<String> {
    table.iter().map(|(k, _)| k.to_owned()).collect()
}

#[test]
fn config_reference_loads_and_documents_every_key() {
    let block = reference_block(&readme());
    Config::parse(Path::new("README.md"), &block)
        .unwrap_or_else(|e| panic!("README's config reference does not load: {e}"));
    let doc: toml_edit::DocumentMut = block.parse().unwrap();

    // Top level.
    let mut probe = doc.clone();
    probe.insert("zz_probe", toml_edit::value(1));
    let top = accepted_keys(&probe);
    let documented = documented_keys(doc.as_table());
    let missing: Vec<_> = top.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "README's config reference lacks top-level keys or tables: {missing:?}"
    );

    // Every table and array of tables.
    let mut checked = 0;
    for (name, item) in doc.iter() {
        let mut probe = doc.clone();
        let documented = match item {
            toml_edit::Item::Table(t) => {
                probe[name]
                    .as_table_mut()
                    .unwrap()
                    .insert("zz_probe", toml_edit::value(1));
                documented_keys(t)
            }
            toml_edit::Item::ArrayOfTables(a) => {
                probe[name]
                    .as_array_of_tables_mut()
                    .unwrap()
                    .get_mut(0)
                    .unwrap()
                    .insert("zz_probe", toml_edit::value(1));
                // Keys that exclude each other (a source's `url` and `path`) are
                // documented in different blocks: every block counts.
                a.iter().flat_map(|t| documented_keys(t)).collect()
            }
            _ => continue,
        };
        let accepted = accepted_keys(&probe);
        let missing: Vec<_> = accepted.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "README's config reference lacks keys of [{name}]: {missing:?}"
        );
        checked += 1;
    }
    assert!(
        checked >= 5,
        "api, peers, sync, share and accept are all documented"
    );
}
