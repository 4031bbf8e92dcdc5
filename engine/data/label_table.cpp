#include "engine/data/label_table.hpp"

#include <csv.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "engine/data/counter_random.hpp"
#include "ladon/error.hpp"

namespace ladon::data {
namespace {

using Kind = LabelColumnSpec::Kind;

[[noreturn]] void fail(std::string_view path, std::string_view what) {
    throw Error(fmt::format("CSV file {}: {}", path, what));
}

std::string_view kind_name(Kind kind) {
    switch (kind) {
        case Kind::classes:
            return "classes";
        case Kind::binary:
            return "binary";
        case Kind::regression:
            return "regression";
        case Kind::box:
            return "box";
    }
    return "?";
}

// At most `limit` names, quoted, then "…" when there are more.
std::string quoted_list(std::span<const std::string> names, size_t limit) {
    std::vector<std::string> quoted;
    for (size_t i = 0; i < names.size() && i < limit; ++i) quoted.push_back(fmt::format("'{}'", names[i]));
    if (names.size() > limit) quoted.emplace_back("…");
    return fmt::format("{}", fmt::join(quoted, ", "));
}

// ---------------------------------------------------------------- reading the CSV

struct CsvRecord {
    std::vector<std::string> fields;
    int64_t row_number = 0;
};

// libcsv's callbacks. The parser runs with CSV_REPALL_NL, so every unquoted
// line end arrives here, blank lines included: that keeps row_number equal
// to the spreadsheet's row. A CRLF arrives as two ends, CR then LF with no
// field between: the LF is dropped.
class RecordCollector {
public:
    static void on_field(void* text, size_t length, void* collector) {
        auto& self = *static_cast<RecordCollector*>(collector);
        self.fields_.emplace_back(text != nullptr ? static_cast<const char*>(text) : "", text != nullptr ? length : 0);
    }
    static void on_row_end(int terminator, void* collector) {
        static_cast<RecordCollector*>(collector)->end_row(terminator);
    }

    int64_t row_number() const { return row_number_; }
    std::vector<CsvRecord> take_records() { return std::move(records_); }

private:
    void end_row(int terminator) {
        const bool crlf_tail = terminator == '\n' && previous_terminator_ == '\r' && fields_.empty();
        previous_terminator_ = terminator;
        if (crlf_tail) return;
        const bool blank = std::all_of(fields_.begin(), fields_.end(), [](const auto& field) { return field.empty(); });
        if (!blank) records_.push_back({std::move(fields_), row_number_});
        fields_.clear();
        ++row_number_;
    }

    std::vector<CsvRecord> records_;
    std::vector<std::string> fields_;
    int64_t row_number_ = 1;
    int previous_terminator_ = 0;
};

class CsvParser {
public:
    CsvParser() {
        if (csv_init(&parser_, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL) != 0) {
            throw Error("libcsv: cannot initialise a parser (out of memory)");
        }
    }
    ~CsvParser() { csv_free(&parser_); }
    CsvParser(const CsvParser&) = delete;
    CsvParser& operator=(const CsvParser&) = delete;

    csv_parser* get() { return &parser_; }

private:
    csv_parser parser_{};
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int error = errno;
        fail(path, fmt::format("cannot open ({}); expected a label table with a header row",
                               error != 0 ? std::generic_category().message(error) : "unknown error"));
    }
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) fail(path, "read failed; expected a readable file");
    return bytes;
}

std::vector<CsvRecord> parse_csv(const std::string& path, std::string_view bytes) {
    constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
    if (bytes.starts_with(kByteOrderMark)) bytes.remove_prefix(kByteOrderMark.size());
    CsvParser parser;
    RecordCollector collector;
    const size_t parsed = csv_parse(parser.get(), bytes.data(), bytes.size(), RecordCollector::on_field,
                                    RecordCollector::on_row_end, &collector);
    const int finished = parsed == bytes.size() ? csv_fini(parser.get(), RecordCollector::on_field,
                                                           RecordCollector::on_row_end, &collector)
                                                : -1;
    if (parsed != bytes.size() || finished != 0) {
        if (csv_error(parser.get()) == CSV_ENOMEM || csv_error(parser.get()) == CSV_ETOOBIG) {
            fail(path, fmt::format("row {}: a field too large to hold in memory", collector.row_number()));
        }
        fail(path, fmt::format("row {}: malformed quoting; expected each quoted field to be closed and followed by "
                               "a comma or a line end, and no quote inside an unquoted field (write \"\" for a quote)",
                               collector.row_number()));
    }
    return collector.take_records();
}

