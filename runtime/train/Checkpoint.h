// Training checkpoints: everything needed to resume a run bit for bit (params, optimizer, random
// streams, EWC, step) and to rebuild the model from the file alone (the cell's text and -D
// overrides, the experiment's resolved text).
//
// File format (all integers little-endian; doubles as their 8 IEEE-754 bytes):
//   "CELLC-CHECKPOINT 1\n"                 magic line with the format version
//   u64 total file length, u32 CRC-32 of the magic line and that length
//   sections, each: u32 name length, name, u64 data length, data
//   u32 CRC-32 (IEEE 802.3, as zlib's crc32) of every byte before it
// Sections of version 1 (all required; unknown names are skipped, for later additions):
//   cell.source, cell.path, experiment, optimizer.kind, optimizer.state, random.state,
//   ewc.state: raw bytes;  step: i64;  best.validation: f64;
//   params, best.params: the doubles, data length = 8 * count;
//   overrides: u64 count, then per entry u32 name length, name, f64 value;
//   extra: u64 count, then per entry u32 key length, key, u64 value length, value.
// The header's own CRC tells a damaged length field ("corrupt") from a short file ("truncated").
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cellc::runtime {

struct Checkpoint {
  std::string cellSource;                   // the .cell text
  std::string cellPath;                     // where it came from (informational)
  std::map<std::string, double> overrides;  // dims and consts (-D)
  std::string experiment;                   // resolved experiment text (TOML) or empty
  int64_t step = 0;                         // training steps done
  std::vector<double> params;               // current
  std::vector<double> bestParams;           // best on validation so far (may be empty)
  double bestValidation = INFINITY;
  std::string optimizerKind;
  std::string optimizerState;               // Optimizer::save bytes
  std::string randomState;                  // RandomStreams::save text (opaque here)
  std::string ewcState;                     // Ewc::save bytes (may be empty)
  std::map<std::string, std::string> extra; // free-form key -> value
};

// Every failure names the file and says why.
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr std::string_view kCheckpointMagic = "CELLC-CHECKPOINT 1\n";

// Writes through io::AtomicFile (a unique temp next to PATH, fsync, rename, fsync of the directory):
// a crash leaves either the old file or the new one. Throws CheckpointError naming PATH and the OS
// reason on any I/O failure (removing the temp).
void writeCheckpoint(const std::string& path, const Checkpoint& ckpt);

// Reads and validates a checkpoint. Refuses (CheckpointError "checkpoint PATH: why"): a missing or
// unreadable file, an empty one, wrong magic ("not a cellc checkpoint"), another format version,
// a truncated file, a checksum mismatch ("corrupt: checksum mismatch"), a missing, duplicated or
// malformed section, a length beyond the end of the file. Never allocates more than the file's
// size.
Checkpoint readCheckpoint(const std::string& path);

// The container bytes writeCheckpoint stores, and their parser (what readCheckpoint does after
// reading the file; `path` only names the source in messages).
std::string encodeCheckpoint(const Checkpoint& ckpt);
Checkpoint decodeCheckpoint(std::string_view bytes, const std::string& path);

// Throws CheckpointError listing every way the checkpoint differs from the model about to resume
// it: a different cell text (with the first differing line), a -D override with different values
// or set on one side only (naming it with both values), a param count different from paramSize
// (params, and bestParams when not empty).
void checkCompatible(const Checkpoint& ckpt, const std::string& cellSource,
                     const std::map<std::string, double>& overrides, int64_t paramSize);

// CRC-32 (reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF); pass the previous
// result as `crc` to continue over more bytes. crc32("123456789") == 0xCBF43926.
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);

}  // namespace cellc::runtime
