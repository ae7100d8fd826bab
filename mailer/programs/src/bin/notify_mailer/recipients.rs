//! The recipient list: CSV or TSV with a header, one address (or registration id) per row,
//! turned into one [`Recipient`] per distinct address with all of its rows.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::anyhow;

/// One row's columns, by header name.
pub type Row = BTreeMap<String, String>;

/// The first column of the list says what identifies a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyColumn {
    Email,
    Id,
}

/// A row as read, before ids are resolved to addresses.
#[derive(Debug, Clone)]
pub struct ListRow {
    /// Line number in the file (1-based; the header is line 1).
    pub line: u64,
    /// The first column, trimmed.
    pub key: String,
    pub columns: Row,
}

/// The parsed list.
#[derive(Debug)]
pub struct List {
    pub key: KeyColumn,
    pub rows: Vec<ListRow>,
}

/// Everything sent to one address.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub address: String,
    pub rows: Vec<Row>,
}

/// Reads the list; any malformed row is an error naming the file and the line.
pub fn read_list(path: &Path, tsv: bool) -> anyhow::Result<List> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow!("cannot read the recipient list {}: {e}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if tsv { b'\t' } else { b',' })
        .has_headers(true)
        .from_reader(file);
    let at = |line: u64, what: String| anyhow!("{}, line {line}: {what}", path.display());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| at(line_of(&e).unwrap_or(1), e.to_string()))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
        .collect();
    let key = match headers.first().map(|h| h.to_ascii_lowercase()).as_deref() {
        Some("email") => KeyColumn::Email,
        Some("id") => KeyColumn::Id,
        Some(other) if !other.is_empty() => {
            return Err(at(
                1,
                format!("the first column is {other:?}; expected \"email\" or \"id\""),
            ));
        }
        _ => {
            return Err(at(
                1,
                "no header line (expected a first column \"email\" or \"id\")".into(),
            ));
        }
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| at(line_of(&e).unwrap_or(0), csv_reason(&e)))?;
        let line = record.position().map_or(0, |p| p.line());
        let first = record.get(0).unwrap_or("").trim().to_owned();
        if record.len() == 1 && first.is_empty() {
            continue; // a blank line
        }
        match key {
            KeyColumn::Email => check_address(&first).map_err(|why| at(line, why))?,
            KeyColumn::Id => {
                first
                    .parse::<i64>()
                    .map_err(|_| at(line, format!("{first:?} is not a registration id")))?;
            }
        }
        let columns = headers
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_owned))
            .collect();
        rows.push(ListRow {
            line,
            key: first,
            columns,
        });
    }
    Ok(List { key, rows })
}

fn line_of(e: &csv::Error) -> Option<u64> {
    e.position().map(|p| p.line())
}

/// The csv crate's message without its own position (we name the file and line ourselves).
fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} field(s) where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => e.to_string(),
    }
}

/// A plain `local@domain` address in ASCII, as the mailer will send it.
pub fn check_address(address: &str) -> Result<(), String> {
    let valid = address.is_ascii()
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
        && matches!(address.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(())
    } else {
        Err(format!("{address:?} is not a valid email address"))
    }
}

/// One recipient per distinct address (case-insensitive), each with all its rows, sorted by
/// address, then cut to `start <= address < end`.
pub fn group(rows: Vec<(String, Row)>, start: Option<&str>, end: Option<&str>) -> Vec<Recipient> {
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut recipients: Vec<Recipient> = Vec::new();
    for (address, row) in rows {
        let key = address.to_ascii_lowercase();
        match by_key.get(&key) {
            Some(&i) => recipients[i].rows.push(row),
            None => {
                by_key.insert(key, recipients.len());
                recipients.push(Recipient {
                    address,
                    rows: vec![row],
                });
            }
        }
    }
    recipients.sort_by_key(|r| r.address.to_ascii_lowercase());
    let start = start.map(str::to_ascii_lowercase);
    let end = end.map(str::to_ascii_lowercase);
    recipients.retain(|r| {
        let a = r.address.to_ascii_lowercase();
        start.as_ref().is_none_or(|s| a >= *s) && end.as_ref().is_none_or(|e| a < *e)
    });
    recipients
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: &str) -> Row {
        BTreeMap::from([("n".to_owned(), n.to_owned())])
    }

    #[test]
    fn duplicates_merge_and_range_cuts() {
        let rows = vec![
            ("b@x.example".to_owned(), row("1")),
            ("a@x.example".to_owned(), row("2")),
            ("B@x.example".to_owned(), row("3")),
            ("c@x.example".to_owned(), row("4")),
        ];
        let all = group(rows.clone(), None, None);
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].address, "b@x.example");
        assert_eq!(all[1].rows, vec![row("1"), row("3")]);
        let cut = group(rows, Some("b@x.example"), Some("c@x.example"));
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].address, "b@x.example");
    }

    #[test]
    fn addresses_are_checked() {
        assert!(check_address("a@example.com").is_ok());
        for bad in [
            "",
            "a",
            "@x",
            "a@",
            "a b@x",
            "a@b@c",
            "é@x.example",
            "<a@x>",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
