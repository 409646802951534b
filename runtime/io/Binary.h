// Little-endian binary values on streams, for the optimizer and EWC state in checkpoints. Readers
// throw std::runtime_error("<context>: truncated (in <what>)") instead of reading past the end,
// and read doubles in chunks so a corrupt count cannot allocate more than the stream holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <vector>

namespace cellc::runtime::binary {

void putU64(std::ostream& out, uint64_t v);
void putU32(std::ostream& out, uint32_t v);
void putF64(std::ostream& out, double v);

void getBytes(std::istream& in, char* p, size_t n, const char* context, const char* what);
uint64_t getU64(std::istream& in, const char* context, const char* what);
uint32_t getU32(std::istream& in, const char* context, const char* what);
double getF64(std::istream& in, const char* context, const char* what);
std::vector<double> getDoubles(std::istream& in, uint64_t n, const char* context, const char* what);

// The readers above bound to one stream and one message context.
class Reader {
 public:
  Reader(std::istream& in, const char* context) : in_(in), context_(context) {}
  void bytes(char* p, size_t n, const char* what) { getBytes(in_, p, n, context_, what); }
  uint64_t u64(const char* what) { return getU64(in_, context_, what); }
  uint32_t u32(const char* what) { return getU32(in_, context_, what); }
  double f64(const char* what) { return getF64(in_, context_, what); }
  std::vector<double> doubles(uint64_t n, const char* what) { return getDoubles(in_, n, context_, what); }

 private:
  std::istream& in_;
  const char* context_;
};

}  // namespace cellc::runtime::binary
