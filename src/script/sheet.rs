//! Spreadsheets as games: reading `games/NAME.RULES.csv` and
//! `games/NAME.RULES.xlsx` into rows of text.
//!
//! A spreadsheet does not run anything itself. The catalog reads it here into
//! [`SheetRow`]s (every non-blank row of the first worksheet, cells as
//! trimmed text) and hands them to the `sheet` function of the game `RULES`,
//! which turns them into the params new sessions start with
//! (docs/lua-api.md §3, "A spreadsheet as a game"). What only the file can get
//! wrong is reported here, as `capitals.quiz.xlsx:5: …`: a file that is not
//! UTF-8, a formula cell, an error cell, too many rows.

use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Reader, Xlsx};

/// How the name of a spreadsheet game's file ends.
pub const EXTENSIONS: [&str; 2] = ["csv", "xlsx"];
/// Bounds on what one spreadsheet may hold.
const MAX_FILE_BYTES: u64 = 4 << 20;
const MAX_ROWS: usize = 2000;
const MAX_COLUMNS: usize = 64;
const MAX_CELL_CHARS: usize = 4000;

/// One non-blank row of a spreadsheet.
#[derive(Debug, Clone, PartialEq)]
pub struct SheetRow {
    /// Its number as the spreadsheet shows it (1 = the first row); for a CSV
    /// file, the line it starts on.
    pub row: usize,
    /// Its cells, trimmed; `""` for an empty one. Numbers are written the
    /// shortest way (`20`, not `20.0`).
    pub cells: Vec<String>,
}

/// The parts of a spreadsheet game's file name: `capitals.quiz.csv` is the
/// game `capitals` played by the rules of `quiz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetName<'a> {
    /// The game it makes.
    pub game: &'a str,
    /// The game whose rules play it.
    pub rules: &'a str,
    /// `csv` or `xlsx`.
    pub extension: &'a str,
}

/// Splits `capitals.quiz.csv` into its parts; `None` for any other name.
pub fn parse_name(file_name: &str) -> Option<SheetName<'_>> {
    let (rest, extension) = file_name.rsplit_once('.')?;
    let extension = EXTENSIONS
        .iter()
        .find(|e| e.eq_ignore_ascii_case(extension))
        .copied()?;
    let (game, rules) = rest.rsplit_once('.')?;
    Some(SheetName {
        game,
        rules,
        extension,
    })
}

/// Reads a spreadsheet; errors are `FILE:ROW: message` (or `FILE: message`),
/// `FILE` being `file_name`.
pub fn read(path: &Path, file_name: &str) -> Result<Vec<SheetRow>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{file_name}: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{file_name}: the file is larger than {} MiB",
            MAX_FILE_BYTES >> 20
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{file_name}: {e}"))?;
    let rows = match parse_name(file_name).map(|n| n.extension) {
        Some("xlsx") => read_xlsx(bytes, file_name)?,
        _ => read_csv(&bytes, file_name)?,
    };
    if rows.len() > MAX_ROWS {
        return Err(format!(
            "{file_name}: more than {MAX_ROWS} rows; split it into several files"
        ));
    }
    Ok(rows)
}

fn read_csv(bytes: &[u8], file_name: &str) -> Result<Vec<SheetRow>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        format!(
            "{file_name}:{line}: the file is not UTF-8 text; save it as \"CSV UTF-8\" from the spreadsheet"
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter(text))
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    // The reader's own line numbers count blank lines before a record as
    // part of it; the line a record starts on is counted here instead.
    let (mut seen, mut line) = (0, 1);
    let mut line_at = |byte: usize| {
        let start = byte
            + text.as_bytes()[byte.min(text.len())..]
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
        let start = start.min(text.len());
        line += text.as_bytes()[seen.min(start)..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        seen = start;
        line
    };
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            format!("{file_name}:{line}: this line cannot be read as CSV: {e}")
        })?;
        let row = line_at(record.position().map_or(0, |p| p.byte() as usize));
        let cells: Vec<String> = record.iter().map(|c| c.trim().to_owned()).collect();
        push_row(&mut rows, row, cells, file_name)?;
        if rows.len() > MAX_ROWS {
            break;
        }
    }
    Ok(rows)
}

