// The sweep folder's tables: sweep.json (what the sweep is: its axes and runs, for the plotting
// script) and sweep.csv (one row per run: its point, its status and every number of its
// summary.json, flattened with dotted names).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "sweep/SweepFile.h"

namespace cellc::runtime {

// Every number of a summary.json (booleans as 0/1), with dotted names; arrays are indexed
// ("phases.0.steps") unless longer than kMaxArray; strings and nulls are skipped.
inline constexpr size_t kMaxArray = 64;
std::vector<std::pair<std::string, double>> flattenSummary(const std::string& jsonText);

void writeSweepManifest(const Sweep& s, const std::filesystem::path& outDir);
void writeSweepTable(const Sweep& s, const std::filesystem::path& outDir);

// A number as its shortest text that reads back exactly.
std::string numberText(double v);

}  // namespace cellc::runtime
