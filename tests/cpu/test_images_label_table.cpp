// Label tables (engine/data/label_table.hpp): CSV files written here, at test
// time, read back. Every kind of label, the CSV forms spreadsheets write
// (quoting, CRLF, a byte-order mark, UTF-8 names), both ways to split, and
// every kind of bad input, which must give one one-line ladon::Error naming
// the CSV file, the row and the column.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/data/label_table.hpp"
#include "ladon/error.hpp"
#include "test_data_files.hpp"

namespace ladon::data {
namespace {

using Kind = LabelColumnSpec::Kind;
using ::ladon::test::TempDir;

class LabelTableTest : public ::testing::Test {
protected:
    // Writes `text` byte for byte (no newline translation) and returns its path.
    std::string write_csv(const std::string& text, const std::string& name = "labels.csv") {
        const std::string path = dir_.file(name);
        std::ofstream out(path, std::ios::binary);
        out << text;
        EXPECT_TRUE(out.good()) << "cannot write " << path;
        return path;
    }

    LabelTableSpec spec_for(const std::string& text, std::vector<LabelColumnSpec> tasks) {
        LabelTableSpec spec;
        spec.path = write_csv(text);
        spec.file_column = "file";
        spec.tasks = std::move(tasks);
        return spec;
    }

    // The one error reading `spec` gives: one line, naming the CSV file and
    // containing every fragment.
    static void expect_error(const LabelTableSpec& spec, std::initializer_list<std::string> fragments) {
        try {
            read_label_table(spec);
            ADD_FAILURE() << "no error for " << spec.path;
        } catch (const Error& error) {
            const std::string message = error.what();
            EXPECT_EQ(message.find('\n'), std::string::npos) << message;
            EXPECT_NE(message.find("CSV file " + spec.path + ": "), std::string::npos) << message;
            for (const auto& fragment : fragments) EXPECT_NE(message.find(fragment), std::string::npos) << message;
        }
    }

