// Small text helpers for messages, shared by the compiler and the runtime: the edit distance
// behind every "did you mean ...?", and a printable excerpt of untrusted bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cellc {

size_t editDistance(std::string_view a, std::string_view b);

// The candidate closest to `name` within a third of its length (at least 2 edits), or "".
std::string closestName(std::string_view name, const std::vector<std::string>& candidates);

// `text` with non-printable bytes as \xNN, cut at `limit` characters with "...".
std::string printableExcerpt(std::string_view text, size_t limit);

}  // namespace cellc
