// Tests for the .npy reader and writer (runtime/io/npy.h).
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "io/npy.h"

namespace {

namespace npy = cellc::npy;
namespace fs = std::filesystem;
using Catch::Contains;

// A fresh directory per test case, so parallel test runs do not collide.
struct TempDir {
  fs::path dir;
  TempDir() {
    std::random_device rd;
    dir = fs::temp_directory_path() /
          ("cellc_npy_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string le_bytes(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string f8_bytes(const std::vector<double>& values) {
  std::string s;
  for (double v : values) s += le_bytes(std::bit_cast<uint64_t>(v), 8);
  return s;
}

// A hand-made .npy file: `dict` is the header text, padded like numpy unless `pad` is false.
std::string npy_file(const std::string& dict, const std::string& data, int major = 1,
                     bool pad = true) {
  size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  if (pad) {
    while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
  }
  std::string s = "\x93NUMPY";
  s += static_cast<char>(major);
  s += '\0';
  s += le_bytes(header.size(), major == 1 ? 2 : 4);
  return s + header + data;
}

std::vector<double> ramp(int64_t n) {
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(std::sin(static_cast<double>(i) + 0.5) * 1e3);
  return v;
}

const std::vector<std::vector<int64_t>> kShapes = {{}, {5}, {2, 3}, {2, 3, 4}};

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

TEST_CASE("npy: float64 round trip", "[npy]") {
  TempDir tmp;
  for (const auto& shape : kShapes) {
    CAPTURE(shape);
    std::string p = tmp.path("a.npy");
    std::vector<double> data = ramp(product(shape));
    npy::write(p, shape, data.data());
    REQUIRE_FALSE(fs::exists(p + ".tmp"));
    npy::Array a = npy::read(p);
    REQUIRE(a.shape == shape);
    REQUIRE(a.dtype == "<f8");
    REQUIRE(a.size() == product(shape));
    REQUIRE(a.data == data);
  }
}

TEST_CASE("npy: float32 round trip", "[npy]") {
  TempDir tmp;
  for (const auto& shape : kShapes) {
    CAPTURE(shape);
    std::string p = tmp.path("a.npy");
    std::vector<double> wide = ramp(product(shape));
    std::vector<float> narrow(wide.begin(), wide.end());
    std::vector<double> expected(narrow.begin(), narrow.end());

    npy::write(p, shape, narrow.data());
    npy::Array a = npy::read(p);
    REQUIRE(a.shape == shape);
    REQUIRE(a.dtype == "<f4");
    REQUIRE(a.data == expected);

    npy::write(p, shape, wide.data(), /*as_float32=*/true);
    npy::Array b = npy::read(p);
    REQUIRE(b.dtype == "<f4");
    REQUIRE(b.data == expected);
    REQUIRE(fs::file_size(p) == slurp(p).size());
  }
}

TEST_CASE("npy: special values and empty arrays survive", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("s.npy");
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> v = {std::numeric_limits<double>::quiet_NaN(), inf, -inf, -0.0,
                           std::numeric_limits<double>::denorm_min(),
                           std::numeric_limits<double>::max()};
  npy::write(p, {6}, v.data());
  npy::Array a = npy::read(p);
  REQUIRE(a.data.size() == v.size());
  for (size_t i = 0; i < v.size(); ++i)
    REQUIRE(std::bit_cast<uint64_t>(a.data[i]) == std::bit_cast<uint64_t>(v[i]));

  for (std::vector<int64_t> shape : {std::vector<int64_t>{0}, {2, 0, 3}}) {
    npy::write(p, shape, static_cast<const double*>(nullptr));
    npy::Array e = npy::read(p);
    REQUIRE(e.shape == shape);
    REQUIRE(e.size() == 0);
    REQUIRE(e.data.empty());
  }
}

TEST_CASE("npy: the Array overload keeps the dtype", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("a.npy");
  npy::Array a;
  a.shape = {2, 2};
  a.data = {1.0, 2.0, 0.1, 4.0};
  a.dtype = "<f4";
  npy::write(p, a);
  npy::Array b = npy::read(p);
  REQUIRE(b.dtype == "<f4");
  REQUIRE(b.data[2] == static_cast<double>(0.1f));
  a.dtype = "<f8";
  npy::write(p, a);
  REQUIRE(npy::read(p).data == a.data);

  npy::Array odd;
  REQUIRE(odd.size() == 1);
  odd.shape = {int64_t{1} << 40, int64_t{1} << 40};
  REQUIRE(odd.size() == -1);
  odd.shape = {3, -1};
  REQUIRE(odd.size() == -1);
}

TEST_CASE("npy: the header is version 1.0, numpy's layout, 64-byte aligned", "[npy]") {
  TempDir tmp;
  const std::vector<std::pair<std::vector<int64_t>, std::string>> cases = {
      {{}, "()"}, {{5}, "(5,)"}, {{2, 3}, "(2, 3)"}, {{2, 3, 4}, "(2, 3, 4)"},
      {{123456789, 0}, "(123456789, 0)"}};
  for (const auto& [shape, spelled] : cases) {
    for (bool f32 : {false, true}) {
      CAPTURE(spelled, f32);
      std::string p = tmp.path("h.npy");
      std::vector<double> data = ramp(product(shape));
      npy::write(p, shape, data.data(), f32);
      std::string s = slurp(p);
      REQUIRE(s.size() >= 10);
      REQUIRE(s.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
      size_t hl = static_cast<unsigned char>(s[8]) + 256u * static_cast<unsigned char>(s[9]);
      REQUIRE((10 + hl) % 64 == 0);
      REQUIRE(s[10 + hl - 1] == '\n');
      std::string dict = std::string("{'descr': '") + (f32 ? "<f4" : "<f8") +
                         "', 'fortran_order': False, 'shape': " + spelled + ", }";
      REQUIRE(s.substr(10, dict.size()) == dict);
      REQUIRE(s.find_first_not_of(' ', 10 + dict.size()) == 10 + hl - 1);
      REQUIRE(s.size() == 10 + hl + data.size() * (f32 ? 4 : 8));
    }
  }
}

TEST_CASE("npy: writing replaces the file and leaves no temporary", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("w.npy");
  std::vector<double> big = ramp(20000);  // more than one write chunk
  npy::write(p, {100, 200}, big.data());
  std::vector<double> small = {1, 2, 3};
  npy::write(p, {3}, small.data());
  npy::Array a = npy::read(p);
  REQUIRE(a.shape == std::vector<int64_t>{3});
  REQUIRE(a.data == small);
  REQUIRE_FALSE(fs::exists(p + ".tmp"));
  npy::write(p, {100, 200}, big.data());
  REQUIRE(npy::read(p).data == big);
}

TEST_CASE("npy: header parsing tolerates numpy-valid variations", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("v.npy");
  const std::string data = f8_bytes({1, 2, 3, 4, 5, 6});
  const std::vector<std::string> dicts = {
      "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f8'}",
      "{'fortran_order': False, 'descr': '<f8', 'shape': (2, 3,), }",
      "{ 'descr' : '<f8' ,\n\t'fortran_order' : False ,  'shape' : ( 2 ,3 , ) , }",
      "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2,3)}",
      "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }",  // Python 2 writers
      "{'descr': u'<f8', 'fortran_order': False, 'shape': (2, 3)}",
      "{'descr': '<f8', 'fortran_order': False, 'shape': ((2), +3)}",
  };
  for (const auto& dict : dicts) {
    CAPTURE(dict);
    for (bool pad : {true, false}) {
      spit(p, npy_file(dict, data, 1, pad));
      npy::Array a = npy::read(p);
      REQUIRE(a.shape == std::vector<int64_t>{2, 3});
      REQUIRE(a.data == std::vector<double>{1, 2, 3, 4, 5, 6});
    }
  }
  // Old numpy aligned to 16 bytes; any padding works.
  const std::string unpadded = "{'descr': '<f8', 'fortran_order': False, 'shape': (), }    \n";
  spit(p, npy_file(unpadded, data, 1, false));
  REQUIRE(npy::read(p).data == std::vector<double>{1});  // trailing bytes are ignored, as numpy
  spit(p, npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", data));
  REQUIRE(npy::read(p).data == std::vector<double>{1, 2, 3});
  // Fortran order is harmless when it cannot change the element order.
  spit(p, npy_file("{'descr': '<f8', 'fortran_order': True, 'shape': (1, 6, 1)}", data));
  REQUIRE(npy::read(p).data.size() == 6);
}

TEST_CASE("npy: reads hand-made version 2.0 and 3.0 headers", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("v2.npy");
  for (int major : {2, 3}) {
    CAPTURE(major);
    std::string f = npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
                             f8_bytes({1, 2, 3, 4, 5, 6}), major);
    REQUIRE(f.substr(6, 2) == std::string{static_cast<char>(major), '\0'});
    REQUIRE((f.size() - 48) % 64 == 0);  // the 12-byte prefix counts towards the alignment
    spit(p, f);
    npy::Array a = npy::read(p);
    REQUIRE(a.shape == std::vector<int64_t>{2, 3});
    REQUIRE(a.dtype == "<f8");
    REQUIRE(a.data == std::vector<double>{1, 2, 3, 4, 5, 6});
  }
}

TEST_CASE("npy: missing, empty and foreign files are Errors", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("nope.npy");
  REQUIRE_THROWS_WITH(npy::read(p), Contains("does not exist") && Contains(p));
  REQUIRE_THROWS_WITH(npy::read(tmp.dir.string()), Contains("directory"));
  spit(p, "");
  REQUIRE_THROWS_WITH(npy::read(p), Contains("not an .npy file") && Contains(p));
  spit(p, "1.0,2.0,3.0\n4.0,5.0,6.0\n");
  REQUIRE_THROWS_WITH(npy::read(p), Contains("not an .npy file") && Contains(p));
  spit(p, std::string("\x93NUMPX\x01\x00", 8) + le_bytes(54, 2) + std::string(54, ' '));
  REQUIRE_THROWS_WITH(npy::read(p), Contains("not an .npy file"));
}

TEST_CASE("npy: unsupported versions are Errors", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("v.npy");
  std::string f = npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': ()}", f8_bytes({1}));
  f[6] = 4;
  spit(p, f);
  REQUIRE_THROWS_WITH(npy::read(p), Contains("version 4.0") && Contains(p));
  f[6] = 1;
  f[7] = 5;
  spit(p, f);
  REQUIRE_THROWS_WITH(npy::read(p), Contains("version 1.5"));
}

TEST_CASE("npy: unsupported dtypes name the dtype found", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("d.npy");
  for (std::string descr : {"'<i8'", "'>f8'", "'<c16'", "'|O'", "'<f2'", "'|b1'", "'<U3'",
                            "[('a', '<f4'), ('b', '<f4')]", "None"}) {
    CAPTURE(descr);
    spit(p, npy_file("{'descr': " + descr + ", 'fortran_order': False, 'shape': (2,), }",
                     std::string(96, '\0')));
    REQUIRE_THROWS_WITH(npy::read(p), Contains("unsupported dtype " + descr) &&
                                          Contains("float32") && Contains("float64") &&
                                          Contains(p));
  }
}

TEST_CASE("npy: Fortran-ordered arrays are Errors", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("f.npy");
  spit(p, npy_file("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
                   f8_bytes({1, 2, 3, 4, 5, 6})));
  REQUIRE_THROWS_WITH(npy::read(p), Contains("Fortran-ordered arrays are not supported; save "
                                             "with np.ascontiguousarray") &&
                                        Contains(p));
}

TEST_CASE("npy: malformed headers are Errors", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("m.npy");
  const std::string ok_start = "{'descr': '<f8', 'fortran_order': False, ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "expected '{'"},
      {"{'descr': ", "unexpected end of header"},
      {"'descr': '<f8'", "expected '{'"},
      {"{'descr': '<f8', 'fortran_order': False}", "missing key 'shape'"},
      {"{'fortran_order': False, 'shape': ()}", "missing key 'descr'"},
      {"{'descr': '<f8', 'shape': ()}", "missing key 'fortran_order'"},
      {ok_start + "'shape': (), 'extra': 1}", "unexpected key 'extra'"},
      {ok_start + "'shape': (), 'shape': ()}", "duplicate key 'shape'"},
      {ok_start + "'shape': (2, 3)", "expected ',' or '}'"},
      {ok_start + "'shape': (2, 3}", "expected ',' or ')'"},
      {ok_start + "'shape': (2 3)}", "expected ',' or ')'"},
      {ok_start + "'shape' (2, 3)}", "expected ':'"},
      {ok_start + "3: (2, 3)}", "dict key must be a string"},
      {"{'descr': '<f8, 'fortran_order': False, 'shape': (2,)}", "expected ',' or '}'"},
      {ok_start + "'shape': (2,), 'x}", "unterminated string"},
      {"{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}", "fortran_order must be True or"},
      {"{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2,)}", "unexpected name 'Maybe'"},
      {ok_start + "'shape': 6}", "shape must be a tuple, got 6"},
      {ok_start + "'shape': (6)}", "shape must be a tuple, got (6)"},
      {ok_start + "'shape': [2, 3]}", "shape must be a tuple"},
      {ok_start + "'shape': None}", "shape must be a tuple"},
      {ok_start + "'shape': ('2',)}", "shape must hold integers"},
      {ok_start + "'shape': ((2,), 3)}", "shape must hold integers"},
      {ok_start + "'shape': (2.5,)}", "expected an integer"},
      {ok_start + "'shape': (2e3,)}", "expected an integer"},
      {ok_start + "'shape': (-,)}", "expected a digit"},
      {ok_start + "'shape': (99999999999999999999,)}", "integer too large"},
      {ok_start + "'shape': (2,)} junk", "unexpected text after the closing '}'"},
      {ok_start + "'shape': (2,)}}", "unexpected text after the closing '}'"},
      {ok_start + "'shape': (2,)" + std::string("\0\0}", 3), "expected ',' or '}'"},
      {ok_start + "'shape': " + std::string(5000, '(') + std::string(5000, ')') + "}",
       "nesting too deep"},
      {ok_start + "'shape': \xff}", "unexpected character '\\xff'"},
  };
  for (const auto& [dict, why] : cases) {
    CAPTURE(dict);
    for (bool pad : {true, false}) {
      spit(p, npy_file(dict, std::string(64, '\0'), 1, pad));
      REQUIRE_THROWS_WITH(npy::read(p),
                          Contains("malformed header") && Contains(why) && Contains(p));
    }
  }
}

TEST_CASE("npy: truncated files are Errors that say how much is missing", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("t.npy");
  const std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  spit(p, npy_file(dict, f8_bytes({1, 2, 3, 4, 5})));
  REQUIRE_THROWS_WITH(npy::read(p), Contains("truncated data") && Contains("expected 48 bytes") &&
                                        Contains("found 40") && Contains(p));
  spit(p, npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", "12345"));
  REQUIRE_THROWS_WITH(npy::read(p), Contains("expected 12 bytes") && Contains("found 5"));
  // The header length field promises more than the file holds.
  spit(p, std::string("\x93NUMPY\x01\x00", 8) + le_bytes(1000, 2) + dict);
  REQUIRE_THROWS_WITH(npy::read(p), Contains("truncated header") &&
                                        Contains("expected 1000 header bytes") && Contains(p));
  spit(p, std::string("\x93NUMPY\x02\x00\x10", 9));
  REQUIRE_THROWS_WITH(npy::read(p), Contains("truncated header"));
}

TEST_CASE("npy: negative and absurd shapes are Errors without huge allocations", "[npy]") {
  TempDir tmp;
  std::string p = tmp.path("s.npy");
  auto with_shape = [&](const std::string& shape) {
    spit(p, npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + "}",
                     f8_bytes({1, 2, 3, 4, 5, 6})));
  };
  with_shape("(2, -3)");
  REQUIRE_THROWS_WITH(npy::read(p), Contains("negative dimension in shape (2, -3)") &&
                                        Contains(p));
  with_shape("(1000000000000,)");  // 8 TB: refused by the file size check before allocating
  REQUIRE_THROWS_WITH(npy::read(p), Contains("expected 8000000000000 bytes") &&
                                        Contains("found 48") && Contains(p));
  with_shape("(4294967296, 4294967296)");  // the element count overflows int64
  REQUIRE_THROWS_WITH(npy::read(p), Contains("is too large") && Contains(p));
  with_shape("(9223372036854775807,)");  // the byte count overflows uint64
  REQUIRE_THROWS_WITH(npy::read(p), Contains("is too large"));
  with_shape("(-9223372036854775808,)");
  REQUIRE_THROWS_WITH(npy::read(p), Contains("negative dimension"));
  with_shape("(9223372036854775807, 9223372036854775807, 0)");  // empty, so fine
  REQUIRE(npy::read(p).size() == 0);
}

TEST_CASE("npy: write errors are Errors", "[npy]") {
  TempDir tmp;
  std::vector<double> d = {1, 2, 3};
  std::string bad = tmp.path("no/such/dir/x.npy");
  REQUIRE_THROWS_WITH(npy::write(bad, {3}, d.data()),
                      Contains("cannot open") && Contains(bad + ".tmp"));
  std::vector<float> f = {1, 2, 3};
  REQUIRE_THROWS_WITH(npy::write(bad, {3}, f.data()), Contains("cannot open"));
  std::string p = tmp.path("w.npy");
  REQUIRE_THROWS_WITH(npy::write(p, {-3}, d.data()), Contains("negative dimension"));
  REQUIRE_THROWS_WITH(npy::write(p, {3}, static_cast<const double*>(nullptr)),
                      Contains("data is null"));
  REQUIRE_THROWS_WITH(npy::write(p, {1 << 30, 1 << 30, 1 << 30}, d.data()),
                      Contains("too large"));
  npy::Array a;
  a.shape = {2, 2};
  a.data = d;
  REQUIRE_THROWS_WITH(npy::write(p, a), Contains("does not match 3 data values"));
  // A directory in the way: the rename fails and the temporary is cleaned up.
  fs::create_directory(p);
  fs::create_directory(p + "/inner");
  REQUIRE_THROWS_WITH(npy::write(p, {3}, d.data()), Contains("cannot rename") && Contains(p));
  REQUIRE_FALSE(fs::exists(p + ".tmp"));
  REQUIRE_FALSE(fs::exists(tmp.path("x.npy")));
}

TEST_CASE("npy: every truncation of a valid file is an Error", "[npy]") {
  TempDir tmp;
  std::string src = tmp.path("full.npy");
  std::string p = tmp.path("cut.npy");
  std::vector<double> data = ramp(24);
  npy::write(src, {2, 3, 4}, data.data());
  const std::string v1 = slurp(src);
  const std::string v2 = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
                                  std::string(24, '\x01'), 2);
  for (const std::string& full : {v1, v2}) {
    for (size_t len = 0; len < full.size(); ++len) {
      CAPTURE(len);
      spit(p, full.substr(0, len));
      REQUIRE_THROWS_AS(npy::read(p), npy::Error);
    }
    spit(p, full);
    REQUIRE_NOTHROW(npy::read(p));
  }
}

TEST_CASE("npy: random corruption never crashes", "[npy]") {
  TempDir tmp;
  std::string src = tmp.path("full.npy");
  std::string p = tmp.path("bad.npy");
  std::vector<double> data = ramp(6);
  npy::write(src, {2, 3}, data.data());
  const std::string full = slurp(src);
  const std::string alphabet = "{}()[],:'\" -0123456789LTrueFalsNon\n\x93\xff";
  std::mt19937 rng(12345);
  int errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = full;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % (s.size() - 48);  // mostly the prefix and header
      char c = (rng() & 1) ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng());
      switch (rng() % 3) {
        case 0: s[at] = c; break;
        case 1: s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        default: s.erase(at, 1); break;
      }
    }
    spit(p, s);
    try {
      npy::Array a = npy::read(p);
      REQUIRE(static_cast<int64_t>(a.data.size()) == a.size());
    } catch (const npy::Error&) {
      ++errors;
    }
  }
  REQUIRE(errors > 0);
}