/// The separator a spreadsheet saved the file with: `,`, or `;` (what
/// spreadsheets write where the decimal mark is a comma) or a tab, when the
/// first line has more of those than commas.
fn delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    let count = |c: char| first.chars().filter(|x| *x == c).count();
    let commas = count(',');
    [b';', b'\t']
        .into_iter()
        .filter(|d| count(char::from(*d)) > commas)
        .max_by_key(|d| count(char::from(*d)))
        .unwrap_or(b',')
}

fn read_xlsx(bytes: Vec<u8>, file_name: &str) -> Result<Vec<SheetRow>, String> {
    let unreadable = |e: calamine::XlsxError| {
        format!("{file_name}: this is not a spreadsheet Recess can read ({e}); save it as .xlsx")
    };
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
    let Some(first) = book.sheet_names().first().cloned() else {
        return Err(format!("{file_name}: the workbook has no worksheet"));
    };
    let formulas = book.worksheet_formula(&first).map_err(unreadable)?;
    if let Some((row, col, formula)) = formulas.used_cells().find(|(_, _, f)| !f.is_empty()) {
        let (r0, c0) = formulas.start().unwrap_or((0, 0));
        let (r, c) = (r0 as usize + row, c0 as usize + col);
        return Err(format!(
            "{file_name}:{}: cell {} holds a formula (={formula}); type its value instead",
            r + 1,
            cell_name(r, c)
        ));
    }
    let range = book.worksheet_range(&first).map_err(unreadable)?;
    let (r0, c0) = range.start().unwrap_or((0, 0));
    let mut rows = Vec::new();
    for (i, cells) in range.rows().enumerate() {
        let r = r0 as usize + i;
        let mut text = vec![String::new(); c0 as usize];
        for (j, cell) in cells.iter().enumerate() {
            text.push(cell_text(cell).map_err(|why| {
                format!(
                    "{file_name}:{}: cell {} {why}",
                    r + 1,
                    cell_name(r, c0 as usize + j)
                )
            })?);
        }
        push_row(&mut rows, r + 1, text, file_name)?;
        if rows.len() > MAX_ROWS {
            break;
        }
    }
    Ok(rows)
}

/// A cell as text: numbers the shortest way, dates as their serial number.
fn cell_text(cell: &Data) -> Result<String, String> {
    Ok(match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::Int(n) => n.to_string(),
        Data::Float(f) => number_text(*f),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        // The serial number a spreadsheet keeps a date as.
        Data::DateTime(d) => number_text(d.as_f64()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => return Err(format!("holds an error ({e}); type a value instead")),
    })
}

/// `20` for 20.0, `0.5` for 0.5.
fn number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// `C5` for row 4, column 2 (both from 0).
fn cell_name(row: usize, col: usize) -> String {
    let mut letters = Vec::new();
    let mut n = col + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect::<String>() + &(row + 1).to_string()
}

/// Adds a row unless it is blank; trailing empty cells are dropped.
fn push_row(
    rows: &mut Vec<SheetRow>,
    row: usize,
    mut cells: Vec<String>,
    file_name: &str,
) -> Result<(), String> {
    while cells.last().is_some_and(String::is_empty) {
        cells.pop();
    }
    if cells.is_empty() {
        return Ok(());
    }
    if cells.len() > MAX_COLUMNS {
        return Err(format!(
            "{file_name}:{row}: more than {MAX_COLUMNS} columns"
        ));
    }
    if let Some(i) = cells
        .iter()
        .position(|c| c.chars().count() > MAX_CELL_CHARS)
    {
        return Err(format!(
            "{file_name}:{row}: cell {} is longer than {MAX_CELL_CHARS} characters",
            cell_name(row.saturating_sub(1), i)
        ));
    }
    rows.push(SheetRow { row, cells });
    Ok(())
}