    TempDir dir_;
};

LabelColumnSpec classes(const std::string& column, std::vector<std::string> order = {}) {
    return {column, Kind::classes, {column}, std::move(order)};
}
LabelColumnSpec binary(const std::string& column) { return {column, Kind::binary, {column}, {}}; }
LabelColumnSpec regression(const std::string& column) { return {column, Kind::regression, {column}, {}}; }
LabelColumnSpec box() { return {"box", Kind::box, {"x0", "y0", "x1", "y1"}, {}}; }

// ---------------------------------------------------------------- labels

TEST_F(LabelTableTest, StringClassesAreSortedAndEmptyCellsAreMissing) {
    const auto table = read_label_table(
        spec_for("file,colour\na.jpg,red\nb.jpg,\nc.jpg,blue\nd.jpg,green\ne.jpg,red\n", {classes("colour")}));
    ASSERT_EQ(table.num_rows(), 5u);
    EXPECT_EQ(table.files, (std::vector<std::string>{"a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"}));
    EXPECT_EQ(table.row_numbers, (std::vector<int64_t>{2, 3, 4, 5, 6}));
    const auto& colour = table.task("colour");
    EXPECT_EQ(colour.class_names, (std::vector<std::string>{"blue", "green", "red"}));
    EXPECT_EQ(colour.class_indices, (std::vector<int32_t>{2, -1, 0, 1, 2}));
    EXPECT_EQ(colour.present, (std::vector<uint8_t>{1, 0, 1, 1, 1}));
}

TEST_F(LabelTableTest, IntegerClassesSortNumerically) {
    const auto table =
        read_label_table(spec_for("file,size\na.jpg,10\nb.jpg,9\nc.jpg,2\nd.jpg,10\n", {classes("size")}));
    EXPECT_EQ(table.task("size").class_names, (std::vector<std::string>{"2", "9", "10"}));
    EXPECT_EQ(table.task("size").class_indices, (std::vector<int32_t>{2, 1, 0, 2}));
}

TEST_F(LabelTableTest, GivenClassOrderIsKeptAndUnusedClassesStay) {
    const auto table = read_label_table(
        spec_for("file,colour\na.jpg,red\nb.jpg,blue\n", {classes("colour", {"red", "green", "blue"})}));
    EXPECT_EQ(table.task("colour").class_names, (std::vector<std::string>{"red", "green", "blue"}));
    EXPECT_EQ(table.task("colour").class_indices, (std::vector<int32_t>{0, 2}));
}

TEST_F(LabelTableTest, BinaryAcceptsOneZeroTrueFalseYesNoInAnyCase) {
    const auto table = read_label_table(spec_for(
        "file,sale\na.jpg,YES\nb.jpg,no\nc.jpg,True\nd.jpg,FALSE\ne.jpg,1\nf.jpg,0\ng.jpg,\n", {binary("sale")}));
    const auto& sale = table.task("sale");
    EXPECT_EQ(sale.values, (std::vector<float>{1, 0, 1, 0, 1, 0, 0}));
    EXPECT_EQ(sale.present, (std::vector<uint8_t>{1, 1, 1, 1, 1, 1, 0}));
}

TEST_F(LabelTableTest, RegressionAndBoxReadNumbersAndAnEmptyBoxIsMissing) {
    const auto table =
        read_label_table(spec_for("file,price,x0,y0,x1,y1\n"
                                  "a.jpg,12.5,1,2,30.5,40\n"
                                  "b.jpg,-3e2,,,,\n"
                                  "c.jpg,,0,0,+8,9\n",
                                  {regression("price"), box()}));
    const auto& price = table.task("price");
    EXPECT_EQ(price.values, (std::vector<float>{12.5f, -300.0f, 0.0f}));
    EXPECT_EQ(price.present, (std::vector<uint8_t>{1, 1, 0}));
    const auto& boxes = table.task("box");
    EXPECT_EQ(boxes.values_per_row, 4);
    EXPECT_EQ(boxes.values, (std::vector<float>{1, 2, 30.5f, 40, 0, 0, 0, 0, 0, 0, 8, 9}));
    EXPECT_EQ(boxes.present, (std::vector<uint8_t>{1, 0, 1}));
}

// ---------------------------------------------------------------- CSV forms

TEST_F(LabelTableTest, QuotedFieldsKeepCommasQuotesAndLineBreaksAndRowNumbersStaySpreadsheetRows) {
    const std::string text =
        "file,colour,note,price\n"
        "\"shoes, red/a.jpg\",\"dark, red\",\"two\nlines\",1\n"  // row 2 spans two lines
        "b.jpg,\"say \"\"hi\"\"\",,2\n"                          // row 3
        "c.jpg,blue,,twelve\n";                                  // row 4: bad price
    auto spec = spec_for(text, {classes("colour"), classes("note"), regression("price")});
    expect_error(spec, {"row 4, column 'price'", "'twelve' is not a number"});

    spec = spec_for(text.substr(0, text.rfind("c.jpg")), {classes("colour"), classes("note"), regression("price")});
    const auto table = read_label_table(spec);
    EXPECT_EQ(table.files, (std::vector<std::string>{"shoes, red/a.jpg", "b.jpg"}));
    EXPECT_EQ(table.row_numbers, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(table.task("colour").class_names, (std::vector<std::string>{"dark, red", "say \"hi\""}));
    EXPECT_EQ(table.task("note").class_names, (std::vector<std::string>{"two\nlines"}));
    EXPECT_EQ(table.task("note").present, (std::vector<uint8_t>{1, 0}));
}

TEST_F(LabelTableTest, ByteOrderMarkCrlfAndBlankLinesAreReadAndCounted) {
    // A BOM before the header; CRLF line ends; a blank line (row 3) and an
    // all-empty row (row 5, as spreadsheets export it) are skipped but counted.
    const std::string text =
        "\xEF\xBB\xBF"
        "file,colour\r\na.jpg,red\r\n\r\nb.jpg,blue\r\n,\r\nc.jpg,red";
    const auto table = read_label_table(spec_for(text, {classes("colour")}));
    EXPECT_EQ(table.files, (std::vector<std::string>{"a.jpg", "b.jpg", "c.jpg"}));
    EXPECT_EQ(table.row_numbers, (std::vector<int64_t>{2, 4, 6}));
    EXPECT_EQ(table.task("colour").class_names, (std::vector<std::string>{"blue", "red"}));
}

TEST_F(LabelTableTest, Utf8FileNamesAreKeptAndPathsAreNormalised) {
    const auto table = read_label_table(
        spec_for("file,colour\nmädchen-kleid.jpg,rot\n./kleider/../schuhe/grün.png,grün\n", {classes("colour")}));
    EXPECT_EQ(table.files, (std::vector<std::string>{"mädchen-kleid.jpg", "schuhe/grün.png"}));
    EXPECT_EQ(table.task("colour").class_names, (std::vector<std::string>{"grün", "rot"}));
}

// ---------------------------------------------------------------- splits

TEST_F(LabelTableTest, SplitColumnKeepsMatchingRowsAndTheTestTableTakesTheTrainClasses) {
    const std::string text =
        "file,split,colour\na.jpg,train,red\nb.jpg,test,blue\nc.jpg,train,green\nd.jpg,test,red\ne.jpg,train,blue\n";
    auto spec = spec_for(text, {classes("colour")});
    spec.split_column = "split";
    spec.split_value = "train";
    const auto train = read_label_table(spec);
    spec.split_value = "test";
    auto test = read_label_table(spec);

    EXPECT_EQ(train.files, (std::vector<std::string>{"a.jpg", "c.jpg", "e.jpg"}));
    EXPECT_EQ(train.row_numbers, (std::vector<int64_t>{2, 4, 6}));
    EXPECT_EQ(test.row_numbers, (std::vector<int64_t>{3, 5}));
    EXPECT_EQ(test.task("colour").class_names, (std::vector<std::string>{"blue", "red"}));  // its own, first
    apply_class_names(test, train);
    EXPECT_EQ(test.task("colour").class_names, (std::vector<std::string>{"blue", "green", "red"}));
    EXPECT_EQ(test.task("colour").class_indices, (std::vector<int32_t>{0, 2}));
}

TEST_F(LabelTableTest, UnknownClassInTheTestTableNamesRowColumnValueAndKnownClasses) {
    auto spec =
        spec_for("file,split,colour\na.jpg,train,red\nb.jpg,test,teal\nc.jpg,train,blue\n", {classes("colour")});
    spec.split_column = "split";
    spec.split_value = "train";
    const auto train = read_label_table(spec);
    spec.split_value = "test";
    auto test = read_label_table(spec);
    try {
        apply_class_names(test, train);
        FAIL() << "no error for the unknown class";
    } catch (const Error& error) {
        const std::string message = error.what();
        const std::vector<std::string> fragments = {"CSV file " + spec.path + ": ", "row 3, column 'colour'",
                                                    "unknown class 'teal'", "'blue', 'red'"};
        for (const auto& fragment : fragments) {
            EXPECT_NE(message.find(fragment), std::string::npos) << message;
        }
    }
}

std::string many_rows_csv(int rows, bool reversed) {
    std::vector<std::string> lines;
    for (int i = 0; i < rows; ++i) lines.push_back("photo-" + std::to_string(i) + ".jpg," + std::to_string(i % 3));
    if (reversed) std::reverse(lines.begin(), lines.end());
    std::string text = "file,size\n";
    for (const auto& line : lines) text += line + "\n";
    return text;
}

std::vector<std::string> sorted(std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    return names;
}

TEST_F(LabelTableTest, SeededSplitIsDeterministicIndependentOfRowOrderAndRespectsTheFraction) {
    const auto table = read_label_table(spec_for(many_rows_csv(2000, false), {classes("size")}));
    const auto first = split_rows(table, 0.2, 7);
    const auto again = split_rows(table, 0.2, 7);
    EXPECT_EQ(first.selected.files, again.selected.files);
    EXPECT_EQ(first.selected.num_rows() + first.rest.num_rows(), 2000u);
    EXPECT_NEAR(static_cast<double>(first.selected.num_rows()), 400.0, 60.0);  // binomial sd ≈ 18

    LabelTableSpec reversed_spec = spec_for(many_rows_csv(2000, true), {classes("size")});
    const auto reversed = split_rows(read_label_table(reversed_spec), 0.2, 7);
    EXPECT_EQ(sorted(reversed.selected.files), sorted(first.selected.files));

    EXPECT_NE(split_rows(table, 0.2, 8).selected.files, first.selected.files);
    EXPECT_EQ(split_rows(table, 0.0, 7).selected.num_rows(), 0u);
    EXPECT_EQ(split_rows(table, 1.0, 7).rest.num_rows(), 0u);

    // The halves keep every row's labels and row number.
    const auto& selected = first.selected;
    for (size_t row = 0; row < selected.num_rows(); ++row) {
        const int64_t source = selected.row_numbers[row] - 2;  // header is row 1, photo-0 is row 2
        EXPECT_EQ(selected.files[row], "photo-" + std::to_string(source) + ".jpg");
        EXPECT_EQ(selected.task("size").class_indices[row], source % 3);
    }
    EXPECT_THROW(split_rows(table, 1.5, 7), Error);
}

TEST(LabelTableHash, FileNameHashIsTheDocumentedSplitmix64) {
    const auto splitmix64 = [](uint64_t z) {
        z += 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    // "abcdefghij": chunk 1 is bytes a..h little-endian, chunk 2 is "ij" zero-padded.
    uint64_t expected = splitmix64(42);
    expected = splitmix64(expected ^ 0x6867666564636261ull);
    expected = splitmix64(expected ^ 0x6a69ull);
    expected = splitmix64(expected ^ 10);
    EXPECT_EQ(file_name_hash("abcdefghij", 42), expected);
    EXPECT_EQ(file_name_hash("", 3), splitmix64(splitmix64(3)));
}

// ---------------------------------------------------------------- bad input

TEST_F(LabelTableTest, MissingFileIsAnError) {
    LabelTableSpec spec;
    spec.path = dir_.file("absent.csv");
    spec.file_column = "file";
    expect_error(spec, {"cannot open"});
}

TEST_F(LabelTableTest, EmptyFileAndHeaderWithoutRowsAreErrors) {
    expect_error(spec_for("", {}), {"empty; expected a header row"});
    expect_error(spec_for("\xEF\xBB\xBF\r\n", {}), {"empty; expected a header row"});
    expect_error(spec_for("file,colour\n", {classes("colour")}), {"no rows below the header"});
}

TEST_F(LabelTableTest, MissingColumnListsTheHeader) {
    expect_error(spec_for("file,color,size\na.jpg,red,2\n", {classes("colour")}),
                 {"no column 'colour' (task 'colour')", "'file', 'color', 'size'"});
}

TEST_F(LabelTableTest, RaggedRowIsAnError) {
    expect_error(spec_for("file,colour\na.jpg,red\nb.jpg,dark,red\n", {classes("colour")}),
                 {"row 3 has 3 fields, expected 2"});
}

TEST_F(LabelTableTest, DuplicateFileNamesBothRows) {
    expect_error(spec_for("file,colour\na.jpg,red\nb.jpg,red\na.jpg,blue\n", {classes("colour")}),
                 {"rows 2 and 4 both name the image 'a.jpg'"});
    expect_error(spec_for("file,colour\nx/a.jpg,red\nx/../x/a.jpg,blue\n", {classes("colour")}),
                 {"rows 2 and 3 both name the image 'x/a.jpg'"});
}

TEST_F(LabelTableTest, NonNumericRegressionAndBoxCellsAreErrors) {
    expect_error(spec_for("file,price\na.jpg,1\nb.jpg,12,5\n", {regression("price")}), {"row 3 has 3 fields"});
    expect_error(spec_for("file,price\na.jpg,1\nb.jpg,\"12,5\"\n", {regression("price")}),
                 {"row 3, column 'price'", "'12,5' is not a number"});
    expect_error(spec_for("file,price\na.jpg,inf\n", {regression("price")}), {"row 2, column 'price'"});
    expect_error(spec_for("file,x0,y0,x1,y1\na.jpg,1,2,3,4\nb.jpg,1,two,3,4\n", {box()}),
                 {"row 3, column 'y0'", "'two' is not a number"});
    expect_error(spec_for("file,x0,y0,x1,y1\na.jpg,1,2,,\n", {box()}),
                 {"row 2: box task 'box' has 'x0', 'y0' filled but 'x1', 'y1' empty"});
}

TEST_F(LabelTableTest, BadBinaryCellIsAnError) {
    expect_error(spec_for("file,sale\na.jpg,yes\nb.jpg,maybe\n", {binary("sale")}),
                 {"row 3, column 'sale'", "'maybe' is not a binary label", "yes/no"});
}

TEST_F(LabelTableTest, InvalidUtf8InAFileNameNamesTheRow) {
    // "m\xE4dchen" is Latin-1, as an old spreadsheet would save it.
    expect_error(spec_for("file,colour\na.jpg,red\nm\xE4"
                          "dchen.jpg,red\n",
                          {classes("colour")}),
                 {"row 3, column 'file'", "invalid UTF-8 (byte 0xE4 at offset 1)"});
    expect_error(spec_for("file,colour\na.jpg,r\xC3\n", {classes("colour")}), {"row 2, column 'colour'"});
}

TEST_F(LabelTableTest, PathsLeavingTheImageRootAreRefused) {
    expect_error(spec_for("file,colour\n/etc/passwd,red\n", {classes("colour")}),
                 {"row 2, column 'file'", "'/etc/passwd' is an absolute path"});
    expect_error(spec_for("file,colour\na.jpg,red\n../secret.jpg,red\n", {classes("colour")}),
                 {"row 3, column 'file'", "leaves the image root"});
    expect_error(spec_for("file,colour\nshoes/../../x.jpg,red\n", {classes("colour")}),
                 {"row 2, column 'file'", "leaves the image root"});
    expect_error(spec_for("file,colour\n,red\n", {classes("colour")}), {"row 2, column 'file': empty"});
}

TEST_F(LabelTableTest, MalformedQuotingNamesTheRow) {
    expect_error(spec_for("file,colour\na.jpg,red\nb.jpg,\"blue\n", {classes("colour")}), {"row 3: malformed quoting"});
    expect_error(spec_for("file,colour\na.jpg,red\nb.jpg,dark\"blue\n", {classes("colour")}),
                 {"row 3: malformed quoting"});
}

TEST_F(LabelTableTest, ClassOutsideTheGivenOrderIsAnError) {
    expect_error(spec_for("file,colour\na.jpg,red\nb.jpg,teal\n", {classes("colour", {"red", "blue"})}),
                 {"row 3, column 'colour'", "unknown class 'teal' for image 'b.jpg'", "'red', 'blue'"});
}

TEST_F(LabelTableTest, SplitValueNoRowHasIsAnErrorListingTheValues) {
    auto spec = spec_for("file,split,colour\na.jpg,train,red\nb.jpg,test,blue\n", {classes("colour")});
    spec.split_column = "split";
    spec.split_value = "Train";
    expect_error(spec, {"no row has 'Train' in column 'split'", "'test', 'train'"});
}

TEST_F(LabelTableTest, SpecNamingTheWrongNumberOfBoxColumnsIsAnError) {
    LabelColumnSpec three = box();
    three.columns.pop_back();
    expect_error(spec_for("file,x0,y0,x1\na.jpg,1,2,3\n", {three}), {"task 'box' (box) names 3 columns, expected 4"});
}

}  // namespace
}  // namespace ladon::data
