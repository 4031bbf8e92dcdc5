#pragma once
// Label tables for datasets of photos (issue 16): a CSV file with a header
// row and one row per image. One column names the image (a path relative to
// the image root); each task reads one column, or four for a box:
//
//   classes     any text; integers are fine ("0", "12"). The class names are
//               the distinct values sorted (numerically when every one is an
//               integer, so "10" follows "9"), or the spec's class_order.
//   binary      0/1, true/false, yes/no, in any case.
//   regression  a finite decimal number ("12.5", "-3e2").
//   box         four numbers, in the order the spec lists the columns.
//
// An empty cell is a missing label: present = 0, and the task's loss skips
// the row. A box is missing when its four cells are empty; some empty and
// some filled is an error.
//
// The CSV is parsed by libcsv (RFC 4180 quoting: commas, quotes and line
// breaks inside quoted fields), strictly: a stray quote is an error. CRLF or
// LF line ends and a UTF-8 byte-order mark are accepted. Spaces and tabs
// around an unquoted field are dropped (quote a field to keep them). Blank
// lines, and lines whose fields are all empty (spreadsheets export empty rows
// as ",,,"), are skipped but counted, so row numbers stay those a spreadsheet
// shows: the header is row 1, and a record with a line break inside a quoted
// field is still one row.
//
// Every failure is a ladon::Error whose message is one line starting
// "CSV file <path>: " and naming the row and the column where there is one,
// and what was expected.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ladon::data {

struct LabelColumnSpec {
    enum class Kind : uint8_t { classes, binary, regression, box };

    std::string task;
    Kind kind = Kind::classes;
    std::vector<std::string> columns;  // one; four for a box
    // Classes only: the class names in index order. Empty: the values found,
    // sorted. A value not in a given list is an error.
    std::vector<std::string> class_order;
};

struct LabelTableSpec {
    std::string path;
    std::string file_column;
    // Optional: keep only the rows whose cell in this column equals
    // split_value exactly ("train", "test"); a value no row holds is an error.
    std::string split_column;
    std::string split_value;
    std::vector<LabelColumnSpec> tasks;
};

// One task's labels, one entry per row of the table (several for a box).
struct TaskLabels {
    std::string task;
    LabelColumnSpec::Kind kind = LabelColumnSpec::Kind::classes;
    std::vector<std::string> columns;
    std::vector<uint8_t> present;  // 1 where the row has this label

    // binary (0 or 1), regression (1 per row), box (4 per row); 0 where missing.
    // Empty for classes.
    std::vector<float> values;
    int64_t values_per_row = 1;

    // Classes only: the class names in index order, each row's index into
    // them (-1 where missing), and each row's cell as written, so the table
    // can be indexed again by another class list (apply_class_names).
    std::vector<std::string> class_names;
    std::vector<int32_t> class_indices;
    std::vector<std::string> class_cells;
};

struct LabelTable {
    std::string path;                  // the CSV file, for error messages
    std::vector<std::string> files;    // relative to the image root, lexically normal, '/'-separated
    std::vector<int64_t> row_numbers;  // the spreadsheet row of each entry (header = 1)
    std::vector<TaskLabels> tasks;     // in the spec's order

    size_t num_rows() const { return files.size(); }
    // Throws when the table has no such task.
    const TaskLabels& task(std::string_view name) const;
    TaskLabels& task(std::string_view name);
};

// Reads the table the spec describes. Every file cell must be valid UTF-8, a
// relative path whose `..` components never leave the root, and name an
// image no other row names ("a/../b.jpg" and "b.jpg" are the same image).
LabelTable read_label_table(const LabelTableSpec& spec);

// Indexes the classes task `task` of `table` by `class_names` (a training
// table's, or a checkpoint's) instead of its own: a class not among them is
// an error naming the row, the column and the value.
void apply_class_names(LabelTable& table, std::string_view task, const std::vector<std::string>& class_names);
// The same for every classes task of `reference` (the training table).
void apply_class_names(LabelTable& table, const LabelTable& reference);

// The rows given, in that order, with everything the table holds about them.
LabelTable select_rows(const LabelTable& table, std::span<const size_t> rows);

// A seeded split that depends only on each row's file name, not on the rows'
// order: a row goes to `selected` when
//   (file_name_hash(file, seed) >> 11) · 2^-53  <  fraction,
// to `rest` otherwise, each keeping the table's order. fraction in [0, 1].
struct LabelTableSplit {
    LabelTable selected;
    LabelTable rest;
};
LabelTableSplit split_rows(const LabelTable& table, double fraction, uint64_t seed);

// splitmix64 (counter_random.hpp's mix64) over the name's bytes:
//   h = mix64(seed); for each 8-byte little-endian chunk c (the last one
//   zero-padded): h = mix64(h ^ c); then h = mix64(h ^ byte count).
uint64_t file_name_hash(std::string_view file, uint64_t seed);

}  // namespace ladon::data
