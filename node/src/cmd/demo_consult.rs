//! The consultation part of `wlnode demo` (issue 21 §4): Art. 16 consultations run end
//! to end between the demo's real node processes, through the same HTTP API an
//! officer's `wlnode consult` uses, and their trail printed.
//!
//! AA-EXPORT consults BB-CUSTOMS on three of BB-CUSTOMS's entries it holds:
//! 1. BB-CUSTOMS objects; AA-EXPORT refuses the licence.
//! 2. BB-CUSTOMS stays silent: the consultation expires at its deadline, and the
//!    roster's silence rule gives its deemed answer. So that the demo can wait for it,
//!    the demo roster lowers the shortest deadline (`consultation_min_deadline_secs`,
//!    signed by the roster authority like every federation setting; the default is one
//!    day) and this consultation gets [`SILENT_DEADLINE`].
//! 3. BB-CUSTOMS objects; AA-EXPORT grants despite the objection: the decision notice
//!    goes to every member the entry's distribution admits, and the demo waits until
//!    each one's signed receipt is back and the notice is in its inbox.

// `serde_json::Value` indexing returns `Null` for a missing key and never panics.
#![allow(clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use wlnode_client::Client;

use super::procs::Child;

/// The deadline of the consultation left unanswered (the demo roster allows it).
pub const SILENT_DEADLINE: &str = "5s";
/// The shortest deadline the demo roster allows, in seconds.
pub const DEMO_MIN_DEADLINE_SECS: u64 = 5;
/// How long to wait for one step (a delivery, an answer, an expiry).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// One consultation as the demo reports it.
#[derive(Debug, Serialize)]
pub struct ConsultRun {
    /// What it shows: `objection`, `expiry_by_silence` or `grant_despite_denial`.
    pub case: &'static str,
    pub consultation_id: String,
    pub entry_id: String,
    pub requester: String,
    pub origin: String,
    /// Final state at the requester.
    pub state: String,
    pub answer: Option<String>,
    pub deemed_answer: Option<String>,
    pub decision: Option<String>,
    pub despite: Option<String>,
    /// The trail, in order: (seconds since the request, step).
    pub trail: Vec<(f64, String)>,
    /// Members the decision notice went to, and whether it reached their inbox.
    pub notices: Vec<NoticeRun>,
}

/// One decision notice.
#[derive(Debug, Serialize)]
pub struct NoticeRun {
    pub to: String,
    /// `delivered` once the recipient's signed receipt came back.
    pub delivery: String,
    /// Seen in the recipient's inbox.
    pub in_inbox: bool,
}

fn details(n: usize) -> Value {
    json!({
        "items": [{"description": "five-axis milling machine", "category": "2B001"}],
        "end_user": format!("Demo Industrial {n} Ltd"),
        "consignee": "Demo Machinery FZE",
        "destination_country": "AE",
        "value": {"amount": "1250000.00", "currency": "EUR"},
        "free_text": "demo consultation"
    })
}

async fn show(client: &Client, id: &str) -> Option<Value> {
    client
        .get_json::<Value>(&format!("/v1/consultations/{id}"))
        .await
        .ok()
}

/// Polls `f` every 100 ms until it returns `Some`, for at most [`STEP_TIMEOUT`].
async fn until<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > STEP_TIMEOUT {
            bail!("timed out after {STEP_TIMEOUT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn state_is(client: &Client, id: &str, state: &str) -> Option<Value> {
    show(client, id).await.filter(|v| v["state"] == state)
}

struct Trail {
    start: Instant,
    steps: Vec<(f64, String)>,
}

impl Trail {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            steps: Vec::new(),
        }
    }
    fn step(&mut self, s: String) {
        self.steps.push((self.start.elapsed().as_secs_f64(), s));
    }
}

