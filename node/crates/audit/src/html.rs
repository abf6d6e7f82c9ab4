//! The audit report as one self-contained HTML page (no scripts, fonts, images or
//! links to fetch): a summary per node, the pair matrix, an inline SVG lag chart and
//! the violations with their evidence. Every value is HTML-escaped.
//!
//! The crate holds no words of its own: every label comes from a [`Labels`] table the
//! caller fills from its string catalogue (the console's, `wlnode_api::console::text`,
//! which the CLI's `audit verify --html` uses too), so a translation of the console
//! translates the report with it.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::verify::Report;

macro_rules! labels {
    ($($(#[$m:meta])* $name:ident,)*) => {
        /// Every word the report shows, from the caller's catalogue.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Labels {
            $($(#[$m])* pub $name: &'static str,)*
        }

        impl Labels {
            /// Every label with its field name, for checks over the whole table.
            pub fn fields(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($name), self.$name)),*]
            }

            /// A table whose every label is `f(field name)` (a pseudo-translation, to
            /// check that no word of the report comes from elsewhere).
            pub fn from_fn(mut f: impl FnMut(&'static str) -> &'static str) -> Self {
                Self { $($name: f(stringify!($name))),* }
            }
        }
    };
}

labels! {
    /// The page's `lang` attribute.
    lang,
    /// The page's title and heading.
    title,
    /// Before the time the report was generated.
    generated,
    /// The verdict when every check held.
    pass,
    /// The verdict when a check failed, before the count.
    fail,
    /// After the violations' count in the verdict.
    violations_count,
    /// Section headings.
    nodes,
    pairs,
    consultations,
    lag,
    violations,
    /// Column headings and texts of the nodes table.
    agency,
    peer_id,
    events,
    checkpoints_verified,
    verified_size,
    events_by_type,
    violations_col,
    /// After the count of findings against a pair this node is one side of.
    as_a_pair,
    /// After the count of copies this relay held over an hour that the delay rule
    /// did not judge because the node ran a build from before s36 (informational).
    delay_not_judged,
    /// After the count of copies this relay took with under 30 min of life left and
    /// let expire, which the relay rules did not judge (informational, s37).
    short_lived_not_judged,
    /// The pair matrix.
    pairs_help,
    no_traffic,
    from_to,
    from,
    to,
    sent,
    accepted,
    rejected,
    missing,
    in_flight,
    unexplained,
    mean_lag_ms,
    max_lag_ms,
    /// The consultations table.
    consultations_help,
    no_consultations,
    consultations_col,
    open,
    answered,
    expired,
    decided,
    granted_despite,
    median_answer_s,
    median_decision_s,
    trail_violations,
    /// The lag chart.
    no_lag,
    lag_chart,
    unit_ms,
    span_s,
    /// The violations.
    no_violations,
    at,
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}\
th{background:#eee}td.l,th.l{text-align:left}.ok{color:#070}.bad{color:#b00;font-weight:bold}\
pre{background:#f6f6f6;padding:6px;white-space:pre-wrap;word-break:break-all;font-size:12px}\
.v{border-left:4px solid #b00;padding-left:8px;margin:1em 0}";

/// Renders `report` (generated at `generated_at`, a display string) as a whole page,
/// in the words of `l`.
pub fn render(report: &Report, generated_at: &str, l: &Labels) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(l.lang),
        esc(l.title)
    );
    let verdict = if report.ok {
        format!("<span class=\"ok\">{}</span>", esc(l.pass))
    } else {
        format!(
            "<span class=\"bad\">{}: {} {}</span>",
            esc(l.fail),
            report.violations.len(),
            esc(l.violations_count)
        )
    };
    let _ = write!(
        h,
        "<h1>{}</h1><p>{} {}. {verdict}</p>",
        esc(l.title),
        esc(l.generated),
        esc(generated_at)
    );
    h.push_str(&sections(report, l));
    h.push_str("</body></html>\n");
    h
}

/// The report's sections (nodes, pairs, consultations, the lag chart, violations) as
/// an HTML fragment with no style, script or link of its own: the page above wraps it
/// with its style, the auditor's served page (`wlnode audit verify --serve`) with the
/// console's stylesheet and links to the sections' ids (`nodes`, `pairs`,
/// `consultations`, `lag`, `violations`). Cells use the classes `l` (left-aligned),
/// `ok` and `bad`, and each violation is a `div.v` with its kind in `data-kind`.
pub fn sections(report: &Report, l: &Labels) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<h2 id=\"nodes\">{}</h2><table>{}",
        esc(l.nodes),
        header_row(&[
            (true, l.agency),
            (true, l.peer_id),
            (false, l.events),
            (false, l.checkpoints_verified),
            (false, l.verified_size),
            (true, l.events_by_type),
            (false, l.violations_col),
        ])
    );
    for n in &report.nodes {
        let mut types: Vec<String> = n.by_type.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        // Copies the delay rule did not judge (an older build): shown, never a finding
        // (final read of s36: the count was in the JSON report only).
        if n.mail_delay_older_build > 0 {
            types.push(format!(
                "{} {}",
                n.mail_delay_older_build, l.delay_not_judged
            ));
        }
        if n.mail_short_lived_not_judged > 0 {
            types.push(format!(
                "{} {}",
                n.mail_short_lived_not_judged, l.short_lived_not_judged
            ));
        }
        let cls = if n.violations == 0 && n.pair_violations == 0 {
            "ok"
        } else {
            "bad"
        };
        // Findings against a pair this node is one side of, apart (the logs cannot
        // tell which side is at fault).
        let pair = if n.pair_violations == 0 {
            String::new()
        } else {
            format!(" (+{} {})", n.pair_violations, esc(l.as_a_pair))
        };
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td class=\"l\">{}</td><td class=\"{cls}\">{}{pair}</td></tr>",
            esc(&n.agency),
            esc(&n.peer_id),
            n.events,
            n.checkpoints,
            n.checkpoints_verified,
            n.verified_size,
            esc(&types.join(", ")),
            n.violations
        );
    }
    h.push_str("</table>");

    let _ = write!(
        h,
        "<h2 id=\"pairs\">{}</h2><p>{}</p>",
        esc(l.pairs),
        esc(l.pairs_help)
    );
    if report.pairs.is_empty() {
        let _ = write!(h, "<p>{}</p>", esc(l.no_traffic));
    } else {
        let names: BTreeSet<&str> = report
            .pairs
            .iter()
            .flat_map(|p| [p.from.as_str(), p.to.as_str()])
            .collect();
        let _ = write!(h, "<table><tr><th class=\"l\">{}</th>", esc(l.from_to));
        for n in &names {
            let _ = write!(h, "<th>{}</th>", esc(n));
        }
        h.push_str("</tr>");
        for a in &names {
            let _ = write!(h, "<tr><th class=\"l\">{}</th>", esc(a));
            for b in &names {
                match report.pairs.iter().find(|p| p.from == *a && p.to == *b) {
                    Some(p) => {
                        let cls = if p.missing + p.unexplained > 0 {
                            " class=\"bad\""
                        } else {
                            ""
                        };
                        let _ = write!(
                            h,
                            "<td{cls}>{} / {} / {}</td>",
                            p.sent, p.accepted, p.missing
                        );
                    }
                    None => h.push_str("<td>–</td>"),
                }
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
        h.push_str("<table>");
        h.push_str(&header_row(&[
            (true, l.from),
            (true, l.to),
            (false, l.sent),
            (false, l.accepted),
            (false, l.rejected),
            (false, l.missing),
            (false, l.in_flight),
            (false, l.unexplained),
            (false, l.mean_lag_ms),
            (false, l.max_lag_ms),
        ]));
        for p in &report.pairs {
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.from),
                esc(&p.to),
                p.sent,
                p.accepted,
                p.rejected,
                p.missing,
                p.in_flight,
                p.unexplained,
                p.lag_mean_ms
                    .map(|x| format!("{x:.0}"))
                    .unwrap_or_else(|| "–".into()),
                p.lag_max_ms
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "–".into())
            );
        }
        h.push_str("</table>");
    }
    let _ = write!(
        h,
        "<h2 id=\"consultations\">{}</h2><p>{}</p>",
        esc(l.consultations),
        esc(l.consultations_help)
    );
    if report.consultations.is_empty() {
        let _ = write!(h, "<p>{}</p>", esc(l.no_consultations));
    } else {
        h.push_str("<table>");
        h.push_str(&header_row(&[
            (true, l.agency),
            (false, l.consultations_col),
            (false, l.open),
            (false, l.answered),
            (false, l.expired),
            (false, l.decided),
            (false, l.granted_despite),
            (false, l.median_answer_s),
            (false, l.median_decision_s),
            (false, l.trail_violations),
        ]));
        let secs = |ms: Option<u64>| {
            ms.map_or_else(|| "-".to_owned(), |m| format!("{:.1}", m as f64 / 1000.0))
        };
        for c in &report.consultations {
            let cls = if c.violations == 0 { "ok" } else { "bad" };
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{}</td></tr>",
                esc(&c.agency),
                c.consultations,
                c.open,
                c.answered,
                c.expired,
                c.decided,
                c.granted_despite,
                secs(c.median_time_to_answer_ms),
                secs(c.median_time_to_decision_ms),
                c.violations
            );
        }
        h.push_str("</table>");
    }
    let _ = write!(h, "<h2 id=\"lag\">{}</h2>", esc(l.lag));
    h.push_str(&lag_svg(report, l));

    let _ = write!(
        h,
        "<h2 id=\"violations\">{} ({})</h2>",
        esc(l.violations),
        report.violations.len()
    );
    if report.violations.is_empty() {
        let _ = write!(h, "<p class=\"ok\">{}</p>", esc(l.no_violations));
    }
    for v in &report.violations {
        let ev = serde_json::to_string_pretty(&v.evidence).unwrap_or_default();
        let _ = write!(
            h,
            "<div class=\"v\" data-kind=\"{}\"><p><b>{}</b> {} <b>{}</b>: {}</p><pre>{}</pre></div>",
            esc(&v.kind),
            esc(&v.kind),
            esc(l.at),
            esc(&v.node),
            esc(&v.detail),
            esc(&ev)
        );
    }
    h
}

