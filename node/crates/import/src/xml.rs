//! A small streaming reader for list XML, shared by the UN and OFAC formats: it checks
//! the root element and hands over each record element (`INDIVIDUAL`, `ENTITY`,
//! `sdnEntry`) as a little tree, one at a time, so a 25 MB list never sits in memory as
//! a whole document.
//!
//! Element names are matched by local name, so namespace prefixes and default
//! namespaces (OFAC publishes with one) do not matter. Attributes are not used by either
//! list and are ignored. Only the predefined entities and character references are
//! resolved; a document-defined entity is kept as written (`&name;`), so no entity
//! expansion can blow up.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{Format, ImportError};

/// Deepest element nesting accepted; list records are 3-4 levels deep. The limit keeps
/// a hostile file from building (and recursively dropping) an arbitrarily deep tree.
const MAX_DEPTH: usize = 64;

/// One element of a record: its local name, its own text and its child elements.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
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
                let element = Element {
                    name,
                    ..Element::default()
                };
                if open.is_empty() {
                    if !records.contains(&element.name.as_str()) {
                        continue;
                    }
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
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = open.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = open.last_mut() {
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
