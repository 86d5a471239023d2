//! Plain-text tables for the terminal, with correct widths for Chinese text.

use comfy_table::presets::NOTHING;
use comfy_table::{CellAlignment, ContentArrangement, Table};

/// A borderless table with these column headers, wrapped to fit the terminal when
/// printed to one.
pub fn new(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING).set_content_arrangement(ContentArrangement::Dynamic).set_header(headers.to_vec());
    table
}

/// Right-aligns numeric columns.
pub fn right_align(table: &mut Table, columns: &[usize]) {
    for index in columns {
        if let Some(column) = table.column_mut(*index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}
