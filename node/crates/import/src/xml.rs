//! A small streaming reader for list XML, shared by the UN, OFAC, EU and UK formats: it
//! checks the root element and hands over each record element (`INDIVIDUAL`, `ENTITY`,
//! `sdnEntry`, `sanctionEntity`, `Designation`) as a little tree, one at a time, so a
//! 25 MB list never sits in memory as a whole document.
//!
//! Element and attribute names are matched by local name, so namespace prefixes and
//! default namespaces (OFAC and the EU publish with one) do not matter; namespace
//! declarations (`xmlns`, `xmlns:x`) are not attributes. Attribute values are
//! normalised as XML requires (tab and line ends become spaces). Only the predefined
//! entities and character references are resolved, in text and attribute values alike;
//! a document-defined entity is kept as written (`&name;`), so no entity expansion can
//! blow up. Nesting and the number of attributes per element are bounded, and so is
//! each record: at most [`MAX_RECORD_ELEMENTS`] elements and [`MAX_RECORD_TEXT`] bytes
//! of text and attribute values, else [`ImportError::RecordTooLarge`] names the record
//! and the whole file fails (a record that large is hostile or broken). Memory and
//! time per record are therefore bounded.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Format, ImportError};

/// Deepest element nesting accepted; list records are 3-4 levels deep. The limit keeps
/// a hostile file from building (and recursively dropping) an arbitrarily deep tree.
const MAX_DEPTH: usize = 64;

/// Most attributes accepted on one element; an EU `birthdate` or `address` has about
/// twenty. The limit keeps a hostile file from making one element arbitrarily wide.
const MAX_ATTRIBUTES: usize = 128;

/// Longest entity or character reference name read (`&name;`); `&` followed by more
/// than this before a `;` is an error.
const MAX_REFERENCE: usize = 32;

/// Most elements in one record (the record element included); the largest real
/// records (EU entries with many aliases and addresses) have a few hundred. The limit
/// keeps a hostile record from growing one tree without bound.
pub(crate) const MAX_RECORD_ELEMENTS: usize = 10_000;

/// Most bytes of text and attribute values in one record (1 MiB).
pub(crate) const MAX_RECORD_TEXT: usize = 1024 * 1024;

/// One element of a record: its local name, its attributes (local names and
/// unescaped values, in document order), its own text and its child elements.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
}

impl Element {
    /// Child elements named `name`.
    pub(crate) fn all<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Element> + use<'a, 'n> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The value of attribute `name` (by local name), trimmed; `None` when missing or
    /// empty.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// This element's text, trimmed; `None` when empty.
    pub(crate) fn value(&self) -> Option<&str> {
        let t = self.text.trim();
        (!t.is_empty()).then_some(t)
    }

    /// The trimmed text of the first child named `name` that has text.
    pub(crate) fn text_of(&self, name: &str) -> Option<&str> {
        self.all(name).find_map(Element::value)
    }

    /// The texts of every grandchild `leaf` under children `list` (e.g. every
    /// `program` under `programList`).
    pub(crate) fn leaves<'a>(&'a self, list: &str, leaf: &str) -> Vec<&'a str> {
        self.all(list)
            .flat_map(|l| l.all(leaf))
            .filter_map(Element::value)
            .collect()
    }
}