// ---------------------------------------------------------------- cells

// The offset of the first byte that does not start or continue a valid UTF-8
// sequence (overlong forms, surrogates and code points past U+10FFFF are
// invalid), or npos.
size_t invalid_utf8_offset(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        size_t length = 0;
        uint32_t code_point = 0;
        if (lead < 0x80) {
            ++i;
            continue;
        } else if (lead >= 0xC2 && lead <= 0xDF) {
            length = 2, code_point = lead & 0x1Fu;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            length = 3, code_point = lead & 0x0Fu;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            length = 4, code_point = lead & 0x07u;
        } else {
            return i;
        }
        if (i + length > text.size()) return i;
        for (size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0u) != 0x80u) return i;
            code_point = (code_point << 6) | (next & 0x3Fu);
        }
        const uint32_t smallest = length == 3 ? 0x800u : 0x10000u;
        if ((length > 2 && code_point < smallest) || (code_point >= 0xD800 && code_point <= 0xDFFF) ||
            code_point > 0x10FFFF) {
            return i;
        }
        i += length;
    }
    return std::string_view::npos;
}

std::string where(int64_t row, std::string_view column) { return fmt::format("row {}, column '{}'", row, column); }

void check_utf8(const std::string& path, int64_t row, std::string_view column, std::string_view cell) {
    if (const size_t offset = invalid_utf8_offset(cell); offset != std::string_view::npos) {
        fail(path, fmt::format("{}: invalid UTF-8 (byte 0x{:02X} at offset {}); expected UTF-8 text (save the "
                               "spreadsheet as \"CSV UTF-8\")",
                               where(row, column), static_cast<unsigned char>(cell[offset]), offset));
    }
}

// The file cell as a lexically normal, '/'-separated path inside the root.
std::string checked_file_name(const std::string& path, int64_t row, std::string_view column, const std::string& cell) {
    const std::string at = where(row, column);
    if (cell.empty()) fail(path, at + ": empty; expected the image's path relative to the image root");
    check_utf8(path, row, column, cell);
    if (cell.find('\0') != std::string::npos) fail(path, at + ": a NUL byte in the file name; expected a path");
    const std::filesystem::path file(cell);
    if (file.is_absolute() || file.has_root_path()) {
        fail(path, fmt::format("{}: '{}' is an absolute path; expected a path relative to the image root", at, cell));
    }
    int64_t depth = 0;
    for (const auto& component : file) {
        if (component == "..") {
            if (--depth < 0) {
                fail(path,
                     fmt::format("{}: '{}' leaves the image root through '..'; expected a path inside it", at, cell));
            }
        } else if (component != "." && !component.empty()) {
            ++depth;
        }
    }
    if (depth == 0) fail(path, fmt::format("{}: '{}' names the image root itself; expected an image file", at, cell));
    return file.lexically_normal().generic_string();
}

std::optional<float> parse_number(std::string_view cell) {
    if (cell.starts_with('+')) cell.remove_prefix(1);
    float value = 0;
    const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
    if (error != std::errc() || end != cell.data() + cell.size() || !std::isfinite(value)) return std::nullopt;
    return value;
}

float number_cell(const std::string& path, int64_t row, std::string_view column, std::string_view cell) {
    const auto value = parse_number(cell);
    if (!value) {
        fail(path, fmt::format("{}: '{}' is not a number; expected a finite decimal number such as 12.5 (a float), "
                               "or an empty cell for a missing label",
                               where(row, column), cell));
    }
    return *value;
}

float binary_cell(const std::string& path, int64_t row, std::string_view column, std::string_view cell) {
    std::string lower(cell);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
    if (lower == "1" || lower == "true" || lower == "yes") return 1.0f;
    if (lower == "0" || lower == "false" || lower == "no") return 0.0f;
    fail(path, fmt::format("{}: '{}' is not a binary label; expected 0/1, true/false or yes/no (any case), or an "
                           "empty cell for a missing label",
                           where(row, column), cell));
}

