//! The web console (issue 23) in real headless Chromium, driven over WebDriver
//! (`chromedriver`, Debian's `chromium-driver`) against a real node serving real HTTP on
//! 127.0.0.1 port 0, with four-eyes release on. One browser session walks every step:
//! log in; draft an entry as an editor and approve it as another user (the author sees
//! no approve button on their own draft); screen the name and see the hit with its
//! explanation; clear it and see it cleared on re-screen; search the case log; a viewer
//! sees no write buttons and a forged POST (with a valid CSRF token) gets 403; a POST
//! without or with a wrong CSRF token gets 403; the security headers; logout; a
//! disabled user's session dies. Each page's screenshot is saved under
//! `<target>/console-screenshots/` and its path printed.
//!
//! Chromium missing: with `CI` set (the CI installs it) the test fails with a message
//! saying what to install; without `CI` it says so and returns.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use wlnode_devtools::scaffold::{self, NodeOptions};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(30);

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let d = target.join("console-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Checks the page's accessibility and CSP invariants in the browser: every visible
/// control has a `<label for>`, and no inline script, style attribute or `<style>`.
async fn check_page(c: &Client, name: &str) {
    let v = c
        .execute(
            r#"
            const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => !e.id || !document.querySelector('label[for="' + e.id + '"]'))
                .map(e => e.name);
            return {
                unlabelled,
                inline_scripts: document.querySelectorAll('script:not([src])').length,
                styled: document.querySelectorAll('[style], style').length,
            };"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        v["unlabelled"],
        json!([]),
        "{name}: controls without a label"
    );
    assert_eq!(v["inline_scripts"], 0, "{name}: inline script");
    assert_eq!(v["styled"], 0, "{name}: inline style");
}

async fn shot(c: &Client, name: &str) {
    check_page(c, name).await;
    let png = c.screenshot().await.unwrap();
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot {name}: {}", path.display());
}

/// A running chromedriver, killed on drop.
struct Driver {
    child: std::process::Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tools_present() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().unwrap();
    // Wait until it accepts connections.
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver {
        child,
        port,
        _profile: profile,
    }
}

