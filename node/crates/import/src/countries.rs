//! Country values to ISO 3166-1 alpha-2 codes, because published lists write countries
//! as names ("Syrian Arab Republic", "Iran (Islamic Republic of)") while a record's
//! clear header carries only alpha-2 codes.
//!
//! The name table is deliberately small: the countries that sanctions and export-control
//! lists mention most, in the spellings the UN and OFAC use. A value that maps to no
//! code is left out of the row by the callers, never failing it.

use wlnode_crypto::model::CountryCode;

/// Every officially assigned ISO 3166-1 alpha-2 code, plus `XK` (Kosovo), which the UN,
/// OFAC and OpenSanctions use.
const ISO_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG \
BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW \
CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL \
GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE \
KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM \
MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH \
PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS \
ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG \
VI VN VU WF WS YE YT ZA ZM ZW XK";

/// Common country names (lower case, normalised as by [`normalise`]) and their codes.
const NAMES: &[(&str, &str)] = &[
    ("afghanistan", "AF"),
    ("albania", "AL"),
    ("algeria", "DZ"),
    ("angola", "AO"),
    ("argentina", "AR"),
    ("armenia", "AM"),
    ("australia", "AU"),
    ("austria", "AT"),
    ("azerbaijan", "AZ"),
    ("bahamas", "BS"),
    ("bahrain", "BH"),
    ("bangladesh", "BD"),
    ("belarus", "BY"),
    ("belgium", "BE"),
    ("belize", "BZ"),
    ("bolivia", "BO"),
    ("bolivia (plurinational state of)", "BO"),
    ("bosnia and herzegovina", "BA"),
    ("brazil", "BR"),
    ("bulgaria", "BG"),
    ("burkina faso", "BF"),
    ("burma", "MM"),
    ("burundi", "BI"),
    ("cambodia", "KH"),
    ("cameroon", "CM"),
    ("canada", "CA"),
    ("central african republic", "CF"),
    ("chad", "TD"),
    ("chile", "CL"),
    ("china", "CN"),
    ("colombia", "CO"),
    ("comoros", "KM"),
    ("congo", "CG"),
    ("republic of the congo", "CG"),
    ("congo, democratic republic of the", "CD"),
    ("democratic republic of the congo", "CD"),
    ("costa rica", "CR"),
    ("cote d'ivoire", "CI"),
    ("côte d'ivoire", "CI"),
    ("croatia", "HR"),
    ("cuba", "CU"),
    ("cyprus", "CY"),
    ("czech republic", "CZ"),
    ("czechia", "CZ"),
    ("denmark", "DK"),
    ("djibouti", "DJ"),
    ("dominican republic", "DO"),
    ("ecuador", "EC"),
    ("egypt", "EG"),
    ("el salvador", "SV"),
    ("eritrea", "ER"),
    ("estonia", "EE"),
    ("ethiopia", "ET"),
    ("finland", "FI"),
    ("france", "FR"),
    ("gabon", "GA"),
    ("gambia", "GM"),
    ("georgia", "GE"),
    ("germany", "DE"),
    ("ghana", "GH"),
    ("greece", "GR"),
    ("guatemala", "GT"),
    ("guinea", "GN"),
    ("guinea-bissau", "GW"),
    ("haiti", "HT"),
    ("honduras", "HN"),
    ("hong kong", "HK"),
    ("hungary", "HU"),
    ("iceland", "IS"),
    ("india", "IN"),
    ("indonesia", "ID"),
    ("iran", "IR"),
    ("iran (islamic republic of)", "IR"),
    ("islamic republic of iran", "IR"),
    ("iraq", "IQ"),
    ("ireland", "IE"),
    ("israel", "IL"),
    ("italy", "IT"),
    ("jamaica", "JM"),
    ("japan", "JP"),
    ("jordan", "JO"),
    ("kazakhstan", "KZ"),
    ("kenya", "KE"),
    ("korea, north", "KP"),
    ("north korea", "KP"),
    ("democratic people's republic of korea", "KP"),
    ("korea, democratic people's republic of", "KP"),
    ("korea, south", "KR"),
    ("south korea", "KR"),
    ("republic of korea", "KR"),
    ("korea, republic of", "KR"),
    ("kosovo", "XK"),
    ("kuwait", "KW"),
    ("kyrgyzstan", "KG"),
    ("lao people's democratic republic", "LA"),
    ("laos", "LA"),
    ("latvia", "LV"),
    ("lebanon", "LB"),
    ("liberia", "LR"),
    ("libya", "LY"),
    ("liechtenstein", "LI"),
    ("lithuania", "LT"),
    ("luxembourg", "LU"),
    ("malaysia", "MY"),
    ("mali", "ML"),
    ("malta", "MT"),
    ("marshall islands", "MH"),
    ("mauritania", "MR"),
    ("mexico", "MX"),
    ("moldova", "MD"),
    ("republic of moldova", "MD"),
    ("mongolia", "MN"),
    ("montenegro", "ME"),
    ("morocco", "MA"),
    ("mozambique", "MZ"),
    ("myanmar", "MM"),
    ("nepal", "NP"),
    ("netherlands", "NL"),
    ("new zealand", "NZ"),
    ("nicaragua", "NI"),
    ("niger", "NE"),
    ("nigeria", "NG"),
    ("north macedonia", "MK"),
    ("norway", "NO"),
    ("oman", "OM"),
    ("pakistan", "PK"),
    ("palau", "PW"),
    ("palestine", "PS"),
    ("state of palestine", "PS"),
    ("panama", "PA"),
    ("paraguay", "PY"),
    ("peru", "PE"),
    ("philippines", "PH"),
    ("poland", "PL"),
    ("portugal", "PT"),
    ("qatar", "QA"),
    ("romania", "RO"),
    ("russia", "RU"),
    ("russian federation", "RU"),
    ("rwanda", "RW"),
    ("saudi arabia", "SA"),
    ("senegal", "SN"),
    ("serbia", "RS"),
    ("seychelles", "SC"),
    ("sierra leone", "SL"),
    ("singapore", "SG"),
    ("slovakia", "SK"),
    ("slovenia", "SI"),
    ("somalia", "SO"),
    ("south africa", "ZA"),
    ("south sudan", "SS"),
    ("spain", "ES"),
    ("sri lanka", "LK"),
    ("sudan", "SD"),
    ("sweden", "SE"),
    ("switzerland", "CH"),
    ("syria", "SY"),
    ("syrian arab republic", "SY"),
    ("taiwan", "TW"),
    ("tajikistan", "TJ"),
    ("tanzania", "TZ"),
    ("united republic of tanzania", "TZ"),
    ("thailand", "TH"),
    ("togo", "TG"),
    ("tunisia", "TN"),
    ("turkey", "TR"),
    ("türkiye", "TR"),
    ("turkiye", "TR"),
    ("turkmenistan", "TM"),
    ("uganda", "UG"),
    ("ukraine", "UA"),
    ("united arab emirates", "AE"),
    ("uae", "AE"),
    ("united kingdom", "GB"),
    ("united kingdom of great britain and northern ireland", "GB"),
    ("uk", "GB"),
    ("united states", "US"),
    ("united states of america", "US"),
    ("usa", "US"),
    ("uruguay", "UY"),
    ("uzbekistan", "UZ"),
    ("vanuatu", "VU"),
    ("venezuela", "VE"),
    ("venezuela (bolivarian republic of)", "VE"),
    ("viet nam", "VN"),
    ("vietnam", "VN"),
    ("yemen", "YE"),
    ("zimbabwe", "ZW"),
    ("zambia", "ZM"),
];

