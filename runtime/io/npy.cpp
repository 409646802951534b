// .npy reader and writer; format spec: numpy.lib.format (NEP 1).
//
// Layout: magic "\x93NUMPY", major and minor version bytes, the header length (little-endian
// uint16 for 1.0, uint32 for 2.0 and 3.0), then the header: a Python dict literal with keys
// 'descr', 'fortran_order' and 'shape', padded with spaces and ended by '\n'. The raw data follows.
#include "diag/Text.h"
#include "io/npy.h"
#include "io/AtomicFile.h"

#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string_view>

namespace cellc::npy {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kAlign = 64;                  // numpy aligns the data to 64 bytes since 1.14
constexpr uint64_t kMaxHeaderLen = 1u << 20;   // numpy itself refuses headers over 10000 bytes
constexpr size_t kChunkElems = 1u << 13;       // elements per buffered read or write (64 KiB)
constexpr int kMaxDepth = 32;                  // so hostile headers cannot exhaust the stack

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw Error("npy: " + path + ": " + why);
}

std::string errno_text() { return std::strerror(errno); }

// Quotes header text for messages: printable ASCII kept, the rest escaped, long text cut.
std::string excerpt(std::string_view text, size_t limit = 120) { return printableExcerpt(text, limit); }

std::string format_shape(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";  // Python spells a 1-tuple "(5,)"
  return s + ")";
}