async fn browser(d: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1400,1000",
                format!("--user-data-dir={}", d._profile.path().display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("WebDriver session with headless Chromium")
}

async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

/// The text of `css` once it contains `needle`: polls while the page navigates (an
/// element found on the page being left goes stale), up to [`WAIT`].
async fn text_when(c: &Client, css: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
            && t.contains(needle)
        {
            return t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {css} containing {needle:?} within {WAIT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn login(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/ui/login")).await.unwrap();
    find(c, "#token").await.send_keys(token).await.unwrap();
    find(c, "#login").await.click().await.unwrap();
    find(c, "#user").await;
}

async fn logout(c: &Client) {
    find(c, "#logout").await.click().await.unwrap();
    find(c, "#notice").await;
}

async fn screen(c: &Client, base: &str, name: &str, reference: &str) {
    c.goto(&format!("{base}/ui/screen")).await.unwrap();
    find(c, "#q").await.send_keys(name).await.unwrap();
    find(c, "#ref").await.send_keys(reference).await.unwrap();
    find(c, "#screen-submit").await.click().await.unwrap();
    find(c, "#case-link").await;
}

async fn add_user(n: &common::TestNode, name: &str, roles: &[&str]) -> String {
    let v: Value = n
        .client
        .post_json("/v1/users", &json!({"user": name, "roles": roles}))
        .await
        .unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// A cookie jar-less HTTP client for forged requests.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The session cookie and the page's CSRF token of the browser's current session.
async fn session_of(c: &Client) -> (String, String) {
    let sid = c
        .get_named_cookie("wlnode_session")
        .await
        .unwrap()
        .value()
        .to_owned();
    let csrf = find(c, "input[name=csrf]")
        .await
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    (sid, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    if !tools_present() {
        let msg = format!(
            "{CHROMIUM} or {CHROMEDRIVER} is missing: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED console browser test: {msg}");
        return;
    }
    // A node with four-eyes release on, and a peer it dials (for the dashboard).
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let peer = common::start(&fed, 1).await;
    scaffold::write_config(
        &fed,
        &fed.nodes[0],
        &NodeOptions {
            extra: format!(
                "{}\n[release]\nrequire_approval = true\n",
                scaffold::OPEN_POLICY
            ),
            peers: vec![(
                wlnode_crypto::model::AgencyCode::new("BB-CUSTOMS".to_owned()).unwrap(),
                peer.node
                    .listen_addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
            )],
            ..NodeOptions::default()
        },
    )
    .unwrap();
    let n = common::start(&fed, 0).await;
    let base = format!("http://{}", n.node.api_addr);
    let editor = add_user(&n, "eddie", &["editor", "approver"]).await;
    let approver = add_user(&n, "alice", &["approver"]).await;
    let screener = add_user(&n, "sam", &["screener"]).await;
    let viewer = add_user(&n, "vic", &["viewer"]).await;
    let admin = wlnode_config::token::read_token(
        &wlnode_config::Config::load(&n.config)
            .unwrap()
            .raw
            .api
            .token_file,
    )
    .unwrap();

    let driver = start_driver().await;
    let c = browser(&driver).await;

    // Log in: a wrong token is refused, the right one opens the dashboard.
    c.goto(&format!("{base}/ui/")).await.unwrap();
    find(&c, "#token").await;
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
    shot(&c, "login").await;
    find(&c, "#token")
        .await
        .send_keys("not-a-token")
        .await
        .unwrap();
    find(&c, "#login").await.click().await.unwrap();
    text_when(&c, "#notice", "not a valid").await;

    // Draft an entry as the editor: four-eyes makes it a draft.
    login(&c, &base, &editor).await;
    assert_eq!(find(&c, "#user").await.text().await.unwrap(), "eddie");
    c.goto(&format!("{base}/ui/entries/new")).await.unwrap();
    find(&c, "#e-name")
        .await
        .send_keys("Zenith Dual-Use Trading")
        .await
        .unwrap();
    find(&c, "#e-country").await.send_keys("AE").await.unwrap();
    find(&c, "#e-reason")
        .await
        .send_keys("diversion-risk")
        .await
        .unwrap();
    find(&c, "#e-categories")
        .await
        .send_keys("3A001")
        .await
        .unwrap();
    find(&c, "#e-legal")
        .await
        .send_keys("Regulation 2021/821 art. 4")
        .await
        .unwrap();
    find(&c, "#e-idents")
        .await
        .send_keys("registration:R-77")
        .await
        .unwrap();
    shot(&c, "entry-new").await;
    find(&c, "#entry-submit").await.click().await.unwrap();
    text_when(&c, "#notice", "draft").await;
    // The author sees their draft but no approve button on it.
    c.goto(&format!("{base}/ui/drafts")).await.unwrap();
    find(&c, "#drafts").await;
    assert!(c.find(Locator::Css("button.approve")).await.is_err());
    let draft_id = find(&c, "tr[data-draft-id]")
        .await
        .attr("data-draft-id")
        .await
        .unwrap()
        .unwrap();
    logout(&c).await;

    // Approve as another user.
    login(&c, &base, &approver).await;
    c.goto(&format!("{base}/ui/drafts")).await.unwrap();
    let row = find(&c, &format!("tr[data-draft-id='{draft_id}']")).await;
    assert!(
        row.text()
            .await
            .unwrap()
            .contains("Zenith Dual-Use Trading")
    );
    shot(&c, "approvals").await;
    row.find(Locator::Css("button.approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        find(&c, "#notice")
            .await
            .text()
            .await
            .unwrap()
            .contains("Approved")
    );
    find(&c, "#no-drafts").await;
    logout(&c).await;
    // The released entry, as the API sees it.
    let drafts: Value = n.client.get_json("/v1/drafts").await.unwrap();
    let entry_id = drafts
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["draft_id"] == draft_id.as_str())
        .and_then(|d| d["written"]["entry_id"].as_str())
        .expect("the approved draft names its entry")
        .to_owned();

    // Screen the name: the hit, its explanation and its entry's facts.
    login(&c, &base, &screener).await;
    screen(&c, &base, "Zenith Dual Use Trading", "SHIP-1").await;
    let hit = find(&c, &format!("tr.hit[data-entry-id='{entry_id}']")).await;
    assert_eq!(hit.attr("data-decision").await.unwrap().unwrap(), "none");
    let text = hit.text().await.unwrap();
    assert!(text.contains("zenith → zenith"), "{text}");
    assert!(text.contains("diversion-risk"), "{text}");
    assert!(text.contains("Regulation 2021/821"), "{text}");
    assert!(text.contains("Withheld from this node"), "{text}");
    shot(&c, "screen").await;
    // Clear it.
    hit.find(Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("different company, other registration")
        .await
        .unwrap();
    hit.find(Locator::Css("button.clear"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let decided = find(&c, &format!("#case-hits tr[data-entry-id='{entry_id}']")).await;
    assert_eq!(
        decided.attr("data-decision").await.unwrap().unwrap(),
        "cleared"
    );
    shot(&c, "case").await;
    // Re-screen (another reference): shown as cleared, not hidden.
    screen(&c, &base, "Zenith Dual Use Trading", "SHIP-2").await;
    let hit = find(&c, &format!("tr.hit[data-entry-id='{entry_id}']")).await;
    assert_eq!(hit.attr("data-decision").await.unwrap().unwrap(), "cleared");
    assert!(hit.text().await.unwrap().contains("other registration"));
    shot(&c, "screen-cleared").await;
    // A CSV batch: every row screened and logged, results on the page.
    let csv = dir.path().join("parties.csv");
    std::fs::write(
        &csv,
        "ref,name,country\nB-1,Zenith Dual Use Trading,AE\nB-2,Nobody Known Anywhere,\n",
    )
    .unwrap();
    find(&c, "#csv")
        .await
        .send_keys(&csv.display().to_string())
        .await
        .unwrap();
    find(&c, "#batch-submit").await.click().await.unwrap();
    find(&c, "#batch-results").await;
    let rows = c
        .find_all(Locator::Css("#batch-results tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0]
            .text()
            .await
            .unwrap()
            .contains("Zenith Dual-Use Trading")
    );
    assert_eq!(
        find(&c, "#batch-progress")
            .await
            .attr("value")
            .await
            .unwrap(),
        Some("2".into())
    );
    shot(&c, "batch").await;
    // The case log, searched by reference.
    c.goto(&format!("{base}/ui/cases?ref=SHIP-2"))
        .await
        .unwrap();
    let rows = c.find_all(Locator::Css("#cases tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1);
    shot(&c, "cases").await;
    // CSRF: the screener's own session, without or with a wrong token, is refused.
    let (sid, csrf) = session_of(&c).await;
    let cookie = format!("wlnode_session={sid}");
    for body in [
        "q=Zenith".to_owned(),
        "q=Zenith&csrf=0000".to_owned(),
        format!("q=Zenith&csrf={}", "f".repeat(csrf.len())),
    ] {
        let r = http()
            .post(format!("{base}/ui/screen"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{body}");
    }
    // ... and with the right token it is served (the check is the token, not the client).
    let r = http()
        .post(format!("{base}/ui/screen"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("q=Zenith&csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Security headers.
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    // The case log downloads as CSV, with the decision.
    let r = http()
        .get(format!("{base}/ui/cases.csv?ref=SHIP-1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = r.text().await.unwrap();
    assert!(
        body.contains("SHIP-1") && body.contains("cleared"),
        "{body}"
    );
    // A log-in without its CSRF cookie is refused too.
    let r = http()
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={screener}&csrf=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    logout(&c).await;
    // After logout the old session cookie opens nothing.
    let r = http()
        .get(format!("{base}/ui/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/ui/login")
    );

    // A viewer: entries without write buttons, no screening, forged POSTs refused.
    login(&c, &base, &viewer).await;
    let nav = find(&c, "header nav").await.text().await.unwrap();
    assert!(nav.contains("Entries") && !nav.contains("Screening") && !nav.contains("Approvals"));
    c.goto(&format!("{base}/ui/entries")).await.unwrap();
    find(&c, &format!("#entries tr[data-entry-id='{entry_id}']")).await;
    assert!(c.find(Locator::Css("#new-entry")).await.is_err());
    shot(&c, "entries").await;
    c.goto(&format!("{base}/ui/entries/{entry_id}"))
        .await
        .unwrap();
    find(&c, "#versions").await;
    assert!(c.find(Locator::Css("#amend")).await.is_err());
    assert!(c.find(Locator::Css("#withdraw")).await.is_err());
    shot(&c, "entry").await;
    c.goto(&format!("{base}/ui/screen")).await.unwrap();
    assert!(
        find(&c, "#error")
            .await
            .text()
            .await
            .unwrap()
            .contains("screener")
    );
    let (vsid, vcsrf) = session_of(&c).await;
    let vcookie = format!("wlnode_session={vsid}");
    for (path, body) in [
        (
            "/ui/entries",
            format!("csrf={vcsrf}&name=Forged&reason=other"),
        ),
        (
            "/ui/entries/{id}/withdraw",
            format!("csrf={vcsrf}&reason=forged"),
        ),
        ("/ui/screen", format!("csrf={vcsrf}&q=Zenith")),
    ] {
        let path = path.replace("{id}", &entry_id);
        let r = http()
            .post(format!("{base}{path}"))
            .header("cookie", &vcookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "viewer POST {path}");
    }
    // Disabling the viewer ends their session at once.
    let _: Value = n
        .client
        .post_json("/v1/users/vic/disable", &json!({}))
        .await
        .unwrap();
    c.goto(&format!("{base}/ui/entries")).await.unwrap();
    find(&c, "#token").await;
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));

    // The admin's pages: dashboard, policy with an interactive explain, audit.
    login(&c, &base, &admin).await;
    find(&c, "#peers tr[data-agency='BB-CUSTOMS']").await;
    assert_eq!(find(&c, "#agency").await.text().await.unwrap(), "AA-EXPORT");
    // Live updates: the dashboard's script shows a new draft as it is created.
    find(&c, "#live-events[data-connected]").await;
    let r = http()
        .post(format!("{base}/v1/entries"))
        .bearer_auth(&editor)
        .json(&common::draft("Live Event Holdings"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let li = find(&c, "#live-events li[data-event='draft_awaiting_approval']").await;
    assert!(li.text().await.unwrap().contains("draft_awaiting_approval"));
    shot(&c, "dashboard").await;
    c.goto(&format!("{base}/ui/policy?entry={entry_id}"))
        .await
        .unwrap();
    let row = find(&c, "#explain tr[data-peer='BB-CUSTOMS']").await;
    assert_eq!(row.attr("data-decision").await.unwrap().unwrap(), "send");
    shot(&c, "policy").await;
    c.goto(&format!("{base}/ui/audit")).await.unwrap();
    let verdict = find(&c, "#audit-verdict").await;
    assert_eq!(
        verdict.attr("data-ok").await.unwrap().as_deref(),
        Some("true")
    );
    find(&c, "#checkpoints tr[data-ok='true']").await;
    shot(&c, "audit").await;
    logout(&c).await;

    // An amendment from the form is a draft too, and waits in the queue.
    login(&c, &base, &editor).await;
    c.goto(&format!("{base}/ui/entries/{entry_id}"))
        .await
        .unwrap();
    find(&c, "#amend").await.click().await.unwrap();
    let remarks = find(&c, "#e-remarks").await;
    remarks.send_keys("seen again at the port").await.unwrap();
    find(&c, "#entry-submit").await.click().await.unwrap();
    text_when(&c, "#notice", "draft").await;
    c.goto(&format!("{base}/ui/drafts")).await.unwrap();
    let amends = c.find_all(Locator::Css("#drafts tbody tr")).await.unwrap();
    let mut seen = false;
    for r in amends {
        seen |= r.text().await.unwrap().contains("Amend");
    }
    assert!(seen, "the amendment waits for approval");
    logout(&c).await;

    // Failed log-ins are limited: past the limit even a good token waits.
    let http = http();
    let page = http.get(format!("{base}/ui/login")).send().await.unwrap();
    let login_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let try_login = |token: String| {
        http.post(format!("{base}/ui/login"))
            .header("cookie", &login_cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&token={token}"))
            .send()
    };
    let mut statuses = Vec::new();
    for i in 0..wlnode_api::console::session::MAX_FAILED_LOGINS + 1 {
        statuses.push(
            try_login(format!("wrong-{i}"))
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(statuses.contains(&401), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Review: the limit locked out valid tokens too, so anyone reaching the page kept
    // every officer out. A valid token still logs in.
    assert_eq!(
        try_login(admin.clone()).await.unwrap().status().as_u16(),
        303
    );

    c.close().await.unwrap();
    drop(driver);
    n.node.stop().await;
    peer.node.stop().await;
}