std::optional<int64_t> parse_integer(std::string_view text) {
    int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// The distinct non-empty cells, sorted: numerically when all are integers.
std::vector<std::string> sorted_class_names(const std::vector<std::string>& cells) {
    std::vector<std::string> names;
    for (const auto& cell : cells) {
        if (!cell.empty()) names.push_back(cell);
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    const bool all_integers =
        std::all_of(names.begin(), names.end(), [](const auto& name) { return parse_integer(name).has_value(); });
    if (all_integers) {
        std::stable_sort(names.begin(), names.end(),
                         [](const auto& a, const auto& b) { return *parse_integer(a) < *parse_integer(b); });
    }
    return names;
}

// ---------------------------------------------------------------- the spec and the header

void check_spec(const LabelTableSpec& spec) {
    const auto bad = [&](std::string_view what) { fail(spec.path, fmt::format("label table spec: {}", what)); };
    if (spec.file_column.empty()) bad("no file column; expected the name of the column that holds image paths");
    if (!spec.split_column.empty() && spec.split_value.empty()) {
        bad(fmt::format("split column '{}' without a split value; expected e.g. \"train\"", spec.split_column));
    }
    for (size_t t = 0; t < spec.tasks.size(); ++t) {
        const auto& task = spec.tasks[t];
        if (task.task.empty()) bad(fmt::format("task {} has no name", t));
        for (size_t other = 0; other < t; ++other) {
            if (spec.tasks[other].task == task.task) bad(fmt::format("two tasks named '{}'", task.task));
        }
        const size_t expected = task.kind == Kind::box ? 4 : 1;
        if (task.columns.size() != expected) {
            bad(fmt::format("task '{}' ({}) names {} columns, expected {}", task.task, kind_name(task.kind),
                            task.columns.size(), expected));
        }
        if (!task.class_order.empty() && task.kind != Kind::classes) {
            bad(fmt::format("task '{}' ({}) has a class order; only classes tasks have classes", task.task,
                            kind_name(task.kind)));
        }
    }
}

class Header {
public:
    Header(const std::string& path, const CsvRecord& record) : path_(path), record_(record) {
        for (size_t c = 0; c < record.fields.size(); ++c) {
            const auto& name = record.fields[c];
            if (name.empty()) continue;
            const auto [existing, inserted] = index_.emplace(name, c);
            if (!inserted) {
                fail(path, fmt::format("row {}: columns {} and {} are both named '{}'; expected unique column names",
                                       record.row_number, existing->second + 1, c + 1, name));
            }
        }
    }

    size_t column(const std::string& name, std::string_view purpose) const {
        const auto found = index_.find(name);
        if (found == index_.end()) {
            fail(path_, fmt::format("no column '{}' ({}); the header (row {}) has columns {}", name, purpose,
                                    record_.row_number, quoted_list(record_.fields, 40)));
        }
        return found->second;
    }
    size_t size() const { return record_.fields.size(); }
    int64_t row_number() const { return record_.row_number; }

private:
    const std::string& path_;
    const CsvRecord& record_;
    std::unordered_map<std::string, size_t> index_;
};

// ---------------------------------------------------------------- one task

TaskLabels empty_task(const LabelColumnSpec& spec, size_t rows) {
    TaskLabels labels;
    labels.task = spec.task;
    labels.kind = spec.kind;
    labels.columns = spec.columns;
    labels.present.assign(rows, 0);
    if (spec.kind == Kind::classes) {
        labels.class_cells.resize(rows);
        labels.class_indices.assign(rows, -1);
    } else {
        labels.values_per_row = spec.kind == Kind::box ? 4 : 1;
        labels.values.assign(rows * static_cast<size_t>(labels.values_per_row), 0.0f);
    }
    return labels;
}

void read_cells(const std::string& path, const CsvRecord& record, size_t row, std::span<const size_t> columns,
                TaskLabels& labels) {
    const int64_t row_number = record.row_number;
    if (labels.kind == Kind::classes) {
        const std::string& cell = record.fields[columns[0]];
        if (cell.empty()) return;
        check_utf8(path, row_number, labels.columns[0], cell);
        labels.class_cells[row] = cell;
        labels.present[row] = 1;
        return;
    }
    if (labels.kind == Kind::box) {
        std::vector<std::string> filled, empty;
        for (size_t k = 0; k < 4; ++k)
            (record.fields[columns[k]].empty() ? empty : filled).push_back(labels.columns[k]);
        if (filled.empty()) return;
        if (!empty.empty()) {
            fail(path, fmt::format("row {}: box task '{}' has {} filled but {} empty; expected all four columns "
                                   "filled, or all four empty for a missing box",
                                   row_number, labels.task, quoted_list(filled, 4), quoted_list(empty, 4)));
        }
    } else if (record.fields[columns[0]].empty()) {
        return;
    }
    for (size_t k = 0; k < columns.size(); ++k) {
        const std::string& cell = record.fields[columns[k]];
        labels.values[row * columns.size() + k] = labels.kind == Kind::binary
                                                      ? binary_cell(path, row_number, labels.columns[k], cell)
                                                      : number_cell(path, row_number, labels.columns[k], cell);
    }
    labels.present[row] = 1;
}

}  // namespace

// ---------------------------------------------------------------- the table

const TaskLabels& LabelTable::task(std::string_view name) const {
    for (const auto& labels : tasks) {
        if (labels.task == name) return labels;
    }
    std::vector<std::string> names;
    for (const auto& labels : tasks) names.push_back(labels.task);
    fail(path, fmt::format("no task '{}'; the table has tasks {}", name, quoted_list(names, 40)));
}

TaskLabels& LabelTable::task(std::string_view name) {
    return const_cast<TaskLabels&>(static_cast<const LabelTable&>(*this).task(name));
}

LabelTable read_label_table(const LabelTableSpec& spec) {
    check_spec(spec);
    const std::vector<CsvRecord> records = parse_csv(spec.path, read_file(spec.path));
    if (records.empty()) {
        fail(spec.path, "empty; expected a header row naming the columns, then one row per image");
    }
    const Header header(spec.path, records.front());
    const std::span<const CsvRecord> body(records.begin() + 1, records.end());
    if (body.empty()) fail(spec.path, "no rows below the header; expected one row per image");

    const size_t file_column = header.column(spec.file_column, "the image file");
    const bool has_split = !spec.split_column.empty();
    const size_t split_column = has_split ? header.column(spec.split_column, "the split") : 0;
    std::vector<std::vector<size_t>> task_columns;
    for (const auto& task : spec.tasks) {
        auto& columns = task_columns.emplace_back();
        for (const auto& name : task.columns) {
            columns.push_back(header.column(name, fmt::format("task '{}'", task.task)));
        }
    }

    // Every row's shape and file is checked, whatever the split; labels are
    // read for the rows the split keeps (at least one: no row is an error).
    LabelTable table;
    table.path = spec.path;
    std::vector<const CsvRecord*> kept;
    std::unordered_map<std::string, int64_t> row_of_file;
    for (const auto& record : body) {
        if (record.fields.size() != header.size()) {
            fail(spec.path, fmt::format("row {} has {} fields, expected {} as in the header (row {}); a comma inside "
                                        "a value must be quoted",
                                        record.row_number, record.fields.size(), header.size(), header.row_number()));
        }
        std::string file =
            checked_file_name(spec.path, record.row_number, spec.file_column, record.fields[file_column]);
        const auto [previous, inserted] = row_of_file.emplace(file, record.row_number);
        if (!inserted) {
            fail(spec.path, fmt::format("rows {} and {} both name the image '{}'; expected one row per image",
                                        previous->second, record.row_number, file));
        }
        if (has_split && record.fields[split_column] != spec.split_value) continue;
        kept.push_back(&record);
        table.files.push_back(std::move(file));
        table.row_numbers.push_back(record.row_number);
    }

    if (kept.empty()) {
        std::vector<std::string> values;
        for (const auto& record : body) values.push_back(record.fields[split_column]);
        std::sort(values.begin(), values.end());
        values.erase(std::unique(values.begin(), values.end()), values.end());
        fail(spec.path, fmt::format("no row has '{}' in column '{}'; expected one of the values it holds: {}",
                                    spec.split_value, spec.split_column, quoted_list(values, 10)));
    }
    for (size_t t = 0; t < spec.tasks.size(); ++t) {
        TaskLabels labels = empty_task(spec.tasks[t], kept.size());
        for (size_t row = 0; row < kept.size(); ++row) {
            read_cells(spec.path, *kept[row], row, task_columns[t], labels);
        }
        table.tasks.push_back(std::move(labels));
        if (spec.tasks[t].kind == Kind::classes) {
            const auto& order = spec.tasks[t].class_order;
            apply_class_names(table, spec.tasks[t].task,
                              order.empty() ? sorted_class_names(table.tasks.back().class_cells) : order);
        }
    }
    return table;
}

void apply_class_names(LabelTable& table, std::string_view task, const std::vector<std::string>& class_names) {
    TaskLabels& labels = table.task(task);
    if (labels.kind != Kind::classes) {
        fail(table.path, fmt::format("task '{}' is {}, not classes; expected a classes task to give class names", task,
                                     kind_name(labels.kind)));
    }
    std::unordered_map<std::string_view, int32_t> index_of;
    for (size_t c = 0; c < class_names.size(); ++c) {
        if (class_names[c].empty()) fail(table.path, fmt::format("task '{}': class {} has an empty name", task, c));
        if (!index_of.emplace(class_names[c], static_cast<int32_t>(c)).second) {
            fail(table.path, fmt::format("task '{}': the class list names '{}' twice; expected distinct classes", task,
                                         class_names[c]));
        }
    }
    std::vector<int32_t> indices(labels.class_cells.size(), -1);
    for (size_t row = 0; row < indices.size(); ++row) {
        if (labels.present[row] == 0) continue;
        const auto found = index_of.find(labels.class_cells[row]);
        if (found == index_of.end()) {
            fail(table.path, fmt::format("{}: unknown class '{}' for image '{}'; expected one of the {} classes of "
                                         "task '{}' ({})",
                                         where(table.row_numbers[row], labels.columns[0]), labels.class_cells[row],
                                         table.files[row], class_names.size(), task, quoted_list(class_names, 5)));
        }
        indices[row] = found->second;
    }
    labels.class_indices = std::move(indices);
    labels.class_names = class_names;
}

void apply_class_names(LabelTable& table, const LabelTable& reference) {
    for (const auto& labels : reference.tasks) {
        if (labels.kind == Kind::classes) apply_class_names(table, labels.task, labels.class_names);
    }
}

LabelTable select_rows(const LabelTable& table, std::span<const size_t> rows) {
    const auto pick = [&](const auto& all, size_t per_row) {
        std::remove_cvref_t<decltype(all)> chosen;
        if (all.empty()) return chosen;
        chosen.reserve(rows.size() * per_row);
        for (const size_t row : rows) {
            const auto first = all.begin() + static_cast<std::ptrdiff_t>(row * per_row);
            chosen.insert(chosen.end(), first, first + static_cast<std::ptrdiff_t>(per_row));
        }
        return chosen;
    };
    for (const size_t row : rows) {
        if (row >= table.num_rows()) {
            fail(table.path,
                 fmt::format("row index {} selected, expected < {} (the table's rows)", row, table.num_rows()));
        }
    }
    LabelTable chosen;
    chosen.path = table.path;
    chosen.files = pick(table.files, 1);
    chosen.row_numbers = pick(table.row_numbers, 1);
    for (const auto& labels : table.tasks) {
        TaskLabels subset;
        subset.task = labels.task;
        subset.kind = labels.kind;
        subset.columns = labels.columns;
        subset.present = pick(labels.present, 1);
        subset.values = pick(labels.values, static_cast<size_t>(labels.values_per_row));
        subset.values_per_row = labels.values_per_row;
        subset.class_names = labels.class_names;
        subset.class_indices = pick(labels.class_indices, 1);
        subset.class_cells = pick(labels.class_cells, 1);
        chosen.tasks.push_back(std::move(subset));
    }
    return chosen;
}

uint64_t file_name_hash(std::string_view file, uint64_t seed) {
    uint64_t hash = mix64(seed);
    for (size_t offset = 0; offset < file.size(); offset += 8) {
        uint64_t chunk = 0;
        const size_t length = std::min<size_t>(8, file.size() - offset);
        for (size_t k = 0; k < length; ++k) {
            chunk |= uint64_t{static_cast<unsigned char>(file[offset + k])} << (8 * k);
        }
        hash = mix64(hash ^ chunk);
    }
    return mix64(hash ^ static_cast<uint64_t>(file.size()));
}

LabelTableSplit split_rows(const LabelTable& table, double fraction, uint64_t seed) {
    if (!(fraction >= 0.0 && fraction <= 1.0)) {
        fail(table.path, fmt::format("split fraction {}; expected a number in [0, 1]", fraction));
    }
    std::vector<size_t> selected, rest;
    for (size_t row = 0; row < table.num_rows(); ++row) {
        const double uniform = static_cast<double>(file_name_hash(table.files[row], seed) >> 11) * 0x1p-53;
        (uniform < fraction ? selected : rest).push_back(row);
    }
    return {select_rows(table, selected), select_rows(table, rest)};
}

}  // namespace ladon::data
