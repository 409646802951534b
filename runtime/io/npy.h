// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// Only little-endian float32 ('<f4') and float64 ('<f8') arrays in C order are supported: that is
// all cellc exchanges with numpy (params, inputs, recorded trajectories). Values are widened to
// double on read so callers handle a single element type.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace cellc::npy {

struct Array {
  std::vector<int64_t> shape;  // C order
  std::vector<double> data;    // values converted to double on read
  std::string dtype = "<f8";   // "<f4" or "<f8" as read from the file
  // Product of shape (1 for a 0-d array); -1 if a dim is negative or the product overflows
  // int64, which read() never returns.
  int64_t size() const;
};

// Every failure (missing file, bad header, unsupported dtype, truncated data, I/O error) is an
// Error whose message names the file and says why.
struct Error : std::runtime_error {
  using runtime_error::runtime_error;
};

// Reads a whole .npy file. Never reads past the end of the file and never allocates more than
// the file's size justifies.
Array read(const std::string& path);

// Writes a version 1.0 .npy file atomically (io::AtomicFile: a unique temp, fsync, rename over
// PATH; a failed write names the OS reason and leaves PATH as it was). `data` holds
// product(shape) values in C order; it may be null when that product is 0. as_float32 stores
// '<f4' (values rounded to float), otherwise '<f8'.
void write(const std::string& path, const std::vector<int64_t>& shape, const double* data,
           bool as_float32 = false);
// Stores '<f4'.
void write(const std::string& path, const std::vector<int64_t>& shape, const float* data);
// Stores array.data with array.shape, as '<f4' if array.dtype is "<f4", else as '<f8'.
void write(const std::string& path, const Array& array);

}  // namespace cellc::npy