/// Requests a consultation at `req` on `entry` of `org`; waits until the origin holds
/// it. Returns its id.
async fn request(
    req: &Child,
    org: &Child,
    entry: &str,
    n: usize,
    deadline: &str,
    trail: &mut Trail,
) -> anyhow::Result<String> {
    let v: Value = req
        .client
        .post_json(
            "/v1/consultations",
            &json!({"entry_id": entry, "origin": org.agency, "reference": format!("DEMO/2026/{n:04}"),
                    "details": details(n), "deadline": deadline}),
        )
        .await
        .with_context(|| format!("{} could not request a consultation", req.agency))?;
    let id = v["consultation_id"]
        .as_str()
        .context("no consultation_id in the answer")?
        .to_owned();
    trail.step(format!(
        "{} requests (deadline {deadline}), sealed to {}",
        req.agency, org.agency
    ));
    until("the origin to receive the request", || async {
        show(&org.client, &id).await
    })
    .await?;
    trail.step(format!("{} received it", org.agency));
    until("the request's signed receipt", || async {
        show(&req.client, &id)
            .await
            .filter(|v| v["delivery"] == "delivered")
    })
    .await?;
    trail.step(format!("{}'s signed receipt is back", org.agency));
    Ok(id)
}

async fn object(req: &Child, org: &Child, id: &str, trail: &mut Trail) -> anyhow::Result<()> {
    let _: Value = org
        .client
        .post_json(
            &format!("/v1/consultations/{id}/respond"),
            &json!({"answer": "objection", "reason": "We denied this end user in 2026: diversion risk."}),
        )
        .await
        .with_context(|| format!("{} could not answer", org.agency))?;
    trail.step(format!("{} objects", org.agency));
    until("the objection to reach the requester", || async {
        state_is(&req.client, id, "answered").await
    })
    .await?;
    trail.step(format!("{} has the objection", req.agency));
    Ok(())
}

async fn decide(req: &Child, id: &str, decision: &str, trail: &mut Trail) -> anyhow::Result<Value> {
    let v: Value = req
        .client
        .post_json(
            &format!("/v1/consultations/{id}/decide"),
            &json!({"decision": decision, "reason": "Demo decision."}),
        )
        .await
        .with_context(|| format!("{} could not decide", req.agency))?;
    let despite = v["despite"].as_str().unwrap_or("none");
    trail.step(if despite == "none" {
        format!("{} decides: {decision}", req.agency)
    } else {
        format!("{} decides: {decision} despite {despite}", req.agency)
    });
    Ok(v)
}

fn finish(case: &'static str, v: &Value, trail: Trail, notices: Vec<NoticeRun>) -> ConsultRun {
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    ConsultRun {
        case,
        consultation_id: s("consultation_id").unwrap_or_default(),
        entry_id: s("entry_id").unwrap_or_default(),
        requester: s("requester").unwrap_or_default(),
        origin: s("origin").unwrap_or_default(),
        state: s("state").unwrap_or_default(),
        answer: s("answer"),
        deemed_answer: s("deemed_answer"),
        decision: s("decision"),
        despite: s("despite"),
        trail: trail.steps,
        notices,
    }
}

