// Checkpoint files: a checksummed container of named sections (see Checkpoint.h for the layout).
#include "diag/Text.h"
#include "io/AtomicFile.h"
#include "train/Checkpoint.h"

#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace cellc::runtime {
namespace {

namespace fs = std::filesystem;

constexpr size_t kHeaderSize = kCheckpointMagic.size() + 8 + 4;  // magic, total length, its CRC
constexpr size_t kMaxNameLen = 256;                               // section and override names

constexpr std::array<uint32_t, 256> makeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = makeCrcTable();

// --- Encoding ---

void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void putU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void putF64(std::string& out, double v) { putU64(out, std::bit_cast<uint64_t>(v)); }
void putStr32(std::string& out, std::string_view s) {  // u32 length + bytes
  putU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

void section(std::string& out, std::string_view name, std::string_view data) {
  putStr32(out, name);
  putU64(out, data.size());
  out.append(data);
}

std::string doublesBytes(const std::vector<double>& v) {
  std::string s;
  s.reserve(8 * v.size());
  for (double x : v) putF64(s, x);
  return s;
}

uint32_t getU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
uint64_t getU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// Printable excerpt of untrusted bytes, for messages.
std::string excerpt(std::string_view text, size_t limit = 60) { return printableExcerpt(text, limit); }

// Shortest text that reads back as the same double.
std::string num(double v) {
  // Dims are whole numbers: "10", not the shortest %g form "1e+01".
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 1e15)
    return std::to_string(static_cast<long long>(v));
  char buf[32];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// --- Decoding ---

// Bounds-checked reading of one section's data.
class Reader {
 public:
  Reader(std::string_view data, std::string name, const std::string& path)
      : d_(data), name_(std::move(name)), path_(path) {}
  [[noreturn]] void fail(const std::string& why) const {
    throw CheckpointError("checkpoint " + path_ + ": malformed section '" + name_ + "': " + why);
  }
  size_t left() const { return d_.size() - pos_; }
  std::string_view bytes(uint64_t n) {
    if (n > left())
      fail("a length of " + std::to_string(n) + " bytes beyond the section's end (" +
           std::to_string(left()) + " left)");
    std::string_view s = d_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  uint32_t u32() { return getU32(bytes(4).data()); }
  uint64_t u64() { return getU64(bytes(8).data()); }
  double f64() { return std::bit_cast<double>(u64()); }
  std::string str32() { return std::string(bytes(u32())); }
  void end() const {
    if (left() != 0) fail(std::to_string(left()) + " unexpected bytes at its end");
  }

 private:
  std::string_view d_;
  size_t pos_ = 0;
  std::string name_;
  const std::string& path_;
};

// Every section of version 1, in the order written; all are required.
const char* const kSections[] = {
    "cell.source",    "cell.path",       "overrides",    "experiment", "step",
    "params",         "best.params",     "best.validation",
    "optimizer.kind", "optimizer.state", "random.state", "ewc.state",  "extra",
};

}  // namespace

uint32_t crc32(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = kCrcTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::string encodeCheckpoint(const Checkpoint& c) {
  std::string body;
  section(body, "cell.source", c.cellSource);
  section(body, "cell.path", c.cellPath);
  {
    std::string s;
    putU64(s, c.overrides.size());
    for (const auto& [name, value] : c.overrides) {
      putStr32(s, name);
      putF64(s, value);
    }
    section(body, "overrides", s);
  }
  section(body, "experiment", c.experiment);
  {
    std::string s;
    putU64(s, static_cast<uint64_t>(c.step));
    section(body, "step", s);
  }
  section(body, "params", doublesBytes(c.params));
  section(body, "best.params", doublesBytes(c.bestParams));
  {
    std::string s;
    putF64(s, c.bestValidation);
    section(body, "best.validation", s);
  }
  section(body, "optimizer.kind", c.optimizerKind);
  section(body, "optimizer.state", c.optimizerState);
  section(body, "random.state", c.randomState);
  section(body, "ewc.state", c.ewcState);
  {
    std::string s;
    putU64(s, c.extra.size());
    for (const auto& [key, value] : c.extra) {
      putStr32(s, key);
      putU64(s, value.size());
      s.append(value);
    }
    section(body, "extra", s);
  }

  std::string out(kCheckpointMagic);
  putU64(out, kHeaderSize + body.size() + 4);
  putU32(out, crc32(out.data(), out.size()));
  out += body;
  putU32(out, crc32(out.data(), out.size()));
  return out;
}

Checkpoint decodeCheckpoint(std::string_view bytes, const std::string& path) {
  auto fail = [&](const std::string& why) -> void {
    throw CheckpointError("checkpoint " + path + ": " + why);
  };
  const size_t size = bytes.size();
  if (size == 0) fail("empty file, not a cellc checkpoint");

  // The magic line and its version.
  constexpr std::string_view kPrefix = "CELLC-CHECKPOINT ";
  if (size < kCheckpointMagic.size() && kCheckpointMagic.starts_with(bytes))
    fail("truncated: " + std::to_string(size) + " bytes, shorter than the header");
  if (!bytes.starts_with(kPrefix)) fail("not a cellc checkpoint (wrong magic)");
  size_t nl = bytes.find('\n', kPrefix.size());
  if (nl == std::string_view::npos || nl > kPrefix.size() + 20)
    fail("not a cellc checkpoint (no version line)");
  std::string_view version = bytes.substr(kPrefix.size(), nl - kPrefix.size());
  constexpr std::string_view kVersion = kCheckpointMagic.substr(
      kPrefix.size(), kCheckpointMagic.size() - kPrefix.size() - 1);  // "1"
  if (version != kVersion)
    fail("unsupported checkpoint format version '" + excerpt(version) +
         "' (this build reads version 1)");

  // Header: total length, guarded by its own CRC.
  if (size < kHeaderSize)
    fail("truncated: " + std::to_string(size) + " bytes, shorter than the header");
  const char* p = bytes.data();
  uint64_t total = getU64(p + kCheckpointMagic.size());
  if (crc32(p, kCheckpointMagic.size() + 8) != getU32(p + kCheckpointMagic.size() + 8))
    fail("corrupt: checksum mismatch in the header");
  if (total > size)
    fail("truncated: the file has " + std::to_string(size) + " of its " + std::to_string(total) +
         " bytes");
  if (total < size)
    fail("corrupt: the file has " + std::to_string(size) + " bytes, its header says " +
         std::to_string(total));
  if (size < kHeaderSize + 4) fail("corrupt: no room for the checksum");
  const size_t end = size - 4;
  if (crc32(p, end) != getU32(p + end)) fail("corrupt: checksum mismatch");

  // Sections.
  std::map<std::string, std::string_view, std::less<>> sections;
  size_t pos = kHeaderSize;
  while (pos < end) {
    if (end - pos < 4) fail("malformed: a section header runs past the end of the file");
    uint32_t nameLen = getU32(p + pos);
    pos += 4;
    if (nameLen > kMaxNameLen || nameLen > end - pos)
      fail("malformed: a section name of " + std::to_string(nameLen) +
           " bytes (beyond the end of the file or too long)");
    std::string name(p + pos, nameLen);
    pos += nameLen;
    if (end - pos < 8) fail("malformed: section '" + excerpt(name) + "' has no length");
    uint64_t len = getU64(p + pos);
    pos += 8;
    if (len > end - pos)
      fail("malformed: section '" + excerpt(name) + "' has a length of " + std::to_string(len) +
           " bytes, beyond the end of the file (" + std::to_string(end - pos) + " bytes left)");
    if (sections.count(name)) fail("malformed: section '" + excerpt(name) + "' appears twice");
    sections.emplace(std::move(name), bytes.substr(pos, static_cast<size_t>(len)));
    pos += static_cast<size_t>(len);
  }
  for (const char* name : kSections)
    if (!sections.count(name)) fail(std::string("missing section '") + name + "'");

  auto raw = [&](const char* name) { return std::string(sections.find(name)->second); };
  auto reader = [&](const char* name) { return Reader(sections.find(name)->second, name, path); };
  auto doubles = [&](const char* name) {
    Reader r = reader(name);
    if (r.left() % 8 != 0)
      r.fail(std::to_string(r.left()) + " bytes, not a whole number of doubles");
    std::vector<double> v(r.left() / 8);
    for (double& x : v) x = r.f64();
    return v;
  };

  Checkpoint c;
  c.cellSource = raw("cell.source");
  c.cellPath = raw("cell.path");
  c.experiment = raw("experiment");
  c.optimizerKind = raw("optimizer.kind");
  c.optimizerState = raw("optimizer.state");
  c.randomState = raw("random.state");
  c.ewcState = raw("ewc.state");
  c.params = doubles("params");
  c.bestParams = doubles("best.params");
  {
    Reader r = reader("step");
    c.step = static_cast<int64_t>(r.u64());
    r.end();
    if (c.step < 0) r.fail("a negative step count");
  }
  {
    Reader r = reader("best.validation");
    c.bestValidation = r.f64();
    r.end();
  }
  {
    Reader r = reader("overrides");
    uint64_t n = r.u64();
    if (n > r.left() / 12) r.fail("a count of " + std::to_string(n) + " beyond its length");
    for (uint64_t i = 0; i < n; ++i) {
      std::string name = r.str32();
      double v = r.f64();
      if (!c.overrides.emplace(name, v).second) r.fail("'" + excerpt(name) + "' appears twice");
    }
    r.end();
  }
  {
    Reader r = reader("extra");
    uint64_t n = r.u64();
    if (n > r.left() / 12) r.fail("a count of " + std::to_string(n) + " beyond its length");
    for (uint64_t i = 0; i < n; ++i) {
      std::string key = r.str32();
      std::string value(r.bytes(r.u64()));
      if (!c.extra.emplace(key, std::move(value)).second)
        r.fail("key '" + excerpt(key) + "' appears twice");
    }
    r.end();
  }
  return c;
}

void writeCheckpoint(const std::string& path, const Checkpoint& ckpt) {
  const std::string bytes = encodeCheckpoint(ckpt);
  try {
    io::writeFileAtomic(path, bytes);
  } catch (const io::WriteError& e) {
    throw CheckpointError("checkpoint " + path + ": " + e.reason());
  }
}

Checkpoint readCheckpoint(const std::string& path) {
  auto fail = [&](const std::string& why) -> void {
    throw CheckpointError("checkpoint " + path + ": " + why);
  };
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail("no such file");
  if (!fs::is_regular_file(st)) fail("not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(std::string("cannot open: ") + std::strerror(errno));
  std::uintmax_t size = fs::file_size(path, ec);
  if (ec) fail("cannot read its size: " + ec.message());
  std::string bytes;
  bytes.resize(static_cast<size_t>(size));
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size)
    fail("read error (the file changed while reading?)");
  if (in.peek() != std::char_traits<char>::eof()) fail("the file grew while reading");
  return decodeCheckpoint(bytes, path);
}

void checkCompatible(const Checkpoint& ckpt, const std::string& cellSource,
                     const std::map<std::string, double>& overrides, int64_t paramSize) {
  std::vector<std::string> problems;

  if (ckpt.cellSource != cellSource) {
    // The first differing line, 1-based.
    size_t i = 0, line = 1, lineStart = 0;
    while (i < ckpt.cellSource.size() && i < cellSource.size() &&
           ckpt.cellSource[i] == cellSource[i]) {
      if (cellSource[i] == '\n') {
        ++line;
        lineStart = i + 1;
      }
      ++i;
    }
    auto lineOf = [&](const std::string& s) {
      if (lineStart >= s.size()) return std::string("(end of text)");
      size_t e = s.find('\n', lineStart);
      size_t len = e == std::string::npos ? std::string::npos : e - lineStart;
      return "'" + excerpt(std::string_view(s).substr(lineStart, len), 80) + "'";
    };
    problems.push_back("the cell text differs from the one the checkpoint was trained on" +
                       (ckpt.cellPath.empty() ? std::string() : " (" + ckpt.cellPath + ")") +
                       ": first difference at line " + std::to_string(line) + ", checkpoint " +
                       lineOf(ckpt.cellSource) + ", now " + lineOf(cellSource));
  }

  std::set<std::string> names;
  for (const auto& kv : ckpt.overrides) names.insert(kv.first);
  for (const auto& kv : overrides) names.insert(kv.first);
  for (const std::string& name : names) {
    auto a = ckpt.overrides.find(name);
    auto b = overrides.find(name);
    if (a != ckpt.overrides.end() && b != overrides.end()) {
      bool same = a->second == b->second || (std::isnan(a->second) && std::isnan(b->second));
      if (!same)
        problems.push_back("-D " + name + ": checkpoint " + num(a->second) + ", now " +
                           num(b->second));
    } else if (a != ckpt.overrides.end()) {
      problems.push_back("-D " + name + ": checkpoint " + num(a->second) +
                         ", now not set (the cell's default)");
    } else {
      problems.push_back("-D " + name + ": checkpoint not set (the cell's default), now " +
                         num(b->second));
    }
  }

  if (static_cast<int64_t>(ckpt.params.size()) != paramSize)
    problems.push_back("the checkpoint holds " + std::to_string(ckpt.params.size()) +
                       " params, the model has " + std::to_string(paramSize));
  if (!ckpt.bestParams.empty() && static_cast<int64_t>(ckpt.bestParams.size()) != paramSize)
    problems.push_back("the checkpoint's best params hold " +
                       std::to_string(ckpt.bestParams.size()) + " values, the model has " +
                       std::to_string(paramSize));

  if (problems.empty()) return;
  std::string msg = "checkpoint does not match the model: ";
  for (size_t k = 0; k < problems.size(); ++k) msg += (k ? "; " : "") + problems[k];
  throw CheckpointError(msg);
}

}  // namespace cellc::runtime
