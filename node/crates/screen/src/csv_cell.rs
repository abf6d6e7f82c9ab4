//! Neutralising spreadsheet formulas in CSV output.
//!
//! Screening results go back to officers as CSV, and a CSV opened in a spreadsheet runs
//! any cell that starts with `=`, `+`, `-` or `@` as a formula (CSV injection). Party
//! names and references come from shipment files and matched names from other
//! agencies, so neither is trusted. Such a cell gets a leading `'`, which spreadsheets
//! show as text; so do cells starting with a tab or a carriage return, which some
//! spreadsheets skip before looking for a formula.

use std::borrow::Cow;

/// `cell`, made safe to open in a spreadsheet.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_become_text_others_stay() {
        for bad in [
            "=1+1",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1)",
            "\t=x",
            "\r=x",
        ] {
            let n = neutralize(bad);
            assert!(n.starts_with('\''), "{bad:?} -> {n:?}");
            assert_eq!(&n[1..], bad);
        }
        for ok in ["", "ACME Trading", "0.912", "S1", "'quoted", "a=b"] {
            assert_eq!(neutralize(ok), ok);
        }
    }
}
