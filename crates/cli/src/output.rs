//! Rendering for people (aligned tables) and for scripts (`--output json`: the resource or the
//! list as the API returned it).

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tmirror_client::{Page, PageInfo};

/// `--output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    // Plain comments, not doc comments: clap would turn those into a long per-value listing
    // in every command's help.
    // Aligned columns (lists) or field/value pairs (one resource).
    #[default]
    Table,
    // The JSON the API returned: the resource object, or the list body with `page_info`.
    Json,
}

/// A table of text cells with a header row; columns are as wide as their widest cell.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Self {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    // No padding after the last column: keeps lines free of trailing blanks.
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Field/value pairs of one resource.
pub fn fields(pairs: Vec<(&'static str, String)>) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let line = format!("{k:<width$}  {v}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `-` for an absent or empty value, so columns never collapse.
pub fn or_dash(s: Option<&str>) -> String {
    match s {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => "-".to_owned(),
    }
}

/// Writes text to stdout. A closed pipe (`tmirror session list | head`) is not an error.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Pretty JSON of a value, with a final newline.
pub fn print_json<T: Serialize>(value: &T) {
    // Through `Value` first, so key order is that of the server's own serialiser.
    let value = serde_json::to_value(value).expect("wire types serialise");
    print(&(serde_json::to_string_pretty(&value).expect("JSON values print") + "\n"));
}

/// The list body as the API returns it: `{<key>: [...], "page_info": ..., "request_id": ...}`
/// for v3, `{"ports": [...]}` for v1. With `--all` the pages are merged into one, with the
/// `page_info` a single page holding everything would have.
pub fn list_json<T: Serialize>(key: &str, page: &Page<T>, merged: bool) -> Value {
    let mut body = Map::new();
    body.insert(key.to_owned(), json!(page.items));
    let info = if merged && page.page_info.is_some() {
        Some(PageInfo {
            previous_marker: page.items.first().and_then(|i| id_of(i)),
            current_count: page.items.len(),
            next_marker: None,
        })
    } else {
        page.page_info.clone()
    };
    if let Some(info) = info {
        body.insert("page_info".into(), json!(info));
    }
    if let Some(rid) = &page.request_id {
        body.insert("request_id".into(), json!(rid));
    }
    Value::Object(body)
}

fn id_of<T: Serialize>(item: &T) -> Option<String> {
    serde_json::to_value(item)
        .ok()?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

/// Tells a person on stderr that a list has more pages (stdout stays the table).
pub fn more_hint(page_info: Option<&PageInfo>) {
    if let Some(next) = page_info.and_then(|p| p.next_marker.as_deref()) {
        eprintln!("more results: repeat with --marker {next}, or use --all");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_has_no_trailing_blanks() {
        let mut t = Table::new(vec!["ID", "NAME"]);
        t.row(vec!["a".into(), "web".into()]);
        t.row(vec!["long-id".into(), "".into()]);
        assert_eq!(t.render(), "ID       NAME\na        web\nlong-id\n");
    }

    #[test]
    fn fields_align() {
        assert_eq!(
            fields(vec![("id", "x".into()), ("priority", "1".into())]),
            "id        x\npriority  1\n"
        );
    }
}