/// A table's header row: `(left-aligned, label)` per column.
fn header_row(cols: &[(bool, &str)]) -> String {
    let mut h = String::from("<tr>");
    for (left, label) in cols {
        let cls = if *left { " class=\"l\"" } else { "" };
        let _ = write!(h, "<th{cls}>{}</th>", esc(label));
    }
    h.push_str("</tr>");
    h
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

fn lag_svg(report: &Report, l: &Labels) -> String {
    let (w, hgt, pad) = (800.0f64, 300.0f64, 50.0f64);
    if report.lag.is_empty() {
        return format!("<p>{}</p>", esc(l.no_lag));
    }
    let t0 = report.lag.iter().map(|l| l.at).min().unwrap_or(0);
    let t1 = report
        .lag
        .iter()
        .map(|l| l.at)
        .max()
        .unwrap_or(0)
        .max(t0 + 1);
    let lmax = report
        .lag
        .iter()
        .map(|l| l.lag_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    let pairs: Vec<(String, String)> = {
        let s: BTreeSet<(String, String)> = report
            .lag
            .iter()
            .map(|l| (l.from.clone(), l.to.clone()))
            .collect();
        s.into_iter().collect()
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        hgt + 20.0 * pairs.len() as f64 + 20.0,
        esc(l.lag_chart)
    );
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#000\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"#000\"/>",
        hgt - pad,
        w - 10.0,
        hgt - pad,
        hgt - pad
    );
    let _ = write!(
        s,
        "<text x=\"5\" y=\"{}\" font-size=\"11\">{lmax} {}</text><text x=\"5\" y=\"{}\" font-size=\"11\">0</text><text x=\"{pad}\" y=\"{}\" font-size=\"11\">{} {}</text>",
        pad,
        esc(l.unit_ms),
        hgt - pad,
        hgt - pad + 15.0,
        (t1 - t0) / 1000,
        esc(l.span_s)
    );
    for l in &report.lag {
        let x = pad + (l.at - t0) as f64 / (t1 - t0) as f64 * (w - pad - 10.0);
        let y = hgt - pad - l.lag_ms as f64 / lmax as f64 * (hgt - 2.0 * pad);
        let ci = pairs
            .iter()
            .position(|(a, b)| *a == l.from && *b == l.to)
            .unwrap_or(0);
        let _ = write!(
            s,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\" fill=\"{}\"/>",
            COLORS.get(ci % COLORS.len()).copied().unwrap_or("#000")
        );
    }
    for (i, (a, b)) in pairs.iter().enumerate() {
        let y = hgt + 20.0 * i as f64;
        let _ = write!(
            s,
            "<rect x=\"{pad}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{} → {}</text>",
            y - 9.0,
            COLORS.get(i % COLORS.len()).copied().unwrap_or("#000"),
            pad + 15.0,
            y,
            esc(a),
            esc(b)
        );
    }
    s.push_str("</svg>");
    s
}
