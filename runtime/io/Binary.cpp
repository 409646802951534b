#include "io/Binary.h"

#include <algorithm>
#include <bit>
#include <istream>
#include <ostream>
#include <stdexcept>
#include <string>

namespace cellc::runtime::binary {

namespace {

constexpr uint64_t kChunk = 1u << 13;  // doubles per read: memory follows the bytes actually there

template <class U>
void put(std::ostream& out, U v) {
  char b[sizeof(U)];
  for (size_t i = 0; i < sizeof(U); ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.write(b, sizeof(U));
}

template <class U>
U get(std::istream& in, const char* context, const char* what) {
  unsigned char b[sizeof(U)];
  in.read(reinterpret_cast<char*>(b), sizeof(U));
  if (static_cast<size_t>(in.gcount()) != sizeof(U))
    throw std::runtime_error(std::string(context) + ": truncated (in " + what + ")");
  U v = 0;
  for (size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(b[i]) << (8 * i);
  return v;
}

}  // namespace

void getBytes(std::istream& in, char* p, size_t n, const char* context, const char* what) {
  in.read(p, static_cast<std::streamsize>(n));
  if (static_cast<size_t>(in.gcount()) != n)
    throw std::runtime_error(std::string(context) + ": truncated (in " + what + ")");
}

void putU64(std::ostream& out, uint64_t v) { put(out, v); }
void putU32(std::ostream& out, uint32_t v) { put(out, v); }
void putF64(std::ostream& out, double v) { put(out, std::bit_cast<uint64_t>(v)); }

uint64_t getU64(std::istream& in, const char* c, const char* w) { return get<uint64_t>(in, c, w); }
uint32_t getU32(std::istream& in, const char* c, const char* w) { return get<uint32_t>(in, c, w); }
double getF64(std::istream& in, const char* c, const char* w) {
  return std::bit_cast<double>(get<uint64_t>(in, c, w));
}

std::vector<double> getDoubles(std::istream& in, uint64_t n, const char* context, const char* what) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(std::min(n, kChunk)));
  while (out.size() < n) {
    uint64_t take = std::min(n - out.size(), kChunk);
    for (uint64_t i = 0; i < take; ++i) out.push_back(getF64(in, context, what));
  }
  return out;
}

}  // namespace cellc::runtime::binary