/// The attributes of `start` by local name, values normalised and unescaped. Namespace
/// declarations are left out; a malformed or repeated attribute, a bad reference or
/// more than [`MAX_ATTRIBUTES`] attributes is an error message.
fn attributes(start: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for attribute in start.attributes().with_checks(true) {
        let attribute = attribute.map_err(|e| format!("attribute: {e}"))?;
        if attribute.key.as_namespace_binding().is_some() {
            continue;
        }
        if out.len() == MAX_ATTRIBUTES {
            return Err(format!(
                "more than {MAX_ATTRIBUTES} attributes on one element"
            ));
        }
        let name = attribute.key.local_name().into_inner().to_owned();
        let value =
            attribute_value(&attribute.value).map_err(|e| format!("attribute {name:?}: {e}"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// An attribute value as XML 1.0 reads it: tab, line feed and carriage return (a CR LF
/// pair once) become a space; character references and the five predefined entities
/// are resolved; any other entity is kept as written.
fn attribute_value(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        rest = rest.get(c.len_utf8()..).unwrap_or_default();
        match c {
            '\r' => {
                rest = rest.strip_prefix('\n').unwrap_or(rest);
                out.push(' ');
            }
            '\n' | '\t' => out.push(' '),
            '&' => {
                // Search bytes: the head may end inside a multi-byte character, and
                // `;` is ASCII, so the offset found is a character boundary.
                let end = rest
                    .as_bytes()
                    .iter()
                    .take(MAX_REFERENCE + 1)
                    .position(|&b| b == b';')
                    .ok_or_else(|| "'&' without a reference after it".to_owned())?;
                let name = rest.get(..end).unwrap_or_default();
                rest = rest.get(end + 1..).unwrap_or_default();
                if let Some(number) = name.strip_prefix('#') {
                    out.push(char_reference(number)?);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(name) {
                    out.push_str(s);
                } else if name.is_empty() {
                    return Err("empty reference '&;'".to_owned());
                } else {
                    out.push('&');
                    out.push_str(name);
                    out.push(';');
                }
            }
            '<' => return Err("'<' in an attribute value".to_owned()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The character of a character reference without its `&#` and `;` (`65`, `x41`).
fn char_reference(number: &str) -> Result<char, String> {
    let code = match number.strip_prefix('x') {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u32::from_str_radix(hex, 16).ok()
        }
        None if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => {
            number.parse().ok()
        }
        _ => None,
    };
    code.and_then(char::from_u32)
        .filter(|c| *c != '\0')
        .ok_or_else(|| format!("invalid character reference '&#{number};'"))
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: u64) -> usize {
    let end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// Reads `text`, checks that its root element is `root`, and calls `on_record` with the
/// 1-based record number and the tree of every element named in `records` (counted
/// together in document order; records nested inside records are not records).
pub(crate) fn for_each_record(
    text: &str,
    format: Format,
    root: &'static str,
    records: &[&str],
    mut on_record: impl FnMut(usize, Element),
) -> Result<(), ImportError> {
    let mut reader = Reader::from_str(text);
    let mut seen_root = false;
    // Open elements: the depth below the root, and the elements of the record being read.
    let mut depth = 0usize;
    let mut open: Vec<Element> = Vec::new();
    let mut count = 0usize;
    // The size of the record being read: elements and bytes of text and attributes.
    let mut elements = 0usize;
    let mut text_bytes = 0usize;
    let too_large =
        |reader: &Reader<&[u8]>, record: usize, what: String| ImportError::RecordTooLarge {
            line: line_of(text, reader.buffer_position()),
            record,
            what,
        };
    let syntax =
        |reader: &Reader<&[u8]>, record: Option<usize>, message: String| ImportError::Xml {
            line: line_of(text, reader.buffer_position()),
            record,
            message,
        };
    loop {
        let current = (!open.is_empty()).then_some(count);
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                return Err(if seen_root {
                    ImportError::Xml {
                        line: line_of(text, reader.error_position()),
                        record: current,
                        message: e.to_string(),
                    }
                } else {
                    ImportError::NotXml(format!(
                        "line {}: {e}",
                        line_of(text, reader.error_position())
                    ))
                });
            }
        };
        if !seen_root {
            match event {
                Event::Start(ref start) | Event::Empty(ref start) => {
                    let name = start.local_name().into_inner().to_owned();
                    if name != root {
                        return Err(ImportError::WrongRoot {
                            format,
                            expected: root,
                            found: name,
                        });
                    }
                    if matches!(event, Event::Empty(_)) {
                        return Ok(());
                    }
                    seen_root = true;
                    depth = 1;
                }
                Event::Text(ref t) if t.trim().is_empty() => {}
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
                Event::Eof => return Err(ImportError::NotXml("no root element".to_owned())),
                other => {
                    let shown: String = other.trim().chars().take(40).collect();
                    return Err(ImportError::NotXml(format!(
                        "{shown:?} before the first element"
                    )));
                }
            }
            continue;
        }
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let name = start.local_name().into_inner().to_owned();
                let empty = matches!(event, Event::Empty(_));
                if !empty {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(syntax(
                            &reader,
                            current,
                            format!("elements nested deeper than {MAX_DEPTH} levels"),
                        ));
                    }
                }
                if open.is_empty() && !records.contains(&name.as_str()) {
                    continue;
                }
                let record = if open.is_empty() { count + 1 } else { count };
                if open.is_empty() {
                    elements = 0;
                    text_bytes = 0;
                }
                elements += 1;
                if elements > MAX_RECORD_ELEMENTS {
                    return Err(too_large(
                        &reader,
                        record,
                        format!("more than {MAX_RECORD_ELEMENTS} elements"),
                    ));
                }
                let attributes =
                    attributes(start).map_err(|message| syntax(&reader, Some(record), message))?;
                text_bytes += attributes
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>();
                if text_bytes > MAX_RECORD_TEXT {
                    return Err(too_large(
                        &reader,
                        record,
                        format!("more than {MAX_RECORD_TEXT} bytes of text"),
                    ));
                }
                let element = Element {
                    name,
                    attributes,
                    ..Element::default()
                };
                if open.is_empty() {
                    count += 1;
                    if empty {
                        on_record(count, element);
                        continue;
                    }
                    open.push(element);
                } else if empty {
                    if let Some(parent) = open.last_mut() {
                        parent.children.push(element);
                    }
                } else {
                    open.push(element);
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if let Some(done) = open.pop() {
                    match open.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => on_record(count, done),
                    }
                }
                if depth == 0 {
                    // The root is closed; anything after it but comments is not ours.
                    return Ok(());
                }
            }
            Event::Text(t) => {
                if let Some(top) = open.last_mut() {
                    text_bytes += t.len();
                    if text_bytes > MAX_RECORD_TEXT {
                        return Err(too_large(
                            &reader,
                            count,
                            format!("more than {MAX_RECORD_TEXT} bytes of text"),
                        ));
                    }
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = open.last_mut() {
                    text_bytes += t.len();
                    if text_bytes > MAX_RECORD_TEXT {
                        return Err(too_large(
                            &reader,
                            count,
                            format!("more than {MAX_RECORD_TEXT} bytes of text"),
                        ));
                    }
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = open.last_mut() {
                    // A reference adds at most its own length plus `&;`.
                    text_bytes += r.len() + 2;
                    if text_bytes > MAX_RECORD_TEXT {
                        return Err(too_large(
                            &reader,
                            count,
                            format!("more than {MAX_RECORD_TEXT} bytes of text"),
                        ));
                    }
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => top.text.push(c),
                        Ok(None) => match quick_xml::escape::resolve_predefined_entity(&r) {
                            Some(s) => top.text.push_str(s),
                            None => {
                                top.text.push('&');
                                top.text.push_str(&r);
                                top.text.push(';');
                            }
                        },
                        Err(e) => {
                            return Err(syntax(&reader, current, e.to_string()));
                        }
                    }
                }
            }
            Event::Eof => {
                return Err(syntax(
                    &reader,
                    current,
                    format!("the file ends before </{root}>: it may be truncated"),
                ));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn records(xml: &str) -> Result<Vec<(usize, Element)>, ImportError> {
        let mut out = Vec::new();
        for_each_record(xml, Format::OfacXml, "list", &["rec"], |n, e| {
            out.push((n, e))
        })?;
        Ok(out)
    }

    #[test]
    fn reads_records_with_prefixes_entities_and_cdata() {
        let xml = r#"<?xml version="1.0"?>
<x:list xmlns:x="urn:x"><x:head><rec>not a record?</rec></x:head>
<x:rec><x:a>A &amp; B &#1046;</x:a><b><![CDATA[<c>]]></b><e/></x:rec><rec/></x:list>"#;
        let got = records(xml).unwrap();
        // Records are found at any depth outside other records.
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].0, 2);
        assert_eq!(got[1].1.text_of("a"), Some("A & B Ж"));
        assert_eq!(got[1].1.text_of("b"), Some("<c>"));
        assert!(got[1].1.child("e").is_some());
        assert_eq!(got[2].1.children.len(), 0);
    }

    #[test]
    fn reads_attributes_by_local_name_unescaped() {
        let xml = "<e:list xmlns:e=\"urn:e\" xmlns=\"urn:d\">\n\
            <e:rec e:id=\" 7 \" name=\"A &amp; B &#x416;&#1046; &quot;x&quot; &custom;\" \
            multi=\"one\ttwo\r\nthree\"><sub code=\"&lt;P&gt;\" empty=\"\"/></e:rec></e:list>";
        let got = records(xml).unwrap();
        let rec = &got[0].1;
        // The namespace declarations are not attributes; prefixes are dropped.
        assert_eq!(rec.attributes.len(), 3);
        assert_eq!(rec.attr("id"), Some("7"));
        assert_eq!(rec.attr("name"), Some("A & B ЖЖ \"x\" &custom;"));
        assert_eq!(rec.attr("multi"), Some("one two three"));
        let sub = rec.child("sub").unwrap();
        assert_eq!(sub.attr("code"), Some("<P>"));
        assert_eq!(sub.attr("empty"), None);
        assert_eq!(sub.attr("missing"), None);
    }

    #[test]
    fn bad_attributes_are_syntax_errors_in_their_record() {
        for bad in [
            "<rec a=\"1\" a=\"2\"/>",
            "<rec a=1/>",
            "<rec a=\"x & y\"/>",
            "<rec a=\"&#0;\"/>",
            "<rec a=\"&#xD800;\"/>",
            "<rec a=\"&#12a;\"/>",
            "<rec a=\"&;\"/>",
        ] {
            let xml = format!("<list>\n<rec/>\n{bad}</list>");
            let err = records(&xml).unwrap_err();
            assert!(
                matches!(
                    err,
                    ImportError::Xml {
                        line: 3,
                        record: Some(2),
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        let wide: String = (0..=MAX_ATTRIBUTES)
            .map(|i| format!(" a{i}=\"v\""))
            .collect();
        let err = records(&format!("<list><rec{wide}/></list>")).unwrap_err();
        assert!(err.to_string().contains("attributes"), "{err}");
        // Attributes outside records are not read, so they cannot fail the file.
        assert!(records("<list><head a=\"&#0;\"/><rec/></list>").is_ok());
    }

    #[test]
    fn references_before_multi_byte_text_read_in_attributes_and_text() {
        // The 33rd byte after the '&' falls inside a Cyrillic character: the reference
        // is still found, and the file reads.
        let xml = "<list><rec wholeName=\"ООО &amp; Компания Ромашка и партнеры\" \
            other=\"&#x416;Компания Ромашка и партнеры\">\
            <a>ООО &amp; Компания Ромашка и партнеры</a>\
            <b>&#x416;Компания Ромашка и партнеры</b></rec></list>";
        let got = records(xml).unwrap();
        let rec = &got[0].1;
        assert_eq!(
            rec.attr("wholeName"),
            Some("ООО & Компания Ромашка и партнеры")
        );
        assert_eq!(rec.attr("other"), Some("ЖКомпания Ромашка и партнеры"));
        assert_eq!(rec.text_of("a"), Some("ООО & Компания Ромашка и партнеры"));
        assert_eq!(rec.text_of("b"), Some("ЖКомпания Ромашка и партнеры"));
        // A reference longer than the limit is still refused.
        let long = format!("<list><rec a=\"&{};\"/></list>", "ж".repeat(40));
        assert!(records(&long).is_err());
    }

    #[test]
    fn a_record_with_too_many_elements_or_too_much_text_is_a_typed_error() {
        let wide = format!("<list><rec/><rec>{}</rec></list>", "<a/>".repeat(200_000));
        match records(&wide) {
            Err(ImportError::RecordTooLarge {
                record: 2, what, ..
            }) => {
                assert!(what.contains("elements"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        // Nested children count too.
        let nested = format!(
            "<list><rec><x>{}</x></rec></list>",
            "<a>t</a>".repeat(MAX_RECORD_ELEMENTS + 1)
        );
        assert!(matches!(
            records(&nested),
            Err(ImportError::RecordTooLarge { record: 1, .. })
        ));
        let long_text = format!(
            "<list><rec><a>{}</a></rec></list>",
            "x".repeat(MAX_RECORD_TEXT + 1)
        );
        assert!(matches!(
            records(&long_text),
            Err(ImportError::RecordTooLarge { record: 1, .. })
        ));
        let long_attrs = format!(
            "<list><rec>{}</rec></list>",
            format!("<a v=\"{}\"/>", "y".repeat(4096)).repeat(300)
        );
        assert!(matches!(
            records(&long_attrs),
            Err(ImportError::RecordTooLarge { record: 1, .. })
        ));
        // The limits are per record: many records of a fair size read.
        let many = format!(
            "<list>{}</list>",
            format!("<rec>{}</rec>", "<a>t</a>".repeat(1000)).repeat(50)
        );
        assert_eq!(records(&many).unwrap().len(), 50);
    }

    #[test]
    fn whole_file_failures() {
        assert!(matches!(records(""), Err(ImportError::NotXml(_))));
        assert!(matches!(records("hello"), Err(ImportError::NotXml(_))));
        assert!(matches!(
            records("<other/>"),
            Err(ImportError::WrongRoot { .. })
        ));
        assert!(matches!(
            records("<list>\n<rec><a></b></rec></list>"),
            Err(ImportError::Xml {
                line: 2,
                record: Some(1),
                ..
            })
        ));
        assert!(matches!(
            records("<list><rec>"),
            Err(ImportError::Xml { .. })
        ));
        let deep = format!("<list>{}", "<a>".repeat(100));
        assert!(matches!(records(&deep), Err(ImportError::Xml { .. })));
    }
}