/// Lower case, typographic apostrophes made plain, a leading "the " and trailing dots
/// dropped, inner whitespace collapsed.
fn normalise(s: &str) -> String {
    let lower = s.trim().to_lowercase().replace(['\u{2019}', '`'], "'");
    let collapsed = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    let no_dot = collapsed.trim_end_matches('.');
    no_dot.strip_prefix("the ").unwrap_or(no_dot).to_owned()
}

/// The alpha-2 code of `value`: an assigned alpha-2 code in any case, or a name from the
/// table above. `None` for anything else.
pub fn country_code(value: &str) -> Option<CountryCode> {
    let v = value.trim();
    if v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()) {
        let upper = v.to_ascii_uppercase();
        if ISO_ALPHA2.split(' ').any(|c| c == upper) {
            return CountryCode::new(upper).ok();
        }
    }
    let key = normalise(v);
    NAMES
        .iter()
        .find(|(name, _)| *name == key)
        .and_then(|(_, code)| CountryCode::new(*code).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn the_code_list_is_iso_plus_kosovo() {
        let codes: Vec<&str> = ISO_ALPHA2.split(' ').collect();
        assert_eq!(codes.len(), 250);
        let unique: std::collections::BTreeSet<&str> = codes.iter().copied().collect();
        assert_eq!(unique.len(), 250);
        assert!(codes.iter().all(|c| CountryCode::check(c).is_ok()));
    }

    #[test]
    fn every_table_entry_is_normalised_and_assigned() {
        for (name, code) in NAMES {
            assert_eq!(normalise(name), *name, "{name}");
            assert!(ISO_ALPHA2.split(' ').any(|c| c == *code), "{code}");
        }
    }

    #[test]
    fn maps_codes_and_names() {
        let code = |s: &str| country_code(s).map(|c| c.as_str().to_owned());
        assert_eq!(code("de").as_deref(), Some("DE"));
        assert_eq!(code(" Ru ").as_deref(), Some("RU"));
        assert_eq!(code("Syrian Arab Republic").as_deref(), Some("SY"));
        assert_eq!(code("Iran (Islamic Republic of)").as_deref(), Some("IR"));
        assert_eq!(
            code("Democratic People\u{2019}s Republic of Korea").as_deref(),
            Some("KP")
        );
        assert_eq!(code("the Netherlands").as_deref(), Some("NL"));
        assert_eq!(code("UK").as_deref(), Some("GB"));
        assert_eq!(code("XX"), None);
        assert_eq!(code("zz"), None);
        assert_eq!(code("Atlantis"), None);
        assert_eq!(code(""), None);
    }
}