/// The rows as CSV text: how a recording keeps a spreadsheet (whatever its
/// format), so `recess replay` can load the same rows again.
pub fn to_csv(rows: &[SheetRow]) -> String {
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in rows {
        // A write to a Vec cannot fail.
        let _ = out.write_record(&row.cells);
    }
    let bytes = out.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_rows(text: &str) -> Result<Vec<SheetRow>, String> {
        read_csv(text.as_bytes(), "t.quiz.csv")
    }

    #[test]
    fn names_split_into_game_rules_and_format() {
        assert_eq!(
            parse_name("capitals.quiz.csv"),
            Some(SheetName {
                game: "capitals",
                rules: "quiz",
                extension: "csv"
            })
        );
        assert_eq!(
            parse_name("capitals.quiz.XLSX").map(|n| n.extension),
            Some("xlsx")
        );
        assert_eq!(parse_name("capitals.csv"), None);
        assert_eq!(parse_name("quiz.lua"), None);
    }

    #[test]
    fn csv_rows_keep_their_line_numbers_and_skip_blank_ones() {
        let rows = csv_rows("\u{feff}a, b ,\n,,\n\nc,\"d,\ne\"\nf\n").unwrap();
        assert_eq!(
            rows,
            vec![
                SheetRow {
                    row: 1,
                    cells: vec!["a".into(), "b".into()]
                },
                SheetRow {
                    row: 4,
                    cells: vec!["c".into(), "d,\ne".into()]
                },
                SheetRow {
                    row: 6,
                    cells: vec!["f".into()]
                },
            ]
        );
    }

    #[test]
    fn semicolons_and_tabs_are_separators_when_the_first_line_says_so() {
        assert_eq!(
            csv_rows("a;b;c\n1;2,5;3\n").unwrap()[1].cells,
            ["1", "2,5", "3"]
        );
        assert_eq!(csv_rows("a\tb\n1\t2\n").unwrap()[1].cells, ["1", "2"]);
        assert_eq!(csv_rows("a,b;c\n").unwrap()[0].cells, ["a", "b;c"]);
    }

    #[test]
    fn a_file_that_is_not_utf8_names_its_line() {
        let err = read_csv(b"a,b\nCaf\xe9,c\n", "t.quiz.csv").unwrap_err();
        assert!(
            err.starts_with("t.quiz.csv:2: the file is not UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn rows_round_trip_through_csv() {
        let rows = csv_rows("q,\"a, b\",\"say \"\"hi\"\"\"\nx\n").unwrap();
        let again = csv_rows(&to_csv(&rows)).unwrap();
        let cells = |r: &[SheetRow]| r.iter().map(|r| r.cells.clone()).collect::<Vec<_>>();
        assert_eq!(cells(&rows), cells(&again));
    }

    #[test]
    fn cells_are_named_as_spreadsheets_name_them() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(4, 2), "C5");
        assert_eq!(cell_name(9, 26), "AA10");
        assert_eq!(number_text(20.0), "20");
        assert_eq!(number_text(0.5), "0.5");
    }

    fn xlsx(dir: &Path, build: impl FnOnce(&mut rust_xlsxwriter::Worksheet)) -> std::path::PathBuf {
        let mut book = rust_xlsxwriter::Workbook::new();
        build(book.add_worksheet());
        let path = dir.join("k.quiz.xlsx");
        book.save(&path).unwrap();
        path
    }

    #[test]
    fn xlsx_rows_are_numbered_as_the_spreadsheet_shows_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = xlsx(dir.path(), |sheet| {
            sheet.write(0, 1, "Quiz template").unwrap();
            sheet.write(7, 1, "Question - max 120 characters").unwrap();
            sheet.write(8, 0, 1).unwrap();
            sheet.write(8, 1, " Capital of France? ").unwrap();
            sheet.write(8, 6, 20).unwrap();
            sheet.write(8, 7, 0.5).unwrap();
        });
        let rows = read(&path, "k.quiz.xlsx").unwrap();
        assert_eq!(
            rows,
            vec![
                SheetRow {
                    row: 1,
                    cells: vec!["".into(), "Quiz template".into()]
                },
                SheetRow {
                    row: 8,
                    cells: vec!["".into(), "Question - max 120 characters".into()]
                },
                SheetRow {
                    row: 9,
                    cells: ["1", "Capital of France?", "", "", "", "", "20", "0.5"]
                        .map(String::from)
                        .to_vec()
                },
            ]
        );
    }

    #[test]
    fn an_xlsx_formula_or_error_cell_is_named_with_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = xlsx(dir.path(), |sheet| {
            sheet.write(0, 0, "Question").unwrap();
            sheet.write_formula(4, 2, "=A5*2").unwrap();
        });
        assert_eq!(
            read(&path, "k.quiz.xlsx").unwrap_err(),
            "k.quiz.xlsx:5: cell C5 holds a formula (=A5*2); type its value instead"
        );
        let bad = dir.path().join("bad.quiz.xlsx");
        std::fs::write(&bad, "not a zip").unwrap();
        let err = read(&bad, "bad.quiz.xlsx").unwrap_err();
        assert!(
            err.starts_with("bad.quiz.xlsx: this is not a spreadsheet Recess can read"),
            "{err}"
        );
    }
}