// Product of the dims, or -1 if it does not fit in int64 or a dim is negative.
int64_t checked_size(const std::vector<int64_t>& shape) {
  for (int64_t d : shape)
    if (d < 0) return -1;
  for (int64_t d : shape)
    if (d == 0) return 0;  // checked before multiplying so (huge, huge, 0) is a valid empty array
  int64_t n = 1;
  for (int64_t d : shape) {
    if (n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

// Byte-wise little-endian access: correct on any host and free of alignment issues.
template <class U>
U load_le(const unsigned char* p) {
  U v = 0;
  for (size_t i = 0; i < sizeof(U); ++i) v = static_cast<U>(v | static_cast<U>(p[i]) << (8 * i));
  return v;
}

template <class U>
void store_le(unsigned char* p, U v) {
  for (size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// ---- header parsing --------------------------------------------------------------------------

// A Python literal as far as .npy headers need: str, int, bool, None, tuple, list.
struct Value {
  enum Kind { kStr, kInt, kBool, kNone, kTuple, kList } kind = kNone;
  std::string str;
  int64_t num = 0;
  bool flag = false;
  std::vector<Value> items;
  std::string_view text;  // source span, quoted in messages
};

struct Entry {
  std::string key;
  Value value;
};

// Recursive-descent parser for the header dict, in the spirit of ast.literal_eval. Every read is
// bounds-checked against the header text.
class Parser {
 public:
  Parser(const std::string& path, std::string_view text) : path_(path), text_(text) {}

  std::vector<Entry> dict() {
    skip_space();
    expect('{');
    std::vector<Entry> entries;
    while (true) {
      skip_space();
      if (peek() == '}') break;
      size_t key_start = pos_;
      Value key = value(0);
      if (key.kind != Value::kStr) error("dict key must be a string", key_start);
      skip_space();
      expect(':');
      entries.push_back({key.str, value(0)});
      skip_space();
      if (peek() == ',') {
        ++pos_;  // a trailing comma before '}' is fine, as in Python
      } else if (peek() != '}') {
        error("expected ',' or '}'", pos_);
      }
    }
    ++pos_;
    skip_space();
    if (pos_ != text_.size()) error("unexpected text after the closing '}'", pos_);
    return entries;
  }

 private:
  [[noreturn]] void error(const std::string& what, size_t at) {
    fail(path_, "malformed header: " + what + " at offset " + std::to_string(at) + " in \"" +
                    excerpt(text_) + "\"");
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= text_.size(); }

  void skip_space() {
    while (!at_end() && std::strchr(" \t\n\r\f\v", text_[pos_]) != nullptr && text_[pos_] != '\0')
      ++pos_;
  }

  void expect(char c) {
    if (at_end() || text_[pos_] != c) error(std::string("expected '") + c + "'", pos_);
    ++pos_;
  }

  static bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }

  Value value(int depth) {
    if (depth > kMaxDepth) error("nesting too deep", pos_);
    skip_space();
    size_t start = pos_;
    Value v;
    char c = peek();
    if (c == '\'' || c == '"' ||
        ((c == 'u' || c == 'b') && pos_ + 1 < text_.size() &&
         (text_[pos_ + 1] == '\'' || text_[pos_ + 1] == '"'))) {
      v = string();
    } else if (c == '-' || c == '+' || (c >= '0' && c <= '9')) {
      v = integer();
    } else if (c == '(' || c == '[') {
      v = sequence(depth);
      if (v.kind == Value::kTuple && v.items.size() == 1 && v.num == 0) {
        // "(x)" without a comma is just x in parentheses, not a tuple.
        Value inner = std::move(v.items[0]);
        v = std::move(inner);
      }
    } else if (is_word_char(c)) {
      while (!at_end() && is_word_char(text_[pos_])) ++pos_;
      std::string_view word = text_.substr(start, pos_ - start);
      if (word == "True" || word == "False") {
        v.kind = Value::kBool;
        v.flag = word == "True";
      } else if (word == "None") {
        v.kind = Value::kNone;
      } else {
        error("unexpected name '" + excerpt(word, 40) + "'", start);
      }
    } else if (at_end()) {
      error("unexpected end of header", start);
    } else {
      error(std::string("unexpected character '") + excerpt(text_.substr(pos_, 1)) + "'", start);
    }
    v.text = text_.substr(start, pos_ - start);
    return v;
  }

  Value string() {
    if (peek() == 'u' || peek() == 'b') ++pos_;  // Python 2 and bytes prefixes
    size_t start = pos_;
    char quote = text_[pos_++];
    Value v;
    v.kind = Value::kStr;
    while (true) {
      if (at_end()) error("unterminated string", start);
      char c = text_[pos_++];
      if (c == quote) break;
      if (c == '\\') {
        if (at_end()) error("unterminated string", start);
        char e = text_[pos_++];
        v.str += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        v.str += c;
      }
    }
    return v;
  }

  Value integer() {
    size_t start = pos_;
    bool negative = false;
    if (peek() == '-' || peek() == '+') negative = text_[pos_++] == '-';
    if (!(peek() >= '0' && peek() <= '9')) error("expected a digit", pos_);
    uint64_t magnitude = 0;
    constexpr uint64_t kLimit = uint64_t{1} << 63;  // |INT64_MIN|
    while (peek() >= '0' && peek() <= '9') {
      uint64_t digit = static_cast<uint64_t>(text_[pos_++] - '0');
      if (magnitude > (kLimit - digit) / 10) error("integer too large", start);
      magnitude = magnitude * 10 + digit;
    }
    if (peek() == 'L' || peek() == 'l') ++pos_;  // Python 2 long suffix, seen in old files
    if (!negative && magnitude == kLimit) error("integer too large", start);
    if (peek() == '.' || peek() == 'e' || peek() == 'E' || is_word_char(peek()))
      error("expected an integer", start);
    Value v;
    v.kind = Value::kInt;
    v.num = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
    return v;
  }

  // Parses "(...)" or "[...]". For tuples, v.num records whether a comma was seen.
  Value sequence(int depth) {
    char open = text_[pos_++];
    char close = open == '(' ? ')' : ']';
    Value v;
    v.kind = open == '(' ? Value::kTuple : Value::kList;
    while (true) {
      skip_space();
      if (peek() == close) break;
      v.items.push_back(value(depth + 1));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        v.num = 1;
      } else if (peek() != close) {
        error(std::string("expected ',' or '") + close + "'", pos_);
      }
    }
    ++pos_;
    if (v.kind == Value::kTuple && v.items.empty()) v.num = 1;  // "()" is the empty tuple
    return v;
  }

  const std::string& path_;
  std::string_view text_;
  size_t pos_ = 0;
};

struct Header {
  std::string dtype;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

Header interpret(const std::string& path, std::string_view text) {
  std::vector<Entry> entries = Parser(path, text).dict();
  const Value* descr = nullptr;
  const Value* fortran = nullptr;
  const Value* shape = nullptr;
  for (const Entry& e : entries) {
    const Value** slot = e.key == "descr"           ? &descr
                         : e.key == "fortran_order" ? &fortran
                         : e.key == "shape"         ? &shape
                                                    : nullptr;
    if (slot == nullptr) fail(path, "malformed header: unexpected key '" + excerpt(e.key) + "'");
    if (*slot != nullptr) fail(path, "malformed header: duplicate key '" + e.key + "'");
    *slot = &e.value;
  }
  for (auto [v, name] : {std::pair{descr, "descr"}, {fortran, "fortran_order"}, {shape, "shape"}})
    if (v == nullptr) fail(path, std::string("malformed header: missing key '") + name + "'");

  Header h;
  if (descr->kind != Value::kStr || (descr->str != "<f4" && descr->str != "<f8")) {
    fail(path, "unsupported dtype " + excerpt(descr->text) +
                   "; expected float32 ('<f4') or float64 ('<f8')");
  }
  h.dtype = descr->str;

  if (fortran->kind != Value::kBool)
    fail(path, "malformed header: fortran_order must be True or False, got " +
                   excerpt(fortran->text));
  h.fortran_order = fortran->flag;

  if (shape->kind != Value::kTuple)
    fail(path, "malformed header: shape must be a tuple, got " + excerpt(shape->text));
  for (const Value& d : shape->items) {
    if (d.kind != Value::kInt)
      fail(path, "malformed header: shape must hold integers, got " + excerpt(shape->text));
    h.shape.push_back(d.num);
  }
  for (int64_t d : h.shape)
    if (d < 0) fail(path, "negative dimension in shape " + format_shape(h.shape));
  return h;
}

// ---- writing ---------------------------------------------------------------------------------

// The full header, prefix included, laid out as numpy 1.x writes it.
std::string make_header(const std::string& dtype, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '" + dtype + "', 'fortran_order': False, 'shape': " +
                     format_shape(shape) + ", }";
  // Version 1.0 unless the header outgrows its uint16 length (thousands of dims), as numpy does.
  bool v1 = 10 + dict.size() + 1 + kAlign <= 0xffff;
  size_t prefix = v1 ? 10 : 12;
  size_t pad = (kAlign - (prefix + dict.size() + 1) % kAlign) % kAlign;
  size_t len = dict.size() + pad + 1;
  std::string out(kMagic);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  unsigned char buf[4];
  if (v1) {
    store_le<uint16_t>(buf, static_cast<uint16_t>(len));
  } else {
    store_le<uint32_t>(buf, static_cast<uint32_t>(len));
  }
  out.append(reinterpret_cast<const char*>(buf), v1 ? 2 : 4);
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  return out;
}

template <class T>
void write_impl(const std::string& path, const std::vector<int64_t>& shape, const T* data,
                bool as_float32) {
  for (int64_t d : shape)
    if (d < 0) fail(path, "cannot write: negative dimension in shape " + format_shape(shape));
  int64_t n = checked_size(shape);
  if (n < 0) fail(path, "cannot write: shape " + format_shape(shape) + " is too large");
  if (n > 0 && data == nullptr) fail(path, "cannot write: data is null");

  const std::string header = make_header(as_float32 ? "<f4" : "<f8", shape);
  try {
    io::AtomicFile f(path);
    f.write(header);

    const size_t item = as_float32 ? 4 : 8;
    std::vector<unsigned char> buf(kChunkElems * 8);
    for (int64_t done = 0; done < n;) {
      size_t count = static_cast<size_t>(std::min<int64_t>(n - done, kChunkElems));
      unsigned char* p = buf.data();
      for (size_t i = 0; i < count; ++i, p += item) {
        T x = data[done + static_cast<int64_t>(i)];
        if (as_float32) {
          store_le(p, std::bit_cast<uint32_t>(static_cast<float>(x)));
        } else {
          store_le(p, std::bit_cast<uint64_t>(static_cast<double>(x)));
        }
      }
      f.write(buf.data(), count * item);
      done += static_cast<int64_t>(count);
    }
    f.commit();
  } catch (const io::WriteError& e) {
    fail(path, "cannot write: " + e.reason());
  }
}

}  // namespace

int64_t Array::size() const { return checked_size(shape); }

Array read(const std::string& path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found)
    fail(path, "file does not exist (tried " + resolvedPath(path) + ": " + ec.message() + ")");
  if (ec) fail(path, "cannot access file (" + resolvedPath(path) + "): " + ec.message());
  if (fs::is_directory(st)) fail(path, "is a directory, not an .npy file");
  if (!fs::is_regular_file(st)) fail(path, "not a regular file");
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot get file size: " + ec.message());

  File f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(path, "cannot open for reading: " + errno_text());

  // Reads exactly `bytes` or returns how many were read (short if the file shrank meanwhile).
  auto get = [&](void* p, size_t bytes) { return std::fread(p, 1, bytes, f.get()); };

  std::array<unsigned char, 12> prefix{};
  size_t got = get(prefix.data(), std::min<uint64_t>(file_size, 10));
  if (got < kMagic.size() || std::memcmp(prefix.data(), kMagic.data(), kMagic.size()) != 0)
    fail(path, "not an .npy file (it does not start with \"\\x93NUMPY\")");
  if (got < 10) fail(path, "truncated header: the file has only " + std::to_string(got) + " bytes");

  const int major = prefix[6];
  const int minor = prefix[7];
  if (major < 1 || major > 3 || minor != 0) {
    fail(path, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (expected 1.0, 2.0 or 3.0)");
  }
  uint64_t header_len = 0;
  size_t prefix_len = 10;
  if (major == 1) {
    header_len = load_le<uint16_t>(&prefix[8]);
  } else {
    prefix_len = 12;
    if (get(&prefix[10], 2) != 2)
      fail(path, "truncated header: the file ends inside the header length field");
    header_len = load_le<uint32_t>(&prefix[8]);
  }
  // Re-checked because the file may have changed since file_size was taken.
  if (file_size < prefix_len) fail(path, "truncated header: the file changed while reading it");
  const uint64_t after_prefix = file_size - prefix_len;
  if (header_len > after_prefix) {
    fail(path, "truncated header: expected " + std::to_string(header_len) +
                   " header bytes, found " + std::to_string(after_prefix));
  }
  if (header_len > kMaxHeaderLen)
    fail(path, "header too long (" + std::to_string(header_len) + " bytes)");

  std::string text(static_cast<size_t>(header_len), '\0');
  if (get(text.data(), text.size()) != text.size())
    fail(path, "truncated header: the file ended while reading it");
  Header h = interpret(path, text);

  const int64_t n = checked_size(h.shape);
  if (n < 0) fail(path, "shape " + format_shape(h.shape) + " is too large");
  if (h.fortran_order) {
    // With at most one dimension above 1, C and Fortran order agree, so only refuse real ones.
    int big = 0;
    for (int64_t d : h.shape) big += d > 1;
    if (big > 1 && n > 0)
      fail(path, "Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  }

  const uint64_t item = h.dtype == "<f4" ? 4 : 8;
  const uint64_t available = after_prefix - header_len;
  auto truncated = [&](uint64_t found) {
    fail(path, "truncated data: expected " + std::to_string(static_cast<uint64_t>(n) * item) +
                   " bytes for shape " + format_shape(h.shape) + " of '" + h.dtype + "', found " +
                   std::to_string(found));
  };
  // Compare by division: n * item itself can overflow for absurd shapes.
  if (static_cast<uint64_t>(n) > available / item) {
    if (static_cast<uint64_t>(n) > std::numeric_limits<uint64_t>::max() / item)
      fail(path, "shape " + format_shape(h.shape) + " is too large");
    truncated(available);
  }
  // Bytes beyond the data are ignored, as numpy does.

  Array a;
  a.shape = h.shape;
  a.dtype = h.dtype;
  a.data.resize(static_cast<size_t>(n));  // bounded by the file size checked above
  std::vector<unsigned char> buf(kChunkElems * 8);
  for (int64_t done = 0; done < n;) {
    size_t count = static_cast<size_t>(std::min<int64_t>(n - done, kChunkElems));
    size_t read_bytes = get(buf.data(), count * item);
    if (read_bytes != count * item) truncated(static_cast<uint64_t>(done) * item + read_bytes);
    const unsigned char* p = buf.data();
    double* out = a.data.data() + done;
    if (item == 4) {
      for (size_t i = 0; i < count; ++i, p += 4)
        out[i] = std::bit_cast<float>(load_le<uint32_t>(p));
    } else {
      for (size_t i = 0; i < count; ++i, p += 8)
        out[i] = std::bit_cast<double>(load_le<uint64_t>(p));
    }
    done += static_cast<int64_t>(count);
  }
  return a;
}

void write(const std::string& path, const std::vector<int64_t>& shape, const double* data,
           bool as_float32) {
  write_impl(path, shape, data, as_float32);
}

void write(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  write_impl(path, shape, data, true);
}

void write(const std::string& path, const Array& array) {
  for (int64_t d : array.shape)
    if (d < 0) fail(path, "cannot write: negative dimension in shape " + format_shape(array.shape));
  int64_t n = checked_size(array.shape);
  if (n < 0 || static_cast<uint64_t>(n) != array.data.size()) {
    fail(path, "cannot write: shape " + format_shape(array.shape) + " does not match " +
                   std::to_string(array.data.size()) + " data values");
  }
  write_impl(path, array.shape, array.data.data(), array.dtype == "<f4");
}

}  // namespace cellc::npy