/// Runs the three consultations between `children[req]` and `children[org]` on
/// `entries` (three entries of the origin that the requester holds).
pub async fn run(
    children: &[Child],
    req: usize,
    org: usize,
    entries: &[String; 3],
) -> anyhow::Result<Vec<ConsultRun>> {
    let (Some(r), Some(o)) = (children.get(req), children.get(org)) else {
        bail!("the demo needs a requester and an origin");
    };
    // 2 first, so that its deadline runs while 1 and 3 go on.
    let mut t2 = Trail::new();
    let c2 = request(r, o, &entries[1], 2, SILENT_DEADLINE, &mut t2).await?;

    let mut t1 = Trail::new();
    let c1 = request(r, o, &entries[0], 1, "30d", &mut t1).await?;
    object(r, o, &c1, &mut t1).await?;
    let v1 = decide(r, &c1, "refused", &mut t1).await?;
    until("the origin to record the refusal", || async {
        state_is(&o.client, &c1, "decided").await
    })
    .await?;
    t1.step(format!("{} has the decision", o.agency));

    let mut t3 = Trail::new();
    let c3 = request(r, o, &entries[2], 3, "30d", &mut t3).await?;
    object(r, o, &c3, &mut t3).await?;
    let v3 = decide(r, &c3, "granted", &mut t3).await?;
    let notices: Vec<(String, String)> = v3["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["notice"] == true)
                .map(|m| {
                    (
                        m["to"].as_str().unwrap_or("?").to_owned(),
                        m["message_id"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if notices.is_empty() {
        bail!("a grant despite an objection sent no decision notice");
    }
    t3.step(format!(
        "decision notice sealed to each admitted member: {}",
        notices
            .iter()
            .map(|(to, _)| to.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut notice_runs = Vec::new();
    for (to, mid) in &notices {
        let Some(member) = children.iter().find(|c| c.agency == *to) else {
            bail!("a notice went to {to}, which is not a demo node");
        };
        until(&format!("the notice to reach {to}'s inbox"), || async {
            let inbox: Value = member.client.get_json("/v1/inbox").await.ok()?;
            inbox
                .as_array()?
                .iter()
                .any(|m| m["message_id"] == mid.as_str())
                .then_some(())
        })
        .await?;
        t3.step(format!("notice in {to}'s inbox"));
        notice_runs.push(NoticeRun {
            to: to.clone(),
            delivery: String::new(),
            in_inbox: true,
        });
    }
    let v3 = until("every notice's signed receipt", || async {
        show(&r.client, &c3).await.filter(|v| {
            v["messages"].as_array().is_some_and(|m| {
                m.iter()
                    .filter(|m| m["notice"] == true)
                    .all(|m| m["delivery"] == "delivered")
            })
        })
    })
    .await?;
    t3.step("every notice's signed receipt is back".into());
    for n in &mut notice_runs {
        n.delivery = v3["messages"]
            .as_array()
            .and_then(|m| {
                m.iter()
                    .find(|m| m["notice"] == true && m["to"] == n.to.as_str())
            })
            .and_then(|m| m["delivery"].as_str())
            .unwrap_or("?")
            .to_owned();
    }

    // 2: nobody answered; both sides expire it at the deadline.
    let v2 = until(
        "the silent consultation to expire at the requester",
        || async { state_is(&r.client, &c2, "expired").await },
    )
    .await?;
    t2.step(format!(
        "deadline passed unanswered: expired at {} (silence means {})",
        r.agency,
        v2["deemed_answer"].as_str().unwrap_or("?")
    ));
    until(
        "the silent consultation to expire at the origin",
        || async { state_is(&o.client, &c2, "expired").await },
    )
    .await?;
    t2.step(format!("expired at {} too", o.agency));
    let v1 = show(&r.client, &c1).await.unwrap_or(v1);
    Ok(vec![
        finish("objection", &v1, t1, Vec::new()),
        finish("expiry_by_silence", &v2, t2, Vec::new()),
        finish("grant_despite_denial", &v3, t3, notice_runs),
    ])
}

/// Prints the runs for a reader.
pub fn print(runs: &[ConsultRun]) -> anyhow::Result<()> {
    outln!();
    outln!("Consultations (Art. 16), sealed agency-to-agency messages:");
    for (i, c) in runs.iter().enumerate() {
        outln!(
            "  {}. {:<21} {} asks {} about entry {}  -> {}{}{}",
            i + 1,
            c.case,
            c.requester,
            c.origin,
            c.entry_id,
            c.state,
            c.decision
                .as_deref()
                .map(|d| format!(", {d}"))
                .unwrap_or_default(),
            match c.despite.as_deref() {
                Some(d) if d != "none" => format!(" despite {d}"),
                _ => String::new(),
            },
        );
        for (t, s) in &c.trail {
            outln!("       {t:>6.2} s  {s}");
        }
        for n in &c.notices {
            outln!(
                "       notice to {:<11} receipt {:<9} in inbox: {}",
                n.to,
                n.delivery,
                if n.in_inbox { "yes" } else { "no" }
            );
        }
    }
    outln!(
        "  Each step is a `consultation` audit event (metadata only); `wlnode audit verify` checks the trail."
    );
    Ok(())
}
